/**
 * The key control plane: symmetric keys, their versions and the Operations that record every
 * change. Rules from DESIGN §4. Each mutating call runs in one `Store.update`, checks every
 * precondition first and only then changes state, and answers with a completed Operation.
 */
import type * as Wire from '../../api/wire.gen.js';
import { KmsError, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { describeSeconds } from './durations.js';
import { keystoreAlgorithm, type Algorithm, type KeyRecord, type KeyStatus, type KnownAlgorithm, type MaterialRef, type OperationRecord, type StateTx, type StateView, type VersionRecord } from './model.js';
import type { Caller, Clock, IdGenerator, Keystore, Store } from './ports.js';
import {
  TYPE_PREFIX,
  keyView,
  operationView,
  versionView,
  type OperationView,
  type SymmetricKeyVersionView,
  type SymmetricKeyView,
} from './views.js';

/** Automatic rotation more often than this is refused (DESIGN §4). */
export const MIN_ROTATION_PERIOD_SECONDS = 3600;
/** Upper bound keeps date arithmetic exact; 100 years is far beyond any sane rotation policy. */
export const MAX_PERIOD_SECONDS = 100 * 365 * 24 * 3600;
export const DEFAULT_PENDING_PERIOD_SECONDS = 7 * 24 * 3600;
export const DEFAULT_RESTORE_WINDOW_SECONDS = 72 * 3600;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;
/** Operations are kept this long (Yandex also keeps them for a limited time), then pruned. */
export const DEFAULT_OPERATION_RETENTION_SECONDS = 30 * 24 * 3600;
/** At most this many operations are pruned per scheduler step, so one step never stalls the daemon. */
const MAX_PRUNE_PER_RUN = 5000;

/** The subject recorded for work the daemon does on its own (automatic rotation, destruction). */
export const SCHEDULER_SUBJECT = 'system:scheduler';

export interface CreateKeyInput {
  folderId: string;
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  defaultAlgorithm?: KnownAlgorithm;
  rotationPeriodSeconds?: number;
  deletionProtection?: boolean;
}

/** Fields Update can change, by their API names (the names allowed in `updateMask`). */
export const UPDATABLE_FIELDS = [
  'name',
  'description',
  'labels',
  'status',
  'defaultAlgorithm',
  'rotationPeriod',
  'deletionProtection',
] as const;
export type UpdatableField = (typeof UPDATABLE_FIELDS)[number];

export interface UpdateKeyInput {
  updateMask: UpdatableField[];
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  status?: KeyStatus;
  defaultAlgorithm?: KnownAlgorithm;
  /** Absent (or null on the wire) with `rotationPeriod` in the mask clears automatic rotation. */
  rotationPeriodSeconds?: number;
  deletionProtection?: boolean;
}

export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

export interface PageRequest {
  pageSize?: number;
  pageToken?: string;
}

export interface KeyServiceDeps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  /** Null only where no key material is needed (tests of the control plane rules). */
  keystore: Keystore | null;
  restoreWindowSeconds?: number;
  /** Age after which operations are pruned (default 30 days). */
  operationRetentionSeconds?: number;
}

/** What `runDueWork` did, for logs and for the test clock's response. */
export interface DueWorkReport {
  rotated: string[];
  destroyedVersions: string[];
  purgedKeys: string[];
  /** Number of operations pruned for age. */
  prunedOperations: number;
}

export class KeyService {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly ids: IdGenerator;
  private readonly keystore: Keystore | null;
  private readonly restoreWindowSeconds: number;
  private readonly operationRetentionSeconds: number;

  constructor(deps: KeyServiceDeps) {
    this.store = deps.store;
    this.clock = deps.clock;
    this.ids = deps.ids;
    this.keystore = deps.keystore;
    this.restoreWindowSeconds = deps.restoreWindowSeconds ?? DEFAULT_RESTORE_WINDOW_SECONDS;
    this.operationRetentionSeconds = deps.operationRetentionSeconds ?? DEFAULT_OPERATION_RETENTION_SECONDS;
  }

