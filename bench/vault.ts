/**
 * HashiCorp Vault's transit secrets engine as a bench peer: the binary built from the Go module
 * proxy by .ci/install-vault.sh into the tools cache (never into the repository), run as
 * `vault server -dev` on a loopback port (in-memory storage, dev root token, no TLS) with its
 * HOME, working dir and log in a temp dir. The transit engine is mounted and one `aes256-gcm96`
 * key `bench` created; optionally a file audit device is enabled first, the same as
 * `vault audit enable file file_path=<tmp>/audit.log`. The bench only uses a cached binary unless
 * asked to build (`--build-vault`: a cold build takes 16–20 minutes on 2 cores).
 *
 * Note for reading the ratios: Vault's file audit device appends each request and response entry
 * without fsync, while kmsd makes every call wait for its audit event's fsync.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort, logTail, stopChild, waitHealthy } from './kmsd.js';
import { REPO_ROOT, TOOLS_CACHE } from './paths.js';

export const VAULT_VERSION = 'v1.21.4';
export const VAULT_KEY = 'bench';
/** Target names in the data-plane results. */
export const VAULT_TARGET = 'vault transit';
export const VAULT_AUDIT_TARGET = 'vault transit + file audit';

export type VaultBinary = { available: true; bin: string; built: boolean; version: string } | { available: false; error: string };

function vaultVersion(bin: string): Promise<string | undefined> {
  return new Promise((resolveVersion) => {
    // "Vault v1.21.4, built <time>": the build time of a module-proxy build is not stamped (it
    // says the current time), so only the version is kept.
    execFile(bin, ['version'], { timeout: 15000, encoding: 'utf8' }, (error, stdout) =>
      resolveVersion(error ? undefined : (/v\d+\.\d+\.\d+\S*?(?=,|\s|$)/.exec(stdout)?.[0] ?? stdout.trim().split('\n')[0])),
    );
  });
}

/** The cached binary ($KMS_VAULT_BIN or the tools cache), or a fresh .ci/install-vault.sh build when `build`. */
export async function ensureVault(build: boolean, timeoutMs = 45 * 60000): Promise<VaultBinary> {
  const bin = process.env.KMS_VAULT_BIN ?? join(TOOLS_CACHE, `vault-${VAULT_VERSION}`);
  if (existsSync(bin)) {
    const version = await vaultVersion(bin);
    if (version) return { available: true, bin, built: false, version };
    if (!build) return { available: false, error: `${bin} does not run (\`vault version\` failed)` };
  }
  if (!build) return { available: false, error: `not built (${bin.replace(TOOLS_CACHE, '$KMS_TOOLS_CACHE')} missing; build it with .ci/install-vault.sh or pass --build-vault)` };
  const script = join(REPO_ROOT, '.ci', 'install-vault.sh');
  return new Promise((resolveBinary) => {
    execFile('bash', [script], { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const built = stdout.trim().split('\n').pop() ?? '';
      if (!error && existsSync(built)) {
        void vaultVersion(built).then((version) =>
          resolveBinary(version ? { available: true, bin: built, built: true, version } : { available: false, error: `${built} does not run` }),
        );
      } else {
        const lastLines = (stderr || error?.message || '').trim().split('\n').slice(-3).join(' ');
        resolveBinary({ available: false, error: `.ci/install-vault.sh: ${withoutHosts(lastLines)}` });
      }
    });
  });
}

export interface VaultServer {
  url: string;
  token: string;
  pid: number;
  /** Where the file audit device writes, when enabled. */
  auditFile?: string;
  stop(): Promise<void>;
}

/** One Vault API call with the root token; throws on a non-2xx answer. */
export async function vaultCall(url: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { 'x-vault-token': token, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`vault ${method} ${path} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

export interface StartVaultOptions {
  bin: string;
  /** A temp dir: HOME, working dir, log and audit file. */
  dir: string;
  audit: boolean;
  /** Pin to these CPUs (taskset -c LIST) when set. */
  cpus?: string;
}

export async function startVault(options: StartVaultOptions): Promise<VaultServer> {
  const port = await freePort();
  const token = `bench-${randomBytes(12).toString('hex')}`;
  const logFile = join(options.dir, 'vault.log');
  const log = openSync(logFile, 'a');
  const argv = [options.bin, 'server', '-dev', `-dev-root-token-id=${token}`, '-dev-no-store-token', '-log-level=warn'];
  if (options.cpus !== undefined) argv.unshift('taskset', '-c', options.cpus);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: options.dir, VAULT_DEV_LISTEN_ADDRESS: `127.0.0.1:${port}` };
  for (const name of Object.keys(env)) if (name.startsWith('VAULT_') && name !== 'VAULT_DEV_LISTEN_ADDRESS') delete env[name];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: options.dir, env, stdio: ['ignore', log, log] });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const tail = () => logTail(logFile);
  try {
    await waitHealthy(`${url}/v1/sys/health`, child, 60000, tail);
    let auditFile: string | undefined;
    if (options.audit) {
      auditFile = join(options.dir, 'audit.log');
      await vaultCall(url, token, 'PUT', '/v1/sys/audit/file', { type: 'file', options: { file_path: auditFile } });
    }
    await vaultCall(url, token, 'POST', '/v1/sys/mounts/transit', { type: 'transit' });
    await vaultCall(url, token, 'POST', `/v1/transit/keys/${VAULT_KEY}`, { type: 'aes256-gcm96' });
    return { url, token, pid: child.pid!, ...(auditFile ? { auditFile } : {}), stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw new Error(`vault did not start: ${(error as Error).message}\n${tail()}`, { cause: error });
  }
}

/** Registry addresses stay out of committed results. */
function withoutHosts(text: string): string {
  return text.replace(/https?:\/\/[^/\s]+/g, '<go module proxy>');
}
