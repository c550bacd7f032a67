/**
 * A protobuf (proto3) codec that interprets the embedded JSON descriptor: plain objects with the
 * proto's snake_case field names in and out, int64 as JS numbers, enums as numbers, bytes as
 * Buffers, absent fields left out. It replaces protobufjs at run time: protobufjs builds the
 * whole reflection tree and then compiles four functions per message type on first use, which
 * cost ≈60 ms of every plugin process here; interpreting the descriptor for our small messages
 * costs well under a millisecond per call.
 *
 * Supported: the scalar types the plugin protocol uses (string, bytes, bool, int32, int64, uint32,
 * uint64, enums), nested messages, repeated fields (packed or not on input, packed on output for
 * numbers), map<string, …>, proto3 optional and oneof fields. Unknown fields are skipped.
 */

interface FieldJson {
  type: string;
  id: number;
  rule?: string;
  keyType?: string;
}

/** A namespace, message, enum or service in protobufjs's JSON descriptor form. */
export interface DescriptorJson {
  nested?: Record<string, DescriptorJson>;
  fields?: Record<string, FieldJson>;
  values?: Record<string, number>;
  methods?: Record<string, { requestType: string; responseType: string; requestStream?: boolean; responseStream?: boolean }>;
}

type Scalar = 'string' | 'bytes' | 'bool' | 'int32' | 'int64' | 'uint32' | 'uint64' | 'enum';
const SCALARS = new Set<string>(['string', 'bytes', 'bool', 'int32', 'int64', 'uint32', 'uint64']);

interface Field {
  name: string;
  id: number;
  repeated: boolean;
  /** A scalar (enums travel as varints), or the message type. */
  scalar?: Scalar;
  message?: MessageType;
  /** map<string, V>: the value's kind (the key is always a string here). */
  map?: { scalar?: Scalar; message?: MessageType };
}

/** One message type, its fields resolved on first use. */
export class MessageType {
  private resolved?: { fields: Field[]; byId: Map<number, Field> };

  constructor(
    readonly fullName: string,
    private readonly json: DescriptorJson,
    private readonly registry: ProtoRegistry,
  ) {}

  /** The fields, by declaration order and by number. */
  get layout(): { fields: Field[]; byId: Map<number, Field> } {
    if (!this.resolved) {
      const fields = Object.entries(this.json.fields ?? {}).map(([name, f]) => this.registry.field(this.fullName, name, f));
      this.resolved = { fields, byId: new Map(fields.map((f) => [f.id, f])) };
    }
    return this.resolved;
  }
}

/** Resolves names in a descriptor and hands out message types. */
export class ProtoRegistry {
  private readonly types = new Map<string, MessageType | 'enum'>();

  constructor(private readonly root: DescriptorJson) {}

  private lookupJson(fullName: string): DescriptorJson | undefined {
    let node: DescriptorJson | undefined = this.root;
    for (const part of fullName.split('.')) node = node?.nested?.[part];
    return node;
  }

  /** A type by name as written in `scope` (proto scoping: innermost enclosing scope first). */
  resolve(scope: string, name: string): MessageType | 'enum' {
    const parts = scope.split('.');
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), name].filter(Boolean).join('.');
      const cached = this.types.get(candidate);
      if (cached) return cached;
      const json = this.lookupJson(candidate);
      if (json?.fields) {
        const type = new MessageType(candidate, json, this);
        this.types.set(candidate, type);
        return type;
      }
      if (json?.values) {
        this.types.set(candidate, 'enum');
        return 'enum';
      }
    }
    throw new Error(`protobuf: cannot resolve ${name} from ${scope}`);
  }

  /** A message type by its full name. */
  message(fullName: string): MessageType {
    const type = this.resolve('', fullName);
    if (type === 'enum') throw new Error(`protobuf: ${fullName} is an enum`);
    return type;
  }

  /** The methods of a service by its full name. */
  service(fullName: string): NonNullable<DescriptorJson['methods']> {
    const methods = this.lookupJson(fullName)?.methods;
    if (!methods) throw new Error(`protobuf: no service ${fullName}`);
    return methods;
  }

  field(scope: string, name: string, f: FieldJson): Field {
    const kind = (type: string): { scalar?: Scalar; message?: MessageType } => {
      if (SCALARS.has(type)) return { scalar: type as Scalar };
      const resolved = this.resolve(scope, type);
      return resolved === 'enum' ? { scalar: 'enum' } : { message: resolved };
    };
    if (f.keyType !== undefined) {
      if (f.keyType !== 'string') throw new Error(`protobuf: map<${f.keyType}, …> is not supported (${scope}.${name})`);
      return { name, id: f.id, repeated: false, map: kind(f.type) };
    }
    return { name, id: f.id, repeated: f.rule === 'repeated', ...kind(f.type) };
  }
}

/**
 * Growable output buffer with protobuf primitives. Length-delimited fields (nested messages, map
 * entries, strings, packed numbers) are written in place: one byte is kept for the length, the
 * content written after it, and the content moved up only when its length needs a longer varint.
 */