  async createKey(caller: Caller, input: CreateKeyInput): Promise<OperationView> {
    checkRotationPeriod('rotationPeriod', input.rotationPeriodSeconds);
    const algorithm = keystoreAlgorithm('defaultAlgorithm', input.defaultAlgorithm ?? 'AES_128', this.keystoreFacts());
    return this.store.update((state) => {
      const now = this.nowIso();
      const keyId = this.ids.next();
      const versionId = this.ids.next();
      const material = this.createMaterial(state, versionId, algorithm);
      const key: KeyRecord = {
        id: keyId,
        folderId: input.folderId,
        createdAt: now,
        name: input.name ?? '',
        description: input.description ?? '',
        labels: { ...(input.labels ?? {}) },
        status: 'ACTIVE',
        primaryVersionId: versionId,
        defaultAlgorithm: algorithm,
        deletionProtection: input.deletionProtection ?? false,
      };
      if (input.rotationPeriodSeconds !== undefined) key.rotationPeriodSeconds = input.rotationPeriodSeconds;
      const version = newVersion(versionId, keyId, algorithm, now, material);
      state.keys.set(keyId, key);
      state.versions.set(versionId, version);
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Create symmetric key',
        metadata: { '@type': `${TYPE_PREFIX}CreateSymmetricKeyMetadata`, keyId, primaryVersionId: versionId },
        response: typed('SymmetricKey', keyView(key, version)),
      });
    });
  }

  getKey(keyId: string): SymmetricKeyView {
    return this.store.read((state) => {
      const key = liveKey(state, keyId);
      return keyView(key, primaryOf(state, key));
    });
  }

  listKeys(folderId: string, page: PageRequest): Page<SymmetricKeyView> {
    return this.store.read((state) => {
      const keys = [...state.keys.values()].filter((k) => k.folderId === folderId && k.deletedAt === undefined);
      return paginate(keys, page, (k) => keyView(k, primaryOf(state, k)));
    });
  }

  listVersions(keyId: string, page: PageRequest): Page<SymmetricKeyVersionView> {
    return this.store.read((state) => {
      const key = liveKey(state, keyId);
      const versions = [...state.versions.values()].filter((v) => v.keyId === key.id);
      return paginate(versions, page, (v) => versionView(v, key.primaryVersionId));
    });
  }

  async updateKey(caller: Caller, keyId: string, input: UpdateKeyInput): Promise<OperationView> {
    if (input.updateMask.length === 0) {
      throw invalidArgument('updateMask', 'must name at least one field to update');
    }
    const mask = new Set(input.updateMask);
    if (mask.has('status') && input.status !== 'ACTIVE' && input.status !== 'INACTIVE') {
      throw invalidArgument('status', 'can only be set to ACTIVE or INACTIVE');
    }
    if (mask.has('rotationPeriod')) checkRotationPeriod('rotationPeriod', input.rotationPeriodSeconds);
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      if (mask.has('name')) key.name = input.name ?? '';
      if (mask.has('description')) key.description = input.description ?? '';
      if (mask.has('labels')) key.labels = { ...(input.labels ?? {}) };
      if (mask.has('status') && input.status !== undefined) key.status = input.status;
      if (mask.has('defaultAlgorithm')) key.defaultAlgorithm = keystoreAlgorithm('defaultAlgorithm', input.defaultAlgorithm ?? 'AES_128', this.keystoreFacts());
      if (mask.has('deletionProtection')) key.deletionProtection = input.deletionProtection ?? false;
      if (mask.has('rotationPeriod')) {
        if (input.rotationPeriodSeconds === undefined) delete key.rotationPeriodSeconds;
        else key.rotationPeriodSeconds = input.rotationPeriodSeconds;
      }
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Update symmetric key',
        metadata: { '@type': `${TYPE_PREFIX}UpdateSymmetricKeyMetadata`, keyId },
        response: typed('SymmetricKey', keyView(key, primaryOf(state, key))),
      });
    });
  }

  /**
   * Hides the key from every call and starts the restore window; at its end the scheduler
   * destroys all versions. Refused while deletion protection is on, whoever asks.
   */
  async deleteKey(caller: Caller, keyId: string): Promise<OperationView> {
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      if (key.deletionProtection) {
        throw failedPrecondition(
          `key ${keyId} has deletion protection enabled; set deletionProtection to false before deleting it`,
        );
      }
      const now = this.clock.now();
      key.deletedAt = now.toISOString();
      key.purgeAt = addSeconds(now, this.restoreWindowSeconds);
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Delete symmetric key',
        metadata: { '@type': `${TYPE_PREFIX}DeleteSymmetricKeyMetadata`, keyId },
        response: typed('SymmetricKey', keyView(key, primaryOf(state, key))),
      });
    });
  }

  /** Our extension: brings a deleted key back while its restore window is open. */
  async restoreKey(caller: Caller, keyId: string): Promise<OperationView> {
    return this.store.update((state) => {
      const key = state.keys.get(keyId);
      if (key === undefined) throw notFound('key', keyId);
      if (key.deletedAt === undefined) throw failedPrecondition(`key ${keyId} is not deleted`);
      delete key.deletedAt;
      delete key.purgeAt;
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Restore symmetric key',
        metadata: { '@type': `${TYPE_PREFIX}RestoreSymmetricKeyMetadata`, keyId },
        response: typed('SymmetricKey', keyView(key, primaryOf(state, key))),
      });
    });
  }

  async setPrimaryVersion(caller: Caller, keyId: string, versionId: string): Promise<OperationView> {
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      const version = versionOf(state, key, versionId);
      if (version.status !== 'ACTIVE') {
        throw failedPrecondition(`version ${versionId} is ${version.status}; only an ACTIVE version can be primary`);
      }
      key.primaryVersionId = version.id;
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Set primary version',
        metadata: { '@type': `${TYPE_PREFIX}SetPrimarySymmetricKeyVersionMetadata`, keyId, versionId },
        response: typed('SymmetricKey', keyView(key, version)),
      });
    });
  }

  async scheduleVersionDestruction(
    caller: Caller,
    keyId: string,
    versionId: string,
    pendingPeriodSeconds = DEFAULT_PENDING_PERIOD_SECONDS,
  ): Promise<OperationView> {
    if (pendingPeriodSeconds < 1 || pendingPeriodSeconds > MAX_PERIOD_SECONDS) {
      throw invalidArgument('pendingPeriod', `must be between 1s and ${MAX_PERIOD_SECONDS}s`);
    }
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      const version = versionOf(state, key, versionId);
      if (version.id === key.primaryVersionId) {
        throw failedPrecondition(`version ${versionId} is the primary version of key ${keyId}; make another version primary first`);
      }
      if (version.status !== 'ACTIVE') {
        throw failedPrecondition(`version ${versionId} is ${version.status}; only an ACTIVE version can be scheduled for destruction`);
      }
      version.status = 'SCHEDULED_FOR_DESTRUCTION';
      version.destroyAt = addSeconds(this.clock.now(), pendingPeriodSeconds);
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Schedule version destruction',
        metadata: {
          '@type': `${TYPE_PREFIX}ScheduleSymmetricKeyVersionDestructionMetadata`,
          keyId,
          versionId,
          destroyAt: version.destroyAt,
        },
        response: typed('SymmetricKeyVersion', versionView(version, key.primaryVersionId)),
      });
    });
  }

  async cancelVersionDestruction(caller: Caller, keyId: string, versionId: string): Promise<OperationView> {
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      const version = versionOf(state, key, versionId);
      if (version.status !== 'SCHEDULED_FOR_DESTRUCTION') {
        throw failedPrecondition(`version ${versionId} is ${version.status}, not SCHEDULED_FOR_DESTRUCTION`);
      }
      version.status = 'ACTIVE';
      delete version.destroyAt;
      return this.recordOperation(state, caller, {
        keyId,
        description: 'Cancel version destruction',
        metadata: { '@type': `${TYPE_PREFIX}CancelSymmetricKeyVersionDestructionMetadata`, keyId, versionId },
        response: typed('SymmetricKeyVersion', versionView(version, key.primaryVersionId)),
      });
    });
  }

  /** Adds a version with the key's current default algorithm and makes it primary. */
  async rotateKey(caller: Caller, keyId: string): Promise<OperationView> {
    return this.store.update((state) => {
      const key = liveKey(state, keyId);
      requireActive(key);
      return this.rotateInState(state, caller, key);
    });
  }

  listOperations(keyId: string, page: PageRequest): Page<OperationView> {
    return this.store.read((state) => {
      liveKey(state, keyId);
      const ops = [...state.operations.values()].filter((op) => op.keyId === keyId);
      return paginate(ops, page, operationView);
    });
  }

  /** What an operation's access is checked against: its key, or its folder. */
  operationTarget(operationId: string): { keyId?: string; folderId?: string } {
    return this.store.read((state) => {
      const op = state.operations.get(operationId);
      if (op === undefined) return {};
      return op.folderId !== undefined ? { folderId: op.folderId } : { keyId: op.keyId };
    });
  }

  /** Operations are done when they are returned: there is never anything left to cancel. */
  cancelOperation(operationId: string): OperationView {
    const op = this.getOperation(operationId);
    if (op.done) throw failedPrecondition(`operation ${operationId} is already done; it cannot be cancelled`);
    return op;
  }

  getOperation(operationId: string): OperationView {
    return this.store.read((state) => {
      const op = state.operations.get(operationId);
      if (op === undefined) throw notFound('operation', operationId);
      return operationView(op);
    });
  }

  /**
   * The scheduler's step: rotates keys whose period has elapsed, destroys versions whose
   * `destroyAt` has passed, and purges deleted keys at the end of their restore window.
   * Material is erased before the state says so: a crash in between leaves a record that can no
   * longer decrypt, never material that outlives its promised destruction.
   */
  async runDueWork(): Promise<DueWorkReport> {
    const report: DueWorkReport = { rotated: [], destroyedVersions: [], purgedKeys: [], prunedOperations: 0 };
    const now = this.clock.now();
    const due = this.store.read((state) => findDueWork(state, now, this.operationRetentionSeconds));
    const caller: Caller = { subject: SCHEDULER_SUBJECT };

    for (const keyId of due.rotate) {
      try {
        await this.rotateKeyIfDue(caller, keyId, now);
        report.rotated.push(keyId);
      } catch (err) {
        // A key deleted or deactivated since the scan is simply no longer due.
        if (!(err instanceof KmsError)) throw err;
      }
    }
    if (due.destroy.length > 0) {
      for (const versionId of due.destroy) this.eraseMaterialOf(versionId);
      await this.store.update((state) => {
        for (const versionId of due.destroy) {
          const version = state.versions.get(versionId);
          if (version === undefined || version.status !== 'SCHEDULED_FOR_DESTRUCTION') continue;
          version.status = 'DESTROYED';
          delete version.material;
          report.destroyedVersions.push(versionId);
        }
      });
    }
    if (due.purge.length > 0) {
      for (const keyId of due.purge) {
        const versionIds = this.store.read((state) => [...state.versions.values()].filter((v) => v.keyId === keyId).map((v) => v.id));
        for (const versionId of versionIds) this.eraseMaterialOf(versionId);
      }
      await this.store.update((state) => {
        for (const keyId of due.purge) {
          if (!state.keys.has(keyId)) continue;
          const versionIds = [...state.versions.values()].filter((v) => v.keyId === keyId).map((v) => v.id);
          for (const versionId of versionIds) state.versions.delete(versionId);
          state.keys.delete(keyId);
          report.purgedKeys.push(keyId);
        }
      });
    }
    if (due.pruneOperations.length > 0) {
      await this.store.update((state) => {
        for (const id of due.pruneOperations) if (state.operations.delete(id)) report.prunedOperations++;
      });
    }
    return report;
  }

  private async rotateKeyIfDue(caller: Caller, keyId: string, now: Date): Promise<void> {
    await this.store.update((state) => {
      const key = liveKey(state, keyId);
      if (isRotationDue(key, now)) this.rotateInState(state, caller, key);
    });
  }

  /** Creates the material first: if the HSM refuses, the state is left untouched. */
  private rotateInState(state: StateTx, caller: Caller, key: KeyRecord): OperationView {
    const versionId = this.ids.next();
    const material = this.createMaterial(state, versionId, key.defaultAlgorithm);
    const now = this.nowIso();
    const version = newVersion(versionId, key.id, key.defaultAlgorithm, now, material);
    state.versions.set(versionId, version);
    key.primaryVersionId = versionId;
    key.rotatedAt = now;
    return this.recordOperation(state, caller, {
      keyId: key.id,
      description: 'Rotate symmetric key',
      metadata: { '@type': `${TYPE_PREFIX}RotateSymmetricKeyMetadata`, keyId: key.id, newPrimaryVersionId: versionId },
      // The annotation of SymmetricKeyService.Rotate: the response is the key (with its new primary).
      response: typed('SymmetricKey', keyView(key, version)),
    });
  }

  private recordOperation(
    state: StateTx,
    caller: Caller,
    op: { keyId: string; description: string; metadata: Wire.Any; response: Wire.Any },
  ): OperationView {
    const now = this.nowIso();
    const record: OperationRecord = {
      id: this.ids.next(),
      description: op.description,
      createdAt: now,
      createdBy: caller.subject,
      modifiedAt: now,
      done: true,
      keyId: op.keyId,
      metadata: op.metadata,
      response: op.response,
    };
    state.operations.set(record.id, record);
    return operationView(record);
  }

  /** New material for a version; destroyed again if the update that needs it never commits. */
  private createMaterial(state: StateTx, versionId: string, algorithm: Algorithm): MaterialRef | undefined {
    const keystore = this.keystore;
    if (keystore === null) return undefined;
    const material = keystore.createVersionMaterial(versionId, algorithm);
    state.onAbort(() => keystore.destroyVersionMaterial(material));
    return material;
  }

  private discardMaterial(material: MaterialRef | undefined): void {
    if (material !== undefined) this.keystore?.destroyVersionMaterial(material);
  }

  private eraseMaterialOf(versionId: string): void {
    const material = this.store.read((state) => state.versions.get(versionId)?.material);
    this.discardMaterial(material);
  }

  private keystoreFacts(): { kind: string; label?: string } | null {
    if (this.keystore === null) return null;
    const token = this.keystore.identity().token;
    return { kind: this.keystore.kind, ...(token !== null ? { label: token.label } : {}) };
  }

  private nowIso(): string {
    return this.clock.now().toISOString();
  }
}

