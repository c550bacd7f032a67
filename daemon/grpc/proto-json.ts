/**
 * The proto3 JSON mapping (https://protobuf.dev/programming-guides/json/) over protobufjs
 * reflection: the bridge between a gRPC call and the REST dispatcher, which speaks the same
 * messages as JSON. `toProtoJson` turns a decoded message into the JSON a REST client would send
 * (camelCase names, defaults omitted, int64 as strings, bytes as base64, enums by name,
 * Timestamp/Duration/FieldMask/Any in their JSON forms); `encodeProtoJson` turns REST JSON back
 * into wire bytes. Field names of unknown JSON keys are ignored on encode (REST bodies carry no
 * fields beyond the proto; the REST layer has already refused unknown request fields).
 */
import protobuf from 'protobufjs';

type Json = unknown;
type Plain = Record<string, unknown>;

const TIMESTAMP = 'google.protobuf.Timestamp';
const DURATION = 'google.protobuf.Duration';
const FIELD_MASK = 'google.protobuf.FieldMask';
const ANY = 'google.protobuf.Any';
const EMPTY = 'google.protobuf.Empty';
const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** A conversion failure; `field` is the dotted path of the value. */
export class ProtoJsonError extends Error {
  constructor(
    readonly field: string,
    readonly description: string,
  ) {
    super(`${field}: ${description}`);
    this.name = 'ProtoJsonError';
  }
}

function fullName(type: protobuf.Type | protobuf.Enum): string {
  return type.fullName.replace(/^\./, '');
}

const camelToSnake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const snakeToCamel = (s: string): string => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

// ---- decoded message → proto3 JSON ------------------------------------------------------------

/** The proto3 JSON of a decoded protobufjs message. */
export function toProtoJson(type: protobuf.Type, message: object): Plain {
  const value = messageToJson(type, message as Plain);
  return value as Plain;
}

function has(message: Plain, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, name);
}

function messageToJson(type: protobuf.Type, message: Plain): Json {
  switch (fullName(type)) {
    case TIMESTAMP:
      return formatTimestamp(longToNumber(message['seconds']), Number(message['nanos'] ?? 0));
    case DURATION:
      return formatDuration(longToNumber(message['seconds']), Number(message['nanos'] ?? 0));
    case FIELD_MASK:
      return ((message['paths'] as string[] | undefined) ?? []).map(snakeToCamel).join(',');
    case ANY:
      return anyToJson(type, message);
  }
  if (WRAPPERS.has(fullName(type))) {
    const field = type.fields['value'];
    return field === undefined ? null : scalarToJson(field, message['value']);
  }
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    const value = message[field.name];
    if (field.map) {
      const entries = Object.entries((value as Plain | undefined) ?? {});
      if (entries.length === 0) continue;
      const map: Plain = {};
      for (const [k, v] of entries) map[k] = fieldValueToJson(field, v);
      out[field.name] = map;
    } else if (field.repeated) {
      const list = (value as unknown[] | undefined) ?? [];
      if (list.length === 0) continue;
      out[field.name] = list.map((v) => fieldValueToJson(field, v));
    } else if (field.resolvedType instanceof protobuf.Type) {
      if (value === null || value === undefined) continue;
      out[field.name] = fieldValueToJson(field, value);
    } else {
      const present = field.partOf !== null ? has(message, field.name) : !isDefault(field, value);
      if (!present || value === undefined || value === null) continue;
      out[field.name] = fieldValueToJson(field, value);
    }
  }
  return out;
}

function fieldValueToJson(field: protobuf.Field, value: unknown): Json {
  if (field.resolvedType instanceof protobuf.Type) return messageToJson(field.resolvedType, value as Plain);
  return scalarToJson(field, value);
}

function scalarToJson(field: protobuf.Field, value: unknown): Json {
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = field.resolvedType.valuesById[value as number];
    return name ?? value;
  }
  if (LONG_TYPES.has(field.type)) return longToString(value);
  if (field.type === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  if ((field.type === 'double' || field.type === 'float') && typeof value === 'number' && !Number.isFinite(value)) {
    return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  }
  return value;
}

