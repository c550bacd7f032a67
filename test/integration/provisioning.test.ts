/**
 * HSM provisioning that can never silently start over, on the real kmsd binary with its own
 * SoftHSM2 configuration and token directory in each data dir (SOFTHSM2_CONF unset, as users run
 * it): kill -9 at every step of a first start, a store whose token is missing or replaced, a PIN
 * file that is gone, a configuration emptied by a power cut, and `kmsd hsm status`.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRASH_POINTS } from '../../daemon/crash-points.js';
import { KMSD_MAIN, api, newTestToken, startDaemon, tempDir, type DaemonProcess } from '../support/daemon.js';

/** The daemon's own SoftHSM2 under the data dir: the jest-wide SOFTHSM2_CONF must not leak in. */
const OWN_HSM = { SOFTHSM2_CONF: '' };

function runKmsd(dataDir: string, env: Record<string, string> = {}, args: string[] = []) {
  return spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
    env: { ...process.env, ...OWN_HSM, KMS_BOOTSTRAP_TOKEN: newTestToken(), ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function hsmStatus(dataDir: string, extra: string[] = []) {
  return spawnSync(process.execPath, [KMSD_MAIN, 'hsm', 'status', '--data-dir', dataDir, ...extra], {
    env: { ...process.env, ...OWN_HSM },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function start(dataDir: string, token: string, args: string[] = []): Promise<DaemonProcess> {
  return startDaemon({ dataDir, testClock: false, args, env: { ...OWN_HSM, KMS_BOOTSTRAP_TOKEN: token } });
}

/** The token directories SoftHSM2 made under the data dir (one per token). */
function tokenDirs(dataDir: string): string[] {
  return readdirSync(join(dataDir, 'tokens'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
}

/** A data dir with keys (one wrapped, one AES_256_HSM) and a ciphertext of each, daemon stopped. */
async function populated(): Promise<{ dataDir: string; token: string; ciphertexts: { keyId: string; ciphertext: string }[] }> {
  const dataDir = join(tempDir(), 'data');
  const token = newTestToken();
  const daemon = await start(dataDir, token);
  const ciphertexts: { keyId: string; ciphertext: string }[] = [];
  for (const defaultAlgorithm of ['AES_256', 'AES_256_HSM']) {
    const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'prov', defaultAlgorithm });
    expect(created.status).toBe(200);
    const keyId = created.body.response.id as string;
    const enc = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from(`secret ${defaultAlgorithm}`).toString('base64') });
    expect(enc.status).toBe(200);
    ciphertexts.push({ keyId, ciphertext: enc.body.ciphertext });
  }
  await daemon.stop();
  return { dataDir, token, ciphertexts };
}

async function expectDecrypts(daemon: DaemonProcess, ciphertexts: { keyId: string; ciphertext: string }[]): Promise<void> {
  for (const { keyId, ciphertext } of ciphertexts) {
    const dec = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext });
    expect(dec.status).toBe(200);
    expect(Buffer.from(dec.body.plaintext, 'base64').toString()).toMatch(/^secret AES_256/);
  }
}

function expectRefusal(result: ReturnType<typeof runKmsd>, dataDir: string, what: RegExp): void {
  expect(result.status).toBe(1);
  expect(result.stderr).toMatch(what);
  expect(result.stderr).toContain(dataDir);
  expect(result.stderr).toMatch(/backup/i);
  expect(result.stderr).toMatch(/never/);
}

describe('kill -9 at each step of a first start', () => {
  it.each(CRASH_POINTS.map((point) => [point]))('after %s: the restart finishes the same first start, and keys survive', async (point) => {
    const dataDir = join(tempDir(), 'data');
    const crashed = runKmsd(dataDir, { KMS_UNSAFE_TEST_CRASH_AT: point });
    expect(crashed.signal).toBe('SIGKILL');
    const token = newTestToken();
    const daemon = await start(dataDir, token);
    const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'crash', defaultAlgorithm: 'AES_256' });
    expect(created.status).toBe(200);
    const keyId = created.body.response.id as string;
    const enc = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from('secret AES_256').toString('base64') });
    await daemon.stop();
    // One token, the one the PIN file names: the crash never led to a second first start.
    expect(tokenDirs(dataDir)).toHaveLength(1);
    const again = await start(dataDir, token);
    await expectDecrypts(again, [{ keyId, ciphertext: enc.body.ciphertext }]);
    await again.stop();
    const status = hsmStatus(dataDir);
    expect(status.stdout).toContain('OK: the HSM holds what the store depends on');
    expect(status.status).toBe(0);
  });
});

