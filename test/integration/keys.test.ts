/**
 * The SymmetricKey control plane against the real daemon (in-process, port 0, real data dir):
 * every call, its Operation body, its limits and its error paths.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

let kmsd: TestKmsd;
const FOLDER = 'folder-keys';
const OP_TYPE = 'type.googleapis.com/yandex.cloud.kms.v1.';

const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  api(kmsd, method, path, body, headers);

async function createKey(body: Record<string, unknown> = {}): Promise<any> {
  const res = await call('POST', '/kms/v1/keys', { folderId: FOLDER, ...body });
  expect(res.status).toBe(200);
  return res.body.response;
}

async function advance(seconds: number): Promise<any> {
  const res = await call('POST', '/test/v1/clock:advance', { seconds });
  expect(res.status).toBe(200);
  return res.body;
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
});

afterAll(async () => {
  await kmsd.stop();
});

describe('Create and Get', () => {
  it('creates a key with every field and returns a completed Operation', async () => {
    const res = await call('POST', '/kms/v1/keys', {
      folderId: FOLDER,
      name: 'payments',
      description: 'card data',
      labels: { env: 'prod', team: '' },
      defaultAlgorithm: 'AES_256',
      rotationPeriod: '86400s',
      deletionProtection: true,
    });
    expect(res.status).toBe(200);
    const op = res.body;
    expect(op).toEqual({
      id: expect.stringMatching(/^[a-z0-9]{20}$/),
      description: 'Create symmetric key',
      createdAt: expect.any(String),
      createdBy: 'userAccount:admin',
      modifiedAt: expect.any(String),
      done: true,
      metadata: { '@type': `${OP_TYPE}CreateSymmetricKeyMetadata`, keyId: op.response.id, primaryVersionId: op.response.primaryVersion.id },
      response: expect.objectContaining({ '@type': `${OP_TYPE}SymmetricKey` }),
    });
    const got = await call('GET', `/kms/v1/keys/${op.response.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({
      id: op.response.id,
      folderId: FOLDER,
      createdAt: op.response.createdAt,
      name: 'payments',
      description: 'card data',
      labels: { env: 'prod', team: '' },
      status: 'ACTIVE',
      primaryVersion: {
        id: op.response.primaryVersion.id,
        keyId: op.response.id,
        status: 'ACTIVE',
        algorithm: 'AES_256',
        createdAt: op.response.createdAt,
        primary: true,
        hostedByHsm: false,
      },
      defaultAlgorithm: 'AES_256',
      rotatedAt: op.response.createdAt,
      rotationPeriod: '86400s',
      deletionProtection: true,
    });
    expect(Date.parse(got.body.createdAt)).not.toBeNaN();
    // The operation can be fetched again.
    const again = await call('GET', `/operations/${op.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(op);
  });

  it('applies defaults: AES_128, no rotation, no protection, empty name/description/labels', async () => {
    const key = await createKey();
    expect(key).toMatchObject({ name: '', description: '', labels: {}, defaultAlgorithm: 'AES_128', deletionProtection: false, status: 'ACTIVE' });
    expect(key.rotationPeriod).toBeUndefined();
    // rotatedAt as the proto documents it: the time the last version was created (here the first).
    expect(key.rotatedAt).toBe(key.primaryVersion.createdAt);
  });

  it('marks AES_256_HSM versions as hosted by the HSM', async () => {
    const key = await createKey({ defaultAlgorithm: 'AES_256_HSM' });
    expect(key.primaryVersion).toMatchObject({ algorithm: 'AES_256_HSM', hostedByHsm: true });
  });

  it('accepts the documented limits exactly', async () => {
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}${'a'.repeat(60 - String(i).length)}`, 'v'.repeat(63)]));
    const key = await createKey({ name: 'n'.repeat(100), description: 'd'.repeat(1024), labels, rotationPeriod: '3600s' });
    expect(Object.keys(key.labels)).toHaveLength(64);
    expect(key.rotationPeriod).toBe('3600s');
  });

  it('returns 404 NOT_FOUND for an unknown key and operation', async () => {
    const res = await call('GET', '/kms/v1/keys/abjdoesnotexist00000');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ code: 5, message: 'key abjdoesnotexist00000 not found', details: [] });
    const op = await call('GET', '/operations/abjnope');
    expect(op.status).toBe(404);
    expect(op.body.code).toBe(5);
  });
});

describe('request validation names the field', () => {
  const cases: { name: string; body: unknown; field: string; message: RegExp; raw?: boolean }[] = [
    { name: 'missing folderId', body: {}, field: 'folderId', message: /folderId: is required/ },
    { name: 'unknown field', body: { folderId: FOLDER, colour: 'red' }, field: 'colour', message: /colour: unknown field/ },
    { name: 'wrong type', body: { folderId: FOLDER, deletionProtection: 'yes' }, field: 'deletionProtection', message: /deletionProtection: must be boolean/ },
    { name: 'name too long', body: { folderId: FOLDER, name: 'n'.repeat(101) }, field: 'name', message: /name: must be at most 100 characters/ },
    { name: 'description too long', body: { folderId: FOLDER, description: 'd'.repeat(1025) }, field: 'description', message: /at most 1024/ },
    { name: 'bad algorithm', body: { folderId: FOLDER, defaultAlgorithm: 'DES' }, field: 'defaultAlgorithm', message: /must be one of AES_128, AES_192, AES_256, AES_256_HSM/ },
    { name: 'label key with capitals', body: { folderId: FOLDER, labels: { Env: 'x' } }, field: 'labels.Env', message: /labels\.Env: key "Env" must match/ },
    { name: 'label key too long', body: { folderId: FOLDER, labels: { ['a'.repeat(64)]: 'x' } }, field: `labels.${'a'.repeat(64)}`, message: /at most 63/ },
    { name: 'label value with capitals', body: { folderId: FOLDER, labels: { env: 'Prod' } }, field: 'labels.env', message: /labels\.env: must match/ },
    { name: 'label value too long', body: { folderId: FOLDER, labels: { env: 'v'.repeat(64) } }, field: 'labels.env', message: /at most 63 characters/ },
    {
      name: '65 labels',
      body: { folderId: FOLDER, labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
      field: 'labels',
      message: /labels: must have at most 64 entries/,
    },
    { name: 'duration without unit', body: { folderId: FOLDER, rotationPeriod: '86400' }, field: 'rotationPeriod', message: /rotationPeriod: must match/ },
    { name: 'Go-style duration', body: { folderId: FOLDER, rotationPeriod: '24h' }, field: 'rotationPeriod', message: /rotationPeriod/ },
    { name: 'fractional duration below 1h', body: { folderId: FOLDER, rotationPeriod: '3599.5s' }, field: 'rotationPeriod', message: /at least 1h/ },
    { name: 'rotation below 1h', body: { folderId: FOLDER, rotationPeriod: '3599s' }, field: 'rotationPeriod', message: /at least 1h/ },
    { name: 'bad folder id', body: { folderId: 'Folder/1' }, field: 'folderId', message: /folderId: must match/ },
    { name: 'folder id too long', body: { folderId: 'f'.repeat(51) }, field: 'folderId', message: /folderId: must match/ },
    { name: 'body is an array', body: [], field: 'body', message: /must be object/ },
  ];
  it.each(cases)('$name → 400 INVALID_ARGUMENT', async ({ body, field, message }) => {
    const res = await call('POST', '/kms/v1/keys', body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(3);
    expect(res.body.message).toMatch(message);
    expect(res.body.details[0].fieldViolations[0].field).toBe(field);
  });

  it('malformed JSON → 400 with a clear message', async () => {
    const res = await call('POST', '/kms/v1/keys', '{"folderId": ');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ code: 3, message: 'request body is not valid JSON', details: [] });
  });

  it('oversized body → 413', async () => {
    const res = await call('POST', '/kms/v1/keys', { folderId: FOLDER, description: 'x'.repeat(200_000) });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ code: 3, message: 'request body is larger than 131072 bytes', details: [] });
  });

  it('bad key id in the path → 400 naming keyId', async () => {
    for (const id of ['UPPER', 'a'.repeat(51), 'bad%20id']) {
      const res = await call('GET', `/kms/v1/keys/${id}`);
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^keyId: /);
    }
  });

  it('unknown query parameter and bad pageSize → 400', async () => {
    const unknown = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&colour=red`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toBe('colour: unknown query parameter');
    const big = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1001`);
    expect(big.status).toBe(400);
    expect(big.body.message).toMatch(/pageSize: must be an integer from 0 to 1000/);
    const neg = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=-1`);
    expect(neg.status).toBe(400);
    const token = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&pageToken=garbage`);
    expect(token.status).toBe(400);
    expect(token.body.message).toMatch(/^pageToken: /);
    const noFolder = await call('GET', '/kms/v1/keys');
    expect(noFolder.status).toBe(400);
    expect(noFolder.body.message).toBe('folderId: is required');
  });

  it('unknown route → 404 naming what was asked; wrong method on a known path → 405 with Allow', async () => {
    const unknown = await call('POST', '/kms/v1/keys/abjx:explode');
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe('no API method at POST /kms/v1/keys/abjx:explode');
    const response = await fetch(`${kmsd.url}/kms/v1/keys/abjx`, { method: 'PUT', headers: { authorization: `Bearer ${kmsd.token}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, PATCH, DELETE');
    const body = (await response.json()) as { code: number; message: string };
    expect(body).toMatchObject({ code: 12, message: 'method PUT is not supported on this path (use GET, PATCH, DELETE)' });
  });

  it('a body on a method that takes none → 400', async () => {
    const key = await createKey();
    const res = await call('POST', `/kms/v1/keys/${key.id}:rotate`, { force: true });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe('force: unknown field');
  });
});

describe('authentication', () => {
  it.each([
    ['no header', {}, /missing Authorization header/],
    ['not bearer', { authorization: 'Basic abc' }, /must be "Bearer <token>"/],
    ['wrong token', { authorization: 'Bearer kms_wrong' }, /the token is not valid/],
  ])('%s → 401 UNAUTHENTICATED', async (_name, headers, message) => {
    const response = await fetch(`${kmsd.url}/kms/v1/keys?folderId=${FOLDER}`, { headers: headers as Record<string, string> });
    expect(response.status).toBe(401);
    const body = (await response.json()) as { code: number; message: string };
    expect(body.code).toBe(16);
    expect(body.message).toMatch(message);
  });

  it('/healthz needs no token', async () => {
    const response = await fetch(`${kmsd.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok' });
  });
});

describe('List and ListVersions', () => {
  it('paginates over more than 1000 keys without losing or repeating one', async () => {
    const folder = 'folder-many';
    const created = new Set<string>();
    const total = 1105;
    for (let i = 0; i < total; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, total - i) }, () => call('POST', '/kms/v1/keys', { folderId: folder })),
      );
      for (const res of batch) created.add(res.body.response.id as string);
    }
    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const res = await call('GET', `/kms/v1/keys?folderId=${folder}&pageSize=1000${pageToken ? `&pageToken=${pageToken}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...(res.body.keys as { id: string }[]).map((k) => k.id));
      pageToken = res.body.nextPageToken as string | undefined;
      pages++;
    } while (pageToken !== undefined);
    expect(pages).toBe(2);
    expect(seen).toHaveLength(total);
    expect(new Set(seen)).toEqual(created);
    const defaults = await call('GET', `/kms/v1/keys?folderId=${folder}`);
    expect(defaults.body.keys).toHaveLength(100);
    expect(defaults.body.nextPageToken).toEqual(expect.any(String));
  }, 120_000);

  it('lists only the folder asked for and omits nextPageToken on the last page', async () => {
    const res = await call('GET', '/kms/v1/keys?folderId=empty-folder');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ keys: [] });
  });

  it('lists versions with the primary flag, paginated', async () => {
    const key = await createKey();
    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    const all = await call('GET', `/kms/v1/keys/${key.id}/versions`);
    expect(all.body.keyVersions).toHaveLength(3);
    expect(all.body.keyVersions.map((v: { primary: boolean }) => v.primary)).toEqual([false, false, true]);
    const first = await call('GET', `/kms/v1/keys/${key.id}/versions?pageSize=2`);
    expect(first.body.keyVersions).toHaveLength(2);
    const second = await call('GET', `/kms/v1/keys/${key.id}/versions?pageSize=2&pageToken=${first.body.nextPageToken}`);
    expect(second.body.keyVersions).toHaveLength(1);
    expect(second.body.nextPageToken).toBeUndefined();
  });
});

describe('Update', () => {
  it('changes exactly the fields in updateMask', async () => {
    const key = await createKey({ name: 'before', description: 'keep me', labels: { a: '1' }, rotationPeriod: '7200s' });
    const res = await call('PATCH', `/kms/v1/keys/${key.id}`, {
      updateMask: 'name,labels,defaultAlgorithm,deletionProtection,status',
      name: 'after',
      description: 'ignored: not in the mask',
      labels: { b: '2' },
      defaultAlgorithm: 'AES_192',
      deletionProtection: true,
      status: 'INACTIVE',
    });
    expect(res.status).toBe(200);
    expect(res.body.metadata).toEqual({ '@type': `${OP_TYPE}UpdateSymmetricKeyMetadata`, keyId: key.id });
    expect(res.body.response).toMatchObject({
      name: 'after',
      description: 'keep me',
      labels: { b: '2' },
      defaultAlgorithm: 'AES_192',
      deletionProtection: true,
      status: 'INACTIVE',
      rotationPeriod: '7200s',
    });
  });

  it('accepts snake_case mask names and clears rotationPeriod when it is masked but absent', async () => {
    const key = await createKey({ rotationPeriod: '7200s' });
    const res = await call('PATCH', `/kms/v1/keys/${key.id}`, { updateMask: 'rotation_period' });
    expect(res.status).toBe(200);
    expect(res.body.response.rotationPeriod).toBeUndefined();
    const set = await call('PATCH', `/kms/v1/keys/${key.id}`, { updateMask: 'rotationPeriod', rotationPeriod: '31536000s' });
    expect(set.body.response.rotationPeriod).toBe('31536000s');
  });

  it.each([
    [{ updateMask: '' }, /updateMask: must be at least 1 characters/],
    [{ updateMask: ' , ' }, /updateMask: must name at least one field/],
    [{ updateMask: 'id' }, /updateMask: "id" is not an updatable field/],
    [{ updateMask: 'status', status: 'CREATING' }, /status: must be one of ACTIVE, INACTIVE/],
    [{ updateMask: 'rotationPeriod', rotationPeriod: '60s' }, /rotationPeriod: must be at least 1h/],
    [{ name: 'no mask' }, /updateMask: is required/],
  ])('refuses %j', async (body, message) => {
    const key = await createKey();
    const res = await call('PATCH', `/kms/v1/keys/${key.id}`, body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(3);
    expect(res.body.message).toMatch(message);
  });
});

describe('Delete and restore', () => {
  it('refuses to delete a protected key with FAILED_PRECONDITION', async () => {
    const key = await createKey({ deletionProtection: true });
    const res = await call('DELETE', `/kms/v1/keys/${key.id}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(9);
    expect(res.body.message).toMatch(/deletion protection enabled/);
    expect((await call('GET', `/kms/v1/keys/${key.id}`)).status).toBe(200);
  });

  it('hides a deleted key, restores it inside the window, purges it after', async () => {
    const key = await createKey({ name: 'restorable' });
    const del = await call('DELETE', `/kms/v1/keys/${key.id}`);
    expect(del.status).toBe(200);
    expect(del.body.metadata).toEqual({ '@type': `${OP_TYPE}DeleteSymmetricKeyMetadata`, keyId: key.id });
    expect((await call('GET', `/kms/v1/keys/${key.id}`)).status).toBe(404);
    expect((await call('POST', `/kms/v1/keys/${key.id}:rotate`)).status).toBe(404);
    const listed = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
    expect(listed.body.keys.map((k: { id: string }) => k.id)).not.toContain(key.id);

    const restored = await call('POST', `/kms/v1/keys/${key.id}:restore`);
    expect(restored.status).toBe(200);
    expect((await call('GET', `/kms/v1/keys/${key.id}`)).body.name).toBe('restorable');
    const again = await call('POST', `/kms/v1/keys/${key.id}:restore`);
    expect(again.status).toBe(400);
    expect(again.body.message).toMatch(/is not deleted/);

    await call('DELETE', `/kms/v1/keys/${key.id}`);
    await advance(72 * 3600 + 1);
    const gone = await call('POST', `/kms/v1/keys/${key.id}:restore`);
    expect(gone.status).toBe(404);
  });
});

describe('versions: primary, destruction, rotation', () => {
  it('sets the primary version and refuses one that is not ACTIVE', async () => {
    const key = await createKey();
    const first = key.primaryVersion.id as string;
    const rotated = await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    // SymmetricKeyService.Rotate's annotation: the response is the SymmetricKey, with its new primary.
    expect(rotated.body.metadata).toEqual({ '@type': `${OP_TYPE}RotateSymmetricKeyMetadata`, keyId: key.id, newPrimaryVersionId: rotated.body.response.primaryVersion.id });
    expect(rotated.body.response).toMatchObject({ '@type': `${OP_TYPE}SymmetricKey`, id: key.id, primaryVersion: { primary: true, algorithm: 'AES_128' } });
    expect(rotated.body.response.rotatedAt).toBe(rotated.body.response.primaryVersion.createdAt);
    const set = await call('POST', `/kms/v1/keys/${key.id}:setPrimaryVersion`, { versionId: first });
    expect(set.status).toBe(200);
    expect(set.body.metadata).toEqual({ '@type': `${OP_TYPE}SetPrimarySymmetricKeyVersionMetadata`, keyId: key.id, versionId: first });
    expect(set.body.response.primaryVersion.id).toBe(first);
    const other = await call('POST', `/kms/v1/keys/${key.id}:setPrimaryVersion`, { versionId: 'abjnotaversion' });
    expect(other.status).toBe(404);
    expect(other.body.message).toBe('version abjnotaversion not found');
    const missing = await call('POST', `/kms/v1/keys/${key.id}:setPrimaryVersion`, {});
    expect(missing.status).toBe(400);
    expect(missing.body.message).toBe('versionId: is required');
  });

  it('schedules destruction (default 7 days), cancels it, and destroys at destroyAt', async () => {
    const key = await createKey();
    const v1 = key.primaryVersion.id as string;
    const primaryRefused = await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: v1 });
    expect(primaryRefused.status).toBe(400);
    expect(primaryRefused.body.code).toBe(9);
    expect(primaryRefused.body.message).toMatch(/is the primary version/);

    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    const scheduled = await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: v1 });
    expect(scheduled.status).toBe(200);
    const destroyAt = Date.parse(scheduled.body.response.destroyAt as string);
    const createdAt = Date.parse(scheduled.body.createdAt as string);
    expect(Math.round((destroyAt - createdAt) / 1000)).toBe(7 * 24 * 3600);
    expect(scheduled.body.metadata).toEqual({
      '@type': `${OP_TYPE}ScheduleSymmetricKeyVersionDestructionMetadata`,
      keyId: key.id,
      versionId: v1,
      destroyAt: scheduled.body.response.destroyAt,
    });
    expect(scheduled.body.response.status).toBe('SCHEDULED_FOR_DESTRUCTION');
    const twice = await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: v1 });
    expect(twice.status).toBe(400);
    const asPrimary = await call('POST', `/kms/v1/keys/${key.id}:setPrimaryVersion`, { versionId: v1 });
    expect(asPrimary.status).toBe(400);
    expect(asPrimary.body.message).toMatch(/only an ACTIVE version can be primary/);

    const cancelled = await call('POST', `/kms/v1/keys/${key.id}:cancelVersionDestruction`, { versionId: v1 });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.response).toMatchObject({ status: 'ACTIVE' });
    expect(cancelled.body.response.destroyAt).toBeUndefined();
    const notScheduled = await call('POST', `/kms/v1/keys/${key.id}:cancelVersionDestruction`, { versionId: v1 });
    expect(notScheduled.status).toBe(400);
    expect(notScheduled.body.message).toMatch(/not SCHEDULED_FOR_DESTRUCTION/);

    await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: v1, pendingPeriod: '3600s' });
    await advance(1800);
    let versions = await call('GET', `/kms/v1/keys/${key.id}/versions`);
    expect(versions.body.keyVersions[0].status).toBe('SCHEDULED_FOR_DESTRUCTION');
    const report = await advance(1801);
    expect(report.destroyedVersions).toContain(v1);
    versions = await call('GET', `/kms/v1/keys/${key.id}/versions`);
    expect(versions.body.keyVersions[0]).toMatchObject({ id: v1, status: 'DESTROYED' });
    const cancelDestroyed = await call('POST', `/kms/v1/keys/${key.id}:cancelVersionDestruction`, { versionId: v1 });
    expect(cancelDestroyed.status).toBe(400);
  });

  it('refuses bad pending periods', async () => {
    const key = await createKey();
    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    for (const pendingPeriod of ['0s', '7d', '-1s']) {
      const res = await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: key.primaryVersion.id, pendingPeriod });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^pendingPeriod: /);
    }
  });

  it('rotates automatically when rotationPeriod elapses, once per period, and not when INACTIVE', async () => {
    const key = await createKey({ rotationPeriod: '86400s' });
    const inactive = await createKey({ rotationPeriod: '86400s' });
    await call('PATCH', `/kms/v1/keys/${inactive.id}`, { updateMask: 'status', status: 'INACTIVE' });
    await advance(86_000);
    expect((await call('GET', `/kms/v1/keys/${key.id}`)).body.rotatedAt).toBe(key.createdAt);
    const report = await advance(400);
    expect(report.rotated).toContain(key.id);
    expect(report.rotated).not.toContain(inactive.id);
    const after = await call('GET', `/kms/v1/keys/${key.id}`);
    expect(after.body.rotatedAt).toEqual(expect.any(String));
    expect(after.body.primaryVersion.id).not.toBe(key.primaryVersion.id);
    expect(after.body.rotatedAt).toBe(after.body.primaryVersion.createdAt);
    const ops = await call('GET', `/kms/v1/keys/${key.id}/operations`);
    const rotation = ops.body.operations.find((op: { description: string }) => op.description === 'Rotate symmetric key');
    expect(rotation.createdBy).toBe('system:scheduler');
    // Not due again until another full period has passed.
    const soon = await advance(3600);
    expect(soon.rotated).not.toContain(key.id);
    const rotateInactive = await call('POST', `/kms/v1/keys/${inactive.id}:rotate`);
    expect(rotateInactive.status).toBe(400);
    expect(rotateInactive.body.message).toMatch(/is INACTIVE/);
  });

  it('lists a key\'s operations, paginated, and 404s for a missing key', async () => {
    const key = await createKey();
    await call('PATCH', `/kms/v1/keys/${key.id}`, { updateMask: 'name', name: 'x' });
    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    const ops = await call('GET', `/kms/v1/keys/${key.id}/operations`);
    expect(ops.body.operations.map((op: { description: string }) => op.description)).toEqual([
      'Create symmetric key',
      'Update symmetric key',
      'Rotate symmetric key',
    ]);
    const page = await call('GET', `/kms/v1/keys/${key.id}/operations?pageSize=1`);
    expect(page.body.operations).toHaveLength(1);
    expect(page.body.nextPageToken).toEqual(expect.any(String));
    expect((await call('GET', '/kms/v1/keys/abjmissing/operations')).status).toBe(404);
  });
});

describe('/openapi.json', () => {
  it('describes every route with its permission and body schema', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const paths = res.body.paths as Record<string, Record<string, { operationId: string; 'x-kms-permission': string }>>;
    expect(paths['/kms/v1/keys/{keyId}:rotate']?.post?.operationId).toBe('SymmetricKey.Rotate');
    expect(paths['/kms/v1/keys']?.post?.['x-kms-permission']).toBe('kms.keys.create');
    expect(res.body.components.schemas['create-key'].properties.labels.$ref).toBe('#/components/schemas/common/definitions/labels');
  });
});
