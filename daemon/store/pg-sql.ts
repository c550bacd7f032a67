/**
 * Every SQL statement kmsd sends to PostgreSQL, and the versioned schema migrations. Nothing else
 * in the daemon writes SQL: the store (./pg-store.ts), the leader lease and node registry
 * (daemon/cluster) and the audit anchors call the functions here.
 *
 * Schema (version 1):
 *   kms_schema_migrations  one row per applied migration; a database newer than this binary is refused
 *   kms_meta               one row: `rev`, the cluster-wide commit counter, and `purged_rev`, the
 *                          newest revision of a tombstone removed by housekeeping
 *   kms_records            every record of every table of the model (daemon/domain/model.ts) as
 *                          JSON, with the revision of the commit that last wrote it; a deleted
 *                          record stays as a tombstone (deleted, data NULL) so that other nodes'
 *                          replicas learn of the deletion, until housekeeping purges it
 *   kms_lease              the scheduler's leader lease: holder, fencing epoch, expiry (database clock)
 *   kms_nodes              the nodes that ever started on this database, with their last heartbeat
 *   kms_audit_anchors      each node's audit chain head (instance id, seq, MAC)
 *
 * Schema version 2 adds:
 *   kms_audit_events       every node's durable audit events (instance id, seq, time, the filter
 *                          fields and the event as its trail holds it, MAC included), copied from
 *                          the node's trail behind the fsync (daemon/cluster/audit-replica.ts):
 *                          the cluster-wide query API reads it, merged by time
 *
 * Revisions are handed out in commit order: a write transaction takes the `kms_meta` row lock as
 * its last statement before COMMIT and holds it until the commit is visible, so a replica that
 * has applied every revision up to N has seen every commit up to N.
 */
import type pg from 'pg';

export type Queryable = Pick<pg.ClientBase, 'query'>;

/** The schema version this binary writes; a database with a newer one is refused. */
export const LATEST_SCHEMA_VERSION = 2;
export const LEASE_NAME = 'scheduler';
export const CHANGES_CHANNEL = 'kms_changes';
/** Transaction-scoped advisory lock key that serializes migrations of concurrently starting nodes. */
const MIGRATION_LOCK_KEY = 0x6b6d7364; // "kmsd"

