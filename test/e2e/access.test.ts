// Access control declared in Terraform, on each real CLI: an authoritative binding, an additive
// member, a ciphertext made by Terraform, and the data source; imports plan clean; removing the
// binding removes the access, as the subject's own token shows through the REST API.
import { expect, it } from '@jest/globals';
import { describeEachCli } from '../support/cli.js';
import { api } from '../support/daemon.js';
import { E2E_TIMEOUT, config, keyResource, useKms, uniqueFolder, workspaceFor } from './fixtures.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

function accessHcl(serviceAccountId: string, withBinding: boolean): string {
  const member = `serviceAccount:${serviceAccountId}`;
  return config(
    keyResource('k', { name: 'access-key' }),
    withBinding
      ? `resource "kms_symmetric_key_iam_binding" "users" {
  symmetric_key_id = kms_symmetric_key.k.id
  role             = "kms.keys.encrypterDecrypter"
  members          = ["${member}", "userAccount:alice"]
}
`
      : '',
    `resource "kms_symmetric_key_iam_member" "viewer" {
  symmetric_key_id = kms_symmetric_key.k.id
  role             = "kms.viewer"
  member           = "${member}"
}

resource "kms_secret_ciphertext" "password" {
  key_id      = kms_symmetric_key.k.id
  aad_context = "db-password"
  plaintext   = "correct horse battery staple"
}

data "kms_symmetric_key" "by_id" {
  symmetric_key_id = kms_symmetric_key.k.id
}

data "kms_symmetric_key" "by_name" {
  name       = "access-key"
  depends_on = [kms_symmetric_key.k]
}
`,
  );
}

describeEachCli('access control and secrets in Terraform', (cli) => {
  const kms = useKms();

  it(
    'binding → member → ciphertext → data source; imports plan clean; removing the binding removes access',
    async () => {
      const admin = { url: kms.url, token: kms.token };
      const sa = await api(admin, 'POST', ADMIN_PATHS.serviceAccounts, { name: `app-${cli.name}` });
      expect(sa.status).toBe(200);
      const issued = await api(admin, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
      const app = { url: kms.url, token: issued.body.token as string };

      const ws = workspaceFor(cli, kms, uniqueFolder('access'), 'access');
      try {
        ws.write(accessHcl(sa.body.id, true));
        await ws.init();
        await ws.apply();
        expect(await ws.planExitCode()).toBe(0);

        const state = await ws.state();
        const key = state.get('kms_symmetric_key.k')!.values;
        const secret = state.get('kms_secret_ciphertext.password')!.values;
        expect(state.get('data.kms_symmetric_key.by_id')!.values.id).toBe(key.id);
        expect(state.get('data.kms_symmetric_key.by_name')!.values.id).toBe(key.id);

        // The application decrypts what Terraform encrypted, with the binding's role.
        const dec = await api(app, 'POST', `/kms/v1/keys/${key.id as string}:decrypt`, {
          ciphertext: secret.ciphertext,
          aadContext: Buffer.from('db-password').toString('base64'),
        });
        expect(dec.status).toBe(200);
        expect(Buffer.from(dec.body.plaintext as string, 'base64').toString()).toBe('correct horse battery staple');
        expect((await api(app, 'GET', `/kms/v1/keys/${key.id as string}`)).status).toBe(200);

        // Import both access resources back after forgetting them: the plan stays clean.
        await ws.run(['state', 'rm', '-no-color', 'kms_symmetric_key_iam_binding.users', 'kms_symmetric_key_iam_member.viewer']);
        await ws.run(['import', '-no-color', '-input=false', 'kms_symmetric_key_iam_binding.users', `${key.id as string},kms.keys.encrypterDecrypter`]);
        await ws.run(['import', '-no-color', '-input=false', 'kms_symmetric_key_iam_member.viewer', `${key.id as string},kms.viewer,serviceAccount:${sa.body.id as string}`]);
        expect(await ws.planExitCode()).toBe(0);

        // A member added behind Terraform's back is drift for the authoritative binding.
        await api(admin, 'POST', `/kms/v1/keys/${key.id as string}:updateAccessBindings`, {
          accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.keys.encrypterDecrypter', subject: { type: 'userAccount', id: 'mallory' } } }],
        });
        expect(await ws.planExitCode()).toBe(2);
        await ws.apply();
        const bindings = await api(admin, 'GET', `/kms/v1/keys/${key.id as string}:listAccessBindings`);
        expect(bindings.body.accessBindings.map((b: { subject: { id: string } }) => b.subject.id)).not.toContain('mallory');

        // Removing the binding from the configuration removes the application's access.
        ws.write(accessHcl(sa.body.id, false));
        await ws.apply();
        expect(await ws.planExitCode()).toBe(0);
        const denied = await api(app, 'POST', `/kms/v1/keys/${key.id as string}:decrypt`, {
          ciphertext: secret.ciphertext,
          aadContext: Buffer.from('db-password').toString('base64'),
        });
        expect(denied.status).toBe(403);
        // The additive member is untouched.
        expect((await api(app, 'GET', `/kms/v1/keys/${key.id as string}`)).status).toBe(200);

        await ws.destroy();
        expect((await api(admin, 'GET', `/kms/v1/keys/${key.id as string}`)).status).toBe(404);
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'a bad import id and a data source that matches nothing give readable errors',
    async () => {
      const ws = workspaceFor(cli, kms, uniqueFolder('access-errors'), 'access-errors');
      try {
        ws.write(
          config(`data "kms_symmetric_key" "missing" {
  name = "no-such-key"
}
`),
        );
        await ws.init();
        const plan = await ws.run(['plan', '-no-color', '-input=false'], { expect: 1 });
        expect(plan.stderr).toMatch(/no-such-key/);
        ws.write(
          config(
            keyResource('k', { name: 'x' }),
            `resource "kms_symmetric_key_iam_member" "m" {
  symmetric_key_id = kms_symmetric_key.k.id
  role             = "kms.viewer"
  member           = "userAccount:bob"
}
`,
          ),
        );
        const imported = await ws.run(['import', '-no-color', '-input=false', 'kms_symmetric_key_iam_member.m', 'just-an-id'], { expect: 1 });
        expect(imported.stderr).toMatch(/Invalid import id/);
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
