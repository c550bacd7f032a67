/**
 * `--keystore software`: a development-only `Keystore` for machines without any PKCS#11 module.
 * The root key is a file (`<dataDir>/software-root.key`, mode 0600) and all crypto runs in this
 * process with node:crypto, so it offers none of an HSM's protection: anyone who can read the data
 * dir can decrypt everything. It keeps the same formats and semantics as the PKCS#11 keystore
 * (RFC 5649 wrapped version keys, AES-GCM with 96-bit nonces and 128-bit tags) so that the rest of
 * the daemon cannot tell the difference, and it refuses AES_256_HSM, whose whole point is an HSM.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createCipheriv, createDecipheriv, createHmac, randomBytes as cryptoRandomBytes } from 'node:crypto';
import path from 'node:path';
import { KmsError } from '../domain/errors.js';
import type { Algorithm, MaterialRef } from '../domain/model.js';
import type { AuditAnchor, AuditAnchorStore, AuditKeyring, Keystore, KeystoreIdentity, SealedBytes } from '../domain/ports.js';
import { writeSecretFile } from './secret-file.js';
import {
  KEY_BYTES,
  WRAP_FORMAT,
  checkRandomLength,
  checkRefMatchesAlgorithm,
  freshNonce,
  decodeWrapped,
  encodeWrapped,
  gcmOpenInProcess,
  gcmSealInProcess,
  materialDestroyed,
  type KeystoreLogger,
} from './material.js';

/** Root key file name inside the data dir. */
export const SOFTWARE_ROOT_KEY_FILE = 'software-root.key';
/** The audit chain's HMAC key, a file like the root key (development only). */
export const SOFTWARE_AUDIT_KEY_FILE = 'software-audit.key';
/** The audit chain's head anchor; in a file, where an HSM would keep a token object. */
export const SOFTWARE_AUDIT_ANCHOR_FILE = 'software-audit-anchor.json';

// RFC 5649 §3: the alternative initial value of AES key wrap with padding; node wants it explicitly.
const KWP_IV = Buffer.from('A65959A6', 'hex');
// RFC 3394 §2.2.3.1: the default initial value of AES key wrap without padding.
const KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

function hsmRequired(): KmsError {
  return new KmsError(
    'FAILED_PRECONDITION',
    'AES_256_HSM requires an HSM: kmsd runs with --keystore software (development only); use the default PKCS#11 keystore',
  );
}

function loadOrCreateKey(file: string, what: string, allowCreate: boolean, logger?: KeystoreLogger): Buffer {
  if (!existsSync(file)) {
    if (!allowCreate) throw new KmsError('FAILED_PRECONDITION', `the ${what} ${file} is missing`);
    writeSecretFile(file, `${cryptoRandomBytes(32).toString('base64')}\n`);
    logger?.info(`created ${what} ${file}`);
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) logger?.warn(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) {
    throw new KmsError('FAILED_PRECONDITION', `${file} does not hold a base64 256-bit key; restore it from backup`);
  }
  return key;
}

/** The key check value of an AES key: the first 3 bytes of the encryption of a zero block. */
function aesCheckValue(key: Buffer): string {
  const cipher = createCipheriv('aes-256-ecb', key, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.alloc(16)), cipher.final()]).subarray(0, 3).toString('hex');
}

/** The software `Keystore`; see the file comment for what it does not protect against. */
export class SoftwareKeystore implements Keystore {
  readonly kind = 'software' as const;
  private rootKey: Buffer | undefined;
  // Same role as in the PKCS#11 keystore: a request holding a blob read before destruction
  // cannot use it after.
  private readonly destroyedWrapped = new Set<string>();

  private readonly checkValue: string;

  /** Use `openSoftwareKeystore`. */
  constructor(
    rootKey: Buffer,
    private readonly dataDir: string,
    private readonly logger?: KeystoreLogger,
  ) {
    this.rootKey = rootKey;
    this.checkValue = aesCheckValue(rootKey);
  }

  identity(): KeystoreIdentity {
    this.root();
    return { kind: 'software', token: null, rootKey: { label: SOFTWARE_ROOT_KEY_FILE, id: '', checkValue: this.checkValue } };
  }

  checkMaterial(ref: MaterialRef, algorithm: Algorithm): void {
    try {
      this.withMaterial(ref, algorithm, () => undefined);
    } catch (err) {
      if (err instanceof KmsError && err.code === 'FAILED_PRECONDITION') throw err;
      throw new KmsError('FAILED_PRECONDITION', `a stored wrapped key version cannot be unwrapped by the software root key ${SOFTWARE_ROOT_KEY_FILE}`);
    }
  }

  auditKeyring(options: { allowCreate: boolean }): AuditKeyring {
    const file = path.join(this.dataDir, SOFTWARE_AUDIT_KEY_FILE);
    const key = loadOrCreateKey(file, 'software audit key', options.allowCreate, this.logger);
    return { description: `software:${SOFTWARE_AUDIT_KEY_FILE}`, mac: (data) => createHmac('sha256', key).update(data).digest() };
  }

