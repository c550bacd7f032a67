/**
 * kmsd configuration: flags, then environment variables, then embedded defaults. Everything a
 * user can set is listed here once; `kmsd --help` prints this table.
 */
import { parseArgs } from 'node:util';

export interface KmsdConfig {
  listenHost: string;
  listenPort: number;
  dataDir: string;
  /** Absent: the lowdb file store in the data dir. A postgres:// URL: a node of a PostgreSQL cluster. */
  storeUrl?: string;
  /** The scheduler's leader lease (PostgreSQL only), milliseconds. */
  lease: { ttlMs: number; renewMs: number };
  /** How often a PostgreSQL node polls for other nodes' commits when notifications are lost. */
  replicaPollMs: number;
  unsafeTestClock: boolean;
  keystore: 'pkcs11' | 'software';
  pkcs11Module?: string;
  /** Absent: the SoftHSM2 token generated for this data dir (label kept in hsm-pins.json). */
  pkcs11TokenLabel?: string;
  pkcs11Pin?: string;
  bootstrapToken?: string;
  logLevel: string;
  /** Successful data-plane calls are logged one in this many; errors and refusals always. */
  logSampleEvery: number;
  /** Seconds a deleted key can be restored. */
  restoreWindowSeconds: number;
  /** Seconds operations are kept before the scheduler prunes them. */
  operationRetentionSeconds: number;
  schedulerIntervalMs: number;
  http: HttpLimits;
  /** The TLS gRPC listener (Yandex Cloud gRPC API); null when `--grpc-listen off`. */
  grpc: { host: string; port: number } | null;
  /** HOST:PORT that endpoint discovery returns; absent: the listen address (`localhost` for loopback). */
  grpcAdvertise?: string;
  /** PEM files of the gRPC listener; absent: a private CA and certificate under <data-dir>/tls/. */
  tlsCert?: string;
  tlsKey?: string;
  /** The audit trail (daemon/audit/trail.ts): segment rotation, retention, recovery after a cut. */
  audit: {
    segmentBytes: number;
    segmentMaxAgeSeconds: number;
    retentionSeconds: number;
    maxTotalBytes: number;
    acceptLoss: boolean;
  };
}

/** Limits of the HTTP listener (node:http server settings). */
export interface HttpLimits {
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request. */
  requestTimeoutMs: number;
  /** Idle time before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Open connections beyond this are refused. */
  maxConnections: number;
}

export const DEFAULTS = {
  listen: '127.0.0.1:8443',
  grpcListen: '127.0.0.1:8444',
  dataDir: './kms-data',
  keystore: 'pkcs11',
  logLevel: 'info',
  logSampleEvery: 100,
  restoreWindow: '72h',
  operationRetention: '720h',
  httpHeadersTimeout: '10s',
  httpRequestTimeout: '30s',
  httpKeepAliveTimeout: '5s',
  httpMaxConnections: 1024,
  auditSegmentSize: '16MiB',
  auditSegmentMaxAge: '24h',
  auditRetention: '8760h',
  auditMaxSize: '10GiB',
  leaseTtl: '15s',
  leaseRenew: '5s',
  replicaPoll: '1s',
} as const;

