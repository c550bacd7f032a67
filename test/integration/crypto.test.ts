/**
 * The data plane against the real daemon on a real SoftHSM2 token: encrypt, decrypt, reEncrypt,
 * generateDataKey, for every algorithm, and every way a ciphertext can be wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { api, startDaemon, type DaemonProcess } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { databaseForDataDir, sql, testStoreIsPostgres } from '../support/postgres.js';

let kmsd: TestKmsd;
const FOLDER = 'folder-crypto';
const ALGORITHMS = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'] as const;
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const call = (method: string, path: string, body?: unknown) => api(kmsd, method, path, body);

async function createKey(body: Record<string, unknown> = {}, base: { url: string; token: string } = kmsd): Promise<any> {
  const res = await api(base, 'POST', '/kms/v1/keys', { folderId: FOLDER, ...body });
  expect(res.status).toBe(200);
  return res.body.response;
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
});
afterAll(async () => {
  await kmsd.stop();
});

describe('round trips', () => {
  it.each(ALGORITHMS)('%s, with and without AAD, any plaintext size up to 32768 bytes', async (algorithm) => {
    const key = await createKey({ defaultAlgorithm: algorithm });
    for (const [plaintext, aad] of [
      [Buffer.from('hello'), undefined],
      [Buffer.alloc(0), b64('ctx')],
      [Buffer.alloc(32768, 7), b64(Buffer.alloc(8192, 1))],
    ] as const) {
      const enc = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: plaintext.toString('base64'), ...(aad ? { aadContext: aad } : {}) });
      expect(enc.status).toBe(200);
      expect(enc.body).toEqual({ keyId: key.id, versionId: key.primaryVersion.id, ciphertext: expect.any(String) });
      const dec = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: enc.body.ciphertext, ...(aad ? { aadContext: aad } : {}) });
      expect(dec.status).toBe(200);
      expect(dec.body).toEqual({ keyId: key.id, versionId: key.primaryVersion.id, plaintext: plaintext.toString('base64') });
    }
  });

  it('encrypting twice gives different ciphertexts (random nonces)', async () => {
    const key = await createKey();
    const a = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('same') });
    const b = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('same') });
    expect(a.body.ciphertext).not.toBe(b.body.ciphertext);
  });

  it('old ciphertexts decrypt after rotation; a chosen version encrypts; destroyed versions never decrypt again', async () => {
    const key = await createKey({ defaultAlgorithm: 'AES_256' });
    const v1 = key.primaryVersion.id as string;
    const old = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('before rotation') });
    const rotated = await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    const v2 = rotated.body.response.primaryVersion.id as string;
    const fresh = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('after') });
    expect(fresh.body.versionId).toBe(v2);
    const chosen = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('v1 again'), versionId: v1 });
    expect(chosen.body.versionId).toBe(v1);
    const dec = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: old.body.ciphertext });
    expect(dec.body).toEqual({ keyId: key.id, versionId: v1, plaintext: b64('before rotation') });

    await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: v1, pendingPeriod: '86400s' });
    // Scheduled: still decrypts, no longer encrypts.
    expect((await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: old.body.ciphertext })).status).toBe(200);
    const encScheduled = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('x'), versionId: v1 });
    expect(encScheduled.status).toBe(400);
    expect(encScheduled.body.message).toMatch(/SCHEDULED_FOR_DESTRUCTION; only ACTIVE versions encrypt/);

    await call('POST', '/test/v1/clock:advance', { seconds: 86401 });
    const destroyed = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: old.body.ciphertext });
    expect(destroyed.status).toBe(400);
    expect(destroyed.body).toMatchObject({ code: 9, message: expect.stringMatching(/is DESTROYED; its ciphertexts can never be decrypted again/) });
    // The newer version is unaffected.
    expect((await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: fresh.body.ciphertext })).status).toBe(200);
  });

  it('an AES_256_HSM version is destroyed in the token at destroyAt', async () => {
    const key = await createKey({ defaultAlgorithm: 'AES_256_HSM' });
    const enc = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('hsm') });
    await call('POST', `/kms/v1/keys/${key.id}:rotate`);
    await call('POST', `/kms/v1/keys/${key.id}:scheduleVersionDestruction`, { versionId: key.primaryVersion.id, pendingPeriod: '3600s' });
    const report = await call('POST', '/test/v1/clock:advance', { seconds: 3601 });
    expect(report.body.destroyedVersions).toContain(key.primaryVersion.id);
    const dec = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: enc.body.ciphertext });
    expect(dec.status).toBe(400);
    expect(dec.body.code).toBe(9);
  });
});

describe('rejections are 400-class, never 500', () => {
  let key: any;
  let other: any;
  let ciphertext: Buffer;
  beforeAll(async () => {
    key = await createKey();
    other = await createKey();
    const enc = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('secret'), aadContext: b64('ctx') });
    ciphertext = Buffer.from(enc.body.ciphertext as string, 'base64');
  });

  const flip = (bytes: Buffer, index: number) => {
    const copy = Buffer.from(bytes);
    copy[index < 0 ? copy.length + index : index]! ^= 0x01;
    return copy;
  };

  it.each([
    ['wrong AAD', () => ({ ciphertext: ciphertext.toString('base64'), aadContext: b64('other') }), 3, /authentication failed/],
    ['missing AAD', () => ({ ciphertext: ciphertext.toString('base64') }), 3, /authentication failed/],
    ['tampered tag', () => ({ ciphertext: flip(ciphertext, -1).toString('base64'), aadContext: b64('ctx') }), 3, /authentication failed/],
    ['tampered body', () => ({ ciphertext: flip(ciphertext, -20).toString('base64'), aadContext: b64('ctx') }), 3, /authentication failed/],
    ['tampered nonce', () => ({ ciphertext: flip(ciphertext, 2 + 20).toString('base64'), aadContext: b64('ctx') }), 3, /authentication failed/],
    ['tampered version id', () => ({ ciphertext: flip(ciphertext, 5).toString('base64'), aadContext: b64('ctx') }), 3, /ciphertext/],
    ['unknown format byte', () => ({ ciphertext: flip(ciphertext, 0).toString('base64'), aadContext: b64('ctx') }), 3, /malformed or truncated/],
    ['truncated', () => ({ ciphertext: ciphertext.subarray(0, 30).toString('base64'), aadContext: b64('ctx') }), 3, /malformed or truncated/],
    ['garbage', () => ({ ciphertext: b64('this is not a ciphertext at all, no'), aadContext: b64('ctx') }), 3, /malformed or truncated|not produced/],
    ['not base64', () => ({ ciphertext: '***', aadContext: b64('ctx') }), 3, /ciphertext: must match/],
    ['empty', () => ({ ciphertext: '' }), 3, /ciphertext: must be at least 1/],
  ])('%s', async (_name, body, code, message) => {
    const res = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, body());
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(code);
    expect(res.body.message).toMatch(message);
  });

  it('a ciphertext of another key is refused', async () => {
    const res = await call('POST', `/kms/v1/keys/${other.id}:decrypt`, { ciphertext: ciphertext.toString('base64'), aadContext: b64('ctx') });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(`ciphertext: was not produced by key ${other.id}`);
  });

  it('limits: plaintext > 32768 bytes and AAD > 8192 bytes name the field', async () => {
    const big = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: Buffer.alloc(32769).toString('base64') });
    expect(big.status).toBe(400);
    expect(big.body.message).toMatch(/^plaintext: /);
    const aad = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: b64('x'), aadContext: Buffer.alloc(8193).toString('base64') });
    expect(aad.status).toBe(400);
    expect(aad.body.message).toMatch(/^aadContext: /);
    const missing = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, {});
    expect(missing.body.message).toBe('plaintext: is required');
    const badB64 = await call('POST', `/kms/v1/keys/${key.id}:encrypt`, { plaintext: 'abc=d' });
    expect(badB64.status).toBe(400);
  });

  it('an INACTIVE key refuses every crypto call but keeps its metadata', async () => {
    const k = await createKey();
    const enc = await call('POST', `/kms/v1/keys/${k.id}:encrypt`, { plaintext: b64('x') });
    await call('PATCH', `/kms/v1/keys/${k.id}`, { updateMask: 'status', status: 'INACTIVE' });
    for (const [method, body] of [
      ['encrypt', { plaintext: b64('x') }],
      ['decrypt', { ciphertext: enc.body.ciphertext }],
      ['generateDataKey', {}],
    ] as const) {
      const res = await call('POST', `/kms/v1/keys/${k.id}:${method}`, body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 9, message: `key ${k.id} is INACTIVE; cryptographic operations need an ACTIVE key` });
    }
    expect((await call('GET', `/kms/v1/keys/${k.id}`)).status).toBe(200);
    await call('PATCH', `/kms/v1/keys/${k.id}`, { updateMask: 'status', status: 'ACTIVE' });
    expect((await call('POST', `/kms/v1/keys/${k.id}:decrypt`, { ciphertext: enc.body.ciphertext })).status).toBe(200);
  });

  it('an unknown or deleted key is 404', async () => {
    expect((await call('POST', '/kms/v1/keys/abjnosuchkey:encrypt', { plaintext: b64('x') })).status).toBe(404);
    const k = await createKey();
    await call('DELETE', `/kms/v1/keys/${k.id}`);
    expect((await call('POST', `/kms/v1/keys/${k.id}:encrypt`, { plaintext: b64('x') })).status).toBe(404);
  });
});

describe('reEncrypt and generateDataKey', () => {
  it('re-encrypts across keys and contexts', async () => {
    const source = await createKey();
    const target = await createKey({ defaultAlgorithm: 'AES_256_HSM' });
    const enc = await call('POST', `/kms/v1/keys/${source.id}:encrypt`, { plaintext: b64('move me'), aadContext: b64('a') });
    const re = await call('POST', `/kms/v1/keys/${target.id}:reEncrypt`, {
      sourceKeyId: source.id,
      sourceAadContext: b64('a'),
      aadContext: b64('b'),
      ciphertext: enc.body.ciphertext,
    });
    expect(re.status).toBe(200);
    expect(re.body).toEqual({
      keyId: target.id,
      versionId: target.primaryVersion.id,
      sourceKeyId: source.id,
      sourceVersionId: source.primaryVersion.id,
      ciphertext: expect.any(String),
    });
    const dec = await call('POST', `/kms/v1/keys/${target.id}:decrypt`, { ciphertext: re.body.ciphertext, aadContext: b64('b') });
    expect(Buffer.from(dec.body.plaintext as string, 'base64').toString()).toBe('move me');
    const wrongSourceAad = await call('POST', `/kms/v1/keys/${target.id}:reEncrypt`, { sourceKeyId: source.id, ciphertext: enc.body.ciphertext });
    expect(wrongSourceAad.status).toBe(400);
  });

  it.each([
    ['AES_128', 16],
    ['AES_192', 24],
    ['AES_256', 32],
    ['AES_256_HSM', 32],
  ])('data key spec %s gives %i bytes, and its ciphertext decrypts to it', async (dataKeySpec, size) => {
    const key = await createKey();
    const res = await call('POST', `/kms/v1/keys/${key.id}:generateDataKey`, { dataKeySpec, aadContext: b64('dk') });
    expect(res.status).toBe(200);
    const plaintext = Buffer.from(res.body.dataKeyPlaintext as string, 'base64');
    expect(plaintext).toHaveLength(size);
    const dec = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: res.body.dataKeyCiphertext, aadContext: b64('dk') });
    expect(dec.body.plaintext).toBe(res.body.dataKeyPlaintext);
  });

  it('skipPlaintext omits the plaintext; the default spec is AES_256', async () => {
    const key = await createKey();
    const skip = await call('POST', `/kms/v1/keys/${key.id}:generateDataKey`, { skipPlaintext: true });
    expect(skip.body).toEqual({ keyId: key.id, versionId: key.primaryVersion.id, dataKeyCiphertext: expect.any(String) });
    const dec = await call('POST', `/kms/v1/keys/${key.id}:decrypt`, { ciphertext: skip.body.dataKeyCiphertext });
    expect(Buffer.from(dec.body.plaintext as string, 'base64')).toHaveLength(32);
    const bad = await call('POST', `/kms/v1/keys/${key.id}:generateDataKey`, { dataKeySpec: 'RSA_2048' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^dataKeySpec: must be one of/);
  });
});

describe('the real kmsd binary', () => {
  let daemon: DaemonProcess;
  afterAll(async () => {
    await daemon?.stop();
  });

  it('keeps keys across a restart and never writes a data key anywhere on disk or in its logs', async () => {
    daemon = await startDaemon();
    const keys = await Promise.all(ALGORITHMS.map((algorithm) => createKey({ defaultAlgorithm: algorithm }, daemon)));
    const secrets: Buffer[] = [];
    const ciphertexts: { keyId: string; ciphertext: string }[] = [];
    for (const key of keys) {
      const dk = await api(daemon, 'POST', `/kms/v1/keys/${key.id}:generateDataKey`, { dataKeySpec: 'AES_256' });
      expect(dk.status).toBe(200);
      secrets.push(Buffer.from(dk.body.dataKeyPlaintext as string, 'base64'));
      ciphertexts.push({ keyId: key.id as string, ciphertext: dk.body.dataKeyCiphertext as string });
    }
    await daemon.stop();
    daemon = await startDaemon({ dataDir: daemon.dataDir, env: { KMS_BOOTSTRAP_TOKEN: daemon.token } });
    for (const [i, { keyId, ciphertext }] of ciphertexts.entries()) {
      const dec = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext });
      expect(dec.status).toBe(200);
      expect(Buffer.from(dec.body.plaintext as string, 'base64').equals(secrets[i]!)).toBe(true);
    }
    await daemon.stop();

    // Scan every file of the data dir (store, token files, PIN file) and every log line, in raw
    // bytes and in base64 and hex, for the data keys.
    const files = listFiles(daemon.dataDir);
    const haystacks = [...files.map((f) => readFileSync(f)), Buffer.from(daemon.output.join('\n'))];
    if (testStoreIsPostgres()) {
      // The store is the database: every record it holds, as stored.
      const rows = await sql(await databaseForDataDir(daemon.dataDir), 'SELECT data::text AS data FROM kms_records WHERE data IS NOT NULL');
      expect(rows.length).toBeGreaterThan(ALGORITHMS.length);
      haystacks.push(Buffer.from(rows.map((r) => r.data as string).join('\n')));
    } else {
      expect(files.some((f) => f.endsWith('kms.json'))).toBe(true);
    }
    for (const secret of secrets) {
      for (const needle of [secret, Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('hex'))]) {
        for (const haystack of haystacks) expect(haystack.includes(needle)).toBe(false);
      }
    }
  }, 60_000);
});

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}
