/**
 * The segmented audit trail (daemon/audit/trail.ts) with the software keystore's MAC key and
 * anchor file: write path, rotation, paging, retention, start-up repair and refusal, faults.
 */
import { describe, it, expect } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { appendFileSync, chmodSync, constants, copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GENESIS_PREV, canonicalJson, legacyHash } from '../../daemon/audit/chain.js';
import { auditDir } from '../../daemon/audit/segments.js';
import { AuditIntegrityError, CorruptAuditLogError, openAuditLog, type AuditFileHandle, type AuditTrailOptions, type SegmentedAuditLog } from '../../daemon/audit/trail.js';
import { verifyTrail } from '../../daemon/audit/verify.js';
import { KmsError } from '../../daemon/domain/errors.js';
import type { AuditEvent, ChainedAuditEvent } from '../../daemon/domain/ports.js';
import { SOFTWARE_AUDIT_KEY_FILE, openSoftwareKeystore } from '../../daemon/keystore/software.js';
import { readTrailEvents, segmentPaths, segmentText, trailLines } from '../support/audit.js';

function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'kms-trail-'));
}

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);

function event(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(T0 + n * 1000).toISOString(),
    requestId: `req-${n}`,
    subject: 'userAccount:alice',
    operation: 'SymmetricCrypto.Encrypt',
    folderId: 'folder-1',
    keyId: 'key-1',
    result: 'OK',
    ...overrides,
  };
}

function warnings() {
  const messages: string[] = [];
  const errors: string[] = [];
  return { messages, errors, logger: { warn: (m: string) => void messages.push(m), error: (m: string) => void errors.push(m), info: () => undefined } };
}

async function openTrail(dataDir: string, options: Partial<AuditTrailOptions> = {}): Promise<SegmentedAuditLog> {
  // The events are of May 2024: a clock of that day keeps retention (365 days) from pruning them.
  return openAuditLog(dataDir, { keystore: openSoftwareKeystore({ dataDir }), now: () => new Date(T0 + 3600_000), ...options });
}

async function trailWith(count: number, options: Partial<AuditTrailOptions> = {}, make: (n: number) => AuditEvent = event) {
  const dataDir = tempDataDir();
  const log = await openTrail(dataDir, options);
  for (let n = 1; n <= count; n++) log.append(make(n));
  await log.flush();
  return { dataDir, log };
}

async function verify(dataDir: string) {
  const keystore = openSoftwareKeystore({ dataDir, allowCreate: false });
  return verifyTrail(dataDir, keystore.auditKeyring({ allowCreate: false }), keystore.auditAnchorStore({ allowCreate: false }));
}

function auditKey(dataDir: string): Buffer {
  return Buffer.from(readFileSync(join(dataDir, SOFTWARE_AUDIT_KEY_FILE), 'utf8').trim(), 'base64');
}

function anchorOf(dataDir: string): { seq: number; mac: string } {
  return JSON.parse(readFileSync(join(dataDir, 'software-audit-anchor.json'), 'utf8')) as { seq: number; mac: string };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function allPages(log: SegmentedAuditLog, query: Record<string, unknown>, pageSize: number, between?: () => Promise<void>): Promise<number[]> {
  const seen: number[] = [];
  let token: string | undefined;
  do {
    const page = await log.query({ ...query, pageSize, ...(token === undefined ? {} : { pageToken: token }) });
    seen.push(...page.events.map((e) => e.seq));
    token = page.nextPageToken;
    await between?.();
  } while (token !== undefined);
  return seen;
}

describe('the write path', () => {
  it('creates audit/ (0700) and a first segment (0600), and writes one HMAC-chained canonical line per event', async () => {
    const { dataDir, log } = await trailWith(3);
    await log.close();
    expect(statSync(auditDir(dataDir)).mode & 0o777).toBe(0o700);
    const [segment] = segmentPaths(dataDir);
    expect(segment).toMatch(/seg-00000000000000000001\.jsonl$/);
    expect(statSync(segment!).mode & 0o777).toBe(0o600);
    const lines = trailLines(dataDir);
    const events = lines.map((l) => JSON.parse(l) as ChainedAuditEvent);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(events[0]!.prev).toBe(GENESIS_PREV);
    const key = auditKey(dataDir);
    // As the README tells an external verifier: the chain key is HMAC-SHA256 under the audit key
    // over "kmsd-audit-chain-key-v1:<chainKey>", and each mac is HMAC-SHA256 under the chain key.
    expect(events[0]!.chainKey).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(events.map((e) => e.chainKey)).size).toBe(1);
    const chainKey = createHmac('sha256', key).update(`kmsd-audit-chain-key-v1:${events[0]!.chainKey}`).digest();
    events.forEach((e, i) => {
      const { mac, ...rest } = e;
      expect(mac).toBe(createHmac('sha256', chainKey).update(canonicalJson(rest)).digest('hex'));
      expect(lines[i]).toBe(canonicalJson(e));
      if (i > 0) expect(e.prev).toBe(events[i - 1]!.mac);
    });
    expect(events[0]).toMatchObject({ ...event(1) });
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 3, segments: 1, headSeq: 3 });
  });

  it('continues seq and prev after a reopen', async () => {
    const { dataDir, log } = await trailWith(2);
    await log.close();
    const again = await openTrail(dataDir);
    expect((await again.query({})).events.map((e) => e.requestId)).toEqual(['req-1', 'req-2']);
    again.append(event(3));
    await again.close();
    const events = readTrailEvents(dataDir);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(events[2]!.prev).toBe(events[1]!.mac);
    expect((await verify(dataDir)).ok).toBe(true);
  });

  it('flush resolves only once the caller’s event is durable, and group-commits bursts', async () => {
    const dataDir = tempDataDir();
    const log = await openTrail(dataDir);
    const flushes: Promise<void>[] = [];
    for (let n = 1; n <= 500; n++) {
      log.append(event(n % 60, { requestId: `burst-${n}` }));
      if (n % 50 === 0) flushes.push(log.flush());
    }
    await Promise.all(flushes);
    expect(trailLines(dataDir)).toHaveLength(500);
    log.append(event(1, { requestId: 'during' }));
    const during = log.flush();
    log.append(event(2, { requestId: 'after' }));
    await during;
    await log.flush();
    expect(readTrailEvents(dataDir).slice(-2).map((l) => l.requestId)).toEqual(['during', 'after']);
    await log.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 502 });
  });

  it('close flushes; appends after close are refused', async () => {
    const dataDir = tempDataDir();
    const log = await openTrail(dataDir);
    log.append(event(1));
    await log.close();
    await log.close();
    expect(trailLines(dataDir)).toHaveLength(1);
    expect(() => log.append(event(2))).toThrow(/audit trail .* is closed/);
  });

  it('drops fields that are not audit fields, caps long ones and refuses malformed events', async () => {
    const dataDir = tempDataDir();
    const log = await openTrail(dataDir);
    log.append({ ...event(1), plaintext: 'c2VjcmV0' } as AuditEvent);
    log.append({ ...event(2), subject: 'anonymous', operation: `GET /${'p'.repeat(8192)}`, keyId: 'k'.repeat(8192) });
    expect(() => log.append({ ...event(3), result: undefined } as unknown as AuditEvent)).toThrow('invalid audit event: field "result" is missing or not a string');
    await log.close();
    const lines = trailLines(dataDir);
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toContain('plaintext');
    expect(Buffer.byteLength(lines[1]!)).toBeLessThan(1024);
    expect(JSON.parse(lines[1]!).operation).toHaveLength(256);
  });

  it('writes the head anchor after events are durable, at most once per interval, and at close', async () => {
    const { dataDir, log } = await trailWith(5, { anchorIntervalMs: 20 });
    await waitFor(() => anchorOf(dataDir).seq === 5, 'the anchor to reach seq 5');
    expect(anchorOf(dataDir).mac).toBe(readTrailEvents(dataDir)[4]!.mac);
    log.append(event(6));
    await log.close();
    expect(anchorOf(dataDir).seq).toBe(6);
  });
});

