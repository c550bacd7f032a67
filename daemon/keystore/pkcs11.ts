/**
 * The PKCS#11 keystore: the default `Keystore`, for SoftHSM2 or any other PKCS#11 module. This is
 * the only file that imports pkcs11js, with the audit anchor's writer thread
 * (./pkcs11-anchor-worker.ts).
 *
 * Layout inside the token:
 * - one root wrapping key (AES-256, sensitive, never extractable, wrap/unwrap only), found by
 *   label at start and created on first start;
 * - one persistent, non-extractable AES-256 object per AES_256_HSM version, labelled
 *   `kms-version:<versionId>`.
 * AES_128/192/256 version keys are generated inside the token and leave it only wrapped by the
 * root key (RFC 5649); the store keeps that blob.
 *
 * Process model (DESIGN §5): the module is loaded and C_Initialize'd once per process and each
 * token is logged in once, whatever number of keystores are opened on it; object handles are
 * cached so that nothing searches the token per operation. Every pkcs11js call is synchronous:
 * its async variants have open native memory bugs, and single-threaded synchronous calls are
 * also what serializes key generation (SoftHSM2 has crash reports under concurrent C_GenerateKey).
 * The one exception is the periodic audit anchor, a token object write of several milliseconds:
 * it runs on a worker thread with its own session (the module is initialized with
 * CKF_OS_LOCKING_OK, so the library locks; a module that cannot lock writes it inline).
 */
