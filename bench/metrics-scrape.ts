/**
 * The bench scrapes kmsd's `/metrics` at the end of its data-plane runs (metrics stay on while it
 * is loaded, so the ratios are measured with them) and reports what the daemon itself saw: calls,
 * audit batches (group commit) and fsync time, keystore time per call, and whether every series
 * the README documents was there.
 */

/** The series the README's Metrics table documents (prom-client's process series as two of them). */
export const DOCUMENTED_SERIES = [
  'kms_calls_total',
  'kms_call_duration_seconds',
  'kms_audit_flush_duration_seconds',
  'kms_audit_batch_events',
  'kms_keystore_call_duration_seconds',
  'kms_hsm_errors_total',
  'kms_store_commit_duration_seconds',
  'kms_scheduler_lag_seconds',
  'kms_process_resident_memory_bytes',
  'kms_nodejs_eventloop_lag_p99_seconds',
] as const;

export interface Sample {
  name: string;
  labels: Map<string, string>;
  value: number;
}

/** Prometheus text exposition → samples (comments and blank lines skipped). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = new Map<string, string>();
    for (const l of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels.set(l[1]!, l[2]!);
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

export interface MetricsSummary {
  /** Calls by operation id and result, as counted by the daemon. */
  calls: { operation: string; result: string; count: number; meanMs: number }[];
  auditBatches: number;
  meanEventsPerBatch: number;
  meanAuditFlushMs: number;
  /** Keystore calls by operation and algorithm, mean µs per call. */
  keystore: { operation: string; algorithm: string; count: number; meanUs: number }[];
  hsmErrors: number;
  /** Documented series absent from the scrape (should be empty). */
  missingSeries: string[];
}

function sum(samples: Sample[], name: string, match: (labels: Map<string, string>) => boolean = () => true): number {
  return samples.filter((s) => s.name === name && match(s.labels)).reduce((total, s) => total + s.value, 0);
}

export function summarizeMetrics(text: string): MetricsSummary {
  const samples = parsePrometheus(text);
  // A series is there when declared (`# TYPE`): a counter with no observations yet has no samples.
  const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const calls = samples
    .filter((s) => s.name === 'kms_calls_total' && s.value > 0)
    .map((s) => {
      const operation = s.labels.get('operation') ?? '';
      const result = s.labels.get('result') ?? '';
      const same = (l: Map<string, string>) => l.get('operation') === operation && l.get('result') === result;
      const seconds = sum(samples, 'kms_call_duration_seconds_sum', same);
      const count = sum(samples, 'kms_call_duration_seconds_count', same);
      return { operation, result, count: s.value, meanMs: count > 0 ? (seconds / count) * 1000 : NaN };
    })
    .sort((a, b) => b.count - a.count);
  const batches = sum(samples, 'kms_audit_batch_events_count');
  const flushes = sum(samples, 'kms_audit_flush_duration_seconds_count');
  const keystore = samples
    .filter((s) => s.name === 'kms_keystore_call_duration_seconds_count' && s.value > 0)
    .map((s) => {
      const operation = s.labels.get('operation') ?? '';
      const algorithm = s.labels.get('algorithm') ?? '';
      const same = (l: Map<string, string>) => l.get('operation') === operation && l.get('algorithm') === algorithm;
      return { operation, algorithm, count: s.value, meanUs: (sum(samples, 'kms_keystore_call_duration_seconds_sum', same) / s.value) * 1e6 };
    })
    .sort((a, b) => b.count - a.count);
  return {
    calls,
    auditBatches: batches,
    meanEventsPerBatch: batches > 0 ? sum(samples, 'kms_audit_batch_events_sum') / batches : NaN,
    meanAuditFlushMs: flushes > 0 ? (sum(samples, 'kms_audit_flush_duration_seconds_sum') / flushes) * 1000 : NaN,
    keystore,
    hsmErrors: sum(samples, 'kms_hsm_errors_total'),
    missingSeries: DOCUMENTED_SERIES.filter((name) => !names.has(name)),
  };
}
