// Resource identity (Terraform >= 1.12, OpenTofu >= 1.12): keys and access bindings made through
// the REST API are imported with `import { identity = {…} }`, then plan clean; the state keeps
// the identity next to the values.
import { expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeEachCli } from '../support/cli.js';
import { api } from '../support/daemon.js';
import { E2E_TIMEOUT, config, keyResource, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

describeEachCli(
  'import by resource identity',
  (cli) => {
    const kms = useKms();

    it(
      'imports a key, a binding and a member by identity, then plans no changes',
      async () => {
        const admin = { url: kms.url, token: kms.token };
        const folderId = uniqueFolder('ident');
        const key = await kms.rest.createKey({ folderId, name: 'by-identity', labels: { origin: 'rest' }, rotationPeriod: '86400s' });
        const delta = (roleId: string, id: string) => ({ action: 'ADD', accessBinding: { roleId, subject: { type: 'userAccount', id } } });
        const granted = await api(admin, 'POST', `/kms/v1/keys/${key.id}:updateAccessBindings`, {
          accessBindingDeltas: [delta('kms.keys.encrypter', 'alice'), delta('kms.viewer', 'bob')],
        });
        expect(granted.status).toBe(200);

        const blocks = [
          keyResource('k', { name: 'by-identity', labels: { origin: 'rest' }, rotation_period: '24h' }),
          `resource "kms_symmetric_key_iam_binding" "enc" {
  symmetric_key_id = kms_symmetric_key.k.id
  role             = "kms.keys.encrypter"
  members          = ["userAccount:alice"]
}

resource "kms_symmetric_key_iam_member" "viewer" {
  symmetric_key_id = kms_symmetric_key.k.id
  role             = "kms.viewer"
  member           = "userAccount:bob"
}
`,
        ];
        const imports = `import {
  to       = kms_symmetric_key.k
  identity = { id = ${JSON.stringify(key.id)} }
}

import {
  to       = kms_symmetric_key_iam_binding.enc
  identity = { symmetric_key_id = ${JSON.stringify(key.id)}, role = "kms.keys.encrypter" }
}

import {
  to       = kms_symmetric_key_iam_member.viewer
  identity = { symmetric_key_id = ${JSON.stringify(key.id)}, role = "kms.viewer", member = "userAccount:bob" }
}
`;
        const ws = workspaceFor(cli, kms, folderId, 'ident');
        try {
          ws.write(config(...blocks, imports));
          await ws.init();
          const { code, plan } = await ws.savedPlan();
          expect(code).toBe(2);
          for (const change of plan.resource_changes ?? []) expect([change.address, change.change.actions]).toEqual([change.address, ['no-op']]);
          expect((plan.resource_changes ?? []).map((c) => c.address).sort()).toEqual([
            'kms_symmetric_key.k',
            'kms_symmetric_key_iam_binding.enc',
            'kms_symmetric_key_iam_member.viewer',
          ]);
          await ws.run(['apply', '-no-color', '-input=false', 'tfplan']);

          const state = await ws.state();
          expect(state.get('kms_symmetric_key.k')!.values).toMatchObject({ id: key.id, folder_id: folderId, rotation_period: '24h' });
          expect(state.get('kms_symmetric_key_iam_binding.enc')!.values.members).toEqual(['userAccount:alice']);
          const raw = JSON.parse(readFileSync(join(ws.dir, 'terraform.tfstate'), 'utf8')) as {
            resources: { type: string; instances: { identity?: Record<string, string>; identity_schema_version?: number }[] }[];
          };
          const identities = Object.fromEntries(raw.resources.map((r) => [r.type, r.instances[0]?.identity]));
          expect(identities).toEqual({
            kms_symmetric_key: { id: key.id },
            kms_symmetric_key_iam_binding: { symmetric_key_id: key.id, role: 'kms.keys.encrypter' },
            kms_symmetric_key_iam_member: { symmetric_key_id: key.id, role: 'kms.viewer', member: 'userAccount:bob' },
          });

          ws.write(config(...blocks));
          expect(await ws.planExitCode()).toBe(0);
          await ws.destroy();
          expect(await kms.rest.getKey(key.id)).toBeUndefined();
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );

    it(
      'refuses an identity without its required attribute, naming it',
      async () => {
        const ws = workspaceFor(cli, kms, uniqueFolder('ident-bad'), 'ident-bad');
        try {
          ws.write(config(keyResource('k', { name: 'x' }), `import {\n  to       = kms_symmetric_key.k\n  identity = { id = "" }\n}\n`));
          await ws.init();
          const plan = await ws.run(['plan', '-no-color', '-input=false'], { expect: 1 });
          expect(plan.stderr).toMatch(/Invalid import identity|identity\.id/);
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );
  },
  { requires: 'identity' },
);
