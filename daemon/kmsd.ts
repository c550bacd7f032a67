/**
 * Starts a complete daemon from a config: lock, store, keystore, services, scheduler, HTTP
 * server. Used by main.ts and, in-process, by the integration tests.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createServer, type Server } from 'node:http';
import { buildApp, type AppLogger } from './app.js';
import type { KmsdConfig } from './config.js';
import { adminOnlyPolicy } from './domain/access.js';
import { AdjustableClock, systemClock } from './domain/clock.js';
import { randomIds } from './domain/ids.js';
import { KeyService } from './domain/keys.js';
import type { Keystore } from './domain/ports.js';
import { ensureBootstrapToken, tokenAuthenticator } from './domain/tokens.js';
import { Scheduler } from './scheduler/scheduler.js';
import { lockDataDir } from './store/lock.js';
import { openLowdbStore } from './store/lowdb-store.js';

export const VERSION = '0.1.0';

export interface RunningKmsd {
  url: string;
  dataDir: string;
  /** The generated admin token when this start created one (also in admin.token). */
  generatedAdminToken: string | null;
  keys: KeyService;
  /** Stops accepting, lets in-flight requests finish, flushes the store, releases the lock. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger: AppLogger;
  /** Opens the keystore; null runs without key material (control plane only). */
  openKeystore?: (config: KmsdConfig) => Keystore | null;
}

export async function startKmsd(config: KmsdConfig, options: StartOptions): Promise<RunningKmsd> {
  const { logger } = options;
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [() => lock.release()];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    const store = await openLowdbStore(dataDir);
    cleanups.push(() => store.close());
    const keystore = options.openKeystore?.(config) ?? null;
    if (keystore !== null) cleanups.push(() => keystore.close());
    const testClock = config.unsafeTestClock ? new AdjustableClock() : undefined;
    const clock = testClock ?? systemClock;
    const keys = new KeyService({ store, clock, ids: randomIds(), keystore, restoreWindowSeconds: config.restoreWindowSeconds });
    const generatedAdminToken = await ensureBootstrapToken(store, clock, config.bootstrapToken);
    if (generatedAdminToken !== null) {
      const path = join(dataDir, 'admin.token');
      writeFileSync(path, `${generatedAdminToken}\n`, { mode: 0o600 });
      chmodSync(path, 0o600);
      logger.warn({ path }, 'generated the bootstrap admin token; it is in this file (mode 0600)');
    }
    const scheduler = new Scheduler(keys, logger, config.schedulerIntervalMs);
    const app = buildApp({
      keys,
      scheduler,
      authenticate: tokenAuthenticator(store),
      policy: adminOnlyPolicy,
      logger,
      version: VERSION,
      keystoreKind: keystore?.kind ?? 'none',
      ...(testClock !== undefined ? { testClock } : {}),
    });
    if (testClock !== undefined) logger.warn({}, 'UNSAFE: --unsafe-test-clock is on; POST /test/v1/clock:advance moves time');
    const server = createServer(app);
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(config.listenPort, config.listenHost, () => resolveListen());
    });
    cleanups.push(() => closeServer(server));
    scheduler.start();
    cleanups.push(() => scheduler.stop());
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    let stopping: Promise<void> | null = null;
    return {
      url,
      dataDir,
      generatedAdminToken,
      keys,
      stop: () => (stopping ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Stops accepting connections and waits for in-flight requests; idle keep-alive sockets close now. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    server.close(() => resolveClose());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 10_000).unref();
  });
}
