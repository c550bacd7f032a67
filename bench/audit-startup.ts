/**
 * Start-up time of kmsd against the size of its audit trail: a data dir whose trail holds
 * 10 million valid events (MACed by the real SoftHSM2 key, through the real writer, in 16 MiB
 * segments) against one with an empty trail. Each daemon is started once to settle its files,
 * then 3 times measured from spawn to its "kmsd listening" log line; the median is reported.
 *
 *   node dist/bench/audit-startup.js [--events 10000000] [--runs 3] [--keep]
 *
 * Building 10M events takes minutes (one HSM HMAC per event, ≈ 25 µs on SoftHSM2) and ≈ 2.5 GB of
 * disk in a temp dir, removed at the end unless --keep. Not a test.
 */
import { spawn } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openAuditLog } from '../daemon/audit/trail.js';
import { openSoftHsmKeystore } from '../daemon/keystore/softhsm.js';
import { KMSD_MAIN, newTestToken, tempDir } from '../test/support/daemon.js';
import { segmentPaths } from '../test/support/audit.js';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '10000000' }, runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } },
});
const EVENTS = Number(values.events);
const RUNS = Number(values.runs);

/** Fills a fresh data dir's trail through the real writer, with the data dir's own SoftHSM2 token. */
async function buildTrail(dataDir: string, events: number): Promise<void> {
  const keystore = openSoftHsmKeystore(dataDir);
  try {
    const log = await openAuditLog(dataDir, { keystore });
    const started = Date.now();
    const base = Date.now() - events; // one event per ms up to now: well inside retention
    for (let n = 1; n <= events; n++) {
      log.append({
        time: new Date(base + n).toISOString(),
        requestId: `bench-${n}`,
        subject: `serviceAccount:sa${n % 50}`,
        operation: n % 2 === 0 ? 'SymmetricCrypto.Encrypt' : 'SymmetricCrypto.Decrypt',
        folderId: 'bench',
        keyId: `key${n % 100}`,
        versionId: 'v1',
        result: 'OK',
        remoteAddress: '127.0.0.1',
      });
      if (n % 20_000 === 0) {
        await log.flush();
        if (n % 1_000_000 === 0) process.stderr.write(`  ${n / 1e6}M events, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      }
    }
    await log.close();
  } finally {
    keystore.close();
  }
}

/** Spawns kmsd on `dataDir` and returns the ms until it logs "kmsd listening", then stops it. */
function timeStart(dataDir: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const env: NodeJS.ProcessEnv = { ...process.env, KMS_BOOTSTRAP_TOKEN: token };
    delete env.SOFTHSM2_CONF;
    const child = spawn(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--grpc-listen', 'off', '--data-dir', dataDir, '--log-level', 'info'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    let stderr = '';
    let elapsed: number | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      if (elapsed === undefined && buffer.includes('"msg":"kmsd listening"')) {
        elapsed = Number(process.hrtime.bigint() - started) / 1e6;
        child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
    child.on('exit', (code) => (elapsed === undefined ? reject(new Error(`kmsd exited ${code}: ${stderr}${buffer}`)) : resolve(elapsed)));
  });
}

async function measure(dataDir: string): Promise<number[]> {
  const token = newTestToken();
  await timeStart(dataDir, token); // settles the store, token and bootstrap admin
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await timeStart(dataDir, token));
  return samples;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const empty = tempDir('kms-bench-audit-empty-');
const full = tempDir('kms-bench-audit-full-');
try {
  process.stderr.write(`building a trail of ${EVENTS} events in ${full}\n`);
  const buildStarted = Date.now();
  await buildTrail(full, EVENTS);
  const segments = segmentPaths(full);
  const bytes = segments.reduce((n, p) => n + statSync(p).size, 0);
  const buildSeconds = (Date.now() - buildStarted) / 1000;
  const emptySamples = await measure(empty);
  const fullSamples = await measure(full);
  const result = {
    events: EVENTS,
    segments: segments.length,
    trailBytes: bytes,
    buildSeconds,
    emptyTrailStartMs: { median: median(emptySamples), samples: emptySamples },
    fullTrailStartMs: { median: median(fullSamples), samples: fullSamples },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `kmsd start-up to "kmsd listening", median of ${RUNS}: empty trail ${median(emptySamples).toFixed(0)} ms, ` +
      `${EVENTS} events (${segments.length} segments, ${(bytes / 2 ** 30).toFixed(2)} GiB) ${median(fullSamples).toFixed(0)} ms\n`,
  );
} finally {
  if (values.keep !== true) {
    rmSync(empty, { recursive: true, force: true });
    rmSync(full, { recursive: true, force: true });
  } else process.stderr.write(`kept ${empty} and ${full}\n`);
}


