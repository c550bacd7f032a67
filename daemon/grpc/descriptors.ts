/**
 * The Yandex Cloud API descriptors (schemas/proto, the vendored protos), loaded once per process
 * with protobufjs. Everything about the gRPC surface comes from here: the services and methods
 * served, their `google.api.http` rules (which REST route a method is), the
 * `yandex.cloud.api.operation` annotations (which `Any` types an Operation carries) and the
 * message types used to decode requests and encode responses.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** schemas/proto of this checkout (from dist/daemon/grpc or daemon/grpc alike). */
export const PROTO_ROOT = resolveProtoRoot();

function resolveProtoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${join('dist', 'daemon')}`) ? '../../..' : '../..';
  return resolve(here, up, 'schemas', 'proto');
}

/** The files kmsd serves (their imports are loaded with them). */
export const SERVED_FILES = [
  'yandex/cloud/kms/v1/symmetric_key_service.proto',
  'yandex/cloud/kms/v1/symmetric_crypto_service.proto',
  'yandex/cloud/operation/operation_service.proto',
  'yandex/cloud/resourcemanager/v1/folder_service.proto',
  'yandex/cloud/iam/v1/iam_token_service.proto',
  'yandex/cloud/endpoint/api_endpoint_service.proto',
  'google/rpc/error_details.proto',
  // Named by Operation annotations (access bindings answer Empty), imported by no served file.
  'google/protobuf/empty.proto',
] as const;

let loaded: protobuf.Root | undefined;

/** The resolved root, loaded on first use. */
export function protoRoot(): protobuf.Root {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  // protobufjs ships google/protobuf/descriptor.proto (the validation and http options extend it);
  // the other well-known types are built into it.
  const descriptorProto = join(dirname(require.resolve('protobufjs/package.json')), 'google', 'protobuf', 'descriptor.proto');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target === 'google/protobuf/descriptor.proto') return descriptorProto;
    if (target.startsWith('google/protobuf/')) return target; // built in (common)
    return target.startsWith('/') ? target : join(PROTO_ROOT, target);
  };
  root.loadSync([...SERVED_FILES], { keepCase: false, alternateCommentMode: true });
  root.resolveAll();
  loaded = root;
  return root;
}

/** A message type by its full name (without a leading dot). */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** The HTTP rule of a method: verb, path template and body selector. */
export interface HttpRule {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** e.g. `/kms/v1/keys/{key_id}:rotate` */
  path: string;
  /** `*` (every field not in the path), or absent (fields not in the path go to the query). */
  body?: string;
}

export interface OperationAnnotation {
  metadata?: string;
  response: string;
}

type ParsedOptions = Record<string, unknown>[] | undefined;

/** An option by the names a proto file may spell it with (`(api.operation)` inside yandex.cloud). */
function parsedOption(method: protobuf.Method, ...names: string[]): Record<string, unknown> | undefined {
  for (const option of (method.parsedOptions as ParsedOptions) ?? []) {
    for (const name of names) {
      const value = option[name];
      if (value !== undefined) return value as Record<string, unknown>;
    }
  }
  return undefined;
}

export function httpRuleOf(method: protobuf.Method): HttpRule | undefined {
  const rule = parsedOption(method, '(google.api.http)');
  if (rule === undefined) return undefined;
  for (const verb of ['get', 'post', 'patch', 'delete'] as const) {
    const path = rule[verb];
    if (typeof path === 'string') {
      const body = rule['body'];
      return { method: verb.toUpperCase() as HttpRule['method'], path, ...(typeof body === 'string' ? { body } : {}) };
    }
  }
  return undefined;
}

/** The `(yandex.cloud.api.operation)` annotation, type names resolved to full names. */
export function operationAnnotationOf(method: protobuf.Method): OperationAnnotation | undefined {
  const option = parsedOption(method, '(yandex.cloud.api.operation)', '(cloud.api.operation)', '(api.operation)');
  if (option === undefined) return undefined;
  const resolveName = (name: unknown): string | undefined => {
    if (typeof name !== 'string' || name === '') return undefined;
    const service = method.parent;
    const found = service?.lookup(name) ?? protoRoot().lookup(name);
    return found === null || found === undefined ? name : found.fullName.replace(/^\./, '');
  };
  const response = resolveName(option['response']);
  if (response === undefined) return undefined;
  const metadata = resolveName(option['metadata']);
  return { response, ...(metadata !== undefined ? { metadata } : {}) };
}

/** The packages whose messages are the wire types (api/wire.gen.ts, schemas/wire.schema.gen.json). */
export const WIRE_PACKAGES = ['yandex.cloud.kms.v1', 'yandex.cloud.operation', 'yandex.cloud.access', 'yandex.cloud.iam.v1', 'yandex.cloud.endpoint', 'google.rpc'] as const;

/** The wire type name of a message or enum: `yandex.cloud.kms.v1.SymmetricKey.Status` → `SymmetricKey_Status`. */
export function wireName(fullName: string): string {
  const name = fullName.replace(/^\./, '');
  const pkg = WIRE_PACKAGES.find((p) => name.startsWith(`${p}.`));
  return (pkg === undefined ? name : name.slice(pkg.length + 1)).replace(/\./g, '_');
}
