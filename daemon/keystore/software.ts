/**
 * `--keystore software`: a development-only `Keystore` for machines without any PKCS#11 module.
 * The root key is a file (`<dataDir>/software-root.key`, mode 0600) and all crypto runs in this
 * process with node:crypto, so it offers none of an HSM's protection: anyone who can read the data
 * dir can decrypt everything. It keeps the same formats and semantics as the PKCS#11 keystore
 * (RFC 5649 wrapped version keys, AES-GCM with 96-bit nonces and 128-bit tags) so that the rest of
 * the daemon cannot tell the difference, and it refuses AES_256_HSM, whose whole point is an HSM.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createCipheriv, createDecipheriv, randomBytes as cryptoRandomBytes } from 'node:crypto';
import path from 'node:path';
import { KmsError } from '../domain/errors.js';
import type { Algorithm, MaterialRef } from '../domain/model.js';
import type { Keystore, SealedBytes } from '../domain/ports.js';
import { writeSecretFile } from './secret-file.js';
import {
  KEY_BYTES,
  NONCE_BYTES,
  WRAP_FORMAT,
  checkRandomLength,
  checkRefMatchesAlgorithm,
  decodeWrapped,
  encodeWrapped,
  gcmOpenInProcess,
  gcmSealInProcess,
  materialDestroyed,
  type KeystoreLogger,
} from './material.js';

/** Root key file name inside the data dir. */
export const SOFTWARE_ROOT_KEY_FILE = 'software-root.key';

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

function loadOrCreateRootKey(file: string, logger?: KeystoreLogger): Buffer {
  if (!existsSync(file)) {
    writeSecretFile(file, `${cryptoRandomBytes(32).toString('base64')}\n`);
    logger?.info(`created software root key ${file}`);
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) logger?.warn(`${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) {
    throw new KmsError('FAILED_PRECONDITION', `${file} does not hold a base64 AES-256 key; restore it from backup`);
  }
  return key;
}

/** The software `Keystore`; see the file comment for what it does not protect against. */
export class SoftwareKeystore implements Keystore {
  readonly kind = 'software' as const;
  private rootKey: Buffer | undefined;
  // Same role as in the PKCS#11 keystore: a request holding a blob read before destruction
  // cannot use it after.
  private readonly destroyedWrapped = new Set<string>();

  /** Use `openSoftwareKeystore`. */
  constructor(rootKey: Buffer) {
    this.rootKey = rootKey;
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
    const nonce = cryptoRandomBytes(NONCE_BYTES);
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
  return new SoftwareKeystore(loadOrCreateRootKey(file, options.logger));
}
