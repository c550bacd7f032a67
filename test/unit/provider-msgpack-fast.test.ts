// The DynamicValue fast path (provider/codec/msgpack-fast.ts) against the general path it stands
// in for (@msgpack/msgpack, then conformValue): whenever the fast path answers, it answers the
// same, bytes included; and decodeDynamicValue/encodeDynamicValue give the same results and the
// same errors (message and attribute path) as the general path alone, on valid and broken input.
import { describe, expect, it } from '@jest/globals';
import { encode } from '@msgpack/msgpack';
import { CodecError, conformValue, type CtyType } from '../../provider/codec/cty.js';
import { decodeDynamicValue, decodeMsgpack, encodeDynamicValue, encodeMsgpack } from '../../provider/codec/dynamic-value.js';
import { fastDecode, fastEncode } from '../../provider/codec/msgpack-fast.js';
import { isUnknown, UNKNOWN, type TfValue } from '../../provider/codec/values.js';
import { identityType, impliedType, providerSchemas } from '../../provider/schema.js';

/** A small deterministic PRNG (mulberry32), so every run tries the same cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values compared with their key order, unknowns, -0 and NaN told apart. */
function shape(value: unknown): unknown {
  if (isUnknown(value)) return { $unknown: true };
  if (typeof value === 'number') return { $number: Object.is(value, -0) ? '-0' : String(value) };
  if (typeof value === 'bigint') return { $bigint: String(value) };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === 'object') return Object.entries(value).map(([k, v]) => [k, shape(v)]);
  return value;
}

type Outcome = { value: unknown } | { error: string; path: unknown; codec: boolean };

function outcome(run: () => unknown): Outcome {
  try {
    const value = run();
    return { value: Buffer.isBuffer(value) ? { $bytes: value.toString('hex') } : shape(value) };
  } catch (err) {
    return { error: (err as Error).message, path: err instanceof CodecError ? err.path : undefined, codec: err instanceof CodecError };
  }
}

/** The general path, as dynamic-value.ts runs it when the fast path steps aside. */
function generalDecode(bytes: Uint8Array, type: CtyType): TfValue {
  let raw: unknown;
  try {
    raw = decodeMsgpack(bytes);
  } catch (err) {
    throw new CodecError(`invalid msgpack: ${(err as Error).message}`);
  }
  return conformValue(raw, type);
}

function generalEncode(value: TfValue, type: CtyType): Buffer {
  return encodeMsgpack(conformValue(value, type));
}

const STRINGS = ['', 'a', 'bench-7', 'ж', 'naïve', '日本語', '😀', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(255), 'w'.repeat(256), 'é'.repeat(40), 'v'.repeat(70000), '\uFFFD', '1', '-3.5e2', '9007199254740993', 'constructor', '__proto__', '0', '12'];
const NUMBERS = [0, -0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1, 1.5, -2.25, 1e300, Number.NaN, Infinity, -Infinity, 0.1];

const SIMPLE: CtyType = ['object', { id: 'string', labels: ['map', 'string'], on: 'bool', n: 'number', tags: ['list', 'string'], set: ['set', 'number'], pair: ['tuple', ['string', 'number']] }];
const NESTED: CtyType = ['object', { inner: ['object', { a: 'string', b: ['list', ['object', { c: 'bool' }]] }], m: ['map', ['map', 'number']], dyn: 'dynamic' }];
const PROTO_NAMES: CtyType = ['object', Object.fromEntries([['constructor', 'string'], ['name', 'string']])];

/** Every resource, data source, ephemeral resource and identity type of the real schema, and a few synthetic ones. */
function allTypes(): CtyType[] {
  const types: CtyType[] = [SIMPLE, NESTED, PROTO_NAMES, 'string', 'number', 'bool', ['list', 'string'], ['map', 'bool']];
  types.push(impliedType(providerSchemas.provider.block));
  for (const group of [providerSchemas.resource_schemas, providerSchemas.data_source_schemas, providerSchemas.ephemeral_resource_schemas]) {
    for (const schema of Object.values(group ?? {})) types.push(impliedType(schema.block));
  }
  for (const identity of Object.values(providerSchemas.resource_identity_schemas ?? {})) types.push(identityType(identity));
  return types;
}

