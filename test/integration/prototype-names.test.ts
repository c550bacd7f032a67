/**
 * Untrusted input never reaches the object prototype: names of Object.prototype members and
 * malformed percent-escapes as ids, roles, subjects, label keys, folder ids and page tokens,
 * through every route of the live route table (read from /openapi.json). Every answer is a 4xx
 * with a message (or a 2xx where the value is simply a valid, unknown name), never a 5xx, and the
 * daemon behaves exactly as before afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

let kmsd: TestKmsd;
/** Where the onslaught may create and change things. */
const FOLDER = 'proto-folder';
/** Where the baseline lives: nothing below touches it with a valid id. */
const BASELINE_FOLDER = 'proto-baseline';
let keyId = '';
let victimId = '';
let versionId = '';
let saId = '';

/** Names of Object.prototype members, and percent-escapes that do not decode. */
const NAMES = ['constructor', '__proto__', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];
const MALFORMED_ESCAPES = ['%zz', '%E0%A4%A', '%', '%C3%28', 'a%2'];

const call = (method: string, path: string, body?: unknown) => api(kmsd, method, path, body);

interface Route {
  method: string;
  path: string;
  hasBody: boolean;
  query: string[];
}

let routes: Route[] = [];

/** What a set of ordinary calls answers; compared before and after the onslaught. */
async function baseline(): Promise<unknown[]> {
  const results: unknown[] = [];
  const key = await call('GET', `/kms/v1/keys/${keyId}`);
  results.push(key.status, key.body.name, key.body.labels);
  const list = await call('GET', `/kms/v1/keys?folderId=${BASELINE_FOLDER}`);
  results.push(list.status, list.body.keys.map((k: { id: string }) => k.id).sort());
  const enc = await call('POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from('x').toString('base64') });
  const dec = await call('POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext: enc.body.ciphertext });
  results.push(enc.status, dec.status, dec.body.plaintext);
  const missingOp = await call('GET', '/operations/constructor');
  results.push(missingOp.status, missingOp.body.message);
  const missingKey = await call('GET', '/kms/v1/keys/constructor');
  results.push(missingKey.status, missingKey.body.message);
  const bindings = await call('GET', `/kms/v1/keys/${keyId}:listAccessBindings`);
  results.push(bindings.status, bindings.body);
  const accounts = await call('GET', ADMIN_PATHS.serviceAccounts);
  results.push(accounts.status, accounts.body.serviceAccounts.some((a: { id: string }) => a.id === saId));
  const folderBindings = await call('GET', `/resource-manager/v1/folders/${BASELINE_FOLDER}:listAccessBindings`);
  results.push(folderBindings.status, folderBindings.body);
  // The prototype itself: nothing was added to or changed on Object.prototype in this process.
  results.push(Object.getOwnPropertyNames(Object.prototype).sort(), ({} as { description?: unknown }).description);
  return results;
}

/** Bodies for a route, with `value` in every field that users fill with ids, roles or names. */
function bodiesFor(route: Route, value: string): unknown[] {
  const subject = { type: 'serviceAccount', id: value };
  const p = route.path;
  if (p === '/kms/v1/keys' && route.method === 'POST') {
    return [{ folderId: value }, { folderId: FOLDER, labels: { [value]: 'x' } }, { folderId: FOLDER, name: value, labels: { a: value } }];
  }
  if (route.method === 'PATCH') return [{ updateMask: value }, { updateMask: 'labels', labels: { [value]: 'v' } }, { updateMask: `${value},name`, name: value }];
  if (p.endsWith(':setAccessBindings')) {
    return [
      { accessBindings: [{ roleId: value, subject }] },
      { accessBindings: [{ roleId: 'kms.viewer', subject }] },
      { accessBindings: [{ roleId: 'kms.viewer', subject: { type: value, id: 'x' } }] },
    ];
  }
  if (p.endsWith(':updateAccessBindings')) {
    return [
      { accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: value, subject } }] },
      { accessBindingDeltas: [{ action: value, accessBinding: { roleId: 'kms.viewer', subject } }] },
      { accessBindingDeltas: [{ action: 'REMOVE', accessBinding: { roleId: value, subject } }] },
    ];
  }
  if (p.endsWith(':setPrimaryVersion') || p.endsWith(':cancelVersionDestruction')) return [{ versionId: value }];
  if (p.endsWith(':scheduleVersionDestruction')) return [{ versionId: value }, { versionId, pendingPeriod: value }];
  if (p.endsWith(':encrypt')) return [{ plaintext: 'eA==', versionId: value }, { plaintext: 'eA==', aadContext: value }];
  if (p.endsWith(':decrypt')) return [{ ciphertext: value }, { ciphertext: 'eA==', aadContext: value }];
  if (p.endsWith(':reEncrypt')) return [{ sourceKeyId: value, ciphertext: 'eA==' }, { sourceKeyId: victimId, ciphertext: value }];
  if (p.endsWith(':generateDataKey')) return [{ dataKeySpec: value }, { versionId: value }];
  if (p === ADMIN_PATHS.serviceAccounts) return [{ name: value }];
  if (p === ADMIN_PATHS.tokens && route.method === 'POST') return [{ subject: `serviceAccount:${value}` }, { subject: value }, { subject: `${value}:x` }];
  if (p.startsWith('/test/')) return [{ seconds: value }];
  return route.hasBody ? [{}] : [undefined];
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
  const created = await call('POST', '/kms/v1/keys', { folderId: BASELINE_FOLDER, name: 'proto', labels: { constructor: 'c', prototype: 'p', tostring: 't' } });
  keyId = created.body.response.id;
  const victim = await call('POST', '/kms/v1/keys', { folderId: FOLDER, name: 'victim' });
  victimId = victim.body.response.id;
  versionId = victim.body.response.primaryVersion.id;
  await call('POST', `/kms/v1/keys/${victimId}:rotate`, {});
  const sa = await call('POST', ADMIN_PATHS.serviceAccounts, { name: 'proto-sa' });
  saId = sa.body.id;
  await call('POST', `/kms/v1/keys/${keyId}:updateAccessBindings`, {
    accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'serviceAccount', id: saId } } }],
  });
  const doc = await call('GET', '/openapi.json');
  routes = Object.entries(doc.body.paths as Record<string, Record<string, { requestBody?: unknown; parameters: { in: string; name: string }[] }>>).flatMap(
    ([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        hasBody: op.requestBody !== undefined,
        query: op.parameters.filter((q) => q.in === 'query').map((q) => q.name),
      })),
  );
});

