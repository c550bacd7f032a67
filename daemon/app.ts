/**
 * Builds the Express app from its dependencies, without listening: main.ts listens, tests run it
 * in-process on port 0. Express is imported here and in daemon/http only.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { AccessPolicy } from './domain/access.js';
import type { AuditLog } from './domain/ports.js';
import type { AdjustableClock } from './domain/clock.js';
import type { ReadinessReport } from './domain/health.js';
import type { KeyService } from './domain/keys.js';
import { ERROR_CODES } from './domain/errors.js';
import { errorCodeOf, toHttpError, transportError } from './http/errors.js';
import { keyRoutes } from './http/keys.js';
import { openApiDocument } from './http/openapi.js';
import { boundedPath, dispatcher, unroutedOperation, type Authenticator, type RouteDef } from './http/router.js';
import { healthRoute, openApiRoute, testClockRoute } from './http/system.js';
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
  /** Present only under --unsafe-test-clock: adds POST /test/v1/clock:advance. */
  testClock?: AdjustableClock;
  /** Extra routes (data plane, access administration) contributed by other modules. */
  extraRoutes?: RouteDef[];
  audit?: AuditLog;
  folderOfKey?: (keyId: string) => string | undefined;
  now: () => Date;
}

export function buildRoutes(deps: AppDeps): RouteDef[] {
  const routes: RouteDef[] = [
    healthRoute(() => ({ version: deps.version, keystore: deps.keystoreKind }), deps.readiness),
    ...keyRoutes(deps.keys),
    ...(deps.extraRoutes ?? []),
  ];
  if (deps.testClock !== undefined) routes.push(testClockRoute(deps.testClock, deps.scheduler));
  let document: object | undefined;
  routes.push(openApiRoute(() => (document ??= openApiDocument(routes, deps.version))));
  return routes;
}

export function buildApp(deps: AppDeps): express.Express {
  const routes = buildRoutes(deps);
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    // Responses carry key material, plaintext or tokens often enough that none may be cached.
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    res.on('finish', () => {
      // Method, path and outcome only: bodies may hold plaintext and headers hold tokens.
      deps.logger.info(
        {
          requestId,
          method: req.method,
          path: boundedPath(req.path),
          status: res.statusCode,
          subject: res.locals.caller as string | undefined,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      );
    });
    next();
  });
  app.use((req: Request, _res: Response, next: NextFunction) => {
    // Refuse a declared oversized body before reading any of it (the parser would drain it first).
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT_BYTES) next(transportError('body-too-large', BODY_LIMIT_BYTES));
    else next();
  });
  app.use(express.json({ limit: BODY_LIMIT_BYTES, type: ['application/json', 'application/*+json'] }));
  app.use(
    dispatcher(routes, {
      authenticate: deps.authenticate,
      policy: deps.policy,
      now: deps.now,
      ...(deps.audit !== undefined ? { audit: deps.audit } : {}),
      ...(deps.folderOfKey !== undefined ? { folderOfKey: deps.folderOfKey } : {}),
    }),
  );
  app.use((raw: unknown, req: Request, res: Response, _next: NextFunction) => {
    const requestId = String(res.locals.requestId);
    const err = fromBodyParser(raw);
    if (deps.audit !== undefined && res.locals.audited !== true) {
      // Refused before routing (unparseable or oversized body): still one event per call.
      res.locals.audited = true;
      // Not awaited: the call is refused either way; the event goes out with the next batch.
      safeAppend(deps.audit, {
        time: deps.now().toISOString(),
        requestId,
        subject: 'anonymous',
        operation: unroutedOperation(req.method, req.path),
        result: errorCodeOf(err),
        ...(req.socket.remoteAddress !== undefined ? { remoteAddress: req.socket.remoteAddress } : {}),
      }, deps.logger);
    }
    const mapped = toHttpError(err, requestId);
    if (mapped.internal) deps.logger.error({ requestId, err }, 'internal error');
    for (const [name, value] of Object.entries(mapped.headers)) res.setHeader(name, value);
    if (mapped.body.code === ERROR_CODES.UNAUTHENTICATED) {
      // RFC 6750 §3: say which scheme to use, and whether the token given was the problem.
      res.setHeader('www-authenticate', req.headers.authorization === undefined ? 'Bearer realm="kms"' : 'Bearer realm="kms", error="invalid_token"');
    }
    res.status(mapped.status).json(mapped.body);
  });
  return app;
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

function safeAppend(audit: AuditLog, event: Parameters<AuditLog['append']>[0], logger: AppLogger): void {
  try {
    audit.append(event);
  } catch (err) {
    logger.error({ err }, 'audit log refused an event');
  }
}
