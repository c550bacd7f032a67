/**
 * The `AuditLog` port as an append-only JSONL file, `<data-dir>/audit.log` (mode 0600), kept out
 * of lowdb so that the key store is not rewritten once per API call (DESIGN §6).
 *
 * Every line is a `ChainedAuditEvent` (see ./chain.ts for the hash chain). `append` chains the
 * event in memory at once; a background writer appends queued lines with one write and one
 * fdatasync per batch, and lines appended while a batch is in flight form the next batch
 * (group commit). `flush` resolves when everything appended before it is on disk.
 */
import { fstatSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../domain/errors.js';
import type { AuditEvent, AuditLog, AuditPage, AuditQuery, ChainedAuditEvent, ComponentHealth } from '../domain/ports.js';
import { fsyncDirectory } from '../store/durable-file.js';
import { AUDIT_LOG_FILE, ChainChecker, RFC3339, canonicalJson, hashEvent, pickAuditFields, readLines } from './chain.js';

/** Same limits as the key listings (daemon/domain/keys.ts). */
export const AUDIT_DEFAULT_PAGE_SIZE = 100;
export const AUDIT_MAX_PAGE_SIZE = 1000;

export interface AuditLogOptions {
  /** Told when start-up repairs the file (a torn last line) or tightens its permissions. */
  logger?: { warn(message: string): void };
}

/** Start-up refused because the audit log cannot be trusted. The message says what to do. */
export class CorruptAuditLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptAuditLogError';
  }
}

/** `<dataDir>/audit.log`. */
export function auditLogPath(dataDir: string): string {
  return join(dataDir, AUDIT_LOG_FILE);
}

/**
 * Opens (or creates) `<dataDir>/audit.log` and loads it.
 *
 * The whole chain is checked on open, with the same rules as `kmsd audit verify`: we parse every
 * line for the in-memory index anyway, and continuing a chain whose past is broken would hide the
 * break behind fresh valid lines. What a crash can leave is repaired with a warning: a last line
 * without "\n" (a write torn by `kill -9` or power loss; never acknowledged, since `flush` only
 * resolves once the "\n" is fsynced) and a last line that is not JSON at all (what power loss
 * leaves when the new file size reached the disk before the data, e.g. zeros) are cut off.
 * Anything else (an earlier bad line, a wrong seq/prev/hash anywhere) throws
 * `CorruptAuditLogError`; the file is never reset.
 */