afterAll(async () => {
  await kmsd.stop();
});

describe('prototype member names and malformed escapes', () => {
  it('label keys that are prototype names are plain labels', async () => {
    const res = await call('GET', `/kms/v1/keys/${keyId}`);
    expect(res.status).toBe(200);
    expect(res.body.labels).toEqual({ constructor: 'c', prototype: 'p', tostring: 't' });
  });

  it('the route table was read', () => {
    expect(routes.length).toBeGreaterThan(25);
  });

  it('every route, with every name as path parameter, query parameter and body field: no 5xx, a message on every 4xx; nothing changes afterwards', async () => {
    const before = await baseline();
    const failures: string[] = [];
    let calls = 0;
    const check = async (method: string, url: string, body: unknown) => {
      const res = await call(method, url, body);
      calls++;
      const message = (res.body as { message?: unknown } | null)?.message;
      if (res.status >= 500) failures.push(`${method} ${url} ${JSON.stringify(body)} → ${res.status} ${String(message)}`);
      else if (res.status >= 400 && (typeof message !== 'string' || message === '')) failures.push(`${method} ${url} → ${res.status} without a message`);
    };
    /** The route's path with real ids of the victim key (never the baseline's). */
    const real = (path: string) =>
      path.replace('{keyId}', victimId).replace('{folderId}', FOLDER).replace('{operationId}', 'missing-op').replace('{serviceAccountId}', 'missing-sa').replace('{tokenId}', 'missing-token');
    for (const route of routes) {
      if (route.path === '/test/v1/clock:advance') continue; // moving time would change the baseline itself
      for (const value of [...NAMES, ...MALFORMED_ESCAPES]) {
        const [firstBody] = bodiesFor(route, 'x');
        // The value as every path parameter.
        if (route.path.includes('{')) await check(route.method, route.path.replace(/\{[a-zA-Z]+\}/g, value), firstBody);
        // The value in every body field that takes ids, roles, names or label keys.
        if (route.hasBody) for (const body of bodiesFor(route, value)) await check(route.method, real(route.path), body);
        // The value as every query parameter, and as a page token next to a valid folder.
        for (const name of route.query) await check(route.method, `${real(route.path)}?${name}=${value}`, undefined);
        if (route.query.includes('pageToken') && route.query.includes('folderId')) {
          await check(route.method, `${real(route.path)}?folderId=${FOLDER}&pageToken=${value}`, undefined);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(500);
    expect(await baseline()).toEqual(before);
  }, 120_000);

  it.each([
    ['GET', '/kms/v1/keys/%zz', 'keyId: "%zz" is not validly percent-encoded'],
    ['GET', '/operations/%E0%A4%A', 'operationId: "%E0%A4%A" is not validly percent-encoded'],
    ['DELETE', `${ADMIN_PATHS.tokens}/%`, 'tokenId: "%" is not validly percent-encoded'],
  ])('%s %s → 400 naming the parameter', async (method, path, message) => {
    const res = await call(method, path);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 3, message, details: [{ fieldViolations: [{ field: message.split(':')[0] }] }] });
  });

  it('a malformed escape is refused even without a token', async () => {
    const res = await api({ url: kmsd.url, token: '' }, 'GET', '/kms/v1/keys/%zz', undefined, { authorization: '' });
    expect(res.status).toBe(400);
  });

  it.each([
    ['GET', '/kms/v1/keys/constructor', 404, 'key constructor not found'],
    ['PATCH', '/kms/v1/keys/constructor', 404, 'key constructor not found'],
    ['DELETE', '/kms/v1/keys/constructor', 404, 'key constructor not found'],
    ['GET', '/operations/constructor', 404, 'operation constructor not found'],
    ['GET', '/operations/prototype', 404, 'operation prototype not found'],
  ])('%s %s → %i', async (method, path, status, message) => {
    const res = await call(method, path, method === 'PATCH' ? { updateMask: 'description', description: 'x' } : undefined);
    expect(res.status).toBe(status);
    expect(res.body.message).toBe(message);
  });

  it('no token for a service account named like a prototype member', async () => {
    for (const name of ['constructor', 'prototype', 'valueof']) {
      const res = await call('POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${name}` });
      expect(res.status).toBe(400);
      expect(res.body.message).toBe(`subject: service account ${name} does not exist`);
    }
  });

  it('a role named like a prototype member is an unknown role', async () => {
    for (const roleId of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const res = await call('POST', `/kms/v1/keys/${keyId}:setAccessBindings`, {
        accessBindings: [{ roleId, subject: { type: 'serviceAccount', id: saId } }],
      });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(new RegExp(`^accessBindings\\.0\\.roleId: (unknown role "${roleId.replace(/[_$]/g, '\\$&')}"|must match)`));
    }
  });

  it('a folder named like a prototype member is just a folder', async () => {
    const created = await call('POST', '/kms/v1/keys', { folderId: 'hasownproperty' });
    expect(created.status).toBe(200);
    const res = await call('GET', '/kms/v1/keys?folderId=hasownproperty');
    expect(res.status).toBe(200);
    expect(res.body.keys.map((k: { id: string }) => k.id)).toEqual([created.body.response.id]);
    expect((await call('GET', '/kms/v1/keys?folderId=constructor')).body.keys.every((k: { folderId: string }) => k.folderId === 'constructor')).toBe(true);
  });
});