function isDefault(field: protobuf.Field, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (LONG_TYPES.has(field.type)) return longToString(value) === '0';
  if (field.type === 'bytes') return (value as Uint8Array).length === 0;
  return value === '' || value === 0 || value === false;
}

/** Any's two fields by number (protobufjs's built-in Any keeps the name `type_url`). */
function anyFields(anyType: protobuf.Type): { typeUrl: string; value: string } {
  return { typeUrl: anyType.fieldsById[1]?.name ?? 'type_url', value: anyType.fieldsById[2]?.name ?? 'value' };
}

function anyToJson(anyType: protobuf.Type, message: Plain): Json {
  const names = anyFields(anyType);
  const rawUrl = message[names.typeUrl];
  const typeUrl = typeof rawUrl === 'string' ? rawUrl : '';
  if (typeUrl === '') return {};
  const inner = lookupAnyType(anyType, typeUrl);
  if (inner === null) throw new ProtoJsonError('@type', `unknown type ${typeUrl}`);
  const decoded = inner.decode((message[names.value] as Uint8Array | undefined) ?? new Uint8Array()) as unknown as Plain;
  const json = messageToJson(inner, decoded);
  if (isSpecialJson(inner)) return { '@type': typeUrl, value: json };
  return { '@type': typeUrl, ...(json as Plain) };
}

/** Well-known types whose JSON is not an object: inside an Any they go under `value`. */
function isSpecialJson(type: protobuf.Type): boolean {
  const name = fullName(type);
  return name === TIMESTAMP || name === DURATION || name === FIELD_MASK || name === ANY || WRAPPERS.has(name);
}

function lookupAnyType(from: protobuf.ReflectionObject, typeUrl: string): protobuf.Type | null {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  try {
    return (from.root).lookupType(name);
  } catch {
    return null;
  }
}

function longToString(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && 'low' in value && 'high' in value) {
    const { low, high, unsigned } = value as { low: number; high: number; unsigned?: boolean };
    const big = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
    if (unsigned === true) return big.toString();
    return BigInt.asIntN(64, big).toString();
  }
  return '0';
}

function longToNumber(value: unknown): number {
  return Number(longToString(value ?? 0));
}