describe('segments', () => {
  const small = { segmentBytes: 4096 };

  it('rotates by size into segments with MACed indexes, seals them read-only, and verify accepts the whole', async () => {
    const { dataDir, log } = await trailWith(120, small);
    await log.close();
    const paths = segmentPaths(dataDir);
    expect(paths.length).toBeGreaterThan(3);
    for (const path of paths.slice(0, -1)) {
      expect(statSync(path).size).toBeLessThanOrEqual(4096);
      expect(statSync(path).mode & 0o777).toBe(0o400);
      expect(existsSync(path.replace(/\.jsonl$/, '.idx.json'))).toBe(true);
    }
    const events = readTrailEvents(dataDir);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
    // Each segment is named after its first seq and chains to the previous one.
    const firstSeqs = paths.map((p) => Number(/seg-(\d+)/.exec(p)![1]));
    expect(firstSeqs[0]).toBe(1);
    // One burst of appends, MACed before the writer rotated: one chain key.
    expect(new Set(events.map((e) => e.chainKey)).size).toBe(1);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 120, segments: paths.length, headSeq: 120 });
  });

  it('derives a new chain key per segment, per start and per chainKeyMaxEvents events; verify derives each again', async () => {
    const dataDir = tempDataDir();
    let log = await openTrail(dataDir, { segmentBytes: 4096, chainKeyMaxEvents: 50 });
    for (let i = 1; i <= 120; i++) log.append(event(i));
    await log.flush();
    for (let i = 121; i <= 140; i++) {
      log.append(event(i));
      await log.flush(); // one at a time: rotations happen between appends
    }
    await log.close();
    log = await openTrail(dataDir, { segmentBytes: 4096 });
    log.append(event(141));
    await log.close();
    const events = readTrailEvents(dataDir);
    const keyOf = (seq: number) => events.find((e) => e.seq === seq)!.chainKey;
    expect(keyOf(1)).toBe(keyOf(50));
    expect(keyOf(51)).not.toBe(keyOf(50));
    expect(keyOf(101)).not.toBe(keyOf(100));
    expect(keyOf(141)).not.toBe(keyOf(140)); // a restart
    // After the burst, each segment begins under a chain key no earlier segment used.
    const paths = segmentPaths(dataDir);
    const firstKeys = paths.map((p) => (JSON.parse(readFileSync(p, 'utf8').split('\n')[0]!) as ChainedAuditEvent).chainKey);
    const later = firstKeys.filter((_, i) => i > 0 && Number(/seg-(\d+)/.exec(paths[i]!)![1]) > 121);
    expect(later.length).toBeGreaterThan(0);
    for (const key of later) expect(firstKeys.filter((k) => k === key)).toHaveLength(1);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 141, headSeq: 141 });
  });

  it('rotates by age', async () => {
    let now = T0;
    const dataDir = tempDataDir();
    const log = await openTrail(dataDir, { segmentMaxAgeMs: 3600_000, now: () => new Date(now) });
    log.append(event(1));
    await log.flush();
    now += 2 * 3600_000;
    log.append(event(2));
    await log.close();
    expect(segmentPaths(dataDir).map((p) => /seg-(\d+)/.exec(p)![1])).toEqual(['00000000000000000001', '00000000000000000002']);
  });

  it('continues the chain across segments after a restart, reading only the indexes and the active tail', async () => {
    const { dataDir, log } = await trailWith(80, small);
    await log.close();
    const before = segmentPaths(dataDir).length;
    const again = await openTrail(dataDir, small);
    for (let n = 81; n <= 160; n++) again.append(event(n));
    await again.close();
    expect(segmentPaths(dataDir).length).toBeGreaterThan(before);
    expect(readTrailEvents(dataDir).map((e) => e.seq)).toEqual(Array.from({ length: 160 }, (_, i) => i + 1));
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 160 });
  });

  it('rebuilds a missing or edited index at start-up, with a warning', async () => {
    const { dataDir, log } = await trailWith(60, small);
    await log.close();
    const index = segmentPaths(dataDir)[0]!.replace(/\.jsonl$/, '.idx.json');
    const original = readFileSync(index, 'utf8');
    writeFileSync(index, original.replace('"events":', '"events":1'));
    const { messages, logger } = warnings();
    await (await openTrail(dataDir, { ...small, logger })).close();
    expect(messages).toEqual([expect.stringMatching(/its index seg-0+1\.idx\.json has a MAC that does not match its content.*rebuilt the index/)]);
    expect(readFileSync(index, 'utf8')).toBe(original);
    rmSync(index);
    const second = warnings();
    await (await openTrail(dataDir, { ...small, logger: second.logger })).close();
    expect(second.messages).toEqual([expect.stringMatching(/it has no index \(a crash right after it was sealed\); rebuilt/)]);
    expect(readFileSync(index, 'utf8')).toBe(original);
  });
});

