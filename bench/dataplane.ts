/**
 * Data plane over HTTP: encrypt and decrypt of 256 B and 4 KiB at a fixed number of connections
 * with autocannon, against kmsd (an AES_256 key, wrapped, and an AES_256_HSM key), a bare
 * node:http server doing the same AES-GCM call (bench/raw-server.ts, the ceiling for this
 * runtime), local-kms (the Go AWS KMS emulator) when it can be built, and HashiCorp Vault's transit
 * engine without and with a file audit device (bench/vault.ts) when its binary is cached or
 * --build-vault is given. Each server runs alone, pinned to CPU 0 while this process (the load) is
 * pinned to CPU 1, when taskset and two cores are there.
 *
 * Per target, operation and size: `runs` peak runs (ops/s, p50 and p99 latency at peak), then
 * `runs` runs at a fixed rate of half the median peak with evenly spaced arrivals, each request
 * timed from when it was due (bench/paced.ts), for p50 and p99 there.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { api, newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon, stopChild } from './kmsd.js';
import { ensureLocalKms, startLocalKms, trent, type LocalKmsBinary } from './local-kms.js';
import { REPO_ROOT } from './paths.js';
import { figure, type Figure } from './stats.js';
import { pacedLoadInChild, type RequestShape } from './paced.js';
import { cpuTimes, pinProcess, processCpuMs, stealPercent } from './system.js';
import { summarizeMetrics, type MetricsSummary } from './metrics-scrape.js';
import { ensureVault, startVault, VAULT_AUDIT_TARGET, VAULT_KEY, VAULT_TARGET, type VaultBinary } from './vault.js';

export type Operation = 'encrypt' | 'decrypt';

export interface DataPlaneOptions {
  /** Seconds per peak run and per fixed-rate run. */
  seconds: number;
  rateSeconds: number;
  warmupSeconds: number;
  /** Untimed seconds at the fixed rate before each fixed-rate run (bench/paced.ts). */
  rateWarmupSeconds: number;
  connections: number;
  runs: number;
  sizes: number[];
  /** Try `go install` for local-kms when it is not in the tools cache. */
  buildLocalKms: boolean;
  /** Run .ci/install-vault.sh (16–20 min cold) when Vault is not in the tools cache. */
  buildVault: boolean;
  /** Pin servers to CPU 0 and the load to CPU 1. */
  pin: boolean;
  /** Write a V8 CPU profile of each kmsd into this directory (--cpu-prof). */
  profileDir?: string;
  /** Only these targets (names as in the results); all when undefined. */
  targets?: string[];
  log: (line: string) => void;
}

export interface DataPlaneCase {
  target: string;
  operation: Operation;
  size: number;
  peakOpsPerSecond: Figure;
  p50MsAtPeak: Figure;
  p99MsAtPeak: Figure;
  /**
   * The server's CPU time (user + system, all its threads; /proc) per answered call over the peak
   * runs, in µs: with the server alone on its core this is what bounds its peak, and unlike ops/s
   * it does not move with the VM's steal.
   */
  cpuUsPerCallAtPeak?: Figure;
  /** The fixed rate: half the median peak. */
  halfRate: number;
  achievedOpsPerSecondAtHalfRate: Figure;
  p50MsAtHalfRate: Figure;
  p99MsAtHalfRate: Figure;
  /** Non-2xx answers, socket errors and timeouts over all runs of the case (should be 0). */
  failures: number;
  /** Over the fixed-rate runs: requests sent, those sent > 1 ms late, the worst lag (bench/paced.ts). */
  halfRateLoad?: { requests: number; lateSends: number; maxSendLagMs: number };
}

export interface DataPlaneResult {
  connections: number;
  seconds: number;
  rateSeconds: number;
  rateWarmupSeconds?: number;
  pinned: boolean;
  localKms: { available: boolean; detail: string };
  /** HashiCorp Vault transit (targets "vault transit" and "vault transit + file audit"). */
  vault?: { available: boolean; detail: string };
  cases: DataPlaneCase[];
  /** Targets that could not be run, with the reason. */
  skipped: Record<string, string>;
  /** kmsd's own /metrics, scraped after its runs (metrics are on during them). */
  kmsdMetrics?: MetricsSummary | { error: string };
  /**
   * CPU steal over the section (% of all CPU time, /proc/stat): on a VM, time the host ran others;
   * stalls that long land in the p99s.
   */
  cpuStealPercent?: number;
}

