/**
 * Control-plane routes of /kms/v1/keys, Yandex Cloud KMS REST compatible. Each route turns the
 * validated body into a domain call; field rules beyond the schema live in the domain.
 */
import { parseDurationSeconds } from '../domain/durations.js';
import { invalidArgument } from '../domain/errors.js';
import { UPDATABLE_FIELDS, type CreateKeyInput, type KeyService, type UpdatableField, type UpdateKeyInput } from '../domain/keys.js';
import type { KnownAlgorithm, KeyStatus } from '../domain/model.js';
import { intQuery, keyTarget, pathParam, type RequestContext, type RouteDef } from './router.js';

interface CreateKeyBody {
  folderId: string;
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  defaultAlgorithm?: KnownAlgorithm;
  rotationPeriod?: string;
  deletionProtection?: boolean;
}

interface UpdateKeyBody {
  updateMask: string;
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  status?: KeyStatus;
  defaultAlgorithm?: KnownAlgorithm;
  rotationPeriod?: string | null;
  deletionProtection?: boolean;
}


export function keyRoutes(keys: KeyService): RouteDef[] {
  return [
    {
      method: 'POST',
      path: '/kms/v1/keys',
      operationId: 'SymmetricKey.Create',
      summary: 'Creates a symmetric key and its first (primary) version.',
      permission: 'kms.keys.create',
      body: 'create-key',
      target: (ctx) => ({ folderId: (ctx.body as CreateKeyBody).folderId }),
      handler: async (ctx) => {
        const body = ctx.body as CreateKeyBody;
        const input: CreateKeyInput = { folderId: body.folderId };
        if (body.name !== undefined) input.name = body.name;
        if (body.description !== undefined) input.description = body.description;
        if (body.labels !== undefined) input.labels = body.labels;
        if (body.defaultAlgorithm !== undefined) input.defaultAlgorithm = body.defaultAlgorithm;
        if (body.deletionProtection !== undefined) input.deletionProtection = body.deletionProtection;
        if (body.rotationPeriod !== undefined) input.rotationPeriodSeconds = parseDurationSeconds('rotationPeriod', body.rotationPeriod);
        return { body: await keys.createKey(ctx.caller, input) };
      },
    },
    {
      method: 'GET',
      path: '/kms/v1/keys/{keyId}',
      operationId: 'SymmetricKey.Get',
      summary: 'Returns a symmetric key.',
      permission: 'kms.keys.get',
      target: keyTarget,
      handler: (ctx) => ({ body: keys.getKey(pathParam(ctx, 'keyId')) }),
    },
    {
      method: 'GET',
      path: '/kms/v1/keys',
      operationId: 'SymmetricKey.List',
      summary: 'Lists the symmetric keys of a folder (pageSize ≤ 1000, default 100).',
      permission: 'kms.keys.list',
      query: ['folderId', 'pageSize', 'pageToken'],
      target: (ctx) => ({ folderId: ctx.query.folderId ?? '' }),
      handler: (ctx) => {
        const folderId = ctx.query.folderId;
        if (folderId === undefined || folderId === '') throw invalidArgument('folderId', 'is required');
        const page = keys.listKeys(folderId, pageOf(ctx));
        return { body: withToken({ keys: page.items }, page.nextPageToken) };
      },
    },
    {
      method: 'GET',
      path: '/kms/v1/keys/{keyId}/versions',
      operationId: 'SymmetricKey.ListVersions',
      summary: 'Lists the versions of a symmetric key.',
      permission: 'kms.keys.listVersions',
      query: ['pageSize', 'pageToken'],
      target: keyTarget,
      handler: (ctx) => {
        const page = keys.listVersions(pathParam(ctx, 'keyId'), pageOf(ctx));
        return { body: withToken({ keyVersions: page.items }, page.nextPageToken) };
      },
    },
    {
      method: 'PATCH',
      path: '/kms/v1/keys/{keyId}',
      operationId: 'SymmetricKey.Update',
      summary: 'Updates the fields named in updateMask.',
      permission: 'kms.keys.update',
      body: 'update-key',
      target: keyTarget,
      handler: async (ctx) => ({ body: await keys.updateKey(ctx.caller, pathParam(ctx, 'keyId'), updateInput(ctx.body as UpdateKeyBody)) }),
    },
    {
      method: 'DELETE',
      path: '/kms/v1/keys/{keyId}',
      operationId: 'SymmetricKey.Delete',
      summary: 'Deletes a key (refused while deletionProtection is on); it can be restored during the restore window.',
      permission: 'kms.keys.delete',
      target: keyTarget,
      handler: async (ctx) => ({ body: await keys.deleteKey(ctx.caller, pathParam(ctx, 'keyId')) }),
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:restore',
      operationId: 'SymmetricKey.Restore',
      response: 'wire:Operation',
      summary: 'Restores a deleted key while its restore window (default 72h) is open. Extension of this KMS.',
      permission: 'kms.keys.restore',
      body: 'empty',
      target: keyTarget,
      handler: async (ctx) => ({ body: await keys.restoreKey(ctx.caller, pathParam(ctx, 'keyId')) }),
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:setPrimaryVersion',
      operationId: 'SymmetricKey.SetPrimaryVersion',
      summary: 'Makes an ACTIVE version the primary one.',
      permission: 'kms.keys.setPrimaryVersion',
      body: 'version-ref',
      target: keyTarget,
      handler: async (ctx) => {
        const { versionId } = ctx.body as { versionId: string };
        return { body: await keys.setPrimaryVersion(ctx.caller, pathParam(ctx, 'keyId'), versionId) };
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:scheduleVersionDestruction',
      operationId: 'SymmetricKey.ScheduleVersionDestruction',
      summary: 'Schedules a non-primary version for destruction after pendingPeriod (default 7 days).',
      permission: 'kms.keys.scheduleVersionDestruction',
      body: 'schedule-version-destruction',
      target: keyTarget,
      handler: async (ctx) => {
        const body = ctx.body as { versionId: string; pendingPeriod?: string };
        const pending = body.pendingPeriod === undefined ? undefined : parseDurationSeconds('pendingPeriod', body.pendingPeriod);
        return { body: await keys.scheduleVersionDestruction(ctx.caller, pathParam(ctx, 'keyId'), body.versionId, pending) };
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:cancelVersionDestruction',
      operationId: 'SymmetricKey.CancelVersionDestruction',
      summary: 'Cancels a scheduled destruction; the version becomes ACTIVE again.',
      permission: 'kms.keys.cancelVersionDestruction',
      body: 'version-ref',
      target: keyTarget,
      handler: async (ctx) => {
        const { versionId } = ctx.body as { versionId: string };
        return { body: await keys.cancelVersionDestruction(ctx.caller, pathParam(ctx, 'keyId'), versionId) };
      },
    },
    {
      method: 'POST',
      path: '/kms/v1/keys/{keyId}:rotate',
      operationId: 'SymmetricKey.Rotate',
      summary: 'Adds a version with the default algorithm and makes it primary.',
      permission: 'kms.keys.rotate',
      body: 'empty',
      target: keyTarget,
      handler: async (ctx) => ({ body: await keys.rotateKey(ctx.caller, pathParam(ctx, 'keyId')) }),
    },
    {
      method: 'GET',
      path: '/kms/v1/keys/{keyId}/operations',
      operationId: 'SymmetricKey.ListOperations',
      summary: 'Lists the operations on a key, oldest first.',
      permission: 'kms.keys.listOperations',
      query: ['pageSize', 'pageToken'],
      target: keyTarget,
      handler: (ctx) => {
        const page = keys.listOperations(pathParam(ctx, 'keyId'), pageOf(ctx));
        return { body: withToken({ operations: page.items }, page.nextPageToken) };
      },
    },
    {
      method: 'GET',
      path: '/operations/{operationId}',
      operationId: 'Operation.Get',
      summary: 'Returns an operation.',
      permission: 'kms.operations.get',
      // An unknown operation has no target: only the bootstrap admin gets its 404, others a 403.
      target: (ctx) => keys.operationTarget(pathParam(ctx, 'operationId')),
      handler: (ctx) => ({ body: keys.getOperation(pathParam(ctx, 'operationId')) }),
    },
    {
      method: 'GET',
      path: '/operations/{operationId}:cancel',
      operationId: 'Operation.Cancel',
      summary: 'Cancels an operation. Every kmsd operation completes before it is returned, so this always answers FAILED_PRECONDITION for a known operation.',
      permission: 'kms.operations.get',
      target: (ctx) => keys.operationTarget(pathParam(ctx, 'operationId')),
      handler: (ctx) => ({ body: keys.cancelOperation(pathParam(ctx, 'operationId')) }),
    },
  ];
}

function pageOf(ctx: RequestContext): { pageSize?: number; pageToken?: string } {
  const page: { pageSize?: number; pageToken?: string } = {};
  const size = intQuery(ctx.query, 'pageSize');
  if (size !== undefined) page.pageSize = size;
  if (ctx.query.pageToken !== undefined) page.pageToken = ctx.query.pageToken;
  return page;
}

function withToken<T extends object>(body: T, nextPageToken: string | undefined): T & { nextPageToken?: string } {
  return nextPageToken === undefined ? body : { ...body, nextPageToken };
}

/** Field masks name fields in camelCase (protobuf JSON) or snake_case (gRPC); both are accepted. */
function updateInput(body: UpdateKeyBody): UpdateKeyInput {
  const mask: UpdatableField[] = [];
  for (const raw of body.updateMask.split(',')) {
    const name = raw.trim().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (name === '') continue;
    if (!(UPDATABLE_FIELDS as readonly string[]).includes(name)) {
      throw invalidArgument('updateMask', `"${raw.trim()}" is not an updatable field (allowed: ${UPDATABLE_FIELDS.join(', ')})`);
    }
    if (!mask.includes(name as UpdatableField)) mask.push(name as UpdatableField);
  }
  const input: UpdateKeyInput = { updateMask: mask };
  if (body.name !== undefined) input.name = body.name;
  if (body.description !== undefined) input.description = body.description;
  if (body.labels !== undefined) input.labels = body.labels;
  if (body.status !== undefined) input.status = body.status;
  if (body.defaultAlgorithm !== undefined) input.defaultAlgorithm = body.defaultAlgorithm;
  if (body.deletionProtection !== undefined) input.deletionProtection = body.deletionProtection;
  if (typeof body.rotationPeriod === 'string') input.rotationPeriodSeconds = parseDurationSeconds('rotationPeriod', body.rotationPeriod);
  return input;
}
