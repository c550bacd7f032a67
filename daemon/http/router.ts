/**
 * The route table and its dispatcher. Every REST method is one `RouteDef`: its path template
 * (OpenAPI style, including Yandex's `{keyId}:rotate` custom-method suffixes, which Express 5's
 * own path syntax cannot express), the permission it needs, its body schema, and a handler that
 * calls the domain. The same table feeds /openapi.json. Nothing here depends on a web framework:
 * both servers (Express, and the lean data-plane path) hand calls to the one `Dispatcher`.
 */
import { PERMISSIONS, type AccessPolicy, type AccessTarget, type Permission } from '../domain/access.js';
import { ERROR_CODES, KmsError, invalidArgument } from '../domain/errors.js';
import { MethodNotAllowedError, errorCodeOf, toHttpError, transportError } from './errors.js';
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
  audit: { versionId?: string; subject?: string };
}

export interface RouteResult {
  status?: number;
  /** JSON, or text when `contentType` is given. */
  body: unknown;
  contentType?: string;
}

export interface RouteDef {
  method: HttpMethod;
  /** e.g. `/kms/v1/keys/{keyId}:rotate`; every `{param}` must be a resource id. */
  path: string;
  operationId: string;
  summary: string;
  permission: Permission;
  /**
   * The documented 2xx body of a route that is no Yandex RPC (the RPCs' come from the protos):
   * `wire:<Message>` (schemas/wire.schema.gen.json) or a definition of schemas/api/responses.json.
   */
  response?: string;
  /** Body schema (schemas/api); routes without one refuse a non-empty body. */
  body?: SchemaName;
  /** Query parameters the route accepts; any other is refused. */
  query?: readonly string[];
  /** What the permission is checked against, from the request. */
  target?: (ctx: RequestContext) => AccessTarget;
  /**
   * A hot data-plane call (encrypt, decrypt, reEncrypt, generateDataKey): served by the lean
   * path (./fast-path.ts) instead of Express, through this same table and dispatcher, and logged
   * by sampling when it succeeds.
   */
  hot?: boolean;
  /**
   * A `public` route that is audited all the same: one that takes its credential in the body
   * (IamTokenService.Create), whose handler names the subject in `ctx.audit.subject`.
   */
  auditPublic?: boolean;
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

/** Turns a bearer token into a caller; null when the token is unknown or revoked. */
export type Authenticator = (token: string) => Caller | null;

/**
 * One HTTP call as the dispatcher sees it, whichever server read it (Express for most routes, the
 * lean path of ./fast-path.ts for the hot data-plane routes): the same rules apply to both.
 */
export interface CallInput {
  method: string;
  /** The path without the query string, not decoded. */
  path: string;
  /** Parsed query (a null-prototype object, as node's querystring makes it). */
  query: Readonly<Record<string, string | string[] | undefined>>;
  authorization: string | undefined;
  /** The parsed JSON body; undefined when there is none or it is not JSON. */
  body: unknown;
  /** True when a body was sent (a non-zero Content-Length or a chunked body). */
  hasBody: boolean;
  requestId: string;
  remoteAddress: string | undefined;
}

/** What to answer; the dispatcher has already audited the call. */
export interface CallOutput {
  status: number;
  body: unknown;
  headers: Readonly<Record<string, string>>;
  /** The route's operation id, or `METHOD path` (cut) when no route matched. */
  operation: string;
  /** False when no route matched (metrics count such calls as "unrouted"). */
  routed: boolean;
  /** The caller, once authenticated. */
  subject: string | undefined;
  /** `OK` or the error code name. */
  result: string;
  /** The thrown value behind a 500, for the log (never for the caller). */
  internalError?: unknown;
  /** True for the hot data-plane routes (logged by sampling when they succeed). */
  hot: boolean;
}

/** True when a node:http request carries a body (a non-zero Content-Length or a chunked body). */
export function hasRequestBody(headers: { 'content-length'?: string | undefined; 'transfer-encoding'?: string | undefined }): boolean {
  const length = headers['content-length'];
  if (length !== undefined) return length !== '0';
  return headers['transfer-encoding'] !== undefined;
}

interface Segment {
  /** A literal segment, or the name of a parameter. */
  literal?: string;
  param?: string;
  /** Custom-method suffix of a last segment such as `{keyId}:rotate`. */
  verb?: string;
}

interface CompiledRoute {
  def: RouteDef;
  segments: Segment[];
}

/** A matched route and its raw parameters (opaque outside this file). */
export type RouteMatch = { route: CompiledRoute; raw: string[] };
type Match = RouteMatch;

/**
 * The route table, compiled once: routes grouped by number of path segments and matched segment
 * by segment with plain string comparisons (no regex per route per request).
 */
export class RouteTable {
  private readonly bySegments = new Map<number, CompiledRoute[]>();

