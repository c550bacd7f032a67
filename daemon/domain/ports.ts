/**
 * Ports: everything the domain needs from the outside world, as small interfaces.
 *
 * Read this file first. The domain (./keys.ts, ./crypto.ts, ./scheduler rules) imports nothing
 * from Express, lowdb or pkcs11js; the adapters that implement these interfaces live in
 * daemon/store, daemon/keystore and daemon/audit, and daemon/app.ts wires them together.
 */
import type { Algorithm, MaterialRef, StateTx, StateView } from './model.js';

/**
 * Time. Production uses the system clock; `--unsafe-test-clock` swaps in a clock that can be
 * advanced over the API so that end-to-end tests can watch rotation and destruction happen.
 */
export interface Clock {
  now(): Date;
}

/**
 * The persisted state, behind one serialized writer.
 *
 * - `read` runs `query` against the durable state: only changes whose `update` has resolved (or
 *   is about to) are visible, never one that may still fail. Records are frozen.
 * - `update` runs `mutate` synchronously, before it returns, against a transaction that sees the
 *   durable state plus every update accepted before it. `mutate` edits copies (`WriteTable.get`)
 *   and its changes become visible to `read` only once durable on disk (written, fsynced). When
 *   `mutate` throws, nothing it did is kept. Updates that arrive while a write is in flight are
 *   committed together by the next write (group commit). If the write fails, the promise
 *   rejects with `KmsError('UNAVAILABLE')` naming the cause, the change is discarded (with every
 *   later change that built on it) and `onAbort` undo steps run: a refused change never appears
 *   later.
 * - `health` says whether writes currently succeed; after a failure the store probes the data
 *   directory and heals by itself once writes work again.
 */
export interface Store {
  read<T>(query: (state: StateView) => T): T;
  update<T>(mutate: (state: StateTx) => T): Promise<T>;
  health(): ComponentHealth;
  /** Waits for pending writes, then releases the file. Later updates reject. */
  close(): Promise<void>;
}

/** AES-GCM output of the keystore: the 96-bit nonce and ciphertext with its 128-bit tag appended. */
export interface SealedBytes {
  nonce: Buffer;
  ciphertext: Buffer;
}

/**
 * Key material custody (the HSM). Implementations: daemon/keystore/pkcs11.ts (default, any
 * PKCS#11 module, SoftHSM2 out of the box) and daemon/keystore/software.ts (explicit dev-only
 * fallback for machines without a PKCS#11 module).
 *
 * Material never leaves an implementation in plaintext: the domain only ever holds a
 * `MaterialRef` (wrapped bytes or a token object label). Calls are synchronous because PKCS#11
 * calls are microseconds and pkcs11js' async variants have known native memory bugs.
 */
export interface Keystore {
  /** 'pkcs11' or 'software', reported by /healthz and at start-up. */
  readonly kind: 'pkcs11' | 'software';
  /**
   * Creates material for a new version inside the HSM. AES_128/192/256 come back wrapped by the
   * root key; AES_256_HSM becomes a persistent non-extractable token object.
   */
  createVersionMaterial(versionId: string, algorithm: Algorithm): MaterialRef;
  /** AES-GCM with a fresh random 96-bit nonce. `aad` is authenticated, not encrypted. */
  seal(ref: MaterialRef, algorithm: Algorithm, plaintext: Buffer, aad: Buffer): SealedBytes;
  /** Inverse of `seal`; throws `KmsError('INVALID_ARGUMENT')` when authentication fails. */
  open(ref: MaterialRef, algorithm: Algorithm, sealed: SealedBytes, aad: Buffer): Buffer;
  /** Erases the material for good (destroys the token object, forgets cached plaintext). */
  destroyVersionMaterial(ref: MaterialRef): void;
  /** Random bytes from the HSM's generator (data keys). */
  randomBytes(length: number): Buffer;
  /** Which token and root key this keystore is; the store records it (daemon/keystore/binding.ts). */
  identity(): KeystoreIdentity;
  /**
   * Proves that this keystore can use `ref` (unwraps it, or finds its token object), throwing
   * `KmsError('FAILED_PRECONDITION')` saying why not. Start-up samples stored versions with it.
   */
  checkMaterial(ref: MaterialRef, algorithm: Algorithm): void;
  /**
   * The audit chain's MAC key. Created only when `allowCreate` (an empty trail); otherwise a
   * missing key is `KmsError('FAILED_PRECONDITION')` naming it, never a silent new key.
   */
  auditKeyring(options: { allowCreate: boolean }): AuditKeyring;
  /** Where the chain head is anchored; same creation rule as `auditKeyring`. */
  auditAnchorStore(options: { allowCreate: boolean }): AuditAnchorStore;
  /** Logs out and finalizes. */
  close(): void;
}