function formatTimestamp(seconds: number, nanos: number): string {
  const iso = new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${iso}${fraction(nanos)}Z`;
}

function formatDuration(seconds: number, nanos: number): string {
  const negative = seconds < 0 || nanos < 0;
  return `${negative ? '-' : ''}${Math.abs(seconds)}${fraction(Math.abs(nanos))}s`;
}

/** Nanoseconds as 0, 3, 6 or 9 fractional digits, as the proto3 JSON mapping writes them. */
function fraction(nanos: number): string {
  if (nanos === 0) return '';
  const digits = String(nanos).padStart(9, '0');
  if (digits.endsWith('000000')) return `.${digits.slice(0, 3)}`;
  if (digits.endsWith('000')) return `.${digits.slice(0, 6)}`;
  return `.${digits}`;
}

// ---- proto3 JSON → wire bytes -----------------------------------------------------------------

/** Encodes proto3 JSON (REST bodies) as `type`'s wire bytes. */
export function encodeProtoJson(type: protobuf.Type, json: Json): Uint8Array {
  const plain = jsonToPlain(type, json, '');
  return type.encode(type.fromObject(plain as Plain)).finish();
}

/** proto3 JSON → the plain object `Type.fromObject` takes (well-known types already converted). */
export function jsonToPlain(type: protobuf.Type, json: Json, path: string): unknown {
  switch (fullName(type)) {
    case TIMESTAMP:
      return parseTimestamp(json, path);
    case DURATION:
      return parseDuration(json, path);
    case FIELD_MASK:
      if (typeof json !== 'string') throw new ProtoJsonError(path, 'must be a comma-separated string of field names');
      return { paths: json === '' ? [] : json.split(',').map((p) => camelToSnake(p.trim())) };
    case ANY:
      return anyToPlain(type, json, path);
    case EMPTY:
      return {};
  }
  if (WRAPPERS.has(fullName(type))) {
    const field = type.fields['value'];
    return { value: field === undefined ? json : scalarToPlain(field, json, path) };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ProtoJsonError(path || 'body', 'must be an object');
  const source = json as Plain;
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    const jsonName = field.name;
    const protoName = camelToSnake(field.name);
    const value = has(source, jsonName) ? source[jsonName] : has(source, protoName) ? source[protoName] : undefined;
    if (value === undefined || value === null) continue;
    const at = path === '' ? jsonName : `${path}.${jsonName}`;
    if (field.map) {
      if (typeof value !== 'object' || Array.isArray(value)) throw new ProtoJsonError(at, 'must be an object');
      const map: Plain = {};
      for (const [k, v] of Object.entries(value as Plain)) map[k] = fieldValueToPlain(field, v, `${at}.${k}`);
      out[field.name] = map;
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new ProtoJsonError(at, 'must be an array');
      out[field.name] = value.map((v, i) => fieldValueToPlain(field, v, `${at}.${i}`));
    } else {
      out[field.name] = fieldValueToPlain(field, value, at);
    }
  }
  return out;
}

function fieldValueToPlain(field: protobuf.Field, value: Json, path: string): unknown {
  if (field.resolvedType instanceof protobuf.Type) return jsonToPlain(field.resolvedType, value, path);
  return scalarToPlain(field, value, path);
}

function scalarToPlain(field: protobuf.Field, value: Json, path: string): unknown {
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = field.resolvedType.values;
    if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(values, value)) return values[value];
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    throw new ProtoJsonError(path, `must be one of ${Object.keys(values).join(', ')}`);
  }
  if (field.type === 'bytes') {
    if (typeof value !== 'string') throw new ProtoJsonError(path, 'must be a base64 string');
    return Buffer.from(value, 'base64');
  }
  return value;
}

function anyToPlain(anyType: protobuf.Type, json: Json, path: string): unknown {
  if (json === null || typeof json !== 'object') throw new ProtoJsonError(path, 'must be an object with "@type"');
  const { '@type': typeUrl, ...rest } = json as Plain;
  if (typeUrl === undefined) return {};
  if (typeof typeUrl !== 'string') throw new ProtoJsonError(`${path}.@type`, 'must be a string');
  const inner = lookupAnyType(anyType, typeUrl);
  if (inner === null) throw new ProtoJsonError(`${path}.@type`, `unknown type ${typeUrl}`);
  const body = isSpecialJson(inner) ? (rest)['value'] : rest;
  const plain = jsonToPlain(inner, body, path);
  const names = anyFields(anyType);
  return { [names.typeUrl]: typeUrl, [names.value]: inner.encode(inner.fromObject(plain as Plain)).finish() };
}

const TIMESTAMP_PATTERN = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

function parseTimestamp(json: Json, path: string): Plain {
  const match = typeof json === 'string' ? TIMESTAMP_PATTERN.exec(json) : null;
  const ms = match === null ? NaN : Date.parse(`${match[1]}${match[3]}`);
  if (match === null || Number.isNaN(ms)) throw new ProtoJsonError(path, 'must be an RFC 3339 timestamp such as "2026-01-01T00:00:00Z"');
  return { seconds: Math.floor(ms / 1000), nanos: Number((match[2] ?? '').padEnd(9, '0')) };
}

const DURATION_PATTERN = /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/;

function parseDuration(json: Json, path: string): Plain {
  const match = typeof json === 'string' ? DURATION_PATTERN.exec(json) : null;
  if (match === null) throw new ProtoJsonError(path, 'must be a duration such as "3600s" or "0.5s"');
  const sign = match[1] === '-' ? -1 : 1;
  return { seconds: sign * Number(match[2]), nanos: sign * Number((match[3] ?? '').padEnd(9, '0')) };
}
