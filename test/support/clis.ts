/**
 * Finding the terraform / tofu binaries, without jest: shared by the e2e suite (test/support/cli.ts)
 * and the provider benchmark (bench/provider.ts).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One CLI binary the scenarios run under. */
export interface Cli {
  /** `terraform` or `tofu`: also the word in its messages ("Terraform" / "OpenTofu"). */
  name: 'terraform' | 'tofu';
  bin: string;
  version: string;
  /** `terraform-1.11.4`: unique per CLI of the matrix (directory names, folder prefixes). */
  id: string;
  /** What this version of the CLI supports of the newer protocol features. */
  features: CliFeatures;
}

/** Protocol features that only some CLI versions have. */
export interface CliFeatures {
  /** Write-only attributes: Terraform >= 1.11, OpenTofu >= 1.11. */
  writeOnly: boolean;
  /** Ephemeral resources: Terraform >= 1.10, OpenTofu >= 1.11. */
  ephemeral: boolean;
  /** Resource identity and import by identity: Terraform >= 1.12, OpenTofu >= 1.12. */
  identity: boolean;
}

export type CliFeature = keyof CliFeatures;

/** Why a CLI lacks a feature, in the words the test output prints. */
export const FEATURE_NEEDS: Readonly<Record<CliFeature, string>> = {
  writeOnly: 'write-only attributes need Terraform >= 1.11 or OpenTofu >= 1.11',
  ephemeral: 'ephemeral resources need Terraform >= 1.10 or OpenTofu >= 1.11',
  identity: 'import by resource identity needs Terraform >= 1.12 or OpenTofu >= 1.12',
};

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/** The features of a CLI version (release notes of Terraform and OpenTofu). */
export function featuresOf(name: Cli['name'], version: string): CliFeatures {
  return {
    writeOnly: atLeast(version, 1, 11),
    ephemeral: name === 'terraform' ? atLeast(version, 1, 10) : atLeast(version, 1, 11),
    identity: atLeast(version, 1, 12),
  };
}

/** Repository root (this file runs from test/support or dist/test/support). */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root from test/support/cli');
    dir = parent;
  }
  return dir;
})();

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Every `tofu-v*` and `terraform-v*` binary in the tools cache that .ci/install-go-tools.sh fills. */
function cachedClis(): { name: Cli['name']; bin: string }[] {
  const cache = process.env.KMS_TOOLS_CACHE ?? join(homedir(), '.cache', 'kms-tools');
  let names: string[];
  try {
    names = readdirSync(cache).filter((n) => /^(tofu|terraform)-v\d+\.\d+\.\d+$/.test(n));
  } catch {
    return [];
  }
  return names
    .map((n) => ({ name: n.split('-')[0] as Cli['name'], bin: join(cache, n) }))
    .filter((c) => isExecutable(c.bin));
}

function probe(name: Cli['name'], bin: string | undefined): Cli | undefined {
  if (!bin) return undefined;
  try {
    const out = execFileSync(bin, ['version', '-json'], {
      encoding: 'utf8',
      timeout: 30000,
      env: { ...process.env, CHECKPOINT_DISABLE: '1', TF_CLI_CONFIG_FILE: '/dev/null' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const version = (JSON.parse(out) as { terraform_version: string }).terraform_version;
    return { name, bin, version, id: `${name}-${version}`, features: featuresOf(name, version) };
  } catch {
    return undefined;
  }
}

let discovered: Cli[] | undefined;

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/**
 * The CLIs available here, one per name and version: `terraform` from $KMS_TERRAFORM_BIN and
 * PATH, `tofu` from $KMS_TOFU_BIN and PATH, and every `terraform-v*` / `tofu-v*` in the tools
 * cache (~/.cache/kms-tools). $KMS_E2E_CLIS narrows the list: names ("terraform,tofu") or
 * name@version ("terraform@1.5.7,tofu@1.12.6").
 */
export function availableClis(): Cli[] {
  if (discovered) return discovered;
  const candidates: { name: Cli['name']; bin: string | undefined }[] = [
    { name: 'terraform', bin: process.env.KMS_TERRAFORM_BIN },
    { name: 'terraform', bin: onPath('terraform') },
    { name: 'tofu', bin: process.env.KMS_TOFU_BIN },
    { name: 'tofu', bin: onPath('tofu') },
    ...cachedClis(),
  ];
  const found = new Map<string, Cli>();
  for (const candidate of candidates) {
    if (!candidate.bin || [...found.values()].some((c) => c.bin === candidate.bin)) continue;
    const cli = probe(candidate.name, candidate.bin);
    if (cli && !found.has(cli.id)) found.set(cli.id, cli);
  }
  const all = [...found.values()].sort((a, b) => a.name.localeCompare(b.name) || compareVersions(b.version, a.version));
  const wanted = listEnv('KMS_E2E_CLIS');
  discovered = wanted.length > 0 ? all.filter((cli) => wanted.some((w) => matches(cli, w))) : all;
  return discovered;
}

function listEnv(name: string): string[] {
  return process.env[name]?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
}

/** `terraform` matches every terraform; `terraform@1.5.7` that version only. */
function matches(cli: Cli, wanted: string): boolean {
  const [name, version] = wanted.split('@');
  return cli.name === name && (version === undefined || cli.version === version);
}

/**
 * Entries of $KMS_E2E_REQUIRE_CLIS (CI: "terraform@1.11.4,terraform@1.5.7,tofu@1.10.10,tofu@1.12.6")
 * that no available CLI matches.
 */
export function missingRequiredClis(): string[] {
  const have = availableClis();
  return listEnv('KMS_E2E_REQUIRE_CLIS').filter((wanted) => !have.some((cli) => matches(cli, wanted)));
}
