import { describe, expect, it } from '@jest/globals';
import { CodecError, conformValue, ctyTypeJson, parseCtyType, type CtyType } from '../../provider/codec/cty.js';
import { decodeDynamicValue, decodeJsonValue, decodeMsgpack, encodeDynamicValue, encodeMsgpack } from '../../provider/codec/dynamic-value.js';
import { formatGoDuration, goDurationSeconds, parseApiDuration, parseGoDuration, sameGoDuration } from '../../provider/codec/duration.js';
import { isUnknown, UNKNOWN, valuesEqual, type TfValue } from '../../provider/codec/values.js';

const OBJ: CtyType = ['object', { id: 'string', labels: ['map', 'string'], on: 'bool', n: 'number' }];

describe('msgpack DynamicValue', () => {
  it('writes unknown as the canonical d4 00 00', () => {
    expect(encodeMsgpack(UNKNOWN).toString('hex')).toBe('d40000');
  });

  it.each([
    ['extension type 0 (classic unknown)', 'd40000'],
    ['extension type 12 with a payload (refined unknown)', 'c7030c0a0b0c'],
    ['fixext 4 of another type', 'd6050000000a'],
  ])('reads %s as unknown', (_name, hex) => {
    expect(isUnknown(decodeMsgpack(Buffer.from(hex, 'hex')))).toBe(true);
  });

  it('round-trips an object with nulls, unknowns, maps and numbers', () => {
    const value: TfValue = { id: UNKNOWN, labels: { env: 'dev' }, on: null, n: 3 };
    const decoded = decodeDynamicValue(encodeDynamicValue(value, OBJ), OBJ);
    expect(valuesEqual(decoded, value)).toBe(true);
  });

  it('decodes msgpack nil and an absent DynamicValue as null', () => {
    expect(decodeDynamicValue({ msgpack: Buffer.from('c0', 'hex') }, OBJ)).toBeNull();
    expect(decodeDynamicValue(undefined, OBJ)).toBeNull();
  });

  it('writes an object with exactly one key per attribute, nil for missing ones', () => {
    const raw = decodeMsgpack(encodeDynamicValue({ id: 'x' }, OBJ).msgpack) as Record<string, unknown>;
    expect(Object.keys(raw).sort()).toEqual(['id', 'labels', 'n', 'on']);
    expect(raw['labels']).toBeNull();
  });

  it('refuses an extra attribute when encoding', () => {
    expect(() => encodeDynamicValue({ id: 'x', bogus: 'y' }, OBJ)).toThrow('unsupported attribute "bogus"');
  });

  it('reports a decode failure with the attribute path, never an empty object', () => {
    const bytes = encodeMsgpack({ id: 'x', labels: { env: 5 }, on: null, n: null });
    let caught: unknown;
    try {
      decodeDynamicValue({ msgpack: bytes }, OBJ);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CodecError);
    expect((caught as CodecError).message).toBe('expected a string, got a number');
    expect((caught as CodecError).path).toEqual([{ attribute: 'labels' }, { key: 'env' }]);
  });

  it('fails on bytes that are not msgpack', () => {
    expect(() => decodeDynamicValue({ msgpack: Buffer.from('c1', 'hex') }, OBJ)).toThrow(/invalid msgpack/);
  });

  it('accepts numbers beyond 2^53 sent as decimal strings', () => {
    expect(conformValue('9007199254740993', 'number')).toBe(9007199254740992);
  });
});

describe('JSON state', () => {
  it('fills missing attributes with null and drops ones the schema no longer has', () => {
    const state = decodeJsonValue('{"id":"k1","old_attr":"x","labels":{"a":"b"}}', OBJ);
    expect(state).toEqual({ id: 'k1', labels: { a: 'b' }, on: null, n: null });
  });

  it('rejects malformed JSON and wrong types with a path', () => {
    expect(() => decodeJsonValue('{', OBJ)).toThrow(/invalid JSON/);
    expect(() => decodeJsonValue('{"on":"yes"}', OBJ)).toThrow('expected a bool, got a string');
  });
});

describe('cty type JSON', () => {
  it.each<[string, CtyType, string]>([
    ['string', 'string', '"string"'],
    ['map of string', ['map', 'string'], '["map","string"]'],
    ['set of string', ['set', 'string'], '["set","string"]'],
    ['object', ['object', { a: 'bool' }], '["object",{"a":"bool"}]'],
  ])('%s', (_name, type, json) => {
    expect(ctyTypeJson(type).toString()).toBe(json);
    expect(parseCtyType(JSON.parse(json))).toEqual(type);
  });

  it('refuses an unknown type', () => {
    expect(() => parseCtyType(['bag', 'string'])).toThrow('unsupported cty type');
  });
});

describe('Go durations', () => {
  it.each<[string, number]>([
    ['24h', 86400],
    ['8760h', 31536000],
    ['1h30m', 5400],
    ['86400s', 86400],
    ['1.5h', 5400],
    ['90m', 5400],
    ['1h0m0s', 3600],
    ['3600000ms', 3600],
    ['0', 0],
  ])('%s is %i seconds', (input, seconds) => {
    expect(goDurationSeconds(input)).toEqual({ seconds });
  });

  it.each<[string, RegExp]>([
    ['', /empty/],
    ['24', /number followed by a unit/],
    ['1d', /unknown unit "d"/],
    ['h', /number before the unit/],
    ['1.h5', /number followed by a unit/],
    ['99999999999h', /too large/],
    ['1500ms', /not a whole number of seconds/],
  ])('%j is refused', (input, message) => {
    const result = goDurationSeconds(input);
    expect('error' in result && result.error).toMatch(message);
  });

  it('parses exactly like Go, in nanoseconds', () => {
    expect(parseGoDuration('1µs')).toBe(1000n);
    expect(parseGoDuration('-1.5s')).toBe(-1_500_000_000n);
  });

  it.each<[number, string]>([
    [86400, '24h'],
    [5400, '1h30m'],
    [3661, '1h1m1s'],
    [90, '1m30s'],
    [0, '0s'],
  ])('formats %i seconds as %s', (seconds, text) => {
    expect(formatGoDuration(seconds)).toBe(text);
  });

  it('compares durations by length, not spelling', () => {
    expect(sameGoDuration('24h', '1440m')).toBe(true);
    expect(sameGoDuration('24h', '86400s')).toBe(true);
    expect(sameGoDuration('24h', '25h')).toBe(false);
    expect(sameGoDuration('24h', 'garbage')).toBe(false);
  });

  it('reads API durations', () => {
    expect(parseApiDuration('86400s')).toBe(86400);
    expect(parseApiDuration('1.5s')).toBe(1.5);
    expect(parseApiDuration('24h')).toBeUndefined();
  });
});