import { existsSync, realpathSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createHash, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { GcmParams, Mechanism, PKCS11, Template } from 'pkcs11js';
import { crashPoint } from '../crash-points.js';
import { KmsError } from '../domain/errors.js';
import type { Algorithm, MaterialRef } from '../domain/model.js';
import type { AuditAnchor, AuditAnchorStore, AuditKeyring, Keystore, KeystoreIdentity, SealedBytes } from '../domain/ports.js';
import { BoundedCache } from './bounded-cache.js';
import {
  KEY_BYTES,
  TAG_BYTES,
  WRAP_FORMAT,
  authenticationFailed,
  checkRandomLength,
  checkRefMatchesAlgorithm,
  checkSealedShape,
  freshNonce,
  decodeWrapped,
  encodeWrapped,
  materialDestroyed,
  type KeystoreLogger,
  type WrapFormat,
} from './material.js';

type Handle = Buffer;

/** Label of the root wrapping key unless configured otherwise. */
export const DEFAULT_ROOT_KEY_LABEL = 'kms-root-wrapping-key';

/** Label of the audit chain's HMAC key (a generic secret; sign/verify only). */
export const AUDIT_MAC_KEY_LABEL = 'kms-audit-mac-key';

/** Label of the private data object holding the audit chain's head anchor. */
export const AUDIT_ANCHOR_LABEL = 'kms-audit-anchor';

/** Prefix of the label of AES_256_HSM version objects; the version id follows. */
export const HSM_VERSION_LABEL_PREFIX = 'kms-version:';

/** PKCS#11 token labels are 32 bytes, blank padded. */
const TOKEN_LABEL_BYTES = 32;

/** Options of `openPkcs11Keystore`. */
export interface Pkcs11KeystoreOptions {
  /** Path of the PKCS#11 shared library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  modulePath: string;
  /** Label of the token to use (at most 32 bytes of UTF-8). */
  tokenLabel: string;
  /** User PIN of the token. */
  pin: string;
  /**
   * Security officer PIN. Only given by the SoftHSM2 provisioning: when present and no token
   * carries `tokenLabel`, a free slot is initialized with that label and `pin` as user PIN.
   * Without it a missing token is a configuration error (we never initialize a real HSM).
   */
  soPin?: string;
  /** Label of the root wrapping key; defaults to DEFAULT_ROOT_KEY_LABEL. */
  rootKeyLabel?: string;
  /**
   * Whether a missing token (with `soPin`) or a missing root wrapping key may be created. kmsd
   * allows it only for an empty store: a store that holds wrapped material depends on the token
   * and root key it was made with, and a fresh one would silently make every ciphertext
   * undecryptable. Default true (a fresh token for tests and tools).
   */
  allowCreate?: boolean;
  /**
   * Called after every call that writes the token (a new or destroyed token object): a module
   * whose storage is not durable by itself (SoftHSM2's files) syncs it here, before the store
   * records anything that depends on the write.
   */
  afterTokenWrite?: () => void;
  /** Bounds of the cache of unwrapped version keys (HSM session objects); see UNWRAPPED_CACHE. */
  unwrappedKeyCache?: { maxEntries?: number; ttlMs?: number };
  logger?: KeystoreLogger;
}

/**
 * Why wrapped versions are served from a cache of unwrapped *HSM session objects*, and not by
 * unwrapping per operation or by holding plaintext keys in process memory. Measured on SoftHSM2
 * 2.6.1 (Node 20, one core, AES-GCM of 64 B):
 *   unwrap + encrypt + destroy per operation   ≈  6,800 ops/s
 *   cached session-object handle, GCM in HSM   ≈ 67,000 ops/s
 *   plaintext key in process, node:crypto GCM  ≈ 104,000 ops/s
 * The handle cache is 10× faster than unwrapping per call and within 1.6× of node:crypto, far
 * above what the HTTP layer can feed it, while the key stays sensitive and non-extractable inside
 * the HSM: the daemon never has a code path that reads key material out of the token. Entries
 * are bounded in number and absolute lifetime and are destroyed in the HSM on eviction.
 */
const UNWRAPPED_CACHE = { maxEntries: 1024, ttlMs: 5 * 60_000 };

/** Idle operation sessions kept open; calls are synchronous, so more than one is rarely used. */
const MAX_IDLE_SESSIONS = 4;

const {
  CKA_APPLICATION,
  CKA_CHECK_VALUE,
  CKA_CLASS,
  CKA_DECRYPT,
  CKA_DERIVE,
  CKA_ENCRYPT,
  CKA_EXTRACTABLE,
  CKA_ID,
  CKA_KEY_TYPE,
  CKA_LABEL,
  CKA_MODIFIABLE,
  CKA_PRIVATE,
  CKA_SENSITIVE,
  CKA_SIGN,
  CKA_TOKEN,
  CKA_UNWRAP,
  CKA_VALUE,
  CKA_VALUE_LEN,
  CKA_VERIFY,
  CKA_WRAP,
  CKF_RW_SESSION,
  CKF_SERIAL_SESSION,
  CKF_TOKEN_INITIALIZED,
  CKF_USER_PIN_INITIALIZED,
  CKK_AES,
  CKK_GENERIC_SECRET,
  CKM_AES_GCM,
  CKM_AES_KEY_GEN,
  CKM_AES_KEY_WRAP,
  CKM_AES_KEY_WRAP_PAD,
  CKM_GENERIC_SECRET_KEY_GEN,
  CKM_SHA256_HMAC,
  CKO_DATA,
  CKO_SECRET_KEY,
  CKU_SO,
  CKU_USER,
  CK_PARAMS_AES_GCM_v240,
} = pkcs11js;

// Return codes that mean "the HSM or our session is gone", as opposed to "this input is bad".
const UNAVAILABLE_CODES = new Set<number>([
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_DEVICE_MEMORY,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_HOST_MEMORY,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_SESSION_COUNT,
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
]);
const HANDLE_INVALID_CODES = new Set<number>([pkcs11js.CKR_OBJECT_HANDLE_INVALID, pkcs11js.CKR_KEY_HANDLE_INVALID]);

/** The CKR_* return value carried by a pkcs11js error, if it is one. */
function returnCode(err: unknown): { code: number; name: string } | undefined {
  if (err instanceof Error && /^CKR_\w+/.test(err.message) && typeof (err as { code?: unknown }).code === 'number') {
    return { code: (err as Error & { code: number }).code, name: err.message };
  }
  return undefined;
}

/** Maps a failure of a PKCS#11 call to a domain error (never leaks a raw pkcs11js error). */
function hsmError(err: unknown, doing: string): KmsError {
  if (err instanceof KmsError) return err;
  const rv = returnCode(err);
  if (rv === undefined) {
    return new KmsError('INTERNAL', `HSM ${doing} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (UNAVAILABLE_CODES.has(rv.code)) return new KmsError('UNAVAILABLE', `HSM unavailable during ${doing}: ${rv.name}`);
  return new KmsError('INTERNAL', `HSM ${doing} failed: ${rv.name}`);
}

function ignoreErrors(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best-effort cleanup: the object or session may already be gone, and the caller has a
    // more useful error (or none) to report.
  }
}

function trimLabel(label: string): string {
  return label.replace(/[\s\0]+$/u, '');
}

function checkTokenLabel(label: string): void {
  if (label === '' || label !== label.trim() || Buffer.byteLength(label, 'utf8') > TOKEN_LABEL_BYTES) {
    throw new KmsError('FAILED_PRECONDITION', `token label '${label}' must be 1-32 bytes without leading or trailing blanks`);
  }
}

function readBool(value: Buffer | undefined): boolean {
  return value !== undefined && value.length > 0 && value[0] !== 0;
}

function readUlong(value: Buffer | undefined): number {
  if (value === undefined) return 0;
  // CK_ULONG is the platform's unsigned long, in host byte order: 8 bytes on 64-bit Linux.
  if (value.length === 8) return Number(value.readBigUInt64LE(0));
  if (value.length === 4) return value.readUInt32LE(0);
  return 0;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

// Attributes every secret key we create shares: no uses beyond the ones switched on explicitly.
const NO_OTHER_USES: Template = [
  { type: CKA_SIGN, value: false },
  { type: CKA_VERIFY, value: false },
  { type: CKA_DERIVE, value: false },
];

function aesKeyTemplate(extra: Template, modifiable = true): Template {
  return [
    { type: CKA_CLASS, value: CKO_SECRET_KEY },
    { type: CKA_KEY_TYPE, value: CKK_AES },
    ...NO_OTHER_USES,
    ...extra,
    // Last: SoftHSM2 applies a template in order, and after CKA_MODIFIABLE=false it refuses the
    // attributes that follow (CKR_ATTRIBUTE_READ_ONLY) when unwrapping.
    { type: CKA_MODIFIABLE, value: modifiable },
  ];
}

function rootKeyTemplate(label: string): Template {
  return aesKeyTemplate([
    { type: CKA_VALUE_LEN, value: 32 },
    { type: CKA_TOKEN, value: true },
    { type: CKA_PRIVATE, value: true },
    { type: CKA_SENSITIVE, value: true },
    { type: CKA_EXTRACTABLE, value: false },
    { type: CKA_WRAP, value: true },
    { type: CKA_UNWRAP, value: true },
    { type: CKA_ENCRYPT, value: false },
    { type: CKA_DECRYPT, value: false },
    { type: CKA_LABEL, value: label },
    { type: CKA_ID, value: Buffer.from(label, 'utf8') },
    // Not modifiable: nobody can later switch on CKA_DECRYPT and decrypt wrapped blobs directly.
  ], false);
}

/** A version key that exists only long enough to be wrapped: extractable, but only by wrapping. */
function ephemeralVersionKeyTemplate(algorithm: Algorithm): Template {
  return aesKeyTemplate([
    { type: CKA_VALUE_LEN, value: KEY_BYTES[algorithm] },
    { type: CKA_TOKEN, value: false },
    { type: CKA_PRIVATE, value: true },
    // Sensitive: C_GetAttributeValue(CKA_VALUE) is refused, so wrapping is the only way out.
    { type: CKA_SENSITIVE, value: true },
    { type: CKA_EXTRACTABLE, value: true },
    { type: CKA_ENCRYPT, value: false },
    { type: CKA_DECRYPT, value: false },
    { type: CKA_WRAP, value: false },
    { type: CKA_UNWRAP, value: false },
  ]);
}

/** The working copy of a wrapped version key: a session object, usable but never extractable. */
const UNWRAPPED_KEY_TEMPLATE: Template = aesKeyTemplate([
  { type: CKA_TOKEN, value: false },
  { type: CKA_PRIVATE, value: true },
  { type: CKA_SENSITIVE, value: true },
  { type: CKA_EXTRACTABLE, value: false },
  { type: CKA_ENCRYPT, value: true },
  { type: CKA_DECRYPT, value: true },
  { type: CKA_WRAP, value: false },
  { type: CKA_UNWRAP, value: false },
], false);

function hsmVersionKeyTemplate(label: string, versionId: string): Template {
  return aesKeyTemplate([
    { type: CKA_VALUE_LEN, value: 32 },
    { type: CKA_TOKEN, value: true },
    { type: CKA_PRIVATE, value: true },
    { type: CKA_SENSITIVE, value: true },
    { type: CKA_EXTRACTABLE, value: false },
    { type: CKA_ENCRYPT, value: true },
    { type: CKA_DECRYPT, value: true },
    { type: CKA_WRAP, value: false },
    { type: CKA_UNWRAP, value: false },
    { type: CKA_LABEL, value: label },
    { type: CKA_ID, value: Buffer.from(versionId, 'utf8') },
  ], false);
}

/** The audit MAC key: HMAC-SHA256 inside the token, never extractable, nothing but sign/verify. */
function auditMacKeyTemplate(label: string): Template {
  return [
    { type: CKA_CLASS, value: CKO_SECRET_KEY },
    { type: CKA_KEY_TYPE, value: CKK_GENERIC_SECRET },
    { type: CKA_VALUE_LEN, value: 32 },
    { type: CKA_TOKEN, value: true },
    { type: CKA_PRIVATE, value: true },
    { type: CKA_SENSITIVE, value: true },
    { type: CKA_EXTRACTABLE, value: false },
    { type: CKA_SIGN, value: true },
    { type: CKA_VERIFY, value: true },
    { type: CKA_ENCRYPT, value: false },
    { type: CKA_DECRYPT, value: false },
    { type: CKA_WRAP, value: false },
    { type: CKA_UNWRAP, value: false },
    { type: CKA_DERIVE, value: false },
    { type: CKA_LABEL, value: label },
    { type: CKA_ID, value: Buffer.from(label, 'utf8') },
    { type: CKA_MODIFIABLE, value: false },
  ];
}

function anchorObjectTemplate(anchor: AuditAnchor): Template {
  return [
    { type: CKA_CLASS, value: CKO_DATA },
    { type: CKA_TOKEN, value: true },
    { type: CKA_PRIVATE, value: true },
    { type: CKA_LABEL, value: AUDIT_ANCHOR_LABEL },
    { type: CKA_APPLICATION, value: 'kmsd' },
    { type: CKA_VALUE, value: Buffer.from(JSON.stringify(anchor), 'utf8') },
  ];
}

function parseAnchor(value: Buffer | undefined): AuditAnchor | null {
  if (value === undefined) return null;
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<AuditAnchor>;
    if (typeof parsed.seq === 'number' && typeof parsed.mac === 'string' && typeof parsed.time === 'string') {
      return { seq: parsed.seq, mac: parsed.mac, time: parsed.time };
    }
  } catch {
    // fall through: an object we cannot read is reported like a missing one, by the caller
  }
  return null;
}

function gcmMechanism(nonce: Buffer, aad: Buffer): Mechanism {
  // The PKCS#11 2.40 CK_GCM_PARAMS (with ulIvBits), which is what SoftHSM2 2.6 and current HSMs read.
  const parameter: GcmParams = {
    type: CK_PARAMS_AES_GCM_v240,
    iv: nonce,
    ivBits: nonce.length * 8,
    aad,
    tagBits: TAG_BYTES * 8,
  };
  return { mechanism: CKM_AES_GCM, parameter };
}

function wrapMechanism(format: WrapFormat): Mechanism {
  return { mechanism: format === WRAP_FORMAT.AES_KEY_WRAP_PAD ? CKM_AES_KEY_WRAP_PAD : CKM_AES_KEY_WRAP };
}

/** A loaded, initialized PKCS#11 module; one per module path per process. */
interface LoadedModule {
  readonly key: string;
  readonly path: string;
  readonly p11: PKCS11;
  /** False when someone else in this process (another module instance) initialized it first. */
  readonly initializedHere: boolean;
  /**
   * Initialized with CKF_OS_LOCKING_OK (or found initialized: every initializer in kmsd asks for
   * it), so a second thread may call in.
   */
  readonly threadSafe: boolean;
  readonly tokens: Map<string, TokenSession>;
  refs: number;
}

const loadedModules = new Map<string, LoadedModule>();

function acquireModule(modulePath: string): LoadedModule {
  if (!existsSync(modulePath)) {
    throw new KmsError(
      'FAILED_PRECONDITION',
      `PKCS#11 module not found at ${modulePath}: install SoftHSM2 (apt-get install softhsm2), ` +
        'configure the path of your HSM vendor module, or start with --keystore software (development only)',
    );
  }
  const key = realpathSync(modulePath);
  const loaded = loadedModules.get(key);
  if (loaded !== undefined) {
    loaded.refs += 1;
    return loaded;
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(modulePath);
  } catch (err) {
    throw new KmsError(
      'FAILED_PRECONDITION',
      `cannot load PKCS#11 module ${modulePath}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  let initializedHere = true;
  let threadSafe = true;
  try {
    try {
      p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (returnCode(err)?.code !== pkcs11js.CKR_CANT_LOCK) throw err;
      // A module that cannot lock for threads: everything stays on the main thread.
      threadSafe = false;
      p11.C_Initialize();
    }
  } catch (err) {
    // Cryptoki state is per process, not per pkcs11js object: a second module instance in the same
    // process (jest runs several test files in one worker, each with its own module registry)
    // finds it initialized already, and shares it.
    if (returnCode(err)?.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      initializedHere = false;
    } else {
      ignoreErrors(() => p11.close());
      throw new KmsError(
        'FAILED_PRECONDITION',
        `C_Initialize of PKCS#11 module ${modulePath} failed (${returnCode(err)?.name ?? String(err)}); ` +
          `for SoftHSM2 check the config file (SOFTHSM2_CONF=${process.env.SOFTHSM2_CONF ?? 'unset'})`,
      );
    }
  }
  const created: LoadedModule = { key, path: modulePath, p11, initializedHere, threadSafe, tokens: new Map(), refs: 1 };
  loadedModules.set(key, created);
  return created;
}

