/**
 * REST behaviour that follows from the protos (the proto3 JSON mapping of the same messages):
 * query parameters by JSON or proto name, enums by name or number, every Duration form, an empty
 * SetAccessBindings that clears, GOST_R_3412_2015_K refused naming the keystore, the system /
 * federatedUser / group subjects and the primitive roles.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

let kmsd: TestKmsd;
const FOLDER = 'conformance';
const call = (method: string, path: string, body?: unknown) => api(kmsd, method, path, body);

beforeAll(async () => {
  kmsd = await startTestKmsd();
}, 60_000);

afterAll(async () => {
  await kmsd?.stop();
});

async function newKey(body: Record<string, unknown> = {}): Promise<any> {
  const res = await call('POST', '/kms/v1/keys', { folderId: FOLDER, ...body });
  expect(res.status).toBe(200);
  return res.body.response;
}

async function tokenFor(subject: string): Promise<string> {
  const res = await call('POST', ADMIN_PATHS.tokens, { subject });
  expect(res.status).toBe(200);
  return res.body.token as string;
}

describe('proto3 JSON forms', () => {
  it('takes query parameters by JSON and by proto name, not both', async () => {
    const key = await newKey();
    const byJson = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
    const byProto = await call('GET', `/kms/v1/keys?folder_id=${FOLDER}&page_size=1000`);
    expect(byProto.status).toBe(200);
    expect(byProto.body).toEqual(byJson.body);
    expect(byProto.body.keys.map((k: { id: string }) => k.id)).toContain(key.id);
    const twice = await call('GET', `/kms/v1/keys?folderId=${FOLDER}&folder_id=${FOLDER}`);
    expect(twice.status).toBe(400);
    expect(twice.body.message).toBe('folder_id: given twice (as folderId and as its proto name)');
    expect((await call('GET', `/kms/v1/keys?folder_idx=${FOLDER}`)).body.message).toBe('folder_idx: unknown query parameter');
  });

  it('takes enums by name or by number', async () => {
    const byNumber = await newKey({ defaultAlgorithm: 3 });
    expect(byNumber.defaultAlgorithm).toBe('AES_256');
    const update = await call('PATCH', `/kms/v1/keys/${byNumber.id}`, { updateMask: 'status,defaultAlgorithm', status: 3, defaultAlgorithm: 'AES_192' });
    expect(update.status).toBe(200);
    expect(update.body.response).toMatchObject({ status: 'INACTIVE', defaultAlgorithm: 'AES_192' });
    const active = await newKey();
    const dk = await call('POST', `/kms/v1/keys/${active.id}:generateDataKey`, { dataKeySpec: 1 });
    expect(Buffer.from(dk.body.dataKeyPlaintext as string, 'base64')).toHaveLength(16);
    const bad = await call('POST', '/kms/v1/keys', { folderId: FOLDER, defaultAlgorithm: 42 });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].fieldViolations[0].field).toBe('defaultAlgorithm');
    const delta = await call('POST', `/kms/v1/keys/${active.id}:updateAccessBindings`, {
      accessBindingDeltas: [{ action: 1, accessBinding: { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'by-number' } } }],
    });
    expect(delta.status).toBe(200);
    expect((await call('GET', `/kms/v1/keys/${active.id}:listAccessBindings`)).body.accessBindings).toEqual([
      { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'by-number' } },
    ]);
  });

  it('takes every Duration form, keeping the minimum with a clear message', async () => {
    expect((await newKey({ rotationPeriod: '3600.5s' })).rotationPeriod).toBe('3600s');
    expect((await newKey({ rotationPeriod: '86400.000000001s' })).rotationPeriod).toBe('86400s');
    const short = await call('POST', '/kms/v1/keys', { folderId: FOLDER, rotationPeriod: '3599.999s' });
    expect(short.status).toBe(400);
    expect(short.body.message).toMatch(/^rotationPeriod: must be at least 1h/);
  });

  it('SetAccessBindings with {} (protobuf JSON omits an empty list) clears the bindings', async () => {
    const key = await newKey();
    await call('POST', `/kms/v1/keys/${key.id}:setAccessBindings`, { accessBindings: [{ roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'u1' } }] });
    expect((await call('GET', `/kms/v1/keys/${key.id}:listAccessBindings`)).body.accessBindings).toHaveLength(1);
    const cleared = await call('POST', `/kms/v1/keys/${key.id}:setAccessBindings`, {});
    expect(cleared.status).toBe(200);
    expect((await call('GET', `/kms/v1/keys/${key.id}:listAccessBindings`)).body.accessBindings).toEqual([]);
  });

  it('knows GOST_R_3412_2015_K and refuses it with FAILED_PRECONDITION naming the keystore', async () => {
    const refused = await call('POST', '/kms/v1/keys', { folderId: FOLDER, defaultAlgorithm: 'GOST_R_3412_2015_K' });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe(9);
    expect(refused.body.message).toMatch(/^defaultAlgorithm: GOST_R_3412_2015_K \(GOST R 34\.12-2015 "Kuznyechik"\) is not available: the pkcs11 keystore \(token "[^"]+"\) cannot do it; use one of AES_128, AES_192, AES_256, AES_256_HSM$/);
    expect((await call('POST', '/kms/v1/keys', { folderId: FOLDER, defaultAlgorithm: 5 })).body.code).toBe(9);
    const key = await newKey();
    expect((await call('PATCH', `/kms/v1/keys/${key.id}`, { updateMask: 'defaultAlgorithm', defaultAlgorithm: 'GOST_R_3412_2015_K' })).body.code).toBe(9);
    expect((await call('POST', `/kms/v1/keys/${key.id}:generateDataKey`, { dataKeySpec: 'GOST_R_3412_2015_K' })).body.code).toBe(9);
    expect((await call('GET', `/kms/v1/keys/${key.id}`)).body.defaultAlgorithm).toBe('AES_128');
  });
});

describe('subjects and primitive roles', () => {
  it('system:allAuthenticatedUsers grants the role to every token holder; a group binding grants nothing', async () => {
    const key = await newKey();
    const stranger = await tokenFor('userAccount:stranger');
    const enc = () => api({ url: kmsd.url, token: stranger }, 'POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: 'eA==' });
    expect((await enc()).status).toBe(403);
    await call('POST', `/kms/v1/keys/${key.id}:setAccessBindings`, { accessBindings: [{ roleId: 'kms.keys.encrypter', subject: { type: 'group', id: 'payments' } }] });
    expect((await enc()).status).toBe(403);
    await call('POST', `/kms/v1/keys/${key.id}:setAccessBindings`, {
      accessBindings: [{ roleId: 'kms.keys.encrypter', subject: { type: 'system', id: 'allAuthenticatedUsers' } }],
    });
    expect((await enc()).status).toBe(200);
    // still no more than the role
    expect((await api({ url: kmsd.url, token: stranger }, 'GET', `/kms/v1/keys/${key.id}`)).status).toBe(403);
    await call('POST', `/kms/v1/keys/${key.id}:setAccessBindings`, { accessBindings: [{ roleId: 'kms.keys.encrypter', subject: { type: 'system', id: 'allUsers' } }] });
    expect((await enc()).status).toBe(200);
    // …but never without a token
    expect((await fetch(`${kmsd.url}/kms/v1/keys/${key.id}:encrypt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"plaintext":"eA=="}' })).status).toBe(401);
  });

  it('federatedUser subjects get tokens and bindings', async () => {
    const key = await newKey();
    const token = await tokenFor('federatedUser:alice');
    await call('POST', `/kms/v1/keys/${key.id}:updateAccessBindings`, {
      accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'federatedUser', id: 'alice' } } }],
    });
    expect((await api({ url: kmsd.url, token }, 'GET', `/kms/v1/keys/${key.id}`)).status).toBe(200);
  });

  it.each([
    // role, may get, may rotate, may delete-protect/schedule, may encrypt+decrypt, may set bindings
    ['viewer', [200, 403, 403, 403, 403]],
    ['editor', [200, 200, 200, 200, 403]],
    ['admin', [200, 200, 200, 200, 200]],
  ])('the primitive role %s on the folder', async (role, expected) => {
    const folder = `primitive-${role}`;
    const created = await call('POST', '/kms/v1/keys', { folderId: folder });
    const keyId = created.body.response.id as string;
    const old = created.body.response.primaryVersion.id as string;
    await call('POST', `/kms/v1/keys/${keyId}:rotate`);
    const token = await tokenFor(`userAccount:primitive-${role}`);
    await call('POST', `/resource-manager/v1/folders/${folder}:setAccessBindings`, { accessBindings: [{ roleId: role, subject: { type: 'userAccount', id: `primitive-${role}` } }] });
    const as = (method: string, path: string, body?: unknown) => api({ url: kmsd.url, token }, method, path, body);
    const enc = await as('POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: 'eA==' });
    const statuses = [
      (await as('GET', `/kms/v1/keys/${keyId}`)).status,
      (await as('POST', `/kms/v1/keys/${keyId}:rotate`)).status,
      (await as('POST', `/kms/v1/keys/${keyId}:scheduleVersionDestruction`, { versionId: old })).status,
      enc.status === 200 ? (await as('POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext: enc.body.ciphertext })).status : enc.status,
      (await as('POST', `/kms/v1/keys/${keyId}:setAccessBindings`, {})).status,
    ];
    expect(statuses).toEqual(expected);
  });
});