/** A value that fits `type` (from its own choices of null, unknown, strings, numbers, …). */
function fitting(type: CtyType, rand: () => number, depth = 0): TfValue {
  const r = rand();
  if (r < 0.08) return null;
  if (r < 0.14) return UNKNOWN;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  if (type === 'string') return pick(STRINGS);
  if (type === 'number') return pick(NUMBERS);
  if (type === 'bool') return rand() < 0.5;
  if (type === 'dynamic') return null;
  const [kind, arg] = type;
  if (kind === 'list' || kind === 'set') return Array.from({ length: Math.floor(rand() * (depth > 1 ? 3 : 20)) }, () => fitting(arg, rand, depth + 1));
  if (kind === 'tuple') return arg.map((t) => fitting(t, rand, depth + 1));
  if (kind === 'map') {
    const out: Record<string, TfValue> = {};
    for (let i = Math.floor(rand() * (depth > 1 ? 3 : 18)); i > 0; i--) {
      const key = pick(STRINGS);
      if (key !== '__proto__') out[key] = fitting(arg, rand, depth + 1);
    }
    return out;
  }
  const out: Record<string, TfValue> = {};
  const names = Object.keys(arg);
  // Attributes in any order, some left out (they decode as null).
  for (const name of names.sort(() => rand() - 0.5)) if (rand() < 0.85) out[name] = fitting((arg as Record<string, CtyType>)[name] as CtyType, rand, depth + 1);
  return out;
}

/** Something that may not fit: a fitting value with one part replaced by a stranger. */
function breaking(value: TfValue, rand: () => number): unknown {
  const strangers: unknown[] = ['s', 7, true, [1], { x: 1 }, Buffer.from([1, 2]), 12n, 'not-a-number', { bogus: 'y' }];
  const stranger = strangers[Math.floor(rand() * strangers.length)];
  if (rand() < 0.3 || value === null || typeof value !== 'object' || isUnknown(value)) return stranger;
  if (Array.isArray(value)) {
    if (value.length === 0) return [stranger];
    const copy: unknown[] = [...value];
    const i = Math.floor(rand() * copy.length);
    copy[i] = breaking(copy[i] as TfValue, rand);
    return copy;
  }
  const copy: Record<string, unknown> = { ...value };
  const keys = Object.keys(copy);
  if (keys.length === 0 || rand() < 0.2) copy[rand() < 0.5 ? 'bogus' : 'constructor'] = stranger;
  else {
    const k = keys[Math.floor(rand() * keys.length)] as string;
    copy[k] = breaking(copy[k] as TfValue, rand);
  }
  return copy;
}

