/**
 * The route table and its dispatcher. Every REST method is one `RouteDef`: its path template
 * (OpenAPI style, including Yandex's `{keyId}:rotate` custom-method suffixes, which Express 5's
 * own path syntax cannot express), the permission it needs, its body schema, and a handler that
 * calls the domain. The same table feeds /openapi.json.
 */
import type { NextFunction, Request, Response } from 'express';
import { PERMISSIONS, type AccessPolicy, type AccessTarget, type Permission } from '../domain/access.js';
import { KmsError, invalidArgument } from '../domain/errors.js';
import { MethodNotAllowedError, errorCodeOf, transportError } from './errors.js';
import { ID_PATTERN } from '../domain/ids.js';
import type { AuditEvent, AuditLog, Caller } from '../domain/ports.js';
import { validateBody, type SchemaName } from './validation.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RequestContext<B = unknown> {
  requestId: string;
  caller: Caller;
  params: Record<string, string>;
  query: Record<string, string>;
  body: B;
  /** Facts a handler learns that belong in the audit event even if the call then fails. */
  audit: { versionId?: string };
}

export interface RouteResult {
  status?: number;
  body: unknown;
}

export interface RouteDef {
  method: HttpMethod;
  /** e.g. `/kms/v1/keys/{keyId}:rotate`; every `{param}` must be a resource id. */
  path: string;
  operationId: string;
  summary: string;
  permission: Permission;
  /** Body schema (schemas/api); routes without one refuse a non-empty body. */
  body?: SchemaName;
  /** Query parameters the route accepts; any other is refused. */
  query?: readonly string[];
  /** What the permission is checked against, from the request. */
  target?: (ctx: RequestContext) => AccessTarget;
  handler(ctx: RequestContext): Promise<RouteResult> | RouteResult;
}

/** Longest `METHOD path` recorded for a call that matched no route (anonymous traffic must stay small). */
export const MAX_UNROUTED_OPERATION_LENGTH = 256;

/** `METHOD path` of an unrouted call, cut to MAX_UNROUTED_OPERATION_LENGTH characters. */
export function unroutedOperation(method: string, path: string): string {
  return bounded(`${method} ${path}`);
}

/** A request path as logs record it: cut to MAX_UNROUTED_OPERATION_LENGTH characters. */
export function boundedPath(path: string): string {
  return bounded(path);
}

function bounded(text: string): string {
  return text.length <= MAX_UNROUTED_OPERATION_LENGTH ? text : `${text.slice(0, MAX_UNROUTED_OPERATION_LENGTH - 1)}…`;
}

/** True when the request carries a body (a non-zero Content-Length or a chunked body). */
export function hasRequestBody(req: Request): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Turns a bearer token into a caller; null when the token is unknown or revoked. */
export type Authenticator = (token: string) => Caller | null;

interface CompiledRoute {
  def: RouteDef;
  regex: RegExp;
  paramNames: string[];
}

