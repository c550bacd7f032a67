// File-level behaviour of provisionSoftHsm (no token is touched here).
import { describe, it, expect, afterEach } from '@jest/globals';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KmsError } from '../../daemon/domain/errors.js';
import { SOFTHSM_FILES, provisionSoftHsm } from '../../daemon/keystore/softhsm.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kms-provision-'));
  dirs.push(d);
  return d;
}
const savedConf = process.env.SOFTHSM2_CONF;
afterEach(() => {
  // jest's process.env is a per-file copy: restoring it cannot affect the real environment.
  if (savedConf === undefined) delete process.env.SOFTHSM2_CONF;
  else process.env.SOFTHSM2_CONF = savedConf;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('provisionSoftHsm', () => {
  it('first start: conf, token dir and a 0600 PIN file with a generated token label', () => {
    delete process.env.SOFTHSM2_CONF;
    const dir = tempDir();
    const hsm = provisionSoftHsm(dir);
    const conf = path.join(dir, SOFTHSM_FILES.conf);
    expect(readFileSync(conf, 'utf8')).toContain(`directories.tokendir = ${path.join(dir, SOFTHSM_FILES.tokens)}`);
    expect(statSync(path.join(dir, SOFTHSM_FILES.tokens)).isDirectory()).toBe(true);
    expect(statSync(hsm.pinsPath).mode & 0o777).toBe(0o600);
    expect(process.env.SOFTHSM2_CONF).toBe(conf);
    expect(hsm.confPath).toBe(conf);
    expect(hsm.tokenLabel).toMatch(/^kmsd-[0-9a-f]{8}$/);
    expect(hsm.pin).toHaveLength(32);
    expect(hsm.soPin).not.toBe(hsm.pin);
  });

  it('later starts reuse the same label and PINs', () => {
    const dir = tempDir();
    const first = provisionSoftHsm(dir);
    const second = provisionSoftHsm(dir);
    expect(second).toEqual(first);
  });

  it('an already-set SOFTHSM2_CONF wins, and is reported', () => {
    process.env.SOFTHSM2_CONF = '/somewhere/else.conf';
    const infos: string[] = [];
    const hsm = provisionSoftHsm(tempDir(), { logger: { info: (m) => void infos.push(m), warn: () => undefined } });
    expect(hsm.confPath).toBe('/somewhere/else.conf');
    expect(process.env.SOFTHSM2_CONF).toBe('/somewhere/else.conf');
    expect(infos.some((m) => m.startsWith('SOFTHSM2_CONF is set to /somewhere/else.conf'))).toBe(true);
  });

  it('configured label and PINs override the file', () => {
    const hsm = provisionSoftHsm(tempDir(), { tokenLabel: 'prod', pin: 'user-pin', soPin: 'so-pin', modulePath: '/x.so' });
    expect(hsm).toMatchObject({ tokenLabel: 'prod', pin: 'user-pin', soPin: 'so-pin', modulePath: '/x.so' });
  });

  it('warns about a PIN file readable by others', () => {
    const dir = tempDir();
    const { pinsPath } = provisionSoftHsm(dir);
    chmodSync(pinsPath, 0o644);
    const warnings: string[] = [];
    provisionSoftHsm(dir, { logger: { info: () => undefined, warn: (m) => void warnings.push(m) } });
    expect(warnings).toEqual([`${pinsPath} is readable by others (mode 644); it holds the HSM PINs: chmod 600 it`]);
  });

  it('a corrupt PIN file is FAILED_PRECONDITION, never silently regenerated', () => {
    const dir = tempDir();
    const { pinsPath } = provisionSoftHsm(dir);
    writeFileSync(pinsPath, '{"tokenLabel": 1}');
    const err = (() => {
      try {
        provisionSoftHsm(dir);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(KmsError);
    expect(err).toMatchObject({ code: 'FAILED_PRECONDITION', message: `${pinsPath} lacks tokenLabel, userPin or soPin; restore it from backup` });
  });
});
