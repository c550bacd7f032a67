/**
 * Provider: plugin start-to-handshake time, and wall time of `apply`, no-op `plan` and `destroy`
 * for N `kms_symmetric_key` next to N `terraform_data` (Terraform's built-in, no plugin) on the
 * same CLI, for each available CLI (terraform, tofu). The plugin is installed from the current
 * sources into a temporary filesystem mirror with scripts/install-provider.mjs, as the e2e tests
 * do; the CLIs are found by test/support/clis.ts, the same code the e2e suite uses.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { availableClis, type Cli } from '../test/support/clis.js';
import { newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon, stopChild } from './kmsd.js';
import { REPO_ROOT } from './paths.js';
import { figure, ratio, since, type Figure } from './stats.js';

/** go-plugin's handshake cookie for Terraform providers (the value core sets). */
export const MAGIC_COOKIE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';

export type CliOperation = 'apply' | 'plan' | 'destroy';

export interface ProviderCase {
  cli: string;
  count: number;
  operation: CliOperation;
  kmsSymmetricKeySeconds: Figure;
  terraformDataSeconds: Figure;
  /** kms_symmetric_key / terraform_data, medians. */
  ratio: number;
}

export interface ProviderResult {
  clis: Cli[];
  plugin: string;
  handshakeMs: Figure;
  cases: ProviderCase[];
  /** Every `plan` after `apply` reported no changes (exit code 0). */
  plansWereNoOps: boolean;
  notes: string[];
}

export interface ProviderOptions {
  counts: number[];
  runs: number;
  /** Runs for counts ≥ 500 (slow); ≥ 1. */
  bigRuns: number;
  handshakeRuns: number;
  /** Names of the CLIs to use; all found when undefined. */
  clis?: string[];
  /** No new CLI cycle starts after this performance.now() time. */
  deadline: number;
  log: (line: string) => void;
}

/** The CLIs the e2e suite would use, narrowed to `wanted`. */
export function findClis(wanted?: string[]): Cli[] {
  return availableClis().filter((cli) => wanted === undefined || wanted.includes(cli.name));
}

/** Bundles the plugin into `dir` and returns the CLI config file and the plugin executable. */
function installPlugin(dir: string): { cliConfigFile: string; executable: string } {
  const cliConfigFile = join(dir, 'terraform.rc');
  const mirror = join(dir, 'mirror');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'install-provider.mjs'), '--mirror', mirror, '--cli-config', cliConfigFile, '--quiet'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 180000,
  });
  const find = (d: string): string | undefined => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        const found = find(path);
        if (found) return found;
      } else if (entry.name.startsWith('terraform-provider-kms_')) return path;
    }
    return undefined;
  };
  const executable = find(mirror);
  if (!executable) throw new Error(`install-provider.mjs wrote no terraform-provider-kms_* under ${mirror}`);
  return { cliConfigFile, executable };
}

