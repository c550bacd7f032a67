// Generates docs/ with tfplugindocs from schemas/provider.schema.json, examples/ and templates/,
// the way registry providers document themselves.
//
//   node dist/scripts/gen-docs.js            regenerate docs/
//   node dist/scripts/gen-docs.js --check    exit 1 when docs/ is out of date, then run
//                                            `tfplugindocs validate` (CI runs this)
//
// tfplugindocs (github.com/hashicorp/terraform-plugin-docs, built from the Go module proxy by
// .ci/install-go-tools.sh) reads a provider's schema under the short name `kms` or
// registry.terraform.io/hashicorp/kms only, so the schema is re-keyed in a temporary copy; it
// writes into the provider directory, so it runs in a temporary one holding examples/ and
// templates/, and docs/ is copied back (or compared).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'kms') return dir;
    } catch {
      // keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('gen-docs: cannot find the repository root');
    dir = parent;
  }
}

const repoRoot = findRepoRoot();
const ADDRESS = 'terraform.local/local/kms';
export const TFPLUGINDOCS_VERSION = 'v0.24.0';

/** The tfplugindocs binary: $KMS_TFPLUGINDOCS_BIN or the one .ci/install-go-tools.sh caches. */
function tfplugindocs(): string {
  const bin = process.env.KMS_TFPLUGINDOCS_BIN ?? join(process.env.KMS_TOOLS_CACHE ?? join(homedir(), '.cache', 'kms-tools'), `tfplugindocs-${TFPLUGINDOCS_VERSION}`);
  if (!existsSync(bin)) throw new Error(`gen-docs: ${bin} not found; build it with .ci/install-go-tools.sh tfplugindocs ${TFPLUGINDOCS_VERSION}`);
  return bin;
}

/** docs/images/ (the README's screenshots) is ours, not tfplugindocs': kept, never compared. */
const KEPT_DIR = 'images';

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      const name = relative(dir, path);
      if (name.startsWith(`${KEPT_DIR}/`)) continue;
      out.set(name, readFileSync(path, 'utf8'));
    }
  }
  return out;
}

/** Runs tfplugindocs in a temporary provider directory; returns it (the caller removes it). */
function generate(bin: string): string {
  const work = mkdtempSync(join(tmpdir(), 'kms-docs-'));
  const document = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'provider.schema.json'), 'utf8')) as {
    provider_schemas: Record<string, unknown>;
  };
  const schema = { ...document, provider_schemas: { 'registry.terraform.io/hashicorp/kms': document.provider_schemas[ADDRESS] } };
  writeFileSync(join(work, 'schema.json'), JSON.stringify(schema));
  cpSync(join(repoRoot, 'examples'), join(work, 'examples'), { recursive: true });
  cpSync(join(repoRoot, 'templates'), join(work, 'templates'), { recursive: true });
  const env = { ...process.env, CHECKPOINT_DISABLE: '1' };
  execFileSync(
    bin,
    ['generate', '--provider-dir', work, '--provider-name', 'kms', '--rendered-provider-name', 'kms', '--providers-schema', join(work, 'schema.json')],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  execFileSync(bin, ['validate', '--provider-dir', work, '--provider-name', 'kms', '--providers-schema', join(work, 'schema.json')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  return work;
}

function main(): void {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const bin = tfplugindocs();
  let work: string;
  try {
    work = generate(bin);
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
    console.error(`gen-docs: tfplugindocs failed: ${e.stderr?.toString() ?? ''}${e.stdout?.toString() ?? ''}${e.message}`);
    process.exitCode = 1;
    return;
  }
  try {
    const docs = join(repoRoot, 'docs');
    if (values.check) {
      const [fresh, current] = [files(join(work, 'docs')), files(docs)];
      const problems = [
        ...[...fresh].filter(([f, text]) => current.get(f) !== text).map(([f]) => (current.has(f) ? `differs: docs/${f}` : `missing: docs/${f}`)),
        ...[...current.keys()].filter((f) => !fresh.has(f)).map((f) => `not generated: docs/${f}`),
      ];
      if (problems.length > 0) {
        console.error(`gen-docs: docs/ is out of date:\n${problems.map((p) => `  ${p}`).join('\n')}\nRun \`npm run provider:gen\` and commit the result.`);
        process.exitCode = 1;
        return;
      }
      console.log(`gen-docs: docs/ is up to date (${fresh.size} files) and tfplugindocs validate passes`);
      return;
    }
    if (existsSync(docs)) for (const entry of readdirSync(docs)) if (entry !== KEPT_DIR) rmSync(join(docs, entry), { recursive: true, force: true });
    cpSync(join(work, 'docs'), docs, { recursive: true });
    console.log(`gen-docs: wrote docs/ (${files(docs).size} files)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