class Writer {
  buf = Buffer.allocUnsafe(1024);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(value: number | bigint): void {
    this.ensure(10);
    if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      let v = value;
      while (v >= 0x80) {
        this.buf[this.pos++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buf[this.pos++] = v;
      return;
    }
    // Negative numbers are ten bytes of two's complement.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(id: number, wire: number): void {
    const key = id * 8 + wire;
    if (key < 0x80 && this.pos < this.buf.length) this.buf[this.pos++] = key;
    else this.varint(key);
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  /** A string's UTF-8 with its length, written straight into the buffer. */
  string(text: string): void {
    // At most 3 bytes per UTF-16 unit (a lone surrogate becomes U+FFFD, 3 bytes, as in Buffer.from).
    const max = text.length * 3;
    this.ensure(max + 10);
    if (max < 0x80) {
      const n = this.buf.write(text, this.pos + 1, 'utf8');
      this.buf[this.pos] = n;
      this.pos += 1 + n;
    } else {
      this.bytes(Buffer.from(text, 'utf8'));
    }
  }

  /** Keeps one byte for a length; returns where the content starts. */
  begin(): number {
    this.ensure(1);
    return ++this.pos;
  }

  /** Writes the length of the content since `start` (from begin), moving it up if need be. */
  end(start: number): void {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    let extra = 0;
    for (let v = length; v >= 0x80; v = Math.floor(v / 0x80)) extra++;
    this.ensure(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    // The length's varint fills the kept byte and the `extra` ones just made.
    let at = start - 1;
    let v = length;
    while (v >= 0x80) {
      this.buf[at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[at] = v;
    this.pos += extra;
  }
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  throw new Error('protobuf: expected bytes');
}

function scalarNumber(value: unknown, scalar: Scalar): number | bigint {
  if (scalar === 'bool') return value === true ? 1 : 0;
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new Error(`protobuf: expected a number for ${scalar}`);
}

function writeScalar(w: Writer, id: number, scalar: Scalar, value: unknown): void {
  if (scalar === 'string') {
    w.tag(id, 2);
    w.string(String(value));
  } else if (scalar === 'bytes') {
    w.tag(id, 2);
    w.bytes(toBytes(value));
  } else {
    w.tag(id, 0);
    w.varint(scalarNumber(value, scalar));
  }
}

function writeNested(w: Writer, id: number, type: MessageType, value: Record<string, unknown>): void {
  w.tag(id, 2);
  const start = w.begin();
  writeMessage(w, type, value);
  w.end(start);
}

function writeMessage(w: Writer, type: MessageType, value: Record<string, unknown>): void {
  for (const field of type.layout.fields) {
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    if (field.map) {
      for (const [key, entry] of Object.entries(v as Record<string, unknown>)) {
        if (entry === undefined || entry === null) continue;
        w.tag(field.id, 2);
        const start = w.begin();
        writeScalar(w, 1, 'string', key);
        if (field.map.message) writeNested(w, 2, field.map.message, entry as Record<string, unknown>);
        else writeScalar(w, 2, field.map.scalar ?? 'string', entry);
        w.end(start);
      }
    } else if (field.repeated) {
      const items = v as unknown[];
      if (items.length === 0) continue;
      if (field.message) {
        for (const item of items) writeNested(w, field.id, field.message, item as Record<string, unknown>);
      } else if (field.scalar === 'string' || field.scalar === 'bytes') {
        for (const item of items) writeScalar(w, field.id, field.scalar, item);
      } else {
        w.tag(field.id, 2);
        const start = w.begin();
        for (const item of items) w.varint(scalarNumber(item, field.scalar ?? 'int64'));
        w.end(start);
      }
    } else if (field.message) writeNested(w, field.id, field.message, v as Record<string, unknown>);
    else writeScalar(w, field.id, field.scalar ?? 'string', v);
  }
}

/** The process' writer; a call that finds it busy (never, in practice) gets its own. */
let shared: Writer | undefined;
let busy = false;

function encodeWith(type: MessageType, value: Record<string, unknown>, reserve: number): Buffer {
  const w = busy ? new Writer() : (shared ??= new Writer());
  const mine = w === shared;
  if (mine) busy = true;
  try {
    w.pos = reserve;
    writeMessage(w, type, value);
    // One buffer of the exact size: the writer's own is reused by the next call.
    const out = Buffer.allocUnsafe(w.pos);
    w.buf.copy(out, 0, 0, w.pos);
    return out;
  } finally {
    if (mine) busy = false;
  }
}

/** Encode a plain object as a message of `type`. */
export function encodeMessage(type: MessageType, value: Record<string, unknown>): Buffer {
  return encodeWith(type, value, 0);
}

/**
 * Encode a plain object as one gRPC message frame: the 5-byte prefix (not compressed, big-endian
 * length) and the message, in a single buffer.
 */
export function encodeMessageFrame(type: MessageType, value: Record<string, unknown>): Buffer {
  const frame = encodeWith(type, value, 5);
  frame[0] = 0;
  frame.writeUInt32BE(frame.length - 5, 1);
  return frame;
}

/**
 * Input cursor with protobuf primitives over one buffer: a nested message is read in place, up to
 * its own end (no sub-buffer or reader per nested message).
 */
class Reader {
  pos = 0;
  /** Where the message being read ends. */
  end: number;
  constructor(readonly buf: Buffer) {
    this.end = buf.length;
  }

  private byte(): number {
    if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
    return this.buf[this.pos++] as number;
  }

  /** A varint as a number, or a bigint beyond 49 bits (negative int64 on the wire). */
  varint(): bigint | number {
    if (this.pos < this.end) {
      const first = this.buf[this.pos] as number;
      if (first < 0x80) {
        this.pos++;
        return first;
      }
    }
    const start = this.pos;
    let result = 0;
    for (let shift = 0; shift < 49; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
    this.pos = start;
    let big = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.byte();
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return big;
    }
    throw new Error('protobuf: varint too long');
  }

  /** The end of a length-delimited field whose content starts at pos. */
  limit(): number {
    const n = Number(this.varint());
    if (this.pos + n > this.end) throw new Error('protobuf: truncated field');
    return this.pos + n;
  }

  string(): string {
    const stop = this.limit();
    const text = this.buf.toString('utf8', this.pos, stop);
    this.pos = stop;
    return text;
  }

  /** A copy of a bytes field (the result never shares the request's memory). */
  bytes(): Buffer {
    const stop = this.limit();
    const out = Buffer.allocUnsafe(stop - this.pos);
    this.buf.copy(out, 0, this.pos, stop);
    this.pos = stop;
    return out;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos = this.limit();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wire}`);
  }
}

function numberOf(raw: bigint | number, scalar: Scalar): number | boolean {
  if (scalar === 'bool') return raw !== 0 && raw !== 0n;
  if (typeof raw === 'number') return scalar === 'int32' && raw > 0x7fffffff ? raw - 2 ** 32 : raw;
  return Number(scalar === 'uint64' || scalar === 'uint32' ? raw : BigInt.asIntN(64, raw));
}

function readScalar(r: Reader, wire: number, scalar: Scalar): unknown {
  if (scalar === 'string') return r.string();
  if (scalar === 'bytes') return r.bytes();
  if (wire !== 0) throw new Error(`protobuf: wire type ${wire} for ${scalar}`);
  return numberOf(r.varint(), scalar);
}

/** Reads a nested message: its length, then its fields up to its end. */
function readNested(r: Reader, type: MessageType): Record<string, unknown> {
  const stop = r.limit();
  const outer = r.end;
  r.end = stop;
  const value = readMessage(r, type);
  // (a fixed-width field skipped at the very end may have stepped past it)
  r.pos = stop;
  r.end = outer;
  return value;
}

/** Reads the fields of a message of `type` from pos up to the reader's end. */
function readMessage(r: Reader, type: MessageType): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { byId } = type.layout;
  while (r.pos < r.end) {
    const key = Number(r.varint());
    const id = Math.floor(key / 8);
    const wire = key % 8;
    const field = byId.get(id);
    if (!field) {
      r.skip(wire);
      continue;
    }
    if (field.map) {
      const stop = r.limit();
      const outer = r.end;
      r.end = stop;
      let k = '';
      let v: unknown;
      while (r.pos < stop) {
        const ek = Number(r.varint());
        if (ek >> 3 === 1) k = r.string();
        else if (ek >> 3 === 2) v = field.map.message ? readNested(r, field.map.message) : readScalar(r, ek & 7, field.map.scalar ?? 'string');
        else r.skip(ek & 7);
      }
      r.pos = stop;
      r.end = outer;
      // keys come from the wire: a null-prototype table, so `__proto__` or
      // `constructor` are ordinary entries and never reach Object.prototype
      const map = (out[field.name] ??= Object.create(null)) as Record<string, unknown>;
      map[k] = v ?? (field.map.message ? {} : undefined);
    } else if (field.message) {
      const value = readNested(r, field.message);
      if (field.repeated) ((out[field.name] ??= []) as unknown[]).push(value);
      else out[field.name] = value;
    } else if (field.repeated) {
      const list = (out[field.name] ??= []) as unknown[];
      const scalar = field.scalar ?? 'string';
      if (wire === 2 && scalar !== 'string' && scalar !== 'bytes') {
        const stop = r.limit();
        const outer = r.end;
        r.end = stop;
        while (r.pos < stop) list.push(numberOf(r.varint(), scalar));
        r.pos = stop;
        r.end = outer;
      } else list.push(readScalar(r, wire, scalar));
    } else out[field.name] = readScalar(r, wire, field.scalar ?? 'string');
  }
  return out;
}

/** Decode bytes of a message of `type` into a plain object. */
export function decodeMessage(type: MessageType, bytes: Uint8Array): Record<string, unknown> {
  return readMessage(new Reader(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)), type);
}
