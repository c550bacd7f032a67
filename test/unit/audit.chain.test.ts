import { describe, it, expect } from '@jest/globals';
import { createHash, createHmac } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUDIT_FIELD_LIMITS,
  ChainChecker,
  GENESIS_PREV,
  LegacyChainChecker,
  canonicalEventJson,
  canonicalJson,
  capField,
  legacyHash,
  lineWithMac,
  macOf,
  pickAuditFields,
  readLinesSync,
} from '../../daemon/audit/chain.js';
import { unroutedOperation } from '../../daemon/http/router.js';

const KEY = Buffer.alloc(32, 7);
import type { AuditEvent } from '../../daemon/domain/ports.js';

const base: AuditEvent = {
  time: '2024-05-01T10:00:00.000Z',
  requestId: 'req-1',
  subject: 'userAccount:alice',
  operation: 'SymmetricCrypto.Encrypt',
  keyId: 'key-1',
  result: 'OK',
};

describe('canonicalJson', () => {
  it.each([
    ['sorts keys', { b: 1, a: 2 }, '{"a":2,"b":1}'],
    ['sorts nested keys and keeps array order', { z: [{ y: 1, x: 2 }, 3], a: { d: true, c: null } }, '{"a":{"c":null,"d":true},"z":[{"x":2,"y":1},3]}'],
    ['omits undefined members', { a: undefined, b: 'x' }, '{"b":"x"}'],
    ['escapes strings like JSON.stringify', { s: 'quote " newline \n é' }, '{"s":"quote \\" newline \\n é"}'],
    ['has no whitespace', { a: [1, 2], b: { c: 'd e' } }, '{"a":[1,2],"b":{"c":"d e"}}'],
  ])('%s', (_name, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it.each([
    ['NaN', { n: Number.NaN }],
    ['Infinity', { n: Infinity }],
    ['a bigint', { n: 1n }],
  ])('refuses %s rather than hashing something JSON cannot hold', (_name, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });
});

describe('the keyed MAC', () => {
  const keyring = { description: 'test', mac: (data: Buffer) => createHmac('sha256', KEY).update(data).digest() };

  it('is HMAC-SHA256 of the canonical JSON without mac, including seq and prev, and is inserted in key order', () => {
    const unmacced = canonicalJson({ ...base, seq: 1, prev: GENESIS_PREV });
    expect(unmacced).toBe(
      `{"keyId":"key-1","operation":"SymmetricCrypto.Encrypt","prev":"${GENESIS_PREV}","requestId":"req-1",` +
        '"result":"OK","seq":1,"subject":"userAccount:alice","time":"2024-05-01T10:00:00.000Z"}',
    );
    const mac = macOf(keyring, unmacced);
    expect(mac).toBe(createHmac('sha256', KEY).update(unmacced, 'utf8').digest('hex'));
    const line = lineWithMac(unmacced, mac);
    expect(line).toBe(canonicalJson({ ...base, seq: 1, prev: GENESIS_PREV, mac }));
  });

  it.each([
    ['no folder or key', { time: base.time, requestId: 'r', subject: 's', operation: 'o', result: 'OK' }],
    ['details with an "operation" member', { ...base, subject: 'system:audit', details: { operation: 'x', segments: ['a', 'b'], n: 3 } }],
    ['values that mention operation', { ...base, keyId: '"operation":', requestId: ',"operation":"x"' }],
  ])('lineWithMac equals the canonical JSON of the event with its mac (%s)', (_name, event) => {
    const unmacced = canonicalJson({ ...event, seq: 9, prev: GENESIS_PREV });
    expect(lineWithMac(unmacced, 'f'.repeat(64))).toBe(canonicalJson({ ...event, seq: 9, prev: GENESIS_PREV, mac: 'f'.repeat(64) }));
  });

  it('the legacy hash is the unkeyed SHA-256 without hash', () => {
    const record = { ...base, seq: 1, prev: GENESIS_PREV };
    expect(legacyHash({ ...record, hash: 'x' })).toBe(createHash('sha256').update(canonicalJson(record)).digest('hex'));
  });
});

describe('pickAuditFields', () => {
  it('keeps only audit fields, so a secret passed by mistake never reaches the disk', () => {
    const leaky = { ...base, plaintext: 'c2VjcmV0', token: 'Bearer abc', versionId: undefined } as AuditEvent;
    expect(pickAuditFields(leaky)).toEqual(base);
  });

  it('cuts every field to its cap, ending in "…"', () => {
    const long = 'x'.repeat(10_000);
    const picked = pickAuditFields({ ...base, requestId: long, subject: long, operation: long, folderId: long, keyId: long, versionId: long, result: long, remoteAddress: long });
    for (const field of ['requestId', 'subject', 'operation', 'folderId', 'keyId', 'versionId', 'result', 'remoteAddress'] as const) {
      const value = picked[field] as string;
      expect(value).toHaveLength(AUDIT_FIELD_LIMITS[field]);
      expect(value.endsWith('…')).toBe(true);
    }
    expect(AUDIT_FIELD_LIMITS).toMatchObject({ operation: 256, keyId: 64, folderId: 64, remoteAddress: 64 });
    expect(Buffer.byteLength(canonicalJson(picked))).toBeLessThan(2048);
  });

  it('never splits a surrogate pair and leaves short values alone', () => {
    expect(capField('ab😀cd', 4)).toBe('ab…');
    expect(capField('abc', 3)).toBe('abc');
  });

  it('agrees with the router on the bound of an unrouted call’s operation, whatever its path', () => {
    const operation = unroutedOperation('GET', `/${'a'.repeat(8192)}`);
    expect(operation).toHaveLength(AUDIT_FIELD_LIMITS.operation);
    expect(pickAuditFields({ ...base, operation }).operation).toBe(operation);
    expect(operation.startsWith('GET /aaa')).toBe(true);
    expect(unroutedOperation('POST', '/nope')).toBe('POST /nope');
  });

  it('keeps bounded details of a system event in a null-prototype object', () => {
    const picked = pickAuditFields({ ...base, details: { segments: ['a'.repeat(300)], lastSeq: 5, reason: 'retention' } });
    expect(Object.getPrototypeOf(picked.details)).toBeNull();
    expect((picked.details!.segments as string[])[0]).toHaveLength(256);
    expect(picked.details!.lastSeq).toBe(5);
  });

  it.each([
    ['a missing subject', { ...base, subject: undefined }, /field "subject" is missing or not a string/],
    ['a numeric keyId', { ...base, keyId: 7 }, /field "keyId" is not a string/],
    ['a time that is not RFC 3339', { ...base, time: 'yesterday' }, /field "time" is not an RFC 3339 date-time: "yesterday"/],
    ['an impossible date', { ...base, time: '2024-13-45T00:00:00Z' }, /field "time" is not an RFC 3339 date-time/],
    ['details that are a list', { ...base, details: ['x'] }, /field "details" is not an object/],
    ['too many details', { ...base, details: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 1])) }, /more than 16 entries/],
    ['a details name that is not an identifier', { ...base, details: { '__proto__ x': 1 } }, /is not a short identifier/],
    ['a details value that is an object', { ...base, details: { nested: { a: 1 } } }, /details.nested is not a string, an integer or a list of strings/],
    ['a details list that is too long', { ...base, details: { list: Array.from({ length: 65 }, () => 'x') } }, /details.list has more than 64 items/],
  ])('rejects %s', (_name, event, message) => {
    expect(() => pickAuditFields(event as unknown as AuditEvent)).toThrow(message);
  });
});

