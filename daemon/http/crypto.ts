/**
 * Data-plane routes: synchronous, no Operation. Bytes travel as base64; sizes are checked after
 * decoding so the limits are the documented byte counts (plaintext ≤ 32768, each AAD ≤ 8192).
 */
import type { AccessPolicy } from '../domain/access.js';
import { MAX_AAD_BYTES, MAX_PLAINTEXT_BYTES, decodeCiphertext, type CryptoService } from '../domain/crypto.js';
import type { KnownAlgorithm } from '../domain/model.js';
import { keyTarget, pathParam, type RequestContext, type RouteDef } from './router.js';
import { decodeBase64 } from './validation.js';

/** Ciphertexts are at most a 32 KiB plaintext plus a small header and the tag. */
const MAX_CIPHERTEXT_BYTES = 48 * 1024;

const b64 = (bytes: Buffer) => bytes.toString('base64');

/** Records the version a ciphertext names, so a refused decrypt is audited with it. */
function noteCiphertextVersion(ctx: RequestContext, ciphertext: Buffer): void {
  try {
    ctx.audit.versionId = decodeCiphertext(ciphertext).versionId;
  } catch {
    // malformed: the decrypt itself reports it
  }
}

export function cryptoRoutes(crypto: CryptoService, policy: AccessPolicy): RouteDef[] {
  return [
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:encrypt',
      operationId: 'SymmetricCrypto.Encrypt',
      summary: 'Encrypts plaintext (≤ 32768 bytes) with the primary or the given version.',
      permission: 'kms.keys.encrypt',
      body: 'encrypt',
      target: keyTarget,
      hot: true,
      handler: (ctx) => {
        const body = ctx.body as { versionId?: string; aadContext?: string; plaintext: string };
        const result = crypto.encrypt(
          pathParam(ctx, 'keyId'),
          decodeBase64('plaintext', body.plaintext, MAX_PLAINTEXT_BYTES),
          decodeBase64('aadContext', body.aadContext, MAX_AAD_BYTES),
          body.versionId,
        );
        return { body: { keyId: result.keyId, versionId: result.versionId, ciphertext: b64(result.ciphertext) } };
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:decrypt',
      operationId: 'SymmetricCrypto.Decrypt',
      summary: 'Decrypts a ciphertext produced by this key; the version is read from the ciphertext.',
      permission: 'kms.keys.decrypt',
      body: 'decrypt',
      target: keyTarget,
      hot: true,
      handler: (ctx) => {
        const body = ctx.body as { aadContext?: string; ciphertext: string };
        const ciphertext = decodeBase64('ciphertext', body.ciphertext, MAX_CIPHERTEXT_BYTES);
        noteCiphertextVersion(ctx, ciphertext);
        const result = crypto.decrypt(pathParam(ctx, 'keyId'), ciphertext, decodeBase64('aadContext', body.aadContext, MAX_AAD_BYTES));
        try {
          return { body: { keyId: result.keyId, versionId: result.versionId, plaintext: b64(result.plaintext) } };
        } finally {
          result.plaintext.fill(0);
        }
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:reEncrypt',
      operationId: 'SymmetricCrypto.ReEncrypt',
      summary: 'Decrypts with sourceKeyId and encrypts with this key, without returning the plaintext.',
      permission: 'kms.keys.encrypt',
      body: 're-encrypt',
      target: keyTarget,
      hot: true,
      handler: (ctx) => {
        const body = ctx.body as { versionId?: string; aadContext?: string; sourceKeyId: string; sourceAadContext?: string; ciphertext: string };
        // The route's permission covers the target key; the source key needs its own check.
        policy.authorize(ctx.caller, 'kms.keys.decrypt', { keyId: body.sourceKeyId });
        const result = crypto.reEncrypt(
          pathParam(ctx, 'keyId'),
          body.versionId,
          decodeBase64('aadContext', body.aadContext, MAX_AAD_BYTES),
          body.sourceKeyId,
          decodeBase64('sourceAadContext', body.sourceAadContext, MAX_AAD_BYTES),
          decodeBase64('ciphertext', body.ciphertext, MAX_CIPHERTEXT_BYTES),
        );
        return {
          body: {
            keyId: result.keyId,
            versionId: result.versionId,
            sourceKeyId: result.sourceKeyId,
            sourceVersionId: result.sourceVersionId,
            ciphertext: b64(result.ciphertext),
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:generateDataKey',
      operationId: 'SymmetricCrypto.GenerateDataKey',
      summary: 'Generates a data key (default AES_256) and returns it encrypted, and in plaintext unless skipPlaintext.',
      permission: 'kms.keys.generateDataKey',
      body: 'generate-data-key',
      target: keyTarget,
      hot: true,
      handler: (ctx) => {
        const body = ctx.body as { versionId?: string; aadContext?: string; dataKeySpec?: KnownAlgorithm; skipPlaintext?: boolean };
        const result = crypto.generateDataKey(
          pathParam(ctx, 'keyId'),
          body.dataKeySpec ?? 'AES_256',
          decodeBase64('aadContext', body.aadContext, MAX_AAD_BYTES),
          body.skipPlaintext ?? false,
          body.versionId,
        );
        const response: Record<string, string> = { keyId: result.keyId, versionId: result.versionId };
        if (result.dataKeyPlaintext !== undefined) {
          response.dataKeyPlaintext = b64(result.dataKeyPlaintext);
          result.dataKeyPlaintext.fill(0);
        }
        response.dataKeyCiphertext = b64(result.dataKeyCiphertext);
        return { body: response };
      },
    },
  ];
}
