// Write-only plaintext: `plaintext_wo` reaches the daemon at create and nothing of it reaches the
// plan or the state; `plaintext_wo_version` re-encrypts. On CLIs without write-only attributes
// (Terraform < 1.11, OpenTofu < 1.11) validate refuses it with a message saying what to use.
import { expect, it } from '@jest/globals';
import { join } from 'node:path';
import { actionsByAddress, describeEachCli } from '../support/cli.js';
import { zipText } from '../support/zip.js';
import { E2E_TIMEOUT, config, keyResource, stateFiles, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

const SECRETS = ['wo-first-correct-horse', 'wo-second-battery-staple'];

/**
 * The secret comes from an ephemeral variable (Terraform >= 1.10, OpenTofu >= 1.11), as it would
 * in real use: a literal would sit in the configuration section of every plan, and a plain
 * variable's value is saved in the plan file.
 */
function secretHcl(version: number, ephemeralVariable = true): string {
  return config(
    keyResource('k', { name: 'write-only' }),
    `variable "secret" {
  type      = string
  sensitive = true${ephemeralVariable ? '\n  ephemeral = true' : ''}
}

resource "kms_secret_ciphertext" "s" {
  key_id               = kms_symmetric_key.k.id
  aad_context          = "db"
  plaintext_wo         = var.secret
  plaintext_wo_version = ${version}
}
`,
  );
}

const withSecret = (secret: string) => ({ env: { TF_VAR_secret: secret } });

describeEachCli(
  'write-only plaintext_wo',
  (cli) => {
    const kms = useKms();

    it(
      'keeps the plaintext out of plan and state, re-encrypts on a new version, and the ciphertext decrypts with the AAD',
      async () => {
        const ws = workspaceFor(cli, kms, uniqueFolder('wo'), 'wo');
        try {
          ws.write(secretHcl(1));
          await ws.init();
          const first = await ws.savedPlan([], withSecret(SECRETS[0]!));
          expect(first.code).toBe(2);
          expect(JSON.stringify(first.plan)).not.toContain(SECRETS[0]);
          expect(zipText(join(ws.dir, 'tfplan'))).not.toContain(SECRETS[0]);
          // An ephemeral variable is not saved in the plan: apply needs it again.
          await ws.run(['apply', '-no-color', '-input=false', 'tfplan'], withSecret(SECRETS[0]!));

          const raw = stateFiles(ws);
          expect(raw).toContain('"plaintext_wo": null');
          expect(raw).not.toContain(SECRETS[0]);
          const shown = await ws.run(['show', '-no-color', '-json']);
          expect(shown.stdout).not.toContain(SECRETS[0]);
          const secret = (await ws.state()).get('kms_secret_ciphertext.s')!.values;
          expect(secret).toMatchObject({ plaintext_wo: null, plaintext: null, plaintext_wo_version: 1 });
          const keyId = (await ws.state()).get('kms_symmetric_key.k')!.values.id as string;
          expect((await kms.rest.decrypt(keyId, secret.ciphertext as string, 'db')).toString()).toBe(SECRETS[0]);
          expect(await ws.planExitCode([], withSecret(SECRETS[0]!))).toBe(0);

          // A new value with the same version is invisible to Terraform (by design): no change.
          expect(await ws.planExitCode([], withSecret(SECRETS[1]!))).toBe(0);

          // Bumping the version replaces the ciphertext with one of the current value.
          ws.write(secretHcl(2));
          const bumped = await ws.savedPlan([], withSecret(SECRETS[1]!));
          expect(actionsByAddress(bumped.plan.resource_changes)).toEqual({ 'kms_symmetric_key.k': ['no-op'], 'kms_secret_ciphertext.s': ['delete', 'create'] });
          expect(JSON.stringify(bumped.plan)).not.toContain(SECRETS[1]);
          expect(zipText(join(ws.dir, 'tfplan'))).not.toContain(SECRETS[1]);
          await ws.run(['apply', '-no-color', '-input=false', 'tfplan'], withSecret(SECRETS[1]!));
          const renewed = (await ws.state()).get('kms_secret_ciphertext.s')!.values;
          expect(renewed.ciphertext).not.toBe(secret.ciphertext);
          expect((await kms.rest.decrypt(keyId, renewed.ciphertext as string, 'db')).toString()).toBe(SECRETS[1]);
          const after = stateFiles(ws);
          for (const s of SECRETS) expect(after).not.toContain(s);
          await ws.destroy([], withSecret(SECRETS[1]!));
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );
  },
  { requires: ['writeOnly', 'ephemeral'] },
);

describeEachCli(
  'write-only plaintext_wo on a CLI without write-only attributes',
  (cli) => {
    const kms = useKms();

    it(
      'is refused at validate, pointing at plaintext_wo and naming plaintext as the alternative; nothing is stored',
      async () => {
        const ws = workspaceFor(cli, kms, uniqueFolder('wo-old'), 'wo-old');
        try {
          // A plain variable: these CLIs have no ephemeral variables either.
          ws.write(secretHcl(1, false));
          await ws.init();
          const validate = await ws.run(['validate', '-no-color'], { expect: 1, ...withSecret(SECRETS[0]!) });
          expect(validate.stderr).toContain('Error: Write-only attribute not supported');
          expect(validate.stderr).toMatch(/plaintext_wo\s+= var\.secret/);
          expect(validate.stderr).toMatch(/Terraform\s+>=\s+1\.11 or\s+OpenTofu\s+>=\s+1\.11/);
          expect(validate.stderr).toMatch(/Use\s+plaintext\s+instead/);
          const plan = await ws.run(['plan', '-no-color', '-input=false'], { expect: 1, ...withSecret(SECRETS[0]!) });
          expect(plan.stderr).toContain('Write-only attribute not supported');
          expect(stateFiles(ws)).not.toContain(SECRETS[0]);
        } finally {
          ws.remove();
        }
      },
      E2E_TIMEOUT,
    );
  },
  { lacks: 'writeOnly' },
);
