/**
 * Builds the daemon's HTTP request listener from its dependencies, without listening: kmsd.ts
 * listens, tests run it in-process on port 0. Express is imported here only.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { RequestListener, ServerResponse } from 'node:http';
import type { AccessPolicy } from './domain/access.js';
import { NO_METRICS, type AuditLog, type Metrics } from './domain/ports.js';
import type { AdjustableClock } from './domain/clock.js';
import type { ReadinessReport } from './domain/health.js';
import type { KeyService } from './domain/keys.js';
import { transportError } from './http/errors.js';
import { consoleHandler } from './http/console.js';
import { fastPath, type CallLog } from './http/fast-path.js';
import { keyRoutes } from './http/keys.js';
import { openApiDocument, responseChecker } from './http/openapi.js';
import { Dispatcher, boundedPath, hasRequestBody, type Authenticator, type CallInput, type CallOutput, type RouteDef } from './http/router.js';
import { healthRoute, metricsRoute, openApiRoute, testClockRoute } from './http/system.js';
import type { Scheduler } from './scheduler/scheduler.js';

/** Large enough for the biggest data-plane request (32 KiB plaintext + 8 KiB AAD, in base64). */
export const BODY_LIMIT_BYTES = 128 * 1024;

export interface AppLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AppDeps {
  keys: KeyService;
  scheduler: Scheduler;
  authenticate: Authenticator;
  policy: AccessPolicy;
  logger: AppLogger;
  version: string;
  keystoreKind: string;
  /** What `/healthz` reports (store and audit writability). */
  readiness: () => ReadinessReport;
  /** Whether this node runs the scheduler, and the cluster facts /healthz shows (PostgreSQL). */
  leader?: () => boolean;
  clusterInfo?: () => Record<string, unknown>;
  /** PostgreSQL: catch the replica up before a not-found/denied answer (see DispatcherDeps.freshen). */
  freshen?: () => Promise<void>;
  /** Present only under --unsafe-test-clock: adds POST /test/v1/clock:advance. */
  testClock?: AdjustableClock;
  /** Extra routes (data plane, access administration) contributed by other modules. */
  extraRoutes?: RouteDef[];
  audit?: AuditLog;
  folderOfKey?: (keyId: string) => string | undefined;
  now: () => Date;
  /** Successful data-plane calls are logged one in this many (default DEFAULT_LOG_SAMPLE_EVERY). */
  logSampleEvery?: number;
  /** Where call metrics go; with `renderMetrics`, GET /metrics serves them. */
  metrics?: Metrics;
  renderMetrics?: () => Promise<{ contentType: string; text: string }>;
  /** Tests only (KMS_TEST_CHECK_RESPONSES=1): every 2xx answer is checked against /openapi.json's schema. */
  checkResponses?: boolean;
  /** Where the built web console is (default dist/console); it is served at /console. */
  consoleDir?: string;
}

export function buildRoutes(deps: AppDeps): RouteDef[] {
  const routes: RouteDef[] = [
    healthRoute(
      () => ({ version: deps.version, keystore: deps.keystoreKind, ...(deps.clusterInfo !== undefined ? { cluster: deps.clusterInfo() } : {}) }),
      deps.readiness,
      deps.leader,
    ),
    ...keyRoutes(deps.keys),
    ...(deps.extraRoutes ?? []),
  ];
  if (deps.testClock !== undefined) routes.push(testClockRoute(deps.testClock, deps.scheduler));
  if (deps.renderMetrics !== undefined) routes.push(metricsRoute(deps.renderMetrics));
  let document: object | undefined;
  routes.push(openApiRoute(() => (document ??= openApiDocument(routes, deps.version))));
  return routes;
}

/**
 * The daemon's request listener: hot data-plane calls take the lean path (./http/fast-path.ts),
 * everything else goes through Express; both hand their calls to the same `Dispatcher`, so a call
 * meets the same route table, validation, permission check, audit event and error bodies
 * whichever path serves it.
 */
