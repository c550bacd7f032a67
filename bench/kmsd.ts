/**
 * The real kmsd as the bench runs it: `node dist/daemon/main.js` on a loopback port, without
 * --unsafe-test-clock, admin token from KMS_BOOTSTRAP_TOKEN, its JSON log written to a file in the
 * data dir (as a deployment would send it to a file or journald; a pipe read by the bench would
 * put log parsing on the load generator's core).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KMSD_MAIN } from './paths.js';

export interface BenchDaemon {
  url: string;
  token: string;
  dataDir: string;
  pid: number;
  /** Spawn until the first successful GET /healthz. */
  startMs: number;
  /** SIGTERM and wait (kmsd flushes and exits 0); SIGKILL after 20 s. */
  stop(): Promise<void>;
}

export interface BenchDaemonOptions {
  dataDir: string;
  token: string;
  /** Pin to these CPUs (taskset -c LIST) when set. */
  cpus?: string;
  /** Extra node flags for this daemon only (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Extra kmsd flags. */
  args?: string[];
  timeoutMs?: number;
}

/** The last 20 lines of a server's log file, for error messages ('' when unreadable). */
export function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls `url` until it answers 200 (any status with `anyStatus`), the child exits, or the deadline passes. */
export async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number, describe: () => string, anyStatus = false): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it was healthy\n${describe()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok || anyStatus) return;
    } catch {
      // not listening yet
    }
    await sleep(5);
  }
  throw new Error(`not healthy within ${timeoutMs} ms\n${describe()}`);
}

/** Waits for a child to exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 20000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startBenchDaemon(options: BenchDaemonOptions): Promise<BenchDaemon> {
  const port = await freePort();
  const logFile = join(options.dataDir, `kmsd-${port}.log`);
  const log = openSync(logFile, 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_BOOTSTRAP_TOKEN: options.token };
  // Each daemon keeps its SoftHSM2 token in its own data dir, as on first start of a real host.
  delete env.SOFTHSM2_CONF;
  const started = performance.now();
  const argv = [process.execPath, ...(options.nodeArgs ?? []), KMSD_MAIN, '--listen', `127.0.0.1:${port}`, '--grpc-listen', 'off', '--data-dir', options.dataDir, ...(options.args ?? [])];
  if (options.cpus !== undefined) argv.unshift('taskset', '-c', options.cpus);
  const child = spawn(argv[0]!, argv.slice(1), {
    env,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const tail = () => logTail(logFile);
  try {
    await waitHealthy(`${url}/healthz`, child, options.timeoutMs ?? 120000, tail);
  } catch (error) {
    await stopChild(child);
    throw new Error(`kmsd ${(error as Error).message}`, { cause: error });
  }
  const startMs = performance.now() - started;
  return { url, token: options.token, dataDir: options.dataDir, pid: child.pid!, startMs, stop: () => stopChild(child) };
}
