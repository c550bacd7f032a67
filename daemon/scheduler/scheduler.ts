/**
 * Drives the domain's due work (automatic rotation, scheduled destruction, end of the restore
 * window) on a timer. Runs never overlap; a failed run is logged and retried on the next tick.
 */
import type { DueWorkReport, KeyService } from '../domain/keys.js';
import { NO_METRICS, type Metrics } from '../domain/ports.js';

export interface SchedulerLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<DueWorkReport> | null = null;

  constructor(
    private readonly keys: KeyService,
    private readonly logger: SchedulerLogger,
    private readonly intervalMs = 1000,
    private readonly metrics: Metrics = NO_METRICS,
    /** On PostgreSQL: whether this node holds the leader lease; others do no due work. */
    private readonly isLeader: () => boolean = () => true,
  ) {}

  start(): void {
    let planned = Date.now() + this.intervalMs;
    this.timer = setInterval(() => {
      // How late this tick fires: a blocked event loop or a slow previous run shows up here.
      const now = Date.now();
      this.metrics.schedulerRan(Math.max(0, now - planned) / 1000);
      planned = now + this.intervalMs;
      this.runOnce().catch((err: unknown) => this.logger.error({ err }, 'scheduler run failed'));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Runs the due work now (or joins the run in progress) and reports what it did. */
  async runOnce(): Promise<DueWorkReport> {
    if (this.running !== null) {
      await this.running.catch(() => undefined);
    }
    if (!this.isLeader()) return { rotated: [], destroyedVersions: [], purgedKeys: [], prunedOperations: 0 };
    const run = this.keys.runDueWork();
    this.running = run;
    try {
      const report = await run;
      if (report.rotated.length + report.destroyedVersions.length + report.purgedKeys.length > 0) {
        this.logger.info(report, 'scheduler did due work');
      }
      return report;
    } finally {
      if (this.running === run) this.running = null;
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }
}