const MIGRATIONS: readonly { version: number; statements: readonly string[] }[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE kms_meta (
         id smallint PRIMARY KEY CHECK (id = 1),
         rev bigint NOT NULL,
         purged_rev bigint NOT NULL
       )`,
      `INSERT INTO kms_meta (id, rev, purged_rev) VALUES (1, 0, 0)`,
      `CREATE TABLE kms_records (
         tbl text NOT NULL,
         id text NOT NULL,
         seq bigserial NOT NULL,
         rev bigint NOT NULL,
         deleted boolean NOT NULL DEFAULT false,
         data json,
         changed_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (tbl, id),
         CHECK (deleted = (data IS NULL))
       )`,
      `CREATE INDEX kms_records_rev ON kms_records (rev)`,
      `CREATE TABLE kms_lease (
         name text PRIMARY KEY,
         holder text,
         epoch bigint NOT NULL,
         acquired_at timestamptz,
         expires_at timestamptz
       )`,
      `INSERT INTO kms_lease (name, holder, epoch) VALUES ('${LEASE_NAME}', NULL, 0)`,
      `CREATE TABLE kms_nodes (
         instance_id text PRIMARY KEY,
         url text NOT NULL,
         version text NOT NULL,
         started_at timestamptz NOT NULL,
         last_seen timestamptz NOT NULL
       )`,
      `CREATE TABLE kms_audit_anchors (
         instance_id text PRIMARY KEY,
         seq bigint NOT NULL,
         mac text NOT NULL,
         anchored_at text NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now()
       )`,
    ],
  },
  {
    version: 2,
    statements: [
      `CREATE TABLE kms_audit_events (
         instance_id text NOT NULL,
         seq bigint NOT NULL,
         time timestamptz NOT NULL,
         folder_id text,
         key_id text,
         subject text NOT NULL,
         operation text NOT NULL,
         event text NOT NULL,
         PRIMARY KEY (instance_id, seq)
       )`,
      // The query's order (time, then node, then seq) and its usual filters.
      `CREATE INDEX kms_audit_events_time ON kms_audit_events (time, instance_id, seq)`,
      `CREATE INDEX kms_audit_events_key ON kms_audit_events (key_id, time, instance_id, seq) WHERE key_id IS NOT NULL`,
      `CREATE INDEX kms_audit_events_folder ON kms_audit_events (folder_id, time, instance_id, seq) WHERE folder_id IS NOT NULL`,
    ],
  },
];

/** The database's schema is newer than this binary: an older kmsd must not write to it. */
export class SchemaTooNewError extends Error {
  constructor(found: number) {
    super(
      `the PostgreSQL database has schema version ${found}, this kmsd understands up to ${LATEST_SCHEMA_VERSION}; ` +
        'refusing to start (upgrade kmsd on this node)',
    );
    this.name = 'SchemaTooNewError';
  }
}

/** Applies the missing migrations, one transaction, serialized across nodes. Returns the version. */
export async function migrate(client: pg.ClientBase): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS kms_schema_migrations (
      version integer PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const result = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM kms_schema_migrations');
    const from = result.rows[0]?.version ?? 0;
    if (from > LATEST_SCHEMA_VERSION) throw new SchemaTooNewError(from);
    for (const migration of MIGRATIONS) {
      if (migration.version <= from) continue;
      for (const statement of migration.statements) await client.query(statement);
      await client.query('INSERT INTO kms_schema_migrations (version) VALUES ($1)', [migration.version]);
    }
    await client.query('COMMIT');
    return { from, to: Math.max(from, LATEST_SCHEMA_VERSION) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export interface RecordRow {
  tbl: string;
  id: string;
  rev: number;
  deleted: boolean;
  data: object | null;
}

interface RawRecordRow {
  tbl: string;
  id: string;
  rev: string;
  deleted: boolean;
  data: object | null;
}

const toRecordRow = (row: RawRecordRow): RecordRow => ({ tbl: row.tbl, id: row.id, rev: Number(row.rev), deleted: row.deleted, data: row.data });

/** Every live record in creation order, and the revision this snapshot is at (one REPEATABLE READ snapshot). */
export async function loadAll(client: pg.ClientBase): Promise<{ rev: number; rows: RecordRow[] }> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const meta = await client.query<{ rev: string }>('SELECT rev FROM kms_meta WHERE id = 1');
    const rows = await client.query<RawRecordRow>('SELECT tbl, id, rev, deleted, data FROM kms_records WHERE NOT deleted ORDER BY seq');
    await client.query('COMMIT');
    return { rev: Number(meta.rows[0]?.rev ?? 0), rows: rows.rows.map(toRecordRow) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Records written (or deleted) after revision `since`, oldest first; and the tombstone purge mark. */
export async function changesSince(db: Queryable, since: number): Promise<{ purgedRev: number; rows: RecordRow[] }> {
  const meta = await db.query<{ purged_rev: string }>('SELECT purged_rev FROM kms_meta WHERE id = 1');
  const purgedRev = Number(meta.rows[0]?.purged_rev ?? 0);
  if (purgedRev > since) return { purgedRev, rows: [] };
  const rows = await db.query<RawRecordRow>('SELECT tbl, id, rev, deleted, data FROM kms_records WHERE rev > $1 ORDER BY rev, seq', [since]);
  return { purgedRev, rows: rows.rows.map(toRecordRow) };
}

/** Locks the rows about to be checked and written; returns each one's live revision (0: absent or deleted). */
export async function lockRecords(client: pg.ClientBase, keys: { tbl: string; id: string }[]): Promise<Map<string, number>> {
  // A row lock cannot cover a record that does not exist yet: two nodes inserting the same id
  // (a folder's first access binding) would both see it absent. A transaction-scoped advisory
  // lock per record id, taken in one order, makes the second wait and then see the first's row.
  await client.query(
    `SELECT pg_advisory_xact_lock(s.h) FROM (
       SELECT DISTINCT hashtextextended(k.tbl || chr(1) || k.id, 0) AS h FROM unnest($1::text[], $2::text[]) AS k(tbl, id) ORDER BY h
     ) s`,
    [keys.map((k) => k.tbl), keys.map((k) => k.id)],
  );
  const result = await client.query<{ tbl: string; id: string; rev: string; deleted: boolean }>(
    `SELECT r.tbl, r.id, r.rev, r.deleted FROM kms_records r
       JOIN unnest($1::text[], $2::text[]) AS k(tbl, id) ON r.tbl = k.tbl AND r.id = k.id
     ORDER BY r.tbl, r.id FOR UPDATE OF r`,
    [keys.map((k) => k.tbl), keys.map((k) => k.id)],
  );
  const revs = new Map<string, number>();
  for (const row of result.rows) revs.set(recordKey(row.tbl, row.id), row.deleted ? 0 : Number(row.rev));
  return revs;
}

export const recordKey = (tbl: string, id: string): string => `${tbl}\u0000${id}`;

/**
 * Writes records (null data: a tombstone) under one new revision, the last statement of the
 * transaction, and notifies the other nodes at commit. Returns the revision.
 */
export async function writeRecords(client: pg.ClientBase, rows: { tbl: string; id: string; data: string | null }[]): Promise<number> {
  const result = await client.query<{ rev: string }>(
    `WITH c AS (UPDATE kms_meta SET rev = rev + 1 WHERE id = 1 RETURNING rev),
          w AS (
            INSERT INTO kms_records (tbl, id, rev, deleted, data)
            SELECT t.tbl, t.id, c.rev, t.data IS NULL, t.data
              FROM c, unnest($1::text[], $2::text[], $3::json[]) AS t(tbl, id, data)
            ON CONFLICT (tbl, id) DO UPDATE
              SET rev = excluded.rev, deleted = excluded.deleted, data = excluded.data, changed_at = now()
            RETURNING 1
          )
     SELECT c.rev, pg_notify('${CHANGES_CHANNEL}', c.rev::text) FROM c`,
    [rows.map((r) => r.tbl), rows.map((r) => r.id), rows.map((r) => r.data)],
  );
  return Number(result.rows[0]?.rev);
}

/**
 * Removes tombstones older than `olderThanSeconds` and raises `purged_rev`, so that a node whose
 * replica is older than the purge reloads everything instead of missing a deletion.
 */
export async function purgeTombstones(db: Queryable, olderThanSeconds: number): Promise<number> {
  const result = await db.query<{ purged: string }>(
    `WITH d AS (DELETE FROM kms_records WHERE deleted AND changed_at < now() - make_interval(secs => $1) RETURNING rev),
          m AS (UPDATE kms_meta SET purged_rev = GREATEST(purged_rev, (SELECT max(rev) FROM d)) WHERE id = 1 AND EXISTS (SELECT 1 FROM d))
     SELECT count(*) AS purged FROM d`,
    [olderThanSeconds],
  );
  return Number(result.rows[0]?.purged ?? 0);
}

// --- The leader lease (daemon/cluster/lease.ts). Every expiry is on the database clock. ---

export interface LeaseRow {
  holder: string | null;
  epoch: number;
  /** Milliseconds the lease still runs, on the database clock (≤ 0: expired). */
  remainingMs: number;
}

/** Takes the lease when it is free or expired: a new epoch. Null when another node holds it. */
export async function acquireLease(db: Queryable, holder: string, ttlMs: number): Promise<number | null> {
  const result = await db.query<{ epoch: string }>(
    `UPDATE kms_lease SET holder = $2, epoch = epoch + 1, acquired_at = now(), expires_at = now() + make_interval(secs => $3)
      WHERE name = $1 AND (holder IS NULL OR expires_at IS NULL OR expires_at <= now())
      RETURNING epoch`,
    [LEASE_NAME, holder, ttlMs / 1000],
  );
  const row = result.rows[0];
  return row === undefined ? null : Number(row.epoch);
}

/** Extends the lease this node holds under `epoch`; false when it no longer does (expired or taken). */
export async function renewLease(db: Queryable, holder: string, epoch: number, ttlMs: number): Promise<boolean> {
  const result = await db.query(
    `UPDATE kms_lease SET expires_at = now() + make_interval(secs => $4)
      WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()`,
    [LEASE_NAME, holder, epoch, ttlMs / 1000],
  );
  return result.rowCount === 1;
}

/** Ends the lease at once (clean shutdown), so another node takes over without waiting for the TTL. */
export async function releaseLease(db: Queryable, holder: string, epoch: number): Promise<void> {
  await db.query(`UPDATE kms_lease SET expires_at = now() WHERE name = $1 AND holder = $2 AND epoch = $3`, [LEASE_NAME, holder, epoch]);
}

/**
 * The fence of the scheduler's writes: inside their transaction, the lease must still be held by
 * `holder` under `epoch` and not have expired. FOR SHARE holds off a takeover until the commit.
 */
export async function checkFence(client: pg.ClientBase): Promise<LeaseRow> {
  const result = await client.query<{ holder: string | null; epoch: string; remaining_ms: string | null }>(
    `SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint AS remaining_ms
       FROM kms_lease WHERE name = $1 FOR SHARE`,
    [LEASE_NAME],
  );
  const row = result.rows[0];
  return { holder: row?.holder ?? null, epoch: Number(row?.epoch ?? 0), remainingMs: Number(row?.remaining_ms ?? 0) };
}

export async function readLease(db: Queryable): Promise<LeaseRow> {
  const result = await db.query<{ holder: string | null; epoch: string; remaining_ms: string | null }>(
    `SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::bigint AS remaining_ms FROM kms_lease WHERE name = $1`,
    [LEASE_NAME],
  );
  const row = result.rows[0];
  return { holder: row?.holder ?? null, epoch: Number(row?.epoch ?? 0), remainingMs: Number(row?.remaining_ms ?? 0) };
}

export async function readClusterMeta(db: Queryable): Promise<{ schemaVersion: number; rev: number }> {
  const schema = await db.query<{ version: number | null }>('SELECT max(version) AS version FROM kms_schema_migrations');
  const meta = await db.query<{ rev: string }>('SELECT rev FROM kms_meta WHERE id = 1');
  return { schemaVersion: schema.rows[0]?.version ?? 0, rev: Number(meta.rows[0]?.rev ?? 0) };
}

// --- Nodes ---

export async function registerNode(db: Queryable, node: { instanceId: string; url: string; version: string }): Promise<void> {
  await db.query(
    `INSERT INTO kms_nodes (instance_id, url, version, started_at, last_seen) VALUES ($1, $2, $3, now(), now())
     ON CONFLICT (instance_id) DO UPDATE SET url = excluded.url, version = excluded.version, started_at = now(), last_seen = now()`,
    [node.instanceId, node.url, node.version],
  );
}

export async function heartbeatNode(db: Queryable, instanceId: string): Promise<void> {
  await db.query('UPDATE kms_nodes SET last_seen = now() WHERE instance_id = $1', [instanceId]);
}

export interface NodeRow {
  instanceId: string;
  url: string;
  version: string;
  startedAt: string;
  /** Seconds since the last heartbeat, on the database clock. */
  silentSeconds: number;
}

export async function listNodes(db: Queryable): Promise<NodeRow[]> {
  const result = await db.query<{ instance_id: string; url: string; version: string; started_at: Date; silent: string }>(
    `SELECT instance_id, url, version, started_at, EXTRACT(EPOCH FROM (now() - last_seen))::float8 AS silent
       FROM kms_nodes ORDER BY started_at`,
  );
  return result.rows.map((r) => ({
    instanceId: r.instance_id,
    url: r.url,
    version: r.version,
    startedAt: r.started_at.toISOString(),
    silentSeconds: Number(r.silent),
  }));
}

// --- Audit anchors (one per node) ---

export async function readAuditAnchor(db: Queryable, instanceId: string): Promise<{ seq: number; mac: string; time: string } | null> {
  const result = await db.query<{ seq: string; mac: string; anchored_at: string }>(
    'SELECT seq, mac, anchored_at FROM kms_audit_anchors WHERE instance_id = $1',
    [instanceId],
  );
  const row = result.rows[0];
  return row === undefined ? null : { seq: Number(row.seq), mac: row.mac, time: row.anchored_at };
}

/** Raises the node's anchor; never moves it backwards. */
export async function writeAuditAnchor(db: Queryable, instanceId: string, anchor: { seq: number; mac: string; time: string }): Promise<void> {
  await db.query(
    `INSERT INTO kms_audit_anchors (instance_id, seq, mac, anchored_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (instance_id) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, anchored_at = excluded.anchored_at, updated_at = now()
       WHERE kms_audit_anchors.seq <= excluded.seq`,
    [instanceId, anchor.seq, anchor.mac, anchor.time],
  );
}

export async function listAuditAnchors(db: Queryable): Promise<{ instanceId: string; seq: number; mac: string; time: string }[]> {
  const result = await db.query<{ instance_id: string; seq: string; mac: string; anchored_at: string }>(
    'SELECT instance_id, seq, mac, anchored_at FROM kms_audit_anchors ORDER BY instance_id',
  );
  return result.rows.map((r) => ({ instanceId: r.instance_id, seq: Number(r.seq), mac: r.mac, time: r.anchored_at }));
}

// --- Audit events of every node (the query copy; each node's trail stays the evidence) ---

/** One durable event of a node's trail, as copied to `kms_audit_events`. */
export interface AuditEventRow {
  seq: number;
  time: string;
  folderId: string | undefined;
  keyId: string | undefined;
  subject: string;
  operation: string;
  /** The event as JSON, exactly as the node's trail holds it (with seq, prev and mac). */
  event: string;
}

/** The highest seq of the node's events already copied (0: none). */
export async function lastCopiedAuditSeq(db: Queryable, instanceId: string): Promise<number> {
  const result = await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM kms_audit_events WHERE instance_id = $1', [instanceId]);
  return Number(result.rows[0]?.seq ?? 0);
}

/** Copies events of one node; a row already there (a retry after a lost answer) is left as it is. */
export async function insertAuditEvents(db: Queryable, instanceId: string, rows: readonly AuditEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO kms_audit_events (instance_id, seq, time, folder_id, key_id, subject, operation, event)
     SELECT $1, t.seq, t.time, t.folder_id, t.key_id, t.subject, t.operation, t.event
       FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
         AS t(seq, time, folder_id, key_id, subject, operation, event)
     ON CONFLICT (instance_id, seq) DO NOTHING`,
    [
      instanceId,
      rows.map((r) => r.seq),
      rows.map((r) => r.time),
      rows.map((r) => r.folderId ?? null),
      rows.map((r) => r.keyId ?? null),
      rows.map((r) => r.subject),
      rows.map((r) => r.operation),
      rows.map((r) => r.event),
    ],
  );
}