export async function openAuditLog(dataDir: string, options: AuditLogOptions = {}): Promise<AuditLog> {
  const path = auditLogPath(dataDir);
  // O_APPEND: every write lands at the end even after the repair below truncates the file.
  const handle = await open(path, 'a+', 0o600);
  try {
    // The directory entry of a just-created file must be durable too, or a crash could lose the
    // whole file together with lines already acknowledged.
    fsyncDirectory(dataDir);
    const mode = fstatSync(handle.fd).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      // Audit events name subjects, keys and client addresses: not for other local users.
      await handle.chmod(0o600);
      options.logger?.warn(`audit log ${path} had mode ${mode.toString(8).padStart(4, '0')}; changed it to 0600`);
    }
    const loaded = loadChain(path, handle.fd);
    if (loaded.validBytes < loaded.fileBytes) {
      await handle.truncate(loaded.validBytes);
      await handle.sync();
      options.logger?.warn(
        `audit log ${path}: removed ${loaded.fileBytes - loaded.validBytes} bytes of an incomplete last line ` +
          `(${loaded.repairReason ?? 'torn write'}), left by a crash during a write that was never acknowledged; ` +
          `the log continues after event ${loaded.events.length}`,
      );
    }
    return new JsonlAuditLog(path, handle, loaded.events, loaded.head, loaded.validBytes);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

interface LoadedChain {
  events: ChainedAuditEvent[];
  head: string;
  /** Length of the prefix made of valid, complete lines. */
  validBytes: number;
  fileBytes: number;
  repairReason?: string;
}

function loadChain(path: string, fd: number): LoadedChain {
  const checker = new ChainChecker();
  const events: ChainedAuditEvent[] = [];
  let validBytes = 0;
  let fileBytes = 0;
  /** An unparseable line, forgiven only if it turns out to be the last complete one. */
  let suspect: { line: number; offset: number; reason: string } | undefined;
  let lineNumber = 0;
  for (const line of readLines(fd)) {
    lineNumber++;
    fileBytes = line.offset + line.bytes.length + (line.terminated ? 1 : 0);
    if (!line.terminated) break; // the torn fragment: cut off below
    if (suspect !== undefined) throw corrupt(path, suspect.line, suspect.reason);
    const result = checker.check(line.bytes);
    if (result.ok) {
      events.push(result.event);
      validBytes = fileBytes;
    } else if (result.unparseable) {
      suspect = { line: lineNumber, offset: line.offset, reason: result.reason };
    } else {
      throw corrupt(path, lineNumber, result.reason);
    }
  }
  const loaded: LoadedChain = { events, head: checker.head, validBytes, fileBytes };
  if (suspect !== undefined) loaded.repairReason = `line ${suspect.line}: ${suspect.reason}`;
  else if (validBytes < fileBytes) loaded.repairReason = `line ${lineNumber} has no trailing newline`;
  return loaded;
}

function corrupt(path: string, line: number, reason: string): CorruptAuditLogError {
  return new CorruptAuditLogError(
    `audit log ${path} is corrupt at line ${line}: ${reason}; refusing to start. ` +
      'Run `kmsd audit verify --data-dir DIR` for details, then restore the file from a backup, or move it ' +
      'away to start a new chain (keep the old file as evidence); kmsd never rewrites it silently.',
  );
}

interface FlushWaiter {
  /** Resolved once every line up to this seq is fsynced. */
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

class JsonlAuditLog implements AuditLog {
  /**
   * Every event since the log began, in seq order (events[i].seq === i + 1), with the parsed
   * times alongside. Fine for one node's audit trail for now; at scale we would rotate the file
   * into segments, keep per-segment time bounds and per-keyId/subject seq lists on disk (or move
   * the index to SQLite), and read a page from the file by offset instead of holding everything
   * in memory.
   */
  private readonly events: ChainedAuditEvent[];
  private readonly times: number[];
  private head: string;
  /** Lines chained but not yet handed to write(). */
  private pending: string[] = [];
  /** Highest seq known to be on disk and fsynced. */
  private durableSeq: number;
  private waiters: FlushWaiter[] = [];
  /** A drain is scheduled or running: later lines join its next batch. */
  private draining = false;
  /** Set when the file can no longer be trusted to hold what we write (see `drain`). */
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    events: ChainedAuditEvent[],
    head: string,
    /** Bytes of complete lines in the file: where to cut back to after a failed write. */
    private fileBytes: number,
  ) {
    this.events = events;
    this.times = events.map((e) => Date.parse(e.time));
    this.head = head;
    this.durableSeq = events.length;
  }

  append(event: AuditEvent): void {
    if (this.closing !== undefined) throw new Error(`audit log ${this.path} is closed`);
    // Fail closed: if events can no longer be made durable, the caller must not proceed as if
    // this one were recorded.
    if (this.failure !== undefined) throw this.failure;
    const fields = pickAuditFields(event);
    const unhashed = { ...fields, seq: this.events.length + 1, prev: this.head };
    const chained: ChainedAuditEvent = { ...unhashed, hash: hashEvent(unhashed) };
    this.events.push(chained);
    this.times.push(Date.parse(chained.time));
    this.head = chained.hash;
    this.pending.push(`${canonicalJson(chained)}\n`);
    this.scheduleDrain();
  }

  flush(): Promise<void> {
    const seq = this.events.length;
    if (this.durableSeq >= seq) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    this.scheduleDrain();
    return done;
  }

  /**
   * Oldest first. Filters are exact matches, combined with AND; `from`/`to` compare instants, so
   * any RFC 3339 offset or precision works. Events appear as soon as they are appended, before
   * their flush completes. Bad paging or time arguments throw `INVALID_ARGUMENT`.
   */
  health(): ComponentHealth {
    return this.failure === undefined ? { ok: true } : { ok: false, reason: this.failure.message };
  }

  query(query: AuditQuery): Promise<AuditPage> {
    try {
      return Promise.resolve(this.querySync(query));
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  private querySync(query: AuditQuery): AuditPage {
    const pageSize = query.pageSize === undefined || query.pageSize === 0 ? AUDIT_DEFAULT_PAGE_SIZE : query.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > AUDIT_MAX_PAGE_SIZE) {
      throw invalidArgument('pageSize', `must be an integer from 0 to ${AUDIT_MAX_PAGE_SIZE}`);
    }
    let start = 0;
    if (query.pageToken !== undefined && query.pageToken !== '') {
      start = decodePageToken(query.pageToken);
      if (start > this.events.length) throw invalidArgument('pageToken', 'is not a token returned by a previous call');
    }
    const from = query.from === undefined ? -Infinity : parseBound('from', query.from);
    const to = query.to === undefined ? Infinity : parseBound('to', query.to);
    if (from > to) throw invalidArgument('to', 'must not be earlier than from');
    const page: ChainedAuditEvent[] = [];
    for (let i = start; i < this.events.length; i++) {
      const event = this.events[i] as ChainedAuditEvent;
      const time = this.times[i] as number;
      if (query.folderId !== undefined && event.folderId !== query.folderId) continue;
      if (query.keyId !== undefined && event.keyId !== query.keyId) continue;
      if (query.subject !== undefined && event.subject !== query.subject) continue;
      if (query.operation !== undefined && event.operation !== query.operation) continue;
      if (time < from || time > to) continue;
      if (page.length === pageSize) {
        // A further match exists, so the caller needs another page; the token names the last
        // seq returned, not an index, so it stays valid while events keep being appended.
        const last = page.at(-1) as ChainedAuditEvent;
        return { events: page, nextPageToken: encodePageToken(last.seq) };
      }
      page.push({ ...event }); // a copy: callers must not be able to edit the index
    }
    return { events: page };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.flush();
      } finally {
        await this.handle.close();
      }
    })();
    return this.closing;
  }

  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    // Start on the next turn of the event loop, so that every append made by the current burst of
    // callbacks shares the first write.
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.failure === undefined) {
        const batch = this.pending;
        this.pending = [];
        // `pending` always holds the newest lines, so this batch ends with the newest event.
        const batchSeq = this.events.length;
        const bytes = Buffer.from(batch.join(''), 'utf8');
        try {
          await this.writeAll(bytes);
        } catch (err) {
          await this.recoverFromFailedWrite(batch, asError(err));
          return;
        }
        this.fileBytes += bytes.length;
        try {
          await this.handle.datasync();
        } catch (err) {
          // After a failed fsync Linux may drop the dirty pages and report success on a retry, so a
          // retry proves nothing (PostgreSQL's "fsyncgate"). Stop accepting events; a restart
          // re-reads the file and continues from whatever really reached the disk.
          this.fail(new Error(`audit log ${this.path}: fsync failed (${asError(err).message}); no further events can be recorded until kmsd restarts`));
          return;
        }
        this.durableSeq = batchSeq;
        this.settleWaiters();
      }
    } finally {
      this.draining = false;
    }
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written);
      written += bytesWritten;
    }
  }

  /**
   * A write failed (ENOSPC, EIO…) possibly after writing part of the batch. Cut the file back to its
   * last complete line, or the next batch would be glued onto a fragment and corrupt the chain in
   * the middle of the file. The lines stay chained in memory and are retried by the next
   * append/flush, like the Store does with a failed write.
   */
  private async recoverFromFailedWrite(batch: string[], err: Error): Promise<void> {
    try {
      await this.handle.truncate(this.fileBytes);
    } catch (truncateErr) {
      this.fail(new Error(`audit log ${this.path}: write failed (${err.message}) and the partial write could not be removed (${asError(truncateErr).message}); no further events can be recorded until kmsd restarts`));
      return;
    }
    this.pending = [...batch, ...this.pending];
    const failure = new Error(`audit log ${this.path}: write failed (${err.message})`);
    for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
  }

  private settleWaiters(): void {
    const still: FlushWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.seq <= this.durableSeq) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  private fail(failure: Error): void {
    this.failure = failure;
    for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
  }
}

function encodePageToken(seq: number): string {
  return Buffer.from(`after:${seq}`).toString('base64url');
}

function decodePageToken(token: string): number {
  const match = /^after:(\d{1,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (match?.[1] === undefined) throw invalidArgument('pageToken', 'is not a token returned by a previous call');
  return Number(match[1]);
}

function parseBound(field: 'from' | 'to', value: string): number {
  const time = Date.parse(value);
  if (!RFC3339.test(value) || Number.isNaN(time)) throw invalidArgument(field, `must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z, got "${value}"`);
  return time;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