function typed(type: string, view: object): Wire.Any {
  return { '@type': `${TYPE_PREFIX}${type}`, ...view };
}

function newVersion(id: string, keyId: string, algorithm: Algorithm, createdAt: string, material: MaterialRef | undefined): VersionRecord {
  const version: VersionRecord = { id, keyId, status: 'ACTIVE', algorithm, createdAt };
  if (material !== undefined) version.material = material;
  return version;
}

/**
 * A key that exists and is not deleted; deleted keys are invisible to every call but restore.
 * Inside an update it is the transaction's mutable copy.
 */
export function liveKey(state: StateTx, keyId: string): KeyRecord;
export function liveKey(state: StateView, keyId: string): Readonly<KeyRecord>;
export function liveKey(state: StateView, keyId: string): Readonly<KeyRecord> {
  const key = state.keys.get(keyId);
  if (key === undefined || key.deletedAt !== undefined) throw notFound('key', keyId);
  return key;
}

export function primaryOf(state: StateView, key: Readonly<KeyRecord>): Readonly<VersionRecord> {
  const version = state.versions.get(key.primaryVersionId);
  if (version === undefined) {
    throw new KmsError('INTERNAL', `primary version of key ${key.id} is missing from the store`);
  }
  return version;
}

function versionOf(state: StateTx, key: Readonly<KeyRecord>, versionId: string): VersionRecord {
  const version = state.versions.get(versionId);
  if (version === undefined || version.keyId !== key.id) throw notFound('version', versionId);
  return version;
}

