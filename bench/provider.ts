/**
 * Provider: plugin start-to-handshake time, and wall time of `apply`, no-op `plan` and `destroy`
 * for N `kms_symmetric_key` next to N `terraform_data` (Terraform's built-in, no plugin) and N
 * `kmspeer_symmetric_key` (bench/peer: a minimal Go provider on terraform-plugin-framework making
 * the same REST calls to the same daemon) on the same CLI, for each CLI of the matrix. The plugin
 * is installed from the current sources into a temporary filesystem mirror with
 * scripts/install-provider.mjs, as the e2e tests do; the peer is built (and cached) by
 * .ci/install-go-tools.sh peer; the CLIs are found by test/support/clis.ts, as in the e2e suite.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { homedir } from 'node:os';
import { availableClis, type Cli } from '../test/support/clis.js';
import { newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon, stopChild } from './kmsd.js';
import { REPO_ROOT } from './paths.js';
import { generateServerCertificate } from '../provider/protocol/tls.js';
import { figure, ratio, since, type Figure } from './stats.js';

/** go-plugin's handshake cookie for Terraform providers (the value core sets). */
export const MAGIC_COOKIE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';

/** A client certificate as core sends it in PLUGIN_CLIENT_CERT (only its syntax matters here). */
const CLIENT_CERT = generateServerCertificate().certPem;

export type CliOperation = 'apply' | 'plan' | 'destroy';

export interface ProviderCase {
  cli: string;
  count: number;
  operation: CliOperation;
  kmsSymmetricKeySeconds: Figure;
  terraformDataSeconds: Figure;
  /** The Go peer (absent when it could not be built). */
  peerSeconds?: Figure;
  /** kms_symmetric_key / terraform_data, medians. */
  ratio: number;
  /** kms_symmetric_key / kmspeer_symmetric_key, medians. */
  ratioVsPeer?: number;
}

/** Start-to-handshake of each executable, with core's mutual TLS (PLUGIN_CLIENT_CERT). */
export interface HandshakeFigures {
  /** Our plugin, environment without NODE_EXTRA_CA_CERTS. */
  kms: Figure;
  /** Our plugin with NODE_EXTRA_CA_CERTS set (to the system bundle when the machine has none). */
  kmsWithExtraCa: Figure;
  /** The Go peer. */
  peer?: Figure;
  /** `node` printing a line and nothing else: the runtime's own floor. */
  node: Figure;
  nodeWithExtraCa: Figure;
  extraCaFile: string;
}

export interface ProviderResult {
  clis: Cli[];
  plugin: string;
  /** Our plugin's start to handshake without NODE_EXTRA_CA_CERTS (kept for older reports). */
  handshakeMs: Figure;
  handshake: HandshakeFigures;
  peer: { available: boolean; detail: string };
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
  /** false: leave the Go peer out (no Go build). */
  peer?: boolean;
  /** Names of the CLIs to use; all found when undefined. */
  clis?: string[];
  /** No new CLI cycle starts after this performance.now() time. */
  deadline: number;
  log: (line: string) => void;
}

/** The CLIs the e2e suite would use, narrowed to `wanted` (names, or name@version). */
export function findClis(wanted?: string[]): Cli[] {
  return availableClis().filter(
    (cli) => wanted === undefined || wanted.some((w) => w === cli.name || w === `${cli.name}@${cli.version}`),
  );
}

/** The peer's binary from .ci/install-go-tools.sh (built from the Go module proxy, cached). */
function buildPeer(log: (line: string) => void): { bin?: string; detail: string } {
  try {
    const out = execFileSync('bash', [join(REPO_ROOT, '.ci', 'install-go-tools.sh'), 'peer'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900000 });
    const bin = out.trim().split('\n').pop() ?? '';
    if (!existsSync(bin)) return { detail: `install-go-tools.sh peer printed no binary (${bin})` };
    log(`peer: ${bin}`);
    return { bin, detail: 'bench/peer (terraform-plugin-framework v1.19.0), built with .ci/install-go-tools.sh peer' };
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    return { detail: `the Go peer could not be built: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')}` };
  }
}

