/**
 * Audit in the cluster, the query side. Each node's keyed chain stays in its own data dir (the
 * evidence: segments, HMAC by the shared HSM audit key, head anchored in PostgreSQL). Behind each
 * fsync, the node copies its new durable events into `kms_audit_events` (instance id, seq, time,
 * the filter fields and the event's JSON as its trail holds it, MAC included), and the query API
 * reads that table, so one query returns every node's events merged by time, whichever node
 * answers it and whether or not the other nodes are up.
 *
 * The copy works off the trail itself: its cursor is the highest seq of this node already in the
 * table, and each round reads the trail's durable events after it (the trail's own query, a
 * bounded page at a time) and inserts them in one statement. Nothing is queued in memory, so a
 * database outage costs nothing but lag: the next round catches up from the files, and a node
 * that restarts resumes from the table. Rows already present are left alone (ON CONFLICT DO
 * NOTHING), so a round retried after a lost answer inserts nothing twice.
 *
 * Consistency: a node's own events are in the answer to its own query (the query waits until
 * the copy has reached the trail's durable head); another node's events appear once that node's
 * copy round has run, normally within ~100 ms of their fsync; the events of a node that is down
 * appear up to what it had copied, and the rest when it is back.
 */
import type pg from 'pg';
import { KmsError, invalidArgument } from '../domain/errors.js';
import type { AuditEvent, AuditLog, AuditPage, AuditQuery, ChainedAuditEvent, ComponentHealth, Metrics } from '../domain/ports.js';
import { toChained } from '../audit/chain.js';
import { AUDIT_MAX_PAGE_SIZE, decodePageToken, encodePageToken, validateQuery } from '../audit/query.js';
import type { SegmentedAuditLog } from '../audit/trail.js';
import { insertAuditEvents, lastCopiedAuditSeq, pruneAuditEvents, queryAuditEvents, type AuditCursor, type AuditEventRow } from '../store/pg-sql.js';
import { describePgError } from '../store/pg-store.js';

/** Events read from the trail and inserted per statement. */
export const AUDIT_COPY_BATCH = AUDIT_MAX_PAGE_SIZE;
/** A round starts at most this often (unless a query waits), so that a busy node inserts hundreds of events at a time. */
const MIN_ROUND_INTERVAL_MS = 50;
/** How long a query waits for this node's own events to reach the table before answering 503. */
const OWN_EVENTS_WAIT_MS = 5000;

export interface AuditCopyLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface AuditCopyOptions {
  /** Events older than this are removed from the table (every node's, for nodes that never return). */
  retentionMs: number;
  now: () => Date;
  metrics?: Pick<Metrics, 'auditCopyLag'>;
  /** Retries after a failed round and the retention pass; defaults 1 s and 60 s. */
  retryIntervalMs?: number;
  maintenanceIntervalMs?: number;
}

