/**
 * The Yandex Cloud gRPC API of kmsd (TLS, @grpc/grpc-js), so the official SDKs work unmodified.
 *
 * There is no second implementation here: each served method is the REST route its
 * `google.api.http` annotation names. A call is decoded with the vendored descriptors, turned into
 * the proto3 JSON a REST client would send (path fields into the path, the rest into the body or
 * the query), and handed to the one `Dispatcher` — so it meets the same authentication, request
 * validation, permission check, domain code, audit event (exactly one, with the same fields) and
 * error mapping as its REST twin. The answer's JSON is encoded back into the method's response
 * message; Operation `metadata`/`response` are checked against the method's
 * `(yandex.cloud.api.operation)` annotation and packed as those `Any` types. Errors become gRPC
 * statuses with the REST message and a `google.rpc.Status` (with `google.rpc.BadRequest`
 * details) in `grpc-status-details-bin`.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type protobuf from 'protobufjs';
import type { AppLogger } from '../app.js';
import { ERROR_CODES, KmsError, invalidArgument } from '../domain/errors.js';
import type { CallLog } from '../http/fast-path.js';
import type { CallInput, CallOutput, Dispatcher } from '../http/router.js';
import { httpRuleOf, messageType, operationAnnotationOf, protoRoot, type HttpRule, type OperationAnnotation } from './descriptors.js';
import { ProtoJsonError, encodeProtoJson, toProtoJson } from './proto-json.js';

/** The RPCs served, by service; every one is a REST route of the dispatcher. */
export const SERVED_METHODS: ReadonlyMap<string, readonly string[]> = new Map([
  [
    'yandex.cloud.kms.v1.SymmetricKeyService',
    [
      'Create',
      'Get',
      'List',
      'ListVersions',
      'Update',
      'Delete',
      'SetPrimaryVersion',
      'ScheduleVersionDestruction',
      'CancelVersionDestruction',
      'Rotate',
      'ListOperations',
      'ListAccessBindings',
      'SetAccessBindings',
      'UpdateAccessBindings',
    ],
  ],
  ['yandex.cloud.kms.v1.SymmetricCryptoService', ['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey']],
  ['yandex.cloud.operation.OperationService', ['Get', 'Cancel']],
  ['yandex.cloud.resourcemanager.v1.FolderService', ['ListAccessBindings', 'SetAccessBindings', 'UpdateAccessBindings']],
  ['yandex.cloud.iam.v1.IamTokenService', ['Create']],
  ['yandex.cloud.endpoint.ApiEndpointService', ['List', 'Get']],
]);

/** Requests are as large as REST bodies may be (32 KiB plaintext + AAD), with room to spare. */
export const MAX_GRPC_MESSAGE_BYTES = 256 * 1024;

export interface GrpcServerOptions {
  dispatcher: Dispatcher;
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  /** One log line and the call metrics, as for REST calls. */
  log: CallLog;
  logger: AppLogger;
}

export interface RunningGrpcServer {
  /** HOST:PORT actually bound. */
  address: string;
  port: number;
  stop(): Promise<void>;
}

interface ServedMethod {
  fullPath: string;
  rule: HttpRule;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  operation?: OperationAnnotation;
}