/** Puts the peer into the mirror as terraform.local/local/kmspeer 0.1.0. */
function installPeer(mirror: string, bin: string): void {
  const dir = join(mirror, 'terraform.local', 'local', 'kmspeer', '0.1.0', platformDir());
  mkdirSync(dir, { recursive: true });
  const target = join(dir, 'terraform-provider-kmspeer_v0.1.0');
  copyFileSync(bin, target);
  chmodSync(target, 0o755);
}

function platformDir(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = ({ x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch;
  return `${os}_${arch}`;
}

/** Bundles the plugin into `dir` and returns the CLI config file, the mirror and the plugin executable. */
function installPlugin(dir: string): { cliConfigFile: string; executable: string; mirror: string } {
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
  return { cliConfigFile, executable, mirror };
}

/**
 * Spawn to the first line on stdout (the go-plugin handshake), as core starts a plugin: the
 * magic cookie, protocol versions and core's client certificate (so the plugin makes its TLS
 * certificate and listener as in real use).
 */
async function handshakeOnce(executable: string, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<number> {
  const started = performance.now();
  const child = spawn(executable, args, {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE,
      PLUGIN_PROTOCOL_VERSIONS: '5,6',
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      PLUGIN_CLIENT_CERT: CLIENT_CERT,
      ...extraEnv,
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

type Kind = 'kms_symmetric_key' | 'terraform_data' | 'kmspeer_symmetric_key';

function configFor(kind: Kind, count: number): string {
  if (kind === 'terraform_data') return `resource "terraform_data" "d" {\n  count = ${count}\n  input = "bench-\${count.index}"\n}\n`;
  const provider = kind === 'kms_symmetric_key' ? 'kms' : 'kmspeer';
  return `terraform {
  required_providers {
    ${provider} = {
      source = "terraform.local/local/${provider}"
    }
  }
}

provider "${provider}" {}

resource "${kind}" "k" {
  count = ${count}
  name  = "bench-\${count.index}"
}
`;
}

/** A file of CA certificates for the NODE_EXTRA_CA_CERTS case: the machine's own, or the system bundle. */
function extraCaFile(): string {
  const configured = process.env.NODE_EXTRA_CA_CERTS;
  if (configured && existsSync(configured)) return configured;
  for (const candidate of ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem']) if (existsSync(candidate)) return candidate;
  return '';
}

/** Handshake figures of every executable, interleaved so they see the same machine state. */
async function measureHandshakes(executable: string, peer: string | undefined, runs: number, log: (line: string) => void): Promise<HandshakeFigures> {
  const caFile = extraCaFile();
  const withCa: Record<string, string> = caFile ? { NODE_EXTRA_CA_CERTS: caFile } : {};
  const samples: Record<'kms' | 'kmsWithExtraCa' | 'peer' | 'node' | 'nodeWithExtraCa', number[]> = { kms: [], kmsWithExtraCa: [], peer: [], node: [], nodeWithExtraCa: [] };
  const nodeArgs = ['-e', 'process.stdout.write("1|6|tcp|127.0.0.1:1|grpc|\\n")'];
  // One warm-up of each, so the first figure does not carry the page cache filling up.
  await handshakeOnce(executable);
  if (peer) await handshakeOnce(peer);
  for (let run = 0; run < runs; run++) {
    samples.kms.push(await handshakeOnce(executable));
    samples.kmsWithExtraCa.push(await handshakeOnce(executable, [], withCa));
    if (peer) samples.peer.push(await handshakeOnce(peer));
    samples.node.push(await handshakeOnce(process.execPath, nodeArgs));
    samples.nodeWithExtraCa.push(await handshakeOnce(process.execPath, nodeArgs, withCa));
  }
  const result: HandshakeFigures = {
    kms: figure(samples.kms),
    kmsWithExtraCa: figure(samples.kmsWithExtraCa),
    ...(peer ? { peer: figure(samples.peer) } : {}),
    node: figure(samples.node),
    nodeWithExtraCa: figure(samples.nodeWithExtraCa),
    extraCaFile: caFile,
  };
  log(
    `handshake ms: kms ${result.kms.median.toFixed(1)}, with NODE_EXTRA_CA_CERTS ${result.kmsWithExtraCa.median.toFixed(1)}, ` +
      `peer ${result.peer?.median.toFixed(1) ?? '-'}, node ${result.node.median.toFixed(1)} / ${result.nodeWithExtraCa.median.toFixed(1)}`,
  );
  return result;
}

export async function benchProvider(options: ProviderOptions): Promise<ProviderResult> {
  const notes: string[] = [];
  const clis = findClis(options.clis);
  const root = tempDir('kms-bench-provider-');
  try {
    const { cliConfigFile, executable, mirror } = installPlugin(root);
    const peerBuild = options.peer === false ? { detail: 'not measured (--no-peer)' } : buildPeer(options.log);
    if (peerBuild.bin) installPeer(mirror, peerBuild.bin);
    else notes.push(peerBuild.detail);
    const handshake = await measureHandshakes(executable, peerBuild.bin, options.handshakeRuns, options.log);
    const handshakeMs = handshake.kms;
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
          const kinds: Kind[] = ['kms_symmetric_key', 'terraform_data', ...(peerBuild.bin ? (['kmspeer_symmetric_key'] as const) : [])];
          for (const kind of kinds) {
            const dir = join(root, `${cli.id}-${kind}-${count}`);
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
              KMS_FOLDER_ID: `bench-${cli.id.replace(/\./g, '-')}-${kind === 'kmspeer_symmetric_key' ? 'peer-' : ''}${count}`,
              // The plugin's V8 code cache in this run's temp dir: warm after the first command,
              // whatever ~/.cache holds, and removed with the rest.
              KMS_PLUGIN_CACHE_DIR: join(root, 'code-cache'),
            };
            const ws = { cli, dir, env };
            await runCli(ws, ['init', '-no-color', '-input=false']);
            workspaces.set(kind, ws);
          }
          const times: Record<Kind, Record<CliOperation, number[]>> = {
            kms_symmetric_key: { apply: [], plan: [], destroy: [] },
            terraform_data: { apply: [], plan: [], destroy: [] },
            kmspeer_symmetric_key: { apply: [], plan: [], destroy: [] },
          };
          for (let run = 0; run < runs; run++) {
            if (performance.now() > options.deadline) {
              notes.push(`${cli.id} ×${count}: stopped after ${run} of ${runs} runs (time budget)`);
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
          if (runs < options.runs) notes.push(`${cli.id} ×${count}: ${runs} run(s) per figure instead of ${options.runs} (time budget)`);
          for (const operation of ['apply', 'plan', 'destroy'] as const) {
            const kms = figure(times.kms_symmetric_key[operation].map((ms) => ms / 1000));
            const data = figure(times.terraform_data[operation].map((ms) => ms / 1000));
            const peer = figure(times.kmspeer_symmetric_key[operation].map((ms) => ms / 1000));
            if (kms.runs === 0) continue;
            cases.push({
              cli: `${cli.name} ${cli.version}`,
              count,
              operation,
              kmsSymmetricKeySeconds: kms,
              terraformDataSeconds: data,
              ratio: ratio(kms, data),
              ...(peer.runs > 0 ? { peerSeconds: peer, ratioVsPeer: ratio(kms, peer) } : {}),
            });
            options.log(
              `provider ${cli.id} ×${count} ${operation}: kms ${kms.median.toFixed(2)} s, terraform_data ${data.median.toFixed(2)} s` +
                (peer.runs > 0 ? `, Go peer ${peer.median.toFixed(2)} s` : ''),
            );
          }
        }
      }
    } finally {
      await daemon.stop();
    }
    return {
      // (the report names tools by ~/… paths, never this machine's home)
      clis: clis.map((cli) => ({ ...cli, bin: cli.bin.replace(homedir(), '~') })),
      plugin: executable.replace(root, '<tmp>'),
      handshakeMs,
      handshake,
      peer: { available: peerBuild.bin !== undefined, detail: peerBuild.detail },
      cases,
      plansWereNoOps,
      notes,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
