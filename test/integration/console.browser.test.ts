/**
 * The web console in a real headless Chromium (Debian's package, playwright-core) against the
 * real daemon: security headers, nothing loaded from elsewhere and no CSP violation, sign in, create
 * a key and see it listed, filters, rotate, schedule and cancel destruction, add a binding, try-it
 * encrypt/decrypt, typed-confirmation delete and restore, the calls in the audit view with paging
 * and the verify indicator, sign out; a viewer sees the pages while mutating actions show the API's
 * permission message; a narrow window. Screenshots go to test-output/console and are checked to
 * show something.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium, testOutputDir, type Browser } from '../support/browser.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { pngStats } from '../support/png.js';

jest.setTimeout(180_000);
let kmsd: TestKmsd;
let browser: Browser;
const FOLDER = 'web-folder';
const shots = testOutputDir('console');
/** Requests to anything but the daemon, and console errors (CSP violations show up there). */
const foreign: string[] = [];
const consoleErrors: string[] = [];
let viewer: { id: string; token: string };

async function newPage(viewport?: { width: number; height: number }): Promise<Page> {
  const page = await browser.context.newPage();
  if (viewport !== undefined) await page.setViewportSize(viewport);
  page.on('request', (request) => {
    if (!request.url().startsWith(`${kmsd.url}/`)) foreign.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const stats = pngStats(readFileSync(path));
  expect(stats.width).toBeGreaterThan(300);
  // A blank or single-colour page has no spread and a handful of colours.
  expect(stats.luminanceStdDev).toBeGreaterThan(15);
  expect(stats.distinctColors).toBeGreaterThan(50);
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${kmsd.url}/console/`);
  await page.getByLabel('Token').waitFor();
  // Keyboard only: the token field has focus, Enter submits.
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: /^Keys in / }).waitFor();
}

const flash = (page: Page) => page.locator('#flash');

/** Waits for the audit table to start at `seq` (a function, not a string: the page's CSP forbids eval). */
const firstSeqIs = (page: Page, seq: string) =>
  page.waitForFunction((s) => (globalThis as any).document.querySelector('td[data-col="Seq"]')?.textContent === s, seq);

beforeAll(async () => {
  kmsd = await startTestKmsd();
  browser = await launchChromium();
  const sa = (await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'web-viewer' })).body;
  const token = (await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.id}` })).body.token as string;
  await api(kmsd, 'POST', `/resource-manager/v1/folders/${FOLDER}:updateAccessBindings`, {
    accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'serviceAccount', id: sa.id } } }],
  });
  viewer = { id: sa.id, token };
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await kmsd?.stop();
});