function compile(def: RouteDef): CompiledRoute {
  if (!(PERMISSIONS as readonly string[]).includes(def.permission)) {
    throw new Error(`route ${def.method} ${def.path} declares no known permission; every route must declare one`);
  }
  const paramNames: string[] = [];
  const source = def.path
    .split(/(\{[a-zA-Z]+\})/)
    .map((part) => {
      const param = /^\{([a-zA-Z]+)\}$/.exec(part);
      if (param?.[1] !== undefined) {
        paramNames.push(param[1]);
        return '([^/:]+)';
      }
      return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { def, regex: new RegExp(`^${source}$`), paramNames };
}

export interface DispatcherDeps {
  authenticate: Authenticator;
  policy: AccessPolicy;
  /** Receives one event per call (but /healthz); the answer waits until the event is durable. */
  audit?: AuditLog;
  /** The folder of a key, for audit events of key-scoped calls. */
  folderOfKey?: (keyId: string) => string | undefined;
  now: () => Date;
}

/** Express middleware serving the route table; throws at build time on an undeclared permission. */
export function dispatcher(routes: RouteDef[], deps: DispatcherDeps) {
  const { authenticate, policy, audit } = deps;
  const compiled = routes.map(compile);
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const event: AuditEvent = {
      time: '',
      requestId: String(res.locals.requestId),
      subject: 'anonymous',
      operation: unroutedOperation(req.method, req.path),
      result: 'OK',
    };
    if (req.socket.remoteAddress !== undefined) event.remoteAddress = req.socket.remoteAddress;
    let audited = true;
    let annotations: RequestContext['audit'] = {};
    let outcome: { ok: true; result: RouteResult } | { ok: false; error: unknown };
    try {
      const path = req.path;
      const candidates = compiled
        .map((route) => ({ route, match: route.regex.exec(path) }))
        .filter((c): c is { route: CompiledRoute; match: RegExpExecArray } => c.match !== null);
      const found = candidates.find((c) => c.route.def.method === req.method);
      if (found === undefined) {
        const allowed = candidates.map((c) => c.route.def.method);
        if (allowed.length > 0) throw new MethodNotAllowedError(req.method, allowed);
        throw new KmsError('NOT_FOUND', `no API method at ${unroutedOperation(req.method, path)}`);
      }
      const { def, paramNames } = found.route;
      event.operation = def.operationId;
      audited = def.permission !== 'public';
      const params = Object.create(null) as Record<string, string>;
      paramNames.forEach((name, i) => {
        const value = decodePathSegment(name, found.match[i + 1] ?? '');
        if (!ID_PATTERN.test(value)) throw invalidArgument(name, `"${value.slice(0, 64)}" is not a valid id (lowercase letters, digits, "-" and "_", at most 50 characters)`);
        params[name] = value;
      });
      // Known before authentication, so that refused calls are still attributed to their key.
      if (params.keyId !== undefined) event.keyId = params.keyId;
      const caller = def.permission === 'public' ? { subject: 'anonymous' } : authenticateRequest(req, authenticate);
      const ctx: RequestContext = {
        requestId: String(res.locals.requestId),
        caller,
        params,
        query: readQuery(req, def),
        body: readBody(req, def),
        audit: {},
      };
      annotations = ctx.audit;
      res.locals.caller = caller.subject;
      event.subject = caller.subject;
      const target = def.target?.(ctx) ?? {};
      describeTarget(event, target, ctx, deps);
      policy.authorize(caller, def.permission, target);
      const result = await def.handler(ctx);
      const versionId = (result.body as { versionId?: unknown } | null)?.versionId;
      if (event.versionId === undefined && typeof versionId === 'string') event.versionId = versionId;
      outcome = { ok: true, result };
    } catch (err) {
      event.result = errorCodeOf(err);
      outcome = { ok: false, error: err };
    }
    if (annotations.versionId !== undefined) event.versionId = annotations.versionId;
    if (audit !== undefined && audited) {
      event.time = deps.now().toISOString();
      res.locals.audited = true;
      try {
        audit.append(event);
        await audit.flush();
      } catch (err) {
        // An unrecorded call must not be acknowledged.
        next(err);
        return;
      }
    }
    if (outcome.ok) res.status(outcome.result.status ?? 200).json(outcome.result.body);
    else next(outcome.error);
  };
}

function describeTarget(event: AuditEvent, target: AccessTarget, ctx: RequestContext, deps: DispatcherDeps): void {
  if (target.keyId !== undefined && target.keyId !== '') {
    event.keyId = target.keyId;
    const folderId = deps.folderOfKey?.(target.keyId);
    if (folderId !== undefined) event.folderId = folderId;
  }
  if (target.folderId !== undefined && target.folderId !== '') event.folderId = target.folderId;
  const versionId = (ctx.body as { versionId?: unknown } | undefined)?.versionId;
  if (typeof versionId === 'string') event.versionId = versionId;
}

function authenticateRequest(req: Request, authenticate: Authenticator): Caller {
  const header = req.get('authorization');
  if (header === undefined) throw new KmsError('UNAUTHENTICATED', 'missing Authorization header (expected "Bearer <token>")');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (match?.[1] === undefined) throw new KmsError('UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
  const caller = authenticate(match[1]);
  if (caller === null) throw new KmsError('UNAUTHENTICATED', 'the token is not valid');
  return caller;
}

/** A percent-decoded path segment; a malformed escape (`%zz`) is the caller's error, named. */
function decodePathSegment(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalidArgument(name, `"${raw.slice(0, 64)}" is not validly percent-encoded`);
  }
}

function readQuery(req: Request, def: RouteDef): Record<string, string> {
  const query = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    if (!(def.query ?? []).includes(name)) throw invalidArgument(name, 'unknown query parameter');
    if (typeof value !== 'string') throw invalidArgument(name, 'must be given once, as a plain value');
    query[name] = value;
  }
  return query;
}

function readBody(req: Request, def: RouteDef): unknown {
  const body: unknown = req.body;
  if (def.body === undefined) {
    // Any body at all, JSON or not: a client that sends one expects it to mean something.
    if (hasRequestBody(req)) throw invalidArgument('body', `${def.method} ${def.path} takes no request body`);
    return undefined;
  }
  // The JSON parser leaves other media types unread: refuse them instead of validating nothing.
  if (hasRequestBody(req) && body === undefined) throw transportError('unsupported-media-type', 0);
  return validateBody(def.body, body ?? {});
}

/** A path parameter; the dispatcher has already checked it is a valid id. */
export function pathParam(ctx: RequestContext, name: string): string {
  return ctx.params[name] ?? '';
}

/** The access target of a route on `/kms/v1/keys/{keyId}…`. */
export function keyTarget(ctx: RequestContext): { keyId: string } {
  return { keyId: pathParam(ctx, 'keyId') };
}

/** Parses an optional integer query parameter, naming it on error. */
export function intQuery(query: Record<string, string>, name: string): number | undefined {
  const text = query[name];
  if (text === undefined || text === '') return undefined;
  if (!/^\d{1,7}$/.test(text)) throw invalidArgument(name, `must be a non-negative integer, got "${text}"`);
  return Number(text);
}