function releaseModule(module: LoadedModule): void {
  module.refs -= 1;
  if (module.refs > 0) return;
  loadedModules.delete(module.key);
  if (module.initializedHere) ignoreErrors(() => module.p11.C_Finalize());
  ignoreErrors(() => module.p11.close());
}

/** The thread that writes audit anchors (./pkcs11-anchor-worker.ts); one job at a time. */
class AnchorWorker {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly jobs = new Map<number, { resolve: (handle: Handle) => void; reject: (err: Error) => void }>();

  constructor(modulePath: string, slot: Handle) {
    this.worker = new Worker(new URL('./pkcs11-anchor-worker.js', import.meta.url), { workerData: { modulePath, slot } });
    this.worker.unref();
    this.worker.on('message', (reply: { id: number; handle?: Uint8Array; error?: string }) => {
      const job = this.jobs.get(reply.id);
      if (job === undefined) return;
      this.jobs.delete(reply.id);
      if (reply.handle !== undefined) job.resolve(Buffer.from(reply.handle));
      else job.reject(new Error(reply.error ?? 'the anchor writer failed'));
    });
    const failAll = (err: Error) => {
      for (const job of this.jobs.values()) job.reject(err);
      this.jobs.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => failAll(new Error(`the anchor writer thread exited (${code})`)));
  }

