/**
 * The `Store` port on PostgreSQL, for several kmsd nodes on one database (`kmsd --store
 * postgres://…`). The only file besides ./pg-sql.ts and daemon/cluster that imports `pg`.
 *
 * Each node keeps the whole state in memory in the same engine as the file store
 * (./state-engine.ts), as a replica of the database, with the revision of every record:
 *
 * - `read` answers from the replica. It holds every commit of this node as soon as it is
 *   acknowledged, and other nodes' commits once a NOTIFY (sent in the committing transaction)
 *   has been handled, or at the latest after one poll interval when notifications are lost
 *   (listener reconnecting). That is the consistency window for reads on other nodes.
 * - `update` queues the mutation; one worker per node runs queued mutations in batches against
 *   the replica (each one's changes see the ones before it), then commits the batch as ONE
 *   PostgreSQL transaction: lock every record the batch read through `get` or wrote, check each
 *   one's revision against the replica's (optimistic version check: another node may have
 *   changed it since), write the changed records under one new cluster-wide revision, COMMIT.
 *   An answer is given only after COMMIT returned. On a version conflict the batch is dropped
 *   (its undo steps run), the replica catches up and the batch runs again, up to
 *   `MAX_ATTEMPTS` times; then its callers get `ABORTED` (409), safe to retry.
 * - Scheduler writes go through `fenced(…)`: their transaction also checks, under a share lock,
 *   that this node still holds the leader lease with its epoch (daemon/cluster/lease.ts).
 * - Faults: a lost or refused connection rejects the batch with `UNAVAILABLE` naming the cause and
 *   marks the store unhealthy until a database round trip succeeds again (the poll is the probe).
 *   A connection lost during COMMIT itself is ambiguous: the change may be durable, so its undo
 *   steps (destroying HSM objects) are not run; the replica learns the truth from the database.
 */
import pg from 'pg';
import { KmsError } from '../domain/errors.js';
import { TABLE_NAMES, type StateTx, type StateView, type TableName } from '../domain/model.js';
import type { ComponentHealth, Store } from '../domain/ports.js';
import { CHANGES_CHANNEL, changesSince, checkFence, loadAll, lockRecords, migrate, purgeTombstones, recordKey, writeRecords, type RecordRow } from './pg-sql.js';
import { Layer, StateEngine, deepFreeze, emptyTables } from './state-engine.js';
import type { StoreLogger } from './lowdb-store.js';

/** Attempts of one batch against version conflicts before its callers get ABORTED. */
const MAX_ATTEMPTS = 8;
/** Mutations committed together in one transaction at most. */
const MAX_BATCH = 256;

/** Who may write the scheduler's changes: the lease holder under its epoch. */
export interface Fence {
  holder: string;
  epoch: number;
}

export interface PgStoreOptions {
  url: string;
  /** `application_name` of every connection (kmsd:<instance id>), so operators can find them. */
  applicationName: string;
  /** Catch-up poll when notifications are lost. */
  pollIntervalMs?: number;
  poolSize?: number;
  logger?: StoreLogger;
}

export interface PgStore extends Store {
  /** A view of this store whose updates commit only while `fence()` names the current lease. */
  fenced(fence: () => Fence | null): Store;
  /** The connection pool, shared with the lease, node registry and audit anchors. */
  readonly pool: pg.Pool;
  /** Cluster-wide revision the replica has applied (every commit up to it is visible). */
  appliedRevision(): number;
  /** Batches re-run after a version conflict with another node, since start. */
  conflictCount(): number;
  /** Waits until the replica has caught up with the database as of now. */
  sync(): Promise<void>;
  /**
   * Called for every record another node changed or deleted, as the replica applies it (before,
   * after; undefined when absent): caches beside the store (the keystore's unwrapped material)
   * are invalidated through it.
   */
  onRemoteChange(listener: (table: TableName, before: object | undefined, after: object | undefined) => void): void;
  /** Housekeeping (leader only): drop tombstones every replica has had time to see. */
  purgeTombstones(olderThanSeconds: number): Promise<number>;
}

