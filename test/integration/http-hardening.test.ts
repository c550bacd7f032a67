/**
 * The HTTP listener's limits and manners, against the real daemon with small limits: slow or
 * half-sent requests are cut, connections are capped, an oversized declared body is refused
 * before it is read, nothing is cacheable, a wrong method is a 405 with Allow, a 401 says how to
 * authenticate, and a body where none belongs is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

let kmsd: TestKmsd;
let keyId = '';
const MAX_CONNECTIONS = 6;

function address(): { host: string; port: number } {
  const url = new URL(kmsd.url);
  return { host: url.hostname, port: Number(url.port) };
}

/** Sends raw bytes on a new connection and collects everything until the server closes it. */
function raw(chunks: string[], options: { keepOpenMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(address());
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closed: true }));
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      if (options.keepOpenMs !== undefined) setTimeout(() => socket.destroy(), options.keepOpenMs);
    });
  });
}

/** A request through node:http on its own connection (no pooling), body as given. */
function httpCall(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...address(), method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const auth = () => ({ authorization: `Bearer ${kmsd.token}` });

beforeAll(async () => {
  kmsd = await startTestKmsd({
    args: ['--http-headers-timeout', '1s', '--http-request-timeout', '2s', '--http-keepalive-timeout', '1s', '--http-max-connections', String(MAX_CONNECTIONS)],
  });
  const created = await api(kmsd, 'POST', '/kms/v1/keys', { folderId: 'http' });
  keyId = created.body.response.id;
});

afterAll(async () => {
  await kmsd.stop();
});

describe('timeouts and the connection cap', () => {
  it('a client that never finishes its headers is answered 408 and disconnected', async () => {
    const result = await raw([`GET /healthz HTTP/1.1\r\nHost: x\r\n`]);
    expect(result.closed).toBe(true);
    expect(result.text).toMatch(/^HTTP\/1\.1 408/);
  });

  it('a client that never finishes its body is answered 408 and disconnected', async () => {
    const result = await raw([`POST /kms/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${kmsd.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"fol`]);
    expect(result.closed).toBe(true);
    expect(result.text).toMatch(/^HTTP\/1\.1 408/);
  });

  it(`connections beyond --http-max-connections (${MAX_CONNECTIONS}) are refused, and served again once others close`, async () => {
    const idle: Socket[] = [];
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      idle.push(await new Promise<Socket>((resolve) => {
        const s = connect(address(), () => resolve(s));
        s.on('error', () => undefined);
      }));
    }
    // Give the server a moment to count them (accept happens on its event loop).
    await new Promise((r) => setTimeout(r, 100));
    await expect(httpCall('GET', '/healthz', {})).rejects.toThrow(/socket hang up|ECONNRESET/);
    for (const s of idle) s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await httpCall('GET', '/healthz', {})).status).toBe(200);
  });
});

describe('bodies', () => {
  it('a declared Content-Length over the limit is refused with 413 before the body is sent, and the connection closes', async () => {
    const result = await raw([`POST /kms/v1/keys/${keyId}:encrypt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${kmsd.token}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n`]);
    expect(result.closed).toBe(true);
    expect(result.text).toMatch(/^HTTP\/1\.1 413/);
    expect(result.text).toMatch(/connection: close/i);
    expect(result.text).toContain('"message":"request body is larger than 131072 bytes"');
  });

  it('a body on a call that takes none is 400, whatever its media type', async () => {
    for (const type of ['text/plain', 'application/json', 'application/octet-stream']) {
      const body = type === 'application/json' ? '{"a":1}' : 'hello';
      // With a Content-Length: node itself refuses a chunked GET body before kmsd sees it.
      const res = await httpCall('GET', `/kms/v1/keys/${keyId}`, { ...auth(), 'content-type': type, 'content-length': String(body.length) }, body);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 3, message: 'body: GET /kms/v1/keys/{keyId} takes no request body' });
    }
  });

  it('a non-JSON body on a call that takes JSON is 415', async () => {
    const res = await httpCall('POST', `/kms/v1/keys/${keyId}:rotate`, { ...auth(), 'content-type': 'text/plain' }, 'rotate please');
    expect(res.status).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ code: 3, message: 'request body must be JSON (Content-Type: application/json)' });
  });
});

describe('headers', () => {
  it('every response says Cache-Control: no-store (key material, plaintext, tokens, errors)', async () => {
    const enc = await httpCall('POST', `/kms/v1/keys/${keyId}:encrypt`, { ...auth(), 'content-type': 'application/json' }, JSON.stringify({ plaintext: 'eA==' }));
    expect(enc.status).toBe(200);
    const sa = await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'http-sa' });
    const token = await httpCall('POST', ADMIN_PATHS.tokens, { ...auth(), 'content-type': 'application/json' }, JSON.stringify({ subject: `serviceAccount:${sa.body.id}` }));
    expect(token.status).toBe(200);
    const dk = await httpCall('POST', `/kms/v1/keys/${keyId}:generateDataKey`, { ...auth(), 'content-type': 'application/json' }, '{}');
    const missing = await httpCall('GET', '/kms/v1/keys/nope', auth());
    const health = await httpCall('GET', '/healthz', {});
    for (const res of [enc, token, dk, missing, health]) {
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers.etag).toBeUndefined();
    }
  });

  it('401 carries WWW-Authenticate: Bearer, with error="invalid_token" for a bad token', async () => {
    const none = await httpCall('GET', `/kms/v1/keys/${keyId}`, {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="kms"');
    const bad = await httpCall('GET', `/kms/v1/keys/${keyId}`, { authorization: 'Bearer kms_nope' });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Bearer realm="kms", error="invalid_token"');
  });

  it('a wrong method on a known path is 405 with Allow', async () => {
    const res = await httpCall('PUT', `/kms/v1/keys/${keyId}:encrypt`, auth());
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(JSON.parse(res.body)).toMatchObject({ code: 12, message: 'method PUT is not supported on this path (use POST)' });
  });
});
