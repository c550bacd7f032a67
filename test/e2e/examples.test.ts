// The shipped examples work as documented: the HCL one under each CLI, and the CDKTF app
// synthesized with plain node and applied by each CLI.
import { beforeAll, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, Workspace, describeEachCli } from '../support/cli.js';
import type { Kms } from './fixtures.js';
import { E2E_TIMEOUT, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

const CDKTF_MAIN = join(REPO_ROOT, 'dist', 'examples', 'cdktf', 'main.js');
const STACK = 'kms-keys';
const CDKTN_MAIN = join(REPO_ROOT, 'dist', 'examples', 'cdktn', 'main.js');
const CDKTN_STACK = 'kms-envelope';

beforeAll(() => {
  // The example is outside the root tsconfig (examples/ is excluded); it has its own, which
  // emits to dist/examples/cdktf next to the bindings in dist/provider/gen.
  // The cdktn app also type-checks the generated cdktn bindings it imports (provider/gen-cdktn).
  for (const example of ['cdktf', 'cdktn']) {
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'examples', example)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
}, E2E_TIMEOUT);

/** Keys in the examples are protected; lift that through the API so destroy can clean up. */
async function unprotectAll(kms: Kms, ws: Workspace): Promise<void> {
  for (const resource of (await ws.state()).values()) {
    if (resource.type === 'kms_symmetric_key' && resource.values.deletion_protection === true) {
      await kms.rest.updateKey(resource.values.id as string, { deletionProtection: false });
    }
  }
}

describeEachCli('examples', (cli) => {
  const kms = useKms();

  it(
    'examples/terraform/basic applies and then plans clean',
    async () => {
      const folderId = uniqueFolder('ex-hcl');
      const ws = workspaceFor(cli, kms, folderId, 'ex-hcl');
      try {
        ws.write(readFileSync(join(REPO_ROOT, 'examples', 'terraform', 'basic', 'main.tf'), 'utf8'));
        await ws.init();
        await ws.apply(['-var', `folder_id=${folderId}`]);
        const keys = await kms.rest.listKeys(folderId);
        expect(keys.map((k) => k.name).sort()).toEqual(['app-secrets', 'backups']);
        expect(keys.find((k) => k.name === 'app-secrets')).toMatchObject({
          rotationPeriod: '86400s',
          deletionProtection: true,
          defaultAlgorithm: 'AES_256',
          labels: { env: 'prod', owner: 'platform-team' },
        });
        expect(await ws.planExitCode(['-var', `folder_id=${folderId}`])).toBe(0);
        await unprotectAll(kms, ws);
        await ws.destroy(['-var', `folder_id=${folderId}`]);
        expect(await kms.rest.listKeys(folderId)).toEqual([]);
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'examples/cdktf synthesizes with node, applies and then plans clean',
    async () => {
      const folderId = uniqueFolder('ex-cdktf');
      const app = workspaceFor(cli, kms, folderId, 'ex-cdktf');
      try {
        execFileSync(process.execPath, [CDKTF_MAIN], {
          cwd: app.dir,
          env: { ...process.env, CDKTF_OUTDIR: join(app.dir, 'cdktf.out'), KMS_FOLDER_ID: folderId },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const stackDir = join(app.dir, 'cdktf.out', 'stacks', STACK);
        const synthesized = JSON.parse(readFileSync(join(stackDir, 'cdk.tf.json'), 'utf8')) as {
          terraform: { required_providers: Record<string, { source: string }> };
          resource: { kms_symmetric_key: Record<string, Record<string, unknown>> };
        };
        expect(synthesized.terraform.required_providers.kms?.source).toBe('terraform.local/local/kms');
        expect(synthesized.resource.kms_symmetric_key.secrets).toMatchObject({
          rotation_period: '24h',
          deletion_protection: true,
          labels: { env: 'prod', owner: 'platform-team' },
        });
        expect(JSON.stringify(synthesized)).not.toContain(kms.token);

        const stack = new Workspace(cli, { KMS_ENDPOINT: kms.url, KMS_TOKEN: kms.token }, { dir: stackDir });
        await stack.init();
        await stack.apply();
        // cdktf's default local backend keeps the state next to where the app ran.
        expect(existsSync(join(app.dir, `terraform.${STACK}.tfstate`))).toBe(true);
        const keys = await kms.rest.listKeys(folderId);
        expect(keys.map((k) => k.name).sort()).toEqual(['backups', 'secrets']);
        expect(await stack.planExitCode()).toBe(0);
        await unprotectAll(kms, stack);
        await stack.destroy();
        expect(await kms.rest.listKeys(folderId)).toEqual([]);
      } finally {
        app.remove();
      }
    },
    E2E_TIMEOUT,
  );
});

describeEachCli(
  'examples/cdktn',
  (cli) => {
    const kms = useKms();

    it(
      'synthesizes with node, applies an ephemeral data key into a write-only attribute, and plans clean',
      async () => {
        const folderId = uniqueFolder('ex-cdktn');
        const app = workspaceFor(cli, kms, folderId, 'ex-cdktn');
        try {
          execFileSync(process.execPath, [CDKTN_MAIN], {
            cwd: app.dir,
            env: { ...process.env, CDKTN_OUTDIR: join(app.dir, 'cdktn.out'), KMS_FOLDER_ID: folderId },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          const stackDir = join(app.dir, 'cdktn.out', 'stacks', CDKTN_STACK);
          const synthesized = JSON.parse(readFileSync(join(stackDir, 'cdk.tf.json'), 'utf8')) as {
            ephemeral: { kms_data_key: Record<string, Record<string, unknown>> };
            resource: { kms_secret_ciphertext: Record<string, Record<string, unknown>> };
          };
          expect(synthesized.ephemeral.kms_data_key.data_key).toMatchObject({ aad_context: 'app-data-key' });
          expect(synthesized.resource.kms_secret_ciphertext.wrapped_data_key).toMatchObject({
            plaintext_wo: '${ephemeral.kms_data_key.data_key.plaintext}',
            plaintext_wo_version: 1,
          });
          expect(JSON.stringify(synthesized)).not.toContain(kms.token);

          const stack = new Workspace(cli, { KMS_ENDPOINT: kms.url, KMS_TOKEN: kms.token }, { dir: stackDir });
          await stack.init();
          await stack.apply();
          const [key] = await kms.rest.listKeys(folderId);
          expect(key).toMatchObject({ name: 'envelope', rotationPeriod: '2592000s' });
          const resources = [...(await stack.state()).values()];
          const wrapped = resources.find((r) => r.type === 'kms_secret_ciphertext');
          // Only the ciphertext is kept; the write-only plaintext is null in state.
          expect(typeof wrapped?.values.ciphertext).toBe('string');
          expect(wrapped?.values.plaintext_wo ?? null).toBeNull();
          // It decrypts to the data key as the ephemeral resource gave it: base64 of 32 bytes (AES_256).
          const decrypted = await kms.rest.decrypt(key!.id, wrapped!.values.ciphertext as string, 'wrapped-data-key');
          expect(Buffer.from(decrypted.toString('utf8'), 'base64')).toHaveLength(32);
          expect(await stack.planExitCode()).toBe(0);
          await stack.destroy();
        } finally {
          app.remove();
        }
      },
      E2E_TIMEOUT,
    );
  },
  { requires: ['writeOnly', 'ephemeral'] },
);