export const USAGE = `Usage: kmsd [options]
       kmsd audit verify|export --data-dir DIR …   (kmsd audit --help)
       kmsd hsm status --data-dir DIR [--json]
       kmsd cluster status --store postgres://… [--json]

Options (flag / environment variable / default):
  --listen HOST:PORT          KMS_LISTEN               ${DEFAULTS.listen}
  --grpc-listen HOST:PORT|off KMS_GRPC_LISTEN          ${DEFAULTS.grpcListen} (TLS gRPC, the Yandex Cloud gRPC API; "off" disables it)
  --grpc-advertise HOST:PORT  KMS_GRPC_ADVERTISE       the gRPC listen address (localhost for a loopback one): what endpoint discovery returns
  --tls-cert FILE             KMS_TLS_CERT             a private CA and server certificate kmsd makes under <data-dir>/tls/ (CA in tls/ca.pem)
  --tls-key FILE              KMS_TLS_KEY              (with --tls-cert)
  --data-dir DIR              KMS_DATA_DIR             ${DEFAULTS.dataDir}
  --store postgres://…        KMS_STORE                the lowdb file store in the data dir; a PostgreSQL URL makes this a cluster node
  --lease-ttl DURATION        KMS_LEASE_TTL            ${DEFAULTS.leaseTtl} (PostgreSQL: the scheduler's leader lease lasts this long unrenewed)
  --lease-renew DURATION      KMS_LEASE_RENEW          ${DEFAULTS.leaseRenew} (PostgreSQL: the leader renews this often)
  --replica-poll DURATION     KMS_REPLICA_POLL         ${DEFAULTS.replicaPoll} (PostgreSQL: poll for other nodes' commits when notifications are lost)
  --keystore pkcs11|software  KMS_KEYSTORE             ${DEFAULTS.keystore} ("software" is for machines without any PKCS#11 module)
  --pkcs11-module PATH        KMS_PKCS11_MODULE        SoftHSM2 (/usr/lib/softhsm/libsofthsm2.so), token created under the data dir
  --pkcs11-token-label LABEL  KMS_PKCS11_TOKEN_LABEL   the token kmsd created for the data dir (SoftHSM2); required with another module
  --pkcs11-pin PIN            KMS_PKCS11_PIN           generated on first start into <data-dir>/hsm-pins.json (0600)
  --restore-window DURATION   KMS_RESTORE_WINDOW       ${DEFAULTS.restoreWindow} (how long a deleted key can be restored)
  --operation-retention DURATION  KMS_OPERATION_RETENTION  ${DEFAULTS.operationRetention} (operations older than this are pruned)
  --http-headers-timeout DURATION KMS_HTTP_HEADERS_TIMEOUT ${DEFAULTS.httpHeadersTimeout} (time to receive request headers)
  --http-request-timeout DURATION KMS_HTTP_REQUEST_TIMEOUT ${DEFAULTS.httpRequestTimeout} (time to receive a whole request)
  --http-keepalive-timeout DURATION KMS_HTTP_KEEPALIVE_TIMEOUT ${DEFAULTS.httpKeepAliveTimeout} (idle keep-alive connections close after this)
  --http-max-connections N    KMS_HTTP_MAX_CONNECTIONS ${DEFAULTS.httpMaxConnections} (connections beyond this are refused)
  --log-level LEVEL           KMS_LOG_LEVEL            ${DEFAULTS.logLevel}
  --log-sample-every N        KMS_LOG_SAMPLE_EVERY     ${DEFAULTS.logSampleEvery} (successful data-plane calls logged one in N; 1 logs all)
  --audit-segment-size SIZE   KMS_AUDIT_SEGMENT_SIZE   ${DEFAULTS.auditSegmentSize} (a segment is sealed before it would outgrow this)
  --audit-segment-max-age DUR KMS_AUDIT_SEGMENT_MAX_AGE ${DEFAULTS.auditSegmentMaxAge} (…or once it is this old)
  --audit-retention DURATION  KMS_AUDIT_RETENTION      ${DEFAULTS.auditRetention} (sealed segments whose newest event is older are pruned)
  --audit-max-size SIZE       KMS_AUDIT_MAX_SIZE       ${DEFAULTS.auditMaxSize} (oldest sealed segments are pruned while the trail is larger)
  --audit-accept-loss         KMS_AUDIT_ACCEPT_LOSS=1  start although the trail ends before its anchor, recording an Audit.IntegrityAlert
  --unsafe-test-clock                                  adds POST /test/v1/clock:advance (tests only; never in production)
  KMS_BOOTSTRAP_TOKEN         admin token to register on start; otherwise one is generated into <data-dir>/admin.token (0600)
`;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): KmsdConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        'grpc-listen': { type: 'string' },
        'grpc-advertise': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'data-dir': { type: 'string' },
        store: { type: 'string' },
        'lease-ttl': { type: 'string' },
        'lease-renew': { type: 'string' },
        'replica-poll': { type: 'string' },
        keystore: { type: 'string' },
        'pkcs11-module': { type: 'string' },
        'pkcs11-token-label': { type: 'string' },
        'pkcs11-pin': { type: 'string' },
        'restore-window': { type: 'string' },
        'operation-retention': { type: 'string' },
        'http-headers-timeout': { type: 'string' },
        'http-request-timeout': { type: 'string' },
        'http-keepalive-timeout': { type: 'string' },
        'http-max-connections': { type: 'string' },
        'log-level': { type: 'string' },
        'log-sample-every': { type: 'string' },
        'audit-segment-size': { type: 'string' },
        'audit-segment-max-age': { type: 'string' },
        'audit-retention': { type: 'string' },
        'audit-max-size': { type: 'string' },
        'audit-accept-loss': { type: 'boolean' },
        'unsafe-test-clock': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help === true) throw new ConfigError('help');
  const listen = values.listen ?? env.KMS_LISTEN ?? DEFAULTS.listen;
  const { host: listenHost, port } = parseHostPort('--listen', listen);
  const grpcListen = values['grpc-listen'] ?? env.KMS_GRPC_LISTEN ?? DEFAULTS.grpcListen;
  const grpc = grpcListen === 'off' ? null : parseHostPort('--grpc-listen', grpcListen);
  const keystore = values.keystore ?? env.KMS_KEYSTORE ?? DEFAULTS.keystore;
  if (keystore !== 'pkcs11' && keystore !== 'software') throw new ConfigError(`--keystore must be pkcs11 or software, got "${keystore}"`);
  const config: KmsdConfig = {
    listenHost,
    listenPort: port,
    grpc,
    dataDir: values['data-dir'] ?? env.KMS_DATA_DIR ?? DEFAULTS.dataDir,
    lease: {
      ttlMs: parseMilliseconds('--lease-ttl', values['lease-ttl'] ?? env.KMS_LEASE_TTL ?? DEFAULTS.leaseTtl),
      renewMs: parseMilliseconds('--lease-renew', values['lease-renew'] ?? env.KMS_LEASE_RENEW ?? DEFAULTS.leaseRenew),
    },
    replicaPollMs: parseMilliseconds('--replica-poll', values['replica-poll'] ?? env.KMS_REPLICA_POLL ?? DEFAULTS.replicaPoll),
    unsafeTestClock: values['unsafe-test-clock'] === true,
    keystore,
    logLevel: values['log-level'] ?? env.KMS_LOG_LEVEL ?? DEFAULTS.logLevel,
    logSampleEvery: parsePositiveInteger('--log-sample-every', values['log-sample-every'] ?? env.KMS_LOG_SAMPLE_EVERY ?? String(DEFAULTS.logSampleEvery)),
    restoreWindowSeconds: parseGoDuration('--restore-window', values['restore-window'] ?? env.KMS_RESTORE_WINDOW ?? DEFAULTS.restoreWindow),
    operationRetentionSeconds: parseGoDuration(
      '--operation-retention',
      values['operation-retention'] ?? env.KMS_OPERATION_RETENTION ?? DEFAULTS.operationRetention,
    ),
    schedulerIntervalMs: 1000,
    audit: {
      segmentBytes: parseSize('--audit-segment-size', values['audit-segment-size'] ?? env.KMS_AUDIT_SEGMENT_SIZE ?? DEFAULTS.auditSegmentSize, 4096),
      segmentMaxAgeSeconds: positive('--audit-segment-max-age', parseGoDuration('--audit-segment-max-age', values['audit-segment-max-age'] ?? env.KMS_AUDIT_SEGMENT_MAX_AGE ?? DEFAULTS.auditSegmentMaxAge)),
      retentionSeconds: positive('--audit-retention', parseGoDuration('--audit-retention', values['audit-retention'] ?? env.KMS_AUDIT_RETENTION ?? DEFAULTS.auditRetention)),
      maxTotalBytes: parseSize('--audit-max-size', values['audit-max-size'] ?? env.KMS_AUDIT_MAX_SIZE ?? DEFAULTS.auditMaxSize, 4096),
      acceptLoss: values['audit-accept-loss'] === true || env.KMS_AUDIT_ACCEPT_LOSS === '1' || env.KMS_AUDIT_ACCEPT_LOSS === 'true',
    },
    http: {
      headersTimeoutMs: 1000 * parseGoDuration('--http-headers-timeout', values['http-headers-timeout'] ?? env.KMS_HTTP_HEADERS_TIMEOUT ?? DEFAULTS.httpHeadersTimeout),
      requestTimeoutMs: 1000 * parseGoDuration('--http-request-timeout', values['http-request-timeout'] ?? env.KMS_HTTP_REQUEST_TIMEOUT ?? DEFAULTS.httpRequestTimeout),
      keepAliveTimeoutMs:
        1000 * parseGoDuration('--http-keepalive-timeout', values['http-keepalive-timeout'] ?? env.KMS_HTTP_KEEPALIVE_TIMEOUT ?? DEFAULTS.httpKeepAliveTimeout),
      maxConnections: parsePositiveInteger(
        '--http-max-connections',
        values['http-max-connections'] ?? env.KMS_HTTP_MAX_CONNECTIONS ?? String(DEFAULTS.httpMaxConnections),
      ),
    },
  };
  if (config.http.headersTimeoutMs === 0 || config.http.requestTimeoutMs === 0) {
    throw new ConfigError('--http-headers-timeout and --http-request-timeout must be more than 0s');
  }
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    throw new ConfigError('--http-headers-timeout must not be longer than --http-request-timeout');
  }
  const store = values.store ?? env.KMS_STORE;
  if (store !== undefined && store !== '') {
    if (!/^postgres(ql)?:\/\//.test(store)) throw new ConfigError('--store must be a postgres:// URL (or absent for the file store in the data dir)');
    config.storeUrl = store;
  }
  if (config.lease.renewMs * 2 > config.lease.ttlMs) throw new ConfigError('--lease-renew must be at most half of --lease-ttl');
  const module = values['pkcs11-module'] ?? env.KMS_PKCS11_MODULE;
  if (module !== undefined) config.pkcs11Module = module;
  const label = values['pkcs11-token-label'] ?? env.KMS_PKCS11_TOKEN_LABEL;
  if (label !== undefined) config.pkcs11TokenLabel = label;
  const pin = values['pkcs11-pin'] ?? env.KMS_PKCS11_PIN;
  if (pin !== undefined) config.pkcs11Pin = pin;
  if (env.KMS_BOOTSTRAP_TOKEN !== undefined && env.KMS_BOOTSTRAP_TOKEN !== '') config.bootstrapToken = env.KMS_BOOTSTRAP_TOKEN;
  const advertise = values['grpc-advertise'] ?? env.KMS_GRPC_ADVERTISE;
  if (advertise !== undefined) {
    parseHostPort('--grpc-advertise', advertise);
    config.grpcAdvertise = advertise;
  }
  const tlsCert = values['tls-cert'] ?? env.KMS_TLS_CERT;
  const tlsKey = values['tls-key'] ?? env.KMS_TLS_KEY;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key must be given together');
  if (tlsCert !== undefined) config.tlsCert = tlsCert;
  if (tlsKey !== undefined) config.tlsKey = tlsKey;
  return config;
}

