/**
 * kmsd configuration: flags, then environment variables, then embedded defaults. Everything a
 * user can set is listed here once; `kmsd --help` prints this table.
 */
import { parseArgs } from 'node:util';

export interface KmsdConfig {
  listenHost: string;
  listenPort: number;
  dataDir: string;
  unsafeTestClock: boolean;
  keystore: 'pkcs11' | 'software';
  pkcs11Module?: string;
  /** Absent: the SoftHSM2 token generated for this data dir (label kept in hsm-pins.json). */
  pkcs11TokenLabel?: string;
  pkcs11Pin?: string;
  bootstrapToken?: string;
  logLevel: string;
  /** Seconds a deleted key can be restored. */
  restoreWindowSeconds: number;
  /** Seconds operations are kept before the scheduler prunes them. */
  operationRetentionSeconds: number;
  schedulerIntervalMs: number;
  http: HttpLimits;
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
  dataDir: './kms-data',
  keystore: 'pkcs11',
  logLevel: 'info',
  restoreWindow: '72h',
  operationRetention: '720h',
  httpHeadersTimeout: '10s',
  httpRequestTimeout: '30s',
  httpKeepAliveTimeout: '5s',
  httpMaxConnections: 1024,
} as const;

export const USAGE = `Usage: kmsd [options]
       kmsd audit verify --data-dir DIR
       kmsd hsm status --data-dir DIR [--json]

Options (flag / environment variable / default):
  --listen HOST:PORT          KMS_LISTEN               ${DEFAULTS.listen}
  --data-dir DIR              KMS_DATA_DIR             ${DEFAULTS.dataDir}
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
        'data-dir': { type: 'string' },
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
        'unsafe-test-clock': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (values.help === true) throw new ConfigError('help');
  const listen = values.listen ?? env.KMS_LISTEN ?? DEFAULTS.listen;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (match?.[1] === undefined || port > 65535) throw new ConfigError(`--listen must be HOST:PORT, got "${listen}"`);
  const keystore = values.keystore ?? env.KMS_KEYSTORE ?? DEFAULTS.keystore;
  if (keystore !== 'pkcs11' && keystore !== 'software') throw new ConfigError(`--keystore must be pkcs11 or software, got "${keystore}"`);
  const config: KmsdConfig = {
    listenHost: match[1].replace(/^\[|\]$/g, ''),
    listenPort: port,
    dataDir: values['data-dir'] ?? env.KMS_DATA_DIR ?? DEFAULTS.dataDir,
    unsafeTestClock: values['unsafe-test-clock'] === true,
    keystore,
    logLevel: values['log-level'] ?? env.KMS_LOG_LEVEL ?? DEFAULTS.logLevel,
    restoreWindowSeconds: parseGoDuration('--restore-window', values['restore-window'] ?? env.KMS_RESTORE_WINDOW ?? DEFAULTS.restoreWindow),
    operationRetentionSeconds: parseGoDuration(
      '--operation-retention',
      values['operation-retention'] ?? env.KMS_OPERATION_RETENTION ?? DEFAULTS.operationRetention,
    ),
    schedulerIntervalMs: 1000,
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
  const module = values['pkcs11-module'] ?? env.KMS_PKCS11_MODULE;
  if (module !== undefined) config.pkcs11Module = module;
  const label = values['pkcs11-token-label'] ?? env.KMS_PKCS11_TOKEN_LABEL;
  if (label !== undefined) config.pkcs11TokenLabel = label;
  const pin = values['pkcs11-pin'] ?? env.KMS_PKCS11_PIN;
  if (pin !== undefined) config.pkcs11Pin = pin;
  if (env.KMS_BOOTSTRAP_TOKEN !== undefined && env.KMS_BOOTSTRAP_TOKEN !== '') config.bootstrapToken = env.KMS_BOOTSTRAP_TOKEN;
  return config;
}

function parsePositiveInteger(name: string, text: string): number {
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1) throw new ConfigError(`${name} must be a positive integer, got "${text}"`);
  return Number(text);
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
