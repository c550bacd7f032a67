/**
 * Identity and access administration: service accounts, their tokens, and access bindings on
 * folders and keys (Yandex `listAccessBindings` / `setAccessBindings` / `updateAccessBindings`).
 */
import { METRICS_SUBJECT, ROLES, folderResource, keyResource, subjectOf } from './access.js';
import { KmsError, invalidArgument, notFound } from './errors.js';
import { liveKey } from './keys.js';
import { SYSTEM_SUBJECT_IDS, type AccessBinding, type OperationRecord, type ServiceAccountRecord, type StateTx, type StateView, type TokenRecord } from './model.js';
import type { Caller, Clock, IdGenerator, Store } from './ports.js';
import { IAM_TOKEN_LIFETIME_SECONDS, MAX_IAM_TOKENS_PER_TOKEN, hashToken, newToken } from './tokens.js';
import { operationView, type OperationView } from './views.js';

export interface AccessBindingDelta {
  action: 'ADD' | 'REMOVE';
  accessBinding: AccessBinding;
}

/** A resource that carries bindings: a folder (any id; folders are implicit) or a live key. */
export type BindingResource = { type: 'folder'; id: string } | { type: 'key'; id: string };

export interface IssuedToken {
  id: string;
  subject: string;
  description: string;
  createdAt: string;
  /** Shown once, never stored. */
  token: string;
}

/** IamTokenService.Create's answer. */
export interface IamToken {
  iamToken: string;
  expiresAt: string;
  /** The token's subject (for the audit event; not part of the response). */
  subject: string;
}

