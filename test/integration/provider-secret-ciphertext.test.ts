/**
 * kms_secret_ciphertext and the kms_symmetric_key data source against the real daemon, through
 * the provider's RPC handlers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isUnknown, type TfObject } from '../../provider/codec/values.js';
import { api, startDaemon, type DaemonProcess } from '../support/daemon.js';
import { expectConsistent, objectOf, pathOf, ProviderDriver } from '../support/provider-rpc.js';

const CIPHERTEXT = 'kms_secret_ciphertext';
const KEY = 'kms_symmetric_key';
const FOLDER = 'folder-ciphertext-it';

let daemon: DaemonProcess;
let p: ProviderDriver;

async function newKey(body: Record<string, unknown>): Promise<string> {
  const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: FOLDER, ...body });
  expect(res.status).toBe(200);
  return res.body.response.id as string;
}

/** Decrypt through REST with the admin token; the UTF-8 plaintext. */
async function decrypt(keyId: string, ciphertext: string, aad?: string): Promise<string> {
  const res = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, {
    ciphertext,
    ...(aad !== undefined && { aadContext: Buffer.from(aad, 'utf8').toString('base64') }),
  });
  expect([res.status, res.body.message]).toEqual([200, undefined]);
  return Buffer.from(res.body.plaintext as string, 'base64').toString('utf8');
}

function secret(values: Partial<TfObject>): TfObject {
  return objectOf(CIPHERTEXT, values);
}

function dataConfig(values: Partial<TfObject>): TfObject {
  return objectOf(KEY, values, true);
}

beforeAll(async () => {
  daemon = await startDaemon();
  const c = await ProviderDriver.configure(daemon.url, daemon.token, FOLDER);
  expect(c.diags).toEqual([]);
  p = c.driver;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
});

describe('kms_secret_ciphertext against the daemon', () => {
  it('creates a ciphertext that decrypts through REST, with and without AAD', async () => {
    const keyId = await newKey({ name: 'ct' });
    const withAad = await p.planApply(CIPHERTEXT, null, secret({ key_id: keyId, plaintext: 'pässwörd 🔑', aad_context: 'app=billing' }));
    expect(withAad.diags).toEqual([]);
    expect(isUnknown(withAad.planned?.['ciphertext'])).toBe(true);
    expectConsistent(withAad.planned, withAad.state);
    const ciphertext = withAad.state?.['ciphertext'] as string;
    expect(await decrypt(keyId, ciphertext, 'app=billing')).toBe('pässwörd 🔑');
    expect(withAad.state?.['id']).toMatch(new RegExp(`^${keyId}/[a-z0-9]+/[0-9a-f]{16}$`));
    // Wrong AAD: the daemon refuses, so the AAD really was bound.
    const wrong = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext, aadContext: Buffer.from('x').toString('base64') });
    expect(wrong.status).toBe(400);

    const plain = await p.planApply(CIPHERTEXT, null, secret({ key_id: keyId, plaintext: 'hello' }));
    expect(plain.diags).toEqual([]);
    expect(await decrypt(keyId, plain.state?.['ciphertext'] as string)).toBe('hello');

    expect(await p.read(CIPHERTEXT, withAad.state!)).toEqual({ state: withAad.state, diags: [] });
    const same = await p.plan(CIPHERTEXT, withAad.state, secret({ key_id: keyId, plaintext: 'pässwörd 🔑', aad_context: 'app=billing' }));
    expect(same).toEqual({ planned: withAad.state, replace: [], diags: [] });
  });

  it('replaces the ciphertext when any input changes', async () => {
    const keyId = await newKey({ name: 'ct-replace' });
    const created = await p.planApply(CIPHERTEXT, null, secret({ key_id: keyId, plaintext: 'one' }));
    for (const [cfg, attr] of [
      [secret({ key_id: keyId, plaintext: 'two' }), 'plaintext'],
      [secret({ key_id: keyId, plaintext: 'one', aad_context: 'ctx' }), 'aad_context'],
    ] as const) {
      const plan = await p.plan(CIPHERTEXT, created.state, cfg);
      expect(plan.replace).toEqual([{ steps: [{ attribute_name: attr }] }]);
      expect(isUnknown(plan.planned?.['ciphertext'])).toBe(true);
    }
    const replaced = await p.planApply(CIPHERTEXT, created.state, secret({ key_id: keyId, plaintext: 'two' }));
    expect(replaced.diags).toEqual([]);
    expect(replaced.state?.['ciphertext']).not.toBe(created.state?.['ciphertext']);
    expect(await decrypt(keyId, replaced.state?.['ciphertext'] as string)).toBe('two');
  });

  it('drops out of state when the key is deleted; delete needs nothing remote', async () => {
    const keyId = await newKey({ name: 'ct-gone' });
    const created = await p.planApply(CIPHERTEXT, null, secret({ key_id: keyId, plaintext: 'bye' }));
    expect((await api(daemon, 'DELETE', `/kms/v1/keys/${keyId}`)).status).toBe(200);
    expect(await p.read(CIPHERTEXT, created.state!)).toEqual({ state: null, diags: [] });
    expect(await p.apply(CIPHERTEXT, created.state, null, null)).toEqual({ state: null, diags: [] });
  });

  it('reports a missing key on key_id and never echoes the plaintext', async () => {
    const res = await p.planApply(CIPHERTEXT, null, secret({ key_id: 'nosuchkey', plaintext: 'top-secret-value' }));
    expect(res.state).toBeNull();
    expect(res.diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Cannot encrypt with key nosuchkey', ['key_id']]]);
    expect(JSON.stringify(res.diags)).not.toContain('top-secret-value');
  });

  it('cannot be imported', async () => {
    const res = await p.importAndRead(CIPHERTEXT, 'anything');
    expect(res.diags.map((d) => d.summary)).toEqual(['Import not supported']);
  });

  it('validates sizes without showing the plaintext', async () => {
    const diags = await p.validate(CIPHERTEXT, secret({ key_id: 'k', plaintext: 'é'.repeat(16385), aad_context: 'a'.repeat(8193) }));
    expect(diags.map((d) => [d.summary, pathOf(d)])).toEqual([
      ['Invalid plaintext', ['plaintext']],
      ['Invalid aad_context', ['aad_context']],
    ]);
    expect(diags[0]?.detail).toBe('plaintext must be at most 32768 bytes of UTF-8; got 32770.');
  });
});

