/**
 * Builds the Express app from its dependencies, without listening: main.ts listens, tests run it
 * in-process on port 0. Express is imported here and in daemon/http only.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { AccessPolicy } from './domain/access.js';
import type { AuditLog } from './domain/ports.js';
import { unroutedOperation } from './audit/chain.js';
import type { AdjustableClock } from './domain/clock.js';
import type { KeyService } from './domain/keys.js';
import { toHttpError, transportError } from './http/errors.js';
import { keyRoutes } from './http/keys.js';
import { openApiDocument } from './http/openapi.js';
import { dispatcher, type Authenticator, type RouteDef } from './http/router.js';
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
    healthRoute(() => ({ version: deps.version, keystore: deps.keystoreKind })),
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
  app.set('query parser', 'simple');
  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = randomUUID();
    const started = process.hrtime.bigint();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      // Method, path and outcome only: bodies may hold plaintext and headers hold tokens.
      deps.logger.info(
        {
          requestId,
          method: req.method,
          path: req.path,
          status: res.statusCode,
          subject: res.locals.caller as string | undefined,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request',
      );
    });
    next();
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
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const requestId = String(res.locals.requestId);
    const type = (err as { type?: unknown }).type;
    if (deps.audit !== undefined && res.locals.audited !== true) {
      // Refused before routing (unparseable or oversized body): still one event per call.
      res.locals.audited = true;
      // Not awaited: the call is refused either way; the event goes out with the next batch.
      safeAppend(deps.audit, {
        time: deps.now().toISOString(),
        requestId,
        subject: 'anonymous',
        operation: unroutedOperation(req.method, req.path),
        result: 'INVALID_ARGUMENT',
        ...(req.socket.remoteAddress !== undefined ? { remoteAddress: req.socket.remoteAddress } : {}),
      }, deps.logger);
    }
    if (type === 'entity.parse.failed') {
      const t = transportError('malformed-json', BODY_LIMIT_BYTES);
      res.status(t.status).json(t.body);
      return;
    }
    if (type === 'entity.too.large') {
      const t = transportError('body-too-large', BODY_LIMIT_BYTES);
      res.status(t.status).json(t.body);
      return;
    }
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      const t = transportError('unsupported-media-type', BODY_LIMIT_BYTES);
      res.status(t.status).json(t.body);
      return;
    }
    const mapped = toHttpError(err, requestId);
    if (mapped.internal) deps.logger.error({ requestId, err }, 'internal error');
    res.status(mapped.status).json(mapped.body);
  });
  return app;
}

function safeAppend(audit: AuditLog, event: Parameters<AuditLog['append']>[0], logger: AppLogger): void {
  try {
    audit.append(event);
  } catch (err) {
    logger.error({ err }, 'audit log refused an event');
  }
}
