import { describe, it, expect } from '@jest/globals';
import { appendFileSync, chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GENESIS_PREV, hashEvent } from '../../daemon/audit/chain.js';
import { CorruptAuditLogError, auditLogPath, openAuditLog } from '../../daemon/audit/jsonl-audit.js';
import { verifyAuditLog } from '../../daemon/audit/verify.js';
import { KmsError } from '../../daemon/domain/errors.js';
import type { AuditEvent, AuditLog, ChainedAuditEvent } from '../../daemon/domain/ports.js';

function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'kms-audit-'));
}

function event(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(Date.UTC(2024, 4, 1, 10, 0, n)).toISOString(),
    requestId: `req-${n}`,
    subject: 'userAccount:alice',
    operation: 'SymmetricCrypto.Encrypt',
    folderId: 'folder-1',
    keyId: 'key-1',
    result: 'OK',
    ...overrides,
  };
}

function fileLines(dataDir: string): ChainedAuditEvent[] {
  return readFileSync(auditLogPath(dataDir), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ChainedAuditEvent);
}

function warnings() {
  const messages: string[] = [];
  return { messages, logger: { warn: (m: string) => void messages.push(m) } };
}

async function logWith(count: number, make: (n: number) => AuditEvent = event): Promise<{ dataDir: string; log: AuditLog }> {
  const dataDir = tempDataDir();
  const log = await openAuditLog(dataDir);
  for (let n = 1; n <= count; n++) log.append(make(n));
  await log.flush();
  return { dataDir, log };
}

describe('openAuditLog: append, flush, reopen', () => {
  it('creates audit.log with mode 0600 and an empty chain', async () => {
    const dataDir = tempDataDir();
    const log = await openAuditLog(dataDir);
    await log.close();
    expect(statSync(auditLogPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(readFileSync(auditLogPath(dataDir), 'utf8')).toBe('');
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 0 });
  });

  it('writes one canonical chained line per event once flushed', async () => {
    const { dataDir, log } = await logWith(3);
    const lines = fileLines(dataDir);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(lines[0]!.prev).toBe(GENESIS_PREV);
    expect(lines[1]!.prev).toBe(lines[0]!.hash);
    expect(lines[2]!.prev).toBe(lines[1]!.hash);
    for (const line of lines) expect(line.hash).toBe(hashEvent(line));
    expect(lines[0]).toMatchObject({ ...event(1) });
    await log.close();
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 3 });
  });

  it('continues seq and prev from the existing file after a reopen', async () => {
    const { dataDir, log } = await logWith(2);
    await log.close();
    const again = await openAuditLog(dataDir);
    expect((await again.query({})).events.map((e) => e.requestId)).toEqual(['req-1', 'req-2']);
    again.append(event(3));
    await again.close();
    const lines = fileLines(dataDir);
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(lines[2]!.prev).toBe(lines[1]!.hash);
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 3 });
  });

  it('flush resolves only for lines appended before it, and group-commits bursts', async () => {
    const dataDir = tempDataDir();
    const log = await openAuditLog(dataDir);
    const flushes: Promise<void>[] = [];
    for (let n = 1; n <= 500; n++) {
      log.append(event(n % 60, { requestId: `burst-${n}` }));
      if (n % 50 === 0) flushes.push(log.flush());
    }
    await Promise.all(flushes);
    expect(fileLines(dataDir)).toHaveLength(500);
    // Appends while a batch is in flight go into the next one.
    log.append(event(1, { requestId: 'during' }));
    const during = log.flush();
    log.append(event(2, { requestId: 'after' }));
    await during;
    await log.flush();
    expect(fileLines(dataDir).slice(-2).map((l) => l.requestId)).toEqual(['during', 'after']);
    await log.close();
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 502 });
  });

  it('writes lines appended without an explicit flush (close flushes)', async () => {
    const dataDir = tempDataDir();
    const log = await openAuditLog(dataDir);
    log.append(event(1));
    await log.close();
    expect(fileLines(dataDir)).toHaveLength(1);
  });

  it('drops fields that are not audit fields and refuses malformed events', async () => {
    const dataDir = tempDataDir();
    const log = await openAuditLog(dataDir);
    log.append({ ...event(1), plaintext: 'c2VjcmV0' } as AuditEvent);
    expect(() => log.append({ ...event(2), result: undefined } as unknown as AuditEvent)).toThrow(
      'invalid audit event: field "result" is missing or not a string',
    );
    await log.close();
    const lines = fileLines(dataDir);
    expect(lines).toHaveLength(1);
    expect(readFileSync(auditLogPath(dataDir), 'utf8')).not.toContain('plaintext');
  });

  it('refuses appends after close', async () => {
    const dataDir = tempDataDir();
    const log = await openAuditLog(dataDir);
    await log.close();
    await log.close(); // idempotent
    expect(() => log.append(event(1))).toThrow(/audit log .* is closed/);
  });

  it('tightens a log readable by others back to 0600, with a warning', async () => {
    const dataDir = tempDataDir();
    writeFileSync(auditLogPath(dataDir), '', { mode: 0o644 });
    chmodSync(auditLogPath(dataDir), 0o644);
    const { messages, logger } = warnings();
    const log = await openAuditLog(dataDir, { logger });
    await log.close();
    expect(statSync(auditLogPath(dataDir)).mode & 0o777).toBe(0o600);
    expect(messages).toEqual([expect.stringMatching(/had mode 0644; changed it to 0600/)]);
  });
});