describe('AuditLog.query', () => {
  const operations = ['SymmetricCrypto.Encrypt', 'SymmetricCrypto.Decrypt', 'SymmetricKey.Rotate'];
  const make = (n: number) =>
    event(n, {
      keyId: `key-${n % 2}`,
      folderId: n <= 10 ? 'folder-a' : 'folder-b',
      subject: n % 3 === 0 ? 'serviceAccount:ci' : 'userAccount:alice',
      operation: operations[n % 3]!,
      result: n % 5 === 0 ? 'PERMISSION_DENIED' : 'OK',
    });

  it.each([
    ['everything', {}, Array.from({ length: 20 }, (_, i) => i + 1)],
    ['by folderId', { folderId: 'folder-b' }, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]],
    ['by keyId', { keyId: 'key-1' }, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]],
    ['by subject', { subject: 'serviceAccount:ci' }, [3, 6, 9, 12, 15, 18]],
    ['by operation', { operation: 'SymmetricKey.Rotate' }, [2, 5, 8, 11, 14, 17, 20]],
    ['by an inclusive time range', { from: event(4).time, to: event(7).time }, [4, 5, 6, 7]],
    ['by a time range in another offset and precision', { from: '2024-05-01T12:00:04+02:00', to: '2024-05-01T10:00:05Z' }, [4, 5]],
    ['by several filters at once', { keyId: 'key-0', subject: 'serviceAccount:ci', from: event(10).time }, [12, 18]],
    ['with nothing matching', { keyId: 'nope' }, []],
  ])('filters %s, in one segment and across many', async (_name, query, seqs) => {
    for (const options of [{}, { segmentBytes: 4096 }]) {
      const { log } = await trailWith(20, options, make);
      expect((await log.query(query)).events.map((e) => e.seq)).toEqual(seqs);
      await log.close();
    }
  });

  it('returns the events as stored', async () => {
    const { dataDir, log } = await trailWith(2, {}, make);
    const [first] = (await log.query({})).events;
    expect(first).toEqual(readTrailEvents(dataDir)[0]);
    await log.close();
  });

  it('pages across segments with a stable token, while appends rotate segments between pages', async () => {
    const { log } = await trailWith(200, { segmentBytes: 4096 }, make);
    const expected = Array.from({ length: 100 }, (_, i) => 2 * i + 1);
    let n = 200;
    const seen = await allPages(log, { keyId: 'key-1' }, 7, async () => {
      for (let i = 0; i < 10; i++) log.append(make(++n));
      await log.flush();
    });
    expect(seen.slice(0, 100)).toEqual(expected);
    expect(seen).toEqual([...new Set(seen)].sort((a, b) => a - b));
    expect(seen).toEqual(Array.from({ length: (seen.at(-1)! + 1) / 2 }, (_, i) => 2 * i + 1));
    expect(seen.at(-1)).toBeGreaterThan(300);
    expect((await log.query({ pageSize: 1000 })).nextPageToken).toBeUndefined();
    await log.close();
  });

  it('skips segments by their index (a recent hour does not read old segments)', async () => {
    let now = T0;
    const dataDir = tempDataDir();
    const log = await openTrail(dataDir, { segmentBytes: 4096, now: () => new Date(now) });
    for (let n = 1; n <= 200; n++) log.append({ ...event(0), requestId: `old-${n}`, time: new Date(T0 + n).toISOString() });
    await log.flush();
    now = T0 + 10 * 3600_000;
    for (let n = 1; n <= 5; n++) log.append({ ...event(0), requestId: `new-${n}`, time: new Date(now + n).toISOString() });
    await log.flush();
    // Remove old segment files behind the trail's back: a query that needed them would now fail to find them.
    for (const path of segmentPaths(dataDir).slice(0, 3)) rmSync(path);
    const page = await log.query({ from: new Date(now).toISOString() });
    expect(page.events.map((e) => e.requestId)).toEqual(['new-1', 'new-2', 'new-3', 'new-4', 'new-5']);
    await log.close();
  });

  it('a page that ends exactly on the last match carries no token', async () => {
    const { log } = await trailWith(25);
    expect((await log.query({ pageSize: 25 })).nextPageToken).toBeUndefined();
    expect((await log.query({ pageSize: 24 })).nextPageToken).toBeDefined();
    const first = await log.query({ pageSize: 2 });
    log.append(event(26));
    expect((await log.query({ pageSize: 2, pageToken: first.nextPageToken! })).events.map((e) => e.seq)).toEqual([3, 4]);
    await log.close();
  });

  it('defaults to 100 per page and allows up to 1000', async () => {
    const { log } = await trailWith(1001);
    expect((await log.query({})).events).toHaveLength(100);
    expect((await log.query({ pageSize: 0 })).events).toHaveLength(100);
    const max = await log.query({ pageSize: 1000 });
    expect(max.events).toHaveLength(1000);
    expect((await log.query({ pageToken: max.nextPageToken! })).events.map((e) => e.seq)).toEqual([1001]);
    await log.close();
  });

  it.each([
    ['pageSize above 1000', { pageSize: 1001 }, 'pageSize: must be an integer from 0 to 1000'],
    ['a negative pageSize', { pageSize: -1 }, 'pageSize: must be an integer from 0 to 1000'],
    ['a fractional pageSize', { pageSize: 2.5 }, 'pageSize: must be an integer from 0 to 1000'],
    ['a forged pageToken', { pageToken: 'bm9wZQ' }, 'pageToken: is not a token returned by a previous call'],
    ['a pageToken past the end', { pageToken: Buffer.from('after:99').toString('base64url') }, 'pageToken: is not a token returned by a previous call'],
    ['a from that is not RFC 3339', { from: '2024-05-01' }, 'from: must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z, got "2024-05-01"'],
    ['an impossible to', { to: '2024-02-31T25:00:00Z' }, 'to: must be an RFC 3339 date-time'],
    ['to before from', { from: '2024-05-02T00:00:00Z', to: '2024-05-01T00:00:00Z' }, 'to: must not be earlier than from'],
  ])('rejects %s with INVALID_ARGUMENT', async (_name, query, message) => {
    const { log } = await trailWith(2);
    const caught = await log.query(query).catch((err: unknown) => err);
    expect(caught).toBeInstanceOf(KmsError);
    expect((caught as KmsError).code).toBe('INVALID_ARGUMENT');
    expect((caught as KmsError).message).toContain(message);
    await log.close();
  });
});

