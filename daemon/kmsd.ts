/**
 * Starts a complete daemon from a config: lock, store, keystore, services, scheduler, HTTP
 * server. Used by main.ts and, in-process, by the integration tests.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createServer, type Server } from 'node:http';
import { appCallLog, buildApp, buildDispatcher, type AppDeps, type AppLogger } from './app.js';
import { openAuditLog } from './audit/trail.js';
import { verifyTrail } from './audit/verify.js';
import type { KmsdConfig } from './config.js';
import { BOOTSTRAP_ADMIN, rolePolicy, type AccessPolicy } from './domain/access.js';
import { AdjustableClock, systemClock } from './domain/clock.js';
import { crashPoint } from './crash-points.js';
import { CryptoService } from './domain/crypto.js';
import { IamService } from './domain/iam.js';
import { randomIds } from './domain/ids.js';
import { KeyService } from './domain/keys.js';
import type { AuditLog, Keystore } from './domain/ports.js';
import { readiness, type HealthSource } from './domain/health.js';
import { ensureBootstrapToken, tokenAuthenticator } from './domain/tokens.js';
import { cryptoRoutes } from './http/crypto.js';
import { auditRoutes } from './http/audit.js';
import { iamRoutes } from './http/iam.js';
import { endpointRoutes } from './http/endpoints.js';
import { startGrpcServer } from './grpc/server.js';
import { loadTlsMaterial } from './grpc/tls.js';
import { bindKeystore, refuseStart, storeIsUnbound } from './keystore/binding.js';
import { openPkcs11Keystore } from './keystore/pkcs11.js';
import { writeSecretFile } from './keystore/secret-file.js';
import { findSoftHsmModule, openSoftHsmKeystore } from './keystore/softhsm.js';
import { openSoftwareKeystore } from './keystore/software.js';
import { Scheduler } from './scheduler/scheduler.js';
import { MeteredKeystore, meteredStore } from './metrics/metered.js';
import { PrometheusMetrics } from './metrics/prometheus.js';
import { fsyncDirectory } from './store/durable-file.js';
import { lockDataDir } from './store/lock.js';
import { openLowdbStore } from './store/lowdb-store.js';
import { openPgStore, type PgStore } from './store/pg-store.js';
import { AuditCopy, ClusterAuditLog } from './cluster/audit-copy.js';
import { LeaderLease } from './cluster/lease.js';
import { INSTANCE_ID_FILE, PgAuditAnchorStore, instanceIdOf, startHeartbeat, withAnchorStore } from './cluster/node.js';
import type { Store } from './domain/ports.js';
import type { VersionRecord } from './domain/model.js';

/** Deleted records stay as tombstones this long, so every node's replica learns of the deletion. */
const TOMBSTONE_RETENTION_SECONDS = 3600;
const HOUSEKEEPING_INTERVAL_MS = 60_000;
const HEARTBEAT_INTERVAL_MS = 5000;

export const VERSION = '0.1.0';

export interface RunningKmsd {
  url: string;
  /** HOST:PORT of the TLS gRPC listener; undefined with `--grpc-listen off`. */
  grpcAddress?: string;
  /** What endpoint discovery returns (HOST:PORT clients dial). */
  grpcAdvertise?: string;
  /** The CA certificate of the gRPC listener when kmsd made it (`<data-dir>/tls/ca.pem`). */
  grpcCaPath?: string;
  dataDir: string;
  /** The generated admin token when this start created one (also in admin.token). */
  generatedAdminToken: string | null;
  keys: KeyService;
  /** On PostgreSQL: this node's id and lease. */
  cluster: { instanceId: string; lease: LeaderLease; store: PgStore } | null;
  /** Stops accepting, lets in-flight requests finish, flushes the store, releases the lock. */
  stop(): Promise<void>;
}

export interface StartOptions {
  logger: AppLogger;
  /**
   * Benchmarks only (bench/auth-audit.ts): every request runs as the bootstrap admin, nothing is
   * authorized or audited. Not reachable from the command line or the environment.
   */
  unsafeWithoutAccessControl?: boolean;
}

/**
 * The configured keystore. Default: SoftHSM2 with a token kmsd creates under the data dir.
 * With `--pkcs11-module` and `--pkcs11-pin` any other PKCS#11 module (an existing token, found by
 * `--pkcs11-token-label`). `--keystore software` only where no PKCS#11 module exists.
 */