interface CopyWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Copies one node's durable audit events into PostgreSQL, behind its trail. */
export class AuditCopy {
  private copied: number;
  private running: Promise<void> | undefined;
  private again = false;
  private lastRoundMs = 0;
  private failure: string | undefined;
  private waiters: CopyWaiter[] = [];
  private timers: NodeJS.Timeout[] = [];
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    readonly instanceId: string,
    private readonly trail: SegmentedAuditLog,
    copied: number,
    private readonly logger: AuditCopyLogger,
    private readonly options: AuditCopyOptions,
  ) {
    this.copied = copied;
  }

  static async open(pool: pg.Pool, instanceId: string, trail: SegmentedAuditLog, logger: AuditCopyLogger, options: AuditCopyOptions): Promise<AuditCopy> {
    let copied = await lastCopiedAuditSeq(pool, instanceId);
    if (copied > trail.durableSeq) {
      // The table holds events this trail no longer has (a data dir restored from an older
      // backup, or a cut tail accepted with --audit-accept-loss): keep those rows as evidence and
      // copy what the trail holds after its own head.
      logger.error(
        { instanceId, copiedSeq: copied, trailHeadSeq: trail.durableSeq },
        `PostgreSQL holds audit events of this node up to seq ${copied} but its trail ends at seq ${trail.durableSeq}; the rows after it are kept, later events with the same seq are not copied`,
      );
      copied = trail.durableSeq;
    }
    return new AuditCopy(pool, instanceId, trail, copied, logger, options);
  }

  start(): void {
    this.trail.onDurable(() => this.kick());
    const retry = setInterval(() => this.kick(), this.options.retryIntervalMs ?? 1000);
    const maintenance = setInterval(() => void this.prune(), this.options.maintenanceIntervalMs ?? 60_000);
    retry.unref();
    maintenance.unref();
    this.timers.push(retry, maintenance);
    this.kick();
  }

  /** Resolves once this node's events up to `seq` are in the table; 503 after `timeoutMs`. */
  whenCopied(seq: number, timeoutMs = OWN_EVENTS_WAIT_MS): Promise<void> {
    if (this.copied >= seq) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(this.unavailable(seq));
      }, timeoutMs);
      const waiter: CopyWaiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.push(waiter);
      this.kick();
    });
  }

  /** Stops the timers after a last round (bounded), so events up to shutdown are copied when it can. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    this.kick();
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 3000).unref())]);
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.unavailable(waiter.seq));
  }

  private unavailable(seq: number): KmsError {
    const cause = this.failure === undefined ? 'it is still catching up' : this.failure;
    return new KmsError('UNAVAILABLE', `audit events: this node's events up to seq ${seq} are not in PostgreSQL yet (copied up to seq ${this.copied}; ${cause}); retry shortly`);
  }

  private kick(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    // A query waiting for its own node's events does not wait for the batching interval.
    const wait = this.waiters.length > 0 ? 0 : Math.max(0, this.lastRoundMs + MIN_ROUND_INTERVAL_MS - Date.now());
    this.running = new Promise<void>((resolve) => setTimeout(resolve, wait))
      .then(() => this.run())
      .finally(() => {
        this.running = undefined;
        if (this.again && this.failure === undefined) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async run(): Promise<void> {
    this.again = false;
    this.lastRoundMs = Date.now();
    try {
      await this.copyUpTo(this.trail.durableSeq);
      this.options.metrics?.auditCopyLag(Math.max(0, this.trail.durableSeq - this.copied));
      if (this.failure !== undefined) {
        this.logger.warn({ instanceId: this.instanceId, copiedSeq: this.copied }, 'the audit copy to PostgreSQL works again');
        this.failure = undefined;
      }
    } catch (err) {
      const cause = describePgError(err);
      if (this.failure === undefined) this.logger.warn({ cause, copiedSeq: this.copied }, 'copying audit events to PostgreSQL failed; retrying every second (the trail on disk is unaffected)');
      this.failure = cause;
      this.options.metrics?.auditCopyLag(Math.max(0, this.trail.durableSeq - this.copied));
      for (const waiter of this.waiters.splice(0)) waiter.reject(this.unavailable(waiter.seq));
    }
  }

  private async copyUpTo(target: number): Promise<void> {
    while (this.copied < target) {
      const page = await this.trail.query({ pageToken: encodePageToken(this.copied), pageSize: AUDIT_COPY_BATCH });
      await insertAuditEvents(this.pool, this.instanceId, page.events.map(rowOf));
      const last = page.events.at(-1)?.seq ?? this.copied;
      // Without a token the page holds every durable event after the cursor (the query settles
      // the trail first), so everything up to the target has been seen, gaps included.
      this.copied = page.nextPageToken !== undefined ? Math.max(last, decodePageToken(page.nextPageToken)) : Math.max(last, target);
      const still: CopyWaiter[] = [];
      for (const waiter of this.waiters) {
        if (waiter.seq <= this.copied) waiter.resolve();
        else still.push(waiter);
      }
      this.waiters = still;
    }
  }

  /** The table's retention: what this node's trail pruned, and every node's events past the retention period. */
  private async prune(): Promise<void> {
    try {
      const cutoff = new Date(this.options.now().getTime() - this.options.retentionMs).toISOString();
      await pruneAuditEvents(this.pool, this.instanceId, this.trail.firstRetainedSeq, cutoff);
    } catch (err) {
      this.logger.warn({ cause: describePgError(err) }, 'pruning the audit copy in PostgreSQL failed; retrying at the next pass');
    }
  }
}

