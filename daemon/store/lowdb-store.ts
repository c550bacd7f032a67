/**
 * The `Store` port on lowdb 7: the only file that imports lowdb. The durable state lives in memory
 * in `Map`s (./state-engine.ts). Commits go to a write-ahead journal of the records they changed
 * (./journal.ts); lowdb writes the full snapshot `<data-dir>/kms.json` through the durable adapter
 * when the journal outgrows it, at start-up after a replay, and at shutdown. Group commit: updates
 * that arrive while a write is in flight share the next write.
 *
 * Faults: a failed write rejects its updates (and those queued behind it) with
 * `KmsError('UNAVAILABLE')` naming the cause, drops their changes and marks the store unhealthy.
 * While unhealthy a timer probes the data directory (write, fsync and remove a small file, and
 * cut any fragment the failed write left in the journal); the first success heals the store.
 */
import { Low } from 'lowdb';
import { closeSync, constants, existsSync, fsyncSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KmsError } from '../domain/errors.js';
import { CURRENT_SCHEMA_VERSION, TABLE_NAMES, type StateTx, type StateView, type TableName } from '../domain/model.js';
import type { ComponentHealth, Store } from '../domain/ports.js';
import { DurableJsonFile, fsyncDirectory } from './durable-file.js';
import { Journal } from './journal.js';
import { Layer, StateEngine, emptyTables, type BaseTables } from './state-engine.js';
import { describeWriteError, writeFailure } from './write-failure.js';

export const DATA_FILE = 'kms.json';
export const JOURNAL_FILE = 'kms.journal';
/** The journal is folded into the snapshot once it is larger than this or than the snapshot. */
const MIN_CHECKPOINT_BYTES = 1 << 20;
/** How often an unhealthy store probes the data directory. */
const PROBE_INTERVAL_MS = 1000;
const PROBE_FILE = '.kmsd-write-probe';

/** Start-up refused because the data file cannot be trusted. The message says what to do. */
export class CorruptDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptDataError';
  }
}

/** The snapshot file: schema version, last journal line it contains, and every table by id. */
type Snapshot = { schemaVersion: number; journalSeq?: number } & Partial<Record<TableName, Record<string, object>>>;

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Opens the store of `dataDir` (creating it on first start) for the one daemon holding its lock. */
export async function openLowdbStore(dataDir: string, options: { logger?: StoreLogger } = {}): Promise<Store> {
  const path = join(dataDir, DATA_FILE);
  const db = new Low<Snapshot | null>(new DurableJsonFile<Snapshot | null>(path, (text) => parseSnapshot(path, text)), null);
  await db.read();
  const tables = tablesOf(db.data);
  const journal = new Journal(join(dataDir, JOURNAL_FILE));
  try {
    // The journal's directory entry must be durable before a line in it is acknowledged.
    fsyncDirectory(dataDir);
    const lastSeq = journal.replay(tables, db.data?.journalSeq ?? 0);
    const store = new LowdbStore(db, journal, dataDir, new StateEngine(tables), lastSeq, options.logger);
    // Start from a compact snapshot: replays stay short and a first start creates kms.json. A
    // failure here (disk full at start-up) is not fatal: the journal still holds everything.
    try {
      await store.checkpoint();
    } catch (err) {
      options.logger?.warn({ cause: describeWriteError(err) }, 'could not rewrite the store snapshot at start-up; continuing on the journal');
    }
    return store;
  } catch (err) {
    journal.close();
    throw err;
  }
}

/**
 * The durable state of `dataDir` read without taking its lock or writing anything (snapshot plus
 * journal replayed in memory), for maintenance commands that may run next to a live daemon.
 */
export async function readStoreSnapshot(dataDir: string): Promise<StateView> {
  const path = join(dataDir, DATA_FILE);
  const adapter = new DurableJsonFile<Snapshot | null>(path, (text) => parseSnapshot(path, text), { readOnly: true });
  const snapshot = await adapter.read();
  const tables = tablesOf(snapshot);
  const journalPath = join(dataDir, JOURNAL_FILE);
  if (existsSync(journalPath)) {
    const journal = new Journal(journalPath, { readOnly: true });
    try {
      journal.replay(tables, snapshot?.journalSeq ?? 0, { readOnly: true });
    } finally {
      journal.close();
    }
  }
  return new StateEngine(tables).durable();
}

interface Pending {
  layer: Layer;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

class LowdbStore implements Store {
  /** The batch accumulating for the next write (pushed into the engine already). */
  private accumulating: Pending | null = null;
  /** Every pending batch, oldest first: the one being written, then `accumulating`. */
  private readonly pending: Pending[] = [];
  private draining = false;
  private snapshotBytes = 0;
  private closed = false;
  private failure: string | null = null;
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Low<Snapshot | null>,
    private readonly journal: Journal,
    private readonly dataDir: string,
    private readonly engine: StateEngine,
    private seq: number,
    private readonly logger?: StoreLogger,
  ) {}

  read<T>(query: (state: StateView) => T): T {
    return query(this.engine.durable());
  }

