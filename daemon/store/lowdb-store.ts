/**
 * The `Store` port on lowdb 7: the only file that imports lowdb. The state lives in memory
 * (lowdb's `data`). Commits go to a write-ahead journal of the records they touched
 * (./journal.ts); lowdb writes the full snapshot `<data-dir>/kms.json` through the durable
 * adapter when the journal outgrows it, at start-up after a replay, and at shutdown. Group commit:
 * updates that arrive while a write is in flight share the next write.
 */
import { Low } from 'lowdb';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { CURRENT_SCHEMA_VERSION, emptyState, type KmsState } from '../domain/model.js';
import type { Store } from '../domain/ports.js';
import { DurableJsonFile } from './durable-file.js';
import { Journal, TABLES, trackTouches, type TouchedRecords } from './journal.js';

export const DATA_FILE = 'kms.json';
export const JOURNAL_FILE = 'kms.journal';
/** The journal is folded into the snapshot once it is larger than this or than the snapshot. */
const MIN_CHECKPOINT_BYTES = 1 << 20;

/** Start-up refused because the data file cannot be trusted. The message says what to do. */
export class CorruptDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptDataError';
  }
}

/** The snapshot: the state plus the last journal line it contains. */
type Snapshot = KmsState & { journalSeq?: number };

export async function openLowdbStore(dataDir: string): Promise<Store> {
  const path = join(dataDir, DATA_FILE);
  const db = new Low<Snapshot>(new DurableJsonFile(path, (text) => parseState(path, text)), emptyState());
  await db.read();
  const journal = new Journal(join(dataDir, JOURNAL_FILE));
  try {
    const lastSeq = journal.replay(db.data, db.data.journalSeq ?? 0);
    const store = new LowdbStore(db, journal, path, lastSeq);
    // Start from a compact snapshot: replays stay short and a first start creates kms.json.
    await store.checkpoint();
    return store;
  } catch (err) {
    journal.close();
    throw err;
  }
}

class LowdbStore implements Store {
  /** The write in flight, if any. */
  private writing: Promise<void> | null = null;
  /** The write that will start after the one in flight: every update since then waits on it. */
  private next: Promise<void> | null = null;
  /** Records touched by updates not yet handed to a write. */
  private touched: TouchedRecords = new Map();
  private readonly tracked: KmsState;
  private snapshotBytes = 0;
  private closed = false;

  constructor(
    private readonly db: Low<Snapshot>,
    private readonly journal: Journal,
    private readonly path: string,
    private seq: number,
  ) {
    this.tracked = trackTouches(db.data, () => this.touched);
  }

  read<T>(query: (state: Readonly<KmsState>) => T): T {
    return query(this.db.data);
  }

  update<T>(mutate: (state: KmsState) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    let result: T;
    try {
      result = mutate(this.tracked);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.commit().then(() => result);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.next?.catch(() => undefined);
    await this.writing?.catch(() => undefined);
    try {
      await this.checkpoint();
    } finally {
      this.journal.close();
    }
  }

  /** Writes the whole state as the snapshot, then empties the journal. */
  async checkpoint(): Promise<void> {
    this.db.data.journalSeq = this.seq;
    await this.db.write();
    this.journal.reset();
    this.snapshotBytes = statSync(this.path).size;
  }

  /** Resolves when a write that began after this call has completed. */
  private commit(): Promise<void> {
    if (this.next !== null) return this.next;
    const previous = this.writing ?? Promise.resolve();
    // Start after the current write and after this tick, so that every update made in the
    // meantime lands in the same write.
    const write = previous
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(async () => {
        this.next = null;
        this.writing = write;
        const batch = this.touched;
        this.touched = new Map();
        try {
          if (this.journal.size >= Math.max(MIN_CHECKPOINT_BYTES, this.snapshotBytes)) {
            this.seq++;
            await this.checkpoint();
          } else {
            await this.journal.append(this.db.data, batch, ++this.seq);
          }
        } catch (err) {
          // Not on disk: those records go out with the next write.
          for (const [table, ids] of batch) {
            const pending = this.touched.get(table) ?? new Set<string>();
            for (const id of ids) pending.add(id);
            this.touched.set(table, pending);
          }
          throw err;
        }
      })
      .finally(() => {
        if (this.writing === write) this.writing = null;
      });
    this.next = write;
    return write;
  }
}

function parseState(path: string, text: string): Snapshot {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CorruptDataError(
      `data file ${path} is not valid JSON (${(err as Error).message}); refusing to start. ` +
        'Restore it from a backup or move it away to start empty; kmsd never resets it silently.',
    );
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new CorruptDataError(`data file ${path} does not hold a JSON object; refusing to start`);
  }
  const state = data as Partial<Snapshot>;
  if (state.schemaVersion !== CURRENT_SCHEMA_VERSION) {
    throw new CorruptDataError(
      `data file ${path} has schemaVersion ${JSON.stringify(state.schemaVersion)}, ` +
        `this kmsd understands ${CURRENT_SCHEMA_VERSION}; refusing to start`,
    );
  }
  for (const table of TABLES) {
    const value = state[table];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new CorruptDataError(`data file ${path} is missing its "${table}" table; refusing to start`);
    }
  }
  return state as Snapshot;
}
