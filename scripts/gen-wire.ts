// Generates the wire types of the Yandex Cloud API surface from the vendored protos
// (schemas/proto, loaded by daemon/grpc/descriptors.ts):
//
//   api/wire.gen.ts              TypeScript types of every served message in its proto3 JSON form
//                                (what REST carries): the daemon's views, the provider's REST client
//                                and the tests use these instead of writing the shapes by hand
//   schemas/wire.schema.gen.json JSON Schemas of the same messages (/openapi.json's response schemas)
//
//   node dist/scripts/gen-wire.js           regenerate both
//   node dist/scripts/gen-wire.js --check   exit 1 when either is out of date (CI runs this)
//
// proto3 JSON: camelCase names; every field optional (a writer may omit defaults); 64-bit integers
// and bytes (base64) as strings; enums by name; Timestamp, Duration, FieldMask as strings; Any as
// an object with "@type"; maps as objects.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import protobuf from 'protobufjs';
import { PROTO_ROOT, WIRE_PACKAGES, protoRoot, wireName } from '../daemon/grpc/descriptors.js';

const REPO_ROOT = join(PROTO_ROOT, '..', '..');
export const TYPES_FILE = join(REPO_ROOT, 'api', 'wire.gen.ts');
export const SCHEMA_FILE = join(REPO_ROOT, 'schemas', 'wire.schema.gen.json');

/** The packages whose messages are generated (their dependencies are mapped, not generated). */
const PACKAGES: readonly string[] = WIRE_PACKAGES;

const LONGS = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBERS = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float']);

/** TypeScript and JSON Schema of the well-known types, by full name. */
const WELL_KNOWN = new Map<string, { ts: string; schema: object }>([
  ['google.protobuf.Timestamp', { ts: 'string', schema: { type: 'string', format: 'date-time' } }],
  ['google.protobuf.Duration', { ts: 'string', schema: { type: 'string', pattern: '^-?\\d+(\\.\\d{1,9})?s$' } }],
  ['google.protobuf.FieldMask', { ts: 'string', schema: { type: 'string' } }],
  ['google.protobuf.Any', { ts: 'Any', schema: { type: 'object', required: ['@type'], properties: { '@type': { type: 'string' } } } }],
  ['google.protobuf.Empty', { ts: 'Record<string, never>', schema: { type: 'object', additionalProperties: false } }],
]);

const fullName = (t: protobuf.ReflectionObject): string => t.fullName.replace(/^\./, '');

function tsName(t: protobuf.ReflectionObject): string {
  return wireName(t.fullName);
}

function collect(): { messages: protobuf.Type[]; enums: protobuf.Enum[] } {
  const messages: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      const inPackage = PACKAGES.some((p) => fullName(child).startsWith(`${p}.`));
      if (child instanceof protobuf.Type) {
        if (inPackage) messages.push(child);
        walk(child);
      } else if (child instanceof protobuf.Enum) {
        if (inPackage) enums.push(child);
      } else if (child instanceof protobuf.Namespace) {
        walk(child);
      }
    }
  };
  walk(protoRoot());
  const byName = (a: protobuf.ReflectionObject, b: protobuf.ReflectionObject) => tsName(a).localeCompare(tsName(b));
  return { messages: messages.sort(byName), enums: enums.sort(byName) };
}

function fieldTs(field: protobuf.Field): string {
  const resolved = field.resolvedType;
  let ts: string;
  if (resolved instanceof protobuf.Type) ts = WELL_KNOWN.get(fullName(resolved))?.ts ?? tsName(resolved);
  else if (resolved instanceof protobuf.Enum) ts = tsName(resolved);
  else if (LONGS.has(field.type) || field.type === 'bytes' || field.type === 'string') ts = 'string';
  else if (NUMBERS.has(field.type)) ts = 'number';
  else if (field.type === 'bool') ts = 'boolean';
  else throw new Error(`gen-wire: no mapping for ${field.type} (${fullName(field)})`);
  if (field.map) return `Record<string, ${ts}>`;
  return field.repeated ? `${ts}[]` : ts;
}