  constructor(readonly routes: readonly RouteDef[]) {
    for (const def of routes) {
      if (!(PERMISSIONS as readonly string[]).includes(def.permission)) {
        throw new Error(`route ${def.method} ${def.path} declares no known permission; every route must declare one`);
      }
      const segments = def.path.split('/').map((part): Segment => {
        const param = /^\{([a-zA-Z]+)\}(:[a-zA-Z]+)?$/.exec(part);
        if (param?.[1] !== undefined) return param[2] !== undefined ? { param: param[1], verb: param[2] } : { param: param[1] };
        return { literal: part };
      });
      const list = this.bySegments.get(segments.length) ?? [];
      list.push({ def, segments });
      this.bySegments.set(segments.length, list);
    }
  }

  /** The route for `method path` with its raw (undecoded) parameters, or the methods the path allows. */
  match(method: string, path: string): { match: Match } | { allowed: string[] } {
    const parts = path.split('/');
    const allowed: string[] = [];
    for (const route of this.bySegments.get(parts.length) ?? []) {
      const raw = matchSegments(route.segments, parts);
      if (raw === null) continue;
      if (route.def.method === method) return { match: { route, raw } };
      allowed.push(route.def.method);
    }
    return { allowed };
  }
}

function matchSegments(segments: Segment[], parts: string[]): string[] | null {
  const raw: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as Segment;
    const part = parts[i] as string;
    if (segment.literal !== undefined) {
      if (part !== segment.literal) return null;
      continue;
    }
    let value = part;
    if (segment.verb !== undefined) {
      if (!part.endsWith(segment.verb)) return null;
      value = part.slice(0, part.length - segment.verb.length);
    }
    // An id never contains ':' (that starts a custom method), and is never empty.
    if (value === '' || value.includes(':')) return null;
    raw.push(value);
  }
  return raw;
}

export interface DispatcherDeps {
  authenticate: Authenticator;
  policy: AccessPolicy;
  /** Receives one event per call (but /healthz); the answer waits until the event is durable. */
  audit?: AuditLog;
  /** The folder of a key, for audit events of key-scoped calls. */
  folderOfKey?: (keyId: string) => string | undefined;
  now: () => Date;
  /**
   * PostgreSQL cluster: waits until this node's replica has caught up with the database. A call
   * that would answer NOT_FOUND, UNAUTHENTICATED or PERMISSION_DENIED is tried once more after it.
   */
  freshen?: () => Promise<void>;
  /**
   * Tests only: checks every 2xx JSON answer against its documented schema; a mismatch is a 500
   * (a bug), with the reason in the log.
   */
  checkResponse?: (def: RouteDef, body: unknown) => string | null;
}

/**
 * Serves the route table: routing, authentication, validation, the permission check, the
 * handler, one audit event per call (awaited until durable before answering) and the mapping of
 * errors to statuses. Framework-neutral: Express (daemon/app.ts) and the lean data-plane path
 * (./fast-path.ts) both hand it a `CallInput`; neither has its own rules.
 */
export class Dispatcher {
  readonly table: RouteTable;

  constructor(
    routes: readonly RouteDef[],
    private readonly deps: DispatcherDeps,
  ) {
    this.table = new RouteTable(routes);
  }

  /** The match when `method path` is a hot data-plane route (the lean path serves only those). */
  hotRoute(method: string, path: string): RouteMatch | undefined {
    const found = this.table.match(method, path);
    return 'match' in found && found.match.route.def.hot === true ? found.match : undefined;
  }