describe('retention', () => {
  it('prunes whole old segments by age, recording Audit.Prune before deleting, and verify accepts it', async () => {
    let now = T0;
    const dataDir = tempDataDir();
    const options = { segmentBytes: 4096, retentionMs: 24 * 3600_000, now: () => new Date(now) };
    const log = await openTrail(dataDir, options);
    for (let n = 1; n <= 100; n++) log.append({ ...event(n), time: new Date(now).toISOString() });
    await log.flush();
    const oldSegments = segmentPaths(dataDir).slice(0, -1);
    now += 48 * 3600_000;
    for (let n = 101; n <= 140; n++) log.append({ ...event(n), time: new Date(now).toISOString() });
    await log.flush();
    await log.idle();
    await log.close();
    for (const path of oldSegments) expect(existsSync(path)).toBe(false);
    const events = readTrailEvents(dataDir);
    const prunes = events.filter((e) => e.operation === 'Audit.Prune');
    expect(prunes[0]).toMatchObject({ subject: 'system:audit', result: 'OK', details: { reason: 'retention', firstSeq: 1 } });
    const details = prunes.at(-1)!.details as { segments: string[]; lastSeq: number; lastMac: string };
    expect(prunes.flatMap((p) => p.details!.segments as string[])).toEqual(expect.arrayContaining(oldSegments.map((p) => p.split('/').pop())));
    expect(events[0]!.seq).toBe(details.lastSeq + 1);
    expect(events[0]!.prev).toBe(details.lastMac);
    const result = await verify(dataDir);
    expect(result).toMatchObject({ ok: true, findings: [] });
    expect(result.notes).toContainEqual(expect.stringMatching(new RegExp(`events 1\\.\\.${details.lastSeq} were pruned by retention \\(Audit.Prune at seg-\\d+\\.jsonl line \\d+\\)`)));
    // And the trail reopens, continuing after the pruned prefix.
    const again = await openTrail(dataDir, options);
    again.append(event(999));
    await again.close();
    expect((await verify(dataDir)).ok).toBe(true);
  });

  it('prunes oldest segments while the trail is over --audit-max-size, never the active one', async () => {
    const { dataDir, log } = await trailWith(300, { segmentBytes: 4096, maxTotalBytes: 16 * 1024 });
    await log.idle();
    await log.close();
    const total = segmentPaths(dataDir).reduce((n, p) => n + statSync(p).size, 0);
    expect(total).toBeLessThanOrEqual(16 * 1024 + 4096);
    const prunes = readTrailEvents(dataDir).filter((e) => e.operation === 'Audit.Prune');
    expect(prunes.length).toBeGreaterThan(0);
    expect(prunes[0]!.details).toMatchObject({ reason: 'max-size' });
    expect((await verify(dataDir)).ok).toBe(true);
  });

  it('completes a prune that a crash interrupted between its record and the deletions', async () => {
    let now = T0;
    const dataDir = tempDataDir();
    const options = { segmentBytes: 4096, retentionMs: 3600_000, now: () => new Date(now) };
    const log = await openTrail(dataDir, options);
    for (let n = 1; n <= 60; n++) log.append(event(n));
    await log.flush();
    const keep = join(tempDataDir(), 'copy');
    const victims = segmentPaths(dataDir).slice(0, -1);
    for (const path of victims) copyFileSync(path, `${keep}-${path.split('/').pop()}`);
    now += 48 * 3600_000;
    log.append(event(61));
    await log.flush();
    await log.idle();
    await log.close();
    // Put the files back as if the deletions had not happened, with the pending marker.
    for (const path of victims) copyFileSync(`${keep}-${path.split('/').pop()}`, path);
    const names = victims.map((p) => p.split('/').pop()!);
    writeFileSync(join(auditDir(dataDir), 'prune-pending.json'), JSON.stringify({ segments: names }));
    expect((await verify(dataDir)).notes).toContainEqual(expect.stringMatching(/prune-pending.json: a prune is being completed/));
    const { messages, logger } = warnings();
    await (await openTrail(dataDir, { ...options, logger })).close();
    expect(messages).toContainEqual(expect.stringMatching(/completed the deletion of \d+ pruned segment\(s\) that a crash interrupted/));
    for (const path of victims) expect(existsSync(path)).toBe(false);
    expect(readdirSync(auditDir(dataDir))).not.toContain('prune-pending.json');
    expect((await verify(dataDir)).ok).toBe(true);
  });
});

