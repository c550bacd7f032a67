// Ephemeral resources: kms_secret_plaintext decrypts values that feed a write-only argument and
// the token of a second provider configuration; kms_data_key hands out a data key. Neither the
// secrets nor the token appear in the state file or in the saved plan file (its zip entries).
import { expect, it } from '@jest/globals';
import { join } from 'node:path';
import { describeEachCli } from '../support/cli.js';
import { api } from '../support/daemon.js';
import { zipText } from '../support/zip.js';
import { E2E_TIMEOUT, PROVIDER_HCL, stateFiles, useKms, uniqueFolder, workspaceFor } from './fixtures.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

const PASSWORD = 'eph-db-password-7f3a9c';

function ephemeralHcl(appFolder: string): string {
  return `${PROVIDER_HCL}
variable "key_id" { type = string }
variable "password_ciphertext" { type = string }
variable "token_ciphertext" { type = string }

ephemeral "kms_secret_plaintext" "password" {
  key_id      = var.key_id
  ciphertext  = var.password_ciphertext
  aad_context = "app"
}

ephemeral "kms_secret_plaintext" "token" {
  key_id      = var.key_id
  ciphertext  = var.token_ciphertext
  aad_context = "token"
}

# A second provider configuration whose token exists only in memory.
provider "kms" {
  alias     = "app"
  token     = ephemeral.kms_secret_plaintext.token.plaintext
  folder_id = ${JSON.stringify(appFolder)}
}

resource "kms_symmetric_key" "app" {
  provider = kms.app
  name     = "made-with-an-ephemeral-token"
}

resource "kms_secret_ciphertext" "copy" {
  key_id               = var.key_id
  aad_context          = "copy"
  plaintext_wo         = ephemeral.kms_secret_plaintext.password.plaintext
  plaintext_wo_version = 1
}

ephemeral "kms_data_key" "dk" {
  key_id      = var.key_id
  aad_context = "dk"
}

resource "kms_secret_ciphertext" "envelope" {
  key_id               = var.key_id
  aad_context          = "envelope"
  plaintext_wo         = jsonencode({ plaintext = ephemeral.kms_data_key.dk.plaintext, ciphertext = ephemeral.kms_data_key.dk.ciphertext })
  plaintext_wo_version = 1
}
`;
}

describeEachCli(
  'ephemeral resources',
  (cli) => {
    const kms = useKms();

    it(
      'decrypt into a write-only argument and a provider token, generate a data key, and persist none of it',
      async () => {
        const admin = { url: kms.url, token: kms.token };
        const folderId = uniqueFolder('eph');
        const appFolder = uniqueFolder('eph-app');
        const key = await kms.rest.createKey({ folderId, name: 'ephemeral-source' });
        const sa = await api(admin, 'POST', ADMIN_PATHS.serviceAccounts, { name: `eph-${cli.id.replace(/\./g, '-')}` });
        expect(sa.status).toBe(200);
        const issued = await api(admin, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id as string}` });
        const appToken = issued.body.token as string;
        const granted = await api(admin, 'POST', `/resource-manager/v1/folders/${appFolder}:updateAccessBindings`, {
          accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.admin', subject: { type: 'serviceAccount', id: sa.body.id } } }],
        });
        expect(granted.status).toBe(200);

        const ws = workspaceFor(cli, kms, folderId, 'eph');
        try {
          ws.write(ephemeralHcl(appFolder));
          ws.write(
            `key_id = ${JSON.stringify(key.id)}\npassword_ciphertext = ${JSON.stringify(await kms.rest.encrypt(key.id, PASSWORD, 'app'))}\n` +
              `token_ciphertext = ${JSON.stringify(await kms.rest.encrypt(key.id, appToken, 'token'))}\n`,
            'terraform.tfvars',
          );
          await ws.init();
          const { code } = await ws.savedPlan();
          expect(code).toBe(2);
          const planFile = zipText(join(ws.dir, 'tfplan'));
          expect(planFile).toContain('kms_secret_ciphertext');
          for (const secret of [PASSWORD, appToken]) expect(planFile).not.toContain(secret);
          await ws.run(['apply', '-no-color', '-input=false', 'tfplan']);

          const raw = stateFiles(ws);
          for (const secret of [PASSWORD, appToken]) expect(raw).not.toContain(secret);
          const state = await ws.state();
          expect([...state.keys()].filter((a) => a.startsWith('ephemeral'))).toEqual([]);

          // The write-only copy holds what the ephemeral resource decrypted.
          const copy = state.get('kms_secret_ciphertext.copy')!.values;
          expect((await kms.rest.decrypt(key.id, copy.ciphertext as string, 'copy')).toString()).toBe(PASSWORD);

          // The aliased provider acted as the service account whose token was decrypted.
          const appKey = state.get('kms_symmetric_key.app')!.values;
          expect(appKey.folder_id).toBe(appFolder);
          const events = await api(admin, 'GET', `/kms/v1/auditEvents?folderId=${appFolder}&operation=SymmetricKey.Create`);
          expect(events.body.events.map((e: { subject: string; result: string }) => [e.subject, e.result])).toEqual([[`serviceAccount:${sa.body.id as string}`, 'OK']]);

          // The data key: its ciphertext decrypts (with its AAD) to its plaintext, a 256-bit key.
          const envelope = JSON.parse(
            (await kms.rest.decrypt(key.id, state.get('kms_secret_ciphertext.envelope')!.values.ciphertext as string, 'envelope')).toString(),
          ) as { plaintext: string; ciphertext: string };
          const dataKey = Buffer.from(envelope.plaintext, 'base64');
          expect(dataKey).toHaveLength(32);
          expect((await kms.rest.decrypt(key.id, envelope.ciphertext, 'dk')).equals(dataKey)).toBe(true);

          // Ephemeral results are opened anew on every run; write-only arguments hide that.
          expect(await ws.planExitCode()).toBe(0);
          await ws.destroy();
          expect(await kms.rest.getKey(appKey.id as string)).toBeUndefined();
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );

    it(
      'reports a wrong AAD and a malformed ciphertext with the attribute',
      async () => {
        const folderId = uniqueFolder('eph-bad');
        const key = await kms.rest.createKey({ folderId, name: 'ephemeral-bad' });
        const ciphertext = await kms.rest.encrypt(key.id, PASSWORD, 'right');
        const ws = workspaceFor(cli, kms, folderId, 'eph-bad');
        try {
          const hcl = (ct: string, aad: string): string =>
            `${PROVIDER_HCL}\nephemeral "kms_secret_plaintext" "p" {\n  key_id      = ${JSON.stringify(key.id)}\n  ciphertext  = ${JSON.stringify(ct)}\n  aad_context = ${JSON.stringify(aad)}\n}\n`;
          ws.write(hcl('not base64!', 'right'));
          await ws.init();
          const invalid = await ws.run(['validate', '-no-color'], { expect: 1 });
          expect(invalid.stderr).toContain('Error: Invalid ciphertext');
          expect(invalid.stderr).toContain('ciphertext  = "not base64!"');

          ws.write(hcl(ciphertext, 'wrong'));
          const refused = await ws.run(['plan', '-no-color', '-input=false'], { expect: 1 });
          expect(refused.stderr).toContain(`Error: Cannot decrypt with key ${key.id}`);
          expect(refused.stderr).not.toContain(PASSWORD);
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );
  },
  { requires: ['ephemeral', 'writeOnly'] },
);