describe('kms_symmetric_key data source against the daemon', () => {
  it('finds a key by id with the attributes the resource shows', async () => {
    const created = await p.planApply(KEY, null, objectOf(KEY, { name: 'ds-by-id', labels: { env: 'dev' }, rotation_period: '24h', description: 'd' }));
    expect(created.diags).toEqual([]);
    const res = await p.readData(KEY, dataConfig({ symmetric_key_id: created.state!['id'] }));
    expect(res.diags).toEqual([]);
    expect(res.state).toEqual({ ...created.state, symmetric_key_id: created.state!['id'] });
  });

  it('finds a key by name in the provider folder or in a given folder', async () => {
    const id = await newKey({ name: 'ds-by-name', rotationPeriod: '5400s' });
    const byName = await p.readData(KEY, dataConfig({ name: 'ds-by-name' }));
    expect(byName.diags).toEqual([]);
    expect(byName.state).toMatchObject({ id, symmetric_key_id: id, folder_id: FOLDER, name: 'ds-by-name', description: '', labels: {}, rotation_period: '1h30m', status: 'ACTIVE' });

    const other = 'folder-ds-other';
    const otherRes = await api(daemon, 'POST', '/kms/v1/keys', { folderId: other, name: 'elsewhere' });
    const otherId = otherRes.body.response.id as string;
    expect((await p.readData(KEY, dataConfig({ name: 'elsewhere', folder_id: other }))).state).toMatchObject({ id: otherId, folder_id: other, rotation_period: null });
  });

  it('says clearly when no key or several keys match, or the id does not exist', async () => {
    const none = await p.readData(KEY, dataConfig({ name: 'no-such-name' }));
    expect(none.state).toBeNull();
    expect(none.diags.map((d) => [d.summary, d.detail, pathOf(d)])).toEqual([['Key not found', `No key named "no-such-name" in folder "${FOLDER}".`, ['name']]]);

    const a = await newKey({ name: 'twin' });
    const b = await newKey({ name: 'twin' });
    const several = await p.readData(KEY, dataConfig({ name: 'twin' }));
    expect(several.diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Several keys match', ['name']]]);
    expect(several.diags[0]?.detail).toContain(a);
    expect(several.diags[0]?.detail).toContain(b);
    expect(several.diags[0]?.detail).toContain('use symmetric_key_id');

    const missing = await p.readData(KEY, dataConfig({ symmetric_key_id: 'nosuchkey' }));
    expect(missing.diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Key not found', ['symmetric_key_id']]]);

    const wrongFolder = await p.readData(KEY, dataConfig({ symmetric_key_id: a, folder_id: 'another' }));
    expect(wrongFolder.diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Key in another folder', ['folder_id']]]);
  });

  it('validates that exactly one selector is set', async () => {
    expect((await p.validateData(KEY, dataConfig({}))).map((d) => [d.summary, pathOf(d)])).toEqual([['Missing key selector', ['symmetric_key_id']]]);
    expect((await p.validateData(KEY, dataConfig({ name: 'x', symmetric_key_id: 'y' }))).map((d) => d.summary)).toEqual(['Conflicting key selectors']);
    expect(await p.validateData(KEY, dataConfig({ name: 'x' }))).toEqual([]);
  });

  it('needs a folder to look up by name', async () => {
    const c = await ProviderDriver.configure(daemon.url, daemon.token);
    expect(c.diags).toEqual([]);
    const res = await c.driver.readData(KEY, dataConfig({ name: 'ds-by-name' }));
    expect(res.diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Missing folder_id', ['folder_id']]]);
  });
});
