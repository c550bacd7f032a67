/**
 * Access control: who may call what. Every route declares one `Permission`; a route without one
 * is refused when the app is built (deny by default). Until roles and bindings land (issue D),
 * the only subject is the bootstrap administrator, who holds every permission.
 */
import { KmsError } from './errors.js';
import type { Caller } from './ports.js';

export const PERMISSIONS = [
  'kms.keys.create',
  'kms.keys.get',
  'kms.keys.list',
  'kms.keys.listVersions',
  'kms.keys.update',
  'kms.keys.delete',
  'kms.keys.restore',
  'kms.keys.setPrimaryVersion',
  'kms.keys.scheduleVersionDestruction',
  'kms.keys.cancelVersionDestruction',
  'kms.keys.rotate',
  'kms.keys.listOperations',
  'kms.operations.get',
  'kms.keys.encrypt',
  'kms.keys.decrypt',
  'kms.keys.generateDataKey',
  'kms.test.advanceClock',
  'kms.api.describe',
  /** Reachable without a token: only /healthz. */
  'public',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** The subject of the bootstrap admin token. */
export const BOOTSTRAP_ADMIN = 'userAccount:admin';

/** What a permission is checked against. */
export interface AccessTarget {
  folderId?: string;
  keyId?: string;
}

export interface AccessPolicy {
  /** Throws PERMISSION_DENIED naming the missing permission. */
  authorize(caller: Caller, permission: Permission, target: AccessTarget): void;
}

/** The policy until issue D: the bootstrap admin may do everything, nobody else anything. */
export const adminOnlyPolicy: AccessPolicy = {
  authorize(caller, permission, target) {
    if (permission === 'public' || caller.subject === BOOTSTRAP_ADMIN) return;
    const on = target.keyId !== undefined ? ` on key ${target.keyId}` : target.folderId !== undefined ? ` on folder ${target.folderId}` : '';
    throw new KmsError('PERMISSION_DENIED', `${caller.subject} lacks permission ${permission}${on}`);
  },
};
