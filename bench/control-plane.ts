/**
 * Control-plane growth: create-key latency and throughput with 0, 1k and 10k existing keys, and
 * daemon start time with 10k keys. Runs the real kmsd binary (SoftHSM2 keystore) on loopback.
 *
 *   node dist/bench/control-plane.js [--sizes 0,1000,10000] [--seconds 3] [--concurrency 16] [--runs 3]
 *
 * Prints one JSON object; bench/run.ts runs the same function and folds it into bench/results.md.
 * Every run starts a daemon on a fresh copy of a store filled to exactly that size, so the keys
 * earlier runs created never count; the start of that daemon is the start-time sample.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon, type BenchDaemon } from './kmsd.js';
import { figure, percentile, type Figure } from './stats.js';

export interface ControlPlaneOptions {
  sizes: number[];
  seconds: number;
  concurrency: number;
  runs: number;
  /** Upper bound for filling the store up to the next size. */
  fillTimeoutMs: number;
  log?: (line: string) => void;
}

export interface CreateSample {
  existingAtStart: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ControlPlaneStep {
  /** Nominal store size: the keys that existed before the first run of this step. */
  existing: number;
  samples: CreateSample[];
  opsPerSecond: Figure;
  p50Ms: Figure;
  p99Ms: Figure;
  /** Daemon start (spawn → healthy) with this many keys, one per run. */
  startMs: Figure;
  /** Filling the store up to `existing` (keys/s), for scale. */
  fillKeysPerSecond?: number;
}

export interface ControlPlaneResult {
  concurrency: number;
  seconds: number;
  steps: ControlPlaneStep[];
  restart: { keys: number; startMs: Figure };
}

async function createLoop(daemon: BenchDaemon, seconds: number, concurrency: number): Promise<{ count: number; latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'bench', name: 'k' });
      if (res.status !== 200) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { count: latencies.length, latencies, elapsedMs: performance.now() - started };
}

/** Creates keys until `target` exist; bounded by `timeoutMs`. */
async function fill(daemon: BenchDaemon, target: number, current: number, timeoutMs: number): Promise<number> {
  let next = current;
  const deadline = performance.now() + timeoutMs;
  const worker = async () => {
    while (next < target) {
      if (performance.now() > deadline) throw new Error(`filling to ${target} keys took longer than ${timeoutMs} ms (at ${next})`);
      next++;
      const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'fill' });
      if (res.status !== 200) throw new Error(`fill failed: ${JSON.stringify(res.body)}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return next;
}

/** Copies a stopped daemon's data dir; its softhsm2.conf names the token dir by absolute path. */
function copyDataDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
  const conf = join(to, 'softhsm2.conf');
  if (existsSync(conf)) writeFileSync(conf, readFileSync(conf, 'utf8').split(from).join(to));
}

export async function benchControlPlane(options: ControlPlaneOptions): Promise<ControlPlaneResult> {
  const log = options.log ?? (() => undefined);
  const root = tempDir('kms-bench-cp-');
  const token = newTestToken();
  const sizes = [...options.sizes].sort((a, b) => a - b);
  try {
    // One store filled step by step; a stopped copy of it at each size (kms.json, SoftHSM2 token,
    // audit log) is where every run starts, so each run sees exactly that many existing keys.
    const growing = join(root, 'growing');
    mkdirSync(growing);
    const snapshots = new Map<number, string>();
    const fillRates = new Map<number, number>();
    let existing = 0;
    for (const size of sizes) {
      const daemon = await startBenchDaemon({ dataDir: growing, token });
      try {
        if (size > existing) {
          const started = performance.now();
          const before = existing;
          existing = await fill(daemon, size, existing, options.fillTimeoutMs);
          fillRates.set(size, ((existing - before) * 1000) / (performance.now() - started));
        }
      } finally {
        await daemon.stop();
      }
      const snapshot = join(root, `at-${size}`);
      copyDataDir(growing, snapshot);
      snapshots.set(size, snapshot);
    }
    rmSync(growing, { recursive: true, force: true });

    const steps: ControlPlaneStep[] = [];
    const starts = new Map<number, number[]>();
    for (const size of sizes) {
      const samples: CreateSample[] = [];
      starts.set(size, []);
      for (let run = 0; run < options.runs; run++) {
        const dataDir = join(root, `run-${size}-${run}`);
        copyDataDir(snapshots.get(size)!, dataDir);
        const daemon = await startBenchDaemon({ dataDir, token });
        starts.get(size)!.push(daemon.startMs);
        try {
          const loop = await createLoop(daemon, options.seconds, options.concurrency);
          const sorted = [...loop.latencies].sort((a, b) => a - b);
          samples.push({ existingAtStart: size, opsPerSecond: (loop.count * 1000) / loop.elapsedMs, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) });
        } finally {
          await daemon.stop();
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
      const fillKeysPerSecond = fillRates.get(size);
      const step: ControlPlaneStep = {
        existing: size,
        samples,
        opsPerSecond: figure(samples.map((s) => s.opsPerSecond)),
        p50Ms: figure(samples.map((s) => s.p50Ms)),
        p99Ms: figure(samples.map((s) => s.p99Ms)),
        startMs: figure(starts.get(size)!),
        ...(fillKeysPerSecond !== undefined ? { fillKeysPerSecond } : {}),
      };
      steps.push(step);
      log(
        `controlplane ${size} keys: ${Math.round(step.opsPerSecond.median)} creates/s, p50 ${step.p50Ms.median.toFixed(1)} ms, ` +
          `p99 ${step.p99Ms.median.toFixed(1)} ms; start ${Math.round(step.startMs.median)} ms`,
      );
    }
    const largest = steps[steps.length - 1];
    return {
      concurrency: options.concurrency,
      seconds: options.seconds,
      steps,
      restart: { keys: largest?.existing ?? 0, startMs: largest?.startMs ?? figure([]) },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '0,1000,10000' },
      seconds: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '16' },
      runs: { type: 'string', default: '3' },
    },
  });
  const result = await benchControlPlane({
    sizes: values.sizes.split(',').map(Number),
    seconds: Number(values.seconds),
    concurrency: Number(values.concurrency),
    runs: Number(values.runs),
    fillTimeoutMs: 600000,
    log: (line) => console.error(line),
  });
  console.log(JSON.stringify(result, null, 2));
}
