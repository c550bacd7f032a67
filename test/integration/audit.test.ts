/**
 * The audit trail end to end, on the real kmsd binary: the query API an auditor uses, what is
 * (never) written, rotation and restart across segments, and `kmsd audit verify` catching an edited,
 * removed or swapped line and a cut tail; a missing MAC key refuses start-up.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUDIT_FIELD_LIMITS } from '../../daemon/audit/chain.js';
import { readTrailEvents, segmentPaths, trailLines } from '../support/audit.js';
import { KMSD_MAIN, api, startDaemon, type DaemonProcess } from '../support/daemon.js';
import { databaseForDataDir, testStoreIsPostgres } from '../support/postgres.js';
import { SOFTHSM_MODULE } from '../support/softhsm.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

/** Small segments, so that a test's few dozen calls span several. */
const SMALL_SEGMENTS = ['--audit-segment-size', '4096'];

let daemon: DaemonProcess;
const FOLDER = 'audited';
let keyId = '';
let auditorToken = '';
let auditorSubject = '';
const secrets: string[] = [];

const admin = (method: string, path: string, body?: unknown) => api(daemon, method, path, body);

/** Under KMS_TEST_STORE=postgres: KMS_STORE for the daemon's database (verify and the start-ups below read it). */
let storeEnv: Record<string, string> = {};
function verify(dataDir: string) {
  return spawnSync(process.execPath, [KMSD_MAIN, 'audit', 'verify', '--data-dir', dataDir], { encoding: 'utf8', env: { ...process.env, ...storeEnv } });
}
function startSync(dataDir: string) {
  return spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', dataDir], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...storeEnv } });
}

beforeAll(async () => {
  daemon = await startDaemon({ args: SMALL_SEGMENTS });
  if (testStoreIsPostgres()) storeEnv = { KMS_STORE: await databaseForDataDir(daemon.dataDir) };
  const created = await admin('POST', '/kms/v1/keys', { folderId: FOLDER, name: 'audited-key' });
  keyId = created.body.response.id;
  await admin('POST', '/kms/v1/keys', { folderId: 'elsewhere' });
  const sa = await admin('POST', ADMIN_PATHS.serviceAccounts, { name: 'auditor' });
  auditorSubject = `serviceAccount:${sa.body.id}`;
  const token = await admin('POST', ADMIN_PATHS.tokens, { subject: auditorSubject });
  auditorToken = token.body.token;
  secrets.push(auditorToken, daemon.token);
  await admin('POST', `/resource-manager/v1/folders/${FOLDER}:setAccessBindings`, {
    accessBindings: [
      { roleId: 'kms.auditor', subject: { type: 'serviceAccount', id: sa.body.id } },
      { roleId: 'kms.keys.encrypterDecrypter', subject: { type: 'userAccount', id: 'admin' } },
    ],
  });
  const plaintext = 'the plaintext that must never be audited';
  const enc = await admin('POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from(plaintext).toString('base64'), aadContext: Buffer.from('aad-secret').toString('base64') });
  secrets.push(plaintext, enc.body.ciphertext, Buffer.from(plaintext).toString('base64'), Buffer.from('aad-secret').toString('base64'));
  const dk = await admin('POST', `/kms/v1/keys/${keyId}:generateDataKey`, {});
  secrets.push(dk.body.dataKeyPlaintext, dk.body.dataKeyCiphertext);
  await admin('POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext: enc.body.ciphertext, aadContext: Buffer.from('wrong').toString('base64') });
  await api({ url: daemon.url, token: auditorToken }, 'POST', `/kms/v1/keys/${keyId}:rotate`);
  await api({ url: daemon.url, token: 'kms_not_a_token' }, 'GET', `/kms/v1/keys/${keyId}`);
}, 60_000);

afterAll(async () => {
  await daemon.stop();
});

describe('query API', () => {
  it('an auditor reads the events of its folder, filtered by key, subject, operation and time', async () => {
    const auditor = { url: daemon.url, token: auditorToken };
    const all = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}`);
    expect(all.status).toBe(200);
    expect(all.body.events.every((e: { folderId: string }) => e.folderId === FOLDER)).toBe(true);
    const ops = all.body.events.map((e: { operation: string }) => e.operation);
    expect(ops).toEqual(expect.arrayContaining(['SymmetricKey.Create', 'SymmetricCrypto.Encrypt', 'SymmetricCrypto.GenerateDataKey', 'SymmetricCrypto.Decrypt']));

    const decrypts = await api(auditor, 'GET', `/kms/v1/auditEvents?keyId=${keyId}&operation=SymmetricCrypto.Decrypt`);
    expect(decrypts.body.events).toHaveLength(1);
    expect(decrypts.body.events[0]).toMatchObject({ subject: 'userAccount:admin', keyId, folderId: FOLDER, result: 'INVALID_ARGUMENT', versionId: expect.any(String) });

    const denied = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&subject=${encodeURIComponent(auditorSubject)}`);
    expect(denied.body.events.map((e: { operation: string; result: string }) => [e.operation, e.result])).toContainEqual(['SymmetricKey.Rotate', 'PERMISSION_DENIED']);

    const encrypt = all.body.events.find((e: { operation: string }) => e.operation === 'SymmetricCrypto.Encrypt');
    const window = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&from=${encodeURIComponent(encrypt.time)}&to=${encodeURIComponent(encrypt.time)}`);
    expect(window.body.events.map((e: { requestId: string }) => e.requestId)).toContain(encrypt.requestId);
    expect(window.body.events.every((e: { time: string }) => e.time === encrypt.time)).toBe(true);

    const page = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&pageSize=2`);
    expect(page.body.events).toHaveLength(2);
    const next = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&pageSize=2&pageToken=${page.body.nextPageToken}`);
    expect(next.body.events[0].seq).toBeGreaterThan(page.body.events[1].seq);
  });

  it('an auditor cannot read another folder or everything; bad filters are 400', async () => {
    const auditor = { url: daemon.url, token: auditorToken };
    expect((await api(auditor, 'GET', '/kms/v1/auditEvents?folderId=elsewhere')).status).toBe(403);
    expect((await api(auditor, 'GET', '/kms/v1/auditEvents')).status).toBe(403);
    const bad = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&from=yesterday`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('from: must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z, got "yesterday"');
    const big = await api(auditor, 'GET', `/kms/v1/auditEvents?folderId=${FOLDER}&pageSize=1001`);
    expect(big.status).toBe(400);
    expect(big.body.message).toBe('pageSize: must be an integer from 0 to 1000');
    expect((await admin('GET', '/kms/v1/auditEvents')).status).toBe(200);
  });

  it('an unauthenticated call is recorded as anonymous', async () => {
    const events = await admin('GET', `/kms/v1/auditEvents?keyId=${keyId}&operation=SymmetricKey.Get`);
    expect(events.body.events.at(-1)).toMatchObject({ subject: 'anonymous', result: 'UNAUTHENTICATED' });
  });
});