describe('serving', () => {
  it('serves the bundle with strict security headers, and nothing else under /console', async () => {
    for (const path of ['/console/', '/console/app.js', '/console/app.css']) {
      const res = await fetch(`${kmsd.url}${path}`);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const html = await (await fetch(`${kmsd.url}/console/`)).text();
    expect(html).not.toMatch(/<script>|<style|style=|https?:\/\//);
    const js = await (await fetch(`${kmsd.url}/console/app.js`)).text();
    // No absolute URL anywhere in the bundle: everything it loads or calls is on this origin.
    expect(js).not.toMatch(/https?:\/\//);
    const redirect = await fetch(`${kmsd.url}/console`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/console/');
    expect((await fetch(`${kmsd.url}/console/../kms.json`)).status).not.toBe(200);
    expect((await fetch(`${kmsd.url}/console/nope.js`)).status).toBe(404);
    expect((await fetch(`${kmsd.url}/console/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('as the admin', () => {
  let page: Page;
  let keyId: string;
  let firstVersion: string;

  beforeAll(async () => {
    page = await newPage();
  });

  it('refuses an unknown token with the API message', async () => {
    await page.goto(`${kmsd.url}/console/`);
    await page.getByLabel('Token').fill('kms_not_a_token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'UNAUTHENTICATED' }).textContent()).resolves.toContain('the token is not valid');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await screenshot(page, 'sign-in');
  });

  it('signs in, creates a key and sees it listed; search and label filters work', async () => {
    await signIn(page, kmsd.token);
    expect(await page.evaluate('document.cookie')).toBe('');
    await page.goto(`${kmsd.url}/console/#/keys?folder=${FOLDER}`);
    await page.getByRole('heading', { name: `Keys in ${FOLDER}` }).waitFor();
    const form = page.getByRole('form', { name: 'Create key' });
    await form.getByLabel('Name').fill('web-key');
    await form.getByLabel('Labels').fill('env=prod, team=web');
    await form.getByLabel('Default algorithm').selectOption('AES_256');
    await form.getByLabel('Rotation period').fill('720h');
    await form.getByRole('button', { name: 'Create key' }).click();
    await expect(flash(page).textContent()).resolves.toBeDefined();
    await page.getByRole('link', { name: 'web-key' }).waitFor();
    expect(await flash(page).textContent()).toMatch(/^Created key web-key \(\w+\)\.$/);
    const keys = (await api(kmsd, 'GET', `/kms/v1/keys?folderId=${FOLDER}`)).body.keys;
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ name: 'web-key', labels: { env: 'prod', team: 'web' }, defaultAlgorithm: 'AES_256', rotationPeriod: '2592000s' });
    keyId = keys[0].id;
    firstVersion = keys[0].primaryVersion.id;
    await api(kmsd, 'POST', '/kms/v1/keys', { folderId: FOLDER, name: 'other-key', labels: { env: 'dev' } });
    await page.reload();
    await page.getByRole('link', { name: 'other-key' }).waitFor();
    const filters = page.getByRole('search', { name: 'Folder and filters' });
    await filters.getByLabel('Search by name').fill('web');
    await filters.getByRole('button', { name: 'Show keys' }).click();
    await page.getByText('1 of 2 keys').waitFor();
    expect(await page.getByRole('link', { name: 'other-key' }).count()).toBe(0);
    await filters.getByLabel('Search by name').fill('');
    await filters.getByLabel('Label').fill('env=dev');
    await filters.getByRole('button', { name: 'Show keys' }).click();
    await page.getByText('1 of 2 keys').waitFor();
    expect(await page.getByRole('link', { name: 'web-key' }).count()).toBe(0);
    await filters.getByLabel('Label').fill('');
    await filters.getByLabel('Status').selectOption('INACTIVE');
    await filters.getByRole('button', { name: 'Show keys' }).click();
    await page.getByText('No key matches the filters.').waitFor();
    await page.goto(`${kmsd.url}/console/#/keys?folder=${FOLDER}`);
    await page.getByText('2 of 2 keys').waitFor();
    await screenshot(page, 'keys');
  });

  it('rotates and shows the new primary version; schedules and cancels a destruction', async () => {
    await page.getByRole('link', { name: 'web-key' }).click();
    await page.getByRole('heading', { name: 'Key web-key', exact: true }).waitFor();
    expect(await page.locator('#primary-version').textContent()).toBe(firstVersion);
    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    await page.getByText(/^Rotated: new primary version \w+\.$/).waitFor();
    const newPrimary = (await api(kmsd, 'GET', `/kms/v1/keys/${keyId}`)).body.primaryVersion.id as string;
    expect(newPrimary).not.toBe(firstVersion);
    expect(await flash(page).textContent()).toBe(`Rotated: new primary version ${newPrimary}.`);
    expect(await page.locator('#primary-version').textContent()).toBe(newPrimary);
    const row = (id: string) => page.getByRole('row').filter({ hasText: id });
    await expect(row(newPrimary).textContent()).resolves.toContain('primary');

    await page.getByLabel('Pending period for destruction').fill('48h');
    await page.getByRole('button', { name: `Schedule destruction ${firstVersion}` }).click();
    await page.getByText(`Version ${firstVersion} will be destroyed at`).waitFor();
    expect(await row(firstVersion).textContent()).toContain('SCHEDULED_FOR_DESTRUCTION');
    const scheduled = (await api(kmsd, 'GET', `/kms/v1/keys/${keyId}/versions`)).body.keyVersions.find((v: any) => v.id === firstVersion);
    expect(scheduled.status).toBe('SCHEDULED_FOR_DESTRUCTION');
    expect(Date.parse(scheduled.destroyAt) - Date.now()).toBeGreaterThan(47 * 3600_000);
    await page.getByRole('button', { name: `Cancel destruction ${firstVersion}` }).click();
    await page.getByText(`Destruction of ${firstVersion} cancelled.`).waitFor();
    expect(await row(firstVersion).textContent()).toContain('ACTIVE');
    expect((await api(kmsd, 'GET', `/kms/v1/keys/${keyId}/versions`)).body.keyVersions.find((v: any) => v.id === firstVersion).status).toBe('ACTIVE');
  });

  it('adds an access binding', async () => {
    const form = page.getByRole('form', { name: 'Add access binding' });
    await form.getByLabel('Role').selectOption('kms.keys.encrypterDecrypter');
    await form.getByLabel('Subject type').selectOption('serviceAccount');
    await form.getByLabel('Subject ID').fill(viewer.id);
    await form.getByRole('button', { name: 'Add binding' }).click();
    await page.getByText(`Granted kms.keys.encrypterDecrypter to serviceAccount:${viewer.id}.`).waitFor();
    await page.getByRole('button', { name: `Remove kms.keys.encrypterDecrypter from serviceAccount:${viewer.id}` }).waitFor();
    expect((await api(kmsd, 'GET', `/kms/v1/keys/${keyId}:listAccessBindings`)).body.accessBindings).toEqual([
      { roleId: 'kms.keys.encrypterDecrypter', subject: { type: 'serviceAccount', id: viewer.id } },
    ]);
  });

  it('encrypts and decrypts in the try-it panel', async () => {
    await page.getByLabel('Plaintext').fill('hello console ✓');
    await page.getByLabel('AAD context').fill('order-42');
    await page.getByRole('button', { name: 'Encrypt', exact: true }).click();
    await page.getByText(/^Encrypted with version \w+\.$/).waitFor();
    const ciphertext = await page.getByLabel('Ciphertext').inputValue();
    expect(Buffer.from(ciphertext, 'base64').length).toBeGreaterThan(20);
    // The ciphertext is real: the API decrypts it with the same AAD.
    const back = await api(kmsd, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext, aadContext: Buffer.from('order-42').toString('base64') });
    expect(Buffer.from(back.body.plaintext, 'base64').toString()).toBe('hello console ✓');
    await page.getByLabel('Plaintext').fill('');
    await page.getByRole('button', { name: 'Decrypt', exact: true }).click();
    await page.getByText(/^Decrypted with version \w+: hello console ✓$/).waitFor();
    expect(await page.getByLabel('Plaintext').inputValue()).toBe('hello console ✓');
    await screenshot(page, 'key');
    await page.getByLabel('AAD context').fill('wrong');
    await page.getByRole('button', { name: 'Decrypt', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'INVALID_ARGUMENT' }).waitFor();
  });

  it('deletes only after the typed confirmation, and restores', async () => {
    const other = (await api(kmsd, 'GET', `/kms/v1/keys?folderId=${FOLDER}`)).body.keys.find((k: any) => k.name === 'other-key');
    await page.goto(`${kmsd.url}/console/#/keys/${other.id}`);
    await page.getByRole('heading', { name: 'Key other-key', exact: true }).waitFor();
    const form = page.getByRole('form', { name: 'Delete key' });
    const button = form.getByRole('button', { name: 'Delete key' });
    expect(await button.isDisabled()).toBe(true);
    await form.getByLabel('Type “other-key” to confirm').fill('other-ke');
    expect(await button.isDisabled()).toBe(true);
    await form.getByLabel('Type “other-key” to confirm').fill('other-key');
    expect(await button.isDisabled()).toBe(false);
    await button.click();
    await page.getByRole('heading', { name: 'Key other-key deleted' }).waitFor();
    expect((await api(kmsd, 'GET', `/kms/v1/keys/${other.id}`)).status).toBe(404);
    await page.getByRole('button', { name: 'Restore' }).click();
    await page.getByRole('heading', { name: 'Key other-key', exact: true }).waitFor();
    expect(await flash(page).textContent()).toBe('Restored key other-key.');
    expect((await api(kmsd, 'GET', `/kms/v1/keys/${other.id}`)).status).toBe(200);
    // Deletion protection: the API refuses, and the page says why.
    await page.getByRole('button', { name: 'Turn deletion protection on' }).click();
    await page.getByText('Deletion protection is on.').waitFor();
    await page.getByLabel('Type “other-key” to confirm').fill('other-key');
    await page.getByRole('form', { name: 'Delete key' }).getByRole('button', { name: 'Delete key' }).click();
    await page.getByRole('alert').filter({ hasText: 'FAILED_PRECONDITION' }).waitFor();
  });

  it('finds the calls in the audit view, pages through them, and shows the trail verified', async () => {
    const all = (await api(kmsd, 'GET', `/kms/v1/auditEvents?keyId=${keyId}&pageSize=1000`)).body.events;
    expect(all.length).toBeGreaterThan(20);
    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    await page.locator('#verify-status').getByText('trail verified').waitFor();
    const form = page.getByRole('search', { name: 'Audit filters' });
    await form.getByLabel('Key').fill(keyId);
    await form.getByLabel('Page size').selectOption('20');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('20 events on this page (oldest first)').waitFor();
    const seqs = async () => page.locator('td[data-col="Seq"]').allTextContents();
    const first = await seqs();
    expect(first).toEqual(all.slice(0, 20).map((e: any) => String(e.seq)));
    await page.getByRole('link', { name: 'Next page ›' }).click();
    await firstSeqIs(page, String(all[20].seq));
    // The audit view's own queries of this key are audited too, so the second page may have grown.
    const second = (await seqs()).map(Number);
    expect(second.length).toBeGreaterThan(0);
    expect(second.length).toBeLessThanOrEqual(20);
    expect(second.slice(0, all.length - 20)).toEqual(all.slice(20, 40).map((e: any) => e.seq));
    expect([...second].sort((a, b) => a - b)).toEqual(second);
    await page.getByRole('link', { name: '‹ Previous page' }).click();
    await firstSeqIs(page, first[0]!);
    // The calls made from the page are there, by the admin.
    await form.getByLabel('Page size').selectOption('500');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText(/^\d+ events on this page/).waitFor();
    const operations = await page.locator('td[data-col="Operation"]').allTextContents();
    for (const op of ['SymmetricKey.Rotate', 'SymmetricKey.ScheduleVersionDestruction', 'SymmetricKey.CancelVersionDestruction', 'SymmetricKey.UpdateAccessBindings', 'SymmetricCrypto.Encrypt', 'SymmetricCrypto.Decrypt']) {
      expect(operations).toContain(op);
    }
    const subjects = new Set(await page.locator('td[data-col="Subject"]').allTextContents());
    expect([...subjects]).toEqual(['userAccount:admin']);
    await form.getByLabel('Operation').fill('SymmetricCrypto.Decrypt');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('3 events on this page (oldest first)').waitFor();
    expect(await page.locator('td[data-col="Result"]').allTextContents()).toEqual(['OK', 'OK', 'INVALID_ARGUMENT']);
    // A time range that ends before the key existed matches nothing.
    await form.getByLabel('Operation').fill('');
    await form.getByLabel('To (local time)').fill('2020-01-01T00:00:00');
    await form.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No events match.').waitFor();
    // The whole-trail walk ran once for this tab; later visits show that result, "Verify now" runs it again.
    const verifications = async () => (await api(kmsd, 'GET', '/kms/v1/auditEvents?operation=AuditEvents.Verify&pageSize=1000')).body.events.length as number;
    const before = await verifications();
    expect(before).toBe(1);
    await page.goto(`${kmsd.url}/console/#/audit?keyId=${keyId}&pageSize=20`);
    await page.locator('#verify-status').getByText('trail verified').waitFor();
    await page.getByText('20 events on this page (oldest first)').waitFor();
    expect(await verifications()).toBe(before);
    await page.getByRole('button', { name: 'Verify now' }).click();
    await page.locator('#verify-status').getByText('verifying…').waitFor({ state: 'detached' }).catch(() => undefined);
    await page.locator('#verify-status').getByText('trail verified').waitFor();
    expect(await verifications()).toBe(before + 1);
    await screenshot(page, 'audit');
  });

  it('manages service accounts and tokens, and folder bindings', async () => {
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    await page.getByRole('heading', { name: 'Service accounts and tokens' }).waitFor();
    const saForm = page.getByRole('form', { name: 'Create service account' });
    await saForm.getByLabel('Name').fill('web-created');
    await saForm.getByLabel('Description').fill('made in the console');
    await saForm.getByRole('button', { name: 'Create service account' }).click();
    await page.getByText(/^Created service account web-created \(serviceAccount:\w+\)\.$/).waitFor();
    const created = (await api(kmsd, 'GET', ADMIN_PATHS.serviceAccounts)).body.serviceAccounts.find((a: any) => a.name === 'web-created');
    expect(created).toMatchObject({ description: 'made in the console' });
    const tokenForm = page.getByRole('form', { name: 'Issue token' });
    await tokenForm.getByLabel('Subject').fill(`serviceAccount:${created.id}`);
    await tokenForm.getByLabel('Description').fill('console token');
    await tokenForm.getByRole('button', { name: 'Issue token' }).click();
    await page.getByText(/Copy it now: it is not shown again\.$/).waitFor();
    const value = await page.getByLabel('New token').inputValue();
    // The token works, and it is listed by id, never by value.
    expect((await api({ url: kmsd.url, token: value }, 'GET', '/openapi.json')).status).toBe(200);
    const listed = (await api(kmsd, 'GET', ADMIN_PATHS.tokens)).body.tokens.find((t: any) => t.description === 'console token');
    await page.reload();
    await page.getByRole('button', { name: `Revoke ${listed.id}` }).waitFor();
    expect(await page.content()).not.toContain(value);
    await page.getByRole('button', { name: `Revoke ${listed.id}` }).click();
    await page.getByText(`Revoked token ${listed.id}.`).waitFor();
    expect((await api({ url: kmsd.url, token: value }, 'GET', '/openapi.json')).status).toBe(401);
    // Deleting asks twice.
    await page.getByRole('button', { name: 'Delete web-created' }).click();
    expect((await api(kmsd, 'GET', ADMIN_PATHS.serviceAccounts)).body.serviceAccounts.some((a: any) => a.id === created.id)).toBe(true);
    await page.getByRole('button', { name: 'Delete web-created' }).click();
    await page.getByText('Deleted service account web-created.').waitFor();
    expect((await api(kmsd, 'GET', ADMIN_PATHS.serviceAccounts)).body.serviceAccounts.some((a: any) => a.id === created.id)).toBe(false);
    await screenshot(page, 'accounts');
    // A folder role from the keys page.
    await page.goto(`${kmsd.url}/console/#/keys?folder=${FOLDER}`);
    const bind = page.getByRole('form', { name: 'Add folder access binding' });
    await bind.getByLabel('Role').selectOption('kms.auditor');
    await bind.getByLabel('Subject ID').fill(viewer.id);
    await bind.getByRole('button', { name: 'Add binding' }).click();
    await page.getByText(`Granted kms.auditor to serviceAccount:${viewer.id}.`).waitFor();
    const folderBindings = (await api(kmsd, 'GET', `/resource-manager/v1/folders/${FOLDER}:listAccessBindings`)).body.accessBindings;
    expect(folderBindings).toEqual(expect.arrayContaining([{ roleId: 'kms.auditor', subject: { type: 'serviceAccount', id: viewer.id } }]));
    await page.getByRole('button', { name: `Remove kms.auditor from serviceAccount:${viewer.id}` }).click();
    await page.getByText(`Removed kms.auditor from serviceAccount:${viewer.id}.`).waitFor();
  });

  it('signs out: the token is gone and the pages need a sign-in again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('kms.console.token')")).toBeNull();
    await page.goto(`${kmsd.url}/console/#/keys?folder=${FOLDER}`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.locator('#nav').isHidden()).toBe(true);
    await page.close();
  });
});

describe('as a viewer', () => {
  it('sees the pages, and every mutating action shows the API permission message', async () => {
    const page = await newPage();
    await signIn(page, viewer.token);
    await page.goto(`${kmsd.url}/console/#/keys?folder=${FOLDER}`);
    await page.getByRole('link', { name: 'web-key' }).waitFor();
    const key = (await api(kmsd, 'GET', `/kms/v1/keys?folderId=${FOLDER}`)).body.keys.find((k: any) => k.name === 'web-key');
    const create = page.getByRole('form', { name: 'Create key' });
    await create.getByLabel('Name').fill('not-allowed');
    await create.getByRole('button', { name: 'Create key' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'PERMISSION_DENIED' }).textContent()).resolves.toBe(
      `serviceAccount:${viewer.id} lacks permission kms.keys.create on folder ${FOLDER} (PERMISSION_DENIED)`,
    );
    await page.getByRole('link', { name: 'web-key' }).click();
    await page.getByRole('heading', { name: 'Key web-key', exact: true }).waitFor();
    expect(await page.locator('#primary-version').textContent()).toBe(key.primaryVersion.id);
    const denied = async (action: () => Promise<void>, permission: string) => {
      await action();
      const alert = page.getByRole('alert').filter({ hasText: `lacks permission ${permission}` });
      await alert.waitFor();
      expect(await alert.textContent()).toBe(`serviceAccount:${viewer.id} lacks permission ${permission} on key ${key.id} (PERMISSION_DENIED)`);
    };
    await denied(() => page.getByRole('button', { name: 'Rotate', exact: true }).click(), 'kms.keys.rotate');
    await denied(() => page.getByRole('button', { name: 'Deactivate' }).click(), 'kms.keys.update');
    await denied(() => page.getByRole('button', { name: /^Schedule destruction / }).first().click(), 'kms.keys.scheduleVersionDestruction');
    const bind = page.getByRole('form', { name: 'Add access binding' });
    await bind.getByLabel('Subject ID').fill(viewer.id);
    await denied(() => bind.getByRole('button', { name: 'Add binding' }).click(), 'kms.keys.updateAccessBindings');
    await page.getByLabel('Type “web-key” to confirm').fill('web-key');
    await denied(() => page.getByRole('form', { name: 'Delete key' }).getByRole('button', { name: 'Delete key' }).click(), 'kms.keys.delete');
    // The viewer's own binding on the key lets it encrypt (granted by the admin above).
    await page.getByLabel('Plaintext').fill('from the viewer');
    await page.getByRole('button', { name: 'Encrypt', exact: true }).click();
    await page.getByText(/^Encrypted with version \w+\.$/).waitFor();
    expect((await api(kmsd, 'GET', `/kms/v1/keys/${key.id}`)).body.primaryVersion.id).toBe(key.primaryVersion.id);
    await screenshot(page, 'key-viewer');
    // The audit page: the whole-trail verification is refused, and said so.
    await page.goto(`${kmsd.url}/console/#/audit?folderId=${FOLDER}`);
    await page.locator('#verify-status').getByText('not verified').waitFor();
    await page.getByText(`serviceAccount:${viewer.id} lacks permission kms.audit.read (PERMISSION_DENIED)`).waitFor();
    await page.getByText(/^\d+ events on this page/).waitFor();
    await page.getByRole('link', { name: 'Accounts', exact: true }).click();
    await page.getByText(`serviceAccount:${viewer.id} lacks permission iam.admin (PERMISSION_DENIED)`).first().waitFor();
    await page.close();
    const denials = (await api(kmsd, 'GET', `/kms/v1/auditEvents?subject=serviceAccount:${viewer.id}&pageSize=1000`)).body.events.filter((e: any) => e.result === 'PERMISSION_DENIED');
    expect(denials.map((e: any) => e.operation)).toEqual(
      expect.arrayContaining(['SymmetricKey.Create', 'SymmetricKey.Rotate', 'SymmetricKey.Update', 'SymmetricKey.ScheduleVersionDestruction', 'SymmetricKey.UpdateAccessBindings', 'SymmetricKey.Delete', 'AuditEvents.Verify']),
    );
  });
});

describe('layout and hygiene', () => {
  it('is readable in a narrow window without horizontal scrolling of the page', async () => {
    const page = await newPage({ width: 390, height: 800 });
    await signIn(page, kmsd.token);
    const key = (await api(kmsd, 'GET', `/kms/v1/keys?folderId=${FOLDER}`)).body.keys.find((k: any) => k.name === 'web-key');
    await page.goto(`${kmsd.url}/console/#/keys/${key.id}`);
    await page.getByRole('heading', { name: 'Key web-key', exact: true }).waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshot(page, 'key-narrow');
    // Every form control has a label, on each page.
    const unlabelled = `[...document.querySelectorAll('input, select, textarea')].filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label')).map((e) => e.name)`;
    expect(await page.evaluate(unlabelled)).toEqual([]);
    for (const hash of [`#/keys?folder=${FOLDER}`, '#/audit', '#/accounts']) {
      await page.goto(`${kmsd.url}/console/${hash}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      expect({ hash, unlabelled: await page.evaluate(unlabelled) }).toEqual({ hash, unlabelled: [] });
      expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    }
    await page.goto(`${kmsd.url}/console/#/keys/${key.id}`);
    await page.getByRole('heading', { name: 'Key web-key', exact: true }).waitFor();
    // Keyboard: from the top of the page, the skip link comes first.
    await page.reload();
    await page.getByRole('heading', { name: 'Key web-key', exact: true }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate('document.activeElement?.id')).toBe('main');
    await page.close();
  });

  it('loaded nothing from elsewhere and met no CSP violation or script error', () => {
    expect(foreign).toEqual([]);
    // 4xx answers the pages provoked on purpose are logged by Chromium as failed resources; nothing else.
    expect(consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of (400|401|403)/.test(e))).toEqual([]);
  });
});