describe('start-up: repair, refusal and the anchor', () => {
  async function goodTrail(count: number) {
    const { dataDir, log } = await trailWith(count);
    await log.close();
    const [segment] = segmentPaths(dataDir);
    return { dataDir, segment: segment!, text: readFileSync(segment!, 'utf8') };
  }

  it.each([
    ['half a line without newline', (extra: string) => extra.slice(0, 40), /its last line has no trailing newline/],
    ['a complete line that lost only its newline', (extra: string) => extra.trimEnd(), /its last line has no trailing newline/],
    ['a terminated line of garbage', () => 'x\0\0\0\n', /removed 5 bytes at its end \(its last line has no trailing newline\)/],
    ['zeros, then a line (power loss during an unacknowledged write)', () => '\0\0\0\0\n', /removed 5 bytes at its end \(bytes after a run of zeros\)/],
    ['garbage and a fragment', () => '\0\0\0\n{"seq":', /removed 11 bytes at its end \(bytes after a run of zeros\)/],
    ['a line that is not JSON', () => '{"seq":4,\n', /its last line is not JSON/],
  ])('cuts a torn last line with a warning: %s', async (_name, tear, warning) => {
    const { dataDir, segment, text } = await goodTrail(3);
    const lines = text.split('\n');
    appendFileSync(segment, tear(`${lines[2]!.replace('"seq":3', '"seq":4')}\n`));
    const { messages, logger } = warnings();
    const log = await openTrail(dataDir, { logger });
    expect(messages).toEqual([expect.stringMatching(warning)]);
    expect(messages[0]).toMatch(/never acknowledged; the trail continues after event 3/);
    expect(segmentText(segment)).toBe(text);
    log.append(event(4, { requestId: 'after-repair' }));
    await log.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 4 });
  });

  it.each([
    ['an unparseable earlier line', (l: string[]) => [l[0], '{broken', l[1], l[2]], /corrupt at line 2: not valid JSON/],
    ['an edited earlier line', (l: string[]) => [l[0], l[1]!.replace('"result":"OK"', '"result":"DENIED"'), l[2]], /corrupt at line 2: mac does not match/],
    ['an edited last line', (l: string[]) => [l[0], l[1], l[2]!.replace('req-3', 'req-X')], /corrupt at line 3: mac does not match/],
    ['a removed line', (l: string[]) => [l[0], l[2]], /corrupt at line 2: seq is 3, expected 2/],
  ])('refuses to start on %s and leaves the segment untouched', async (_name, edit, message) => {
    const { dataDir, segment, text } = await goodTrail(3);
    const edited = edit(text.split('\n').slice(0, 3)).join('\n') + '\n';
    writeFileSync(segment, edited);
    const opening = openTrail(dataDir);
    await expect(opening).rejects.toThrow(CorruptAuditLogError);
    await expect(opening).rejects.toThrow(message);
    await expect(opening).rejects.toThrow(/refusing to start.*kmsd audit verify/);
    expect(readFileSync(segment, 'utf8')).toBe(edited);
  });

  it('refuses a trail whose tail was cut (the anchor is ahead), and --audit-accept-loss records an IntegrityAlert', async () => {
    const { dataDir, segment, text } = await goodTrail(5);
    const lines = text.split('\n');
    writeFileSync(segment, `${lines.slice(0, 3).join('\n')}\n`);
    const { errors, logger } = warnings();
    const opening = openTrail(dataDir, { logger });
    await expect(opening).rejects.toThrow(AuditIntegrityError);
    await expect(opening).rejects.toThrow(/the trail ends at seq 3 but its head anchor \(software:software-audit-anchor.json, written .*\) records seq 5: events 4\.\.5 were cut off or the trail was rolled back; refusing to start.*--audit-accept-loss/);
    expect(errors).toEqual([expect.stringMatching(/INTEGRITY ALERT: the trail ends at seq 3/)]);
    const verified = await verify(dataDir);
    expect(verified.ok).toBe(false);
    expect(verified.findings).toContainEqual({ segment: 'seg-00000000000000000001.jsonl', line: 3, reason: expect.stringMatching(/^cut tail: the trail ends at seq 3 .* records seq 5/) });

    const log = await openTrail(dataDir, { acceptLoss: true, logger });
    log.append(event(7));
    await log.close();
    const events = readTrailEvents(dataDir);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 6, 7]);
    expect(events[3]).toMatchObject({ subject: 'system:audit', operation: 'Audit.IntegrityAlert', result: 'DATA_LOSS', prev: events[2]!.mac, details: { anchorSeq: 5, foundSeq: 3 } });
    const after = await verify(dataDir);
    expect(after).toMatchObject({ ok: true, headSeq: 7 });
    expect(after.notes).toContainEqual(expect.stringMatching(/integrity alert recorded at seg-0+1\.jsonl line 4: events 4\.\.5 were missing/));
    // And it starts normally from then on.
    await (await openTrail(dataDir)).close();
  });

  it('refuses a trail whose event at the anchored seq has another MAC, and leaves the anchor as evidence', async () => {
    const { dataDir } = await goodTrail(3);
    const path = join(dataDir, 'software-audit-anchor.json');
    const forged = `${JSON.stringify({ seq: 2, mac: 'a'.repeat(64), time: new Date(T0).toISOString() })}\n`;
    writeFileSync(path, forged);
    await expect(openTrail(dataDir)).rejects.toThrow(/event 2 has another MAC than its head anchor .* records: the trail was replaced or rolled back; refusing to start/);
    expect(readFileSync(path, 'utf8')).toBe(forged);
  });

  it('refuses a trail whose audit directory was removed while its anchor remains', async () => {
    const { dataDir } = await goodTrail(2);
    rmSync(auditDir(dataDir), { recursive: true });
    await expect(openTrail(dataDir)).rejects.toThrow(/the trail ends at seq 0 but its head anchor .* records seq 2/);
  });

  it('refuses to start when the MAC key of a non-empty trail is missing', async () => {
    const { dataDir } = await goodTrail(2);
    rmSync(join(dataDir, SOFTWARE_AUDIT_KEY_FILE));
    const opening = openTrail(dataDir);
    await expect(opening).rejects.toThrow(KmsError);
    await expect(opening).rejects.toThrow(
      new RegExp(`the software audit key .*${SOFTWARE_AUDIT_KEY_FILE} is missing; the audit trail in ${auditDir(dataDir)} is not empty .*restore the token \\(or key file\\) from backup`),
    );
  });

  it('moves a legacy audit.log into a read-only legacy segment and chains the keyed trail to its head', async () => {
    const dataDir = tempDataDir();
    let prev = GENESIS_PREV;
    const legacy: string[] = [];
    for (let seq = 1; seq <= 3; seq++) {
      const unhashed = { ...event(seq), seq, prev };
      const hash = legacyHash(unhashed);
      legacy.push(canonicalJson({ ...unhashed, hash }));
      prev = hash;
    }
    writeFileSync(join(dataDir, 'audit.log'), `${legacy.join('\n')}\n${legacy[0]!.slice(0, 20)}`);
    const { messages, logger } = warnings();
    const log = await openTrail(dataDir, { logger });
    log.append(event(4));
    expect((await log.query({})).events.map((e) => [e.seq, e.mac.length])).toEqual([[1, 64], [2, 64], [3, 64], [4, 64]]);
    await log.close();
    expect(messages).toEqual([expect.stringMatching(/removed 20 bytes of an incomplete last line/), expect.stringMatching(/moved the audit log .*audit.log \(3 events, unkeyed SHA-256 chain\) into .*seg-0+1\.legacy\.jsonl/)]);
    expect(existsSync(join(dataDir, 'audit.log'))).toBe(false);
    const paths = segmentPaths(dataDir);
    expect(paths.map((p) => p.split('/').pop())).toEqual(['seg-00000000000000000001.legacy.jsonl', 'seg-00000000000000000004.jsonl']);
    expect(statSync(paths[0]!).mode & 0o777).toBe(0o400);
    expect(readTrailEvents(dataDir)[3]).toMatchObject({ seq: 4, prev });
    const result = await verify(dataDir);
    expect(result).toMatchObject({ ok: true, events: 4, segments: 2 });
    expect(result.notes).toContainEqual(expect.stringMatching(/legacy\.jsonl is the log of a kmsd before keyed chains; checked with its own rules/));
  });

  it('refuses a corrupt legacy audit.log and leaves it in place', async () => {
    const dataDir = tempDataDir();
    const unhashed = { ...event(1), seq: 1, prev: GENESIS_PREV };
    writeFileSync(join(dataDir, 'audit.log'), `${canonicalJson({ ...unhashed, hash: 'a'.repeat(64) })}\n`);
    await expect(openTrail(dataDir)).rejects.toThrow(/audit log .*audit.log is corrupt at line 1: hash does not match the line content/);
    expect(existsSync(join(dataDir, 'audit.log'))).toBe(true);
  });
});

