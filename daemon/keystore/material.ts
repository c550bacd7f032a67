/**
 * What both keystore adapters agree on: key sizes, the AES-GCM framing, the persisted format of a
 * wrapped version key, and the errors a caller sees. No PKCS#11 here, so the software keystore
 * and unit tests can use it without loading the native addon.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { KmsError } from '../domain/errors.js';
import type { Algorithm, MaterialRef } from '../domain/model.js';
import type { SealedBytes } from '../domain/ports.js';

/** GCM nonce length: 96 bits, the size GCM is specified for (longer nonces get hashed). */
export const NONCE_BYTES = 12;
/** GCM tag length: the full 128 bits; shorter tags weaken forgery resistance. */
export const TAG_BYTES = 16;

/** Random bytes are drawn from OpenSSL's CSPRNG this many at a time (as node's randomUUID does). */
const NONCE_POOL_BYTES = 16 * 1024;
let noncePool = Buffer.alloc(0);
let noncePoolOffset = 0;

/**
 * A fresh random 96-bit GCM nonce. Drawn from a pool refilled from the CSPRNG 16 KiB at a time:
 * one RAND_bytes call per ~1,365 nonces instead of one per call, with the same randomness. Each
 * nonce is a copy, so no two callers ever share bytes.
 */
export function freshNonce(): Buffer {
  if (noncePoolOffset + NONCE_BYTES > noncePool.length) {
    noncePool = randomFillSync(Buffer.allocUnsafe(NONCE_POOL_BYTES));
    noncePoolOffset = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(noncePoolOffset, noncePoolOffset + NONCE_BYTES));
  // Used bytes are wiped, so the pool never holds a nonce that is already out.
  noncePool.fill(0, noncePoolOffset, noncePoolOffset + NONCE_BYTES);
  noncePoolOffset += NONCE_BYTES;
  return nonce;
}

/** Key length in bytes of each version algorithm. */
export const KEY_BYTES: Readonly<Record<Algorithm, number>> = {
  AES_128: 16,
  AES_192: 24,
  AES_256: 32,
  AES_256_HSM: 32,
};

/**
 * First byte of a persisted wrapped key: which wrap mechanism produced the rest. Both are RFC 3394
 * / RFC 5649 AES key wrap under the root key; the byte exists because a PKCS#11 module without
 * CKM_AES_KEY_WRAP_PAD makes unpadded blobs that are otherwise indistinguishable, and a token can
 * later move to a module that has it.
 */
export const WRAP_FORMAT = {
  /** RFC 5649, AES key wrap with padding (CKM_AES_KEY_WRAP_PAD, node's id-aes256-wrap-pad). */
  AES_KEY_WRAP_PAD: 1,
  /** RFC 3394, AES key wrap without padding (CKM_AES_KEY_WRAP). */
  AES_KEY_WRAP: 2,
} as const;
export type WrapFormat = (typeof WRAP_FORMAT)[keyof typeof WRAP_FORMAT];

/** Both wrap modes add one 64-bit integrity block to key sizes that are multiples of 8. */
const WRAP_OVERHEAD_BYTES = 8;

/** Serializes a wrapped key for `MaterialRef.wrapped`. */
export function encodeWrapped(format: WrapFormat, wrappedKey: Buffer): string {
  return Buffer.concat([Buffer.from([format]), wrappedKey]).toString('base64');
}

/**
 * Parses `MaterialRef.wrapped` and checks that its size fits `algorithm`, so that a version whose
 * stored algorithm and material disagree fails loudly instead of running AES with the wrong key
 * size. A malformed blob is corruption of our own store, hence INTERNAL and not the caller's fault.
 */
export function decodeWrapped(wrapped: string, algorithm: Algorithm): { format: WrapFormat; wrappedKey: Buffer } {
  const bytes = Buffer.from(wrapped, 'base64');
  const format = bytes[0];
  const wrappedKey = bytes.subarray(1);
  if (format !== WRAP_FORMAT.AES_KEY_WRAP_PAD && format !== WRAP_FORMAT.AES_KEY_WRAP) {
    throw new KmsError('INTERNAL', 'stored key version material has an unknown format');
  }
  if (wrappedKey.length !== KEY_BYTES[algorithm] + WRAP_OVERHEAD_BYTES) {
    throw new KmsError('INTERNAL', `stored key version material does not match algorithm ${algorithm}`);
  }
  return { format, wrappedKey };
}

/**
 * The one error `open` reports for any authentication failure: wrong key, wrong AAD, tampered
 * nonce or ciphertext. Deliberately says nothing about which, so it cannot serve as an oracle.
 */
export function authenticationFailed(): KmsError {
  return new KmsError('INVALID_ARGUMENT', 'ciphertext authentication failed');
}

/** The version's material was erased by `destroyVersionMaterial` (or never existed here). */
export function materialDestroyed(): KmsError {
  return new KmsError('FAILED_PRECONDITION', 'key version material has been destroyed');
}

/** Rejects nonces and ciphertexts that cannot be GCM output before any key is touched. */
export function checkSealedShape(sealed: SealedBytes): void {
  if (sealed.nonce.length !== NONCE_BYTES || sealed.ciphertext.length < TAG_BYTES) {
    throw authenticationFailed();
  }
}

/** Checks that a reference is of the kind the algorithm needs (AES_256_HSM ⇔ token object). */
export function checkRefMatchesAlgorithm(ref: MaterialRef, algorithm: Algorithm): void {
  const wantsToken = algorithm === 'AES_256_HSM';
  if (wantsToken !== (ref.kind === 'token')) {
    throw new KmsError('INTERNAL', `key version material of kind '${ref.kind}' cannot serve algorithm ${algorithm}`);
  }
}

/** Validates the argument of `Keystore.randomBytes`. */
export function checkRandomLength(length: number): void {
  // Data keys are at most 64 bytes; the cap keeps a bad caller from asking the HSM for gigabytes.
  if (!Number.isInteger(length) || length < 0 || length > 65536) {
    throw new KmsError('INVALID_ARGUMENT', `random length must be an integer in [0, 65536], got ${length}`);
  }
}

function gcmCipherName(key: Buffer): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
  switch (key.length) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      throw new KmsError('INTERNAL', 'key version material has an invalid length');
  }
}

/** AES-GCM in process (software keystore only); the tag is appended to the ciphertext. */
export function gcmSealInProcess(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv(gcmCipherName(key), key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Inverse of `gcmSealInProcess`; any failure becomes `authenticationFailed()`. */
export function gcmOpenInProcess(key: Buffer, sealed: SealedBytes, aad: Buffer): Buffer {
  checkSealedShape(sealed);
  const body = sealed.ciphertext.subarray(0, sealed.ciphertext.length - TAG_BYTES);
  const tag = sealed.ciphertext.subarray(sealed.ciphertext.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv(gcmCipherName(key), key, sealed.nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw authenticationFailed();
  }
}

/** The slice of a pino logger the keystores use (a pino `Logger` satisfies it). */
export interface KeystoreLogger {
  info(message: string): void;
  warn(message: string): void;
}
