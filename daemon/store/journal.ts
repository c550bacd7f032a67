/**
 * The write-ahead journal under the lowdb snapshot.
 *
 * Rewriting the whole `kms.json` for every commit costs time in proportion to the number of keys
 * (≈ 220 ms per write at 10k keys), so commits append only the records they touched to
 * `<data-dir>/kms.journal`, one JSON line per group commit, fdatasync'ed before any request of the
 * group is answered. When the journal outgrows the snapshot, the snapshot is rewritten (through
 * lowdb and the durable adapter) and the journal emptied: each journal byte pays for at most one
 * snapshot byte, so the cost per commit stays flat as the store grows.
 *
 * A journal line: `{"seq":N,"set":{"keys":{"<id>":{…}}},"del":{"versions":["<id>"]}}`. The snapshot
 * records the last `seq` it contains (`journalSeq`), so lines left over from a crash between
 * snapshot and truncation are skipped on replay. A last line without its newline is a write torn
 * by a crash: it was never acknowledged and is cut off. Any other bad line stops start-up.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { write, fdatasync } from 'node:fs';
import { promisify } from 'node:util';
import type { KmsState } from '../domain/model.js';

/** The tables of the state, as the journal names them. */
export const TABLES = ['keys', 'versions', 'operations', 'tokens', 'serviceAccounts', 'accessBindings'] as const;
export type TableName = (typeof TABLES)[number];

/** Record ids touched by one or more mutations, per table. */
export type TouchedRecords = Map<TableName, Set<string>>;

export class CorruptJournalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptJournalError';
  }
}

interface JournalLine {
  seq: number;
  set?: Partial<Record<TableName, Record<string, unknown>>>;
  del?: Partial<Record<TableName, string[]>>;
}

/**
 * Wraps the state so that every record a mutation reads, writes or deletes through a table is
 * noted. Reading a record counts: mutations change records in place (`key.name = …`) after
 * getting them from their table, so what was read may have changed.
 */
export function trackTouches(state: KmsState, touched: () => TouchedRecords): KmsState {
  const tables = new Map<TableName, object>();
  for (const table of TABLES) {
    const target = state[table] as Record<string, unknown>;
    const note = (id: string | symbol) => {
      if (typeof id !== 'string') return;
      const map = touched();
      let set = map.get(table);
      if (set === undefined) map.set(table, (set = new Set()));
      set.add(id);
    };
    tables.set(
      table,
      new Proxy(target, {
        get(t, id, receiver) {
          if (typeof id === 'string' && Object.prototype.hasOwnProperty.call(t, id)) note(id);
          return Reflect.get(t, id, receiver) as unknown;
        },
        set(t, id, value) {
          note(id);
          return Reflect.set(t, id, value);
        },
        deleteProperty(t, id) {
          note(id);
          return Reflect.deleteProperty(t, id);
        },
      }),
    );
  }
  return new Proxy(state, {
    get(t, name, receiver) {
      return (typeof name === 'string' && tables.get(name as TableName)) || (Reflect.get(t, name, receiver) as unknown);
    },
  });
}

const writeAsync = promisify(write);
const fdatasyncAsync = promisify(fdatasync);

/** The append-only journal file: one write and one fdatasync per group commit. */
export class Journal {
  private readonly fd: number;
  private bytes: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a+', 0o600);
    this.bytes = fstatSync(this.fd).size;
  }

  get size(): number {
    return this.bytes;
  }

  /**
   * Applies the lines after `afterSeq` to `state` and returns the last seq seen. Cuts off a torn
   * last line (never acknowledged); throws on anything else that does not parse.
   */
  replay(state: KmsState, afterSeq: number): number {
    const text = readFileSync(this.path, 'utf8');
    let lastSeq = afterSeq;
    let offset = 0;
    let lineNumber = 0;
    while (offset < text.length) {
      const newline = text.indexOf('\n', offset);
      lineNumber++;
      if (newline < 0) {
        // Torn by a crash mid-write: it was never fsynced, so no request was answered for it.
        this.truncate(Buffer.byteLength(text.slice(0, offset)));
        break;
      }
      const raw = text.slice(offset, newline);
      offset = newline + 1;
      let line: JournalLine;
      try {
        line = JSON.parse(raw) as JournalLine;
      } catch {
        throw new CorruptJournalError(`journal ${this.path} line ${lineNumber} is not valid JSON; refusing to start`);
      }
      if (typeof line.seq !== 'number') throw new CorruptJournalError(`journal ${this.path} line ${lineNumber} has no seq; refusing to start`);
      if (line.seq <= afterSeq) continue; // already in the snapshot
      applyLine(state, line);
      lastSeq = line.seq;
    }
    return lastSeq;
  }

  /**
   * Appends the current value (or absence) of every touched record as line `seq`, durably. The
   * line is serialized before the first await, so it holds exactly the mutations made so far;
   * later mutations belong to the next line.
   */
  async append(state: KmsState, touched: TouchedRecords, seq: number): Promise<void> {
    const line: JournalLine = { seq };
    for (const [table, ids] of touched) {
      const records = state[table] as Record<string, unknown>;
      for (const id of ids) {
        if (Object.prototype.hasOwnProperty.call(records, id)) ((line.set ??= {})[table] ??= {})[id] = records[id];
        else ((line.del ??= {})[table] ??= []).push(id);
      }
    }
    const buffer = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
    let written = 0;
    try {
      while (written < buffer.length) written += (await writeAsync(this.fd, buffer, written, buffer.length - written, null)).bytesWritten;
      await fdatasyncAsync(this.fd);
    } catch (err) {
      // Leave no half line behind for the next append to glue onto.
      this.truncate(this.bytes);
      throw err;
    }
    this.bytes += buffer.length;
  }

  /** Empties the journal once a snapshot holds everything in it. */
  reset(): void {
    this.truncate(0);
  }

  close(): void {
    closeSync(this.fd);
  }

  private truncate(length: number): void {
    ftruncateSync(this.fd, length);
    fdatasyncSync(this.fd);
    this.bytes = length;
  }
}

function applyLine(state: KmsState, line: JournalLine): void {
  for (const table of TABLES) {
    const records = state[table] as Record<string, unknown>;
    for (const [id, value] of Object.entries(line.set?.[table] ?? {})) records[id] = value;
    for (const id of line.del?.[table] ?? []) delete records[id];
  }
}
