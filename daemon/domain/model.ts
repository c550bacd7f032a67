/**
 * The persisted model. These records are what the store keeps; API shapes (SymmetricKey,
 * SymmetricKeyVersion, Operation) are derived from them in ./views.ts so that the file format and
 * the wire format can evolve separately. Tables are `Map`-like (`ReadTable`/`WriteTable`): user
 * input never indexes a plain object.
 */
import type * as Wire from '../../api/wire.gen.js';
import type { Present } from '../../api/wire.js';
import { KmsError } from './errors.js';

export const ALGORITHMS = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/**
 * Every algorithm the API knows (yandex.cloud.kms.v1.SymmetricAlgorithm). GOST_R_3412_2015_K
 * (Kuznyechik) needs an HSM that implements it; no keystore kmsd drives does (SoftHSM2 has no
 * GOST R 34.12-2015), so it is refused with FAILED_PRECONDITION naming the keystore.
 */
export const KNOWN_ALGORITHMS = [...ALGORITHMS, 'GOST_R_3412_2015_K'] as const;
export type KnownAlgorithm = (typeof KNOWN_ALGORITHMS)[number];

/** The algorithm, if this keystore can do it; FAILED_PRECONDITION naming the keystore otherwise. */
export function keystoreAlgorithm(field: string, algorithm: KnownAlgorithm, keystore: { kind: string; label?: string } | null): Algorithm {
  if ((ALGORITHMS as readonly string[]).includes(algorithm)) return algorithm as Algorithm;
  const where = keystore === null ? 'this daemon has no keystore' : `the ${keystore.kind} keystore${keystore.label !== undefined ? ` (token "${keystore.label}")` : ''} cannot do it`;
  throw new KmsError(
    'FAILED_PRECONDITION',
    `${field}: ${algorithm} (GOST R 34.12-2015 "Kuznyechik") is not available: ${where}; use one of ${ALGORITHMS.join(', ')}`,
  );
}

