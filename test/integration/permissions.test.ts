/**
 * The permission matrix: every route × every role (bound on the folder, and on the key), plus no
 * token, a revoked token and a token whose role is on another folder. Expectations are written
 * out from Yandex Cloud's method → role table, not derived from the daemon's own role map.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readTrailEvents } from '../support/audit.js';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

let kmsd: TestKmsd;
const FOLDER = 'matrix-folder';
const OTHER_FOLDER = 'matrix-other';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const admin = (method: string, path: string, body?: unknown) => api(kmsd, method, path, body);

const ROLES = [
  'kms.auditor',
  'kms.viewer',
  'kms.editor',
  'kms.admin',
  'kms.keys.encrypter',
  'kms.keys.decrypter',
  'kms.keys.encrypterDecrypter',
] as const;
type Role = (typeof ROLES)[number];
const AUDITOR_UP: Role[] = ['kms.auditor', 'kms.viewer', 'kms.editor', 'kms.admin'];
const VIEWER_UP: Role[] = ['kms.viewer', 'kms.editor', 'kms.admin'];
const EDITOR_UP: Role[] = ['kms.editor', 'kms.admin'];
const ADMIN: Role[] = ['kms.admin'];
const ENCRYPT: Role[] = ['kms.keys.encrypter', 'kms.keys.encrypterDecrypter'];
const DECRYPT: Role[] = ['kms.keys.decrypter', 'kms.keys.encrypterDecrypter'];
const ALL: Role[] = [...ROLES];
const BOOTSTRAP_ONLY: Role[] = [];

interface Fixture {
  keyId: string;
  versionId: string;
  oldVersionId: string;
  ciphertext: string;
  operationId: string;
}

interface RouteCase {
  operationId: string;
  /** Roles that may call it when bound on the key's folder. */
  allowed: Role[];
  /** Whether a binding on the key itself (not the folder) also grants it. */
  keyScoped: boolean;
  request(f: Fixture): { method: string; path: string; body?: unknown };
}