export class IamService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ids: IdGenerator,
  ) {}

  async createServiceAccount(name: string, description: string): Promise<ServiceAccountRecord> {
    return this.store.update((state) => {
      if ([...state.serviceAccounts.values()].some((sa) => sa.name === name)) {
        throw new KmsError('ALREADY_EXISTS', `a service account named "${name}" already exists`);
      }
      const account: ServiceAccountRecord = { id: this.ids.next(), name, description, createdAt: this.clock.now().toISOString() };
      state.serviceAccounts.set(account.id, account);
      return { ...account };
    });
  }

  listServiceAccounts(): ServiceAccountRecord[] {
    return this.store.read((state) => [...state.serviceAccounts.values()].map((sa) => ({ ...sa })));
  }

  /** Deletes the account, revokes its tokens and removes its bindings everywhere. */
  async deleteServiceAccount(id: string): Promise<void> {
    await this.store.update((state) => {
      if (!state.serviceAccounts.has(id)) throw notFound('service account', id);
      const subject = `serviceAccount:${id}`;
      state.serviceAccounts.delete(id);
      const hashes = [...tokenEntries(state)].filter(([, token]) => token.subject === subject).map(([hash]) => hash);
      for (const hash of hashes) state.tokens.delete(hash);
      const resources = [...state.accessBindings.values()].filter((r) => r.bindings.some((b) => subjectOf(b) === subject)).map((r) => r.resource);
      for (const resource of resources) {
        const record = state.accessBindings.get(resource);
        if (record !== undefined) record.bindings = record.bindings.filter((b) => subjectOf(b) !== subject);
      }
    });
  }

  /** Issues a token for `serviceAccount:<id>` or `userAccount:<id>`; the value is returned once. */
  async issueToken(subject: string, description: string): Promise<IssuedToken> {
    const token = newToken();
    return this.store.update((state) => {
      checkSubject(state, 'subject', subject);
      const record = { id: this.ids.next(), subject, description, createdAt: this.clock.now().toISOString() };
      state.tokens.set(hashToken(token), record);
      return { ...record, token };
    });
  }

  listTokens(): (Omit<IssuedToken, 'token'> & { expiresAt?: string })[] {
    return this.store.read((state) =>
      [...state.tokens.values()].map((t) => ({
        id: t.id,
        subject: t.subject,
        description: t.description,
        createdAt: t.createdAt,
        ...(t.expiresAt !== undefined ? { expiresAt: t.expiresAt } : {}),
      })),
    );
  }

  /** Revokes a token and every IAM token made from it. */
  async revokeToken(id: string): Promise<void> {
    await this.store.update((state) => {
      const entries = [...tokenEntries(state)];
      const entry = entries.find(([, t]) => t.id === id);
      if (entry === undefined) throw notFound('token', id);
      state.tokens.delete(entry[0]);
      for (const [hash, token] of entries) if (token.parentTokenId === id) state.tokens.delete(hash);
    });
  }

  /**
   * IamTokenService.Create with `yandexPassportOauthToken`: the credential is a kmsd API token
   * (what `yc`/the SDKs call an OAuth token); the answer is a new IAM token for the same subject,
   * valid IAM_TOKEN_LIFETIME_SECONDS. An IAM token cannot be exchanged again. Expired IAM tokens
   * are dropped here, and at most MAX_IAM_TOKENS_PER_TOKEN live per API token, so the table stays
   * bounded however often clients exchange.
   */
  async createIamToken(credential: string): Promise<IamToken> {
    const hash = hashToken(credential);
    const value = newToken();
    return this.store.update((state) => {
      const parent = state.tokens.get(hash);
      const now = this.clock.now();
      if (parent === undefined || (parent.expiresAt !== undefined && Date.parse(parent.expiresAt) <= now.getTime())) {
        throw new KmsError('UNAUTHENTICATED', 'yandexPassportOauthToken: the token is not valid');
      }
      if (parent.expiresAt !== undefined) {
        throw new KmsError('UNAUTHENTICATED', 'yandexPassportOauthToken: an IAM token cannot be exchanged for another; give a kmsd API token');
      }
      const siblings: [string, number][] = [];
      for (const [h, token] of [...tokenEntries(state)]) {
        if (token.expiresAt === undefined) continue;
        if (Date.parse(token.expiresAt) <= now.getTime()) state.tokens.delete(h);
        else if (token.parentTokenId === parent.id) siblings.push([h, Date.parse(token.createdAt)]);
      }
      siblings.sort((a, b) => a[1] - b[1]);
      while (siblings.length >= MAX_IAM_TOKENS_PER_TOKEN) state.tokens.delete((siblings.shift() as [string, number])[0]);
      const expiresAt = new Date(now.getTime() + IAM_TOKEN_LIFETIME_SECONDS * 1000).toISOString();
      state.tokens.set(hashToken(value), {
        id: this.ids.next(),
        subject: parent.subject,
        description: `IAM token from token ${parent.id}`,
        createdAt: now.toISOString(),
        expiresAt,
        parentTokenId: parent.id,
      });
      return { iamToken: value, expiresAt, subject: parent.subject };
    });
  }

  listAccessBindings(resource: BindingResource): AccessBinding[] {
    return this.store.read((state) => {
      checkResource(state, resource);
      return (state.accessBindings.get(resourceKey(resource))?.bindings ?? []).map(copyBinding);
    });
  }

  /** Replaces every binding of the resource (authoritative). */
  async setAccessBindings(caller: Caller, resource: BindingResource, bindings: AccessBinding[]): Promise<OperationView> {
    return this.store.update((state) => {
      checkResource(state, resource);
      bindings.forEach((b, i) => checkBinding(state, `accessBindings.${i}`, b));
      const key = resourceKey(resource);
      const before = (state.accessBindings.get(key)?.bindings ?? []).map(copyBinding);
      const after = dedupe(bindings.map(copyBinding));
      state.accessBindings.set(key, { resource: key, bindings: after });
      return this.recordOperation(state, caller, resource, 'Set access bindings', 'SetAccessBindingsMetadata', effectiveDeltas(before, after));
    });
  }

  /** Applies ADD/REMOVE deltas; adding a present binding or removing an absent one is a no-op. */
  async updateAccessBindings(caller: Caller, resource: BindingResource, deltas: AccessBindingDelta[]): Promise<OperationView> {
    return this.store.update((state) => {
      checkResource(state, resource);
      deltas.forEach((d, i) => {
        if (d.action === 'ADD') checkBinding(state, `accessBindingDeltas.${i}.accessBinding`, d.accessBinding);
      });
      const key = resourceKey(resource);
      const before = (state.accessBindings.get(key)?.bindings ?? []).map(copyBinding);
      let bindings = before.map(copyBinding);
      for (const delta of deltas) {
        const same = (b: AccessBinding) => b.roleId === delta.accessBinding.roleId && subjectOf(b) === subjectOf(delta.accessBinding);
        if (delta.action === 'ADD') {
          if (!bindings.some(same)) bindings.push(copyBinding(delta.accessBinding));
        } else {
          bindings = bindings.filter((b) => !same(b));
        }
      }
      state.accessBindings.set(key, { resource: key, bindings });
      return this.recordOperation(state, caller, resource, 'Update access bindings', 'UpdateAccessBindingsMetadata', effectiveDeltas(before, bindings));
    });
  }

  /**
   * The Operation of a binding change. Its response is what each API's annotation names:
   * `google.protobuf.Empty` for a key (SymmetricKeyService), `AccessBindingsOperationResult` with
   * the deltas that changed something for a folder (FolderService).
   */
  private recordOperation(
    state: StateTx,
    caller: Caller,
    resource: BindingResource,
    description: string,
    metadataType: string,
    deltas: AccessBindingDelta[],
  ): OperationView {
    const now = this.clock.now().toISOString();
    const record: OperationRecord = {
      id: this.ids.next(),
      description,
      createdAt: now,
      createdBy: caller.subject,
      modifiedAt: now,
      done: true,
      keyId: resource.type === 'key' ? resource.id : '',
      ...(resource.type === 'folder' ? { folderId: resource.id } : {}),
      metadata: { '@type': `type.googleapis.com/yandex.cloud.access.${metadataType}`, resourceId: resource.id },
      response:
        resource.type === 'folder'
          ? { '@type': 'type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult', effectiveDeltas: deltas }
          : { '@type': 'type.googleapis.com/google.protobuf.Empty' },
    };
    state.operations.set(record.id, record);
    return operationView(record);
  }
}

