/**
 * Ephemeral `kms_secret_plaintext`: decrypts a ciphertext each time core opens it. The result
 * exists only in memory for the run (write-only arguments, provider configuration, other
 * ephemeral contexts); it is never logged, never put into a diagnostic, never persisted.
 */
import { GrpcCode, KmsApiError } from '../client/kms-client.js';
import type { TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext } from '../framework/context.js';
import { defineEphemeralResource } from '../framework/ephemeral.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SecretPlaintextEphemeralConfig, SecretPlaintextEphemeralState } from '../models.gen.js';
import { MAX_AAD_BYTES } from './secret_ciphertext.js';

/** Terraform type name. */
export const SECRET_PLAINTEXT_TYPE = 'kms_secret_plaintext';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Checks of key_id, ciphertext and aad_context; unknown values are skipped. */
export function validateSecretPlaintextConfig(config: SecretPlaintextEphemeralConfig): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const keyId = str(config.key_id);
  if (keyId !== undefined && keyId.trim() === '') diags.push(errorDiag('Invalid key_id', 'key_id must not be empty.', attrPath('key_id')));
  const ciphertext = str(config.ciphertext);
  if (ciphertext !== undefined && (ciphertext === '' || ciphertext.length % 4 !== 0 || !BASE64.test(ciphertext))) {
    diags.push(
      errorDiag('Invalid ciphertext', 'ciphertext must be the base64 text the daemon returned (e.g. kms_secret_ciphertext.x.ciphertext).', attrPath('ciphertext')),
    );
  }
  const aad = str(config.aad_context);
  if (aad !== undefined && Buffer.byteLength(aad, 'utf8') > MAX_AAD_BYTES) {
    diags.push(errorDiag('Invalid aad_context', `aad_context must be at most ${MAX_AAD_BYTES} bytes of UTF-8; got ${Buffer.byteLength(aad, 'utf8')}.`, attrPath('aad_context')));
  }
  return diags;
}

async function decryptSecret(config: SecretPlaintextEphemeralState, ctx: ConfiguredContext): Promise<Result<SecretPlaintextEphemeralState | null>> {
  const diags = validateSecretPlaintextConfig(config);
  if (diags.length > 0) return withDiags(null, ...diags);
  const { key_id: keyId, ciphertext, aad_context: aad } = config;
  if (keyId === null || ciphertext === null) return withDiags(null, errorDiag('Missing key_id or ciphertext', 'key_id and ciphertext are required.'));
  let plain: Buffer | undefined;
  try {
    const result = await ctx.client.decrypt(keyId, ciphertext, aad === null || aad === '' ? undefined : Buffer.from(aad, 'utf8'));
    plain = Buffer.from(result.plaintext, 'base64');
    const text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
    return ok({ ...config, version_id: result.versionId, plaintext: text });
  } catch (err) {
    if (err instanceof TypeError) {
      return withDiags(null, errorDiag('Plaintext is not UTF-8', 'The ciphertext decrypted to bytes that are not valid UTF-8 text; kms_secret_plaintext returns text only.', attrPath('ciphertext')));
    }
    const code = err instanceof KmsApiError ? err.code : undefined;
    // A wrong AAD or a ciphertext of another key both fail authentication: say where to look.
    const path = code === GrpcCode.NOT_FOUND ? attrPath('key_id') : code === GrpcCode.INVALID_ARGUMENT ? attrPath('ciphertext') : undefined;
    return withDiags(null, failureDiag(`Cannot decrypt with key ${keyId}`, err, path));
  } finally {
    plain?.fill(0);
  }
}

/** The ephemeral resource. */
export const secretPlaintextEphemeral = defineEphemeralResource<SecretPlaintextEphemeralState, SecretPlaintextEphemeralConfig>({
  typeName: SECRET_PLAINTEXT_TYPE,
  validate: validateSecretPlaintextConfig,
  open: decryptSecret,
});
