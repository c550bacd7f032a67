/**
 * The lean data-plane path against the real kmsd binary: the same answers, errors, audit events
 * and permission checks as the Express path (a gzip body is served by Express, the same call
 * plain by the lean path), its own body handling (size, media type, charset, JSON, query), and
 * its logs: refusals always, successes sampled, never plaintext, ciphertext, AAD or tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { readTrailEvents } from '../support/audit.js';
import { api, startDaemon, type DaemonProcess } from '../support/daemon.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

let daemon: DaemonProcess;
let keyId = '';
const SAMPLE_EVERY = 1000;
const secretPlaintext = 'fast path plaintext that must never be logged';
const b64 = (text: string) => Buffer.from(text).toString('base64');

function post(path: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const url = new URL(daemon.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: 'POST', path, agent: false, headers: { authorization: `Bearer ${daemon.token}`, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  daemon = await startDaemon({ args: ['--log-sample-every', String(SAMPLE_EVERY)] });
  const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'fast', defaultAlgorithm: 'AES_256' });
  keyId = created.body.response.id;
});

afterAll(async () => {
  await daemon.stop();
});

describe('the lean path and the Express path answer alike', () => {
  it('a gzip body (served by Express) and a plain one (the lean path) both encrypt, and each decrypts the other', async () => {
    const body = JSON.stringify({ plaintext: b64(secretPlaintext), aadContext: b64('aad') });
    const plain = await post(`/kms/v1/keys/${keyId}:encrypt`, body, { 'content-type': 'application/json' });
    const zipped = await post(`/kms/v1/keys/${keyId}:encrypt`, gzipSync(body), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    for (const res of [plain, zipped]) {
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(Object.keys(res.body).sort()).toEqual(['ciphertext', 'keyId', 'versionId']);
    }
    for (const ciphertext of [plain.body.ciphertext, zipped.body.ciphertext]) {
      const dec = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext, aadContext: b64('aad') });
      expect(Buffer.from(dec.body.plaintext, 'base64').toString()).toBe(secretPlaintext);
    }
  });

  it.each([
    ['malformed JSON', '{"plaintext":', { 'content-type': 'application/json' }, 400, 'request body is not valid JSON'],
    ['another media type', 'plaintext=eA', { 'content-type': 'text/plain' }, 415, 'request body must be JSON (Content-Type: application/json)'],
    ['another charset', '{"plaintext":"eA=="}', { 'content-type': 'application/json; charset=latin1' }, 415, 'request body must be JSON (Content-Type: application/json)'],
    ['an unknown field', '{"plaintext":"eA==","force":true}', { 'content-type': 'application/json' }, 400, 'force: unknown field'],
    ['no body', '', { 'content-type': 'application/json' }, 400, 'plaintext: is required'],
  ])('%s: the same error on both paths', async (_name, body, headers, status, message) => {
    const lean = await post(`/kms/v1/keys/${keyId}:encrypt`, body, headers);
    const viaExpress = await post(`/kms/v1/keys/${keyId}:encrypt`, gzipSync(body), { ...headers, 'content-encoding': 'gzip' });
    expect(lean.status).toBe(status);
    expect(lean.body.message).toBe(message);
    expect(viaExpress.status).toBe(status);
    expect(viaExpress.body.message).toBe(message);
  });

  it('a query parameter is refused, naming it', async () => {
    const res = await post(`/kms/v1/keys/${keyId}:encrypt?verbose=1`, JSON.stringify({ plaintext: 'eA==' }), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe('verbose: unknown query parameter');
  });

  it('a chunked body over the limit is refused with 413 and the connection closes', async () => {
    const url = new URL(daemon.url);
    const result = await new Promise<{ status: number; connection: unknown }>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path: `/kms/v1/keys/${keyId}:encrypt`, agent: false, headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.write(`{"plaintext":"${'A'.repeat(200_000)}`);
      req.end('"}');
    });
    expect(result).toEqual({ status: 413, connection: 'close' });
  });

  it('no token, a bad token and a missing permission are refused exactly as on every route', async () => {
    const none = await post(`/kms/v1/keys/${keyId}:decrypt`, '{"ciphertext":"AAAA"}', { 'content-type': 'application/json', authorization: '' });
    expect(none.status).toBe(401);
    const bad = await post(`/kms/v1/keys/${keyId}:decrypt`, '{"ciphertext":"AAAA"}', { 'content-type': 'application/json', authorization: 'Bearer kms_bad' });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Bearer realm="kms", error="invalid_token"');
    const sa = await api(daemon, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'fast-viewer' });
    const token = await api(daemon, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
    const denied = await api({ url: daemon.url, token: token.body.token }, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: 'eA==' });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toBe(`serviceAccount:${sa.body.id} lacks permission kms.keys.encrypt on key ${keyId}`);
  });
});

describe('audit and logs on the lean path', () => {
  it('every call left exactly one audit event; refusals are logged, successes sampled; no secret in any line', async () => {
    const before = readTrailEvents(daemon.dataDir).length;
    const requestIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: b64(secretPlaintext) });
      expect(res.status).toBe(200);
      requestIds.push(res.requestId);
    }
    const refused = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext: 'AAAA' });
    expect(refused.status).toBe(400);
    const events = readTrailEvents(daemon.dataDir);
    expect(events.length - before).toBe(21);
    for (const id of [...requestIds, refused.requestId]) expect(events.filter((e) => e.requestId === id)).toHaveLength(1);
    // Logs are written asynchronously by pino: give them a moment.
    await new Promise((r) => setTimeout(r, 200));
    const requestLines = daemon.output.filter((l) => l.includes('"msg":"request"'));
    expect(requestLines.some((l) => l.includes(refused.requestId))).toBe(true);
    const loggedSuccesses = requestIds.filter((id) => requestLines.some((l) => l.includes(id)));
    expect(loggedSuccesses.length).toBeLessThanOrEqual(1);
    const all = daemon.output.join('\n');
    for (const secret of [secretPlaintext, b64(secretPlaintext), daemon.token]) expect(all).not.toContain(secret);
  });
});