describe('the segments', () => {
  it('never hold plaintext, data keys, ciphertexts, AAD or tokens', () => {
    const text = trailLines(daemon.dataDir).join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('record an anonymous call with an 8 KB path with a bounded operation', async () => {
    const huge = `/kms/v1/${'x'.repeat(8192)}`;
    const response = await api({ url: daemon.url, token: '' }, 'GET', huge);
    expect(response.status).toBe(404);
    const events = await admin('GET', '/kms/v1/auditEvents?subject=anonymous&pageSize=1000');
    const event = events.body.events.find((e: { requestId: string }) => e.requestId === response.requestId);
    expect(event.operation).toHaveLength(AUDIT_FIELD_LIMITS.operation);
    expect(event.operation.startsWith('GET /kms/v1/xxx')).toBe(true);
    // Refused before routing (a body that is not JSON): the app's error handler cuts it too.
    const malformed = await api({ url: daemon.url, token: '' }, 'POST', huge, '{not json', { 'content-type': 'application/json' });
    expect(malformed.status).toBe(400);
    await admin('GET', `/kms/v1/keys/${keyId}`); // its event was appended without waiting; this call flushes it
    const refused = (await admin('GET', '/kms/v1/auditEvents?subject=anonymous&pageSize=1000')).body.events.find((e: { requestId: string }) => e.requestId === malformed.requestId);
    expect(refused).toMatchObject({ result: 'INVALID_ARGUMENT', operation: expect.stringMatching(/^POST \/kms\/v1\/xxx/) });
    expect(refused.operation).toHaveLength(AUDIT_FIELD_LIMITS.operation);
  });

  it('rotate by size, and a restart continues the chain across segments', async () => {
    for (let i = 0; i < 40; i++) await admin('GET', `/kms/v1/keys/${keyId}`);
    await daemon.stop();
    const before = readTrailEvents(daemon.dataDir);
    expect(segmentPaths(daemon.dataDir).length).toBeGreaterThan(3);
    daemon = await startDaemon({ dataDir: daemon.dataDir, args: SMALL_SEGMENTS, env: { KMS_BOOTSTRAP_TOKEN: daemon.token } });
    for (let i = 0; i < 20; i++) await admin('GET', `/kms/v1/keys/${keyId}`);
    const paged: number[] = [];
    let token: string | undefined;
    do {
      const page = await admin('GET', `/kms/v1/auditEvents?keyId=${keyId}&pageSize=7${token === undefined ? '' : `&pageToken=${token}`}`);
      paged.push(...page.body.events.map((e: { seq: number }) => e.seq));
      token = page.body.nextPageToken;
    } while (token !== undefined);
    await daemon.stop();
    const after = readTrailEvents(daemon.dataDir);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => i + 1));
    after.slice(1).forEach((e, i) => expect(e.prev).toBe(after[i]!.mac));
    expect(paged).toEqual(after.filter((e) => e.keyId === keyId).map((e) => e.seq).filter((seq) => seq <= paged.at(-1)!));
  });
});