function fieldSchema(field: protobuf.Field): object {
  const resolved = field.resolvedType;
  let schema: object;
  if (resolved instanceof protobuf.Type) schema = WELL_KNOWN.get(fullName(resolved))?.schema ?? { $ref: `#/definitions/${tsName(resolved)}` };
  else if (resolved instanceof protobuf.Enum) schema = { $ref: `#/definitions/${tsName(resolved)}` };
  else if (LONGS.has(field.type)) schema = { type: 'string', pattern: '^-?\\d+$' };
  else if (field.type === 'bytes') schema = { type: 'string', contentEncoding: 'base64' };
  else if (field.type === 'string') schema = { type: 'string' };
  else if (NUMBERS.has(field.type)) schema = { type: 'number' };
  else if (field.type === 'bool') schema = { type: 'boolean' };
  else throw new Error(`gen-wire: no mapping for ${field.type}`);
  if (field.map) return { type: 'object', additionalProperties: schema };
  return field.repeated ? { type: 'array', items: schema } : schema;
}

function comment(text: string | null | undefined, indent: string): string {
  if (text === null || text === undefined || text.trim() === '') return '';
  const lines = text.trim().split('\n').map((l) => l.replace(/\*\//g, '* /').trimEnd());
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l === '' ? '' : ` ${l}`}`).join('\n')}\n${indent} */\n`;
}

export function renderTypes(): string {
  const { messages, enums } = collect();
  let out = `// GENERATED by scripts/gen-wire.ts from schemas/proto (the vendored Yandex Cloud protos). Do not edit.
// The proto3 JSON form of each message, as REST carries it: every field optional (a writer may
// omit defaults), 64-bit integers and bytes (base64) as strings, enums by name, Timestamp /
// Duration / FieldMask as strings, Any with "@type". Regenerate with \`node dist/scripts/gen-wire.js\`.

/** google.protobuf.Any in proto3 JSON: the packed message's fields next to its type URL. */
export interface Any {
  '@type': string;
  [field: string]: unknown;
}
`;
  for (const e of enums) {
    out += `\n${comment(e.comment, '')}export type ${tsName(e)} = ${Object.keys(e.values)
      .map((v) => `'${v}'`)
      .join(' | ')};\n`;
  }
  for (const m of messages) {
    if (m.fieldsArray.length === 0) {
      out += `\n${comment(m.comment, '')}export type ${tsName(m)} = Record<string, never>;\n`;
      continue;
    }
    out += `\n${comment(m.comment, '')}export interface ${tsName(m)} {\n`;
    for (const field of m.fieldsArray) {
      out += comment(field.comment, '  ');
      out += `  ${field.name}?: ${fieldTs(field)};\n`;
    }
    out += '}\n';
  }
  return out;
}

export function renderSchemas(): string {
  const { messages, enums } = collect();
  const definitions: Record<string, object> = {};
  for (const e of enums) definitions[tsName(e)] = { enum: Object.keys(e.values) };
  for (const m of messages) {
    const properties: Record<string, object> = {};
    for (const field of m.fieldsArray) properties[field.name] = fieldSchema(field);
    // additionalProperties false: a writer sends no field the proto lacks (Any stays open).
    definitions[tsName(m)] = { type: 'object', title: fullName(m), additionalProperties: false, properties };
  }
  return `${JSON.stringify(
    {
      $comment: 'GENERATED by scripts/gen-wire.ts from schemas/proto. Do not edit.',
      $id: 'https://kms.local/schemas/wire.schema.gen.json',
      definitions,
    },
    null,
    2,
  )}\n`;
}

function main(): void {
  // The types are formatted by hand: tsc and eslint read them as written.
  protoRoot().resolveAll();
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const files: [string, string][] = [
    [TYPES_FILE, renderTypes()],
    [SCHEMA_FILE, renderSchemas()],
  ];
  if (values.check) {
    const stale = files.filter(([file, text]) => {
      try {
        return readFileSync(file, 'utf8') !== text;
      } catch {
        return true;
      }
    });
    if (stale.length > 0) {
      console.error(`gen-wire: ${stale.map(([f]) => f.slice(REPO_ROOT.length + 1)).join(', ')} out of date; run node dist/scripts/gen-wire.js`);
      process.exit(1);
    }
    console.log('gen-wire: api/wire.gen.ts and schemas/wire.schema.gen.json are up to date');
    return;
  }
  for (const [file, text] of files) writeFileSync(file, text);
  console.log(`gen-wire: wrote ${files.map(([f]) => f.slice(REPO_ROOT.length + 1)).join(', ')}`);
}

main();