const CASES: RouteCase[] = [
  { operationId: 'SymmetricKey.Create', allowed: EDITOR_UP, keyScoped: false, request: () => ({ method: 'POST', path: '/kms/v1/keys', body: { folderId: FOLDER } }) },
  { operationId: 'SymmetricKey.Get', allowed: VIEWER_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}` }) },
  { operationId: 'SymmetricKey.List', allowed: AUDITOR_UP, keyScoped: false, request: () => ({ method: 'GET', path: `/kms/v1/keys?folderId=${FOLDER}` }) },
  { operationId: 'SymmetricKey.ListVersions', allowed: VIEWER_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}/versions` }) },
  { operationId: 'SymmetricKey.Update', allowed: EDITOR_UP, keyScoped: true, request: (f) => ({ method: 'PATCH', path: `/kms/v1/keys/${f.keyId}`, body: { updateMask: 'name', name: 'x' } }) },
  { operationId: 'SymmetricKey.Delete', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'DELETE', path: `/kms/v1/keys/${f.keyId}` }) },
  { operationId: 'SymmetricKey.Restore', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:restore` }) },
  { operationId: 'SymmetricKey.SetPrimaryVersion', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:setPrimaryVersion`, body: { versionId: f.oldVersionId } }) },
  { operationId: 'SymmetricKey.ScheduleVersionDestruction', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:scheduleVersionDestruction`, body: { versionId: f.oldVersionId } }) },
  { operationId: 'SymmetricKey.CancelVersionDestruction', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:cancelVersionDestruction`, body: { versionId: f.oldVersionId } }) },
  { operationId: 'SymmetricKey.Rotate', allowed: EDITOR_UP, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:rotate` }) },
  { operationId: 'SymmetricKey.ListOperations', allowed: VIEWER_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}/operations` }) },
  { operationId: 'Operation.Get', allowed: VIEWER_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/operations/${f.operationId}` }) },
  // Always FAILED_PRECONDITION (every operation is done), after the same check as Get.
  { operationId: 'Operation.Cancel', allowed: VIEWER_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/operations/${f.operationId}:cancel` }) },
  { operationId: 'SymmetricKey.ListAccessBindings', allowed: AUDITOR_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}:listAccessBindings` }) },
  { operationId: 'SymmetricKey.SetAccessBindings', allowed: ADMIN, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:setAccessBindings`, body: { accessBindings: [] } }) },
  {
    operationId: 'SymmetricKey.UpdateAccessBindings',
    allowed: ADMIN,
    keyScoped: true,
    request: (f) => ({
      method: 'POST',
      path: `/kms/v1/keys/${f.keyId}:updateAccessBindings`,
      body: { accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'someone' } } }] },
    }),
  },
  { operationId: 'Folder.ListAccessBindings', allowed: AUDITOR_UP, keyScoped: false, request: () => ({ method: 'GET', path: `/resource-manager/v1/folders/${FOLDER}:listAccessBindings` }) },
  {
    operationId: 'Folder.SetAccessBindings',
    allowed: ADMIN,
    keyScoped: false,
    // Setting the folder's bindings to what they are keeps the matrix intact.
    request: () => ({ method: 'POST', path: `/resource-manager/v1/folders/${FOLDER}:setAccessBindings`, body: { accessBindings: folderBindings } }),
  },
  {
    operationId: 'Folder.UpdateAccessBindings',
    allowed: ADMIN,
    keyScoped: false,
    request: () => ({
      method: 'POST',
      path: `/resource-manager/v1/folders/${FOLDER}:updateAccessBindings`,
      body: { accessBindingDeltas: [{ action: 'REMOVE', accessBinding: { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'nobody' } } }] },
    }),
  },
  { operationId: 'SymmetricCrypto.Encrypt', allowed: ENCRYPT, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:encrypt`, body: { plaintext: b64('x') } }) },
  { operationId: 'SymmetricCrypto.Decrypt', allowed: DECRYPT, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:decrypt`, body: { ciphertext: f.ciphertext } }) },
  {
    operationId: 'SymmetricCrypto.ReEncrypt',
    allowed: ['kms.keys.encrypterDecrypter'],
    keyScoped: true,
    request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:reEncrypt`, body: { sourceKeyId: f.keyId, ciphertext: f.ciphertext } }),
  },
  { operationId: 'SymmetricCrypto.GenerateDataKey', allowed: ENCRYPT, keyScoped: true, request: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:generateDataKey`, body: {} }) },
  { operationId: 'Api.Describe', allowed: ALL, keyScoped: false, request: () => ({ method: 'GET', path: '/openapi.json' }) },
  { operationId: 'ServiceAccount.Create', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'POST', path: ADMIN_PATHS.serviceAccounts, body: { name: `sa-${Math.random().toString(36).slice(2, 10)}` } }) },
  { operationId: 'ServiceAccount.List', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'GET', path: ADMIN_PATHS.serviceAccounts }) },
  { operationId: 'ServiceAccount.Delete', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'DELETE', path: ADMIN_PATHS.serviceAccount('abjnosuchaccount') }) },
  { operationId: 'Token.Create', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'POST', path: ADMIN_PATHS.tokens, body: { subject: 'userAccount:someone' } }) },
  { operationId: 'Token.List', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'GET', path: ADMIN_PATHS.tokens }) },
  { operationId: 'Token.Revoke', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'DELETE', path: ADMIN_PATHS.token('abjnosuchtoken') }) },
  { operationId: 'Metrics.Get', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'GET', path: '/metrics' }) },
  { operationId: 'TestClock.Advance', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'POST', path: '/test/v1/clock:advance', body: { seconds: 0 } }) },
  { operationId: 'AuditEvents.List', allowed: AUDITOR_UP, keyScoped: true, request: (f) => ({ method: 'GET', path: `/kms/v1/auditEvents?folderId=${FOLDER}&keyId=${f.keyId}` }) },
  // The whole trail's walk: daemon-wide, so no folder or key binding grants it.
  { operationId: 'AuditEvents.Verify', allowed: BOOTSTRAP_ONLY, keyScoped: false, request: () => ({ method: 'GET', path: '/kms/v1/auditEvents:verify' }) },
];

/**
 * Routes without a role matrix: health and endpoint discovery need no token; IamToken.Create takes
 * its credential in the body (test/integration/grpc-sdk.test.ts covers it).
 */
const UNGUARDED = ['Health.Get', 'ApiEndpoint.List', 'ApiEndpoint.Get', 'IamToken.Create'];

const folderBindings: unknown[] = [];
/** Every matrix call, to check afterwards that each produced exactly one audit event. */
const calls: { requestId: string; operationId: string; subject: string; status: number; code?: number; keyId?: string }[] = [];
const subjects = new Map<string, string>();
const CODE_NAMES: Record<number, string> = { 3: 'INVALID_ARGUMENT', 5: 'NOT_FOUND', 6: 'ALREADY_EXISTS', 7: 'PERMISSION_DENIED', 9: 'FAILED_PRECONDITION', 16: 'UNAUTHENTICATED' };