/** Spawn to the first line on stdout (the go-plugin handshake), as core starts a plugin. */
async function handshakeOnce(executable: string): Promise<number> {
  const started = performance.now();
  const child = spawn(executable, [], {
    env: {
      PATH: process.env.PATH ?? '',
      TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE,
      PLUGIN_PROTOCOL_VERSIONS: '6',
      TF_DISABLE_PLUGIN_TLS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
  try {
    return await new Promise<number>((resolveMs, reject) => {
      const timer = setTimeout(() => reject(new Error(`no handshake within 30 s: ${stderr}`)), 30000);
      child.once('exit', (code) => reject(new Error(`plugin exited ${code} before its handshake: ${stderr}`)));
      createInterface({ input: child.stdout }).once('line', (line) => {
        clearTimeout(timer);
        if (!/^\d+\|\d+\|/.test(line)) reject(new Error(`unexpected handshake line: ${line}`));
        else resolveMs(since(started));
      });
    });
  } finally {
    await stopChild(child, 5000);
  }
}

interface Workspace {
  cli: Cli;
  dir: string;
  env: NodeJS.ProcessEnv;
}

/** Runs the CLI; resolves with wall milliseconds and the exit code, rejects on other codes. */
function runCli(ws: Workspace, args: string[], expect: number[] = [0], timeoutMs = 900000): Promise<{ ms: number; code: number }> {
  const started = performance.now();
  return new Promise((resolveRun, reject) => {
    execFile(ws.cli.bin, args, { cwd: ws.dir, env: ws.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const ms = since(started);
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      if (expect.includes(code)) resolveRun({ ms, code });
      else reject(new Error(`${ws.cli.name} ${args.join(' ')} exited ${code} in ${ws.dir}\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`));
    });
  });
}

type Kind = 'kms_symmetric_key' | 'terraform_data';

function configFor(kind: Kind, count: number): string {
  if (kind === 'terraform_data') return `resource "terraform_data" "d" {\n  count = ${count}\n  input = "bench-\${count.index}"\n}\n`;
  return `terraform {
  required_providers {
    kms = {
      source = "terraform.local/local/kms"
    }
  }
}

provider "kms" {}

resource "kms_symmetric_key" "k" {
  count = ${count}
  name  = "bench-\${count.index}"
}
`;
}

export async function benchProvider(options: ProviderOptions): Promise<ProviderResult> {
  const notes: string[] = [];
  const clis = findClis(options.clis);
  const root = tempDir('kms-bench-provider-');
  try {
    const { cliConfigFile, executable } = installPlugin(root);
    const shakes: number[] = [];
    for (let run = 0; run < options.handshakeRuns; run++) shakes.push(await handshakeOnce(executable));
    const handshakeMs = figure(shakes);
    options.log(`provider handshake: ${Math.round(handshakeMs.median)} ms`);
    if (clis.length === 0) notes.push('no terraform or tofu CLI found: apply/plan/destroy not measured');

    const dataDir = join(root, 'kmsd');
    mkdirSync(dataDir);
    const daemon = await startBenchDaemon({ dataDir, token: newTestToken() });
    const cases: ProviderCase[] = [];
    let plansWereNoOps = true;
    try {
      const baseEnv: NodeJS.ProcessEnv = {};
      for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('TF_') && !name.startsWith('KMS_')) baseEnv[name] = value;
      for (const cli of clis) {
        for (const count of options.counts) {
          const runs = count >= 500 ? Math.max(1, options.bigRuns) : options.runs;
          const workspaces = new Map<Kind, Workspace>();
          for (const kind of ['kms_symmetric_key', 'terraform_data'] as const) {
            const dir = join(root, `${cli.name}-${kind}-${count}`);
            mkdirSync(dir);
            writeFileSync(join(dir, 'main.tf'), configFor(kind, count));
            const env = {
              ...baseEnv,
              TF_CLI_CONFIG_FILE: cliConfigFile,
              TF_IN_AUTOMATION: '1',
              TF_INPUT: '0',
              CHECKPOINT_DISABLE: '1',
              KMS_ENDPOINT: daemon.url,
              KMS_TOKEN: daemon.token,
              KMS_FOLDER_ID: `bench-${cli.name}-${count}`,
            };
            const ws = { cli, dir, env };
            await runCli(ws, ['init', '-no-color', '-input=false']);
            workspaces.set(kind, ws);
          }
          const times: Record<Kind, Record<CliOperation, number[]>> = {
            kms_symmetric_key: { apply: [], plan: [], destroy: [] },
            terraform_data: { apply: [], plan: [], destroy: [] },
          };
          for (let run = 0; run < runs; run++) {
            if (performance.now() > options.deadline) {
              notes.push(`${cli.name} ×${count}: stopped after ${run} of ${runs} runs (time budget)`);
              break;
            }
            // Interleaved, so both kinds see the same machine state.
            for (const [kind, ws] of workspaces) {
              times[kind].apply.push((await runCli(ws, ['apply', '-no-color', '-input=false', '-auto-approve'])).ms);
              const plan = await runCli(ws, ['plan', '-no-color', '-input=false', '-detailed-exitcode'], [0, 2]);
              if (plan.code !== 0) plansWereNoOps = false;
              times[kind].plan.push(plan.ms);
              times[kind].destroy.push((await runCli(ws, ['destroy', '-no-color', '-input=false', '-auto-approve'])).ms);
            }
          }
          if (runs < options.runs) notes.push(`${cli.name} ×${count}: ${runs} run(s) per figure instead of ${options.runs} (time budget)`);
          for (const operation of ['apply', 'plan', 'destroy'] as const) {
            const kms = figure(times.kms_symmetric_key[operation].map((ms) => ms / 1000));
            const data = figure(times.terraform_data[operation].map((ms) => ms / 1000));
            if (kms.runs === 0) continue;
            cases.push({ cli: `${cli.name} ${cli.version}`, count, operation, kmsSymmetricKeySeconds: kms, terraformDataSeconds: data, ratio: ratio(kms, data) });
            options.log(`provider ${cli.name} ×${count} ${operation}: kms ${kms.median.toFixed(2)} s, terraform_data ${data.median.toFixed(2)} s`);
          }
        }
      }
    } finally {
      await daemon.stop();
    }
    return { clis, plugin: executable.replace(root, '<tmp>'), handshakeMs, cases, plansWereNoOps, notes };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