interface Item {
  mutate: (state: StateTx) => unknown;
  fence: (() => Fence | null) | null;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  result?: unknown;
  error?: Error;
}

interface RowChange {
  tbl: TableName;
  id: string;
  /** Revision the replica had when the batch ran (0: absent). */
  expected: number;
  /** Changed (or deleted): written under the new revision; otherwise only checked. */
  write: boolean;
  data: object | null;
}

class Conflict extends Error {}

export function pgConnectionConfig(url: string, applicationName: string): pg.ClientConfig {
  return { connectionString: url, application_name: applicationName, connectionTimeoutMillis: 5000, keepAlive: true };
}

/** Connects, applies the migrations (refusing a newer schema), loads the replica, starts listening. */
export async function openPgStore(options: PgStoreOptions): Promise<PgStore> {
  const pool = new pg.Pool({ ...pgConnectionConfig(options.url, options.applicationName), max: options.poolSize ?? 8, idleTimeoutMillis: 30_000 });
  // An idle client whose connection dies (server restart, pg_terminate_backend) emits here; the
  // pool drops it and the next query opens a new one.
  pool.on('error', (err) => options.logger?.warn({ cause: describePgError(err) }, 'PostgreSQL connection lost (idle); reconnecting on next use'));
  try {
    const client = await pool.connect();
    try {
      const migrated = await migrate(client);
      if (migrated.from !== migrated.to) options.logger?.info({ from: migrated.from, to: migrated.to }, 'migrated the PostgreSQL schema');
      const snapshot = await loadAll(client);
      const store = new PostgresStore(pool, options, snapshot.rev, snapshot.rows);
      await store.listen();
      return store;
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    if (err instanceof Error && err.name === 'SchemaTooNewError') throw err;
    throw new Error(`cannot open the PostgreSQL store: ${describePgError(err)}`, { cause: err });
  }
}

class PostgresStore implements PgStore {
  private readonly engine: StateEngine;
  private readonly revs = new Map<TableName, Map<string, number>>();
  private lastSeen: number;
  private conflicts = 0;
  private remoteListeners: ((table: TableName, before: object | undefined, after: object | undefined) => void)[] = [];
  private readonly queue: Item[] = [];
  private working = false;
  private catchUpWanted = false;
  private readonly syncWaiters: (() => void)[] = [];
  private failure: string | null = null;
  private closed = false;
  private listener: pg.Client | null = null;
  private listenerRetry: NodeJS.Timeout | null = null;
  private readonly pollTimer: NodeJS.Timeout;
  private readonly logger: StoreLogger | undefined;

  constructor(
    readonly pool: pg.Pool,
    private readonly options: PgStoreOptions,
    rev: number,
    rows: RecordRow[],
  ) {
    this.logger = options.logger;
    this.lastSeen = rev;
    for (const name of TABLE_NAMES) this.revs.set(name, new Map());
    const tables = tablesOfRows(rows, (table, row) => this.revs.get(table)?.set(row.id, row.rev));
    this.engine = new StateEngine(tables);
    this.pollTimer = setInterval(() => this.requestCatchUp(), options.pollIntervalMs ?? 1000);
    this.pollTimer.unref();
  }

  read<T>(query: (state: StateView) => T): T {
    return query(this.engine.durable());
  }

  update<T>(mutate: (state: StateTx) => T): Promise<T> {
    return this.enqueue(mutate, null);
  }

  fenced(fence: () => Fence | null): Store {
    return {
      read: (query) => this.read(query),
      update: (mutate) => this.enqueue(mutate, fence),
      health: () => this.health(),
      close: () => Promise.resolve(),
    };
  }

  health(): ComponentHealth {
    return this.failure === null ? { ok: true } : { ok: false, reason: this.failure };
  }

  appliedRevision(): number {
    return this.lastSeen;
  }

  onRemoteChange(listener: (table: TableName, before: object | undefined, after: object | undefined) => void): void {
    this.remoteListeners.push(listener);
  }

  private notifyRemote(table: TableName, before: object | undefined, after: object | undefined): void {
    for (const listener of this.remoteListeners) {
      try {
        listener(table, before, after);
      } catch (err) {
        this.logger?.warn({ cause: describePgError(err) }, 'a listener of replicated changes failed');
      }
    }
  }

  conflictCount(): number {
    return this.conflicts;
  }

  sync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.syncWaiters.push(resolve);
      this.requestCatchUp();
    });
  }

  purgeTombstones(olderThanSeconds: number): Promise<number> {
    return purgeTombstones(this.pool, olderThanSeconds);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    if (this.listenerRetry !== null) clearTimeout(this.listenerRetry);
    while (this.working || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  /** The dedicated LISTEN connection; reconnects after a second when it drops. */
  async listen(): Promise<void> {
    const client = new pg.Client(pgConnectionConfig(this.options.url, this.options.applicationName));
    const retry = () => {
      if (this.closed || this.listenerRetry !== null) return;
      this.listenerRetry = setTimeout(() => {
        this.listenerRetry = null;
        this.listen().catch(() => retry());
      }, 1000);
      this.listenerRetry.unref();
    };
    // The payload is the committed revision: this node's own commits (already applied) need no catch-up.
    client.on('notification', (message) => {
      const rev = Number(message.payload);
      if (!Number.isSafeInteger(rev) || rev > this.lastSeen) this.requestCatchUp();
    });
    client.on('error', (err) => {
      this.logger?.warn({ cause: describePgError(err) }, 'PostgreSQL notification connection lost; polling until it is back');
      if (this.listener === client) this.listener = null;
      client.end().catch(() => undefined);
      retry();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    // Anything committed while the listener was away.
    this.requestCatchUp();
  }

  private enqueue<T>(mutate: (state: StateTx) => T, fence: (() => Fence | null) | null): Promise<T> {
    if (this.closed) return Promise.reject(new KmsError('UNAVAILABLE', 'the store is closed (kmsd is shutting down)'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ mutate, fence, resolve: resolve as (value: unknown) => void, reject });
      this.kick();
    });
  }

  private requestCatchUp(): void {
    if (this.closed) return;
    this.catchUpWanted = true;
    this.kick();
  }

  private kick(): void {
    if (this.working) return;
    this.working = true;
    setImmediate(() => void this.work());
  }

  /** The one worker: catch-ups and batches, never at the same time. */
  private async work(): Promise<void> {
    try {
      for (;;) {
        if (this.catchUpWanted) {
          this.catchUpWanted = false;
          const waiters = this.syncWaiters.splice(0);
          try {
            await this.catchUp();
            this.healed();
          } catch (err) {
            this.failed(err);
          }
          for (const waiter of waiters) waiter();
          continue;
        }
        const first = this.queue[0];
        if (first === undefined) break;
        // One batch: consecutive items with the same fence (scheduler writes commit on their own).
        let count = 1;
        while (count < this.queue.length && count < MAX_BATCH && this.queue[count]?.fence === first.fence) count++;
        const batch = this.queue.splice(0, count);
        await this.commit(batch, first.fence);
      }
    } finally {
      this.working = false;
      if (this.catchUpWanted || this.queue.length > 0) this.kick();
    }
  }

  private async commit(batch: Item[], fenceOf: (() => Fence | null) | null): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const fence = fenceOf === null ? null : fenceOf();
      if (fenceOf !== null && fence === null) {
        settle(batch, new KmsError('ABORTED', 'this node does not hold the scheduler lease; the leader does this work'));
        return;
      }
      const layer = new Layer();
      this.engine.push(layer);
      for (const item of batch) {
        delete item.error;
        try {
          item.result = this.engine.transact(layer, item.mutate);
        } catch (err) {
          item.error = err instanceof Error ? err : new Error(String(err));
        }
      }
      const rows = this.changesOf(layer);
      if (rows.length === 0) {
        this.engine.commitOldest(layer);
        settle(batch);
        return;
      }
      let rev: number | null;
      try {
        rev = await this.transaction(rows, fence);
      } catch (err) {
        if (err instanceof Conflict) {
          this.conflicts++;
          this.engine.abortAll();
          if (attempt >= MAX_ATTEMPTS) {
            settle(batch, new KmsError('ABORTED', 'the records changed on another node concurrently, again and again; retry the request'));
            return;
          }
          try {
            await this.catchUp();
          } catch (catchUpErr) {
            this.failed(catchUpErr);
            settle(batch, this.unavailable(catchUpErr));
            return;
          }
          continue;
        }
        if (err instanceof KmsError) {
          this.engine.abortAll();
          settle(batch, err);
          return;
        }
        const ambiguous = err instanceof CommitError;
        this.engine.abortAll({ undo: !ambiguous });
        this.failed(ambiguous ? err.cause : err);
        settle(batch, this.unavailable(ambiguous ? err.cause : err));
        if (ambiguous) this.requestCatchUp();
        return;
      }
      this.engine.commitOldest(layer);
      // The next revision after everything applied: nothing from another node lies in between.
      if (rev !== null && rev === this.lastSeen + 1) this.lastSeen = rev;
      if (rev !== null) {
        for (const row of rows) {
          if (!row.write) continue;
          const revs = this.revs.get(row.tbl);
          if (row.data === null) revs?.delete(row.id);
          else revs?.set(row.id, rev);
        }
      }
      this.healed();
      settle(batch);
      return;
    }
  }

  /** What the batch read (through `get`) and changed, with the revisions the replica had. */
  private changesOf(layer: Layer): RowChange[] {
    const rows: RowChange[] = [];
    const list = layer.list();
    const base = this.engine.tables();
    for (const [tbl, records] of list.set) {
      const current = base.get(tbl);
      for (const [id, record] of records) {
        const before = current?.get(id);
        rows.push({ tbl, id, expected: this.revs.get(tbl)?.get(id) ?? 0, write: before === undefined || JSON.stringify(before) !== JSON.stringify(record), data: record });
      }
    }
    for (const [tbl, ids] of list.del) {
      const current = base.get(tbl);
      for (const id of ids) {
        const existed = current?.has(id) === true;
        rows.push({ tbl, id, expected: this.revs.get(tbl)?.get(id) ?? 0, write: existed, data: null });
      }
    }
    return rows;
  }

  /** One transaction: fence, lock and check, write. Returns the new revision (null: nothing written). */
  private async transaction(rows: RowChange[], fence: Fence | null): Promise<number | null> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        if (fence !== null) {
          const lease = await checkFence(client);
          if (lease.holder !== fence.holder || lease.epoch !== fence.epoch || lease.remainingMs <= 0) {
            throw new KmsError(
              'ABORTED',
              `fenced: the scheduler lease is at epoch ${lease.epoch} held by ${lease.holder ?? 'nobody'}, this node had epoch ${fence.epoch}; the write was refused`,
            );
          }
        }
        const actual = await lockRecords(client, rows);
        for (const row of rows) {
          if ((actual.get(recordKey(row.tbl, row.id)) ?? 0) !== row.expected) throw new Conflict();
        }
        const writes = rows.filter((r) => r.write);
        const rev = writes.length === 0 ? null : await writeRecords(client, writes.map((r) => ({ tbl: r.tbl, id: r.id, data: r.data === null ? null : JSON.stringify(r.data) })));
        try {
          await client.query('COMMIT');
        } catch (err) {
          throw new CommitError(err);
        }
        return rev;
      } catch (err) {
        if (!(err instanceof CommitError)) await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } catch (err) {
      // Deadlock or serialization failure between nodes' lock orders: the same as a version conflict.
      const code = (err as { code?: unknown }).code;
      if (code === '40P01' || code === '40001') throw new Conflict();
      if (!(err instanceof KmsError) && !(err instanceof Conflict)) broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Applies every commit made since the replica's revision (all of it again after a tombstone purge). */
  private async catchUp(): Promise<void> {
    const changes = await changesSince(this.pool, this.lastSeen);
    if (changes.purgedRev > this.lastSeen) {
      const client = await this.pool.connect();
      try {
        const snapshot = await loadAll(client);
        this.reload(snapshot.rev, snapshot.rows);
      } finally {
        client.release();
      }
      return;
    }
    const base = this.engine.tables();
    for (const row of changes.rows) {
      this.lastSeen = Math.max(this.lastSeen, row.rev);
      const table = tableName(row.tbl);
      if (table === null) continue;
      const revs = this.revs.get(table) as Map<string, number>;
      const rows = base.get(table) as Map<string, object>;
      if (row.data === null) {
        if ((revs.get(row.id) ?? 0) < row.rev) {
          const before = rows.get(row.id);
          rows.delete(row.id);
          revs.delete(row.id);
          if (before !== undefined) this.notifyRemote(table, before, undefined);
        }
      } else if ((revs.get(row.id) ?? 0) < row.rev) {
        const before = rows.get(row.id);
        rows.set(row.id, deepFreeze(row.data));
        revs.set(row.id, row.rev);
        this.notifyRemote(table, before, row.data);
      }
    }
  }

  private reload(rev: number, records: RecordRow[]): void {
    const base = this.engine.tables();
    for (const name of TABLE_NAMES) {
      base.get(name)?.clear();
      this.revs.get(name)?.clear();
    }
    for (const row of records) {
      const table = tableName(row.tbl);
      if (table === null || row.data === null) continue;
      base.get(table)?.set(row.id, deepFreeze(row.data));
      this.revs.get(table)?.set(row.id, row.rev);
    }
    this.lastSeen = rev;
    this.logger?.info({ rev }, 'reloaded the replica from PostgreSQL (tombstones were purged since it last caught up)');
  }

  private unavailable(err: unknown): KmsError {
    return new KmsError('UNAVAILABLE', `PostgreSQL is unavailable: ${describePgError(err)}`);
  }

  private failed(err: unknown): void {
    const reason = `PostgreSQL is unavailable: ${describePgError(err)}`;
    if (this.failure === null) this.logger?.warn({ cause: describePgError(err) }, 'PostgreSQL round trip failed; refusing changes until it works again');
    this.failure = reason;
  }

  private healed(): void {
    if (this.failure === null) return;
    this.failure = null;
    this.logger?.info({}, 'PostgreSQL round trips succeed again');
  }
}

