/**
 * kmsd's own administration API under /admin/v1 (api/admin-paths.ts), through the provider's REST
 * client, and the Yandex paths it left: /iam/v1/serviceAccounts and /iam/v1/tokens no longer
 * serve it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ADMIN_PATHS, ADMIN_ROUTES } from '../../api/admin-paths.js';
import { KmsApiError, KmsClient } from '../../provider/client/kms-client.js';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

let kmsd: TestKmsd;
let admin: KmsClient;

beforeAll(async () => {
  kmsd = await startTestKmsd({ args: ['--keystore', 'software'] });
  admin = new KmsClient({ endpoint: kmsd.url, token: kmsd.token });
});

afterAll(async () => {
  await kmsd?.stop();
});

describe('administration API under /admin/v1', () => {
  it('creates, lists and deletes service accounts and tokens through the provider client', async () => {
    const sa = await admin.createServiceAccount('admin-api-sa', 'for the admin API test');
    expect(sa).toEqual({ id: expect.any(String), name: 'admin-api-sa', description: 'for the admin API test', createdAt: expect.any(String) });
    expect((await admin.listServiceAccounts()).map((a) => a.id)).toContain(sa.id);

    const issued = await admin.issueToken(`serviceAccount:${sa.id}`, 'ci');
    expect(issued.token).toMatch(/^kms_/);
    const listed = await admin.listTokens();
    expect(listed.find((t) => t.id === issued.id)).toEqual({ id: issued.id, subject: `serviceAccount:${sa.id}`, description: 'ci', createdAt: issued.createdAt });
    expect(JSON.stringify(listed)).not.toContain(issued.token);

    // The issued token authenticates (an empty folder list), then is revoked at once.
    const asSa = new KmsClient({ endpoint: kmsd.url, token: issued.token });
    await expect(asSa.listKeys('nobody-bound-me')).rejects.toMatchObject({ code: 7 });
    await admin.revokeToken(issued.id);
    await expect(asSa.listKeys('nobody-bound-me')).rejects.toMatchObject({ code: 16 });

    await admin.deleteServiceAccount(sa.id);
    expect((await admin.listServiceAccounts()).map((a) => a.id)).not.toContain(sa.id);
    const again = await admin.deleteServiceAccount(sa.id).catch((err: unknown) => err);
    expect(again).toBeInstanceOf(KmsApiError);
    expect((again as KmsApiError).code).toBe(5);
  });

  it('is refused to everyone but the bootstrap admin', async () => {
    const sa = await admin.createServiceAccount('admin-api-outsider');
    const issued = await admin.issueToken(`serviceAccount:${sa.id}`);
    const outsider = new KmsClient({ endpoint: kmsd.url, token: issued.token });
    await expect(outsider.listServiceAccounts()).rejects.toMatchObject({ code: 7 });
    await expect(outsider.issueToken('userAccount:me')).rejects.toMatchObject({ code: 7 });
  });

  it('no longer answers on the Yandex paths, and /openapi.json documents the new ones', async () => {
    for (const [method, path] of [['GET', '/iam/v1/serviceAccounts'], ['POST', '/iam/v1/serviceAccounts']] as const) {
      const res = await api(kmsd, method, path, method === 'POST' ? { name: 'x' } : undefined);
      expect(res.status).toBe(404);
    }
    // /iam/v1/tokens is Yandex's IamTokenService.Create now: POST only, and not our token shape.
    expect((await api(kmsd, 'GET', '/iam/v1/tokens')).status).toBe(405);
    const asAdminCall = await api(kmsd, 'POST', '/iam/v1/tokens', { subject: 'userAccount:someone' });
    expect(asAdminCall.status).toBe(400);
    const spec = await api(kmsd, 'GET', '/openapi.json');
    const paths = Object.keys(spec.body.paths as object);
    expect(paths).toEqual(expect.arrayContaining(Object.values(ADMIN_ROUTES)));
    expect(paths.filter((p) => p.startsWith('/iam/v1/serviceAccounts'))).toEqual([]);
    expect(ADMIN_PATHS.token('a b')).toBe('/admin/v1/tokens/a%20b');
  });
});
