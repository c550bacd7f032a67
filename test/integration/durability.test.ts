/**
 * Durability and exclusivity of the data dir, against the real `kmsd` binary: corrupt or unknown
 * files stop start-up with a clear message, a second daemon is refused, a daemon killed with
 * SIGKILL loses no acknowledged write.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KMSD_MAIN, api, startDaemon, tempDir, type DaemonProcess } from '../support/daemon.js';
import { runCrashCycles } from '../support/crash.js';

const running: DaemonProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((d) => d.kill()));
});

function runKmsdSync(dataDir: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('start-up refuses untrustworthy data', () => {
  it.each([
    ['not JSON', '{"schemaVersion": 1, "keys": {', /is not valid JSON .*refusing to start/],
    ['an unknown schema version', '{"schemaVersion": 99, "keys": {}, "versions": {}, "operations": {}, "tokens": {}}', /has schemaVersion 99, this kmsd understands 1 and 2; refusing to start/],
    ['a missing table', '{"schemaVersion": 1, "keys": {}, "versions": {}, "operations": {}}', /missing its "tokens" table/],
    ['not an object', '[1,2,3]', /does not hold a JSON object/],
  ])('a data file that is %s', (_name, content, message) => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, 'kms.json'), content);
    const result = runKmsdSync(dataDir);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    // Never reset silently: the file is untouched.
    expect(readFileSync(join(dataDir, 'kms.json'), 'utf8')).toBe(content);
  });
});

describe('one daemon per data dir', () => {
  it('a second kmsd on the same data dir exits non-zero with a clear message', async () => {
    const first = await startDaemon();
    running.push(first);
    const second = runKmsdSync(first.dataDir);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`data directory .* is in use by another kmsd \\(pid ${first.child.pid}\\)`));
    // The first one still serves.
    expect((await api(first, 'GET', '/kms/v1/keys?folderId=f')).status).toBe(200);
  });

  it('a lock left by a killed daemon is taken over at restart', async () => {
    const first = await startDaemon();
    await first.kill();
    const again = await startDaemon({ dataDir: first.dataDir, env: { KMS_BOOTSTRAP_TOKEN: first.token } });
    running.push(again);
    expect((await api(again, 'GET', '/healthz')).status).toBe(200);
  });
});

describe('bootstrap admin token', () => {
  it('is generated into admin.token (0600) when KMS_BOOTSTRAP_TOKEN is not set, and works', async () => {
    const dataDir = tempDir();
    const daemon = await startDaemon({ dataDir, env: { KMS_BOOTSTRAP_TOKEN: '' } });
    running.push(daemon);
    const path = join(dataDir, 'admin.token');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const token = readFileSync(path, 'utf8').trim();
    expect(token).toMatch(/^kms_[A-Za-z0-9_-]{43}$/);
    expect((await api({ url: daemon.url, token }, 'GET', '/kms/v1/keys?folderId=f')).status).toBe(200);
    expect(daemon.output.join('\n')).toContain(path);
    expect(daemon.output.join('\n')).not.toContain(token);
    // The data file holds only its hash.
    expect(readFileSync(join(dataDir, 'kms.json'), 'utf8')).not.toContain(token);
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM lets in-flight writes finish and exits 0', async () => {
    const daemon = await startDaemon();
    const writes = Array.from({ length: 20 }, () => api(daemon, 'POST', '/kms/v1/keys', { folderId: 'f' }));
    await new Promise((r) => setTimeout(r, 5));
    daemon.child.kill('SIGTERM');
    const results = await Promise.allSettled(writes);
    const acknowledged = results.filter((r) => r.status === 'fulfilled' && r.value.status === 200).map((r) => (r as PromiseFulfilledResult<{ body: { metadata: { keyId: string } } }>).value.body.metadata.keyId);
    const code = await new Promise<number | null>((resolve) => (daemon.child.exitCode !== null ? resolve(daemon.child.exitCode) : daemon.child.once('exit', resolve)));
    expect(code).toBe(0);
    const state = JSON.parse(readFileSync(join(daemon.dataDir, 'kms.json'), 'utf8')) as { keys: Record<string, unknown> };
    for (const id of acknowledged) expect(state.keys[id]).toBeDefined();
  });
});

describe('crash safety', () => {
  const cycles = Number(process.env.KMS_CRASH_CYCLES ?? 50);
  it(`no acknowledged write is lost across ${cycles} SIGKILL cycles`, async () => {
    const report = await runCrashCycles({ cycles, tempDir: tempDir('kms-crash-') });
    expect(report.cycles).toBe(cycles);
    expect(report.lost).toEqual([]);
    expect(report.acknowledged).toBeGreaterThan(cycles);
    console.log(`crash test: ${report.cycles} cycles, ${report.acknowledged} acknowledged creates, ${report.lost.length} lost, ${report.seconds.toFixed(1)} s`);
  }, 600_000);
});
