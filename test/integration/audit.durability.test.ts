/**
 * Durability of the audit trail against a real process, with the MAC key and anchor in a real
 * SoftHSM2 token: a child appends and flushes in a loop (small segments, so kills land around
 * rotations too) and is killed with SIGKILL at a random moment; every event whose flush resolved
 * must be on disk, the next start must repair a torn tail without any integrity alarm (the anchor
 * is never ahead of what is durable) and continue the chain, and `kmsd audit verify` as its own
 * process must accept the result.
 */
import { describe, it, expect } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog } from '../../daemon/audit/trail.js';
import { verifyTrail } from '../../daemon/audit/verify.js';
import { openPkcs11Keystore } from '../../daemon/keystore/pkcs11.js';
import { readTrailEvents } from '../support/audit.js';
import { testTokenOptions } from '../support/softhsm.js';

const WRITER_MODULE = new URL('../../daemon/audit/trail.js', import.meta.url).href;
const KEYSTORE_MODULE = new URL('../../daemon/keystore/pkcs11.js', import.meta.url).href;
const CLI_MODULE = new URL('../../daemon/audit/cli.js', import.meta.url).href;
const token = testTokenOptions('audit-crash');

/** Appends bursts of 1–100 events, flushes, then reports how many of its events are durable. */
const WRITER_SCRIPT = `
const [moduleUrl, keystoreUrl, dataDir, cycle, tokenJson] = process.argv.slice(1);
const { openAuditLog } = await import(moduleUrl);
const { openPkcs11Keystore } = await import(keystoreUrl);
const keystore = openPkcs11Keystore(JSON.parse(tokenJson));
const log = await openAuditLog(dataDir, {
  keystore, segmentBytes: 16384, anchorIntervalMs: 20,
  logger: { warn: (m) => process.stderr.write('warn: ' + m + '\\n'), error: (m) => process.stderr.write('error: ' + m + '\\n') },
});
let n = 0;
for (;;) {
  const burst = 1 + Math.floor(Math.random() * 100);
  for (let i = 0; i < burst; i++) {
    n++;
    log.append({ time: new Date().toISOString(), requestId: 'c' + cycle + '-' + n, subject: 'serviceAccount:crash',
      operation: 'SymmetricCrypto.Encrypt', folderId: 'folder-1', keyId: 'key-1', result: 'OK', remoteAddress: '127.0.0.1' });
  }
  await log.flush();
  process.stdout.write('acked ' + n + '\\n');
}
`;

interface Cycle {
  acked: number;
  stderr: string;
}

/** Runs the writer until it has acknowledged at least one flush, waits a little, kills it. */
function runAndKill(dataDir: string, cycle: number): Promise<Cycle> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER_SCRIPT, WRITER_MODULE, KEYSTORE_MODULE, dataDir, String(cycle), JSON.stringify(token)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let acked = 0;
    let stdout = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      for (const match of stdout.matchAll(/acked (\d+)\n/g)) acked = Math.max(acked, Number(match[1]));
      stdout = stdout.slice(stdout.lastIndexOf('\n') + 1);
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), 5 + Math.random() * 120);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(giveUp);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (signal !== 'SIGKILL' || acked === 0) reject(new Error(`writer ended with code ${code} signal ${signal} after ${acked} acks:\n${stderr}`));
      else resolve({ acked, stderr });
    });
  });
}