describe('ChainChecker', () => {
  const keyring = { description: 'test', mac: (data: Buffer) => createHmac('sha256', KEY).update(data).digest() };
  function line(seq: number, prev: string, overrides: Record<string, unknown> = {}) {
    const unmacced = { ...base, requestId: `req-${seq}`, seq, prev, ...overrides };
    const event = { ...unmacced, mac: macOf(keyring, canonicalJson(unmacced)) };
    return { event, bytes: Buffer.from(canonicalJson(event)) };
  }

  it('accepts a chain and tracks its head', () => {
    const checker = new ChainChecker(keyring);
    const first = line(1, GENESIS_PREV);
    const second = line(2, first.event.mac);
    expect(checker.check(first.bytes)).toMatchObject({ ok: true, event: first.event });
    expect(checker.check(second.bytes).ok).toBe(true);
    expect(checker.count).toBe(2);
    expect(checker.head).toBe(second.event.mac);
  });

  it.each([
    ['an empty line', () => Buffer.alloc(0), 'line is empty', true],
    ['garbage', () => Buffer.from('{"seq":1,'), 'not valid JSON', true],
    ['a JSON array', () => Buffer.from('[1]'), 'not a JSON object', true],
    ['a first line whose prev is not zeros', () => line(1, 'a'.repeat(64)).bytes, 'prev must be 64 zeros on the first line', false],
    ['a first line with seq 2', () => line(2, GENESIS_PREV).bytes, 'seq is 2, expected 1', false],
    ['a bad prev format', () => line(1, 'xyz').bytes, 'field "prev" is missing or not 64 hex digits', false],
    ['a fractional seq', () => line(1.5, GENESIS_PREV).bytes, 'field "seq" is missing or not a positive integer', false],
    ['an edited field', () => Buffer.from(line(1, GENESIS_PREV).bytes.toString().replace('"result":"OK"', '"result":"NO"')), 'mac does not match the line content under the audit key', false],
    ['a line with an unkeyed SHA-256 as mac', () => {
      const unmacced = { ...base, seq: 1, prev: GENESIS_PREV };
      return Buffer.from(canonicalJson({ ...unmacced, mac: createHash('sha256').update(canonicalJson(unmacced)).digest('hex') }));
    }, 'mac is the unkeyed SHA-256 of the line', false],
    ['a line MACed under another key', () => {
      const unmacced = { ...base, seq: 1, prev: GENESIS_PREV };
      return Buffer.from(canonicalJson({ ...unmacced, mac: createHmac('sha256', Buffer.alloc(32, 8)).update(canonicalJson(unmacced)).digest('hex') }));
    }, 'or written under another key', false],
  ])('rejects %s', (_name, bytes, reason, unparseable) => {
    const result = new ChainChecker(keyring).check(bytes());
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toContain(reason);
      expect(result.unparseable).toBe(unparseable);
    }
  });

  it('does not advance past a rejected line', () => {
    const checker = new ChainChecker(keyring);
    checker.check(Buffer.from('nope'));
    expect(checker.count).toBe(0);
    expect(checker.check(line(1, GENESIS_PREV).bytes).ok).toBe(true);
  });

  it('checks legacy lines with the unkeyed rules and serves their hash as mac', () => {
    const unhashed = { ...base, seq: 1, prev: GENESIS_PREV };
    const hash = legacyHash(unhashed);
    const result = new LegacyChainChecker().check(Buffer.from(canonicalJson({ ...unhashed, hash })));
    expect(result).toMatchObject({ ok: true, event: { seq: 1, mac: hash } });
    expect(new LegacyChainChecker().check(Buffer.from(canonicalJson({ ...unhashed, hash: 'a'.repeat(64) })))).toMatchObject({ ok: false, reason: expect.stringContaining('hash does not match') });
  });
});

