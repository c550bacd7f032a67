/**
 * The `Metrics` port as Prometheus series (prom-client; the only file that imports it), served
 * at `GET /metrics` in the text exposition format. Label children are looked up once per label
 * set and cached, so an observation on the hot path is a Map lookup and a bucket increment.
 *
 * Series (all prefixed `kms_`; README "Metrics" lists them with example alerts):
 *   kms_calls_total{operation,result}                 counter
 *   kms_call_duration_seconds{operation,result}       histogram
 *   kms_audit_flush_duration_seconds                  histogram (one fsync'd batch)
 *   kms_audit_batch_events                            histogram (events per batch)
 *   kms_keystore_call_duration_seconds{operation,algorithm}  histogram
 *   kms_hsm_errors_total{operation,code}              counter
 *   kms_store_commit_duration_seconds                 histogram
 *   kms_scheduler_lag_seconds                         gauge (last run's delay)
 *   kms_process_* / kms_nodejs_*                      process metrics (prom-client defaults)
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from '../domain/ports.js';

/** Latency buckets from 100 µs to 10 s: the data plane lives in the low milliseconds. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Caches the child of a labelled metric per label set. */
class Children<C> {
  private readonly cache = new Map<string, C>();
  constructor(private readonly make: (a: string, b: string) => C) {}
  get(a: string, b: string): C {
    const key = `${a}\u0000${b}`;
    let child = this.cache.get(key);
    if (child === undefined) {
      // Label values come from our own closed sets (operation ids, error codes, algorithms); an
      // unrouted call is counted as "unrouted", never with its path, so the set stays small.
      child = this.make(a, b);
      this.cache.set(key, child);
    }
    return child;
  }
}

export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly calls: Children<Counter.Internal>;
  private readonly callDuration: Children<Histogram.Internal<string>>;
  private readonly keystoreDuration: Children<Histogram.Internal<string>>;
  private readonly hsmErrors: Children<Counter.Internal>;
  private readonly auditFlush: Histogram;
  private readonly auditBatch: Histogram;
  private readonly storeCommit: Histogram;
  private readonly schedulerLag: Gauge;

  constructor() {
    const registers = [this.registry];
    const calls = new Counter({ name: 'kms_calls_total', help: 'API calls by operation and result code', labelNames: ['operation', 'result'], registers });
    const callDuration = new Histogram({
      name: 'kms_call_duration_seconds',
      help: 'Time from reading a call to answering it, including waiting for its audit event to be durable',
      labelNames: ['operation', 'result'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const keystoreDuration = new Histogram({
      name: 'kms_keystore_call_duration_seconds',
      help: 'Keystore (HSM) calls by operation and algorithm',
      labelNames: ['operation', 'algorithm'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const hsmErrors = new Counter({ name: 'kms_hsm_errors_total', help: 'Keystore calls that failed for a reason other than the input', labelNames: ['operation', 'code'], registers });
    this.auditFlush = new Histogram({ name: 'kms_audit_flush_duration_seconds', help: 'Write and fsync of one audit batch', buckets: LATENCY_BUCKETS, registers });
    this.auditBatch = new Histogram({ name: 'kms_audit_batch_events', help: 'Audit events per durable batch (group commit)', buckets: BATCH_BUCKETS, registers });
    this.storeCommit = new Histogram({ name: 'kms_store_commit_duration_seconds', help: 'From a store update to its durability', buckets: LATENCY_BUCKETS, registers });
    this.schedulerLag = new Gauge({ name: 'kms_scheduler_lag_seconds', help: 'How late the last scheduler run started', registers });
    this.calls = new Children((a, b) => calls.labels(a, b));
    this.callDuration = new Children((a, b) => callDuration.labels(a, b));
    this.keystoreDuration = new Children((a, b) => keystoreDuration.labels(a, b));
    this.hsmErrors = new Children((a, b) => hsmErrors.labels(a, b));
    collectDefaultMetrics({ register: this.registry, prefix: 'kms_' });
  }

  /** `operation` is a route's operation id, or "unrouted" (never a path: the label set stays closed). */
  callFinished(operation: string, result: string, seconds: number): void {
    this.calls.get(operation, result).inc();
    this.callDuration.get(operation, result).observe(seconds);
  }

  auditFlushed(seconds: number, events: number): void {
    this.auditFlush.observe(seconds);
    this.auditBatch.observe(events);
  }

  keystoreCall(operation: string, algorithm: string, seconds: number): void {
    this.keystoreDuration.get(operation, algorithm).observe(seconds);
  }

  hsmError(operation: string, code: string): void {
    this.hsmErrors.get(operation, code).inc();
  }

  storeCommitted(seconds: number): void {
    this.storeCommit.observe(seconds);
  }

  schedulerRan(lagSeconds: number): void {
    this.schedulerLag.set(lagSeconds);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