describe('audit trail durability', () => {
  it('keeps every acknowledged event, never raises a false alarm, and keeps a valid chain across SIGKILLs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kms-audit-crash-'));
    const ackedPerCycle: number[] = [];
    let repairs = 0;
    for (let cycle = 0; cycle < 10; cycle++) {
      const { acked, stderr } = await runAndKill(dataDir, cycle);
      ackedPerCycle.push(acked);
      if (stderr.includes('warn: ')) repairs++;
      // A crash never looks like tampering: no integrity alert, no refusal.
      expect(stderr).not.toMatch(/error: |INTEGRITY/);
      const ids = new Set(readTrailEvents(dataDir).map((e) => e.requestId));
      const lost = Array.from({ length: acked }, (_, i) => `c${cycle}-${i + 1}`).filter((id) => !ids.has(id));
      expect(lost).toEqual([]);
    }
    const keystore = openPkcs11Keystore(token);
    try {
      const warnings: string[] = [];
      const log = await openAuditLog(dataDir, { keystore, segmentBytes: 16384, logger: { warn: (m) => void warnings.push(m), error: (m) => void warnings.push(`error: ${m}`) } });
      expect(warnings.filter((w) => w.startsWith('error: '))).toEqual([]);
      log.append({ time: new Date().toISOString(), requestId: 'final', subject: 'serviceAccount:crash', operation: 'SymmetricKey.Get', result: 'OK' });
      await log.close();
      const verified = await verifyTrail(dataDir, keystore.auditKeyring({ allowCreate: false }), keystore.auditAnchorStore({ allowCreate: false }));
      expect(verified.findings).toEqual([]);
      const total = ackedPerCycle.reduce((a, b) => a + b, 0);
      expect(verified.events).toBeGreaterThan(total);
      expect(verified.segments).toBeGreaterThan(1);
      process.stdout.write(`audit crash test: ${ackedPerCycle.length} kills, ${total} acknowledged events, ${repairs} torn tails repaired, ${verified.segments} segments\n`);
    } finally {
      keystore.close();
    }
  });
});

describe('the periodic anchor', () => {
  it('is written by the token\'s writer thread while the trail runs, and reaches the durable head', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kms-anchor-'));
    const keystore = openPkcs11Keystore(testTokenOptions('audit-anchor-thread'));
    try {
      const anchors = keystore.auditAnchorStore({ allowCreate: true });
      // SoftHSM2 can lock for threads: the background path is there.
      expect(typeof anchors.writeInBackground).toBe('function');
      const log = await openAuditLog(dataDir, { keystore, anchorIntervalMs: 20 });
      for (let i = 1; i <= 50; i++) {
        log.append({ time: new Date().toISOString(), requestId: `a-${i}`, subject: 'serviceAccount:a', operation: 'SymmetricCrypto.Encrypt', result: 'OK' });
        if (i % 10 === 0) await log.flush();
      }
      const deadline = Date.now() + 10_000;
      // Read back from the token itself (a search, not the writer's memory), without closing the trail.
      while (Date.now() < deadline && (keystore.auditAnchorStore({ allowCreate: false }).read()?.seq ?? 0) < 50) await new Promise((r) => setTimeout(r, 20));
      const anchor = keystore.auditAnchorStore({ allowCreate: false }).read();
      expect(anchor?.seq).toBe(50);
      expect(anchor?.mac).toBe(readTrailEvents(dataDir).at(-1)?.mac);
      await log.close();
    } finally {
      keystore.close();
    }
  });
});

describe('kmsd audit verify as a process', () => {
  function runVerify(dataDir: string) {
    const script = `const { runAuditCommand } = await import(process.argv[1]); process.exitCode = await runAuditCommand(process.argv.slice(2));`;
    return spawnSync(process.execPath, ['--input-type=module', '-e', script, CLI_MODULE, 'verify', '--data-dir', dataDir, '--keystore', 'software'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
  }

  it('exits 0 on an intact trail and 1 naming the segment and line on a tampered one', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kms-audit-cli-'));
    const { openSoftwareKeystore } = await import('../../daemon/keystore/software.js');
    const log = await openAuditLog(dataDir, { keystore: openSoftwareKeystore({ dataDir }) });
    for (let n = 1; n <= 3; n++) {
      log.append({ time: new Date().toISOString(), requestId: `r${n}`, subject: 'userAccount:alice', operation: 'SymmetricCrypto.Decrypt', keyId: 'k', result: 'OK' });
    }
    await log.close();
    const good = runVerify(dataDir);
    expect(good.stdout).toBe('audit trail OK: 3 events in 1 segments, head seq 3\n');
    expect(good.status).toBe(0);

    const path = join(dataDir, 'audit', 'seg-00000000000000000001.jsonl');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"requestId":"r2","result":"OK"', '"requestId":"r2","result":"PERMISSION_DENIED"'));
    const bad = runVerify(dataDir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/audit trail TAMPERED: seg-00000000000000000001\.jsonl line 2: mac does not match the line content under the audit key \(the line was edited, or written under another key\)\n$/);
  });
});
