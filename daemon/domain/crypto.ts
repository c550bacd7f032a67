/**
 * The data plane: encrypt, decrypt, reEncrypt and generateDataKey (DESIGN §5).
 *
 * Ciphertexts are self-describing, so Decrypt needs no version id from the caller:
 *
 *   byte 0        format (0x01)
 *   byte 1        length L of the version id (1..50)
 *   bytes 2..2+L  version id (ASCII)
 *   next 12       AES-GCM nonce
 *   rest          ciphertext with the 16-byte GCM tag appended
 *
 * The GCM additional data binds the key id, the version id and the caller's aadContext, so a
 * ciphertext cannot be replayed under another key, version or context: any of those changes
 * makes authentication fail.
 */
import { KmsError, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { liveKey } from './keys.js';
import { keystoreAlgorithm, type Algorithm, type KeyRecord, type KnownAlgorithm, type StateView, type VersionRecord } from './model.js';
import type { Keystore, Store } from './ports.js';

export const MAX_PLAINTEXT_BYTES = 32768;
export const MAX_AAD_BYTES = 8192;
const FORMAT_V1 = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AAD_DOMAIN = Buffer.from('kms-aead-v1\0', 'ascii');

export interface EncryptResult {
  keyId: string;
  versionId: string;
  ciphertext: Buffer;
}

export interface DecryptResult {
  keyId: string;
  versionId: string;
  plaintext: Buffer;
}

export interface DataKeyResult {
  keyId: string;
  versionId: string;
  dataKeyPlaintext?: Buffer;
  dataKeyCiphertext: Buffer;
}

/** Data key sizes by spec; AES_256_HSM data keys are 256-bit keys like AES_256. */
const DATA_KEY_BYTES: Record<Algorithm, number> = { AES_128: 16, AES_192: 24, AES_256: 32, AES_256_HSM: 32 };

interface Resolved {
  key: Readonly<KeyRecord>;
  version: Readonly<VersionRecord>;
}

export class CryptoService {
  constructor(
    private readonly store: Store,
    private readonly keystore: Keystore,
  ) {}

  encrypt(keyId: string, plaintext: Buffer, aadContext: Buffer, versionId?: string): EncryptResult {
    checkSize('plaintext', plaintext, MAX_PLAINTEXT_BYTES);
    checkSize('aadContext', aadContext, MAX_AAD_BYTES);
    const { key, version } = this.store.read((state) => resolveForEncrypt(state, keyId, versionId));
    const material = requireMaterial(version);
    const sealed = this.keystore.seal(material, version.algorithm, plaintext, additionalData(key.id, version.id, aadContext));
    return { keyId: key.id, versionId: version.id, ciphertext: encodeCiphertext(version.id, sealed.nonce, sealed.ciphertext) };
  }

  decrypt(keyId: string, ciphertext: Buffer, aadContext: Buffer): DecryptResult {
    checkSize('aadContext', aadContext, MAX_AAD_BYTES);
    const parsed = decodeCiphertext(ciphertext);
    const { key, version } = this.store.read((state) => resolveForDecrypt(state, keyId, parsed.versionId));
    const material = requireMaterial(version);
    const plaintext = this.keystore.open(
      material,
      version.algorithm,
      { nonce: parsed.nonce, ciphertext: parsed.sealed },
      additionalData(key.id, version.id, aadContext),
    );
    return { keyId: key.id, versionId: version.id, plaintext };
  }

  /** Decrypts with the source key and encrypts with the target key; the plaintext never leaves. */
  reEncrypt(
    keyId: string,
    versionId: string | undefined,
    aadContext: Buffer,
    sourceKeyId: string,
    sourceAadContext: Buffer,
    ciphertext: Buffer,
  ): EncryptResult & { sourceKeyId: string; sourceVersionId: string } {
    const source = this.decrypt(sourceKeyId, ciphertext, sourceAadContext);
    try {
      const target = this.encrypt(keyId, source.plaintext, aadContext, versionId);
      return { ...target, sourceKeyId: source.keyId, sourceVersionId: source.versionId };
    } finally {
      source.plaintext.fill(0);
    }
  }

  generateDataKey(keyId: string, requested: KnownAlgorithm, aadContext: Buffer, skipPlaintext: boolean, versionId?: string): DataKeyResult {
    const token = this.keystore.identity().token;
    const spec = keystoreAlgorithm('dataKeySpec', requested, { kind: this.keystore.kind, ...(token !== null ? { label: token.label } : {}) });
    const dataKey = this.keystore.randomBytes(DATA_KEY_BYTES[spec]);
    try {
      const sealed = this.encrypt(keyId, dataKey, aadContext, versionId);
      const result: DataKeyResult = { keyId: sealed.keyId, versionId: sealed.versionId, dataKeyCiphertext: sealed.ciphertext };
      if (!skipPlaintext) result.dataKeyPlaintext = Buffer.from(dataKey);
      return result;
    } finally {
      dataKey.fill(0);
    }
  }
}

function checkSize(field: string, bytes: Buffer, max: number): void {
  if (bytes.length > max) throw invalidArgument(field, `must be at most ${max} bytes, got ${bytes.length}`);
}

function usableKey(state: StateView, keyId: string): Readonly<KeyRecord> {
  const key = liveKey(state, keyId);
  if (key.status !== 'ACTIVE') {
    throw failedPrecondition(`key ${keyId} is ${key.status}; cryptographic operations need an ACTIVE key`);
  }
  return key;
}

function resolveForEncrypt(state: StateView, keyId: string, versionId: string | undefined): Resolved {
  const key = usableKey(state, keyId);
  const version = state.versions.get(versionId ?? key.primaryVersionId);
  if (version === undefined || version.keyId !== key.id) throw notFound('version', versionId ?? key.primaryVersionId);
  if (version.status !== 'ACTIVE') {
    throw failedPrecondition(`version ${version.id} is ${version.status}; only ACTIVE versions encrypt`);
  }
  return { key, version };
}

function resolveForDecrypt(state: StateView, keyId: string, versionId: string): Resolved {
  const key = usableKey(state, keyId);
  const version = state.versions.get(versionId);
  if (version === undefined || version.keyId !== key.id) {
    throw invalidArgument('ciphertext', `was not produced by key ${keyId}`);
  }
  if (version.status === 'DESTROYED') {
    throw failedPrecondition(`version ${version.id} of key ${keyId} is DESTROYED; its ciphertexts can never be decrypted again`);
  }
  return { key, version };
}

function requireMaterial(version: Readonly<VersionRecord>) {
  if (version.material === undefined) {
    throw failedPrecondition(`version ${version.id} has no key material (it was created without an HSM keystore)`);
  }
  return version.material;
}

function additionalData(keyId: string, versionId: string, aadContext: Buffer): Buffer {
  return Buffer.concat([AAD_DOMAIN, Buffer.from(`${keyId}\0${versionId}\0`, 'ascii'), aadContext]);
}

export function encodeCiphertext(versionId: string, nonce: Buffer, sealed: Buffer): Buffer {
  const id = Buffer.from(versionId, 'ascii');
  return Buffer.concat([Buffer.from([FORMAT_V1, id.length]), id, nonce, sealed]);
}

export function decodeCiphertext(bytes: Buffer): { versionId: string; nonce: Buffer; sealed: Buffer } {
  const malformed = () => new KmsError('INVALID_ARGUMENT', 'ciphertext: is malformed or truncated', [{ field: 'ciphertext', description: 'is malformed or truncated' }]);
  if (bytes.length < 2 || bytes[0] !== FORMAT_V1) throw malformed();
  const idLength = bytes[1] ?? 0;
  const headerLength = 2 + idLength + NONCE_BYTES;
  if (idLength < 1 || idLength > 50 || bytes.length < headerLength + TAG_BYTES) throw malformed();
  const versionId = bytes.subarray(2, 2 + idLength).toString('ascii');
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(versionId)) throw malformed();
  return {
    versionId,
    nonce: bytes.subarray(2 + idLength, headerLength),
    sealed: bytes.subarray(headerLength),
  };
}
