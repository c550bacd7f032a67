/**
 * Real filesystem faults under the real daemon: its data dir on a small tmpfs that fills up, then
 * is remounted read-only. Every call answers 503 UNAVAILABLE naming the cause (never an opaque
 * 500), /healthz says not-ready with the reason, both heal by themselves once the disk works
 * again, nothing acknowledged is lost and nothing refused appears later. Needs root (mount), as
 * CI runs; it fails, not skips, without it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, newTestToken, startDaemon, tempDir, type DaemonProcess } from '../support/daemon.js';

const root = tempDir('kms-faults-');
const mnt = join(root, 'mnt');
const dataDir = join(mnt, 'data');
const token = newTestToken();
let daemon: DaemonProcess;
let mounted = false;
const acknowledged: string[] = [];

function mount(...args: string[]): void {
  execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Fills the filesystem to the last byte. */
function fill(): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
  } catch {
    // dd exits 1 at ENOSPC: the point
  }
  // Whatever dd could not take in 64k blocks.
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(mnt, `filler-${i}`), Buffer.alloc(512));
    } catch {
      break;
    }
  }
}

function unfill(): void {
  execFileSync('sh', ['-c', `rm -f ${JSON.stringify(mnt)}/filler*`]);
}

async function health(): Promise<{ status: number; body: any }> {
  return api({ url: daemon.url, token: '' }, 'GET', '/healthz');
}

async function waitForReady(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await health()).status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/healthz did not recover: ${JSON.stringify((await health()).body)}`);
}

async function createKey(name: string): Promise<{ status: number; body: any }> {
  const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'faults', name });
  if (res.status === 200) acknowledged.push(res.body.response.id);
  return res;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the fault tests mount a tmpfs and need root (CI runs as root)');
  mkdirSync(mnt, { recursive: true });
  mount('-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mnt);
  mounted = true;
  daemon = await startDaemon({ dataDir, testClock: false, env: { KMS_BOOTSTRAP_TOKEN: token, KMS_AUDIT_SEGMENT_SIZE: '64KiB' } });
  for (let i = 0; i < 5; i++) expect((await createKey(`before-${i}`)).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  if (mounted) execFileSync('umount', ['-l', mnt]);
  rmSync(root, { recursive: true, force: true });
});

describe('disk full', () => {
  it('answers 503 naming the cause, and /healthz says not ready', async () => {
    fill();
    // The last page of an open file may still have room for a line or two: write until it is gone.
    let create = await createKey('during-full');
    for (let i = 0; i < 200 && create.status === 200; i++) create = await createKey('during-full');
    expect(create.status).toBe(503);
    expect(create.body.code).toBe(14);
    expect(create.body.message).toMatch(/is not writable: no space left on device \(ENOSPC\)/);
    // The audit trail writes into the zeros it keeps ahead of itself in its segment (see
    // "Preallocation" in daemon/audit/trail.ts): encrypt stays available, each call durably
    // audited, until they are used up (a 64 KiB segment here), then the next segment cannot grow.
    let encrypt = await api(daemon, 'POST', `/kms/v1/keys/${acknowledged[0]}:encrypt`, { plaintext: 'eA==' });
    let served = 0;
    for (let i = 0; i < 2000 && encrypt.status === 200; i++) {
      served++;
      encrypt = await api(daemon, 'POST', `/kms/v1/keys/${acknowledged[0]}:encrypt`, { plaintext: 'eA==' });
    }
    expect(served).toBeGreaterThan(0);
    expect(encrypt.status).toBe(503);
    expect(encrypt.body.message).toMatch(/not writable: no space left on device \(ENOSPC\)/);
    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body.ready).toBe(false);
    expect(Object.values(h.body.checks).some((reason) => /no space left on device/.test(String(reason)))).toBe(true);
  });

  it('heals by itself once space is back', async () => {
    unfill();
    await waitForReady();
    expect((await createKey('after-full')).status).toBe(200);
    const encrypt = await api(daemon, 'POST', `/kms/v1/keys/${acknowledged[0]}:encrypt`, { plaintext: 'eA==' });
    expect(encrypt.status).toBe(200);
  });
});

/**
 * Remounts read-only. The kernel refuses (EBUSY) while a file is open for writing: the daemon
 * keeps its audit segment open only while calls come (closed after 1 s of quiet), so the remount
 * must succeed within a few seconds of the last call.
 */
async function remountReadOnly(): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      mount('-o', 'remount,ro', mnt);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('read-only file system', () => {
  it('answers 503 naming the cause while read-only, and heals when writable again', async () => {
    // calls right before: the remount waits for the idle segment to be closed, not for a restart
    expect((await createKey('before-ro')).status).toBe(200);
    await remountReadOnly();
    try {
      const create = await createKey('during-ro');
      expect(create.status).toBe(503);
      expect(create.body.message).toMatch(/is not writable: read-only file system \(EROFS\)/);
      const h = await health();
      expect(h.status).toBe(503);
      expect(Object.values(h.body.checks).some((reason) => /read-only file system/.test(String(reason)))).toBe(true);
    } finally {
      mount('-o', 'remount,rw', mnt);
    }
    await waitForReady();
    expect((await createKey('after-ro')).status).toBe(200);
  });
});

describe('after the faults', () => {
  it('a restart has every acknowledged key and none of the refused ones', async () => {
    await daemon.stop();
    daemon = await startDaemon({ dataDir, testClock: false, env: { KMS_BOOTSTRAP_TOKEN: token, KMS_AUDIT_SEGMENT_SIZE: '64KiB' } });
    const list = await api(daemon, 'GET', '/kms/v1/keys?folderId=faults&pageSize=1000');
    expect(list.status).toBe(200);
    const ids = list.body.keys.map((k: { id: string }) => k.id);
    // Equal sets: every acknowledged key survived, and no refused create appeared later.
    expect(ids.sort()).toEqual([...acknowledged].sort());
  });
});
