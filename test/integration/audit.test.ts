/**
 * The audit trail end to end, on the real kmsd binary: the query API an auditor uses, what is
 * (never) written, and `kmsd audit verify` catching an edited, removed or swapped line.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KMSD_MAIN, api, startDaemon, type DaemonProcess } from '../support/daemon.js';

let daemon: DaemonProcess;
const FOLDER = 'audited';
let keyId = '';
let auditorToken = '';
let auditorSubject = '';
const secrets: string[] = [];

const admin = (method: string, path: string, body?: unknown) => api(daemon, method, path, body);

function verify(dataDir: string) {
  return spawnSync(process.execPath, [KMSD_MAIN, 'audit', 'verify', '--data-dir', dataDir], { encoding: 'utf8' });
}

beforeAll(async () => {
  daemon = await startDaemon();
  const created = await admin('POST', '/kms/v1/keys', { folderId: FOLDER, name: 'audited-key' });
  keyId = created.body.response.id;
  await admin('POST', '/kms/v1/keys', { folderId: 'elsewhere' });
  const sa = await admin('POST', '/iam/v1/serviceAccounts', { name: 'auditor' });
  auditorSubject = `serviceAccount:${sa.body.id}`;
  const token = await admin('POST', '/iam/v1/tokens', { subject: auditorSubject });
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

describe('the file', () => {
  it('never holds plaintext, data keys, ciphertexts, AAD or tokens', () => {
    const text = readFileSync(join(daemon.dataDir, 'audit.log'), 'utf8');
    expect(text.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('kmsd audit verify passes, then names the line of an edit, a removal and a swap', async () => {
    await daemon.stop();
    const path = join(daemon.dataDir, 'audit.log');
    const original = readFileSync(path, 'utf8');
    const ok = verify(daemon.dataDir);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/audit log OK: \d+ events/);

    const lines = original.trimEnd().split('\n');
    const tampered: [string, string[], RegExp][] = [
      ['edited', lines.map((l, i) => (i === 2 ? l.replace('"result":"OK"', '"result":"DENIED"') : l)), /line 3/],
      ['removed', lines.filter((_, i) => i !== 3), /line 4/],
      ['swapped', lines.map((l, i) => (i === 4 ? lines[5]! : i === 5 ? lines[4]! : l)), /line 5/],
    ];
    expect(lines[2]).toContain('"result":"OK"');
    for (const [_name, content, where] of tampered) {
      writeFileSync(path, `${content.join('\n')}\n`);
      const result = verify(daemon.dataDir);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/audit log TAMPERED at /);
      expect(result.stderr).toMatch(where);
    }
    writeFileSync(path, original);
    expect(verify(daemon.dataDir).status).toBe(0);
    // The daemon also refuses to continue a broken chain.
    writeFileSync(path, `${tampered[0]![1].join('\n')}\n`);
    const start = spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', daemon.dataDir], { encoding: 'utf8', timeout: 20_000 });
    expect(start.status).toBe(1);
    expect(start.stderr).toMatch(/audit/i);
    writeFileSync(path, original);
  });
});
