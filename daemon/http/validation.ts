/**
 * Request validation: one ajv instance, the JSON Schemas of schemas/api loaded once, and error
 * messages that name the offending field the way a user wrote it (`labels.Env`, `rotationPeriod`).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { KmsError, invalidArgument, type FieldViolation } from '../domain/errors.js';
import { protoRoot } from '../grpc/descriptors.js';
import common from '../../schemas/api/common.json' with { type: 'json' };
import createKey from '../../schemas/api/create-key.json' with { type: 'json' };
import updateKey from '../../schemas/api/update-key.json' with { type: 'json' };
import versionRef from '../../schemas/api/version-ref.json' with { type: 'json' };
import scheduleVersionDestruction from '../../schemas/api/schedule-version-destruction.json' with { type: 'json' };
import empty from '../../schemas/api/empty.json' with { type: 'json' };
import clockAdvance from '../../schemas/api/clock-advance.json' with { type: 'json' };
import encrypt from '../../schemas/api/encrypt.json' with { type: 'json' };
import decrypt from '../../schemas/api/decrypt.json' with { type: 'json' };
import reEncrypt from '../../schemas/api/re-encrypt.json' with { type: 'json' };
import generateDataKey from '../../schemas/api/generate-data-key.json' with { type: 'json' };
import setAccessBindings from '../../schemas/api/set-access-bindings.json' with { type: 'json' };
import updateAccessBindings from '../../schemas/api/update-access-bindings.json' with { type: 'json' };
import createServiceAccount from '../../schemas/api/create-service-account.json' with { type: 'json' };
import createToken from '../../schemas/api/create-token.json' with { type: 'json' };
import createIamToken from '../../schemas/api/create-iam-token.json' with { type: 'json' };

/** Every request body schema, by the name routes use. */
export const REQUEST_SCHEMAS = {
  'create-key': createKey,
  'update-key': updateKey,
  'version-ref': versionRef,
  'schedule-version-destruction': scheduleVersionDestruction,
  empty,
  'clock-advance': clockAdvance,
  encrypt,
  decrypt,
  're-encrypt': reEncrypt,
  'generate-data-key': generateDataKey,
  'set-access-bindings': setAccessBindings,
  'update-access-bindings': updateAccessBindings,
  'create-service-account': createServiceAccount,
  'create-token': createToken,
  'create-iam-token': createIamToken,
} as const;

export type SchemaName = keyof typeof REQUEST_SCHEMAS;
export const COMMON_SCHEMA = common;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
ajv.addSchema(common);
const validators = new Map<SchemaName, ValidateFunction>();
for (const [name, schema] of Object.entries(REQUEST_SCHEMAS) as [SchemaName, object][]) {
  validators.set(name, ajv.compile(schema));
}

/**
 * Enum fields of request bodies and the proto enum each is: proto3 JSON allows an enum by name or
 * by number, so numbers become names (from the vendored descriptors) before validation.
 */
const ENUM_FIELDS = new Map<string, string>([
  ['defaultAlgorithm', 'yandex.cloud.kms.v1.SymmetricAlgorithm'],
  ['dataKeySpec', 'yandex.cloud.kms.v1.SymmetricAlgorithm'],
  ['status', 'yandex.cloud.kms.v1.SymmetricKey.Status'],
  ['action', 'yandex.cloud.access.AccessBindingAction'],
]);

/** Bodies that have enum fields (the hot encrypt/decrypt bodies are not copied). */
const WITH_ENUMS: ReadonlySet<SchemaName> = new Set<SchemaName>(['create-key', 'update-key', 'generate-data-key', 'update-access-bindings']);

function enumsByName(body: unknown): unknown {
  if (body === null || typeof body !== 'object') return body;
  if (Array.isArray(body)) return body.map(enumsByName);
  const out = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    const enumName = ENUM_FIELDS.get(key);
    if (enumName !== undefined && typeof value === 'number' && Number.isInteger(value)) {
      out[key] = protoRoot().lookupEnum(enumName).valuesById[value] ?? value;
    } else {
      out[key] = key === 'labels' ? value : enumsByName(value);
    }
  }
  return out;
}

/** Throws INVALID_ARGUMENT naming the field when `body` does not match the named schema. */
export function validateBody<T>(name: SchemaName, given: unknown): T {
  const validate = validators.get(name);
  if (validate === undefined) throw new KmsError('INTERNAL', `no schema ${name}`);
  const body = WITH_ENUMS.has(name) ? enumsByName(given) : given;
  if (validate(body)) return body as T;
  const violation = describe((validate.errors ?? [])[0]);
  throw new KmsError('INVALID_ARGUMENT', `${violation.field}: ${violation.description}`, [violation]);
}

/** A JSON pointer (`/labels/Env`) as a dotted field path (`labels.Env`). */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function join(base: string, child: string): string {
  return base === '' ? child : `${base}.${child}`;
}

function describe(error: ErrorObject | undefined): FieldViolation {
  if (error === undefined) return { field: 'body', description: 'is invalid' };
  const at = fieldPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return { field: join(at, String(params.additionalProperty)), description: 'unknown field' };
    case 'required':
      return { field: join(at, String(params.missingProperty)), description: 'is required' };
    case 'type':
      return { field: at || 'body', description: `must be ${String(params.type)}` };
    case 'enum':
      return { field: at, description: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'pattern':
      if (params.propertyName !== undefined || error.propertyName !== undefined) {
        const key = String(error.propertyName ?? params.propertyName);
        return { field: join(at, key), description: `key "${key}" must match ${String(params.pattern)}` };
      }
      return { field: at, description: `must match ${String(params.pattern)}` };
    case 'maxLength':
      if (error.propertyName !== undefined) {
        return { field: join(at, error.propertyName), description: `key must be at most ${String(params.limit)} characters` };
      }
      return { field: at, description: `must be at most ${String(params.limit)} characters` };
    case 'minLength':
      return { field: at, description: `must be at least ${String(params.limit)} characters` };
    case 'maxProperties':
      return { field: at, description: `must have at most ${String(params.limit)} entries` };
    case 'minimum':
    case 'maximum':
      return { field: at, description: `must be ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params.limit)}` };
    case 'propertyNames':
      return { field: join(at, String(params.propertyName)), description: 'is not a valid key' };
    default:
      return { field: at || 'body', description: error.message ?? 'is invalid' };
  }
}

/** Decodes base64 (standard or URL-safe) and enforces a byte limit, naming the field. */
export function decodeBase64(field: string, text: string | undefined, maxBytes: number): Buffer {
  if (text === undefined) return Buffer.alloc(0);
  const bytes = Buffer.from(text, 'base64');
  // Node ignores garbage silently; re-encoding catches inputs that are not canonical base64.
  const canonical = bytes.toString('base64').replace(/=+$/, '');
  const given = text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (canonical !== given) throw invalidArgument(field, 'is not valid base64');
  if (bytes.length > maxBytes) throw invalidArgument(field, `must be at most ${maxBytes} bytes, got ${bytes.length}`);
  return bytes;
}
