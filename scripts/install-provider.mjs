#!/usr/bin/env node
// Installs the Terraform/OpenTofu plugin into a filesystem mirror, with no registry involved.
//
//   node scripts/install-provider.mjs [--mirror DIR] [--cli-config FILE] [--quiet]
//   npm run provider:install -- --mirror DIR --cli-config DIR/terraform.rc
//
// It bundles provider/main.ts with esbuild into ONE self-contained script and writes the
// unpacked mirror layout both CLIs read:
//
//   DIR/terraform.local/local/kms/VERSION/OS_ARCH/terraform-provider-kms_vVERSION
//
// The bundle is that executable itself (a `#!/usr/bin/env node` script is a valid plugin), so
// the `h1:` hash in .terraform.lock.hcl, which covers only the files inside the OS_ARCH
// directory, covers all the plugin code. Plain JavaScript on purpose: installing the plugin must
// not need the project's `tsc` build (esbuild reads the TypeScript sources directly).
//
// The default DIR is ~/.terraform.d/plugins: Terraform and OpenTofu both search it as an
// implied filesystem mirror when the CLI configuration has no provider_installation block, so
// `terraform init` finds the plugin with no configuration at all. Any other DIR needs the
// printed CLI configuration (pass --cli-config FILE to write it, then export TF_CLI_CONFIG_FILE).
import { build } from 'esbuild';
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { parseArgs } from 'node:util';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Registry-less source address; must match `required_providers` and the schema's key. */
export const PROVIDER_HOST = 'terraform.local';
export const PROVIDER_NAMESPACE = 'local';
export const PROVIDER_TYPE = 'kms';
export const DEFAULT_MIRROR = join(homedir(), '.terraform.d', 'plugins');

const GO_OS = { linux: 'linux', darwin: 'darwin', freebsd: 'freebsd', openbsd: 'openbsd', win32: 'windows' };
const GO_ARCH = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' };

/** The OS_ARCH directory name Terraform expects for this machine, e.g. `linux_amd64`. */
export function platformDirName(platform = process.platform, arch = process.arch) {
  const os = GO_OS[platform];
  const goArch = GO_ARCH[arch];
  if (!os || !goArch) throw new Error(`install-provider: unsupported platform ${platform}/${arch}`);
  return `${os}_${goArch}`;
}

/** The CLI configuration that makes both CLIs take our provider from `mirrorDir`, offline. */
export function cliConfigFor(mirrorDir) {
  const include = `"${PROVIDER_HOST}/*/*"`;
  return [
    'provider_installation {',
    '  filesystem_mirror {',
    `    path    = ${JSON.stringify(resolve(mirrorDir))}`,
    `    include = [${include}]`,
    '  }',
    '  direct {',
    `    exclude = [${include}]`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * Bundles the plugin and writes it into `mirrorDir`. Returns the paths written.
 * @param {{ mirrorDir?: string, cliConfigFile?: string }} [options]
 */
export async function installProvider(options = {}) {
  const mirrorDir = resolve(options.mirrorDir ?? DEFAULT_MIRROR);
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const platformDir = join(mirrorDir, PROVIDER_HOST, PROVIDER_NAMESPACE, PROVIDER_TYPE, version, platformDirName());
  const executable = join(platformDir, `terraform-provider-${PROVIDER_TYPE}_v${version}`);

  // Anything else left in the directory would change the lock file's hash: start clean.
  rmSync(platformDir, { recursive: true, force: true });
  mkdirSync(platformDir, { recursive: true });

  const result = await build({
    entryPoints: [join(repoRoot, 'provider', 'main.ts')],
    outfile: executable,
    bundle: true,
    platform: 'node',
    // CommonJS, not ESM: the executable's name ends in ".0" (…_v0.1.0), and Node loads a file
    // with an unknown extension only through its CommonJS loader; as an ES module it refuses
    // it (ERR_UNKNOWN_FILE_EXTENSION).
    format: 'cjs',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
    define: { 'import.meta.url': '__kmsImportMetaUrl' },
    banner: { js: "'use strict';\nconst __kmsImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  for (const warning of result.warnings) {
    process.stderr.write(`install-provider: esbuild warning: ${warning.text}\n`);
  }

  // esbuild keeps the entry point's hashbang only when it has one; the plugin must always start
  // with it, and with nothing before it.
  let code = readFileSync(executable, 'utf8');
  if (!code.startsWith('#!')) code = `#!/usr/bin/env node\n${code}`;
  writeFileSync(executable, code);
  chmodSync(executable, 0o755);
  // Node takes the module type of a file without a .js/.cjs/.mjs extension from the nearest
  // package.json: pin CommonJS here rather than inherit whatever encloses the mirror (a mirror
  // inside this repository would otherwise be "type": "module").
  writeFileSync(join(platformDir, 'package.json'), '{ "type": "commonjs" }\n');

  smokeTest(executable);

  let cliConfigFile;
  if (options.cliConfigFile) {
    cliConfigFile = resolve(options.cliConfigFile);
    mkdirSync(dirname(cliConfigFile), { recursive: true });
    writeFileSync(cliConfigFile, cliConfigFor(mirrorDir));
  }
  return { mirrorDir, platformDir, executable, version, cliConfigFile, bytes: Buffer.byteLength(code) };
}

/**
 * Loads the bundle once without the go-plugin magic cookie. The plugin must then refuse to run
 * and exit; what matters here is that the bundle loads at all (no missing module, no stray
 * dynamic require), which would otherwise surface only as "plugin exited" inside `init`/`plan`.
 */
function smokeTest(executable) {
  const env = { ...process.env };
  delete env.TF_PLUGIN_MAGIC_COOKIE;
  const run = spawnSync(executable, [], { env, encoding: 'utf8', timeout: 15000, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  const broken = /Error \[ERR_|SyntaxError|ReferenceError|Cannot find (module|package)|Dynamic require/.test(output);
  if (run.error || run.signal || broken) {
    throw new Error(
      `install-provider: the bundled plugin does not load (${run.error?.message ?? run.signal ?? `exit ${run.status}`}):\n${output}`,
    );
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      mirror: { type: 'string' },
      'cli-config': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: node scripts/install-provider.mjs [--mirror DIR] [--cli-config FILE] [--quiet]\n' +
        `  --mirror DIR        filesystem mirror to install into (default ${DEFAULT_MIRROR})\n` +
        '  --cli-config FILE   also write the CLI configuration for that mirror to FILE\n',
    );
    return;
  }
  const installed = await installProvider({ mirrorDir: values.mirror, cliConfigFile: values['cli-config'] });
  if (values.quiet) {
    process.stdout.write(`${installed.executable}\n`);
    return;
  }
  const sizeKiB = Math.round(installed.bytes / 1024);
  process.stdout.write(
    `Installed ${PROVIDER_HOST}/${PROVIDER_NAMESPACE}/${PROVIDER_TYPE} ${installed.version} (${sizeKiB} KiB)\n` +
      `  ${installed.executable}\n\n` +
      (installed.mirrorDir === DEFAULT_MIRROR
        ? 'This is an implied local mirror: terraform/tofu init find it unless your CLI configuration\n' +
          'has a provider_installation block; in that case add this to it:\n\n'
        : 'Point Terraform/OpenTofu at it with this CLI configuration (TF_CLI_CONFIG_FILE=FILE):\n\n') +
      cliConfigFor(installed.mirrorDir) +
      (installed.cliConfigFile ? `\nWritten to ${installed.cliConfigFile}\n  export TF_CLI_CONFIG_FILE=${installed.cliConfigFile}\n` : ''),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