function rowOf(event: ChainedAuditEvent): AuditEventRow {
  return {
    seq: event.seq,
    time: event.time,
    folderId: event.folderId,
    keyId: event.keyId,
    subject: event.subject,
    operation: event.operation,
    event: JSON.stringify(event),
  };
}

// ---- the merged query ----

const TOKEN_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const INSTANCE_ID = /^[a-z0-9-]{4,64}$/;

/** Opaque to callers: the (time, node, seq) of the last event returned. */
export function encodeClusterPageToken(cursor: AuditCursor): string {
  return Buffer.from(`at:${cursor.time}|${cursor.instanceId}|${cursor.seq}`).toString('base64url');
}

export function decodeClusterPageToken(token: string): AuditCursor {
  const match = /^at:([^|]{1,40})\|([^|]{1,64})\|(\d{1,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  const [, time, instanceId, seq] = match ?? [];
  if (time === undefined || instanceId === undefined || seq === undefined || !TOKEN_TIME.test(time) || Number.isNaN(Date.parse(time)) || !INSTANCE_ID.test(instanceId)) {
    throw invalidArgument('pageToken', 'is not a token returned by a previous call');
  }
  return { time, instanceId, seq: Number(seq) };
}

/**
 * The audit log of a node on PostgreSQL: appends go to the node's own trail (durable before the
 * answer, as on a single node); queries read every node's copied events, merged by time (then
 * node, then seq), with the same filters, limits and errors as a single node's query. Each event
 * carries the `instanceId` of the node whose chain holds it (`seq` and `prev` are per node).
 */
export class ClusterAuditLog implements AuditLog {
  constructor(
    private readonly trail: SegmentedAuditLog,
    private readonly copy: AuditCopy,
    private readonly pool: pg.Pool,
  ) {}

  append(event: AuditEvent): void {
    this.trail.append(event);
  }

  flush(): Promise<void> {
    return this.trail.flush();
  }

  health(): ComponentHealth {
    return this.trail.health();
  }

  async query(query: AuditQuery): Promise<AuditPage> {
    const { pageToken, ...rest } = query;
    const { pageSize } = validateQuery(rest);
    const after = pageToken === undefined || pageToken === '' ? undefined : decodeClusterPageToken(pageToken);
    // This node's own events, up to now, are in the answer (read your own writes).
    try {
      await this.trail.flush();
    } catch {
      // what is durable is still readable
    }
    await this.copy.whenCopied(this.trail.durableSeq);
    let rows: Awaited<ReturnType<typeof queryAuditEvents>>;
    try {
      rows = await queryAuditEvents(
        this.pool,
        { folderId: query.folderId, keyId: query.keyId, subject: query.subject, operation: query.operation, from: query.from, to: query.to, after },
        pageSize + 1,
      );
    } catch (err) {
      throw new KmsError('UNAVAILABLE', `audit events: PostgreSQL did not answer the query (${describePgError(err)})`);
    }
    const page = rows.slice(0, pageSize);
    const events = page.map((row) => ({ ...toChained(JSON.parse(row.event) as Record<string, unknown>), instanceId: row.instanceId }));
    const last = page.at(-1);
    if (rows.length > pageSize && last !== undefined) {
      return { events, nextPageToken: encodeClusterPageToken({ time: last.time, instanceId: last.instanceId, seq: last.seq }) };
    }
    return { events };
  }

  async close(): Promise<void> {
    await this.trail.close();
    await this.copy.close();
  }
}