/**
 * The custody a store's wrapped material depends on. Recorded in the store on first start and
 * compared on every start: a store with keys is never paired with another token or root key.
 */
export interface KeystoreIdentity {
  kind: 'pkcs11' | 'software';
  /** PKCS#11 token label and serial number; null for the software keystore. */
  token: { label: string; serial: string } | null;
  /** Root wrapping key: label, hex CKA_ID and hex key check value ('' when the module has none). */
  rootKey: { label: string; id: string; checkValue: string };
}

/** Identifies who is calling, for Operation.createdBy and the audit log. */
export interface Caller {
  /** `userAccount:<id>` or `serviceAccount:<id>`. */
  subject: string;
}

/** Random identifiers for keys, versions and operations. */
export interface IdGenerator {
  next(): string;
}

/**
 * One audit event: exactly one per API call, allowed or denied. Never carries plaintext, key
 * material, ciphertext or tokens — only who did what to which key and how it ended. Every field
 * is bounded (see daemon/audit: AUDIT_FIELD_LIMITS), so no caller can make an event large.
 */
export interface AuditEvent {
  /** RFC 3339, from the Clock. */
  time: string;
  requestId: string;
  /** `userAccount:<id>`, `serviceAccount:<id>`, `anonymous` (no or bad token) or `system:<component>`. */
  subject: string;
  /** The API method, e.g. `SymmetricKey.Rotate`, `SymmetricCrypto.Decrypt`; `<METHOD> <path>` (cut) when unrouted. */
  operation: string;
  folderId?: string;
  keyId?: string;
  versionId?: string;
  /** `OK`, or the error code name (`PERMISSION_DENIED`, `NOT_FOUND`, …). */
  result: string;
  remoteAddress?: string;
  /**
   * Facts of a system event (`system:audit`: what a prune removed, what an integrity alert
   * found). Request events never carry it. Bounded like every other field.
   */
  details?: AuditDetails;
}

/** The small, flat payload of a system event: short strings, integers or lists of short strings. */
export type AuditDetails = Readonly<Record<string, string | number | readonly string[]>>;

/** A stored event with its place in the keyed chain (daemon/audit/chain.ts). */
export interface ChainedAuditEvent extends AuditEvent {
  seq: number;
  /** `mac` of the previous event ("0"×64 for the first event of a new trail). */
  prev: string;
  /**
   * hex HMAC-SHA256, under the keystore's audit key, of this event's canonical JSON without
   * `mac` (so including `seq` and `prev`). For events migrated from a pre-MAC `audit.log` it is
   * that log's unkeyed SHA-256 `hash`.
   */
  mac: string;
  /**
   * Id of the chain key that MACed the event (32 hex digits): the HSM derives the key from it
   * (daemon/audit/chain.ts). Absent: `mac` was computed in the HSM under the audit key itself.
   */
  chainKey?: string;
  /**
   * The node whose chain holds the event (PostgreSQL clusters, where `seq` and `prev` are per
   * node); absent on a single node with the file store.
   */
  instanceId?: string;
}

export interface AuditQuery {
  folderId?: string;
  keyId?: string;
  subject?: string;
  operation?: string;
  /** Inclusive RFC 3339 bounds. */
  from?: string;
  to?: string;
  pageSize?: number;
  pageToken?: string;
}

export interface AuditPage {
  events: ChainedAuditEvent[];
  /** Present when more matching events may follow; a page can be short (scan budget). */
  nextPageToken?: string;
}

