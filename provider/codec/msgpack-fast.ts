/**
 * The DynamicValue codec's fast path: msgpack read and written straight against the schema's cty
 * type, with one reader and one writer per process.
 *
 * The general path (dynamic-value.ts) decodes msgpack into plain data with @msgpack/msgpack, then
 * checks and rebuilds it against the type (conformValue); encoding does the same in reverse. Core
 * sends three DynamicValues per planned or applied instance and takes one or two back, so that is
 * paid hundreds of times per command. Here the type drives the bytes directly: object attributes
 * are matched by their UTF-8 bytes (no key strings are built), values land in their final objects,
 * and nothing is allocated per call but the result.
 *
 * Only the happy path lives here. Anything this code does not accept as-is — a value of the wrong
 * type, an unsupported attribute, malformed or truncated bytes, a string that is not well-formed
 * UTF-8, a map key that is not a string — makes it give up (`undefined`), and the caller runs the
 * general path, which then produces the result or the exact error (message and attribute path) it
 * always did. Whenever this code does return, its result is the general path's: the same values,
 * and for encoding the same bytes.
 */
import type { CtyType } from './cty.js';
import { isUnknown, UNKNOWN, type TfObject, type TfValue } from './values.js';

const enum Kind {
  String,
  Number,
  Bool,
  Dynamic,
  List,
  Map,
  Tuple,
  Object,
}

interface PrimitiveNode {
  kind: Kind.String | Kind.Number | Kind.Bool | Kind.Dynamic;
}
interface CollectionNode {
  kind: Kind.List | Kind.Map;
  element: TypeNode;
}
interface TupleNode {
  kind: Kind.Tuple;
  elements: TypeNode[];
}
interface ObjectNode {
  kind: Kind.Object;
  /** Attribute names in the type's declaration order (the order conformValue builds objects in). */
  names: string[];
  types: TypeNode[];
  /** Each name's UTF-8 bytes, to match keys on the wire. */
  nameBytes: Buffer[];
  /** Each name as a msgpack string (header and bytes), to write keys. */
  encodedNames: Buffer[];
  nameSet: ReadonlySet<string>;
  /**
   * A name every object already has through its prototype (`constructor`, `__proto__`, …), or one
   * that is not well-formed UTF-16: objects of this type are left to the general path.
   */
  general: boolean;
}
type TypeNode = PrimitiveNode | CollectionNode | TupleNode | ObjectNode;

/**
 * Thrown inside this module only, and caught at its two entry points: the general path decides.
 * One instance, made once (no stack is captured per throw).
 */
const GIVE_UP = new Error('msgpack fast path: left to the general path');

/** Numbers beyond 2^53 travel as decimal strings (the rule conformValue applies). */
const NUMERIC = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;
/** A lone surrogate: such a string's UTF-8 differs between encoders. */
const LONE_SURROGATE = /\p{Cs}/u;
const EMPTY = Buffer.alloc(0);

const STRING: PrimitiveNode = { kind: Kind.String };
const NUMBER: PrimitiveNode = { kind: Kind.Number };
const BOOL: PrimitiveNode = { kind: Kind.Bool };
/** Also what anything unrecognised compiles to: only null and unknown get through it. */
const DYNAMIC: PrimitiveNode = { kind: Kind.Dynamic };

/** Compiled types, by the (long-lived) type object the server derived from its schema. */
const compiled = new WeakMap<object, TypeNode>();

function msgpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const n = bytes.length;
  const header = n < 32 ? [0xa0 | n] : n < 0x100 ? [0xd9, n] : n < 0x10000 ? [0xda, n >> 8, n & 0xff] : [0xdb, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from(header), bytes]);
}