/** Tokens by their hash; the table is keyed by hash, so this pairs them back up. */
function tokenEntries(state: StateView): IterableIterator<[string, Readonly<TokenRecord>]> {
  return state.tokens.entries();
}

function resourceKey(resource: BindingResource): string {
  return resource.type === 'folder' ? folderResource(resource.id) : keyResource(resource.id);
}

function checkResource(state: StateView, resource: BindingResource): void {
  if (resource.type === 'key') liveKey(state, resource.id);
}

/** A subject a token can be issued to. */
function checkSubject(state: StateView, field: string, subject: string): void {
  if (subject === METRICS_SUBJECT) return;
  const match = /^(userAccount|serviceAccount|federatedUser):([a-z0-9][a-z0-9_-]{0,49})$/.exec(subject);
  if (match === null) throw invalidArgument(field, `"${subject.slice(0, 80)}" must be userAccount:<id>, serviceAccount:<id>, federatedUser:<id> or ${METRICS_SUBJECT}`);
  if (match[1] === 'serviceAccount' && !state.serviceAccounts.has(match[2] ?? '')) {
    throw invalidArgument(field, `service account ${match[2]} does not exist`);
  }
}

function checkBinding(state: StateView, field: string, binding: AccessBinding): void {
  if (!ROLES.has(binding.roleId)) {
    throw invalidArgument(`${field}.roleId`, `unknown role "${binding.roleId}" (known: ${[...ROLES.keys()].join(', ')})`);
  }
  const { type, id } = binding.subject;
  if (type === 'system') {
    if (!(SYSTEM_SUBJECT_IDS as readonly string[]).includes(id)) {
      throw invalidArgument(`${field}.subject.id`, `a system subject is ${SYSTEM_SUBJECT_IDS.join(' or ')}, not "${id.slice(0, 80)}"`);
    }
    return;
  }
  if (!/^[a-z0-9][a-z0-9_-]{0,49}$/.test(id)) {
    throw invalidArgument(`${field}.subject.id`, `"${id.slice(0, 80)}" is not a valid id (lowercase letters, digits, "-" and "_", at most 50 characters)`);
  }
  if (type === 'group') return;
  checkSubject(state, `${field}.subject`, `${type}:${id}`);
}

/** What a change did: ADD for each binding that appeared, REMOVE for each that went. */
function effectiveDeltas(before: AccessBinding[], after: AccessBinding[]): AccessBindingDelta[] {
  const id = (b: AccessBinding) => `${b.roleId}|${subjectOf(b)}`;
  const had = new Set(before.map(id));
  const has = new Set(after.map(id));
  return [
    ...after.filter((b) => !had.has(id(b))).map((b) => ({ action: 'ADD' as const, accessBinding: copyBinding(b) })),
    ...before.filter((b) => !has.has(id(b))).map((b) => ({ action: 'REMOVE' as const, accessBinding: copyBinding(b) })),
  ];
}

function copyBinding(binding: AccessBinding): AccessBinding {
  return { roleId: binding.roleId, subject: { id: binding.subject.id, type: binding.subject.type } };
}

function dedupe(bindings: AccessBinding[]): AccessBinding[] {
  const seen = new Set<string>();
  return bindings.filter((b) => {
    const id = `${b.roleId}|${subjectOf(b)}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