function requireActive(key: KeyRecord): void {
  if (key.status !== 'ACTIVE') throw failedPrecondition(`key ${key.id} is ${key.status}`);
}

function checkRotationPeriod(field: string, seconds: number | undefined): void {
  if (seconds === undefined) return;
  if (seconds < MIN_ROTATION_PERIOD_SECONDS) {
    throw invalidArgument(field, `must be at least ${describeSeconds(MIN_ROTATION_PERIOD_SECONDS)} (${MIN_ROTATION_PERIOD_SECONDS}s), got ${seconds}s`);
  }
  if (seconds > MAX_PERIOD_SECONDS) {
    throw invalidArgument(field, `must be at most ${MAX_PERIOD_SECONDS}s (100 years), got ${seconds}s`);
  }
}

function addSeconds(date: Date, seconds: number): string {
  return new Date(date.getTime() + seconds * 1000).toISOString();
}

function isRotationDue(key: Readonly<KeyRecord>, now: Date): boolean {
  if (key.rotationPeriodSeconds === undefined || key.status !== 'ACTIVE' || key.deletedAt !== undefined) return false;
  const last = Date.parse(key.rotatedAt ?? key.createdAt);
  return now.getTime() >= last + key.rotationPeriodSeconds * 1000;
}

interface DueWork {
  rotate: string[];
  destroy: string[];
  purge: string[];
  pruneOperations: string[];
}