  write(value: Buffer, label: string, destroy: Handle[]): Promise<Handle> {
    const id = this.nextId++;
    return new Promise<Handle>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      this.worker.postMessage({ id, value, label, destroy });
    });
  }

  stop(): void {
    void this.worker.terminate();
  }
}

/**
 * One logged-in token, shared by all keystores opened on it in this process. Holds the login
 * session for its whole life: PKCS#11 logs the user out when an application's last session on a
 * token closes, and the cached unwrapped keys are objects of that session.
 */
class TokenSession {
  refs = 1;
  private readonly p11: PKCS11;
  private readonly idleSessions: Handle[] = [];
  /** Handles of AES_256_HSM objects by label; filled on first use, never searched per operation. */
  private readonly tokenObjects = new Map<string, Handle>();
  /** Labels destroyed by this process, so that a late request fails fast instead of searching. */
  private readonly destroyedLabels = new Set<string>();
  /**
   * Wrapped blobs destroyed by this process. The durable erasure of a wrapped version is the store
   * dropping its blob (DESIGN §4); this stops a request that read the blob just before from using
   * it afterwards.
   */
  private readonly destroyedWrapped = new Set<string>();
  private readonly unwrapped: BoundedCache<string, Handle>;
  private generating = false;
  /** See Pkcs11KeystoreOptions.afterTokenWrite. */
  afterTokenWrite: (() => void) | undefined;

  constructor(
    readonly module: LoadedModule,
    readonly label: string,
    readonly rootKeyLabel: string,
    private readonly slot: Handle,
    private readonly loginSession: Handle,
    private readonly pinDigest: Buffer,
    private readonly rootKey: Handle,
    private readonly wrapFormat: WrapFormat,
    private readonly hasWrapPad: boolean,
    cache: { maxEntries: number; ttlMs: number },
    /** What the store records so that it can never be paired with another token or root key. */
    readonly identity: KeystoreIdentity,
  ) {
    this.p11 = module.p11;
    this.unwrapped = new BoundedCache<string, Handle>({
      ...cache,
      onEvict: (handle) => ignoreErrors(() => this.p11.C_DestroyObject(this.loginSession, handle)),
    });
  }

  pinMatches(pin: string): boolean {
    return timingSafeEqual(sha256(pin), this.pinDigest);
  }

  createVersionMaterial(versionId: string, algorithm: Algorithm): MaterialRef {
    if (versionId === '') throw new KmsError('INTERNAL', 'createVersionMaterial needs a version id');
    // Synchronous calls on one JS thread cannot overlap; the flag turns any future regression
    // (an await slipped in between) into an error instead of a SoftHSM2 crash.
    if (this.generating) throw new KmsError('INTERNAL', 'concurrent key generation');
    this.generating = true;
    try {
      return algorithm === 'AES_256_HSM' ? this.createHsmVersion(versionId) : this.createWrappedVersion(algorithm);
    } finally {
      this.generating = false;
    }
  }

