// The real Terraform/OpenTofu CLIs for the end-to-end tests: finding them, installing the
// plugin into a filesystem mirror they read, and running them in a temporary working directory.
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export { REPO_ROOT, availableClis, missingRequiredClis, type Cli, type CliFeature } from './clis.js';
import { FEATURE_NEEDS, REPO_ROOT, availableClis, missingRequiredClis, type Cli, type CliFeature } from './clis.js';

/**
 * Says, once per suite and CLI, that a version-gated suite is not registered for a CLI and why.
 * Not a jest skip (CI fails on those): the suite simply has no tests for that CLI. The line goes
 * to stderr and, when $KMS_E2E_NOT_RUN_LOG names a file, into it (CI prints it at the end).
 */
function reportNotRun(title: string, cli: Cli, reason: string): void {
  const line = `e2e: "${title}" does not run on ${cli.name} ${cli.version}: ${reason}\n`;
  process.stderr.write(line);
  const file = process.env.KMS_E2E_NOT_RUN_LOG;
  if (file) appendFileSync(file, line);
}

/** Options of {@link describeEachCli}. */
export interface EachCliOptions {
  /** Run only on CLIs that have these features (the others are reported, not skipped). */
  requires?: CliFeature | CliFeature[];
  /** Run only on CLIs that lack this feature: scenarios of what an older CLI's user gets. */
  lacks?: CliFeature;
}

/**
 * `describe.each` over the available CLIs (every version of the matrix). With none (or a
 * required one missing) the suite gets one failing test instead of silently running nothing.
 */
export function describeEachCli(title: string, body: (cli: Cli) => void, options: EachCliOptions = {}): void {
  const all = availableClis();
  const requires = options.requires === undefined ? [] : Array.isArray(options.requires) ? options.requires : [options.requires];
  const clis = all.filter((cli) => {
    const missingFeature = requires.find((f) => !cli.features[f]);
    if (missingFeature) {
      reportNotRun(title, cli, FEATURE_NEEDS[missingFeature]);
      return false;
    }
    if (options.lacks && cli.features[options.lacks]) {
      reportNotRun(title, cli, `it shows what CLIs without this feature do, and this one has it (${FEATURE_NEEDS[options.lacks]})`);
      return false;
    }
    return true;
  });
  const missing = missingRequiredClis();
  if (all.length === 0 || missing.length > 0) {
    describe(title, () => {
      it('has a Terraform or OpenTofu CLI to run against', () => {
        throw new Error(
          all.length === 0
            ? 'no terraform or tofu CLI found: put terraform on PATH, or build the CLIs with .ci/install-go-tools.sh tofu|terraform VERSION ' +
                '(or set KMS_TOFU_BIN / KMS_TERRAFORM_BIN)'
            : `required CLI(s) not found: ${missing.join(', ')} (KMS_E2E_REQUIRE_CLIS)`,
        );
      });
    });
    return;
  }
  if (clis.length === 0) {
    // A test file must hold a test: this one checks that every CLI was reported as not applicable.
    describe(title, () => {
      it('applies to none of the available CLIs (each reported above with the reason)', () => {
        expect(all.every((cli) => requires.some((f) => !cli.features[f]) || (options.lacks !== undefined && cli.features[options.lacks]))).toBe(true);
      });
    });
    return;
  }
  describe.each(clis.map((cli) => [`${cli.name} ${cli.version}`, cli] as const))(`${title} (%s)`, (_label, cli) =>
    body(cli),
  );
}

/** Files whose content decides what the installer produces. */
function pluginInputs(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (!path.includes(join('provider', 'gen'))) files.push(path);
    }
  };
  walk(join(REPO_ROOT, 'provider'));
  files.push(
    join(REPO_ROOT, 'schemas', 'provider.schema.json'),
    join(REPO_ROOT, 'package.json'),
    join(REPO_ROOT, 'package-lock.json'),
    join(REPO_ROOT, 'scripts', 'install-provider.mjs'),
  );
  return files.filter((f) => existsSync(f)).sort();
}

/** A filesystem mirror holding the plugin built from the current sources. */
export interface Mirror {
  dir: string;
  /** CLI configuration file pointing at `dir` (use as TF_CLI_CONFIG_FILE). */
  cliConfigFile: string;
}

let mirror: Mirror | undefined;

/**
 * Installs the plugin with scripts/install-provider.mjs, once per source state: the mirror is
 * cached in the temp dir under a hash of the plugin's inputs, so parallel jest workers and
 * later runs reuse one build, and a changed source gets a fresh one.
 */
export function ensureMirror(): Mirror {
  if (mirror) return mirror;
  const hash = createHash('sha256');
  for (const file of pluginInputs()) hash.update(relative(REPO_ROOT, file)).update('\0').update(readFileSync(file));
  const root = join(tmpdir(), 'kms-e2e-mirrors');
  const dir = join(root, hash.digest('hex').slice(0, 16));
  const cliConfigFile = join(dir, 'terraform.rc');
  if (!existsSync(join(dir, '.complete'))) {
    // Build beside the final directory and rename it into place: a concurrent worker either
    // sees no directory or a complete one.
    mkdirSync(root, { recursive: true });
    const staging = mkdtempSync(join(root, 'staging-'));
    try {
      execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'install-provider.mjs'), '--mirror', staging, '--quiet'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
        timeout: 120000,
      });
      writeFileSync(join(staging, 'terraform.rc'), cliConfig(dir));
      writeFileSync(join(staging, '.complete'), new Date().toISOString());
      renameSync(staging, dir);
      pruneMirrors(root, dir);
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      if (!existsSync(join(dir, '.complete'))) {
        const stderr = (error as { stderr?: string }).stderr ?? '';
        throw new Error(`installing the plugin failed: ${stderr || String(error)}`, { cause: error });
      }
    }
  }
  mirror = { dir, cliConfigFile };
  return mirror;
}