  update<T>(mutate: (state: StateTx) => T): Promise<T> {
    if (this.closed) return Promise.reject(new KmsError('UNAVAILABLE', 'the store is closed (kmsd is shutting down)'));
    const batch = this.accumulating ?? this.startBatch();
    let result: T;
    try {
      result = this.engine.transact(batch.layer, mutate);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return batch.done.then(() => result);
  }

  health(): ComponentHealth {
    return this.failure === null ? { ok: true } : { ok: false, reason: this.failure };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    await Promise.allSettled(this.pending.map((p) => p.done));
    try {
      await this.checkpoint();
    } catch (err) {
      this.logger?.warn({ cause: describeWriteError(err) }, 'could not rewrite the store snapshot at shutdown; the journal holds every change');
    } finally {
      this.journal.close();
    }
  }

  /** Writes the whole durable state as the snapshot, then empties the journal. */
  async checkpoint(): Promise<void> {
    this.db.data = snapshotOf(this.engine.tables(), this.seq);
    try {
      await this.db.write();
    } finally {
      this.db.data = null; // the Maps are the state; the snapshot object is only for the write
    }
    this.journal.reset();
    this.snapshotBytes = statSync(join(this.dataDir, DATA_FILE)).size;
  }

  private startBatch(): Pending {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Callers attach their own handlers; this one only keeps an unobserved rejection quiet.
    done.catch(() => undefined);
    const batch: Pending = { layer: new Layer(), done, resolve, reject };
    this.engine.push(batch.layer);
    this.pending.push(batch);
    this.accumulating = batch;
    if (!this.draining) {
      this.draining = true;
      // Start on the next turn of the event loop, so that every update made by the current burst
      // of callbacks shares the write.
      setImmediate(() => void this.drain());
    }
    return batch;
  }

  private async drain(): Promise<void> {
    try {
      for (let batch = this.pending[0]; batch !== undefined; batch = this.pending[0]) {
        if (this.accumulating === batch) this.accumulating = null; // later updates start the next batch
        try {
          await this.journal.append(batch.layer.list(), this.seq + 1);
        } catch (err) {
          this.fail(err);
          continue;
        }
        this.seq++;
        this.engine.commitOldest(batch.layer);
        this.pending.shift();
        this.healed();
        batch.resolve();
        if (this.journal.size >= Math.max(MIN_CHECKPOINT_BYTES, this.snapshotBytes)) await this.tryCheckpoint();
      }
    } finally {
      this.draining = false;
    }
  }

  /** Drops every pending batch (each built on the failed one) and rejects its callers. */
  private fail(err: unknown): void {
    const error = writeFailure('data directory', err);
    this.engine.abortAll();
    const dropped = this.pending.splice(0);
    this.accumulating = null;
    for (const batch of dropped) batch.reject(error);
    if (this.failure === null) {
      this.logger?.warn({ cause: describeWriteError(err) }, 'store write failed; refusing changes until the data directory is writable again');
    }
    this.failure = error.message;
    this.probeTimer ??= setInterval(() => this.probe(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private healed(): void {
    if (this.failure === null) return;
    this.failure = null;
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.probeTimer = null;
    this.logger?.info({}, 'store writes succeed again');
  }

  /** While unhealthy: is the data directory writable again? Cuts the journal's fragment first. */
  private probe(): void {
    if (this.draining) return;
    try {
      this.journal.repair();
      const path = join(this.dataDir, PROBE_FILE);
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
      try {
        writeSync(fd, Buffer.alloc(4096));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      rmSync(path, { force: true });
      this.healed();
    } catch (err) {
      this.failure = writeFailure('data directory', err).message;
    }
  }

  private async tryCheckpoint(): Promise<void> {
    try {
      await this.checkpoint();
    } catch (err) {
      // Not a lost change: the journal holds it. The next commit retries the checkpoint.
      this.logger?.warn({ cause: describeWriteError(err) }, 'could not rewrite the store snapshot; the journal keeps growing until it can');
    }
  }
}

function tablesOf(snapshot: Snapshot | null): BaseTables {
  const tables = emptyTables();
  if (snapshot === null) return tables;
  for (const name of TABLE_NAMES) {
    const rows = tables.get(name) as Map<string, object>;
    // Object.entries sees every own key, `__proto__` included: ids stay plain strings.
    for (const [id, record] of Object.entries(snapshot[name] ?? {})) rows.set(id, record);
  }
  return tables;
}

function snapshotOf(tables: BaseTables, journalSeq: number): Snapshot {
  const snapshot: Snapshot = { schemaVersion: CURRENT_SCHEMA_VERSION, journalSeq };
  for (const name of TABLE_NAMES) {
    const byId = Object.create(null) as Record<string, object>;
    for (const [id, record] of tables.get(name) ?? []) byId[id] = record;
    snapshot[name] = byId;
  }
  return snapshot;
}

/** Schema versions this kmsd reads; 1 lacks the `hsm` table (added empty). */
const READABLE_SCHEMA_VERSIONS = new Set([1, CURRENT_SCHEMA_VERSION]);
/** Tables every readable snapshot has. */
const REQUIRED_TABLES: readonly TableName[] = ['keys', 'versions', 'operations', 'tokens', 'serviceAccounts', 'accessBindings'];

function parseSnapshot(path: string, text: string): Snapshot {
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
  const state = data as Record<string, unknown>;
  if (typeof state.schemaVersion !== 'number' || !READABLE_SCHEMA_VERSIONS.has(state.schemaVersion)) {
    throw new CorruptDataError(
      `data file ${path} has schemaVersion ${JSON.stringify(state.schemaVersion)}, ` +
        `this kmsd understands ${[...READABLE_SCHEMA_VERSIONS].join(' and ')}; refusing to start`,
    );
  }
  for (const table of REQUIRED_TABLES) {
    const value = state[table];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new CorruptDataError(`data file ${path} is missing its "${table}" table; refusing to start`);
    }
  }
  if (state.schemaVersion === 1) {
    // v1 kept each resource's bindings as a bare array; v2 wraps them in a record.
    const bindings = state.accessBindings as Record<string, unknown>;
    for (const [resource, value] of Object.entries(bindings)) {
      if (Array.isArray(value)) bindings[resource] = { resource, bindings: value };
    }
  }
  return state as Snapshot;
}
