/**
 * Serves the web console (console/, bundled by `npm run build` into dist/console) at /console.
 * The console is static: a page, one script and one stylesheet, read into memory once. It holds
 * no secret and needs no token; everything it shows comes from the REST API, called by the page
 * with the user's token, so permissions and the audit trail apply to it unchanged. Its responses
 * carry a strict Content-Security-Policy (no inline script or style, only this origin, no
 * framing), X-Frame-Options, Referrer-Policy and Cache-Control: no-store.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/console next to dist/daemon (where `npm run build` puts the bundle). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), clipboard-read=()',
};

const FILES = new Map<string, string>([
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
  ['favicon.svg', 'image/svg+xml'],
]);

/**
 * A request handler for /console and below; returns false for every other path. Unknown files
 * are 404; only GET and HEAD are served.
 */
export function consoleHandler(dir: string = DEFAULT_CONSOLE_DIR): (req: IncomingMessage, res: ServerResponse) => boolean {
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of FILES) {
    const path = join(dir, name);
    if (existsSync(path)) assets.set(name, { type, body: readFileSync(path) });
  }
  const send = (res: ServerResponse, status: number, type: string, body: Buffer | string, head: boolean): void => {
    res.statusCode = status;
    for (const [name, value] of Object.entries(CONSOLE_HEADERS)) res.setHeader(name, value);
    res.setHeader('content-type', type);
    res.setHeader('content-length', String(Buffer.byteLength(body)));
    res.end(head ? undefined : body);
  };
  return (req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0] as string;
    if (path !== '/console' && !path.startsWith('/console/')) return false;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', head);
      return true;
    }
    if (path === '/console') {
      res.setHeader('location', '/console/');
      send(res, 308, 'text/plain; charset=utf-8', 'see /console/\n', head);
      return true;
    }
    const name = path === '/console/' ? 'index.html' : path.slice('/console/'.length);
    const asset = assets.get(name);
    if (asset === undefined) {
      const message = assets.size === 0 ? 'the console is not built (npm run build)\n' : 'not found\n';
      send(res, 404, 'text/plain; charset=utf-8', message, head);
      return true;
    }
    send(res, 200, asset.type, asset.body, head);
    return true;
  };
}