  seal(ref: MaterialRef, algorithm: Algorithm, plaintext: Buffer, aad: Buffer): SealedBytes {
    checkRefMatchesAlgorithm(ref, algorithm);
    const key = this.operationKey(ref, algorithm);
    // The nonce is public and only has to be unique: OpenSSL's CSPRNG gives that without an extra
    // HSM round trip per operation (C_GenerateRandom is kept for secrets: data keys).
    const nonce = freshNonce();
    const ciphertext = this.withSession('encryption', ref, (session) => {
      this.p11.C_EncryptInit(session, gcmMechanism(nonce, aad), key);
      // A zero-length C_Encrypt is refused (CKR_ARGUMENTS_BAD) by pkcs11js/SoftHSM2; the final
      // call alone produces the tag, which is all GCM outputs for an empty message.
      if (plaintext.length === 0) return this.p11.C_EncryptFinal(session, Buffer.alloc(TAG_BYTES));
      return this.p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + TAG_BYTES));
    });
    if (ciphertext.length !== plaintext.length + TAG_BYTES) {
      throw new KmsError('INTERNAL', 'HSM returned a GCM ciphertext of unexpected length');
    }
    // pkcs11js returns a view of the output buffer allocated above, which nobody else holds.
    return { nonce, ciphertext };
  }

  open(ref: MaterialRef, algorithm: Algorithm, sealed: SealedBytes, aad: Buffer): Buffer {
    checkRefMatchesAlgorithm(ref, algorithm);
    checkSealedShape(sealed);
    const key = this.operationKey(ref, algorithm);
    return this.withSession('decryption', ref, (session) => {
      this.p11.C_DecryptInit(session, gcmMechanism(sealed.nonce, aad), key);
      try {
        return this.p11.C_Decrypt(session, sealed.ciphertext, Buffer.alloc(sealed.ciphertext.length));
      } catch (err) {
        const rv = returnCode(err);
        // SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR, others as
        // CKR_ENCRYPTED_DATA_INVALID; anything that is not the HSM being gone is the input's fault.
        if (rv !== undefined && !UNAVAILABLE_CODES.has(rv.code) && !HANDLE_INVALID_CODES.has(rv.code)) {
          throw authenticationFailed();
        }
        throw err;
      }
    });
  }

  destroyVersionMaterial(ref: MaterialRef): void {
    if (ref.kind === 'wrapped') {
      this.destroyedWrapped.add(ref.wrapped);
      this.unwrapped.delete(ref.wrapped);
      return;
    }
    if (this.destroyedLabels.has(ref.label)) return;
    const cached = this.tokenObjects.get(ref.label);
    const handles = cached !== undefined ? [cached] : this.findKeysByLabel(ref.label);
    this.withSession('key destruction', undefined, (session) => {
      for (const handle of handles) {
        try {
          this.p11.C_DestroyObject(session, handle);
        } catch (err) {
          // Already gone (destroyed by an earlier run or by hand): that is the state we want.
          if (!HANDLE_INVALID_CODES.has(returnCode(err)?.code ?? -1)) throw err;
        }
      }
    });
    this.tokenObjects.delete(ref.label);
    this.destroyedLabels.add(ref.label);
    this.afterTokenWrite?.();
  }

  randomBytes(length: number): Buffer {
    checkRandomLength(length);
    if (length === 0) return Buffer.alloc(0);
    return this.withSession('random generation', undefined, (s) => this.p11.C_GenerateRandom(s, Buffer.alloc(length)));
  }

  checkMaterial(ref: MaterialRef, algorithm: Algorithm): void {
    checkRefMatchesAlgorithm(ref, algorithm);
    if (ref.kind === 'token') {
      if (this.findKeysByLabel(ref.label).length !== 1) {
        throw new KmsError('FAILED_PRECONDITION', `HSM object '${ref.label}' is missing from PKCS#11 token '${this.label}'`);
      }
      return;
    }
    try {
      this.operationKey(ref, algorithm);
    } catch (err) {
      if (err instanceof KmsError && err.code === 'UNAVAILABLE') throw err;
      throw new KmsError(
        'FAILED_PRECONDITION',
        `a stored wrapped key version cannot be unwrapped by root key '${this.rootKeyLabel}' of PKCS#11 token '${this.label}'`,
      );
    }
  }

  /**
   * The audit chain's HMAC key, found by label; created only when `allowCreate` (an empty trail).
   * Sign calls go through the session pool like every other operation.
   */
  auditKeyring(allowCreate: boolean): AuditKeyring {
    const found = this.findKeysByLabel(AUDIT_MAC_KEY_LABEL);
    if (found.length > 1) throw new KmsError('FAILED_PRECONDITION', `several objects are labelled '${AUDIT_MAC_KEY_LABEL}' in token '${this.label}'`);
    let key = found[0];
    if (key === undefined) {
      if (!allowCreate) {
        throw new KmsError(
          'FAILED_PRECONDITION',
          `the audit trail's MAC key '${AUDIT_MAC_KEY_LABEL}' is missing from PKCS#11 token '${this.label}' (serial ${this.identity.token?.serial ?? '?'})`,
        );
      }
      key = this.withSession('audit key generation', undefined, (session) =>
        this.p11.C_GenerateKey(session, { mechanism: CKM_GENERIC_SECRET_KEY_GEN }, auditMacKeyTemplate(AUDIT_MAC_KEY_LABEL)),
      );
      this.afterTokenWrite?.();
    }
    const handle = key;
    return {
      description: `pkcs11:${this.label}/${AUDIT_MAC_KEY_LABEL}`,
      mac: (data: Buffer) =>
        this.withSession('audit MAC', undefined, (session) => {
          this.p11.C_SignInit(session, { mechanism: CKM_SHA256_HMAC }, handle);
          return Buffer.from(this.p11.C_Sign(session, data, Buffer.alloc(32)));
        }),
    };
  }

  /**
   * The chain head anchored in the token: a private data object. Data objects' values are
   * read-only once created (SoftHSM2), so a write creates the new object before destroying the
   * old one; a crash in between leaves two, and `read` takes the higher seq.
   */
  auditAnchorStore(allowCreate: boolean): AuditAnchorStore {
    const findAll = (): { handle: Handle; anchor: AuditAnchor | null }[] =>
      this.withSession('audit anchor lookup', undefined, (session) => {
        this.p11.C_FindObjectsInit(session, [
          { type: CKA_CLASS, value: CKO_DATA },
          { type: CKA_LABEL, value: AUDIT_ANCHOR_LABEL },
        ]);
        let handles: Handle[];
        try {
          handles = this.p11.C_FindObjects(session, 8);
        } finally {
          this.p11.C_FindObjectsFinal(session);
        }
        return handles.map((handle) => ({ handle, anchor: parseAnchor(this.p11.C_GetAttributeValue(session, handle, [{ type: CKA_VALUE }])[0]?.value) }));
      });
    const initial = findAll();
    if (initial.length === 0 && !allowCreate) {
      throw new KmsError(
        'FAILED_PRECONDITION',
        `the audit trail's head anchor '${AUDIT_ANCHOR_LABEL}' is missing from PKCS#11 token '${this.label}' (serial ${this.identity.token?.serial ?? '?'})`,
      );
    }
    let objects = initial;
    let inFlight: Promise<void> | undefined;
    const store: AuditAnchorStore = {
      description: `pkcs11:${this.label}/${AUDIT_ANCHOR_LABEL}`,
      read: () => {
        objects = findAll();
        return objects.reduce<AuditAnchor | null>((best, o) => (o.anchor !== null && (best === null || o.anchor.seq > best.seq) ? o.anchor : best), null);
      },
      write: (anchor: AuditAnchor) => {
        this.withSession('audit anchor write', undefined, (session) => {
          const created = this.p11.C_CreateObject(session, anchorObjectTemplate(anchor));
          for (const old of objects) ignoreErrors(() => this.p11.C_DestroyObject(session, old.handle));
          objects = [{ handle: created, anchor }];
        });
      },
    };
    if (!this.module.threadSafe) return store;
    store.writeInBackground = (anchor, done) => {
      const replaced = objects;
      inFlight = this.anchorWorker()
        .write(Buffer.from(JSON.stringify(anchor), 'utf8'), AUDIT_ANCHOR_LABEL, replaced.map((o) => o.handle))
        .then(
          (created) => {
            // (a synchronous write meanwhile replaced `objects`: keep what it made, and ours)
            objects = [...objects.filter((o) => !replaced.includes(o)), { handle: created, anchor }];
            done();
          },
          (err: unknown) => done(hsmError(err, 'audit anchor write')),
        )
        .finally(() => (inFlight = undefined));
    };
    store.settle = async () => {
      await inFlight;
    };
    return store;
  }

  private worker: AnchorWorker | undefined;

  /** The anchor's writer thread, started on first use. */
  private anchorWorker(): AnchorWorker {
    this.worker ??= new AnchorWorker(this.module.path, this.slot);
    return this.worker;
  }

  /** Drops one reference; the last one logs out and releases the module. */
  release(): void {
    this.refs -= 1;
    if (this.refs > 0) return;
    this.module.tokens.delete(this.label);
    // (the trail settles its background anchor write before the keystore closes)
    this.worker?.stop();
    this.worker = undefined;
    this.unwrapped.clear();
    for (const session of this.idleSessions.splice(0)) ignoreErrors(() => this.p11.C_CloseSession(session));
    ignoreErrors(() => this.p11.C_Logout(this.loginSession));
    ignoreErrors(() => this.p11.C_CloseSession(this.loginSession));
    releaseModule(this.module);
  }

  private createWrappedVersion(algorithm: Algorithm): MaterialRef {
    const wrapped = this.withSession('key generation', undefined, (session) => {
      const key = this.p11.C_GenerateKey(session, { mechanism: CKM_AES_KEY_GEN }, ephemeralVersionKeyTemplate(algorithm));
      try {
        return Buffer.from(
          this.p11.C_WrapKey(session, wrapMechanism(this.wrapFormat), this.rootKey, key, Buffer.alloc(KEY_BYTES[algorithm] + 16)),
        );
      } finally {
        ignoreErrors(() => this.p11.C_DestroyObject(session, key));
      }
    });
    return { kind: 'wrapped', wrapped: encodeWrapped(this.wrapFormat, wrapped) };
  }

  private createHsmVersion(versionId: string): MaterialRef {
    const label = HSM_VERSION_LABEL_PREFIX + versionId;
    // Key creation is rare, so one search here is affordable; it keeps labels unique.
    if (this.findKeysByLabel(label).length > 0) {
      throw new KmsError('ALREADY_EXISTS', `HSM object for key version ${versionId} already exists`);
    }
    const handle = this.withSession('key generation', undefined, (session) =>
      this.p11.C_GenerateKey(session, { mechanism: CKM_AES_KEY_GEN }, hsmVersionKeyTemplate(label, versionId)),
    );
    this.tokenObjects.set(label, handle);
    this.destroyedLabels.delete(label);
    // The store records this version once the update commits: the object must be durable first.
    this.afterTokenWrite?.();
    return { kind: 'token', label };
  }

  /** The HSM object an operation uses: a cached token object, or a cached unwrapped copy. */
  private operationKey(ref: MaterialRef, algorithm: Algorithm): Handle {
    if (ref.kind === 'token') {
      if (this.destroyedLabels.has(ref.label)) throw materialDestroyed();
      const cached = this.tokenObjects.get(ref.label);
      if (cached !== undefined) return cached;
      const found = this.findKeysByLabel(ref.label);
      const handle = found[0];
      if (handle === undefined) throw materialDestroyed();
      if (found.length > 1) throw new KmsError('INTERNAL', `several HSM objects are labelled ${ref.label}`);
      this.tokenObjects.set(ref.label, handle);
      return handle;
    }
    if (this.destroyedWrapped.has(ref.wrapped)) throw materialDestroyed();
    // Decoded (a microsecond) even on a cache hit: it checks that the blob fits `algorithm`.
    const { format, wrappedKey } = decodeWrapped(ref.wrapped, algorithm);
    const cached = this.unwrapped.get(ref.wrapped);
    if (cached !== undefined) return cached;
    if (format === WRAP_FORMAT.AES_KEY_WRAP_PAD && !this.hasWrapPad) {
      throw new KmsError('FAILED_PRECONDITION', 'the PKCS#11 module lacks CKM_AES_KEY_WRAP_PAD, which this key version needs');
    }
    let handle: Handle;
    try {
      // Unwrapped into the login session, which lives as long as the cache entry can.
      handle = this.p11.C_UnwrapKey(this.loginSession, wrapMechanism(format), this.rootKey, wrappedKey, UNWRAPPED_KEY_TEMPLATE);
    } catch (err) {
      const rv = returnCode(err);
      if (rv !== undefined && UNAVAILABLE_CODES.has(rv.code)) throw hsmError(err, 'key unwrapping');
      throw new KmsError('INTERNAL', "key version material cannot be unwrapped by this token's root key");
    }
    this.unwrapped.set(ref.wrapped, handle);
    return handle;
  }

  /**
   * Runs `fn` in an operation session from a small pool. A session that saw an error is closed
   * rather than reused: a failed call can leave an operation active in it (CKR_OPERATION_ACTIVE).
   */
  private withSession<T>(doing: string, ref: MaterialRef | undefined, fn: (session: Handle) => T): T {
    let session: Handle;
    try {
      session = this.idleSessions.pop() ?? this.p11.C_OpenSession(this.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    } catch (err) {
      throw hsmError(err, doing);
    }
    let reusable = false;
    try {
      const result = fn(session);
      reusable = true;
      return result;
    } catch (err) {
      if (err instanceof KmsError) throw err;
      if (ref !== undefined && HANDLE_INVALID_CODES.has(returnCode(err)?.code ?? -1)) {
        // A cached handle went stale (object destroyed behind our back): forget it.
        if (ref.kind === 'token') this.tokenObjects.delete(ref.label);
        else this.unwrapped.delete(ref.wrapped);
        throw materialDestroyed();
      }
      throw hsmError(err, doing);
    } finally {
      if (reusable && this.idleSessions.length < MAX_IDLE_SESSIONS) this.idleSessions.push(session);
      else ignoreErrors(() => this.p11.C_CloseSession(session));
    }
  }

  private findKeysByLabel(label: string): Handle[] {
    return this.withSession('object search', undefined, (session) =>
      findObjects(this.p11, session, [
        { type: CKA_CLASS, value: CKO_SECRET_KEY },
        { type: CKA_LABEL, value: label },
      ]),
    );
  }
}