function compile(type: CtyType): TypeNode {
  if (typeof type === 'string') return type === 'string' ? STRING : type === 'number' ? NUMBER : type === 'bool' ? BOOL : DYNAMIC;
  const cached = compiled.get(type);
  if (cached) return cached;
  let node: TypeNode;
  const [kind, arg] = type;
  if (kind === 'list' || kind === 'set') node = { kind: Kind.List, element: compile(arg) };
  else if (kind === 'map') node = { kind: Kind.Map, element: compile(arg) };
  else if (kind === 'tuple') node = { kind: Kind.Tuple, elements: arg.map((element) => compile(element)) };
  else {
    const attributes = arg as Readonly<Record<string, CtyType>>;
    const names = Object.keys(attributes);
    node = {
      kind: Kind.Object,
      names,
      types: names.map((name) => compile(attributes[name] as CtyType)),
      nameBytes: names.map((name) => Buffer.from(name, 'utf8')),
      encodedNames: names.map(msgpackString),
      nameSet: new Set(names),
      general: names.some((name) => name in Object.prototype || LONE_SURROGATE.test(name)),
    };
  }
  compiled.set(type, node);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Reading

let input: Buffer = EMPTY;
let pos = 0;
let end = 0;
let reading = false;

function need(n: number): void {
  if (end - pos < n) throw GIVE_UP;
}

function u8(): number {
  need(1);
  return input[pos++] as number;
}

function u16(): number {
  need(2);
  const v = input.readUInt16BE(pos);
  pos += 2;
  return v;
}

function u32(): number {
  need(4);
  const v = input.readUInt32BE(pos);
  pos += 4;
  return v;
}

/** A str of `n` bytes at pos; gives up on bytes that are not well-formed UTF-8. */
function text(n: number): string {
  need(n);
  const start = pos;
  pos += n;
  let ascii = true;
  for (let i = start; i < pos; i++) {
    if ((input[i] as number) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return input.toString('latin1', start, pos);
  const s = input.toString('utf8', start, pos);
  // A replacement character means malformed bytes (or a literal U+FFFD): decoders differ there.
  if (s.includes('\uFFFD')) throw GIVE_UP;
  return s;
}

/** The length of a str at pos (its header consumed), or -1 when the next value is no str. */
function strHeader(): number {
  need(1);
  const b = input[pos] as number;
  if (b >= 0xa0 && b <= 0xbf) {
    pos++;
    return b & 0x1f;
  }
  if (b === 0xd9) {
    pos++;
    return u8();
  }
  if (b === 0xda) {
    pos++;
    return u16();
  }
  if (b === 0xdb) {
    pos++;
    return u32();
  }
  return -1;
}

function arrayHeader(): number {
  const b = u8();
  if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
  if (b === 0xdc) return u16();
  if (b === 0xdd) return u32();
  throw GIVE_UP;
}

function mapHeader(): number {
  const b = u8();
  if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
  if (b === 0xde) return u16();
  if (b === 0xdf) return u32();
  throw GIVE_UP;
}

/** Skips an extension (every type is read as unknown) if one is at pos. */
function extension(b: number): boolean {
  let size: number;
  if (b >= 0xd4 && b <= 0xd8) {
    pos++;
    size = 1 << (b - 0xd4);
  } else if (b === 0xc7) {
    pos++;
    size = u8();
  } else if (b === 0xc8) {
    pos++;
    size = u16();
  } else if (b === 0xc9) {
    pos++;
    size = u32();
  } else return false;
  // The extension's type byte, then its data.
  need(1 + size);
  pos += 1 + size;
  return true;
}

function readNumber(b: number): number {
  if (b < 0x80) {
    pos++;
    return b;
  }
  if (b >= 0xe0) {
    pos++;
    return b - 0x100;
  }
  let v: number;
  switch (b) {
    case 0xca:
      need(5);
      v = input.readFloatBE(pos + 1);
      pos += 5;
      return v;
    case 0xcb:
      need(9);
      v = input.readDoubleBE(pos + 1);
      pos += 9;
      return v;
    case 0xcc:
      need(2);
      v = input[pos + 1] as number;
      pos += 2;
      return v;
    case 0xcd:
      need(3);
      v = input.readUInt16BE(pos + 1);
      pos += 3;
      return v;
    case 0xce:
      need(5);
      v = input.readUInt32BE(pos + 1);
      pos += 5;
      return v;
    case 0xcf:
      need(9);
      v = input.readUInt32BE(pos + 1) * 4294967296 + input.readUInt32BE(pos + 5);
      pos += 9;
      return v;
    case 0xd0:
      need(2);
      v = input.readInt8(pos + 1);
      pos += 2;
      return v;
    case 0xd1:
      need(3);
      v = input.readInt16BE(pos + 1);
      pos += 3;
      return v;
    case 0xd2:
      need(5);
      v = input.readInt32BE(pos + 1);
      pos += 5;
      return v;
    case 0xd3:
      need(9);
      v = input.readInt32BE(pos + 1) * 4294967296 + input.readUInt32BE(pos + 5);
      pos += 9;
      return v;
    default: {
      const n = strHeader();
      if (n < 0) throw GIVE_UP;
      const s = text(n);
      if (!NUMERIC.test(s)) throw GIVE_UP;
      return Number(s);
    }
  }
}

/** The index of the attribute whose name is the `n` bytes at pos, or -1. */
function attributeAt(node: ObjectNode, n: number, guess: number): number {
  const names = node.nameBytes;
  const count = names.length;
  for (let k = 0; k < count; k++) {
    const i = (guess + k) % count;
    const name = names[i] as Buffer;
    if (name.length !== n) continue;
    let j = 0;
    while (j < n && name[j] === input[pos + j]) j++;
    if (j === n) return i;
  }
  return -1;
}

function readObject(node: ObjectNode): TfObject {
  if (node.general) throw GIVE_UP;
  const size = mapHeader();
  const count = node.names.length;
  const values = new Array<TfValue | undefined>(count);
  let guess = 0;
  for (let e = 0; e < size; e++) {
    const n = strHeader();
    if (n < 0) throw GIVE_UP;
    need(n);
    const i = attributeAt(node, n, guess);
    if (i < 0) throw GIVE_UP;
    pos += n;
    values[i] = readValue(node.types[i] as TypeNode);
    guess = i + 1;
  }
  const out: TfObject = {};
  for (let i = 0; i < count; i++) out[node.names[i] as string] = values[i] ?? null;
  return out;
}

function readValue(node: TypeNode): TfValue {
  need(1);
  const b = input[pos] as number;
  if (b === 0xc0) {
    pos++;
    return null;
  }
  if (extension(b)) return UNKNOWN;
  switch (node.kind) {
    case Kind.String: {
      const n = strHeader();
      if (n < 0) throw GIVE_UP;
      return text(n);
    }
    case Kind.Number:
      return readNumber(b);
    case Kind.Bool:
      if (b === 0xc2 || b === 0xc3) {
        pos++;
        return b === 0xc3;
      }
      throw GIVE_UP;
    case Kind.List: {
      const size = arrayHeader();
      const out = new Array<TfValue>(size);
      for (let i = 0; i < size; i++) out[i] = readValue(node.element);
      return out;
    }
    case Kind.Tuple: {
      const size = arrayHeader();
      if (size !== node.elements.length) throw GIVE_UP;
      const out = new Array<TfValue>(size);
      for (let i = 0; i < size; i++) out[i] = readValue(node.elements[i] as TypeNode);
      return out;
    }
    case Kind.Map: {
      const size = mapHeader();
      const out: TfObject = {};
      for (let e = 0; e < size; e++) {
        const n = strHeader();
        if (n < 0) throw GIVE_UP;
        const key = text(n);
        if (key === '__proto__') throw GIVE_UP;
        out[key] = readValue(node.element);
      }
      return out;
    }
    case Kind.Object:
      return readObject(node);
    default:
      throw GIVE_UP;
  }
}

/**
 * Decode msgpack bytes against `type`, as decodeMsgpack then conformValue (unknowns allowed,
 * no attributes beyond the type's) would; undefined when the general path must decide.
 */
export function fastDecode(bytes: Uint8Array, type: CtyType): TfValue | undefined {
  if (reading) return undefined;
  reading = true;
  input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  end = input.length;
  try {
    const value = readValue(compile(type));
    return pos === end ? value : undefined;
  } catch (err) {
    if (err === GIVE_UP) return undefined;
    throw err;
  } finally {
    input = EMPTY;
    reading = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The encoder's depth limit (@msgpack/msgpack refuses values nested deeper). */
const MAX_DEPTH = 100;

let out: Buffer = Buffer.allocUnsafe(4096);
let at = 0;
let writing = false;

function room(n: number): void {
  if (at + n <= out.length) return;
  const next = Buffer.allocUnsafe(Math.max(out.length * 2, at + n));
  out.copy(next, 0, 0, at);
  out = next;
}

function byte(b: number): void {
  room(1);
  out[at++] = b;
}

function writeLengthHeader(n: number, fix: number, fixLimit: number, b8: number | undefined, b16: number, b32: number): void {
  room(5);
  if (n < fixLimit) out[at++] = fix | n;
  else if (b8 !== undefined && n < 0x100) {
    out[at++] = b8;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = b16;
    out.writeUInt16BE(n, at);
    at += 2;
  } else {
    out[at++] = b32;
    out.writeUInt32BE(n, at);
    at += 4;
  }
}

function writeString(s: string): void {
  const length = s.length;
  let ascii = true;
  for (let i = 0; i < length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    writeLengthHeader(length, 0xa0, 32, 0xd9, 0xda, 0xdb);
    room(length);
    at += out.write(s, at, length, 'latin1');
    return;
  }
  if (LONE_SURROGATE.test(s)) throw GIVE_UP;
  const n = Buffer.byteLength(s, 'utf8');
  writeLengthHeader(n, 0xa0, 32, 0xd9, 0xda, 0xdb);
  room(n);
  at += out.write(s, at, n, 'utf8');
}

/** A number in its shortest msgpack form: integers as ints, anything else as a float64. */
function writeNumber(v: number): void {
  room(9);
  if (Number.isSafeInteger(v)) {
    if (v >= 0) {
      if (v < 0x80) out[at++] = v;
      else if (v < 0x100) {
        out[at++] = 0xcc;
        out[at++] = v;
      } else if (v < 0x10000) {
        out[at++] = 0xcd;
        out.writeUInt16BE(v, at);
        at += 2;
      } else if (v < 0x100000000) {
        out[at++] = 0xce;
        out.writeUInt32BE(v, at);
        at += 4;
      } else {
        out[at++] = 0xcf;
        out.writeUInt32BE(Math.floor(v / 4294967296), at);
        out.writeUInt32BE(v % 4294967296, at + 4);
        at += 8;
      }
    } else if (v >= -0x20) out[at++] = v + 0x100;
    else if (v >= -0x80) {
      out[at++] = 0xd0;
      out.writeInt8(v, at);
      at += 1;
    } else if (v >= -0x8000) {
      out[at++] = 0xd1;
      out.writeInt16BE(v, at);
      at += 2;
    } else if (v >= -0x80000000) {
      out[at++] = 0xd2;
      out.writeInt32BE(v, at);
      at += 4;
    } else {
      out[at++] = 0xd3;
      const high = Math.floor(v / 4294967296);
      out.writeInt32BE(high, at);
      out.writeUInt32BE(v - high * 4294967296, at + 4);
      at += 8;
    }
    return;
  }
  out[at++] = 0xcb;
  out.writeDoubleBE(v, at);
  at += 8;
}

function isMapLike(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function writeValue(node: TypeNode, value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw GIVE_UP;
  if (value === null || value === undefined) {
    byte(0xc0);
    return;
  }
  if (isUnknown(value)) {
    // Extension type 0 with one zero byte: the canonical unknown of core's cty msgpack.
    room(3);
    out[at++] = 0xd4;
    out[at++] = 0;
    out[at++] = 0;
    return;
  }
  switch (node.kind) {
    case Kind.String:
      if (typeof value !== 'string') throw GIVE_UP;
      writeString(value);
      return;
    case Kind.Bool:
      if (typeof value !== 'boolean') throw GIVE_UP;
      byte(value ? 0xc3 : 0xc2);
      return;
    case Kind.Number:
      if (typeof value === 'number') writeNumber(value);
      else if (typeof value === 'bigint') writeNumber(Number(value));
      else if (typeof value === 'string' && NUMERIC.test(value)) writeNumber(Number(value));
      else throw GIVE_UP;
      return;
    case Kind.List:
    case Kind.Tuple: {
      if (!Array.isArray(value)) throw GIVE_UP;
      const items: unknown[] = value;
      if (node.kind === Kind.Tuple && items.length !== node.elements.length) throw GIVE_UP;
      writeLengthHeader(items.length, 0x90, 16, undefined, 0xdc, 0xdd);
      for (let i = 0; i < items.length; i++) {
        writeValue(node.kind === Kind.Tuple ? (node.elements[i] as TypeNode) : node.element, items[i], depth + 1);
      }
      return;
    }
    case Kind.Map: {
      if (!isMapLike(value)) throw GIVE_UP;
      const keys = Object.keys(value);
      writeLengthHeader(keys.length, 0x80, 16, undefined, 0xde, 0xdf);
      for (const key of keys) {
        if (key === '__proto__') throw GIVE_UP;
        writeString(key);
        writeValue(node.element, value[key], depth + 1);
      }
      return;
    }
    case Kind.Object: {
      if (node.general || !isMapLike(value)) throw GIVE_UP;
      const { names, types, encodedNames } = node;
      const count = names.length;
      for (const key of Object.keys(value)) {
        if (!node.nameSet.has(key)) throw GIVE_UP;
      }
      writeLengthHeader(count, 0x80, 16, undefined, 0xde, 0xdf);
      for (let i = 0; i < count; i++) {
        const name = encodedNames[i] as Buffer;
        room(name.length);
        name.copy(out, at);
        at += name.length;
        writeValue(types[i] as TypeNode, value[names[i] as string], depth + 1);
      }
      return;
    }
    default:
      throw GIVE_UP;
  }
}

/**
 * Encode a value against `type` as conformValue then encodeMsgpack would (the same bytes);
 * undefined when the general path must decide.
 */
export function fastEncode(value: TfValue, type: CtyType): Buffer | undefined {
  if (writing) return undefined;
  writing = true;
  at = 0;
  try {
    writeValue(compile(type), value, 1);
    const bytes = Buffer.allocUnsafe(at);
    out.copy(bytes, 0, 0, at);
    return bytes;
  } catch (err) {
    if (err === GIVE_UP) return undefined;
    throw err;
  } finally {
    writing = false;
  }
}
