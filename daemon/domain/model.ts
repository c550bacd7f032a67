/**
 * The persisted model. These records are what the store keeps; API shapes (SymmetricKey,
 * SymmetricKeyVersion, Operation) are derived from them in ./views.ts so that the file format and
 * the wire format can evolve separately.
 */

export const ALGORITHMS = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

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
  metadata: Record<string, unknown>;
  response?: Record<string, unknown>;
  error?: { code: number; message: string; details: unknown[] };
}

/** An API token, stored only as the SHA-256 of its value (the value is shown once). */
export interface TokenRecord {
  /** Public id, to list and revoke the token without knowing its value. */
  id: string;
  subject: string;
  createdAt: string;
  description: string;
}

export interface ServiceAccountRecord {
  id: string;
  name: string;
  description: string;
  createdAt: string;
}

/** Subject types a binding can name (Yandex `Subject.type`). */
export const SUBJECT_TYPES = ['userAccount', 'serviceAccount'] as const;
export type SubjectType = (typeof SUBJECT_TYPES)[number];

/** Yandex `AccessBinding`: a role granted to a subject on the resource it is stored under. */
export interface AccessBinding {
  roleId: string;
  subject: { id: string; type: SubjectType };
}

/** The whole persisted state. `schemaVersion` guards against reading a file we do not understand. */
export interface KmsState {
  schemaVersion: 1;
  keys: Record<string, KeyRecord>;
  versions: Record<string, VersionRecord>;
  operations: Record<string, OperationRecord>;
  /** Keyed by the hex SHA-256 of the token. */
  tokens: Record<string, TokenRecord>;
  serviceAccounts: Record<string, ServiceAccountRecord>;
  /** Keyed by resource: `folder:<folderId>` or `key:<keyId>`. */
  accessBindings: Record<string, AccessBinding[]>;
}

export const CURRENT_SCHEMA_VERSION = 1;

export function emptyState(): KmsState {
  return { schemaVersion: 1, keys: {}, versions: {}, operations: {}, tokens: {}, serviceAccounts: {}, accessBindings: {} };
}