function findObjects(p11: PKCS11, session: Handle, template: Template): Handle[] {
  p11.C_FindObjectsInit(session, template);
  try {
    // Two are enough to tell "unique" from "ambiguous".
    return p11.C_FindObjects(session, 2);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

function tokenSlots(p11: PKCS11): { slot: Handle; label: string; flags: number }[] {
  const slots: { slot: Handle; label: string; flags: number }[] = [];
  for (const slot of p11.C_GetSlotList(true)) {
    try {
      const info = p11.C_GetTokenInfo(slot);
      slots.push({ slot, label: trimLabel(info.label), flags: info.flags });
    } catch {
      // A token another process is creating or removing in a shared SoftHSM2 directory can be
      // unreadable for a moment (CKR_GENERAL_ERROR): it is not ours, and not free to take.
    }
  }
  return slots;
}

function findTokenSlot(module: LoadedModule, label: string): { slot: Handle; flags: number } | undefined {
  const matches = tokenSlots(module.p11).filter((t) => (t.flags & CKF_TOKEN_INITIALIZED) !== 0 && t.label === label);
  if (matches.length > 1) {
    throw new KmsError('FAILED_PRECONDITION', `several PKCS#11 tokens are labelled '${label}' in ${module.path}`);
  }
  return matches[0];
}

/** Initializes a free slot as token `label`, SoftHSM2 style. */
function initializeToken(module: LoadedModule, label: string, soPin: string, logger?: KeystoreLogger): { slot: Handle; flags: number } {
  const p11 = module.p11;
  const free = tokenSlots(p11).find((t) => (t.flags & CKF_TOKEN_INITIALIZED) === 0);
  if (free === undefined) {
    throw new KmsError('FAILED_PRECONDITION', `no PKCS#11 token labelled '${label}' and no free slot to create it in ${module.path}`);
  }
  try {
    // C_InitToken wants the label blank padded to 32 bytes; pkcs11js would pad with NULs.
    p11.C_InitToken(free.slot, soPin, label + ' '.repeat(TOKEN_LABEL_BYTES - Buffer.byteLength(label, 'utf8')));
  } catch (err) {
    throw hsmError(err, `initialization of token '${label}'`);
  }
  // SoftHSM2 renumbers slots after C_InitToken (the new token moves, a new free slot appears):
  // the slot handle we initialized is not reliably the token's slot any more.
  const token = findTokenSlot(module, label);
  if (token === undefined) throw new KmsError('INTERNAL', `token '${label}' not found after initialization`);
  logger?.info(`initialized PKCS#11 token '${label}' in ${module.path}`);
  crashPoint('token-initialized');
  return token;
}

function initializeUserPin(module: LoadedModule, slot: Handle, label: string, soPin: string, pin: string): void {
  const p11 = module.p11;
  const session = p11.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
  try {
    p11.C_Login(session, CKU_SO, soPin);
    try {
      p11.C_InitPIN(session, pin);
      crashPoint('user-pin-initialized');
    } finally {
      ignoreErrors(() => p11.C_Logout(session));
    }
  } catch (err) {
    if (returnCode(err)?.code === pkcs11js.CKR_PIN_INCORRECT) {
      throw new KmsError('FAILED_PRECONDITION', `PKCS#11 SO login failed for token '${label}': wrong SO PIN`);
    }
    throw hsmError(err, `user PIN initialization of token '${label}'`);
  } finally {
    ignoreErrors(() => p11.C_CloseSession(session));
  }
}

function login(p11: PKCS11, session: Handle, label: string, pin: string): void {
  try {
    p11.C_Login(session, CKU_USER, pin);
  } catch (err) {
    const code = returnCode(err)?.code;
    // Login state is per process and token: another module instance in this process (see
    // acquireModule) may have logged in already. Its PIN was right; ours is compared by digest
    // whenever we share a TokenSession.
    if (code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN) return;
    if (code === pkcs11js.CKR_PIN_INCORRECT) {
      throw new KmsError('FAILED_PRECONDITION', `PKCS#11 login failed for token '${label}': wrong PIN`);
    }
    if (code === pkcs11js.CKR_PIN_LOCKED) {
      throw new KmsError('FAILED_PRECONDITION', `PKCS#11 login failed for token '${label}': the PIN is locked`);
    }
    throw hsmError(err, `login to token '${label}'`);
  }
}

/**
 * Finds the root wrapping key by label, or creates it when allowed; refuses a look-alike with
 * weaker attributes. Returns its handle, CKA_ID and key check value (CKA_CHECK_VALUE).
 */
function rootWrappingKey(
  p11: PKCS11,
  session: Handle,
  tokenLabel: string,
  label: string,
  allowCreate: boolean,
  logger?: KeystoreLogger,
): { handle: Handle; id: string; checkValue: string } {
  const found = findObjects(p11, session, [
    { type: CKA_CLASS, value: CKO_SECRET_KEY },
    { type: CKA_LABEL, value: label },
  ]);
  if (found.length > 1) {
    throw new KmsError('FAILED_PRECONDITION', `several objects are labelled '${label}' in token '${tokenLabel}'`);
  }
  const existing = found[0];
  if (existing === undefined) {
    if (!allowCreate) {
      throw new KmsError('FAILED_PRECONDITION', `root wrapping key '${label}' is missing from PKCS#11 token '${tokenLabel}'`);
    }
    const created = p11.C_GenerateKey(session, { mechanism: CKM_AES_KEY_GEN }, rootKeyTemplate(label));
    logger?.info(`created root wrapping key '${label}' in token '${tokenLabel}'`);
    crashPoint('root-key-created');
    return { handle: created, ...keyFingerprint(p11, session, created) };
  }
  const attrs = p11.C_GetAttributeValue(session, existing, [
    { type: CKA_KEY_TYPE },
    { type: CKA_VALUE_LEN },
    { type: CKA_SENSITIVE },
    { type: CKA_EXTRACTABLE },
    { type: CKA_WRAP },
    { type: CKA_UNWRAP },
  ]);
  const [keyType, valueLen, sensitive, extractable, wrap, unwrap] = attrs.map((a) => a.value);
  const ok =
    readUlong(keyType) === CKK_AES &&
    readUlong(valueLen) === 32 &&
    readBool(sensitive) &&
    !readBool(extractable) &&
    readBool(wrap) &&
    readBool(unwrap);
  if (!ok) {
    throw new KmsError(
      'FAILED_PRECONDITION',
      `object '${label}' in token '${tokenLabel}' is not a sensitive, non-extractable AES-256 wrapping key; refusing to use it`,
    );
  }
  return { handle: existing, ...keyFingerprint(p11, session, existing) };
}

/** CKA_ID and the key check value (CKA_CHECK_VALUE: first bytes of the encryption of a zero block). */
function keyFingerprint(p11: PKCS11, session: Handle, key: Handle): { id: string; checkValue: string } {
  const [id] = p11.C_GetAttributeValue(session, key, [{ type: CKA_ID }]);
  let checkValue = '';
  try {
    checkValue = p11.C_GetAttributeValue(session, key, [{ type: CKA_CHECK_VALUE }])[0]?.value?.toString('hex') ?? '';
  } catch {
    // Not every module implements CKA_CHECK_VALUE (a PKCS#11 2.40 addition): the id and the trial
    // unwrap of a stored version (daemon/keystore/binding.ts) then carry the check.
  }
  return { id: id?.value?.toString('hex') ?? '', checkValue };
}

function attachToken(module: LoadedModule, options: Pkcs11KeystoreOptions): TokenSession {
  const { tokenLabel: label, pin, soPin, logger } = options;
  const rootKeyLabel = options.rootKeyLabel ?? DEFAULT_ROOT_KEY_LABEL;
  const p11 = module.p11;
  let token = findTokenSlot(module, label);
  if (token === undefined) {
    if (soPin === undefined || options.allowCreate === false) {
      const present = tokenSlots(p11)
        .filter((t) => (t.flags & CKF_TOKEN_INITIALIZED) !== 0)
        .map((t) => `'${t.label}'`);
      throw new KmsError(
        'FAILED_PRECONDITION',
        `no PKCS#11 token labelled '${label}' in ${module.path} (tokens present: ${present.join(', ') || 'none'})`,
      );
    }
    token = initializeToken(module, label, soPin, logger);
  }
  if ((token.flags & CKF_USER_PIN_INITIALIZED) === 0) {
    // A start that died between C_InitToken and C_InitPIN leaves a token without user PIN.
    if (soPin === undefined) {
      throw new KmsError('FAILED_PRECONDITION', `PKCS#11 token '${label}' has no user PIN set`);
    }
    initializeUserPin(module, token.slot, label, soPin, pin);
  }

  let mechanisms: number[];
  try {
    mechanisms = p11.C_GetMechanismList(token.slot);
  } catch (err) {
    throw hsmError(err, `mechanism listing of token '${label}'`);
  }
  const missing = [
    ['CKM_AES_KEY_GEN', CKM_AES_KEY_GEN],
    ['CKM_AES_GCM', CKM_AES_GCM],
  ].filter(([, m]) => !mechanisms.includes(m as number));
  const hasWrapPad = mechanisms.includes(CKM_AES_KEY_WRAP_PAD);
  if (!hasWrapPad && !mechanisms.includes(CKM_AES_KEY_WRAP)) missing.push(['CKM_AES_KEY_WRAP(_PAD)', CKM_AES_KEY_WRAP]);
  if (missing.length > 0) {
    throw new KmsError('FAILED_PRECONDITION', `PKCS#11 token '${label}' lacks ${missing.map(([n]) => n).join(', ')}`);
  }

  let loginSession: Handle;
  try {
    loginSession = p11.C_OpenSession(token.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
  } catch (err) {
    throw hsmError(err, `session opening on token '${label}'`);
  }
  try {
    login(p11, loginSession, label, pin);
    let rootKey: { handle: Handle; id: string; checkValue: string };
    try {
      rootKey = rootWrappingKey(p11, loginSession, label, rootKeyLabel, options.allowCreate ?? true, logger);
    } catch (err) {
      throw hsmError(err, `root key lookup in token '${label}'`);
    }
    const wrapFormat = hasWrapPad ? WRAP_FORMAT.AES_KEY_WRAP_PAD : WRAP_FORMAT.AES_KEY_WRAP;
    const identity: KeystoreIdentity = {
      kind: 'pkcs11',
      token: { label, serial: p11.C_GetTokenInfo(token.slot).serialNumber.trim() },
      rootKey: { label: rootKeyLabel, id: rootKey.id, checkValue: rootKey.checkValue },
    };
    return new TokenSession(
      module,
      label,
      rootKeyLabel,
      token.slot,
      loginSession,
      sha256(pin),
      rootKey.handle,
      wrapFormat,
      hasWrapPad,
      {
        maxEntries: options.unwrappedKeyCache?.maxEntries ?? UNWRAPPED_CACHE.maxEntries,
        ttlMs: options.unwrappedKeyCache?.ttlMs ?? UNWRAPPED_CACHE.ttlMs,
      },
      identity,
    );
  } catch (err) {
    ignoreErrors(() => p11.C_Logout(loginSession));
    ignoreErrors(() => p11.C_CloseSession(loginSession));
    throw err;
  }
}

/** A `Keystore` on one PKCS#11 token. Several may share a token; each must be closed once. */
export class Pkcs11Keystore implements Keystore {
  readonly kind = 'pkcs11' as const;
  private closed = false;

  /** Use `openPkcs11Keystore`. */
  constructor(private readonly token: TokenSession) {}

  /** Label of the token this keystore uses. */
  get tokenLabel(): string {
    return this.token.label;
  }

  createVersionMaterial(versionId: string, algorithm: Algorithm): MaterialRef {
    return this.live().createVersionMaterial(versionId, algorithm);
  }

  seal(ref: MaterialRef, algorithm: Algorithm, plaintext: Buffer, aad: Buffer): SealedBytes {
    return this.live().seal(ref, algorithm, plaintext, aad);
  }

  open(ref: MaterialRef, algorithm: Algorithm, sealed: SealedBytes, aad: Buffer): Buffer {
    return this.live().open(ref, algorithm, sealed, aad);
  }

  destroyVersionMaterial(ref: MaterialRef): void {
    this.live().destroyVersionMaterial(ref);
  }

  randomBytes(length: number): Buffer {
    return this.live().randomBytes(length);
  }

  identity(): KeystoreIdentity {
    return this.live().identity;
  }

  checkMaterial(ref: MaterialRef, algorithm: Algorithm): void {
    this.live().checkMaterial(ref, algorithm);
  }

  auditKeyring(options: { allowCreate: boolean }): AuditKeyring {
    return this.live().auditKeyring(options.allowCreate);
  }

  auditAnchorStore(options: { allowCreate: boolean }): AuditAnchorStore {
    return this.live().auditAnchorStore(options.allowCreate);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.token.release();
  }

  private live(): TokenSession {
    if (this.closed) throw new KmsError('UNAVAILABLE', 'keystore is closed');
    return this.token;
  }
}

/**
 * Opens the keystore on token `tokenLabel` of `modulePath`: loads and initializes the module
 * (once per process), finds the token by label (initializing it when `soPin` is given and it does
 * not exist), logs in (once per token per process) and finds or creates the root wrapping key.
 *
 * Fails with FAILED_PRECONDITION and a message naming the fix when the module is missing, the
 * token is absent, the PIN is wrong or the module lacks AES-GCM / AES key wrap.
 */
export function openPkcs11Keystore(options: Pkcs11KeystoreOptions): Pkcs11Keystore {
  checkTokenLabel(options.tokenLabel);
  const module = acquireModule(options.modulePath);
  try {
    const shared = module.tokens.get(options.tokenLabel);
    if (shared !== undefined) {
      // Already logged in: C_Login would not check this PIN again, so compare it ourselves.
      if (!shared.pinMatches(options.pin)) {
        throw new KmsError('FAILED_PRECONDITION', `PKCS#11 login failed for token '${options.tokenLabel}': wrong PIN`);
      }
      // One login per token per process means one TokenSession, hence one root key.
      const rootKeyLabel = options.rootKeyLabel ?? DEFAULT_ROOT_KEY_LABEL;
      if (shared.rootKeyLabel !== rootKeyLabel) {
        throw new KmsError(
          'FAILED_PRECONDITION',
          `token '${options.tokenLabel}' is already open in this process with root key '${shared.rootKeyLabel}', not '${rootKeyLabel}'`,
        );
      }
      shared.refs += 1;
      releaseModule(module); // the TokenSession already holds a module reference
      return new Pkcs11Keystore(shared);
    }
    const token = attachToken(module, options);
    token.afterTokenWrite = options.afterTokenWrite;
    module.tokens.set(options.tokenLabel, token);
    return new Pkcs11Keystore(token);
  } catch (err) {
    releaseModule(module);
    throw err;
  }
}