/** One server under test: what to send for an operation and size, and how to stop it. */
interface Target {
  name: string;
  /** The server's process, for its CPU time per call. */
  pid: number;
  request(operation: Operation, size: number): Promise<RequestShape>;
  stop(): Promise<void>;
}

const json = { 'content-type': 'application/json' };

async function postJson(shape: Omit<RequestShape, 'body'>, body: unknown): Promise<any> {
  const response = await fetch(shape.url, { method: 'POST', headers: shape.headers, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${shape.url} → ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function kmsdTargets(
  options: DataPlaneOptions,
  wanted: (name: string) => boolean,
): Promise<{ targets: Target[]; scrape: () => Promise<MetricsSummary | { error: string }>; stop: () => Promise<void> }> {
  const dataDir = tempDir('kms-bench-dp-');
  const daemon = await startBenchDaemon({
    dataDir,
    token: newTestToken(),
    ...(options.pin ? { cpus: '0' } : {}),
    ...(options.profileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] } : {}),
  });
  const targets: Target[] = [];
  for (const algorithm of ['AES_256', 'AES_256_HSM']) {
    const name = `kmsd ${algorithm}`;
    if (!wanted(name)) continue;
    const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'bench', name: `dp-${algorithm.toLowerCase()}`, defaultAlgorithm: algorithm });
    if (created.status !== 200) throw new Error(`create ${algorithm} key: ${JSON.stringify(created.body)}`);
    const keyId = created.body.metadata.keyId as string;
    const headers = { ...json, authorization: `Bearer ${daemon.token}` };
    targets.push({
      name,
      pid: daemon.pid,
      async request(operation, size) {
        const plaintext = randomBytes(size).toString('base64');
        const encrypt = { url: `${daemon.url}/kms/v1/keys/${keyId}:encrypt`, headers };
        if (operation === 'encrypt') return { ...encrypt, body: JSON.stringify({ plaintext }) };
        const { ciphertext } = (await postJson(encrypt, { plaintext })) as { ciphertext: string };
        return { url: `${daemon.url}/kms/v1/keys/${keyId}:decrypt`, headers, body: JSON.stringify({ ciphertext }) };
      },
      stop: () => Promise.resolve(),
    });
  }
  return {
    targets,
    scrape: async () => {
      try {
        const response = await fetch(`${daemon.url}/metrics`, { headers: { authorization: `Bearer ${daemon.token}` } });
        const text = await response.text();
        if (!response.ok) return { error: `GET /metrics → ${response.status}: ${text.slice(0, 200)}` };
        return summarizeMetrics(text);
      } catch (error) {
        return { error: (error as Error).message };
      }
    },
    stop: async () => {
      await daemon.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function rawTarget(options: DataPlaneOptions): Promise<Target> {
  const argv = [process.execPath, join(REPO_ROOT, 'dist', 'bench', 'raw-server.js')];
  if (options.pin) argv.unshift('taskset', '-c', '0');
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('raw-server did not start within 20 s')), 20000);
    child.once('exit', (code) => reject(new Error(`raw-server exited ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolveUrl((JSON.parse(line) as { url: string }).url);
    });
  }).catch(async (error: unknown) => {
    await stopChild(child);
    throw error;
  });
  return {
    name: 'node:http + node:crypto (ceiling)',
    pid: child.pid!,
    async request(operation, size) {
      const plaintext = randomBytes(size).toString('base64');
      if (operation === 'encrypt') return { url: `${url}/encrypt`, headers: json, body: JSON.stringify({ plaintext }) };
      const { ciphertext } = (await postJson({ url: `${url}/encrypt`, headers: json }, { plaintext })) as { ciphertext: string };
      return { url: `${url}/decrypt`, headers: json, body: JSON.stringify({ ciphertext }) };
    },
    stop: () => stopChild(child),
  };
}

async function localKmsTarget(binary: LocalKmsBinary & { available: true }, options: DataPlaneOptions): Promise<Target> {
  const dataDir = tempDir('kms-bench-localkms-');
  const server = await startLocalKms(binary.bin, dataDir);
  if (options.pin) pinProcess(server.pid, '0');
  const headers = (action: string) => ({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${action}` });
  return {
    name: 'local-kms',
    pid: server.pid,
    async request(operation, size) {
      const plaintext = randomBytes(size).toString('base64');
      if (operation === 'encrypt') return { url: server.url, headers: headers('Encrypt'), body: JSON.stringify({ KeyId: server.keyId, Plaintext: plaintext }) };
      const { CiphertextBlob } = (await trent(server.url, 'Encrypt', { KeyId: server.keyId, Plaintext: plaintext })) as { CiphertextBlob: string };
      return { url: server.url, headers: headers('Decrypt'), body: JSON.stringify({ CiphertextBlob }) };
    },
    stop: async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function vaultTarget(binary: VaultBinary & { available: true }, audit: boolean, options: DataPlaneOptions): Promise<Target> {
  const dir = tempDir('kms-bench-vault-');
  try {
    const server = await startVault({ bin: binary.bin, dir, audit, ...(options.pin ? { cpus: '0' } : {}) });
    const headers = { ...json, 'x-vault-token': server.token };
    const encrypt = { url: `${server.url}/v1/transit/encrypt/${VAULT_KEY}`, headers };
    return {
      name: audit ? VAULT_AUDIT_TARGET : VAULT_TARGET,
      pid: server.pid,
      async request(operation, size) {
        const plaintext = randomBytes(size).toString('base64');
        if (operation === 'encrypt') return { ...encrypt, body: JSON.stringify({ plaintext }) };
        const { data } = (await postJson(encrypt, { plaintext })) as { data: { ciphertext: string } };
        return { url: `${server.url}/v1/transit/decrypt/${VAULT_KEY}`, headers, body: JSON.stringify({ ciphertext: data.ciphertext }) };
      },
      stop: async () => {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

interface LoadRun {
  opsPerSecond: number;
  /** Server CPU µs per answered call, when its /proc entry could be read. */
  cpuUsPerCall?: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

async function load(shape: RequestShape, connections: number, seconds: number, pid?: number): Promise<LoadRun> {
  const cpuBefore = pid !== undefined ? processCpuMs(pid) : undefined;
  const result = await autocannon({
    url: shape.url,
    method: 'POST',
    headers: shape.headers,
    body: shape.body,
    connections,
    duration: seconds,
    timeout: 10,
  });
  const cpuAfter = pid !== undefined ? processCpuMs(pid) : undefined;
  const answered = result['2xx'] + result.non2xx;
  return {
    opsPerSecond: result['2xx'] / result.duration,
    ...(cpuBefore !== undefined && cpuAfter !== undefined && answered > 0 ? { cpuUsPerCall: ((cpuAfter - cpuBefore) * 1000) / answered } : {}),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}

async function benchCase(target: Target, operation: Operation, size: number, options: DataPlaneOptions): Promise<DataPlaneCase> {
  const shape = await target.request(operation, size);
  // The request must succeed once before it is worth loading.
  await postJson(shape, JSON.parse(shape.body));
  const peaks: LoadRun[] = [];
  for (let run = 0; run < options.runs; run++) peaks.push(await load(shape, options.connections, options.seconds, target.pid));
  const cpu = peaks.flatMap((r) => (r.cpuUsPerCall !== undefined ? [r.cpuUsPerCall] : []));
  const peak = figure(peaks.map((r) => r.opsPerSecond));
  const halfRate = Math.max(1, Math.round(peak.median / 2));
  const rated = await pacedLoadInChild({
    shape,
    options: { rate: halfRate, seconds: options.rateSeconds, warmupSeconds: options.rateWarmupSeconds, connections: options.connections, timeoutMs: 10000 },
    runs: options.runs,
  });
  const result: DataPlaneCase = {
    target: target.name,
    operation,
    size,
    peakOpsPerSecond: peak,
    p50MsAtPeak: figure(peaks.map((r) => r.p50Ms)),
    p99MsAtPeak: figure(peaks.map((r) => r.p99Ms)),
    ...(cpu.length > 0 ? { cpuUsPerCallAtPeak: figure(cpu) } : {}),
    halfRate,
    achievedOpsPerSecondAtHalfRate: figure(rated.map((r) => r.opsPerSecond)),
    p50MsAtHalfRate: figure(rated.map((r) => r.p50Ms)),
    p99MsAtHalfRate: figure(rated.map((r) => r.p99Ms)),
    failures: [...peaks, ...rated].reduce((sum, r) => sum + r.failures, 0),
    halfRateLoad: {
      requests: rated.reduce((sum, r) => sum + r.requests, 0),
      lateSends: rated.reduce((sum, r) => sum + r.lateSends, 0),
      maxSendLagMs: Math.max(0, ...rated.map((r) => r.maxSendLagMs)),
    },
  };
  options.log(
    `dataplane ${target.name} ${operation} ${size} B: ${Math.round(peak.median)} ops/s, ` +
      `${result.cpuUsPerCallAtPeak ? `${Math.round(result.cpuUsPerCallAtPeak.median)} µs CPU/call, ` : ''}p99 ${result.p99MsAtPeak.median} ms; ` +
      `at ${halfRate}/s p99 ${result.p99MsAtHalfRate.median.toFixed(2)} ms${result.failures ? `; ${result.failures} failures` : ''}`,
  );
  return result;
}

async function benchTarget(target: Target, options: DataPlaneOptions, cases: DataPlaneCase[]): Promise<void> {
  try {
    if (options.warmupSeconds > 0) await load(await target.request('encrypt', options.sizes[0] ?? 256), options.connections, options.warmupSeconds);
    for (const operation of ['encrypt', 'decrypt'] as const) {
      for (const size of options.sizes) cases.push(await benchCase(target, operation, size, options));
    }
  } finally {
    await target.stop();
  }
}

export async function benchDataPlane(options: DataPlaneOptions): Promise<DataPlaneResult> {
  const wanted = (name: string) => options.targets === undefined || options.targets.some((t) => name.startsWith(t));
  const cases: DataPlaneCase[] = [];
  const skipped: Record<string, string> = {};
  const binary = wanted('local-kms') ? await ensureLocalKms(options.buildLocalKms) : ({ available: false, error: 'not selected' } as const);
  const localKms = binary.available
    ? { available: true, detail: `${binary.bin.replace(homedir(), '~')}${binary.built ? ' (built in this run)' : ''}` }
    : { available: false, detail: binary.error };
  if (!binary.available) skipped['local-kms'] = binary.error;
  const vaultWanted = [VAULT_TARGET, VAULT_AUDIT_TARGET].filter(wanted);
  const vaultBinary: VaultBinary = vaultWanted.length > 0 ? await ensureVault(options.buildVault) : { available: false, error: 'not selected' };
  const vault = vaultBinary.available
    ? { available: true, detail: `${vaultBinary.version}${vaultBinary.built ? ' (built in this run)' : ''}` }
    : { available: false, detail: vaultBinary.error };
  if (!vaultBinary.available) for (const name of vaultWanted) skipped[name] = vaultBinary.error;
  // The load generator is this process: keep it off the servers' core for the data plane only
  // (CLI runs and daemons spawned later must not inherit a one-core affinity).
  const pinned = options.pin && pinProcess(process.pid, '1');
  // From here `pin` says whether pinning happened.
  const run: DataPlaneOptions = { ...options, pin: pinned };
  const cpuAtStart = cpuTimes();
  let kmsdMetrics: MetricsSummary | { error: string } | undefined;
  try {
    if (wanted('kmsd AES_256') || wanted('kmsd AES_256_HSM')) {
      const kmsd = await kmsdTargets(run, wanted);
      try {
        for (const target of kmsd.targets) await benchTarget(target, run, cases);
        kmsdMetrics = await kmsd.scrape();
      } finally {
        await kmsd.stop();
      }
    }
    if (wanted('node:http')) await benchTarget(await rawTarget(run), run, cases);
    if (binary.available) {
      try {
        await benchTarget(await localKmsTarget(binary, run), run, cases);
      } catch (error) {
        skipped['local-kms'] = (error as Error).message;
        localKms.available = false;
        localKms.detail = (error as Error).message;
      }
    }
    if (vaultBinary.available) {
      for (const name of vaultWanted) {
        try {
          await benchTarget(await vaultTarget(vaultBinary, name === VAULT_AUDIT_TARGET, run), run, cases);
        } catch (error) {
          skipped[name] = (error as Error).message;
          vault.detail = `${vault.detail}; ${name} failed: ${(error as Error).message.split('\n')[0]}`;
        }
      }
    }
  } finally {
    if (pinned) pinProcess(process.pid, `0-${availableParallelism() - 1}`);
  }
  const steal = stealPercent(cpuAtStart, cpuTimes());
  return {
    connections: options.connections,
    seconds: options.seconds,
    rateSeconds: options.rateSeconds,
    rateWarmupSeconds: options.rateWarmupSeconds,
    pinned,
    localKms,
    vault,
    cases,
    skipped,
    ...(steal !== undefined ? { cpuStealPercent: steal } : {}),
    ...(kmsdMetrics !== undefined ? { kmsdMetrics } : {}),
  };
}