/** Whether a component can currently make writes durable; drives `/healthz` readiness. */
export type ComponentHealth = { ok: true } | { ok: false; reason: string };

/**
 * The append-only audit trail (daemon/audit). `append` is synchronous in memory and made durable
 * in batches; `flush` resolves once everything appended so far is fsynced. The daemon answers a
 * request only after its event is durable, so an acknowledged call is always audited. When the
 * trail cannot be written (disk full, read-only, I/O error) `append`/`flush` fail with
 * `KmsError('UNAVAILABLE')` naming the cause, `health()` says so, and the trail heals by itself
 * once writes succeed again. Nothing in memory grows with the number of events.
 */
export interface AuditLog {
  append(event: AuditEvent): void;
  flush(): Promise<void>;
  /** Reads from the segments on disk (not from memory). */
  query(query: AuditQuery): Promise<AuditPage>;
  health(): ComponentHealth;
  close(): Promise<void>;
}

/**
 * The key that MACs the audit chain, held in custody (for PKCS#11: a non-extractable generic
 * secret in the token, HMAC-SHA256 via CKM_SHA256_HMAC). Someone who can rewrite the trail's
 * files but cannot use this key cannot forge a valid chain.
 */
export interface AuditKeyring {
  /** Where the key lives, for segment headers and `kmsd hsm status`, e.g. `pkcs11:<token>/kms-audit-mac-key`. */
  readonly description: string;
  /** HMAC-SHA256 of `data`: 32 bytes. */
  mac(data: Buffer): Buffer;
}

/** The head of the chain as last recorded outside the trail. */
export interface AuditAnchor {
  seq: number;
  /** hex MAC of event `seq`. */
  mac: string;
  /** RFC 3339 time the anchor was written. */
  time: string;
}

/**
 * A durable, monotonic record of the chain head kept outside the trail's files (for PKCS#11: a
 * private token data object), so that cutting events off the end of the trail is detected.
 */
export interface AuditAnchorStore {
  readonly description: string;
  /** The last anchor written, or null before the first. */
  read(): AuditAnchor | null;
  /** Durably replaces the anchor; `seq` never goes backwards. */
  write(anchor: AuditAnchor): void;
  /**
   * Where the store can: the same write off the event loop (the trail's periodic anchor uses it);
   * `done` is told the outcome. One write in flight at a time is the caller's business.
   */
  writeInBackground?(anchor: AuditAnchor, done: (err?: Error) => void): void;
  /** Resolves once no background write is in flight (before a final `write` and shutdown). */
  settle?(): Promise<void>;
}

/**
 * Production metrics, as the domain and the adapters report them (daemon/metrics turns them into
 * Prometheus series). Every method is cheap and synchronous: it is called on the hot path.
 */
export interface Metrics {
  /** One API call finished (operation id, `OK` or the error code, seconds from read to answer). */
  callFinished(operation: string, result: string, seconds: number): void;
  /** One audit batch became durable: its fsync took `seconds` and it held `events` events. */
  auditFlushed(seconds: number, events: number): void;
  /** One keystore call (seal, open, random, create, destroy) for an algorithm took `seconds`. */
  keystoreCall(operation: string, algorithm: string, seconds: number): void;
  /** A keystore call failed for a reason that is not the caller's input (HSM unavailable, internal). */
  hsmError(operation: string, code: string): void;
  /** One store update became durable `seconds` after it was accepted. */
  storeCommitted(seconds: number): void;
  /** A scheduler run started `lagSeconds` later than planned. */
  schedulerRan(lagSeconds: number): void;
  /** PostgreSQL clusters: this node's durable audit events not yet copied to the database. */
  auditCopyLag(events: number): void;
}

/** Metrics that go nowhere (tests and tools that do not serve /metrics). */
export const NO_METRICS: Metrics = {
  callFinished: () => undefined,
  auditFlushed: () => undefined,
  keystoreCall: () => undefined,
  hsmError: () => undefined,
  storeCommitted: () => undefined,
  schedulerRan: () => undefined,
  auditCopyLag: () => undefined,
};
