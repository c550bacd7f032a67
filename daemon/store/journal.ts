/**
 * The write-ahead journal under the lowdb snapshot.
 *
 * Rewriting the whole `kms.json` for every commit costs time in proportion to the number of keys
 * (≈ 220 ms per write at 10k keys), so commits append only the records they changed to
 * `<data-dir>/kms.journal`, one JSON line per group commit, fdatasync'ed before any request of the
 * group is answered. When the journal outgrows the snapshot, the snapshot is rewritten (through
 * lowdb and the durable adapter) and the journal emptied: each journal byte pays for at most one
 * snapshot byte, so the cost per commit stays flat as the store grows.
 *
 * A journal line: `{"seq":N,"set":{"keys":{"<id>":{…}}},"del":{"versions":["<id>"]}}`. The snapshot
 * records the last `seq` it contains (`journalSeq`), so lines left over from a crash between
 * snapshot and truncation are skipped on replay. A last line without its newline is a write torn
 * by a crash: it was never acknowledged and is cut off. Any other bad line stops start-up.
 *
 * Failures: a write or fdatasync that fails leaves the file possibly holding part (or all) of a
 * line that was never acknowledged. The journal remembers the length of its last durable line and
 * cuts the file back to it before the next append (retrying the cut until it succeeds), so nothing
 * is ever appended after a fragment, and a retried fsync is never trusted for pages a failed one
 * may have dropped.
 *
 * The file is opened for each append and closed after it, not held open: commits are rare next
 * to the cost of their fsync, and a process that holds no file open for writing lets an operator
 * (or a test) remount the data directory read-only; the next append then fails with EROFS and the
 * store reports it, instead of the remount being refused as busy.
 */
import { closeSync, constants, fdatasyncSync, ftruncateSync, openSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { TABLE_NAMES, type TableName } from '../domain/model.js';
import type { BaseTables, ChangeList } from './state-engine.js';

export class CorruptJournalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptJournalError';
  }
}

/** The append-only journal file: one write and one fdatasync per group commit. */
export class Journal {
  /** Bytes of complete, durable lines. */
  private bytes: number;
  /** A failed write may have left bytes after `bytes`: cut them before appending again. */
  private dirtyTail = false;