  auditAnchorStore(options: { allowCreate: boolean }): AuditAnchorStore {
    const file = path.join(this.dataDir, SOFTWARE_AUDIT_ANCHOR_FILE);
    if (!existsSync(file) && !options.allowCreate) {
      throw new KmsError('FAILED_PRECONDITION', `the audit trail's head anchor ${file} is missing`);
    }
    return {
      description: `software:${SOFTWARE_AUDIT_ANCHOR_FILE}`,
      read: () => {
        if (!existsSync(file)) return null;
        const parsed = JSON.parse(readFileSync(file, 'utf8')) as AuditAnchor;
        return { seq: parsed.seq, mac: parsed.mac, time: parsed.time };
      },
      write: (anchor) => writeSecretFile(file, `${JSON.stringify(anchor)}\n`, { replace: true }),
    };
  }

  createVersionMaterial(_versionId: string, algorithm: Algorithm): MaterialRef {
    if (algorithm === 'AES_256_HSM') throw hsmRequired();
    const material = cryptoRandomBytes(KEY_BYTES[algorithm]);
    try {
      const cipher = createCipheriv('id-aes256-wrap-pad', this.root(), KWP_IV);
      const wrapped = Buffer.concat([cipher.update(material), cipher.final()]);
      return { kind: 'wrapped', wrapped: encodeWrapped(WRAP_FORMAT.AES_KEY_WRAP_PAD, wrapped) };
    } finally {
      material.fill(0);
    }
  }

  seal(ref: MaterialRef, algorithm: Algorithm, plaintext: Buffer, aad: Buffer): SealedBytes {
    const nonce = freshNonce();
    return { nonce, ciphertext: this.withMaterial(ref, algorithm, (key) => gcmSealInProcess(key, nonce, plaintext, aad)) };
  }

  open(ref: MaterialRef, algorithm: Algorithm, sealed: SealedBytes, aad: Buffer): Buffer {
    return this.withMaterial(ref, algorithm, (key) => gcmOpenInProcess(key, sealed, aad));
  }

  destroyVersionMaterial(ref: MaterialRef): void {
    this.root();
    if (ref.kind === 'wrapped') this.destroyedWrapped.add(ref.wrapped);
  }

  randomBytes(length: number): Buffer {
    this.root();
    checkRandomLength(length);
    return cryptoRandomBytes(length);
  }

  close(): void {
    this.rootKey?.fill(0);
    this.rootKey = undefined;
  }

  private root(): Buffer {
    if (this.rootKey === undefined) throw new KmsError('UNAVAILABLE', 'keystore is closed');
    return this.rootKey;
  }

  /** Unwraps per call (a few microseconds) and zeroes the key right after, instead of caching it. */
  private withMaterial<T>(ref: MaterialRef, algorithm: Algorithm, use: (key: Buffer) => T): T {
    const root = this.root();
    if (algorithm === 'AES_256_HSM' || ref.kind === 'token') throw hsmRequired();
    checkRefMatchesAlgorithm(ref, algorithm);
    if (this.destroyedWrapped.has(ref.wrapped)) throw materialDestroyed();
    const { format, wrappedKey } = decodeWrapped(ref.wrapped, algorithm);
    let key: Buffer;
    try {
      const decipher =
        format === WRAP_FORMAT.AES_KEY_WRAP_PAD
          ? createDecipheriv('id-aes256-wrap-pad', root, KWP_IV)
          : createDecipheriv('id-aes256-wrap', root, KW_IV);
      key = Buffer.concat([decipher.update(wrappedKey), decipher.final()]);
    } catch {
      throw new KmsError('INTERNAL', 'key version material cannot be unwrapped by the software root key');
    }
    try {
      return use(key);
    } finally {
      key.fill(0);
    }
  }
}

/** Options of `openSoftwareKeystore`. */
export interface SoftwareKeystoreOptions {
  dataDir: string;
  logger?: KeystoreLogger;
  /** Whether a missing root key file may be created (only for an empty store). Default true. */
  allowCreate?: boolean;
}

/**
 * Opens the development-only software keystore, creating its root key on first start. Logs a
 * warning every time: this must never be what a production daemon runs on by accident.
 */
export function openSoftwareKeystore(options: SoftwareKeystoreOptions): SoftwareKeystore {
  const file = path.join(path.resolve(options.dataDir), SOFTWARE_ROOT_KEY_FILE);
  options.logger?.warn(
    `software keystore (development only): the root key is the plain file ${file} and keys are handled in process memory`,
  );
  const dataDir = path.resolve(options.dataDir);
  return new SoftwareKeystore(loadOrCreateKey(file, 'software root key', options.allowCreate ?? true, options.logger), dataDir, options.logger);
}