class CommitError extends Error {
  constructor(override readonly cause: unknown) {
    super('COMMIT failed');
  }
}

function settle(batch: Item[], error?: Error): void {
  for (const item of batch) {
    const err = error ?? item.error;
    if (err !== undefined) item.reject(err);
    else item.resolve(item.result);
  }
}

const TABLES = new Set<string>(TABLE_NAMES);
function tableName(tbl: string): TableName | null {
  return TABLES.has(tbl) ? (tbl as TableName) : null;
}

/** The model's tables from live records (others skipped), telling `each` about every row kept. */
function tablesOfRows(rows: RecordRow[], each?: (table: TableName, row: RecordRow) => void): ReturnType<typeof emptyTables> {
  const tables = emptyTables();
  for (const row of rows) {
    const table = tableName(row.tbl);
    if (table === null || row.data === null) continue;
    tables.get(table)?.set(row.id, row.data);
    each?.(table, row);
  }
  return tables;
}

/**
 * The cluster's state read once, in one snapshot, without migrating, listening or writing
 * anything (for `kmsd hsm status` next to live nodes). Fails on a database kmsd never set up.
 */
export async function readPgSnapshot(url: string): Promise<StateView> {
  const client = new pg.Client(pgConnectionConfig(url, 'kmsd-status'));
  await client.connect();
  try {
    const { rows } = await loadAll(client);
    return new StateEngine(tablesOfRows(rows)).durable();
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A short, operator-facing cause: the driver's code and message, never SQL text or parameters. */
export function describePgError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