describe('readLinesSync', () => {
  function linesOf(content: string, chunkSize: number) {
    const dir = mkdtempSync(join(tmpdir(), 'kms-audit-lines-'));
    const path = join(dir, 'f');
    writeFileSync(path, content);
    const fd = openSync(path, 'r');
    try {
      return [...readLinesSync(fd, chunkSize)].map((l) => ({ text: l.bytes.toString('utf8'), offset: l.offset, terminated: l.terminated }));
    } finally {
      closeSync(fd);
    }
  }

  it.each([1, 2, 3, 7, 1024])('splits lines with offsets across chunk boundaries (chunk %i)', (chunkSize) => {
    expect(linesOf('ab\n\nçé\nlast', chunkSize)).toEqual([
      { text: 'ab', offset: 0, terminated: true },
      { text: '', offset: 3, terminated: true },
      { text: 'çé', offset: 4, terminated: true },
      { text: 'last', offset: 9, terminated: false },
    ]);
  });

  it('yields nothing for an empty file and no fragment after a final newline', () => {
    expect(linesOf('', 4)).toEqual([]);
    expect(linesOf('x\n', 4)).toEqual([{ text: 'x', offset: 0, terminated: true }]);
  });
});

describe('canonicalEventJson', () => {
  const strings = ['', 'plain', 'quote " and \\ backslash', 'ünïcødé ✓ 🔑', 'line\nbreak\ttab', '\u0000\u001f control', 'x'.repeat(300)];
  const pick = (i: number) => strings[i % strings.length] as string;
  const cases: AuditEvent[] = [];
  for (let i = 0; i < 60; i++) {
    const event: AuditEvent = {
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      requestId: `req-${pick(i)}`,
      subject: pick(i + 1),
      operation: pick(i + 2),
      result: i % 3 === 0 ? 'OK' : pick(i + 3),
    };
    if (i % 2 === 0) event.folderId = pick(i + 4);
    if (i % 3 === 0) event.keyId = pick(i + 5);
    if (i % 4 === 0) event.versionId = pick(i + 6);
    if (i % 5 === 0) event.remoteAddress = pick(i + 7);
    if (i % 7 === 0) event.details = { reason: pick(i), count: i, segments: [pick(i), pick(i + 1)] };
    cases.push(pickAuditFields(event));
  }
  it.each(cases.map((event, i) => [i, event] as const))('case %i is byte for byte the generic canonical JSON', (i, event) => {
    const prev = i === 0 ? GENESIS_PREV : 'ab'.repeat(32);
    expect(canonicalEventJson(event, i + 1, prev)).toBe(canonicalJson({ ...event, seq: i + 1, prev }));
  });
});