  /** Serves one call; never throws. `matched` skips routing when the caller already matched it. */
  async handle(input: CallInput, matched?: RouteMatch): Promise<CallOutput> {
    const { authenticate, policy } = this.deps;
    const event: AuditEvent = {
      time: '',
      requestId: input.requestId,
      subject: 'anonymous',
      operation: unroutedOperation(input.method, input.path),
      result: 'OK',
    };
    if (input.remoteAddress !== undefined) event.remoteAddress = input.remoteAddress;
    let audited = true;
    let hot = false;
    let routed = false;
    let annotations: RequestContext['audit'] = {};
    let outcome: { ok: true; result: RouteResult } | { ok: false; error: unknown };
    let subject: string | undefined;
    try {
      const found = matched !== undefined ? { match: matched } : this.table.match(input.method, input.path);
      if (!('match' in found)) {
        if (found.allowed.length > 0) throw new MethodNotAllowedError(input.method, found.allowed);
        throw new KmsError('NOT_FOUND', `no API method at ${unroutedOperation(input.method, input.path)}`);
      }
      const { route, raw } = found.match;
      const def = route.def;
      hot = def.hot === true;
      routed = true;
      event.operation = def.operationId;
      audited = def.permission !== 'public' || def.auditPublic === true;
      const params = Object.create(null) as Record<string, string>;
      let i = 0;
      for (const segment of route.segments) {
        if (segment.param === undefined) continue;
        const value = decodePathSegment(segment.param, raw[i++] ?? '');
        if (!ID_PATTERN.test(value)) {
          throw invalidArgument(segment.param, `"${value.slice(0, 64)}" is not a valid id (lowercase letters, digits, "-" and "_", at most 50 characters)`);
        }
        params[segment.param] = value;
      }
      // Known before authentication, so that refused calls are still attributed to their key.
      if (params.keyId !== undefined) event.keyId = params.keyId;
      const attempt = async (): Promise<RouteResult> => {
        const caller = def.permission === 'public' ? { subject: 'anonymous' } : authenticateCall(input.authorization, authenticate);
        const ctx: RequestContext = {
          requestId: input.requestId,
          caller,
          params,
          query: readQuery(input, def),
          body: readBody(input, def),
          audit: {},
        };
        annotations = ctx.audit;
        subject = caller.subject;
        event.subject = caller.subject;
        const target = def.target?.(ctx) ?? {};
        describeTarget(event, target, ctx, this.deps);
        policy.authorize(caller, def.permission, target);
        return def.handler(ctx);
      };
      let result: RouteResult;
      try {
        result = await attempt();
      } catch (err) {
        // A cluster node's replica may not have seen a record another node just wrote (a key, a
        // token, a binding): before answering "not found"/"denied", catch up once and try again.
        // Safe: a call that failed so committed nothing.
        const code = err instanceof KmsError ? err.code : undefined;
        if (this.deps.freshen === undefined || (code !== 'NOT_FOUND' && code !== 'UNAUTHENTICATED' && code !== 'PERMISSION_DENIED')) throw err;
        await this.deps.freshen();
        result = await attempt();
      }
      if (this.deps.checkResponse !== undefined && (result.status ?? 200) < 300 && result.contentType === undefined) {
        const problem = this.deps.checkResponse(def, result.body);
        if (problem !== null) throw new Error(problem);
      }
      const versionId = (result.body as { versionId?: unknown } | null)?.versionId;
      if (event.versionId === undefined && typeof versionId === 'string') event.versionId = versionId;
      outcome = { ok: true, result };
    } catch (err) {
      event.result = errorCodeOf(err);
      outcome = { ok: false, error: err };
    }
    if (annotations.versionId !== undefined) event.versionId = annotations.versionId;
    if (annotations.subject !== undefined) {
      event.subject = annotations.subject;
      subject = annotations.subject;
    }
    if (this.deps.audit !== undefined && audited) {
      event.time = this.deps.now().toISOString();
      try {
        this.deps.audit.append(event);
        await this.deps.audit.flush();
      } catch (err) {
        // An unrecorded call must not be acknowledged.
        return this.errorOutput(input, err, event.operation, subject, hot, routed);
      }
    }
    if (outcome.ok) {
      const { result } = outcome;
      const headers: Record<string, string> = result.contentType !== undefined ? { 'content-type': result.contentType } : {};
      return { status: result.status ?? 200, body: result.body, headers, operation: event.operation, routed, subject, result: 'OK', hot };
    }
    return this.errorOutput(input, outcome.error, event.operation, subject, hot, routed);
  }

