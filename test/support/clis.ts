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

/** Newest `tofu-v*` binary in the tools cache that .ci/install-tofu.sh fills. */
function cachedTofu(): string | undefined {
  const cache = process.env.KMS_TOOLS_CACHE ?? join(homedir(), '.cache', 'kms-tools');
  let names: string[];
  try {
    names = readdirSync(cache).filter((n) => /^tofu-v\d+\.\d+\.\d+$/.test(n));
  } catch {
    return undefined;
  }
  const numeric = (n: string): number[] => n.slice('tofu-v'.length).split('.').map(Number);
  names.sort((a, b) => {
    const [x, y] = [numeric(a), numeric(b)];
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  });
  return names.reverse().map((n) => join(cache, n)).find(isExecutable);
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
    return { name, bin, version };
  } catch {
    return undefined;
  }
}

let discovered: Cli[] | undefined;

/**
 * The CLIs available here: `terraform` from $KMS_TERRAFORM_BIN or PATH; `tofu` from
 * $KMS_TOFU_BIN, the tools cache (~/.cache/kms-tools/tofu-v*) or PATH. $KMS_E2E_CLIS
 * ("terraform,tofu") narrows the list.
 */
export function availableClis(): Cli[] {
  if (discovered) return discovered;
  const found = [
    probe('terraform', process.env.KMS_TERRAFORM_BIN ?? onPath('terraform')),
    probe('tofu', process.env.KMS_TOFU_BIN ?? cachedTofu() ?? onPath('tofu')),
  ].filter((cli): cli is Cli => cli !== undefined);
  const wanted = process.env.KMS_E2E_CLIS?.split(',').map((s) => s.trim()).filter(Boolean);
  discovered = wanted ? found.filter((cli) => wanted.includes(cli.name)) : found;
  return discovered;
}

/** CLIs that $KMS_E2E_REQUIRE_CLIS names but that were not found (CI sets "terraform,tofu"). */
export function missingRequiredClis(): string[] {
  const required = process.env.KMS_E2E_REQUIRE_CLIS?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  const have = new Set(availableClis().map((cli) => cli.name));
  return required.filter((name) => !have.has(name as Cli['name']));
}

