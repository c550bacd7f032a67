/**
 * `npm run bench`: every section in one bounded, loopback-only run that stops by itself, written to
 * bench/results.json and bench/results.md.
 *
 *   node dist/bench/run.js [--quick] [--only dataplane,controlplane,provider,keystore] [--out DIR]
 *                          [--runs N] [--clis terraform,tofu] [--max-minutes M] [--no-pin]
 *                          [--dataplane-seconds S] [--connections C] [--sizes 256,4096] [--targets kmsd,node:http,local-kms]
 *                          [--provider-counts 10,100,500] [--provider-big-runs N] [--no-build-local-kms] [--no-peer] [--build-vault]
 *                          (--clis takes names or name@version: terraform@1.5.7,tofu@1.12.6)
 *                          [--profile DIR]   (kmsd of the data plane writes a V8 CPU profile there)
 *
 * --quick scales everything down to seconds (the smoke test uses it); the results say so.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchControlPlane } from './control-plane.js';
import { benchDataPlane } from './dataplane.js';
import type { KeystoreCase } from './keystore.js';
import { REPO_ROOT } from './paths.js';
import { benchProvider } from './provider.js';
import { renderMarkdown, type BenchResults } from './report.js';
import { machineInfo, pinningAvailable } from './system.js';

export const SECTIONS = ['keystore', 'dataplane', 'controlplane', 'provider'] as const;
type Section = (typeof SECTIONS)[number];

const list = (value: string | undefined) => value?.split(',').map((s) => s.trim()).filter(Boolean);
const numbers = (value: string) => value.split(',').map(Number);

/** Runs bench/keystore.ts as its own process: it loads SoftHSM2 with a throwaway configuration. */
function keystoreInChild(ms: number, runs: number, timeoutMs: number): Promise<KeystoreCase[]> {
  return new Promise((resolveCases, reject) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'dist', 'bench', 'keystore.js'), '--json', '--ms', String(ms), '--runs', String(runs)],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, SOFTHSM2_CONF: '' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`keystore bench failed: ${error.message}\n${stderr}`));
        else resolveCases(JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as KeystoreCase[]);
      },
    );
  });
}

export async function runBench(argv: string[]): Promise<BenchResults> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench') },
      runs: { type: 'string' },
      clis: { type: 'string' },
      'max-minutes': { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'dataplane-seconds': { type: 'string' },
      connections: { type: 'string' },
      sizes: { type: 'string' },
      targets: { type: 'string' },
      'provider-counts': { type: 'string' },
      'provider-big-runs': { type: 'string' },
      'no-build-local-kms': { type: 'boolean', default: false },
      'no-peer': { type: 'boolean', default: false },
      'build-vault': { type: 'boolean', default: false },
      profile: { type: 'string' },
    },
  });
  const quick = values.quick;
  const sections = (list(values.only) ?? [...SECTIONS]) as Section[];
  for (const s of sections) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section "${s}" (known: ${SECTIONS.join(', ')})`);
  const runs = Math.max(1, Number(values.runs ?? (quick ? 1 : 3)));
  const started = performance.now();
  const deadline = started + Number(values['max-minutes'] ?? (quick ? 5 : 30)) * 60000;
  const log = (line: string) => process.stderr.write(`[bench ${Math.round((performance.now() - started) / 1000)}s] ${line}\n`);
  const pinning = pinningAvailable();
  const results: BenchResults = {
    schemaVersion: 1,
    quick,
    sections,
    runs,
    machine: machineInfo(),
    pinning: { requested: !values['no-pin'], available: pinning.available, detail: pinning.reason },
    startedAt: new Date().toISOString(),
    durationSeconds: 0,
    errors: {},
  };
  const section = async (name: Section, body: () => Promise<void>) => {
    if (!sections.includes(name)) return;
    if (performance.now() > deadline) {
      results.errors[name] = 'skipped: --max-minutes budget used up';
      return;
    }
    log(`${name}…`);
    try {
      await body();
    } catch (error) {
      results.errors[name] = (error as Error).stack ?? String(error);
      log(`${name} failed: ${(error as Error).message}`);
    }
  };

  await section('keystore', async () => {
    results.keystore = await keystoreInChild(quick ? 100 : 1000, runs, 600000);
  });
  await section('dataplane', async () => {
    const seconds = Number(values['dataplane-seconds'] ?? (quick ? 1 : 3));
    results.dataplane = await benchDataPlane({
      seconds,
      rateSeconds: seconds,
      warmupSeconds: quick ? 0 : 2,
      rateWarmupSeconds: quick ? 0 : 1,
      connections: Number(values.connections ?? (quick ? 4 : 32)),
      runs,
      sizes: values.sizes ? numbers(values.sizes) : [256, 4096],
      buildLocalKms: !quick && !values['no-build-local-kms'],
      buildVault: values['build-vault'],
      pin: !values['no-pin'] && pinning.available,
      ...(values.profile ? { profileDir: resolve(values.profile) } : {}),
      ...(values.targets ? { targets: list(values.targets)! } : {}),
      log,
    });
  });
  await section('controlplane', async () => {
    results.controlplane = await benchControlPlane({
      sizes: quick ? [0, 50] : [0, 1000, 10000],
      seconds: quick ? 0.5 : 3,
      concurrency: quick ? 4 : 16,
      runs,
      fillTimeoutMs: quick ? 60000 : 600000,
      log,
    });
  });
  await section('provider', async () => {
    results.provider = await benchProvider({
      counts: values['provider-counts'] ? numbers(values['provider-counts']) : quick ? [2] : [10, 100, 500],
      runs,
      bigRuns: Number(values['provider-big-runs'] ?? runs),
      handshakeRuns: quick ? 1 : Math.max(15, runs),
      peer: !values['no-peer'],
      ...(values.clis ? { clis: list(values.clis)! } : {}),
      deadline,
      log,
    });
  });

  results.durationSeconds = (performance.now() - started) / 1000;
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(values.out, 'results.md'), renderMarkdown(results));
  log(`wrote ${join(values.out, 'results.md')} and results.json in ${Math.round(results.durationSeconds)} s`);
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await runBench(process.argv.slice(2));
  process.exitCode = Object.keys(results.errors).length > 0 ? 1 : 0;
}