async function matrixCall(token: string, route: RouteCase, f: Fixture) {
  const { method, path, body } = route.request(f);
  const res = await api({ url: kmsd.url, token }, method, path, body);
  calls.push({
    requestId: res.requestId,
    operationId: route.operationId,
    subject: subjects.get(token) ?? 'anonymous',
    status: res.status,
    ...(res.status >= 400 ? { code: res.body.code as number } : {}),
    ...(route.keyScoped ? { keyId: f.keyId } : {}),
  });
  return res;
}
const folderTokens = new Map<Role, string>();
const keyTokens = new Map<Role, string>();
let otherFolderAdmin = '';

async function subjectWithToken(name: string): Promise<{ subject: { type: 'serviceAccount'; id: string }; token: string }> {
  const sa = await admin('POST', ADMIN_PATHS.serviceAccounts, { name });
  expect(sa.status).toBe(200);
  const token = await admin('POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
  expect(token.status).toBe(200);
  subjects.set(token.body.token, `serviceAccount:${sa.body.id}`);
  return { subject: { type: 'serviceAccount', id: sa.body.id }, token: token.body.token };
}

async function fixture(): Promise<Fixture> {
  const created = await admin('POST', '/kms/v1/keys', { folderId: FOLDER });
  const keyId = created.body.response.id as string;
  const oldVersionId = created.body.response.primaryVersion.id as string;
  const rotated = await admin('POST', `/kms/v1/keys/${keyId}:rotate`);
  const enc = await admin('POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: b64('p') });
  return { keyId, versionId: rotated.body.metadata.newPrimaryVersionId, oldVersionId, ciphertext: enc.body.ciphertext, operationId: created.body.id };
}

/** Puts the fixture in the state the call expects (a deleted key for Restore, and so on). */
async function prepare(operationId: string, f: Fixture): Promise<void> {
  if (operationId === 'SymmetricKey.Restore') await admin('DELETE', `/kms/v1/keys/${f.keyId}`);
  if (operationId === 'SymmetricKey.CancelVersionDestruction') {
    await admin('POST', `/kms/v1/keys/${f.keyId}:scheduleVersionDestruction`, { versionId: f.oldVersionId });
  }
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
  for (const role of ROLES) {
    const slug = role.replace(/\./g, '-').toLowerCase();
    const folderSubject = await subjectWithToken(`folder-${slug}`);
    folderTokens.set(role, folderSubject.token);
    folderBindings.push({ roleId: role, subject: folderSubject.subject });
    const keySubject = await subjectWithToken(`key-${slug}`);
    keyTokens.set(role, keySubject.token);
  }
  const set = await admin('POST', `/resource-manager/v1/folders/${FOLDER}:setAccessBindings`, { accessBindings: folderBindings });
  expect(set.status).toBe(200);
  const other = await subjectWithToken('other-folder-admin');
  otherFolderAdmin = other.token;
  await admin('POST', `/resource-manager/v1/folders/${OTHER_FOLDER}:setAccessBindings`, {
    accessBindings: ROLES.map((roleId) => ({ roleId, subject: other.subject })),
  });
}, 120_000);

afterAll(async () => {
  await kmsd.stop();
});

function expectDenied(res: { status: number; body: any }, permissionHint: RegExp): void {
  expect(res.status).toBe(403);
  expect(res.body.code).toBe(7);
  expect(res.body.message).toMatch(permissionHint);
}

describe('the matrix covers every route', () => {
  it('has a case for every operation in /openapi.json', async () => {
    const doc = await admin('GET', '/openapi.json');
    const operations = Object.values(doc.body.paths as Record<string, Record<string, { operationId: string }>>).flatMap((methods) =>
      Object.values(methods).map((m) => m.operationId),
    );
    expect(operations.filter((op) => !UNGUARDED.includes(op)).sort()).toEqual(CASES.map((c) => c.operationId).sort());
  });
});

describe.each(CASES)('$operationId', (route) => {
  it.each(ROLES)('with %s on the folder', async (role) => {
    const f = await fixture();
    await prepare(route.operationId, f);
    const res = await matrixCall(folderTokens.get(role)!, route, f);
    if (route.allowed.includes(role)) {
      expect([401, 403]).not.toContain(res.status);
      expect(res.status).toBeLessThan(500);
    } else {
      expectDenied(res, /lacks permission /);
    }
  });

  it.each(ROLES)('with %s on the key only', async (role) => {
    const f = await fixture();
    const bound = await admin('POST', `/kms/v1/keys/${f.keyId}:setAccessBindings`, {
      accessBindings: [{ roleId: role, subject: { type: 'serviceAccount', id: await serviceAccountIdOf(`key-${role.replace(/\./g, '-').toLowerCase()}`) } }],
    });
    expect(bound.status).toBe(200);
    await prepare(route.operationId, f);
    const res = await matrixCall(keyTokens.get(role)!, route, f);
    // A key binding grants key-scoped calls only; calls open to any authenticated subject stay open.
    if ((route.keyScoped || route.allowed === ALL) && route.allowed.includes(role)) {
      expect([401, 403]).not.toContain(res.status);
    } else {
      expect(res.status).toBe(403);
    }
  });

  it('without a token → 401; with a revoked token → 401; with roles on another folder → 403', async () => {
    const f = await fixture();
    const { method, path, body } = route.request(f);
    const anonymous = await fetch(`${kmsd.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    expect(anonymous.status).toBe(401);
    const revoked = await admin('POST', ADMIN_PATHS.tokens, { subject: 'userAccount:revoked-user' });
    await admin('DELETE', ADMIN_PATHS.token(revoked.body.id));
    const withRevoked = await matrixCall(revoked.body.token, route, f);
    expect(withRevoked.status).toBe(401);
    expect(withRevoked.body.message).toBe('the token is not valid');
    if (route.allowed !== ALL) {
      const res = await matrixCall(otherFolderAdmin, route, f);
      expect(res.status).toBe(403);
    }
  });
});

describe('crypto roles', () => {
  it('an encrypter can encrypt but not decrypt; a decrypter the reverse; the message names the permission', async () => {
    const f = await fixture();
    const encrypter = { url: kmsd.url, token: folderTokens.get('kms.keys.encrypter')! };
    const decrypter = { url: kmsd.url, token: folderTokens.get('kms.keys.decrypter')! };
    const enc = await api(encrypter, 'POST', `/kms/v1/keys/${f.keyId}:encrypt`, { plaintext: b64('hi') });
    expect(enc.status).toBe(200);
    const denied = await api(encrypter, 'POST', `/kms/v1/keys/${f.keyId}:decrypt`, { ciphertext: enc.body.ciphertext });
    expectDenied(denied, new RegExp(`lacks permission kms.keys.decrypt on key ${f.keyId}`));
    const dec = await api(decrypter, 'POST', `/kms/v1/keys/${f.keyId}:decrypt`, { ciphertext: enc.body.ciphertext });
    expect(dec.status).toBe(200);
    expectDenied(await api(decrypter, 'POST', `/kms/v1/keys/${f.keyId}:encrypt`, { plaintext: b64('x') }), /kms.keys.encrypt/);
  });

  it('kms.admin manages keys but cannot decrypt (administrators and users are separate)', async () => {
    const f = await fixture();
    const keyAdmin = { url: kmsd.url, token: folderTokens.get('kms.admin')! };
    expectDenied(await api(keyAdmin, 'POST', `/kms/v1/keys/${f.keyId}:decrypt`, { ciphertext: f.ciphertext }), /kms.keys.decrypt/);
  });

  it('removing a binding removes access at once', async () => {
    const f = await fixture();
    const user = await subjectWithToken('short-lived-user');
    const binding = { roleId: 'kms.keys.encrypterDecrypter', subject: user.subject };
    await admin('POST', `/kms/v1/keys/${f.keyId}:updateAccessBindings`, { accessBindingDeltas: [{ action: 'ADD', accessBinding: binding }] });
    const caller = { url: kmsd.url, token: user.token };
    expect((await api(caller, 'POST', `/kms/v1/keys/${f.keyId}:decrypt`, { ciphertext: f.ciphertext })).status).toBe(200);
    const listed = await admin('GET', `/kms/v1/keys/${f.keyId}:listAccessBindings`);
    expect(listed.body.accessBindings).toEqual([binding]);
    await admin('POST', `/kms/v1/keys/${f.keyId}:updateAccessBindings`, { accessBindingDeltas: [{ action: 'REMOVE', accessBinding: binding }] });
    expect((await api(caller, 'POST', `/kms/v1/keys/${f.keyId}:decrypt`, { ciphertext: f.ciphertext })).status).toBe(403);
  });
});

describe('access administration input', () => {
  it.each([
    [{ accessBindings: [{ roleId: 'kms.superuser', subject: { type: 'userAccount', id: 'u' } }] }, /accessBindings\.0\.roleId: unknown role "kms.superuser"/],
    [{ accessBindings: [{ roleId: 'kms.viewer', subject: { type: 'robot', id: 'g' } }] }, /accessBindings\.0\.subject\.type: must be one of userAccount, serviceAccount, federatedUser, group, system/],
    [{ accessBindings: [{ roleId: 'kms.viewer', subject: { type: 'system', id: 'everyone' } }] }, /accessBindings\.0\.subject\.id: a system subject is allAuthenticatedUsers or allUsers/],
    [{ accessBindings: [{ roleId: 'kms.viewer', subject: { type: 'serviceAccount', id: 'abjmissing' } }] }, /service account abjmissing does not exist/],
    [{ accessBindings: [{ roleId: 'kms.viewer' }] }, /accessBindings\.0\.subject: is required/],
  ])('setAccessBindings %j → 400', async (body, message) => {
    const f = await fixture();
    const res = await admin('POST', `/kms/v1/keys/${f.keyId}:setAccessBindings`, body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  it('tokens are shown once and listed without their value; duplicate service account names are refused', async () => {
    const issued = await admin('POST', ADMIN_PATHS.tokens, { subject: 'userAccount:listing' });
    expect(issued.body.token).toMatch(/^kms_/);
    const listed = await admin('GET', ADMIN_PATHS.tokens);
    expect(JSON.stringify(listed.body)).not.toContain(issued.body.token);
    expect(listed.body.tokens).toContainEqual({ id: issued.body.id, subject: 'userAccount:listing', description: '', createdAt: issued.body.createdAt });
    await admin('POST', ADMIN_PATHS.serviceAccounts, { name: 'dup-name' });
    const dup = await admin('POST', ADMIN_PATHS.serviceAccounts, { name: 'dup-name' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe(6);
    const badSubject = await admin('POST', ADMIN_PATHS.tokens, { subject: 'root' });
    expect(badSubject.status).toBe(400);
  });

  it('deleting a service account revokes its tokens and bindings', async () => {
    const f = await fixture();
    const user = await subjectWithToken('doomed-account');
    await admin('POST', `/kms/v1/keys/${f.keyId}:setAccessBindings`, { accessBindings: [{ roleId: 'kms.viewer', subject: user.subject }] });
    expect((await api({ url: kmsd.url, token: user.token }, 'GET', `/kms/v1/keys/${f.keyId}`)).status).toBe(200);
    expect((await admin('DELETE', ADMIN_PATHS.serviceAccount(user.subject.id))).status).toBe(200);
    expect((await api({ url: kmsd.url, token: user.token }, 'GET', `/kms/v1/keys/${f.keyId}`)).status).toBe(401);
    expect((await admin('GET', `/kms/v1/keys/${f.keyId}:listAccessBindings`)).body.accessBindings).toEqual([]);
  });
});

describe('audit of the matrix', () => {
  it('every matrix call produced exactly one audit event with the right fields', () => {
    expect(calls.length).toBeGreaterThan(400);
    // Events are durable before the answer; read the segments themselves.
    const byRequest = new Map<string, any[]>();
    for (const event of readTrailEvents(kmsd.dataDir)) {
      byRequest.set(event.requestId, [...(byRequest.get(event.requestId) ?? []), event]);
    }
    for (const call of calls) {
      const events = byRequest.get(call.requestId) ?? [];
      expect(events).toHaveLength(1);
      const event = events[0];
      expect(event).toMatchObject({ operation: call.operationId, subject: call.subject, result: call.status < 400 ? 'OK' : CODE_NAMES[call.code!] });
      if (call.keyId !== undefined && call.status !== 401) {
        expect(event.keyId).toBe(call.keyId);
        expect(event.folderId).toBe(FOLDER);
      }
      expect(Date.parse(event.time)).not.toBeNaN();
      expect(event.remoteAddress).toMatch(/127\.0\.0\.1/);
    }
  });
});

async function serviceAccountIdOf(name: string): Promise<string> {
  const list = await admin('GET', ADMIN_PATHS.serviceAccounts);
  const found = (list.body.serviceAccounts as { id: string; name: string }[]).find((sa) => sa.name === name);
  if (found === undefined) throw new Error(`no service account ${name}`);
  return found.id;
}
