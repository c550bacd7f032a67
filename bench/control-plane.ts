/**
 * Control-plane growth: create-key latency and throughput with 0, 1k and 10k existing keys, and
 * daemon start time with 10k keys. Runs the real kmsd binary (SoftHSM2 keystore) on loopback.
 *
 *   node dist/bench/control-plane.js [--sizes 0,1000,10000] [--seconds 3] [--concurrency 16] [--runs 3]
 *
 * Prints one JSON object; bench/run.ts folds it into bench/results.md.
 */
import { parseArgs } from 'node:util';
import { api, startDaemon, tempDir, type DaemonProcess } from '../test/support/daemon.js';

interface Sample {
  existing: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function createLoop(daemon: DaemonProcess, seconds: number, concurrency: number): Promise<{ count: number; latencies: number[] }> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'bench', name: 'k' });
      if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { count: latencies.length, latencies };
}

async function fill(daemon: DaemonProcess, target: number, current: number): Promise<void> {
  let next = current;
  const worker = async () => {
    while (next < target) {
      next++;
      const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'fill' });
      if (res.status !== 200) throw new Error(`fill failed: ${JSON.stringify(res.body)}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function benchControlPlane(options: { sizes: number[]; seconds: number; concurrency: number }) {
  const dataDir = tempDir('kms-bench-cp-');
  let daemon = await startDaemon({ dataDir, testClock: false });
  const samples: Sample[] = [];
  let existing = 0;
  for (const size of options.sizes) {
    if (size > existing) {
      await fill(daemon, size, existing);
      existing = size;
    }
    const run = await createLoop(daemon, options.seconds, options.concurrency);
    const sorted = [...run.latencies].sort((a, b) => a - b);
    samples.push({ existing, opsPerSecond: run.count / options.seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) });
    existing += run.count;
  }
  await daemon.stop();
  const started = performance.now();
  daemon = await startDaemon({ dataDir, testClock: false, env: { KMS_BOOTSTRAP_TOKEN: daemon.token } });
  const startMs = performance.now() - started;
  const health = await api(daemon, 'GET', '/healthz');
  await daemon.stop();
  return { samples, restart: { keys: existing, startMs, healthy: health.status === 200 } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { sizes: { type: 'string', default: '0,1000,10000' }, seconds: { type: 'string', default: '3' }, concurrency: { type: 'string', default: '16' } },
  });
  const result = await benchControlPlane({
    sizes: values.sizes.split(',').map(Number),
    seconds: Number(values.seconds),
    concurrency: Number(values.concurrency),
  });
  console.log(JSON.stringify(result, null, 2));
}