describe('kmsd audit verify', () => {
  it('passes, then names the segment and line of an edit, a removal and a swap; the daemon refuses the broken chain', () => {
    const ok = verify(daemon.dataDir);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/^audit trail OK: \d+ events in \d+ segments, head seq \d+( \(node [a-z0-9-]+\))?\n$/);
    expect(ok.status).toBe(0);
    const path = segmentPaths(daemon.dataDir).at(-2)!; // a sealed segment
    const name = path.split('/').pop()!;
    const original = readFileSync(path, 'utf8');
    const lines = original.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(6);
    expect(lines[2]).toContain('"result":"OK"');
    const tampered: [string, string[], RegExp][] = [
      ['edited', lines.map((l, i) => (i === 2 ? l.replace('"result":"OK"', '"result":"DENIED"') : l)), new RegExp(`audit trail TAMPERED: ${name} line 3: mac does not match`)],
      ['removed', lines.filter((_, i) => i !== 3), new RegExp(`audit trail TAMPERED: ${name} line 4: seq is`)],
      ['swapped', lines.map((l, i) => (i === 4 ? lines[5]! : i === 5 ? lines[4]! : l)), new RegExp(`audit trail TAMPERED: ${name} line 5: seq is`)],
    ];
    chmodSync(path, 0o600);
    for (const [_name, content, where] of tampered) {
      writeFileSync(path, `${content.join('\n')}\n`);
      const result = verify(daemon.dataDir);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(where);
    }
    writeFileSync(path, original);
    expect(verify(daemon.dataDir).status).toBe(0);
    // Start-up checks the active segment's tail (sealed ones are verify's job): an edit there is refused.
    const active = segmentPaths(daemon.dataDir).at(-1)!;
    const activeText = readFileSync(active, 'utf8');
    const activeLines = activeText.trimEnd().split('\n');
    writeFileSync(active, `${[...activeLines.slice(0, -1), activeLines.at(-1)!.replace('"result":"OK"', '"result":"DENIED"')].join('\n')}\n`);
    const start = startSync(daemon.dataDir);
    expect(start.status).toBe(1);
    expect(start.stderr).toMatch(new RegExp(`audit trail segment .*${active.split('/').pop()!} is corrupt at line ${activeLines.length}: mac does not match .*refusing to start`));
    writeFileSync(active, activeText);
  });

  it('a cut tail is reported by verify and refused at start-up; --audit-accept-loss records it and continues', async () => {
    const path = segmentPaths(daemon.dataDir).at(-1)!;
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    writeFileSync(path, `${lines.slice(0, -3).join('\n')}\n`);
    const result = verify(daemon.dataDir);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/audit trail TAMPERED: seg-\d+\.jsonl line \d+: cut tail: the trail ends at seq \d+ .* but the head anchor \((pkcs11:.*\/kms-audit-anchor|postgresql:kms_audit_anchors\/node-[0-9a-f]+), written .*\) records seq \d+/);
    const start = startSync(daemon.dataDir);
    expect(start.status).toBe(1);
    expect(start.stdout).toMatch(/INTEGRITY ALERT: the trail ends at seq/);
    expect(start.stderr).toMatch(/refusing to start.*--audit-accept-loss/);
    daemon = await startDaemon({ dataDir: daemon.dataDir, args: [...SMALL_SEGMENTS, '--audit-accept-loss'], env: { KMS_BOOTSTRAP_TOKEN: daemon.token } });
    const alerts = await admin('GET', '/kms/v1/auditEvents?operation=Audit.IntegrityAlert');
    expect(alerts.body.events).toEqual([expect.objectContaining({ subject: 'system:audit', result: 'DATA_LOSS', details: expect.objectContaining({ foundSeq: expect.any(Number), anchorSeq: expect.any(Number) }) })]);
    await daemon.stop();
    const after = verify(daemon.dataDir);
    expect(after.stdout).toMatch(/note: integrity alert recorded at seg-\d+\.jsonl line \d+/);
    expect(after.status).toBe(0);
  });

  it('a non-empty trail whose MAC key is gone from the token refuses to start', () => {
    const pins = JSON.parse(readFileSync(join(daemon.dataDir, 'hsm-pins.json'), 'utf8')) as { tokenLabel: string; userPin: string };
    execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', pins.tokenLabel, '--login', '--pin', pins.userPin, '--delete-object', '--type', 'secrkey', '--label', 'kms-audit-mac-key'], { stdio: 'pipe' });
    const start = startSync(daemon.dataDir);
    expect(start.status).toBe(1);
    expect(start.stderr).toContain(`the audit trail's MAC key 'kms-audit-mac-key' is missing from PKCS#11 token '${pins.tokenLabel}'`);
    expect(start.stderr).toContain(`the audit trail in ${join(daemon.dataDir, 'audit')} is not empty`);
    expect(start.stderr).toContain('restore the token (or key file) from backup');
    const result = verify(daemon.dataDir);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/kms-audit-mac-key' is missing/);
  });
});