export function buildApp(deps: AppDeps, dispatcher: Dispatcher = buildDispatcher(deps)): RequestListener {
  const log = appCallLog(deps);
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.locals.requestId = randomUUID();
    res.locals.started = process.hrtime.bigint();
    setCommonHeaders(res, String(res.locals.requestId));
    // Refuse a declared oversized body before reading any of it (the parser would drain it first).
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT_BYTES) next(transportError('body-too-large', BODY_LIMIT_BYTES));
    else next();
  });
  app.use(express.json({ limit: BODY_LIMIT_BYTES, type: ['application/json', 'application/*+json'] }));
  app.use((req: Request, res: Response) => {
    const input = expressInput(req, res);
    void dispatcher.handle(input).then((output) => {
      sendOutput(res, output);
      log(input, output, res.locals.started as bigint);
    });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const input = expressInput(req, res);
    const output = dispatcher.refuse(input, fromBodyParser(err), (auditError) => deps.logger.error({ err: auditError }, 'audit log refused an event'));
    sendOutput(res, output);
    log(input, output, res.locals.started as bigint);
  });
  const fast = fastPath(dispatcher, { bodyLimit: BODY_LIMIT_BYTES, log });
  // The console's static files: not API calls (no token, nothing secret), so not audited.
  const serveConsole = consoleHandler(deps.consoleDir);
  return (req, res) => {
    if (!fast(req, res) && !serveConsole(req, res)) app(req, res);
  };
}

/**
 * The one dispatcher of a daemon: the REST listener (buildApp) and the gRPC listener
 * (daemon/grpc/server.ts) both serve their calls through it.
 */
export function buildDispatcher(deps: AppDeps): Dispatcher {
  const routes = buildRoutes(deps);
  return new Dispatcher(routes, {
    ...(deps.checkResponses === true ? { checkResponse: responseChecker(routes, deps.version) } : {}),
    authenticate: deps.authenticate,
    policy: deps.policy,
    now: deps.now,
    ...(deps.audit !== undefined ? { audit: deps.audit } : {}),
    ...(deps.folderOfKey !== undefined ? { folderOfKey: deps.folderOfKey } : {}),
    ...(deps.freshen !== undefined ? { freshen: deps.freshen } : {}),
  });
}

/** The call log (and call metrics) of a daemon, for either listener. */
export function appCallLog(deps: AppDeps): CallLog {
  return callLogger(deps.logger, deps.logSampleEvery ?? DEFAULT_LOG_SAMPLE_EVERY, deps.metrics);
}

/** Data-plane calls that succeed are logged one in this many; errors and refusals always. */
export const DEFAULT_LOG_SAMPLE_EVERY = 100;

/**
 * One log line per call: method, path, status, subject and duration — never bodies, headers or
 * tokens. Errors (5xx, with the cause) and refusals (4xx) are always logged; successful hot
 * data-plane calls one in `sampleEvery` (the line says so), other successful calls always.
 */
export function callLogger(logger: AppLogger, sampleEvery: number, metrics: Metrics = NO_METRICS): CallLog {
  let hotSuccesses = 0;
  return (input, output, started) => {
    const elapsed = Number(process.hrtime.bigint() - started);
    metrics.callFinished(output.routed ? output.operation : 'unrouted', output.result, elapsed / 1e9);
    const sampled = output.status < 400 && output.hot;
    if (sampled && hotSuccesses++ % sampleEvery !== 0) return;
    const fields: Record<string, unknown> = {
      requestId: input.requestId,
      method: input.method,
      path: boundedPath(input.path),
      status: output.status,
      subject: output.subject,
      ms: elapsed / 1e6,
    };
    if (sampled && sampleEvery > 1) fields.sampledOneIn = sampleEvery;
    if (output.internalError !== undefined) {
      logger.error({ ...fields, err: output.internalError }, 'internal error');
      return;
    }
    logger.info(fields, 'request');
  };
}

function setCommonHeaders(res: ServerResponse, requestId: string): void {
  res.setHeader('x-request-id', requestId);
  // Responses carry key material, plaintext or tokens often enough that none may be cached.
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
}

function expressInput(req: Request, res: Response): CallInput {
  return {
    method: req.method,
    path: req.path,
    query: req.query as Record<string, string | string[] | undefined>,
    authorization: req.headers.authorization,
    body: req.body as unknown,
    hasBody: hasRequestBody(req.headers),
    requestId: String(res.locals.requestId),
    remoteAddress: req.socket.remoteAddress,
  };
}

function sendOutput(res: Response, output: CallOutput): void {
  for (const [name, value] of Object.entries(output.headers)) res.setHeader(name, value);
  if (typeof output.body === 'string' && output.headers['content-type'] !== undefined) res.status(output.status).send(output.body);
  else res.status(output.status).json(output.body);
}

/** body-parser's errors (by their `type`) as our transport failures; anything else unchanged. */
function fromBodyParser(err: unknown): unknown {
  switch ((err as { type?: unknown } | null)?.type) {
    case 'entity.parse.failed':
      return transportError('malformed-json', BODY_LIMIT_BYTES);
    case 'entity.too.large':
      return transportError('body-too-large', BODY_LIMIT_BYTES);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return transportError('unsupported-media-type', BODY_LIMIT_BYTES);
    default:
      return err;
  }
}
