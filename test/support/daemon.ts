/**
 * Test helpers that run the real daemon: `startDaemon` spawns the built `kmsd` as a child process
 * (what users run), `startInProcess` runs it in the test's own process on port 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { storeArgs } from './postgres.js';

/** Repository root (this file runs from dist/test/support). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const KMSD_MAIN = join(REPO_ROOT, 'dist/daemon/main.js');

export interface DaemonProcess {
  url: string;
  token: string;
  dataDir: string;
  child: ChildProcess;
  /** Every line the daemon printed (stdout and stderr), for assertions on logs. */
  output: string[];
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface DaemonOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  /** Default true: adds --unsafe-test-clock. */
  testClock?: boolean;
}

export function tempDir(prefix = 'kms-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function newTestToken(): string {
  return `kms_test_${randomBytes(16).toString('hex')}`;
}

export async function startDaemon(options: DaemonOptions = {}): Promise<DaemonProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const token = options.env?.KMS_BOOTSTRAP_TOKEN ?? newTestToken();
  const args = [
    KMSD_MAIN,
    '--listen',
    '127.0.0.1:0',
    '--data-dir',
    dataDir,
    ...(options.testClock === false ? [] : ['--unsafe-test-clock']),
    ...(await storeArgs(dataDir, options.args)),
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, KMS_BOOTSTRAP_TOKEN: token, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        output.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string };
          if (entry.msg === 'kmsd listening' && entry.url !== undefined) resolveUrl(entry.url);
        } catch {
          // not a JSON log line (stderr text); kept in output
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => output.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
    void exited.then((code) => reject(new Error(`kmsd exited with ${code} before listening:\n${output.join('\n')}`)));
    setTimeout(() => reject(new Error(`kmsd did not start within 30s:\n${output.join('\n')}`)), 30_000).unref();
  });
  const waitExit = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { url, token, dataDir, child, output, stop: () => waitExit('SIGTERM'), kill: () => waitExit('SIGKILL') };
}

/** A small typed fetch wrapper for tests: JSON in, `{status, body}` out. */
export async function api(
  base: { url: string; token: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; requestId: string }> {
  const sent: Record<string, string> = { authorization: `Bearer ${base.token}`, ...headers };
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    sent['content-type'] ??= 'application/json';
  }
  // node:http with a fresh connection per call, not fetch: undici reuses keep-alive sockets, and a
  // loaded machine (or a test that blocks its event loop) can hand it one the server has just
  // closed, which fails the call with ECONNRESET although the daemon did nothing wrong.
  const url = new URL(`${base.url}${path}`);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, text, requestId } = await new Promise<{ status: number; text: string; requestId: string }>((resolveCall, reject) => {
    const req = send(url, { method, headers: sent, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const id = res.headers['x-request-id'];
        resolveCall({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), requestId: typeof id === 'string' ? id : '' });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // non-JSON bodies are returned as text
  }
  return { status, body: parsed, requestId };
}