export function openConfiguredKeystore(
  config: KmsdConfig,
  dataDir: string,
  logger: AppLogger,
  provisioning: { allowCreate: boolean; readOnly?: boolean } = { allowCreate: true },
): Keystore {
  const log = { info: (message: string) => logger.info({}, message), warn: (message: string) => logger.warn({}, message) };
  const { allowCreate } = provisioning;
  if (config.keystore === 'software') return openSoftwareKeystore({ dataDir, logger: log, allowCreate: allowCreate && provisioning.readOnly !== true });
  const module = config.pkcs11Module ?? findSoftHsmModule();
  const isSoftHsm = /softhsm/i.test(module);
  if (!isSoftHsm) {
    if (config.pkcs11Pin === undefined || config.pkcs11TokenLabel === undefined) {
      throw new Error(`--pkcs11-module ${module} needs --pkcs11-token-label and --pkcs11-pin (or KMS_PKCS11_TOKEN_LABEL, KMS_PKCS11_PIN)`);
    }
    return openPkcs11Keystore({
      modulePath: module,
      tokenLabel: config.pkcs11TokenLabel,
      pin: config.pkcs11Pin,
      allowCreate: allowCreate && provisioning.readOnly !== true,
      logger: log,
    });
  }
  return openSoftHsmKeystore(dataDir, {
    modulePath: module,
    logger: log,
    allowCreate,
    ...(provisioning.readOnly === true ? { readOnly: true } : {}),
    ...(config.pkcs11TokenLabel !== undefined ? { tokenLabel: config.pkcs11TokenLabel } : {}),
    ...(config.pkcs11Pin !== undefined ? { pin: config.pkcs11Pin } : {}),
  });
}