  /**
   * A call refused before routing (a body that is not JSON, too large, of another media type):
   * still one audit event (not awaited: the call is refused either way), and the mapped error.
   */
  refuse(input: CallInput, err: unknown, onAuditError: (err: unknown) => void): CallOutput {
    const operation = unroutedOperation(input.method, input.path);
    if (this.deps.audit !== undefined) {
      try {
        this.deps.audit.append({
          time: this.deps.now().toISOString(),
          requestId: input.requestId,
          subject: 'anonymous',
          operation,
          result: errorCodeOf(err),
          ...(input.remoteAddress !== undefined ? { remoteAddress: input.remoteAddress } : {}),
        });
      } catch (auditError) {
        onAuditError(auditError);
      }
    }
    return this.errorOutput(input, err, operation, undefined, false, false);
  }

  private errorOutput(input: CallInput, err: unknown, operation: string, subject: string | undefined, hot: boolean, routed: boolean): CallOutput {
    const mapped = toHttpError(err, input.requestId);
    const headers: Record<string, string> = { ...mapped.headers };
    if (mapped.body.code === ERROR_CODES.UNAUTHENTICATED) {
      // RFC 6750 §3: say which scheme to use, and whether the token given was the problem.
      headers['www-authenticate'] = input.authorization === undefined ? 'Bearer realm="kms"' : 'Bearer realm="kms", error="invalid_token"';
    }
    const output: CallOutput = { status: mapped.status, body: mapped.body, headers, operation, routed, subject, result: errorCodeOf(err), hot };
    if (mapped.internal) output.internalError = err;
    return output;
  }
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

function authenticateCall(header: string | undefined, authenticate: Authenticator): Caller {
  if (header === undefined) throw new KmsError('UNAUTHENTICATED', 'missing Authorization header (expected "Bearer <token>")');
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (match?.[1] === undefined) throw new KmsError('UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
  const caller = authenticate(match[1]);
  if (caller === null) throw new KmsError('UNAUTHENTICATED', 'the token is not valid');
  return caller;
}

/** A percent-decoded path segment; a malformed escape (`%zz`) is the caller's error, named. */
function decodePathSegment(name: string, raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalidArgument(name, `"${raw.slice(0, 64)}" is not validly percent-encoded`);
  }
}

/**
 * The query under the names routes declare (JSON names, `folderId`); the proto names of the same
 * fields (`folder_id`) are accepted too, as Yandex's REST gateway does, but not both at once.
 */
function readQuery(input: CallInput, def: RouteDef): Record<string, string> {
  const query = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(input.query)) {
    const value = input.query[name];
    const canonical = name.includes('_') ? name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : name;
    if (!(def.query ?? []).includes(canonical)) throw invalidArgument(name.slice(0, 64), 'unknown query parameter');
    if (typeof value !== 'string') throw invalidArgument(name, 'must be given once, as a plain value');
    if (query[canonical] !== undefined) throw invalidArgument(name, `given twice (as ${canonical} and as its proto name)`);
    query[canonical] = value;
  }
  return query;
}

function readBody(input: CallInput, def: RouteDef): unknown {
  if (def.body === undefined) {
    // Any body at all, JSON or not: a client that sends one expects it to mean something.
    if (input.hasBody) throw invalidArgument('body', `${def.method} ${def.path} takes no request body`);
    return undefined;
  }
  // The JSON parser leaves other media types unread: refuse them instead of validating nothing.
  if (input.hasBody && input.body === undefined) throw transportError('unsupported-media-type', 0);
  return validateBody(def.body, input.body ?? {});
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
