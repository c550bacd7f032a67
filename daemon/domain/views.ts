/**
 * API shapes, derived from records. Their fields and types are the generated wire types of the
 * protos (api/wire.gen.ts); only which fields kmsd always writes is said here.
 * Empty optional values (rotationPeriod, destroyAt) are omitted as protobuf JSON does.
 */
import { formatDurationSeconds } from './durations.js';
import type * as Wire from '../../api/wire.gen.js';
import type { Present } from '../../api/wire.js';
import type { KeyRecord, OperationRecord, VersionRecord } from './model.js';

export const TYPE_PREFIX = 'type.googleapis.com/yandex.cloud.kms.v1.';

/**
 * SymmetricKeyVersion as kmsd writes it: the generated wire type (api/wire.gen.ts, from the proto)
 * with the fields kmsd always sets, and its own narrower enums.
 */
export type SymmetricKeyVersionView = Present<Wire.SymmetricKeyVersion, 'id' | 'keyId' | 'createdAt' | 'primary' | 'hostedByHsm'> & {
  status: VersionRecord['status'];
  algorithm: VersionRecord['algorithm'];
};

/** SymmetricKey as kmsd writes it (rotationPeriod only when set, as protobuf JSON does). */
export type SymmetricKeyView = Present<Wire.SymmetricKey, 'id' | 'folderId' | 'createdAt' | 'name' | 'description' | 'labels' | 'deletionProtection' | 'rotatedAt'> & {
  status: KeyRecord['status'];
  primaryVersion: SymmetricKeyVersionView;
  defaultAlgorithm: KeyRecord['defaultAlgorithm'];
};

export function versionView(version: VersionRecord, primaryVersionId: string): SymmetricKeyVersionView {
  const view: SymmetricKeyVersionView = {
    id: version.id,
    keyId: version.keyId,
    status: version.status,
    algorithm: version.algorithm,
    createdAt: version.createdAt,
    primary: version.id === primaryVersionId,
    hostedByHsm: version.algorithm === 'AES_256_HSM',
  };
  if (version.destroyAt !== undefined) view.destroyAt = version.destroyAt;
  return view;
}

export function keyView(key: KeyRecord, primary: VersionRecord): SymmetricKeyView {
  // Built in the field order of the Yandex reference; optional fields only when set.
  return {
    id: key.id,
    folderId: key.folderId,
    createdAt: key.createdAt,
    name: key.name,
    description: key.description,
    labels: { ...key.labels },
    status: key.status,
    primaryVersion: versionView(primary, key.primaryVersionId),
    defaultAlgorithm: key.defaultAlgorithm,
    // The proto's rotatedAt: when the last version was created. Until a rotation that is the first
    // version, made with the key.
    rotatedAt: key.rotatedAt ?? key.createdAt,
    ...(key.rotationPeriodSeconds !== undefined ? { rotationPeriod: formatDurationSeconds(key.rotationPeriodSeconds) } : {}),
    deletionProtection: key.deletionProtection,
  };
}

/** Operation as kmsd writes it: always done, with metadata; response or error. */
export type OperationView = Present<Wire.Operation, 'id' | 'description' | 'createdAt' | 'createdBy' | 'modifiedAt' | 'done' | 'metadata'> & {
  error?: Present<Wire.Status, 'code' | 'message' | 'details'>;
};

export function operationView(op: OperationRecord): OperationView {
  const view: OperationView = {
    id: op.id,
    description: op.description,
    createdAt: op.createdAt,
    createdBy: op.createdBy,
    modifiedAt: op.modifiedAt,
    done: op.done,
    metadata: op.metadata,
  };
  if (op.response !== undefined) view.response = op.response;
  if (op.error !== undefined) view.error = op.error;
  return view;
}
