import { describe, it, expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainChecker, GENESIS_PREV, canonicalJson, hashEvent, pickAuditFields, readLines } from '../../daemon/audit/chain.js';
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

describe('hashEvent', () => {
  it('is the SHA-256 of the canonical JSON without hash, including seq and prev', () => {
    const unhashed = { ...base, seq: 1, prev: GENESIS_PREV };
    const expected = createHash('sha256')
      .update(
        `{"keyId":"key-1","operation":"SymmetricCrypto.Encrypt","prev":"${GENESIS_PREV}","requestId":"req-1",` +
          '"result":"OK","seq":1,"subject":"userAccount:alice","time":"2024-05-01T10:00:00.000Z"}',
      )
      .digest('hex');
    expect(hashEvent(unhashed)).toBe(expected);
    expect(hashEvent({ ...unhashed, hash: 'ignored' })).toBe(expected);
    expect(hashEvent({ ...unhashed, seq: 2 })).not.toBe(expected);
  });
});

describe('pickAuditFields', () => {
  it('keeps only audit fields, so a secret passed by mistake never reaches the disk', () => {
    const leaky = { ...base, plaintext: 'c2VjcmV0', token: 'Bearer abc', versionId: undefined } as AuditEvent;
    expect(pickAuditFields(leaky)).toEqual(base);
  });

  it.each([
    ['a missing subject', { ...base, subject: undefined }, /field "subject" is missing or not a string/],
    ['a numeric keyId', { ...base, keyId: 7 }, /field "keyId" is not a string/],
    ['a time that is not RFC 3339', { ...base, time: 'yesterday' }, /field "time" is not an RFC 3339 date-time: "yesterday"/],
    ['an impossible date', { ...base, time: '2024-13-45T00:00:00Z' }, /field "time" is not an RFC 3339 date-time/],
  ])('rejects %s', (_name, event, message) => {
    expect(() => pickAuditFields(event as unknown as AuditEvent)).toThrow(message);
  });
});

describe('ChainChecker', () => {
  function line(seq: number, prev: string, overrides: Record<string, unknown> = {}) {
    const unhashed = { ...base, requestId: `req-${seq}`, seq, prev, ...overrides };
    const event = { ...unhashed, hash: hashEvent(unhashed) };
    return { event, bytes: Buffer.from(canonicalJson(event)) };
  }

  it('accepts a chain and tracks its head', () => {
    const checker = new ChainChecker();
    const first = line(1, GENESIS_PREV);
    const second = line(2, first.event.hash);
    expect(checker.check(first.bytes)).toEqual({ ok: true, event: first.event });
    expect(checker.check(second.bytes).ok).toBe(true);
    expect(checker.count).toBe(2);
    expect(checker.head).toBe(second.event.hash);
  });

  it.each([
    ['an empty line', () => Buffer.alloc(0), 'line is empty', true],
    ['garbage', () => Buffer.from('{"seq":1,'), 'not valid JSON', true],
    ['a JSON array', () => Buffer.from('[1]'), 'not a JSON object', true],
    ['a first line whose prev is not zeros', () => line(1, 'a'.repeat(64)).bytes, 'prev must be 64 zeros on the first line', false],
    ['a first line with seq 2', () => line(2, GENESIS_PREV).bytes, 'seq is 2, expected 1', false],
    ['a bad prev format', () => line(1, 'xyz').bytes, 'field "prev" is missing or not a hex SHA-256', false],
    ['a fractional seq', () => line(1.5, GENESIS_PREV).bytes, 'field "seq" is missing or not a positive integer', false],
  ])('rejects %s', (_name, bytes, reason, unparseable) => {
    const result = new ChainChecker().check(bytes());
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toContain(reason);
      expect(result.unparseable).toBe(unparseable);
    }
  });

  it('does not advance past a rejected line', () => {
    const checker = new ChainChecker();
    checker.check(Buffer.from('nope'));
    expect(checker.count).toBe(0);
    expect(checker.check(line(1, GENESIS_PREV).bytes).ok).toBe(true);
  });
});

describe('readLines', () => {
  function linesOf(content: string, chunkSize: number) {
    const dir = mkdtempSync(join(tmpdir(), 'kms-audit-lines-'));
    const path = join(dir, 'f');
    writeFileSync(path, content);
    const fd = openSync(path, 'r');
    try {
      return [...readLines(fd, chunkSize)].map((l) => ({ text: l.bytes.toString('utf8'), offset: l.offset, terminated: l.terminated }));
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