/** `HOST:PORT` or `[IPv6]:PORT` → host (without brackets) and port. */
function parseHostPort(name: string, text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match?.[1] === undefined || port > 65535) throw new ConfigError(`${name} must be HOST:PORT, got "${text}"`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

const SIZE_UNITS = new Map<string, number>([
  ['', 1],
  ['B', 1],
  ['KiB', 1024],
  ['MiB', 1024 ** 2],
  ['GiB', 1024 ** 3],
  ['TiB', 1024 ** 4],
  ['KB', 1000],
  ['MB', 1000 ** 2],
  ['GB', 1000 ** 3],
  ['TB', 1000 ** 4],
]);

/** "64MiB", "10GiB", "500MB", "4096" → bytes; at least `min`. */
export function parseSize(name: string, text: string, min: number): number {
  const match = /^(\d{1,15})(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$/.exec(text);
  const unit = SIZE_UNITS.get(match?.[2] ?? '');
  const bytes = match?.[1] === undefined || unit === undefined ? NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`${name} must be a size such as "64MiB" or "10GiB", got "${text}"`);
  if (bytes < min) throw new ConfigError(`${name} must be at least ${min} bytes, got "${text}"`);
  return bytes;
}

function positive(name: string, seconds: number): number {
  if (seconds <= 0) throw new ConfigError(`${name} must be longer than 0s`);
  return seconds;
}

function parsePositiveInteger(name: string, text: string): number {
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new ConfigError(`${name} must be a positive integer, got "${text}"`);
  return Number(text);
}

/** "15s", "500ms", "1m" → milliseconds (more than 0). */
export function parseMilliseconds(name: string, text: string): number {
  const parts = [...text.matchAll(/(\d+)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new ConfigError(`${name} must be a duration such as "15s" or "500ms", got "${text}"`);
  }
  const unit = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as 'h' | 'm' | 's' | 'ms'], 0);
  if (ms <= 0) throw new ConfigError(`${name} must be longer than 0s`);
  return ms;
}

/** "72h", "30m", "90s", "1h30m" → seconds. */
export function parseGoDuration(name: string, text: string): number {
  const parts = [...text.matchAll(/(\d+)(h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new ConfigError(`${name} must be a duration such as "72h" or "90m", got "${text}"`);
  }
  const unit = { h: 3600, m: 60, s: 1 } as const;
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as 'h' | 'm' | 's'], 0);
}