describe('msgpack fast path', () => {
  const types = allTypes();

  it('decodes and encodes fitting values exactly as the general path, without stepping aside', () => {
    const rand = prng(1);
    let answered = 0;
    let cases = 0;
    for (const type of types) {
      for (let i = 0; i < 150; i++) {
        const value = fitting(type, rand);
        cases++;
        const general = outcome(() => generalEncode(value, type));
        expect(outcome(() => encodeDynamicValue(value, type).msgpack)).toEqual(general);
        const fast = fastEncode(value, type);
        if (fast !== undefined) expect({ value: { $bytes: fast.toString('hex') } }).toEqual(general);
        if (!('value' in general)) continue;
        const bytes = generalEncode(value, type);
        const decodedGeneral = outcome(() => generalDecode(bytes, type));
        expect(outcome(() => decodeDynamicValue({ msgpack: bytes }, type))).toEqual(decodedGeneral);
        const decodedFast = fastDecode(bytes, type);
        if (decodedFast !== undefined) expect({ value: shape(decodedFast) }).toEqual(decodedGeneral);
        // Only the constructor-named type and strings that hold U+FFFD are left to the general path.
        if (fast !== undefined && decodedFast !== undefined) answered++;
      }
    }
    expect(answered / cases).toBeGreaterThan(0.6);
  });

  it('gives the general path\'s errors, with their paths, for values that do not fit', () => {
    const rand = prng(2);
    for (const type of types) {
      for (let i = 0; i < 150; i++) {
        const value = breaking(fitting(type, rand), rand) as TfValue;
        const general = outcome(() => generalEncode(value, type));
        expect(outcome(() => encodeDynamicValue(value, type).msgpack)).toEqual(general);
        const fast = outcome(() => fastEncode(value, type) ?? 'stepped aside');
        if (!('value' in fast) || fast.value !== 'stepped aside') expect(fast).toEqual(general);
        // The same stranger on the wire, as core or a broken peer could send it.
        let bytes: Uint8Array;
        try {
          bytes = encodeMsgpack(value);
        } catch {
          continue;
        }
        expect(outcome(() => decodeDynamicValue({ msgpack: bytes }, type))).toEqual(outcome(() => generalDecode(bytes, type)));
      }
    }
  });

  it('agrees on truncated, extended and corrupted bytes', () => {
    const rand = prng(3);
    for (const type of types) {
      for (let i = 0; i < 60; i++) {
        const fit = outcome(() => generalEncode(fitting(type, rand), type));
        if (!('value' in fit)) continue;
        const good = Buffer.from((fit.value as { $bytes: string }).$bytes, 'hex');
        const variants: Buffer[] = [good.subarray(0, Math.floor(rand() * good.length)), Buffer.concat([good, Buffer.from([0xc0])])];
        const flipped = Buffer.from(good);
        for (let k = 0; k < 3 && flipped.length > 0; k++) flipped[Math.floor(rand() * flipped.length)] = Math.floor(rand() * 256);
        variants.push(flipped);
        for (const bytes of variants) {
          if (bytes.length === 0) continue;
          expect(outcome(() => decodeDynamicValue({ msgpack: bytes }, type))).toEqual(outcome(() => generalDecode(bytes, type)));
        }
      }
    }
  });

  it.each<[string, string, CtyType]>([
    ['every extension form as unknown', '87a161d40000a162d6050000000aa163c7020c0102a164c800030c000102a165c90000000100ffa166d80000000000000000000000000000000000a167d5000000', ['object', { a: 'number', b: 'string', c: 'bool', d: 'string', e: 'string', f: ['list', 'string'], g: ['map', 'string'] }]],
    ['float32, uint64 and int64', '93ca3fc00000cf0000000100000001d3fffffffeffffffff', ['list', 'number']],
    ['a number sent as a string', '91b039303037313939323534373430393933', ['list', 'number']],
    ['a map with integer-like keys', '83a162c3a131c2a130c3', ['map', 'bool']],
    ['an object with a repeated key', '82a161a178a161a179', ['object', { a: 'string' }]],
    ['str 8/16 and array 16', 'dc0001d90161', ['list', 'string']],
    ['a non-string map key', '8101c3', ['map', 'bool']],
    ['a __proto__ map key', '81a95f5f70726f746f5f5fc3', ['map', 'bool']],
    ['malformed UTF-8', '91a2c328', ['list', 'string']],
    ['an overlong key', '81a2c1a1a178', ['object', { a: 'string' }]],
    ['binary data', '91c40101', ['list', 'string']],
    ['a tuple of the wrong length', '920101', ['tuple', ['number']]],
  ])('%s', (_name, hex, type) => {
    const bytes = Buffer.from(hex, 'hex');
    expect(outcome(() => decodeDynamicValue({ msgpack: bytes }, type))).toEqual(outcome(() => generalDecode(bytes, type)));
    const fast = fastDecode(bytes, type);
    if (fast !== undefined) expect(shape(fast)).toEqual(shape(generalDecode(bytes, type)));
  });

  it('writes what @msgpack/msgpack writes for numbers and strings at every size boundary', () => {
    for (const n of NUMBERS) expect(fastEncode(n, 'number')?.toString('hex')).toBe(Buffer.from(encode(n)).toString('hex'));
    for (const s of STRINGS) expect(fastEncode(s, 'string')?.toString('hex')).toBe(Buffer.from(encode(s)).toString('hex'));
    // A lone surrogate: left to the general path, which writes what it always wrote.
    expect(fastEncode('a\uD800b', 'string')).toBeUndefined();
    expect(encodeDynamicValue('a\uD800b', 'string').msgpack).toEqual(generalEncode('a\uD800b', 'string'));
  });
});