describe('openAuditLog: crash repair and corruption', () => {
  async function goodLog(count: number): Promise<{ dataDir: string; text: string }> {
    const { dataDir, log } = await logWith(count);
    await log.close();
    return { dataDir, text: readFileSync(auditLogPath(dataDir), 'utf8') };
  }

  it.each([
    ['half a line without newline', (extra: string) => extra.slice(0, 40), /incomplete last line .*line 4 has no trailing newline/],
    ['a complete line that lost only its newline', (extra: string) => extra.trimEnd(), /line 4 has no trailing newline/],
    ['a terminated line of garbage (zeros after power loss)', () => '\0\0\0\0\n', /line 4: not valid JSON/],
    ['garbage and a fragment', () => '\0\0\0\n{"seq":', /line 4: not valid JSON/],
  ])('cuts off a torn last line: %s', async (_name, tear, warning) => {
    const { dataDir, text } = await goodLog(3);
    // The line the crash interrupted: the 4th event as the writer would have written it.
    const { dataDir: otherDir, log: other } = await logWith(4);
    await other.close();
    const fourth = readFileSync(auditLogPath(otherDir), 'utf8').split('\n')[3]! + '\n';
    appendFileSync(auditLogPath(dataDir), tear(fourth));
    const { messages, logger } = warnings();
    const log = await openAuditLog(dataDir, { logger });
    expect(messages).toEqual([expect.stringMatching(warning)]);
    expect(messages[0]).toMatch(/the log continues after event 3/);
    expect(readFileSync(auditLogPath(dataDir), 'utf8')).toBe(text);
    log.append(event(4, { requestId: 'after-repair' }));
    await log.close();
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 4 });
    expect(fileLines(dataDir)[3]).toMatchObject({ seq: 4, requestId: 'after-repair' });
  });

  it('repairs silently nothing on a clean file', async () => {
    const { dataDir } = await goodLog(2);
    const { messages, logger } = warnings();
    await (await openAuditLog(dataDir, { logger })).close();
    expect(messages).toEqual([]);
  });

  it.each([
    ['an unparseable earlier line', (lines: string[]) => [lines[0], '{broken', lines[1], lines[2]], /corrupt at line 2: not valid JSON/],
    ['an edited earlier line', (lines: string[]) => [lines[0], lines[1]!.replace('"result":"OK"', '"result":"DENIED"'), lines[2]], /corrupt at line 2: hash does not match/],
    ['an edited last line', (lines: string[]) => [lines[0], lines[1], lines[2]!.replace('req-3', 'req-X')], /corrupt at line 3: hash does not match/],
    ['a removed line', (lines: string[]) => [lines[0], lines[2]], /corrupt at line 2: seq is 3, expected 2/],
  ])('refuses to start on %s and leaves the file untouched', async (_name, edit, message) => {
    const { dataDir, text } = await goodLog(3);
    const edited = edit(text.split('\n').slice(0, 3)).join('\n') + '\n';
    writeFileSync(auditLogPath(dataDir), edited);
    const opening = openAuditLog(dataDir);
    await expect(opening).rejects.toThrow(CorruptAuditLogError);
    await expect(opening).rejects.toThrow(message);
    await expect(opening).rejects.toThrow(/refusing to start.*kmsd audit verify/);
    expect(readFileSync(auditLogPath(dataDir), 'utf8')).toBe(edited);
  });
});