/** Every served method with its HTTP rule, checked against the dispatcher's routes. */
export function servedMethods(dispatcher?: Dispatcher): ServedMethod[] {
  const root = protoRoot();
  const methods: ServedMethod[] = [];
  for (const [serviceName, names] of SERVED_METHODS) {
    const service = root.lookupService(serviceName);
    for (const name of names) {
      const method = service.methods[name];
      if (method === undefined) throw new Error(`${serviceName} has no method ${name}`);
      const rule = httpRuleOf(method);
      if (rule === undefined) throw new Error(`${serviceName}.${name} has no google.api.http rule`);
      method.resolve();
      const served: ServedMethod = {
        fullPath: `/${serviceName}/${name}`,
        rule,
        requestType: method.resolvedRequestType as protobuf.Type,
        responseType: method.resolvedResponseType as protobuf.Type,
      };
      const operation = operationAnnotationOf(method);
      if (operation !== undefined) served.operation = operation;
      if (dispatcher !== undefined) {
        const sample = rule.path.replace(/\{[a-z_]+\}/g, 'x');
        const found = dispatcher.table.match(rule.method, sample);
        if (!('match' in found)) throw new Error(`${served.fullPath} maps to ${rule.method} ${rule.path}, which no REST route serves`);
      }
      methods.push(served);
    }
  }
  return methods;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    'grpc.max_concurrent_streams': 256,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const byService = new Map<string, Record<string, grpc.MethodDefinition<Buffer, Buffer>>>();
  const implementations = new Map<string, grpc.UntypedServiceImplementation>();
  for (const method of servedMethods(options.dispatcher)) {
    const [, serviceName = '', name = ''] = method.fullPath.split('/');
    const definition = byService.get(serviceName) ?? {};
    definition[name] = {
      path: method.fullPath,
      requestStream: false,
      responseStream: false,
      originalName: name,
      // Raw bytes both ways: decoding happens in the handler, so a malformed request is an
      // audited INVALID_ARGUMENT rather than grpc-js's own INTERNAL.
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: Buffer) => value,
      responseDeserialize: (bytes: Buffer) => bytes,
    } satisfies grpc.MethodDefinition<Buffer, Buffer>;
    byService.set(serviceName, definition);
    const implementation = implementations.get(serviceName) ?? {};
    implementation[name] = unaryHandler(method, options);
    implementations.set(serviceName, implementation);
  }
  for (const [serviceName, definition] of byService) server.addService(definition, implementations.get(serviceName) ?? {});
  const credentials = grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(options.keyPem), cert_chain: Buffer.from(options.certPem) }], false);
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolveBind, reject) => {
    server.bindAsync(`${host}:${options.port}`, credentials, (err, bound) =>
      err !== null ? reject(new Error(`gRPC listener cannot listen on ${host}:${options.port} (--grpc-listen): ${err.message}`)) : resolveBind(bound),
    );
  });
  return {
    address: `${host}:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolveStop) => {
        const force = setTimeout(() => server.forceShutdown(), 10_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolveStop();
        });
      }),
  };
}

function unaryHandler(method: ServedMethod, options: GrpcServerOptions): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const authorization = metadataString(call.metadata, 'authorization');
    const remoteAddress = peerAddress(call.getPeer());
    let input: CallInput = {
      method: method.rule.method,
      path: method.rule.path,
      query: Object.create(null) as Record<string, string>,
      authorization,
      body: undefined,
      hasBody: false,
      requestId,
      remoteAddress,
    };
    let prepared: Promise<CallOutput>;
    try {
      const request = toProtoJson(method.requestType, method.requestType.decode(call.request));
      input = { ...toCallInput(method.rule, request), authorization, requestId, remoteAddress };
      prepared = options.dispatcher.handle(input);
    } catch (err) {
      const refusal = err instanceof ProtoJsonError ? invalidArgument(err.field, err.description) : requestDecodeError(err);
      prepared = Promise.resolve(options.dispatcher.refuse(input, refusal, (auditError) => options.logger.error({ err: auditError }, 'audit log refused an event')));
    }
    void prepared.then((output) => {
      const trailer = new grpc.Metadata();
      trailer.set('x-request-id', requestId);
      if (output.status < 400) {
        try {
          callback(null, Buffer.from(encodeResponse(method, output.body)), trailer);
        } catch (err) {
          // Our own answer does not fit the proto: a bug, never the caller's fault.
          const failed: CallOutput = { ...output, status: 500, result: 'INTERNAL', internalError: err };
          callback(statusError({ code: ERROR_CODES.INTERNAL, message: `internal error; quote request id ${requestId} to the operator`, details: [] }, trailer));
          options.log(input, failed, started);
          return;
        }
      } else {
        callback(statusError(output.body as ErrorBody, trailer));
      }
      options.log(input, output, started);
    });
  };
}

interface ErrorBody {
  code: number;
  message: string;
  details?: unknown[];
}

function requestDecodeError(err: unknown): KmsError {
  const message = err instanceof Error ? err.message : String(err);
  return new KmsError('INVALID_ARGUMENT', `request is not a valid protobuf message: ${message.slice(0, 200)}`);
}

/** The REST call a request is: path fields into the template, the rest into the body or query. */
export function toCallInput(rule: HttpRule, request: Record<string, unknown>): Omit<CallInput, 'authorization' | 'requestId' | 'remoteAddress'> {
  const rest: Record<string, unknown> = { ...request };
  const path = rule.path.replace(/\{([a-z_]+)\}/g, (_m, snake: string) => {
    const name = snake.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase());
    const value = rest[name];
    delete rest[name];
    if (typeof value !== 'string' || value === '') throw new ProtoJsonError(name, 'is required');
    return encodeURIComponent(value);
  });
  const query = Object.create(null) as Record<string, string>;
  if (rule.body === '*') return { method: rule.method, path, query, body: rest, hasBody: true };
  for (const [name, value] of Object.entries(rest)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') query[name] = String(value);
  }
  return { method: rule.method, path, query, body: undefined, hasBody: false };
}

function encodeResponse(method: ServedMethod, body: unknown): Uint8Array {
  if (method.operation !== undefined) checkOperationTypes(method, body as { metadata?: { '@type'?: string }; response?: { '@type'?: string } });
  return encodeProtoJson(method.responseType, body);
}

/** The Operation carries exactly the `Any` types the method's annotation names. */
function checkOperationTypes(method: ServedMethod, operation: { metadata?: { '@type'?: string }; response?: { '@type'?: string } }): void {
  const annotation = method.operation as OperationAnnotation;
  const check = (part: 'metadata' | 'response', expected: string | undefined) => {
    const actual = operation[part]?.['@type'];
    if (actual === undefined || expected === undefined) return;
    if (actual !== `type.googleapis.com/${expected}`) {
      throw new Error(`${method.fullPath}: Operation.${part} is ${actual}, the annotation names ${expected}`);
    }
  };
  check('metadata', annotation.metadata);
  check('response', annotation.response);
}

/** A gRPC status from a REST error body, its details as a google.rpc.Status. */
function statusError(body: ErrorBody, trailer: grpc.Metadata): Partial<grpc.StatusObject> {
  const status = messageType('google.rpc.Status');
  let encoded: Uint8Array | undefined;
  try {
    encoded = encodeProtoJson(status, { code: body.code, message: body.message, details: body.details ?? [] });
  } catch {
    encoded = encodeProtoJson(status, { code: body.code, message: body.message });
  }
  trailer.set('grpc-status-details-bin', Buffer.from(encoded));
  return { code: body.code, details: body.message, metadata: trailer };
}

function metadataString(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : undefined;
}

/** `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000` or `127.0.0.1:5000` → the address. */
function peerAddress(peer: string): string | undefined {
  const bare = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(bare);
  if (v6?.[1] !== undefined) return v6[1];
  const v4 = /^([^:]+):\d+$/.exec(bare);
  return v4?.[1] ?? (bare === '' ? undefined : bare);
}
