// Zero-step SoftHSM2: what `kmsd` does on first start with defaults, and on every later start.
import { describe, it, expect, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSoftHsmKeystore } from '../../daemon/keystore/softhsm.js';
import { SOFTHSM_MODULE, sharedSoftHsmConf } from '../support/softhsm.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kms-softhsm-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('openSoftHsmKeystore', () => {
  it('a fresh process with no SOFTHSM2_CONF creates its own token under the data dir, and finds it again', () => {
    const dataDir = tempDir();
    const softhsm = fileURLToPath(new URL('../../daemon/keystore/softhsm.js', import.meta.url));
    // A separate process, because SoftHSM2 reads SOFTHSM2_CONF once per process (this one
    // already uses the shared test configuration).
    const script = `
      import { openSoftHsmKeystore } from ${JSON.stringify(softhsm)};
      const logs = [];
      const logger = { info: (m) => logs.push(m), warn: (m) => logs.push(m) };
      const ks = openSoftHsmKeystore(process.env.DATA_DIR, { logger });
      let out;
      if (process.env.SEALED) {
        const { ref, nonce, ciphertext } = JSON.parse(process.env.SEALED);
        out = ks.open(ref, 'AES_256', { nonce: Buffer.from(nonce, 'base64'), ciphertext: Buffer.from(ciphertext, 'base64') }, Buffer.alloc(0)).toString();
      } else {
        const ref = ks.createVersionMaterial('v1', 'AES_256');
        const s = ks.seal(ref, 'AES_256', Buffer.from('across restarts'), Buffer.alloc(0));
        out = { ref, nonce: s.nonce.toString('base64'), ciphertext: s.ciphertext.toString('base64') };
      }
      ks.close();
      process.stdout.write(JSON.stringify({ logs, out, conf: process.env.SOFTHSM2_CONF }));`;
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir };
    delete env.SOFTHSM2_CONF;
    const run = (extra: Record<string, string>) => {
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...env, ...extra }, encoding: 'utf8' });
      expect(child.stderr).toBe('');
      return JSON.parse(child.stdout) as { logs: string[]; out: unknown; conf: string };
    };

    const first = run({});
    expect(first.conf).toBe(path.join(dataDir, 'softhsm2.conf'));
    expect(first.logs).toEqual([
      expect.stringMatching(/^generated HSM PINs in /),
      expect.stringMatching(/^initialized PKCS#11 token 'kmsd-[0-9a-f]{8}'/),
      expect.stringMatching(/^created root wrapping key 'kms-root-wrapping-key'/),
    ]);
    expect(statSync(path.join(dataDir, 'hsm-pins.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.join(dataDir, 'tokens'))).toHaveLength(1);

    const second = run({ SEALED: JSON.stringify(first.out) });
    expect(second.logs).toEqual([]);
    expect(second.out).toBe('across restarts');
    expect(readdirSync(path.join(dataDir, 'tokens'))).toHaveLength(1);
  });

  it('under jest, uses the shared configuration with a token label of its own per data dir', () => {
    sharedSoftHsmConf();
    const a = tempDir();
    const b = tempDir();
    const ksA = openSoftHsmKeystore(a, { modulePath: SOFTHSM_MODULE });
    const ksB = openSoftHsmKeystore(b, { modulePath: SOFTHSM_MODULE });
    try {
      expect(ksA.tokenLabel).not.toBe(ksB.tokenLabel);
      expect(JSON.parse(readFileSync(path.join(a, 'hsm-pins.json'), 'utf8'))).toMatchObject({ tokenLabel: ksA.tokenLabel });
      const ref = ksA.createVersionMaterial('v', 'AES_128');
      const sealed = ksA.seal(ref, 'AES_128', Buffer.from('mine'), Buffer.alloc(0));
      // B's root key is another key: A's blob does not unwrap there.
      expect(() => ksB.open(ref, 'AES_128', sealed, Buffer.alloc(0))).toThrow("key version material cannot be unwrapped by this token's root key");
    } finally {
      ksA.close();
      ksB.close();
    }
  });
});