describe('preallocation (the active segment is zero-filled ahead of the writer)', () => {
  const sizeOf = (path: string) => statSync(path).size;

  it('writes in place ahead of a zero-filled tail, and a clean close cuts the tail', async () => {
    const { dataDir, log } = await trailWith(3);
    const [segment] = segmentPaths(dataDir);
    const data = Buffer.byteLength(segmentText(segment!));
    await waitFor(() => sizeOf(segment!) > data, 'the zero-fill');
    const bytes = readFileSync(segment!);
    expect(bytes.subarray(data).every((b) => b === 0)).toBe(true);
    // More events land where the data ends, not after the zeros.
    for (let n = 4; n <= 50; n++) log.append(event(n));
    await log.flush();
    expect(readTrailEvents(dataDir).map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await log.query({})).events).toHaveLength(50);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 50 });
    await log.close();
    expect(sizeOf(segment!)).toBe(Buffer.byteLength(segmentText(segment!)));
    expect(readFileSync(segment!).includes(0)).toBe(false);
  });

  it('never zero-fills past segmentBytes, and a sealed segment is cut back to its data before its index', async () => {
    const { dataDir, log } = await trailWith(40, { segmentBytes: 4096 });
    await log.idle();
    const paths = segmentPaths(dataDir);
    expect(paths.length).toBeGreaterThan(2);
    for (const path of paths.slice(0, -1)) {
      expect(readFileSync(path).includes(0)).toBe(false);
      expect(statSync(path).mode & 0o777).toBe(0o400);
    }
    await waitFor(() => sizeOf(paths.at(-1)!) === 4096, 'the zero-fill of the active segment');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sizeOf(paths.at(-1)!)).toBe(4096);
    await log.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 40 });
  });

  it('zeroAheadBytes: 0 appends as before: the file is exactly its data', async () => {
    const { dataDir, log } = await trailWith(5, { zeroAheadBytes: 0 });
    const [segment] = segmentPaths(dataDir);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(readFileSync(segment!).includes(0)).toBe(false);
    await log.close();
  });

  it('after a crash (the files as kill -9 leaves them) resumes at the end of the data, keeping the zeros, with no warning', async () => {
    const { dataDir, log } = await trailWith(5);
    const [segment] = segmentPaths(dataDir);
    await waitFor(() => sizeOf(segment!) > Buffer.byteLength(segmentText(segment!)), 'the zero-fill');
    await log.idle();
    // A copy taken while the trail is open is what a crash leaves behind.
    const crashed = tempDataDir();
    cpSync(dataDir, crashed, { recursive: true });
    await log.close();
    const size = sizeOf(join(crashed, 'audit', 'seg-00000000000000000001.jsonl'));
    const { messages, logger } = warnings();
    const resumed = await openTrail(crashed, { logger });
    expect(messages).toEqual([]);
    const copied = join(crashed, 'audit', 'seg-00000000000000000001.jsonl');
    expect(sizeOf(copied)).toBeGreaterThanOrEqual(size);
    resumed.append(event(6));
    await resumed.flush();
    expect(readTrailEvents(crashed).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await verify(crashed)).toMatchObject({ ok: true, events: 6 });
    await resumed.close();
    expect(await verify(crashed)).toMatchObject({ ok: true, events: 6 });
  });

  it('after power loss during an unacknowledged batch (a torn line, zeros, then a later page of it) cuts it all with a warning', async () => {
    const { dataDir, log } = await trailWith(3);
    await log.close();
    const [segment] = segmentPaths(dataDir);
    const text = segmentText(segment!);
    const next = `${text.split('\n')[2]!.replace('"seq":3', '"seq":4')}\n`;
    // The batch's first page reached the disk, its second did not (zeros), its third did.
    appendFileSync(segment!, Buffer.concat([Buffer.from(next.slice(0, 30)), Buffer.alloc(4096), Buffer.from(next), Buffer.alloc(8192)]));
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 3, notes: expect.arrayContaining([expect.stringMatching(/bytes after a zero-filled gap/)]) });
    const { messages, logger } = warnings();
    const resumed = await openTrail(dataDir, { logger });
    expect(messages).toEqual([expect.stringMatching(/removed \d+ bytes at its end \(its last line has no trailing newline\).*never acknowledged; the trail continues after event 3/)]);
    expect(segmentText(segment!)).toBe(text);
    resumed.append(event(4));
    await resumed.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 4 });
  });

  it('a segment sealed by a crash before it was cut back to its data is cut and indexed at start-up; data after zeros there is corruption', async () => {
    const { dataDir, log } = await trailWith(40, { segmentBytes: 4096 });
    await log.close();
    const [first] = segmentPaths(dataDir);
    rmSync(first!.replace('.jsonl', '.idx.json'));
    const data = readFileSync(first!);
    chmodSync(first!, 0o600);
    appendFileSync(first!, Buffer.alloc(3000));
    const { messages, logger } = warnings();
    await (await openTrail(dataDir, { logger, segmentBytes: 4096 })).close();
    expect(messages).toEqual([expect.stringMatching(/no index .*rebuilt the index/)]);
    expect(readFileSync(first!).equals(data)).toBe(true);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 40 });

    rmSync(first!.replace('.jsonl', '.idx.json'));
    appendFileSync(first!, Buffer.concat([Buffer.alloc(100), Buffer.from('{"seq":1}\n')]));
    await expect(openTrail(dataDir, { segmentBytes: 4096 })).rejects.toThrow(/corrupt at line byte \d+: a sealed segment has data after a run of zero bytes/);
  });
});