function findDueWork(state: StateView, now: Date, operationRetentionSeconds: number): DueWork {
  const nowMs = now.getTime();
  const due: DueWork = { rotate: [], destroy: [], purge: [], pruneOperations: [] };
  for (const key of state.keys.values()) {
    if (isRotationDue(key, now)) due.rotate.push(key.id);
    if (key.purgeAt !== undefined && Date.parse(key.purgeAt) <= nowMs) due.purge.push(key.id);
  }
  for (const version of state.versions.values()) {
    if (version.status === 'SCHEDULED_FOR_DESTRUCTION' && version.destroyAt !== undefined && Date.parse(version.destroyAt) <= nowMs) {
      due.destroy.push(version.id);
    }
  }
  // Operations are stored in creation order, so the old ones are a prefix.
  const cutoff = nowMs - operationRetentionSeconds * 1000;
  for (const op of state.operations.values()) {
    if (due.pruneOperations.length >= MAX_PRUNE_PER_RUN || Date.parse(op.createdAt) > cutoff) break;
    if (op.done) due.pruneOperations.push(op.id);
  }
  return due;
}

/**
 * Cursor pagination over records in creation order (the store keeps insertion order). The page
 * token is the id of the last item returned, so pages stay stable while other keys come and go.
 */
function paginate<R extends { readonly id: string }, V>(records: R[], page: PageRequest, view: (r: R) => V): Page<V> {
  const pageSize = page.pageSize === undefined || page.pageSize === 0 ? DEFAULT_PAGE_SIZE : page.pageSize;
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw invalidArgument('pageSize', `must be an integer from 0 to ${MAX_PAGE_SIZE}`);
  }
  let start = 0;
  if (page.pageToken !== undefined && page.pageToken !== '') {
    const after = decodePageToken(page.pageToken);
    const index = records.findIndex((r) => r.id === after);
    if (index < 0) throw invalidArgument('pageToken', 'is not a token returned by a previous call, or its item is gone');
    start = index + 1;
  }
  const slice = records.slice(start, start + pageSize);
  const result: Page<V> = { items: slice.map(view) };
  const last = slice.at(-1);
  if (last !== undefined && start + pageSize < records.length) result.nextPageToken = encodePageToken(last.id);
  return result;
}

function encodePageToken(id: string): string {
  return Buffer.from(`after:${id}`).toString('base64url');
}

function decodePageToken(token: string): string {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  if (!text.startsWith('after:')) throw invalidArgument('pageToken', 'is not a token returned by a previous call');
  return text.slice('after:'.length);
}
