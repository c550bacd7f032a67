/**
 * Where each microsecond of a data-plane call goes: runs kmsd under `--cpu-prof` (pinned to CPU 0,
 * the load on CPU 1 when possible), drives encrypt (or decrypt) at full load with autocannon, then
 * splits the profile's self time by layer (HTTP parsing, Express, body parsing, validation, auth,
 * audit, logging, HSM calls, GC, idle…) and divides by the calls served: µs per call per layer.
 *
 *   npm run bench:profile -- [--operation encrypt|decrypt] [--seconds 20] [--size 256]
 *                            [--algorithm AES_256|AES_256_HSM] [--connections 32] [--top 30]
 *                            [--out DIR]   (keeps the .cpuprofile there; a temp dir otherwise)
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { api, newTestToken, tempDir } from '../test/support/daemon.js';
import { startBenchDaemon } from './kmsd.js';
import { pinProcess, pinningAvailable, processCpuMs } from './system.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Layers, by the first rule that matches a frame (function name and script url). */
const LAYERS: [string, (name: string, url: string) => boolean][] = [
  ['idle (waiting: fsync, I/O)', (n) => n === '(idle)'],
  ['GC', (n) => n === '(garbage collector)'],
  ['HSM calls (pkcs11js → SoftHSM2)', (_n, u) => u.includes('pkcs11js')],
  ['keystore (our code around the HSM)', (_n, u) => u.includes('/daemon/keystore/')],
  ['audit trail', (_n, u) => u.includes('/daemon/audit/')],
  ['store reads', (_n, u) => u.includes('/daemon/store/')],
  ['domain (crypto, access, tokens)', (_n, u) => u.includes('/daemon/domain/')],
  ['routing, validation glue (daemon/http)', (_n, u) => u.includes('/daemon/http/')],
  ['app middleware (daemon/app)', (_n, u) => u.endsWith('/daemon/app.js')],
  ['metrics', (_n, u) => u.includes('prom-client') || u.includes('/daemon/metrics')],
  ['logging (pino)', (_n, u) => u.includes('pino') || u.includes('sonic-boom') || u.includes('thread-stream')],
  ['validation (ajv)', (_n, u) => u.includes('/ajv') || u.includes('ajv-formats')],
  ['body parsing (body-parser, raw-body)', (_n, u) => /body-parser|raw-body|iconv-lite|content-type|type-is|media-typer/.test(u)],
  ['Express (router, request/response)', (_n, u) => /node_modules\/(express|router|send|finalhandler|path-to-regexp|qs|statuses|on-finished|vary|cookie|etag|fresh|proxy-addr|accepts|negotiator|parseurl|depd|encodeurl|escape-html|mime)/.test(u)],
  ['node:http (parser, sockets, streams)', (_n, u) => /^node:(_http|http|net|stream|internal\/(http|streams|stream_base|net|js_stream))/.test(u) || u.startsWith('node:internal/streams')],
  ['node:crypto, buffers', (_n, u) => /^node:(crypto|buffer|internal\/crypto|internal\/buffer)/.test(u)],
  ['other node internals', (_n, u) => u.startsWith('node:')],
  ['native / program', (n, u) => u === '' && (n === '(program)' || n === '')],
];

export interface LayerTime {
  layer: string;
  usPerCall: number;
  percent: number;
}

export function layerTimes(profile: Profile, calls: number): LayerTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) return;
    all += us;
    const layer = LAYERS.find(([, match]) => match(frame.functionName, frame.url))?.[0] ?? `other: ${frame.functionName || '(anonymous)'}`;
    totals.set(layer, (totals.get(layer) ?? 0) + us);
  });
  return [...totals.entries()]
    .map(([layer, us]) => ({ layer, usPerCall: us / calls, percent: (us * 100) / all }))
    .sort((a, b) => b.usPerCall - a.usPerCall);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      operation: { type: 'string', default: 'encrypt' },
      seconds: { type: 'string', default: '20' },
      size: { type: 'string', default: '256' },
      algorithm: { type: 'string', default: 'AES_256' },
      connections: { type: 'string', default: '32' },
      top: { type: 'string', default: '25' },
      out: { type: 'string' },
    },
  });
  const profileDir = values.out !== undefined ? resolve(values.out) : tempDir('kms-profile-');
  const pin = pinningAvailable().available;
  const dataDir = tempDir('kms-profile-data-');
  const daemon = await startBenchDaemon({
    dataDir,
    token: newTestToken(),
    ...(pin ? { cpus: '0' } : {}),
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  if (pin) pinProcess(process.pid, '1');
  const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'profile', defaultAlgorithm: values.algorithm });
  if (created.status !== 200) throw new Error(`create key: ${JSON.stringify(created.body)}`);
  const keyId = created.body.metadata.keyId as string;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${daemon.token}` };
  const plaintext = randomBytes(Number(values.size)).toString('base64');
  let url = `${daemon.url}/kms/v1/keys/${keyId}:encrypt`;
  let body = JSON.stringify({ plaintext });
  if (values.operation === 'decrypt') {
    const enc = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext });
    url = `${daemon.url}/kms/v1/keys/${keyId}:decrypt`;
    body = JSON.stringify({ ciphertext: enc.body.ciphertext });
  }
  await autocannon({ url, method: 'POST', headers, body, connections: Number(values.connections), duration: 3 });
  const cpuMs = () => {
    const ms = processCpuMs(daemon.pid);
    if (ms === undefined) throw new Error(`cannot read the CPU time of the daemon (pid ${daemon.pid}) from /proc`);
    return ms;
  };
  const cpuBefore = cpuMs();
  const result = await autocannon({ url, method: 'POST', headers, body, connections: Number(values.connections), duration: Number(values.seconds) });
  const cpuPerCall = ((cpuMs() - cpuBefore) * 1e3) / (result['2xx'] + result.non2xx);
  await daemon.stop();
  // node names the file CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile: take the daemon's own.
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(daemon.pid));
  if (file === undefined) throw new Error(`no .cpuprofile in ${profileDir}`);
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as Profile;
  // The profile covers the whole process life; count every call it saw (warm-up and setup too).
  const calls = result['2xx'] + result.non2xx + 3 * (result['2xx'] / result.duration);
  console.log(`${values.operation} ${values.size} B ${values.algorithm}: ${(result['2xx'] / result.duration).toFixed(0)} calls/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ${result.non2xx + result.errors} failures`);
  // CPU time the daemon used per call: unlike calls/s, barely moved by other load on the machine.
  console.log(`daemon CPU per call (user + system, all threads): ${cpuPerCall.toFixed(1)} µs`);
  console.log(`profile ${join(profileDir, file)}; main thread per call (≈ ${calls.toFixed(0)} calls):`);
  for (const row of layerTimes(profile, calls).slice(0, Number(values.top))) {
    console.log(`${row.usPerCall.toFixed(1).padStart(8)} µs  ${row.percent.toFixed(1).padStart(5)}%  ${row.layer}`);
  }
  rmSync(dataDir, { recursive: true, force: true });
  if (values.out === undefined) rmSync(profileDir, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
