/**
 * Access control: who may call what (DESIGN §7).
 *
 * Every route declares one `Permission`; the app refuses to build a route without one (deny by
 * default). Roles are Yandex Cloud's KMS roles, with its strict split between key administrators
 * and key users: `kms.admin ⊃ kms.editor ⊃ kms.viewer ⊃ kms.auditor` manage keys but cannot
 * encrypt or decrypt; `kms.keys.encrypterDecrypter = kms.keys.encrypter + kms.keys.decrypter` can
 * only do cryptography. A binding on a folder applies to every key in it; a binding on a key to
 * that key. The bootstrap administrator holds every permission everywhere (it is how an
 * installation grants the first roles) and is the only subject for daemon-wide calls.
 */
import { KmsError } from './errors.js';
import type { AccessBinding, StateView } from './model.js';
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
  'kms.keys.listAccessBindings',
  'kms.keys.setAccessBindings',
  'kms.keys.updateAccessBindings',
  'kms.audit.read',
  /** Daemon-wide administration (service accounts, tokens, the test clock): bootstrap admin only. */
  'iam.admin',
  /** Prometheus metrics: the bootstrap admin and the `system:metrics` subject. */
  'metrics.read',
  /** Any authenticated subject. */
  'authenticated',
  /** No token needed: only /healthz. */
  'public',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const AUDITOR: Permission[] = ['kms.keys.list', 'kms.keys.listAccessBindings', 'kms.audit.read'];
const VIEWER: Permission[] = [...AUDITOR, 'kms.keys.get', 'kms.keys.listVersions', 'kms.keys.listOperations', 'kms.operations.get'];
const EDITOR: Permission[] = [...VIEWER, 'kms.keys.create', 'kms.keys.update', 'kms.keys.rotate'];
const ADMIN: Permission[] = [
  ...EDITOR,
  'kms.keys.delete',
  'kms.keys.restore',
  'kms.keys.setPrimaryVersion',
  'kms.keys.scheduleVersionDestruction',
  'kms.keys.cancelVersionDestruction',
  'kms.keys.setAccessBindings',
  'kms.keys.updateAccessBindings',
];
const ENCRYPTER: Permission[] = ['kms.keys.encrypt', 'kms.keys.generateDataKey'];
const DECRYPTER: Permission[] = ['kms.keys.decrypt'];

/**
 * Yandex's primitive roles as they apply to KMS: `viewer` reads (as kms.viewer); `editor` does
 * everything with keys, their versions and their data but change access (not subject to the
 * administrator/user split); `admin` does everything, access bindings included.
 */
const PRIMITIVE_EDITOR: Permission[] = [...ADMIN.filter((p) => p !== 'kms.keys.setAccessBindings' && p !== 'kms.keys.updateAccessBindings'), ...ENCRYPTER, ...DECRYPTER];
const PRIMITIVE_ADMIN: Permission[] = [...ADMIN, ...ENCRYPTER, ...DECRYPTER];

/** Role → the permissions it grants. A `Map`: role ids come from requests. */
export const ROLES: ReadonlyMap<string, ReadonlySet<Permission>> = new Map<string, ReadonlySet<Permission>>([
  ['viewer', new Set(VIEWER)],
  ['editor', new Set(PRIMITIVE_EDITOR)],
  ['admin', new Set(PRIMITIVE_ADMIN)],
  ['kms.auditor', new Set(AUDITOR)],
  ['kms.viewer', new Set(VIEWER)],
  ['kms.editor', new Set(EDITOR)],
  ['kms.admin', new Set(ADMIN)],
  ['kms.keys.encrypter', new Set(ENCRYPTER)],
  ['kms.keys.decrypter', new Set(DECRYPTER)],
  ['kms.keys.encrypterDecrypter', new Set([...ENCRYPTER, ...DECRYPTER])],
]);

/** The subject of the bootstrap admin token. */
export const BOOTSTRAP_ADMIN = 'userAccount:admin';

/** The subject of tokens that may only read /metrics (give one to Prometheus). */
export const METRICS_SUBJECT = 'system:metrics';

/** What a permission is checked against. */
export interface AccessTarget {
  folderId?: string;
  keyId?: string;
}

export interface AccessPolicy {
  /** Throws PERMISSION_DENIED naming the missing permission. */
  authorize(caller: Caller, permission: Permission, target: AccessTarget): void;
}

export function folderResource(folderId: string): string {
  return `folder:${folderId}`;
}

export function keyResource(keyId: string): string {
  return `key:${keyId}`;
}

export function subjectOf(binding: AccessBinding): string {
  return `${binding.subject.type}:${binding.subject.id}`;
}

/**
 * Whether a binding names the caller: its own subject, or the system groups of everyone
 * (`system:allAuthenticatedUsers`, `system:allUsers`; every caller here holds a valid token).
 */
function bindingApplies(binding: AccessBinding, caller: Caller): boolean {
  if (binding.subject.type === 'system') return binding.subject.id === 'allAuthenticatedUsers' || binding.subject.id === 'allUsers';
  return subjectOf(binding) === caller.subject;
}

/** Role-based policy over the bindings in the state (read through `read`). */
export function rolePolicy(read: <T>(query: (state: StateView) => T) => T): AccessPolicy {
  return {
    authorize(caller, permission, target) {
      if (permission === 'public' || caller.subject === BOOTSTRAP_ADMIN) return;
      if (permission === 'authenticated') return;
      if (permission === 'metrics.read' && caller.subject === METRICS_SUBJECT) return;
      const allowed = read((state) => {
        const resources: string[] = [];
        // A deleted or unknown key falls back to its key bindings only: no folder, no leak.
        const folderId = target.keyId !== undefined ? state.keys.get(target.keyId)?.folderId : target.folderId;
        if (folderId !== undefined) resources.push(folderResource(folderId));
        if (target.keyId !== undefined) resources.push(keyResource(target.keyId));
        return resources.some((resource) =>
          (state.accessBindings.get(resource)?.bindings ?? []).some(
            (binding) => bindingApplies(binding, caller) && (ROLES.get(binding.roleId)?.has(permission) ?? false),
          ),
        );
      });
      if (allowed) return;
      const on = target.keyId !== undefined ? ` on key ${target.keyId}` : target.folderId !== undefined ? ` on folder ${target.folderId}` : '';
      throw new KmsError('PERMISSION_DENIED', `${caller.subject} lacks permission ${permission}${on}`);
    },
  };
}
