/** The console's static handler on a real node:http server: what it serves, and what it does not. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CONSOLE_CSP, consoleHandler } from '../../daemon/http/console.js';
import { tempDir } from '../support/daemon.js';

function serve(dir: string): Promise<{ server: Server; url: string }> {
  const handle = consoleHandler(dir);
  const server = createServer((req, res) => {
    if (!handle(req, res)) {
      res.statusCode = 418;
      res.end('not the console');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

describe('console handler', () => {
  let built: { server: Server; url: string };
  let empty: { server: Server; url: string };
  beforeAll(async () => {
    const dir = tempDir('kms-console-');
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(join(dir, 'app.js'), 'export {};');
    writeFileSync(join(dir, 'secret.txt'), 'never served');
    built = await serve(dir);
    empty = await serve(tempDir('kms-console-empty-'));
  });
  afterAll(() => {
    built.server.close();
    empty.server.close();
  });

  it('serves only its own files, with the security headers, and leaves other paths alone', async () => {
    const page = await fetch(`${built.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect((await fetch(`${built.url}/console/app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const head = await fetch(`${built.url}/console/app.js`, { method: 'HEAD' });
    expect([head.status, await head.text(), head.headers.get('content-length')]).toEqual([200, '', '10']);
    // Only the known names: not another file of the directory, not a path outside it.
    expect((await fetch(`${built.url}/console/secret.txt`)).status).toBe(404);
    // (the client resolves the dot segments: the request is for /secret.txt, which is not the console's)
    expect((await fetch(`${built.url}/console/%2e%2e/secret.txt`)).status).toBe(418);
    expect((await fetch(`${built.url}/console/sub/app.js`)).status).toBe(404);
    expect((await fetch(`${built.url}/console/app.js?v=1`)).status).toBe(200);
    expect((await fetch(`${built.url}/consoles`)).status).toBe(418);
    expect((await fetch(`${built.url}/kms/v1/keys`)).status).toBe(418);
    const del = await fetch(`${built.url}/console/app.js`, { method: 'DELETE' });
    expect([del.status, del.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
  });

  it('says so when the console was not built', async () => {
    const res = await fetch(`${empty.url}/console/`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('the console is not built (npm run build)\n');
  });
});