describe('a store with keys never meets a fresh token', () => {
  it('restarts with the same token and root key: every ciphertext still decrypts', async () => {
    const { dataDir, token, ciphertexts } = await populated();
    const daemon = await start(dataDir, token);
    await expectDecrypts(daemon, ciphertexts);
    await daemon.stop();
  });

  it('refuses to start when tokens/ is gone, naming it, the data dir and the backup', async () => {
    const { dataDir } = await populated();
    rmSync(join(dataDir, 'tokens'), { recursive: true });
    expectRefusal(runKmsd(dataDir), dataDir, /the SoftHSM2 token directory .*tokens is missing/);
    expect(existsSync(join(dataDir, 'tokens'))).toBe(false);
  });

  it("refuses to start when the token's files are gone, naming the token", async () => {
    const { dataDir } = await populated();
    const label = (JSON.parse(readFileSync(join(dataDir, 'hsm-pins.json'), 'utf8')) as { tokenLabel: string }).tokenLabel;
    for (const dir of tokenDirs(dataDir)) rmSync(join(dataDir, 'tokens', dir), { recursive: true });
    const result = runKmsd(dataDir);
    expectRefusal(result, dataDir, new RegExp(`no PKCS#11 token labelled '${label}'`));
    expect(tokenDirs(dataDir)).toHaveLength(0);
  });

  it('refuses another data dir’s token and PINs put in place of its own, naming label and serial', async () => {
    const a = await populated();
    const b = await populated();
    rmSync(join(a.dataDir, 'tokens'), { recursive: true });
    cpSync(join(b.dataDir, 'tokens'), join(a.dataDir, 'tokens'), { recursive: true });
    cpSync(join(b.dataDir, 'hsm-pins.json'), join(a.dataDir, 'hsm-pins.json'));
    const result = runKmsd(a.dataDir);
    expectRefusal(result, a.dataDir, /token label is '.*', expected '.*'; token serial is \w+, expected \w+/);
    const status = hsmStatus(a.dataDir);
    expect(status.status).toBe(1);
    expect(status.stdout).toMatch(/PROBLEM: refusing to start: the HSM kmsd opened is not root key 'kms-root-wrapping-key'/);
  });

  it('refuses to start without its PIN file instead of generating new PINs', async () => {
    const { dataDir } = await populated();
    rmSync(join(dataDir, 'hsm-pins.json'));
    expectRefusal(runKmsd(dataDir), dataDir, /the HSM PIN file .*hsm-pins\.json is missing/);
    expect(existsSync(join(dataDir, 'hsm-pins.json'))).toBe(false);
  });

  it('refuses the software keystore for a store made with the HSM', async () => {
    const { dataDir } = await populated();
    const result = runKmsd(dataDir, {}, ['--keystore', 'software']);
    expectRefusal(result, dataDir, /the software root key .*software-root\.key is missing \(the store depends on root key 'kms-root-wrapping-key' .* in PKCS#11 token/);
    expect(existsSync(join(dataDir, 'software-root.key'))).toBe(false);
  });

  it('rewrites a softhsm2.conf that a power cut left empty, and keeps every key', async () => {
    const { dataDir, token, ciphertexts } = await populated();
    writeFileSync(join(dataDir, 'softhsm2.conf'), '');
    const daemon = await start(dataDir, token);
    expect(daemon.output.some((line) => line.includes('did not hold the expected configuration; rewrote it'))).toBe(true);
    await expectDecrypts(daemon, ciphertexts);
    await daemon.stop();
    expect(readFileSync(join(dataDir, 'softhsm2.conf'), 'utf8')).toContain(`directories.tokendir = ${join(dataDir, 'tokens')}`);
  });
});

describe('kmsd hsm status', () => {
  it('prints what the store depends on and what the HSM holds, as text and JSON', async () => {
    const { dataDir } = await populated();
    const text = hsmStatus(dataDir);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^store +2 keys, 2 versions$/m);
    expect(text.stdout).toMatch(/^depends on +root key 'kms-root-wrapping-key' \(CKA_ID [0-9a-f]+, check value [0-9a-f]{6}\) in PKCS#11 token 'kmsd-[0-9a-f]{8}' \(serial \w+\), recorded /m);
    const json = hsmStatus(dataDir, ['--json']);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { ok: boolean; recorded: { token: { serial: string } }; keystore: { token: { serial: string } } };
    expect(report.ok).toBe(true);
    expect(report.keystore.token.serial).toBe(report.recorded.token.serial);
  });

  it('is a usage error without a subcommand', () => {
    const result = spawnSync(process.execPath, [KMSD_MAIN, 'hsm'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('Usage: kmsd hsm status');
  });
});

describe('bootstrap token', () => {
  it('changing KMS_BOOTSTRAP_TOKEN revokes the previous one', async () => {
    const dataDir = join(tempDir(), 'data');
    const first = newTestToken();
    const daemon = await start(dataDir, first);
    expect((await api(daemon, 'GET', '/kms/v1/keys?folderId=x')).status).toBe(200);
    await daemon.stop();
    const second = newTestToken();
    const again = await start(dataDir, second);
    expect((await api({ url: again.url, token: first }, 'GET', '/kms/v1/keys?folderId=x')).status).toBe(401);
    expect((await api({ url: again.url, token: second }, 'GET', '/kms/v1/keys?folderId=x')).status).toBe(200);
    expect(again.output.some((line) => line.includes('revoked the previous bootstrap admin token'))).toBe(true);
    await again.stop();
  });
});