describe('openAuditLog: write failures', () => {
  /** The log's private file handle, to inject the failures a full or failing disk produces. */
  const handleOf = (log: AuditLog) => (log as any).handle;

  it('cuts a partial write back to the last complete line and retries the batch later', async () => {
    const { dataDir, log } = await logWith(2);
    const handle = handleOf(log);
    const write = handle.write.bind(handle);
    let calls = 0;
    handle.write = async (bytes: Buffer, offset: number, length: number) => {
      if (calls++ > 0) return write(bytes, offset, length);
      await write(bytes, offset, Math.floor(length / 2)); // the disk filled up half way
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    log.append(event(3));
    log.append(event(4));
    await expect(log.flush()).rejects.toThrow(/audit log .*: write failed \(ENOSPC: no space left on device, write\)/);
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 2 });
    log.append(event(5));
    await log.flush();
    await log.close();
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 5 });
    expect(fileLines(dataDir).map((l) => l.requestId)).toEqual(['req-1', 'req-2', 'req-3', 'req-4', 'req-5']);
  });

  it('stops accepting events after a failed fsync, and a restart continues from the file', async () => {
    const { dataDir, log } = await logWith(1);
    handleOf(log).datasync = () => Promise.reject(new Error('EIO: i/o error, fsync'));
    log.append(event(2));
    await expect(log.flush()).rejects.toThrow(/fsync failed \(EIO: i\/o error, fsync\); no further events can be recorded until kmsd restarts/);
    expect(() => log.append(event(3))).toThrow(/fsync failed/);
    await expect(log.flush()).rejects.toThrow(/fsync failed/);
    await expect(log.close()).rejects.toThrow(/fsync failed/);
    const again = await openAuditLog(dataDir);
    again.append(event(3));
    await again.close();
    expect(verifyAuditLog(auditLogPath(dataDir))).toEqual({ ok: true, events: 3 });
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
    ['by folder and key', { folderId: 'folder-a', keyId: 'key-0' }, [2, 4, 6, 8, 10]],
    ['with nothing matching', { keyId: 'nope' }, []],
  ])('filters %s', async (_name, query, seqs) => {
    const { log } = await logWith(20, make);
    expect((await log.query(query)).events.map((e) => e.seq)).toEqual(seqs);
    await log.close();
  });

  it('returns the chained events as stored, and copies', async () => {
    const { dataDir, log } = await logWith(2, make);
    const [first] = (await log.query({})).events;
    expect(first).toEqual(fileLines(dataDir)[0]);
    first!.result = 'EDITED';
    expect((await log.query({})).events[0]!.result).toBe('OK');
    await log.close();
  });

  it('pages with an opaque token and says when there is no more', async () => {
    const { log } = await logWith(25, make);
    const seen: number[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = (await log.query({ keyId: 'key-1', pageSize: 4, ...(token === undefined ? {} : { pageToken: token }) }));
      seen.push(...page.events.map((e) => e.seq));
      token = page.nextPageToken;
      pages++;
    } while (token !== undefined);
    expect(seen).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25]);
    expect(pages).toBe(4);
    // A page that ends exactly on the last match carries no token.
    expect((await log.query({ pageSize: 25 })).nextPageToken).toBeUndefined();
    expect((await log.query({ pageSize: 24 })).nextPageToken).toBeDefined();
    await log.close();
  });

  it('keeps a token valid while events are appended', async () => {
    const { log } = await logWith(3);
    const first = (await log.query({ pageSize: 2 }));
    log.append(event(4));
    expect((await log.query({ pageSize: 2, pageToken: first.nextPageToken! })).events.map((e) => e.seq)).toEqual([3, 4]);
    await log.close();
  });

  it('defaults to 100 per page and allows up to 1000', async () => {
    const { log } = await logWith(1001);
    expect((await log.query({})).events).toHaveLength(100);
    expect((await log.query({ pageSize: 0 })).events).toHaveLength(100);
    const max = (await log.query({ pageSize: 1000 }));
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
    const { log } = await logWith(2);
    let caught: unknown;
    try {
      (await log.query(query));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(KmsError);
    expect((caught as KmsError).code).toBe('INVALID_ARGUMENT');
    expect((caught as KmsError).message).toContain(message);
    await log.close();
  });
});
