/**
 * The `Metrics` port as Prometheus series, served at `GET /metrics` in the text exposition
 * format. The process series (`kms_process_*`, `kms_nodejs_*`) come from prom-client's default
 * collectors (the only import of prom-client). The series fed on the request path are kept here
 * in plain typed arrays: prom-client re-hashes the label object on every observation, which a
 * profile showed costing 8 µs per call, while an observation here is a Map lookup of a cached
 * child and a bucket increment.
 *
 * Series (README "Metrics" lists them with example alerts):
 *   kms_calls_total{operation,result}                         counter
 *   kms_call_duration_seconds{operation,result}               histogram
 *   kms_audit_flush_duration_seconds                          histogram (one fsync'd batch)
 *   kms_audit_batch_events                                    histogram (events per batch)
 *   kms_keystore_call_duration_seconds{operation,algorithm}   histogram
 *   kms_hsm_errors_total{operation,code}                      counter
 *   kms_store_commit_duration_seconds                         histogram
 *   kms_scheduler_lag_seconds                                 gauge (last run's delay)
 *   kms_audit_copy_lag_events                                 gauge (PostgreSQL only: events not yet in the cluster's query copy)
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from '../domain/ports.js';

/** Latency buckets from 100 µs to 10 s: the data plane lives in the low milliseconds. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((name, i) => `${name}="${escapeLabel(values[i] ?? '')}"`);
  if (extra !== undefined) parts.unshift(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  return String(value);
}

interface HistogramChild {
  values: string[];
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram over a fixed set of label names; children cached per label values. */
class FastHistogram {
  private readonly children = new Map<string, HistogramChild>();

  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly buckets: readonly number[],
  ) {}

  observe(value: number, ...labels: string[]): void {
    const key = labels.join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = { values: labels, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.children.set(key, child);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) {
        child.counts[i] = (child.counts[i] as number) + 1;
        break;
      }
    }
    child.sum += value;
    child.count++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const child of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += child.counts[i] as number;
        lines.push(`${this.name}_bucket${labelText(this.labelNames, child.values, `le="${formatNumber(bound)}"`)} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket${labelText(this.labelNames, child.values, 'le="+Inf"')} ${child.count}`);
      lines.push(`${this.name}_sum${labelText(this.labelNames, child.values)} ${child.sum}`);
      lines.push(`${this.name}_count${labelText(this.labelNames, child.values)} ${child.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** A counter (or, with `set`, a gauge) over a fixed set of label names. */
class FastCounter {
  private readonly children = new Map<string, { values: string[]; value: number }>();

  constructor(
    private readonly name: string,
    private readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly type: 'counter' | 'gauge' = 'counter',
  ) {}

  private child(labels: string[]): { values: string[]; value: number } {
    const key = labels.join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = { values: labels, value: 0 };
      this.children.set(key, child);
    }
    return child;
  }

  inc(...labels: string[]): void {
    this.child(labels).value++;
  }

  set(value: number, ...labels: string[]): void {
    this.child(labels).value = value;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const child of this.children.values()) lines.push(`${this.name}${labelText(this.labelNames, child.values)} ${child.value}`);
    return `${lines.join('\n')}\n`;
  }
}

export class PrometheusMetrics implements Metrics {
  /** prom-client's registry, for the process series only. */
  readonly registry = new Registry();
  private readonly calls = new FastCounter('kms_calls_total', 'API calls by operation and result code', ['operation', 'result']);
  private readonly callDuration = new FastHistogram(
    'kms_call_duration_seconds',
    'Time from reading a call to answering it, including waiting for its audit event to be durable',
    ['operation', 'result'],
    LATENCY_BUCKETS,
  );
  private readonly keystoreDuration = new FastHistogram('kms_keystore_call_duration_seconds', 'Keystore (HSM) calls by operation and algorithm', ['operation', 'algorithm'], LATENCY_BUCKETS);
  private readonly hsmErrors = new FastCounter('kms_hsm_errors_total', 'Keystore calls that failed for a reason other than the input', ['operation', 'code']);
  private readonly auditFlush = new FastHistogram('kms_audit_flush_duration_seconds', 'Write and fsync of one audit batch', [], LATENCY_BUCKETS);
  private readonly auditBatch = new FastHistogram('kms_audit_batch_events', 'Audit events per durable batch (group commit)', [], BATCH_BUCKETS);
  private readonly storeCommit = new FastHistogram('kms_store_commit_duration_seconds', 'From a store update to its durability', [], LATENCY_BUCKETS);
  private readonly schedulerLag = new FastCounter('kms_scheduler_lag_seconds', 'How late the last scheduler run started', [], 'gauge');
  private readonly auditCopy = new FastCounter('kms_audit_copy_lag_events', "This node's durable audit events not yet copied to PostgreSQL (the cluster-wide audit query lags by them)", [], 'gauge');

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kms_' });
    // Present from the start, so an alert on it does not see "no data" before the first error.
    this.schedulerLag.set(0);
  }

  /** `operation` is a route's operation id, or "unrouted" (never a path: the label set stays closed). */
  callFinished(operation: string, result: string, seconds: number): void {
    this.calls.inc(operation, result);
    this.callDuration.observe(seconds, operation, result);
  }

  auditFlushed(seconds: number, events: number): void {
    this.auditFlush.observe(seconds);
    this.auditBatch.observe(events);
  }

  keystoreCall(operation: string, algorithm: string, seconds: number): void {
    this.keystoreDuration.observe(seconds, operation, algorithm);
  }

  hsmError(operation: string, code: string): void {
    this.hsmErrors.inc(operation, code);
  }

  storeCommitted(seconds: number): void {
    this.storeCommit.observe(seconds);
  }

  schedulerRan(lagSeconds: number): void {
    this.schedulerLag.set(lagSeconds);
  }

  auditCopyLag(events: number): void {
    this.auditCopy.set(events);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    const ours = [this.calls, this.callDuration, this.keystoreDuration, this.hsmErrors, this.auditFlush, this.auditBatch, this.storeCommit, this.schedulerLag, this.auditCopy]
      .map((m) => m.render())
      .join('\n');
    return { contentType: this.registry.contentType, text: `${ours}\n${await this.registry.metrics()}` };
  }
}