/** Where a page of the merged query continues: after this (time, node, seq). */
export interface AuditCursor {
  time: string;
  instanceId: string;
  seq: number;
}

export interface AuditEventsFilter {
  folderId?: string | undefined;
  keyId?: string | undefined;
  subject?: string | undefined;
  operation?: string | undefined;
  /** Inclusive bounds, RFC 3339 (undefined: open). */
  from?: string | undefined;
  to?: string | undefined;
  after?: AuditCursor | undefined;
}

/** Matching events of every node, by time, then node, then seq; at most `limit`. */
export async function queryAuditEvents(
  db: Queryable,
  filter: AuditEventsFilter,
  limit: number,
): Promise<{ instanceId: string; seq: number; time: string; event: string }[]> {
  const result = await db.query<{ instance_id: string; seq: string; time: Date; event: string }>(
    `SELECT instance_id, seq, time, event FROM kms_audit_events
      WHERE ($1::text IS NULL OR folder_id = $1)
        AND ($2::text IS NULL OR key_id = $2)
        AND ($3::text IS NULL OR subject = $3)
        AND ($4::text IS NULL OR operation = $4)
        AND ($5::timestamptz IS NULL OR time >= $5)
        AND ($6::timestamptz IS NULL OR time <= $6)
        AND ($7::timestamptz IS NULL OR (time, instance_id, seq) > ($7, $8::text, $9::bigint))
      ORDER BY time, instance_id, seq
      LIMIT $10`,
    [
      filter.folderId ?? null,
      filter.keyId ?? null,
      filter.subject ?? null,
      filter.operation ?? null,
      filter.from ?? null,
      filter.to ?? null,
      filter.after?.time ?? null,
      filter.after?.instanceId ?? null,
      filter.after?.seq ?? null,
      limit,
    ],
  );
  return result.rows.map((r) => ({ instanceId: r.instance_id, seq: Number(r.seq), time: r.time.toISOString(), event: r.event }));
}

/**
 * Retention of the copy: the node's own events that its trail has pruned (seq below its first
 * retained one), and every node's events older than `olderThan` (also those of nodes that never
 * came back). Returns the rows removed.
 */
export async function pruneAuditEvents(db: Queryable, instanceId: string, belowSeq: number, olderThan: string | undefined): Promise<number> {
  const own = await db.query('DELETE FROM kms_audit_events WHERE instance_id = $1 AND seq < $2', [instanceId, belowSeq]);
  const old = olderThan === undefined ? { rowCount: 0 } : await db.query('DELETE FROM kms_audit_events WHERE time < $1', [olderThan]);
  return (own.rowCount ?? 0) + (old.rowCount ?? 0);
}
