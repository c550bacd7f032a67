/**
 * The scheduler's leader lease on PostgreSQL, with a fencing epoch.
 *
 * One row (`kms_lease`) names the holder, its epoch and its expiry on the DATABASE clock (no
 * node's clock matters). Every `renewMs` the holder extends it by `ttlMs`; any node takes it
 * once it has expired, incrementing the epoch. The scheduler's write transactions check holder
 * and epoch under a share lock (daemon/store/pg-store.ts `fenced`), so a node that lost the lease
 * — paused, partitioned, its connection killed — cannot commit scheduler work even if it has not
 * noticed yet. Locally a node steps down AT ONCE when a renewal fails or errors, when its lease
 * connection breaks, or when `ttlMs` has passed since the last renewal it sent that succeeded
 * (e.g. after SIGSTOP/SIGCONT), before it runs anything else.
 *
 * The lease uses its own connection (not the pool), so that terminating the node's backends
 * (pg_terminate_backend) is noticed by the lease itself. No session advisory lock is involved:
 * they are lost silently or stranded by connection poolers.
 */
import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { acquireLease, releaseLease, renewLease } from '../store/pg-sql.js';
import { describePgError, pgConnectionConfig, type Fence } from '../store/pg-store.js';

export interface LeaseLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LeaseStatus {
  leader: boolean;
  /** The epoch this node holds (0 when it does not hold the lease). */
  epoch: number;
  /** Epochs this node acquired since start. */
  acquisitions: number;
}

export class LeaderLease {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private held: { epoch: number; validUntil: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private acquisitions = 0;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly applicationName: string,
    readonly instanceId: string,
    readonly ttlMs: number,
    readonly renewMs: number,
    private readonly logger: LeaseLogger,
    /** Called on every change of leadership (true: acquired, false: stepped down). */
    private readonly onChange: (leader: boolean, epoch: number) => void = () => undefined,
  ) {}

  /** Tries once (so a single node leads before it listens), then keeps trying or renewing. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.renewMs);
    this.timer.unref();
  }

  /** The fence for a scheduler write now, or null (and a step-down) when the lease may have lapsed. */
  fence(): Fence | null {
    if (this.held === null) return null;
    if (performance.now() >= this.held.validUntil) {
      this.stepDown('the lease was not renewed within its TTL (this process was paused or its renewals stalled)');
      return null;
    }
    return { holder: this.instanceId, epoch: this.held.epoch };
  }

  isLeader(): boolean {
    return this.fence() !== null;
  }

  status(): LeaseStatus {
    const fence = this.fence();
    return { leader: fence !== null, epoch: fence?.epoch ?? 0, acquisitions: this.acquisitions };
  }

  /** Releases the lease (its expiry set to now) so another node takes over without waiting. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    while (this.ticking) await new Promise((r) => setTimeout(r, 5));
    const held = this.held;
    this.held = null;
    if (held !== null) {
      this.onChange(false, held.epoch);
      try {
        const client = await this.connection();
        await releaseLease(client, this.instanceId, held.epoch);
      } catch {
        // it expires by itself
      }
    }
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const sentAt = performance.now();
      const client = await this.connection();
      if (this.held !== null) {
        // Check the local deadline first: a paused process must not extend a lease it may have lost.
        if (this.fence() === null) return;
        const renewed = await renewLease(client, this.instanceId, this.held.epoch, this.ttlMs);
        if (!renewed) {
          this.stepDown('the lease row no longer names this node with its epoch (it expired and was taken)');
          return;
        }
        if (this.held !== null) this.held.validUntil = sentAt + this.ttlMs;
        return;
      }
      const epoch = await acquireLease(client, this.instanceId, this.ttlMs);
      if (epoch !== null && !this.stopped) {
        this.held = { epoch, validUntil: sentAt + this.ttlMs };
        this.acquisitions++;
        this.logger.info({ epoch, instanceId: this.instanceId }, 'took the scheduler lease');
        this.onChange(true, epoch);
      }
    } catch (err) {
      if (this.held !== null) this.stepDown(`renewing the lease failed: ${describePgError(err)}`);
      this.dropConnection();
    } finally {
      this.ticking = false;
    }
  }

  private stepDown(reason: string): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    this.logger.warn({ epoch: held.epoch, reason }, 'stepped down from the scheduler lease');
    this.onChange(false, held.epoch);
  }

  private dropConnection(): void {
    const client = this.client;
    this.client = null;
    client?.end().catch(() => undefined);
  }

  private connection(): Promise<pg.Client> {
    if (this.client !== null) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client(pgConnectionConfig(this.url, this.applicationName));
      client.on('error', (err) => {
        // The connection died (pg_terminate_backend, server restart): step down now, not at the next tick.
        if (this.client === client) this.client = null;
        this.stepDown(`the lease connection was lost: ${describePgError(err)}`);
        client.end().catch(() => undefined);
      });
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }
}
