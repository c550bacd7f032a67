/**
 * `npm run soak`: the daemon under full encrypt load for a long time (default 10 minutes), to
 * show that nothing grows with the number of calls: the daemon's RSS each minute (growth from
 * minute 2 to the last minute must stay within 16 MiB), calls/s each minute, and the audit
 * trail's disk use, which segment rotation and a size retention keep bounded. Not a test: it
 * measures and reports (bench/soak-results.md, .json), and exits 1 when the RSS budget is missed.
 *
 *   npm run soak -- [--minutes 10] [--connections 32] [--audit-max-size 64MiB] [--audit-segment-size 4MiB]
 */
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon } from './kmsd.js';
import { REPO_ROOT } from './paths.js';
import { pinProcess, pinningAvailable } from './system.js';

const RSS_BUDGET_MIB = 16;

interface Minute {
  minute: number;
  callsPerSecond: number;
  failures: number;
  p99Ms: number;
  /** Median of the RSS samples taken every 5 s during the minute (one sample is too noisy: a major GC can dip it). */
  rssMiB: number;
  rssMaxMiB: number;
  auditMiB: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

function duMiB(path: string): number {
  try {
    return Number(execFileSync('du', ['-sk', path], { encoding: 'utf8' }).split('\t')[0]) / 1024;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      'audit-max-size': { type: 'string', default: '64MiB' },
      'audit-segment-size': { type: 'string', default: '4MiB' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'soak-results') },
    },
  });
  const minutes = Number(values.minutes);
  const connections = Number(values.connections);
  const pin = pinningAvailable().available;
  const dataDir = tempDir('kms-soak-');
  const daemon = await startBenchDaemon({
    dataDir,
    token: newTestToken(),
    ...(pin ? { cpus: '0' } : {}),
    args: ['--audit-max-size', values['audit-max-size'], '--audit-segment-size', values['audit-segment-size']],
  });
  if (pin) pinProcess(process.pid, '1');
  const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'soak', defaultAlgorithm: 'AES_256' });
  if (created.status !== 200) throw new Error(`create key: ${JSON.stringify(created.body)}`);
  const keyId = created.body.metadata.keyId as string;
  const request = {
    url: `${daemon.url}/kms/v1/keys/${keyId}:encrypt`,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${daemon.token}` },
    body: JSON.stringify({ plaintext: randomBytes(256).toString('base64') }),
  };
  const rows: Minute[] = [];
  const started = new Date();
  console.log(`soak: ${minutes} min of encrypt at ${connections} connections against pid ${daemon.pid}${pin ? ' (pinned: kmsd CPU 0, load CPU 1)' : ''}`);
  console.log('minute  calls/s  failures  p99 ms  RSS MiB (median, max)  audit MiB');
  for (let minute = 1; minute <= minutes; minute++) {
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssMiB(daemon.pid)), 5000);
    const result = await autocannon({ ...request, connections, duration: 60, timeout: 10 });
    clearInterval(sampler);
    samples.push(rssMiB(daemon.pid));
    const row: Minute = {
      minute,
      callsPerSecond: Math.round(result['2xx'] / result.duration),
      failures: result.non2xx + result.errors + result.timeouts,
      p99Ms: result.latency.p99,
      rssMiB: Math.round(median(samples) * 10) / 10,
      rssMaxMiB: Math.round(Math.max(...samples) * 10) / 10,
      auditMiB: Math.round(duMiB(join(dataDir, 'audit')) * 10) / 10,
    };
    rows.push(row);
    console.log(
      `${String(minute).padStart(6)}  ${String(row.callsPerSecond).padStart(7)}  ${String(row.failures).padStart(8)}  ${String(row.p99Ms).padStart(6)}  ${row.rssMiB.toFixed(1).padStart(9)} ${row.rssMaxMiB.toFixed(1).padStart(7)}  ${row.auditMiB.toFixed(1).padStart(9)}`,
    );
  }
  await daemon.stop();
  rmSync(dataDir, { recursive: true, force: true });
  const from = rows.find((r) => r.minute === Math.min(2, minutes));
  const last = rows.at(-1);
  const growth = from !== undefined && last !== undefined ? Math.round((last.rssMiB - from.rssMiB) * 10) / 10 : 0;
  const calls = rows.reduce((sum, r) => sum + r.callsPerSecond * 60, 0);
  const ok = growth <= RSS_BUDGET_MIB && rows.every((r) => r.failures === 0);
  const summary = {
    started: started.toISOString(),
    node: process.version,
    minutes,
    connections,
    calls,
    rssGrowthMiB: { fromMinute: from?.minute, toMinute: last?.minute, growth, budget: RSS_BUDGET_MIB },
    auditLimits: { maxSize: values['audit-max-size'], segmentSize: values['audit-segment-size'] },
    ok,
    minutes_: rows,
  };
  writeFileSync(`${values.out}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  const md = [
    `# Soak: ${minutes} min of encrypt (256 B, AES_256) at ${connections} connections`,
    '',
    `Run ${started.toISOString()} on Node ${process.version}; audit segments ${values['audit-segment-size']}, audit retention by size ${values['audit-max-size']}.`,
    '',
    '| minute | calls/s | failures | p99 ms | RSS MiB (median of 5 s samples) | RSS max MiB | audit MiB |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.minute} | ${r.callsPerSecond} | ${r.failures} | ${r.p99Ms} | ${r.rssMiB.toFixed(1)} | ${r.rssMaxMiB.toFixed(1)} | ${r.auditMiB.toFixed(1)} |`),
    '',
    `${calls} calls. RSS growth from minute ${from?.minute} to minute ${last?.minute}: **${growth} MiB** (budget ${RSS_BUDGET_MIB} MiB): ${ok ? 'within budget' : 'MISSED'}.`,
    '',
  ].join('\n');
  writeFileSync(`${values.out}.md`, md);
  console.log(`\nRSS growth minute ${from?.minute}→${last?.minute}: ${growth} MiB (budget ${RSS_BUDGET_MIB} MiB); ${calls} calls; ${ok ? 'OK' : 'MISSED'}`);
  process.exitCode = ok ? 0 : 1;
}

await main();
