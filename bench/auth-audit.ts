/**
 * What access control and the audit trail cost on the hot path: encrypt (256 B, AES_256) over
 * HTTP against the same daemon build twice in one run — once as shipped (token check, role
 * check, one fsynced audit event per call) and once started with `unsafeWithoutAccessControl`
 * (same routes, validation, keystore and logging; no authentication, authorization or audit).
 *
 *   node dist/bench/auth-audit.js [--seconds 5] [--runs 3] [--connections 32]
 *
 * The server runs in a child process (this file with --serve), pinned to CPU 0 when taskset is
 * there, and the load from this process on CPU 1.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../daemon/config.js';
import { startKmsd } from '../daemon/kmsd.js';
import { api, newTestToken, tempDir } from '../test/support/daemon.js';
import { silentLogger } from '../test/support/kmsd.js';
import { figure, ratio, type Figure } from './stats.js';
import { pinProcess, pinningAvailable } from './system.js';

async function serve(bare: boolean): Promise<void> {
  const token = newTestToken();
  const config = parseConfig(['--listen', '127.0.0.1:0', '--data-dir', tempDir('kms-bench-aa-')], { KMS_BOOTSTRAP_TOKEN: token });
  const running = await startKmsd(config, { logger: silentLogger, unsafeWithoutAccessControl: bare });
  process.stdout.write(`${JSON.stringify({ url: running.url, token })}\n`);
  process.once('SIGTERM', () => void running.stop().then(() => process.exit(0)));
}

async function measure(bare: boolean, options: { seconds: number; runs: number; connections: number; pin: boolean }): Promise<Figure> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', bare ? 'bare' : 'full'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const { url, token } = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString('utf8')) as { url: string; token: string }));
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
    if (options.pin && child.pid !== undefined) {
      pinProcess(child.pid, '0');
      pinProcess(process.pid, '1');
    }
    const key = await api({ url, token }, 'POST', '/kms/v1/keys', { folderId: 'bench', defaultAlgorithm: 'AES_256' });
    const body = JSON.stringify({ plaintext: Buffer.alloc(256, 7).toString('base64') });
    const request = { url: `${url}/kms/v1/keys/${key.body.response.id as string}:encrypt`, method: 'POST' as const, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body };
    await autocannon({ ...request, connections: options.connections, duration: 1 });
    const samples: number[] = [];
    for (let i = 0; i < options.runs; i++) {
      const result = await autocannon({ ...request, connections: options.connections, duration: options.seconds });
      if (result.non2xx > 0) throw new Error(`${result.non2xx} failed requests`);
      samples.push(result['2xx'] / result.duration);
    }
    return figure(samples);
  } finally {
    child.kill('SIGTERM');
  }
}

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
  },
});
if (values.serve !== undefined) {
  await serve(values.serve === 'bare');
} else {
  const options = { seconds: Number(values.seconds), runs: Number(values.runs), connections: Number(values.connections), pin: pinningAvailable().available };
  const full = await measure(false, options);
  const bare = await measure(true, options);
  const show = (f: Figure) => `${Math.round(f.median)} ops/s (${Math.round(f.min)}–${Math.round(f.max)})`;
  console.log(`encrypt 256 B, ${options.connections} connections, ${options.runs}×${options.seconds}s, pinned: ${options.pin}`);
  console.log(`  with auth + audit:    ${show(full)}`);
  console.log(`  without (same path):  ${show(bare)}`);
  console.log(`  ratio with/without:   ${ratio(full, bare).toFixed(2)}×`);
}