export async function startKmsd(config: KmsdConfig, options: StartOptions): Promise<RunningKmsd> {
  const { logger } = options;
  const dataDir = resolve(config.dataDir);
  if (!existsSync(dataDir)) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fsyncDirectory(dirname(dataDir));
  }
  const lock = lockDataDir(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [() => lock.release()];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    const metrics = new PrometheusMetrics();
    let pgStore: PgStore | null = null;
    let instanceId = '';
    let newNode = false;
    if (config.storeUrl !== undefined) {
      newNode = !existsSync(join(dataDir, INSTANCE_ID_FILE));
      instanceId = instanceIdOf(dataDir);
      pgStore = await openPgStore({
        url: config.storeUrl,
        applicationName: `kmsd:${instanceId}`,
        pollIntervalMs: config.replicaPollMs,
        logger,
      });
    }
    const rawStore: Store = pgStore ?? (await openLowdbStore(dataDir, { logger }));
    const store = meteredStore(rawStore, metrics);
    cleanups.push(() => store.close());
    const testClock = config.unsafeTestClock ? new AdjustableClock() : undefined;
    const clock = testClock ?? systemClock;
    // A store that holds (or held) wrapped material may only meet the HSM it was made with; only
    // an empty store lets the keystore create a token or root key.
    // On PostgreSQL a new node (a data dir that has never joined) may provision its local HSM
    // files; the binding recorded in the database then decides whether its token and root key are
    // the cluster's, and refuses the start when they are not.
    const allowCreate = store.read(storeIsUnbound) || newNode;
    let keystore: Keystore;
    try {
      keystore = new MeteredKeystore(openConfiguredKeystore(config, dataDir, logger, { allowCreate }), metrics);
    } catch (err) {
      if (allowCreate) throw err;
      throw refuseStart(dataDir, store.read((state) => state), err instanceof Error ? err.message : String(err));
    }
    cleanups.push(() => keystore.close());
    if (pgStore !== null) {
      // Each node anchors its own audit chain in PostgreSQL (the token's anchor object is one per token).
      const anchors = await PgAuditAnchorStore.open(pgStore.pool, instanceId, logger);
      keystore = withAnchorStore(keystore, anchors);
      cleanups.push(() => anchors.flush());
    }
    if (pgStore !== null) {
      // A version destroyed (or purged) by the leader: every node forgets its cached material too.
      const custody = keystore;
      pgStore.onRemoteChange((table, before, after) => {
        if (table !== 'versions') return;
        const was = (before as VersionRecord | undefined)?.material;
        if (was !== undefined && (after as VersionRecord | undefined)?.material === undefined) custody.destroyVersionMaterial(was);
      });
    }
    const binding = await bindKeystore(store, keystore, dataDir, () => clock.now());
    if (binding !== 'matched') {
      logger.info({ binding, custody: keystore.identity() }, 'recorded the HSM token and root key this store depends on');
      crashPoint('binding-recorded');
    }
    // After the keystore (its MAC key and anchor), closed before it.
    const trail = await openAuditLog(dataDir, {
      keystore,
      segmentBytes: config.audit.segmentBytes,
      segmentMaxAgeMs: config.audit.segmentMaxAgeSeconds * 1000,
      retentionMs: config.audit.retentionSeconds * 1000,
      maxTotalBytes: config.audit.maxTotalBytes,
      acceptLoss: config.audit.acceptLoss,
      now: () => clock.now(),
      metrics,
      logger: {
        info: (message: string) => logger.info({}, message),
        warn: (message: string) => logger.warn({}, message),
        error: (message: string) => logger.error({}, message),
      },
    });
    cleanups.push(() => trail.close());
    // On PostgreSQL the trail's durable events are also copied to the database, where the query
    // API merges every node's events by time (daemon/cluster/audit-copy.ts).
    let audit: AuditLog = trail;
    if (pgStore !== null) {
      const copy = await AuditCopy.open(pgStore.pool, instanceId, trail, logger, { retentionMs: config.audit.retentionSeconds * 1000, now: () => clock.now(), metrics });
      copy.start();
      cleanups.push(() => copy.close());
      audit = new ClusterAuditLog(trail, copy, pgStore.pool);
    }
    const ids = randomIds();
    const keys = new KeyService({
      store,
      clock,
      ids,
      keystore,
      restoreWindowSeconds: config.restoreWindowSeconds,
      operationRetentionSeconds: config.operationRetentionSeconds,
    });
    const bootstrap = await ensureBootstrapToken(store, clock, ids, config.bootstrapToken);
    const adminTokenPath = join(dataDir, 'admin.token');
    const generatedAdminToken = bootstrap.generated;
    if (generatedAdminToken !== null) {
      writeSecretFile(adminTokenPath, `${generatedAdminToken}\n`, { replace: true });
      logger.warn({ path: adminTokenPath }, 'generated the bootstrap admin token; it is in this file (mode 0600)');
    }
    if (bootstrap.revoked > 0) {
      logger.warn({ revoked: bootstrap.revoked }, 'KMS_BOOTSTRAP_TOKEN changed: revoked the previous bootstrap admin token');
      if (existsSync(adminTokenPath)) {
        rmSync(adminTokenPath, { force: true });
        fsyncDirectory(dataDir);
      }
    }
    let lease: LeaderLease | null = null;
    let schedulerKeys = keys;
    if (pgStore !== null) {
      const pg = pgStore;
      lease = new LeaderLease(config.storeUrl ?? '', `kmsd:${instanceId}`, instanceId, config.lease.ttlMs, config.lease.renewMs, logger);
      const held = lease;
      // The scheduler's writes are fenced by the lease epoch inside their transactions.
      schedulerKeys = new KeyService({
        store: meteredStore(pg.fenced(() => held.fence()), metrics),
        clock,
        ids,
        keystore,
        restoreWindowSeconds: config.restoreWindowSeconds,
        operationRetentionSeconds: config.operationRetentionSeconds,
      });
      await lease.start();
      cleanups.push(() => held.stop());
      const housekeeping = setInterval(() => {
        if (!held.isLeader()) return;
        pg.purgeTombstones(TOMBSTONE_RETENTION_SECONDS).catch((err: unknown) => logger.warn({ err }, 'purging tombstones failed'));
      }, HOUSEKEEPING_INTERVAL_MS);
      housekeeping.unref();
      cleanups.push(() => clearInterval(housekeeping));
    }
    const leaderLease = lease;
    const scheduler = new Scheduler(schedulerKeys, logger, config.schedulerIntervalMs, metrics, leaderLease === null ? undefined : () => leaderLease.isLeader());
    const bare = options.unsafeWithoutAccessControl === true;
    const policy: AccessPolicy = bare ? { authorize: () => undefined } : rolePolicy((query) => store.read(query));
    // The advertised gRPC address is known once the listener is bound (port 0 in tests).
    let advertised: string | undefined;
    const appDeps: AppDeps = {
      // The test suite sets this for every daemon it runs: each 2xx answer must match its schema.
      ...(process.env['KMS_TEST_CHECK_RESPONSES'] === '1' ? { checkResponses: true } : {}),
      logSampleEvery: config.logSampleEvery,
      metrics,
      renderMetrics: () => metrics.render(),
      keys,
      scheduler,
      authenticate: bare ? () => ({ subject: BOOTSTRAP_ADMIN }) : tokenAuthenticator(store, () => clock.now()),
      policy,
      now: () => clock.now(),
      folderOfKey: (keyId) => store.read((state) => state.keys.get(keyId)?.folderId),
      ...(bare ? {} : { audit }),
      logger,
      version: VERSION,
      keystoreKind: keystore.kind,
      readiness: () =>
        readiness(
          new Map<string, HealthSource>([
            ['store', () => store.health()],
            ['audit', () => audit.health()],
          ]),
        ),
      ...(leaderLease !== null && pgStore !== null
        ? {
            leader: () => leaderLease.isLeader(),
            freshen: ((pg: PgStore) => () => pg.sync())(pgStore),
            clusterInfo: ((pg: PgStore) => () => ({
              store: 'postgresql',
              instanceId,
              epoch: leaderLease.status().epoch,
              replicaRevision: pg.appliedRevision(),
              versionConflicts: pg.conflictCount(),
            }))(pgStore),
          }
        : {}),
      extraRoutes: [
        ...cryptoRoutes(new CryptoService(store, keystore), policy),
        ...iamRoutes(new IamService(store, clock, ids)),
        ...auditRoutes(audit, () => verifyTrail(dataDir, keystore.auditKeyring({ allowCreate: false }), keystore.auditAnchorStore({ allowCreate: false }))),
        ...endpointRoutes(() => advertised),
      ],
      ...(testClock !== undefined ? { testClock } : {}),
    };
    const dispatcher = buildDispatcher(appDeps);
    const app = buildApp(appDeps, dispatcher);
    if (testClock !== undefined) logger.warn({}, 'UNSAFE: --unsafe-test-clock is on; POST /test/v1/clock:advance moves time');
    const server = createServer(
      {
        headersTimeout: config.http.headersTimeoutMs,
        requestTimeout: config.http.requestTimeoutMs,
        keepAliveTimeout: config.http.keepAliveTimeoutMs,
        // How often node checks the two timeouts above (its default, 30 s, would let a slow client
        // hold a connection for up to 30 s beyond them).
        connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs),
      },
      app,
    );
    server.maxConnections = config.http.maxConnections;
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(config.listenPort, config.listenHost, () => resolveListen());
    });
    cleanups.push(() => closeServer(server));
    let grpcAddress: string | undefined;
    let grpcCaPath: string | undefined;
    if (config.grpc !== null) {
      const advertiseHost = config.grpcAdvertise !== undefined ? hostOf(config.grpcAdvertise) : undefined;
      const tls = await loadTlsMaterial({
        dataDir,
        ...(config.tlsCert !== undefined ? { certFile: config.tlsCert } : {}),
        ...(config.tlsKey !== undefined ? { keyFile: config.tlsKey } : {}),
        ...(advertiseHost !== undefined ? { advertiseHost } : {}),
      });
      grpcCaPath = tls.caPath;
      const grpcServer = await startGrpcServer({
        dispatcher,
        host: config.grpc.host,
        port: config.grpc.port,
        certPem: tls.certPem,
        keyPem: tls.keyPem,
        log: appCallLog(appDeps),
        logger,
      });
      cleanups.push(() => grpcServer.stop());
      grpcAddress = grpcServer.address;
      advertised = config.grpcAdvertise ?? defaultAdvertise(config.grpc.host, grpcServer.port);
      if (tls.caPath !== undefined) {
        logger.info({ grpc: grpcAddress, advertise: advertised, ca: tls.caPath, tls: tls.source }, 'gRPC clients must trust the CA certificate in this file');
      }
    }
    scheduler.start();
    cleanups.push(() => scheduler.stop());
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    if (pgStore !== null) {
      const stopHeartbeat = await startHeartbeat(pgStore.pool, { instanceId, url, version: VERSION }, HEARTBEAT_INTERVAL_MS, logger);
      cleanups.push(stopHeartbeat);
    }
    let stopping: Promise<void> | null = null;
    return {
      url,
      ...(grpcAddress !== undefined ? { grpcAddress } : {}),
      ...(advertised !== undefined ? { grpcAdvertise: advertised } : {}),
      ...(grpcCaPath !== undefined ? { grpcCaPath } : {}),
      dataDir,
      generatedAdminToken,
      keys,
      cluster: pgStore !== null && leaderLease !== null ? { instanceId, lease: leaderLease, store: pgStore } : null,
      stop: () => (stopping ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The host of HOST:PORT or [IPv6]:PORT. */
function hostOf(address: string): string {
  return address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
}

/** Clients dial a loopback listener as localhost (the name on the generated certificate). */
function defaultAdvertise(host: string, port: number): string {
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
  if (loopback) return `localhost:${port}`;
  if (host === '0.0.0.0' || host === '::') return `localhost:${port}`;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Stops accepting connections and waits for in-flight requests; idle keep-alive sockets close now. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    server.close(() => resolveClose());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 10_000).unref();
  });
}