export const KEY_STATUSES = ['CREATING', 'ACTIVE', 'INACTIVE'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

export const VERSION_STATUSES = ['ACTIVE', 'SCHEDULED_FOR_DESTRUCTION', 'DESTROYED'] as const;
export type VersionStatus = (typeof VERSION_STATUSES)[number];

/**
 * Where a version's material lives, as the keystore reported it at creation. The domain never
 * looks inside: it hands the reference back to the keystore for every operation.
 * - `wrapped`: material encrypted by the HSM's root wrapping key (base64), safe to persist.
 * - `token`: a persistent, non-extractable HSM object, found by its label.
 */
export type MaterialRef = { kind: 'wrapped'; wrapped: string } | { kind: 'token'; label: string };

export interface KeyRecord {
  id: string;
  folderId: string;
  createdAt: string;
  name: string;
  description: string;
  labels: Record<string, string>;
  status: KeyStatus;
  primaryVersionId: string;
  defaultAlgorithm: Algorithm;
  /** RFC 3339; absent until the first rotation. */
  rotatedAt?: string;
  /** Whole seconds; absent means no automatic rotation. */
  rotationPeriodSeconds?: number;
  deletionProtection: boolean;
  /** Set by Delete: the key is hidden from Get/List and can be restored until `purgeAt`. */
  deletedAt?: string;
  purgeAt?: string;
}

export interface VersionRecord {
  id: string;
  keyId: string;
  status: VersionStatus;
  algorithm: Algorithm;
  createdAt: string;
  destroyAt?: string;
  /** Absent when the version was created without a keystore, or after destruction. */
  material?: MaterialRef;
}

export interface OperationRecord {
  id: string;
  description: string;
  createdAt: string;
  createdBy: string;
  modifiedAt: string;
  done: boolean;
  /** The key the operation acted on, for ListOperations and access checks ('' for a folder). */
  keyId: string;
  /** The folder, for operations on a folder's access bindings. */
  folderId?: string;
  /** google.protobuf.Any in proto3 JSON (`@type` and the fields), as the API returns it. */
  metadata: Wire.Any;
  response?: Wire.Any;
  error?: { code: number; message: string; details: Wire.Any[] };
}

/** An API token, stored only as the SHA-256 of its value (the value is shown once). */
export interface TokenRecord {
  /** Public id, to list and revoke the token without knowing its value. */
  id: string;
  subject: string;
  createdAt: string;
  description: string;
  /**
   * Set on IAM tokens (IamTokenService.Create): short-lived tokens exchanged for an API token,
   * refused after this time and revoked with the token they were made from.
   */
  expiresAt?: string;
  /** The API token an IAM token was exchanged for. */
  parentTokenId?: string;
}

export interface ServiceAccountRecord {
  id: string;
  name: string;
  description: string;
  createdAt: string;
}

/**
 * Subject types a binding can name (Yandex `Subject.type`). Tokens are issued to userAccount,
 * serviceAccount and federatedUser subjects. `system` names everyone: `allAuthenticatedUsers` (any
 * valid token) and `allUsers` (the same here: every kmsd call but /healthz needs a token). A
 * `group` binding is kept and listed but grants nothing: kmsd has no group membership.
 */
export const SUBJECT_TYPES = ['userAccount', 'serviceAccount', 'federatedUser', 'group', 'system'] as const;
/** The ids a `system` subject may have. */
export const SYSTEM_SUBJECT_IDS = ['allAuthenticatedUsers', 'allUsers'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

/** Yandex `AccessBinding`: a role granted to a subject on the resource it is stored under. */
export type AccessBinding = Present<Wire.AccessBinding, 'roleId'> & {
  subject: Present<Wire.Subject, 'id'> & { type: SubjectType };
};

/** The bindings of one resource (`folder:<folderId>` or `key:<keyId>`). */
export interface AccessBindingsRecord {
  resource: string;
  bindings: AccessBinding[];
}

/**
 * Which HSM token and root key the store's wrapped material depends on, recorded on first start
 * (daemon/keystore/binding.ts). Its one row has the id `HSM_BINDING_ID`.
 */
export interface HsmBindingRecord {
  id: string;
  kind: 'pkcs11' | 'software';
  token: { label: string; serial: string } | null;
  rootKey: { label: string; id: string; checkValue: string };
  recordedAt: string;
}

export const HSM_BINDING_ID = 'root';

/**
 * A table of records by id, as the domain reads it. Backed by a `Map`, so an id that happens to
 * be the name of an `Object.prototype` member (`constructor`, `__proto__`) is just an id.
 * Records read here are frozen: change them only through `WriteTable.get` inside an update.
 */
export interface ReadTable<R> {
  get(id: string): Readonly<R> | undefined;
  has(id: string): boolean;
  /** Every record in insertion (creation) order. */
  values(): IterableIterator<Readonly<R>>;
  /** Every id and record, in the same order. */
  entries(): IterableIterator<[string, Readonly<R>]>;
  readonly size: number;
}

/**
 * A table inside `Store.update`. `get` returns a private, mutable copy of the record: edit it in
 * place, and the edit is kept only if the update commits. `values` returns frozen records for
 * scanning; to change one, `get` it by id.
 */
export interface WriteTable<R> extends ReadTable<R> {
  get(id: string): R | undefined;
  set(id: string, record: R): void;
  delete(id: string): boolean;
}

/** The tables of the state, by name. */
export interface Tables<T extends 'read' | 'write'> {
  keys: T extends 'write' ? WriteTable<KeyRecord> : ReadTable<KeyRecord>;
  versions: T extends 'write' ? WriteTable<VersionRecord> : ReadTable<VersionRecord>;
  operations: T extends 'write' ? WriteTable<OperationRecord> : ReadTable<OperationRecord>;
  /** Keyed by the hex SHA-256 of the token. */
  tokens: T extends 'write' ? WriteTable<TokenRecord> : ReadTable<TokenRecord>;
  serviceAccounts: T extends 'write' ? WriteTable<ServiceAccountRecord> : ReadTable<ServiceAccountRecord>;
  /** Keyed by resource: `folder:<folderId>` or `key:<keyId>`. */
  accessBindings: T extends 'write' ? WriteTable<AccessBindingsRecord> : ReadTable<AccessBindingsRecord>;
  hsm: T extends 'write' ? WriteTable<HsmBindingRecord> : ReadTable<HsmBindingRecord>;
}

/** The durable state, read-only (`Store.read`). */
export type StateView = Tables<'read'>;

/** The state inside one `Store.update`: its changes commit together or not at all. */
export interface StateTx extends Tables<'write'> {
  /** Runs `undo` if this update does not become durable (e.g. destroys an HSM object it created). */
  onAbort(undo: () => void): void;
}

/** The table names, in the order files list them. */
export const TABLE_NAMES = ['keys', 'versions', 'operations', 'tokens', 'serviceAccounts', 'accessBindings', 'hsm'] as const;
export type TableName = (typeof TABLE_NAMES)[number];

/** The file format version of the store's snapshot and journal. 2 added the `hsm` table. */
export const CURRENT_SCHEMA_VERSION = 2;
