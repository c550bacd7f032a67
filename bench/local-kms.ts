/**
 * local-kms (github.com/nsmithuk/local-kms), the Go AWS KMS emulator, as the bench's reference
 * server: built with `go install` into the tools cache (never into the repository), run on a
 * loopback port with its data in a temp dir, one AES key created with TrentService.CreateKey.
 * When it cannot be built the bench records the exact error and goes on without it.
 */
import { homedir } from 'node:os';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, stopChild, waitHealthy } from './kmsd.js';
import { TOOLS_CACHE } from './paths.js';

export const LOCAL_KMS_MODULE = 'github.com/nsmithuk/local-kms@latest';

export type LocalKmsBinary = { available: true; bin: string; built: boolean } | { available: false; error: string };

/** The cached binary, or a fresh `GOBIN=<cache> go install` (unless `build` is false). */
export async function ensureLocalKms(build: boolean, timeoutMs = 300000): Promise<LocalKmsBinary> {
  const bin = process.env.KMS_LOCAL_KMS_BIN ?? join(TOOLS_CACHE, 'local-kms');
  if (existsSync(bin)) return { available: true, bin, built: false };
  if (!build) return { available: false, error: `not built (${bin} missing; the quick mode does not build it)` };
  mkdirSync(TOOLS_CACHE, { recursive: true });
  return new Promise((resolveBinary) => {
    execFile(
      'go',
      ['install', LOCAL_KMS_MODULE],
      { env: { ...process.env, GOBIN: TOOLS_CACHE }, timeout: timeoutMs, encoding: 'utf8', cwd: TOOLS_CACHE },
      (error, _stdout, stderr) => {
        if (!error && existsSync(bin)) resolveBinary({ available: true, bin, built: true });
        else resolveBinary({ available: false, error: `GOBIN=${TOOLS_CACHE.replace(homedir(), '~')} go install ${LOCAL_KMS_MODULE}: ${withoutHosts((stderr || (error?.message ?? '')).trim())}` });
      },
    );
  });
}

export interface LocalKmsServer {
  url: string;
  keyId: string;
  pid: number;
  stop(): Promise<void>;
}

/** One TrentService call; throws on a non-2xx answer. */
export async function trent(url: string, action: string, body: unknown): Promise<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${action}` },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`local-kms ${action} → ${response.status}: ${text}`);
  return JSON.parse(text);
}

export async function startLocalKms(bin: string, dataDir: string): Promise<LocalKmsServer> {
  const port = await freePort();
  let output = '';
  const child = spawn(bin, [], {
    env: { ...process.env, PORT: String(port), KMS_DATA_PATH: dataDir, KMS_REGION: 'eu-west-1', KMS_ACCOUNT_ID: '111122223333' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = `http://127.0.0.1:${port}/`;
  try {
    // local-kms has no health route; any HTTP answer means it is listening.
    await waitHealthy(url, child, 30000, () => output, true);
    const created = await trent(url, 'CreateKey', { Description: 'kms bench', KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT' });
    const keyId = (created as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    return { url, keyId, pid: child.pid!, stop: () => stopChild(child) };
  } catch (error) {
    await stopChild(child);
    throw new Error(`local-kms did not start: ${(error as Error).message}\n${output}`, { cause: error });
  }
}

/** Registry addresses stay out of committed results: the error keeps its path and status only. */
function withoutHosts(text: string): string {
  return text.replace(/https?:\/\/[^/\s]+/g, '<go module proxy>');
}