describe('write faults', () => {
  it('a zero-fill that fails (a full disk) is a warning, retried later: events are appended meanwhile, durable and chained', async () => {
    const { messages, logger } = warnings();
    let refused = 0;
    const openSegmentFile = async (path: string): Promise<AuditFileHandle> => {
      const real = await open(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
      return {
        write: async (buffer, offset, length, position) => {
          // The zero-fill writes zeros; the writer never does.
          if (buffer.subarray(offset, offset + length).every((b) => b === 0)) {
            refused++;
            throw Object.assign(new Error('ENOSPC: injected, write'), { code: 'ENOSPC', syscall: 'write' });
          }
          return real.write(buffer, offset, length, position);
        },
        datasync: () => real.datasync(),
        truncate: (length) => real.truncate(length),
        close: () => real.close(),
      };
    };
    const { dataDir, log } = await trailWith(3, { openSegmentFile, logger });
    for (let n = 4; n <= 30; n++) {
      log.append(event(n));
      await log.flush();
    }
    expect(log.health()).toEqual({ ok: true });
    expect(refused).toBe(1); // not retried per batch
    expect(messages).toEqual([expect.stringMatching(/cannot zero-fill ahead of the writer \(ENOSPC: injected, write\); events are appended meanwhile .*retrying in 60 s/)]);
    const [segment] = segmentPaths(dataDir);
    expect(readFileSync(segment!).includes(0)).toBe(false);
    await log.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 30 });
  });

  it('keeps the active segment open while batches come, closes it after idleCloseMs of quiet, and on close', async () => {
    const files = faultyFiles();
    const { dataDir, log } = await trailWith(1, { openSegmentFile: files.openSegmentFile, zeroAheadBytes: 0, idleCloseMs: 1500 });
    const afterFirst = files.opens();
    expect(files.openNow()).toBe(1);
    for (let n = 2; n <= 6; n++) {
      log.append(event(n));
      await log.flush();
    }
    expect(files.opens()).toBe(afterFirst);
    await waitFor(() => files.openNow() === 0, 'the idle segment to be closed');
    log.append(event(7));
    await log.flush();
    expect(files.opens()).toBe(afterFirst + 1);
    expect(files.openNow()).toBe(1);
    await log.close();
    expect(files.openNow()).toBe(0);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 7 });
  });

  it('with idleCloseMs 0 closes the active segment as each burst ends', async () => {
    const files = faultyFiles();
    const { dataDir, log } = await trailWith(1, { openSegmentFile: files.openSegmentFile, zeroAheadBytes: 0, idleCloseMs: 0 });
    for (let n = 2; n <= 4; n++) {
      await waitFor(() => files.openNow() === 0, 'the segment to be closed after its burst');
      const before = files.opens();
      log.append(event(n));
      await log.flush();
      expect(files.opens()).toBe(before + 1);
    }
    await log.close();
    expect(files.openNow()).toBe(0);
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 4 });
  });

  /** Wraps real file handles; `faults` says which call fails next and how; counts opens and handles still open. */
  function faultyFiles() {
    const faults: { write?: string; partial?: boolean; datasync?: string } = {};
    let opens = 0;
    let openNow = 0;
    const openSegmentFile = async (path: string): Promise<AuditFileHandle> => {
      opens++;
      const real = await open(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
      openNow++;
      const errno = (code: string, syscall: string) => Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });
      return {
        write: async (buffer, offset, length, position) => {
          const code = faults.write;
          if (code !== undefined) {
            if (faults.partial === true) await real.write(buffer, offset, Math.floor(length / 2), position);
            throw errno(code, 'write');
          }
          return real.write(buffer, offset, length, position);
        },
        datasync: async () => {
          const code = faults.datasync;
          if (code !== undefined) throw errno(code, 'fdatasync');
          return real.datasync();
        },
        truncate: (length) => real.truncate(length),
        close: async () => {
          openNow--;
          await real.close();
        },
      };
    };
    return { faults, openSegmentFile, opens: () => opens, openNow: () => openNow };
  }

  it.each([
    ['a full disk (a write half done)', { write: 'ENOSPC', partial: true }, 'audit trail is not writable: no space left on device (ENOSPC)'],
    ['a read-only file system', { write: 'EROFS' }, 'audit trail is not writable: read-only file system (EROFS)'],
    ['an I/O error on fsync', { datasync: 'EIO' }, 'audit trail is not writable: input/output error (EIO)'],
  ])('%s: flush rejects with 503 UNAVAILABLE, append throws, health says why, and it heals by itself', async (_name, fault, message) => {
    const files = faultyFiles();
    const { messages, errors, logger } = warnings();
    const { dataDir, log } = await trailWith(2, { openSegmentFile: files.openSegmentFile, retryIntervalMs: 20, logger });
    Object.assign(files.faults, fault);
    log.append(event(3));
    log.append(event(4));
    const failed = await log.flush().catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(KmsError);
    expect(failed).toMatchObject({ code: 'UNAVAILABLE', message });
    expect(errors[0]).toMatch(/failed .*refusing calls until it can write again/);
    expect(() => log.append(event(5))).toThrow(message);
    await expect(log.flush()).rejects.toThrow(message);
    expect(log.health()).toEqual({ ok: false, reason: message });
    // Memory stays bounded however long it lasts: nothing is queued while failing.
    for (let n = 0; n < 10_000; n++) expect(() => log.append(event(6))).toThrow(KmsError);
    expect((log as unknown as { pending: unknown[] }).pending).toHaveLength(0);
    // What is on disk is only what was durable, cut back to its last complete line.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(readTrailEvents(dataDir).map((e) => e.seq)).toEqual([1, 2]);
    expect(log.health().ok).toBe(false);

    for (const key of Object.keys(files.faults)) delete (files.faults as Record<string, unknown>)[key];
    await waitFor(() => log.health().ok, 'the trail to heal');
    expect(messages).toContainEqual(expect.stringMatching(/writable again after failing since .*; 10003 events were refused meanwhile/));
    log.append(event(7));
    await log.flush();
    await log.close();
    const events = readTrailEvents(dataDir);
    expect(events.map((e) => e.requestId)).toEqual(['req-1', 'req-2', expect.any(String), 'req-7']);
    expect(events[2]).toMatchObject({ seq: 3, subject: 'system:audit', operation: 'Audit.Recovered', details: { cause: message, refusedEvents: 10003 } });
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 4 });
    // After a failed fsync the handle is never synced again: the retry reopened the segment.
    if ('datasync' in fault) expect(files.opens()).toBeGreaterThan(1);
  });

  it('stays unhealthy while the disk stays full, then resumes the chain where it was durable', async () => {
    const files = faultyFiles();
    const { dataDir, log } = await trailWith(1, { openSegmentFile: files.openSegmentFile, retryIntervalMs: 10 });
    files.faults.write = 'ENOSPC';
    log.append(event(2));
    await expect(log.flush()).rejects.toThrow(/ENOSPC/);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(log.health()).toEqual({ ok: false, reason: 'audit trail is not writable: no space left on device (ENOSPC)' });
    expect(trailLines(dataDir)).toHaveLength(1);
    delete files.faults.write;
    await waitFor(() => log.health().ok, 'the trail to heal');
    await log.close();
    expect(await verify(dataDir)).toMatchObject({ ok: true, events: 2 });
  });

  it('after a crash the anchor is never ahead of the durable trail (cut to the last durable byte)', async () => {
    const { dataDir, log } = await trailWith(3, { anchorIntervalMs: 10 });
    await waitFor(() => anchorOf(dataDir).seq === 3, 'the anchor');
    const [segment] = segmentPaths(dataDir);
    await log.close();
    // A batch that never reached the disk whole: appended bytes, no newline.
    appendFileSync(segment!, '{"folderId":"x"');
    const { messages, logger } = warnings();
    await (await openTrail(dataDir, { logger })).close();
    expect(messages).toEqual([expect.stringMatching(/removed 15 bytes at its end/)]);
    expect((await verify(dataDir)).ok).toBe(true);
  });
});