  constructor(
    readonly path: string,
    options: { readOnly?: boolean } = {},
  ) {
    if (options.readOnly !== true) closeSync(openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600));
    this.bytes = statSync(path).size;
  }

  get size(): number {
    return this.bytes;
  }

  /**
   * Applies the lines after `afterSeq` to `tables` and returns the last seq seen. Cuts off a torn
   * last line (never acknowledged) unless `readOnly`; throws on anything else that does not parse.
   */
  replay(tables: BaseTables, afterSeq: number, options: { readOnly?: boolean } = {}): number {
    const text = readFileSync(this.path, 'utf8');
    let lastSeq = afterSeq;
    let offset = 0;
    let lineNumber = 0;
    while (offset < text.length) {
      const newline = text.indexOf('\n', offset);
      lineNumber++;
      if (newline < 0) {
        // Torn by a crash mid-write: it was never fsynced, so no request was answered for it.
        if (options.readOnly !== true) this.truncate(Buffer.byteLength(text.slice(0, offset)));
        break;
      }
      const raw = text.slice(offset, newline);
      offset = newline + 1;
      let line: unknown;
      try {
        line = JSON.parse(raw);
      } catch {
        throw new CorruptJournalError(`journal ${this.path} line ${lineNumber} is not valid JSON; refusing to start`);
      }
      const seq = (line as { seq?: unknown } | null)?.seq;
      if (typeof seq !== 'number') throw new CorruptJournalError(`journal ${this.path} line ${lineNumber} has no seq; refusing to start`);
      if (seq <= afterSeq) continue; // already in the snapshot
      applyLine(tables, line as Record<string, unknown>, () => new CorruptJournalError(`journal ${this.path} line ${lineNumber} is malformed; refusing to start`));
      lastSeq = seq;
    }
    return lastSeq;
  }

  /**
   * Appends `changes` as line `seq`, durably. The line is serialized before the first await, so it
   * holds exactly the changes given; later changes belong to the next line. Rejects with the fs
   * error when the file cannot be written.
   */
  async append(changes: ChangeList, seq: number): Promise<void> {
    const buffer = Buffer.from(`${serializeLine(changes, seq)}\n`, 'utf8');
    if (this.dirtyTail) this.truncate(this.bytes);
    let written = 0;
    try {
      // Not O_APPEND: appends are positional writes at the end of the last durable line, so a
      // fragment left by a failed write is overwritten (Linux ignores pwrite offsets under O_APPEND).
      const handle = await open(this.path, constants.O_WRONLY);
      try {
        while (written < buffer.length) {
          written += (await handle.write(buffer, written, buffer.length - written, this.bytes + written)).bytesWritten;
        }
        await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      this.dirtyTail = true;
      try {
        this.truncate(this.bytes);
      } catch {
        // Retried before the next append (dirtyTail stays set until a cut succeeds).
      }
      throw err;
    }
    this.bytes += buffer.length;
  }

  /** Empties the journal once a snapshot holds everything in it. */
  reset(): void {
    this.truncate(0);
  }

  /** Cuts a fragment left by a failed write; throws while the file is still not writable. */
  repair(): void {
    if (this.dirtyTail) this.truncate(this.bytes);
  }

  /** Nothing is held open between appends; kept so callers state when they are done. */
  close(): void {}

  private truncate(length: number): void {
    const fd = openSync(this.path, constants.O_WRONLY);
    try {
      ftruncateSync(fd, length);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.bytes = length;
    this.dirtyTail = false;
  }
}

/** A line's JSON; objects keyed by ids have no prototype, so no id can be a special key. */
function serializeLine(changes: ChangeList, seq: number): string {
  const line = Object.create(null) as Record<string, unknown>;
  line.seq = seq;
  if (changes.set.size > 0) {
    const set = Object.create(null) as Record<string, Record<string, object>>;
    for (const [table, records] of changes.set) {
      const byId = Object.create(null) as Record<string, object>;
      for (const [id, record] of records) byId[id] = record;
      set[table] = byId;
    }
    line.set = set;
  }
  if (changes.del.size > 0) {
    const del = Object.create(null) as Record<string, string[]>;
    for (const [table, ids] of changes.del) del[table] = ids;
    line.del = del;
  }
  return JSON.stringify(line);
}

function isTable(name: string): name is TableName {
  return (TABLE_NAMES as readonly string[]).includes(name);
}

function applyLine(tables: BaseTables, line: Record<string, unknown>, malformed: () => Error): void {
  const set = line.set;
  if (set !== undefined) {
    if (typeof set !== 'object' || set === null) throw malformed();
    for (const [table, records] of Object.entries(set)) {
      if (!isTable(table) || typeof records !== 'object' || records === null) throw malformed();
      const rows = tables.get(table);
      if (rows === undefined) throw malformed();
      for (const [id, record] of Object.entries(records as Record<string, unknown>)) {
        if (typeof record !== 'object' || record === null) throw malformed();
        // Schema 1 journals kept a resource's bindings as a bare array.
        rows.set(id, table === 'accessBindings' && Array.isArray(record) ? { resource: id, bindings: record as unknown[] } : record);
      }
    }
  }
  const del = line.del;
  if (del !== undefined) {
    if (typeof del !== 'object' || del === null) throw malformed();
    for (const [table, ids] of Object.entries(del)) {
      if (!isTable(table) || !Array.isArray(ids)) throw malformed();
      const rows = tables.get(table);
      for (const id of ids) if (typeof id === 'string') rows?.delete(id);
    }
  }
}