/** Drops mirrors of older source states (a day untouched), so the temp dir does not fill up. */
function pruneMirrors(root: string, keep: string): void {
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    try {
      if (path !== keep && statSync(path).mtimeMs < dayAgo) rmSync(path, { recursive: true, force: true });
    } catch {
      // raced with another worker: nothing to do
    }
  }
}

/** Same text scripts/install-provider.mjs prints; kept here so tests do not import a script. */
export function cliConfig(mirrorDir: string): string {
  return `provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirrorDir)}
    include = ["terraform.local/*/*"]
  }
  direct {
    exclude = ["terraform.local/*/*"]
  }
}
`;
}

/** What one CLI invocation did. */
export interface RunResult {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  /** Exit codes that count as success; anything else throws with the output. Default [0]. */
  expect?: number | number[];
  /** Extra environment for this invocation only. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * A temporary working directory bound to one CLI, with the environment every run gets:
 * the mirror's CLI configuration, no plugin cache, no checkpoint calls, automation output.
 */
export class Workspace {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly cli: Cli,
    providerEnv: Record<string, string>,
    options: { dir?: string; prefix?: string } = {},
  ) {
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), `kms-e2e-${options.prefix ?? cli.name}-`));
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(env)) {
      // Whatever the developer's shell configures for their own Terraform must not leak in.
      if (name.startsWith('TF_') || name.startsWith('KMS_')) delete env[name];
    }
    this.env = {
      ...env,
      TF_CLI_CONFIG_FILE: ensureMirror().cliConfigFile,
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      CHECKPOINT_DISABLE: '1',
      ...(process.env.KMS_E2E_TF_LOG ? { TF_LOG: process.env.KMS_E2E_TF_LOG } : {}),
      ...providerEnv,
    };
  }

  /** Writes a file (default main.tf) into the working directory. */
  write(content: string, file = 'main.tf'): void {
    mkdirSync(dirname(join(this.dir, file)), { recursive: true });
    writeFileSync(join(this.dir, file), content);
  }

  /** Runs the CLI with `-no-color` semantics left to the caller's args. */
  run(args: string[], options: RunOptions = {}): Promise<RunResult> {
    const expected = options.expect === undefined ? [0] : Array.isArray(options.expect) ? options.expect : [options.expect];
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(this.cli.bin, args, {
        cwd: this.dir,
        env: { ...this.env, ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180000);
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const result: RunResult = { args, code: code ?? -1, stdout, stderr, ms: Date.now() - started };
        if (expected.includes(result.code)) resolve(result);
        else
          reject(
            new Error(
              `${this.cli.name} ${args.join(' ')} exited ${signal ?? code} (expected ${expected.join(' or ')}) in ${this.dir}\n` +
                `--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`,
            ),
          );
      });
    });
  }

  init(): Promise<RunResult> {
    return this.run(['init', '-no-color', '-input=false']);
  }

  apply(extra: string[] = [], options: RunOptions = {}): Promise<RunResult> {
    return this.run(['apply', '-no-color', '-input=false', '-auto-approve', ...extra], options);
  }

  destroy(extra: string[] = [], options: RunOptions = {}): Promise<RunResult> {
    return this.run(['destroy', '-no-color', '-input=false', '-auto-approve', ...extra], options);
  }

  /** `plan -detailed-exitcode`: 0 = no changes, 2 = changes (errors throw unless expected). */
  async planExitCode(extra: string[] = [], options: RunOptions = {}): Promise<number> {
    return (await this.run(['plan', '-no-color', '-input=false', '-detailed-exitcode', ...extra], { ...options, expect: [0, 2] })).code;
  }

  /** Saves a plan and returns its exit code and `show -json` document. */
  async savedPlan(extra: string[] = [], options: RunOptions = {}): Promise<{ code: number; plan: PlanJson; output: string }> {
    const run = await this.run(['plan', '-no-color', '-input=false', '-detailed-exitcode', '-out=tfplan', ...extra], {
      ...options,
      expect: [0, 2],
    });
    const shown = await this.run(['show', '-no-color', '-json', 'tfplan'], options);
    return { code: run.code, plan: JSON.parse(shown.stdout) as PlanJson, output: run.stdout };
  }

  /** Resources in the current state, by address (`show -json`). */
  async state(): Promise<Map<string, StateResource>> {
    const shown = await this.run(['show', '-no-color', '-json']);
    const doc = JSON.parse(shown.stdout) as { values?: { root_module?: { resources?: StateResource[] } } };
    return new Map((doc.values?.root_module?.resources ?? []).map((r) => [r.address, r]));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The parts of `show -json` of a saved plan the tests look at. */
export interface PlanJson {
  resource_changes?: ResourceChange[];
  resource_drift?: ResourceChange[];
}

export interface ResourceChange {
  address: string;
  type: string;
  change: {
    actions: string[];
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
    replace_paths?: unknown[][];
    importing?: { id: string };
  };
}

export interface StateResource {
  address: string;
  type: string;
  name: string;
  values: Record<string, unknown>;
}

/** Actions planned per resource address, e.g. `{ 'kms_symmetric_key.a': ['update'] }`. */
export function actionsByAddress(changes: ResourceChange[] | undefined): Record<string, string[]> {
  return Object.fromEntries((changes ?? []).map((c) => [c.address, c.change.actions]));
}

function tail(text: string, max = 6000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}
