/**
 * API shapes, exactly as the Yandex Cloud KMS REST reference spells them, derived from records.
 * Empty optional values (rotatedAt, rotationPeriod, destroyAt) are omitted as protobuf JSON does.
 */
import { formatDurationSeconds } from './durations.js';
import type { KeyRecord, OperationRecord, VersionRecord } from './model.js';

export const TYPE_PREFIX = 'type.googleapis.com/yandex.cloud.kms.v1.';

export interface SymmetricKeyVersionView {
  id: string;
  keyId: string;
  status: VersionRecord['status'];
  algorithm: VersionRecord['algorithm'];
  createdAt: string;
  primary: boolean;
  destroyAt?: string;
  hostedByHsm: boolean;
}

export interface SymmetricKeyView {
  id: string;
  folderId: string;
  createdAt: string;
  name: string;
  description: string;
  labels: Record<string, string>;
  status: KeyRecord['status'];
  primaryVersion: SymmetricKeyVersionView;
  defaultAlgorithm: KeyRecord['defaultAlgorithm'];
  rotatedAt?: string;
  rotationPeriod?: string;
  deletionProtection: boolean;
}

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
    ...(key.rotatedAt !== undefined ? { rotatedAt: key.rotatedAt } : {}),
    ...(key.rotationPeriodSeconds !== undefined ? { rotationPeriod: formatDurationSeconds(key.rotationPeriodSeconds) } : {}),
    deletionProtection: key.deletionProtection,
  };
}

export interface OperationView {
  id: string;
  description: string;
  createdAt: string;
  createdBy: string;
  modifiedAt: string;
  done: boolean;
  metadata: Record<string, unknown>;
  response?: Record<string, unknown>;
  error?: { code: number; message: string; details: unknown[] };
}

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
