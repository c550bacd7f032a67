// Create → clean plan → in-place update → replace → import → destroy, under each real CLI.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Workspace } from '../support/cli.js';
import { actionsByAddress, describeEachCli } from '../support/cli.js';
import type { Kms } from './fixtures.js';
import { E2E_TIMEOUT, config, keyResource, startKms, uniqueFolder, workspaceFor } from './fixtures.js';

describeEachCli('kms_symmetric_key lifecycle', (cli) => {
  let kms: Kms;
  let ws: Workspace;
  const folderId = uniqueFolder('life');
  const otherFolder = uniqueFolder('life-moved');
  const ids: { main?: string; moved?: string; legacy?: string; adopted?: string } = {};

  const initial = {
    name: 'orders',
    description: 'Orders service key',
    labels: { env: 'test', team: 'payments' },
    rotation_period: '24h',
    deletion_protection: false,
  };

  beforeAll(async () => {
    kms = await startKms();
    ws = workspaceFor(cli, kms, folderId, 'life');
  }, E2E_TIMEOUT);

  afterAll(async () => {
    await kms?.stop();
    ws?.remove();
  });

  describe('create', () => {
    it(
      'inits offline from the mirror, plans a create and applies it',
      async () => {
        ws.write(config(keyResource('main', initial)));
        const init = await ws.init();
        expect(init.stdout).toMatch(/terraform\.local\/local\/kms/);
        expect(init.stdout).toMatch(/Installed terraform\.local\/local\/kms v0\.1\.0/);

        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(2);
        expect(actionsByAddress(plan.resource_changes)).toEqual({ 'kms_symmetric_key.main': ['create'] });

        await ws.apply();
        const state = await ws.state();
        const key = state.get('kms_symmetric_key.main')!.values;
        expect(key).toMatchObject({
          ...initial,
          folder_id: folderId,
          default_algorithm: 'AES_128',
          status: 'ACTIVE',
          rotated_at: null,
        });
        expect(key.id).toEqual(expect.any(String));
        expect(key.primary_version_id).toEqual(expect.any(String));
        expect(key.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
        ids.main = key.id as string;

        const remote = await kms.rest.getKey(ids.main);
        expect(remote).toMatchObject({
          folderId,
          name: 'orders',
          labels: initial.labels,
          rotationPeriod: '86400s',
          deletionProtection: false,
        });
      },
      E2E_TIMEOUT,
    );

    it('plans no changes right after apply', async () => {
      expect(await ws.planExitCode()).toBe(0);
    }, E2E_TIMEOUT);
  });

  describe('update in place', () => {
    it(
      'changes name, description, labels, rotation_period, default_algorithm and status without replacing',
      async () => {
        const updated = {
          ...initial,
          name: 'orders-v2',
          description: 'Orders service key (renamed)',
          labels: { env: 'prod', owner: 'payments' },
          rotation_period: '48h',
          default_algorithm: 'AES_256',
          status: 'INACTIVE',
        };
        ws.write(config(keyResource('main', updated)));
        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(2);
        expect(actionsByAddress(plan.resource_changes)).toEqual({ 'kms_symmetric_key.main': ['update'] });

        await ws.apply();
        const key = (await ws.state()).get('kms_symmetric_key.main')!.values;
        expect(key).toMatchObject({ ...updated, id: ids.main });
        expect(await kms.rest.getKey(ids.main!)).toMatchObject({
          name: 'orders-v2',
          description: 'Orders service key (renamed)',
          labels: { env: 'prod', owner: 'payments' },
          rotationPeriod: '172800s',
          defaultAlgorithm: 'AES_256',
          status: 'INACTIVE',
        });
        expect(await ws.planExitCode()).toBe(0);

        // And back to ACTIVE with the rotation period removed.
        const reactivated: Record<string, unknown> = { ...updated, status: 'ACTIVE' };
        delete reactivated.rotation_period;
        ws.write(config(keyResource('main', reactivated as typeof updated)));
        await ws.apply();
        const remote = await kms.rest.getKey(ids.main!);
        expect(remote?.status).toBe('ACTIVE');
        expect(remote?.rotationPeriod ?? null).toBeNull();
        expect((await ws.state()).get('kms_symmetric_key.main')!.values.rotation_period).toBeNull();
        expect(await ws.planExitCode()).toBe(0);
      },
      E2E_TIMEOUT,
    );
  });

  describe('replace', () => {
    it(
      'replaces the key when folder_id changes',
      async () => {
        ws.write(config(keyResource('main', { ...initial, folder_id: otherFolder })));
        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(2);
        const change = plan.resource_changes!.find((c) => c.address === 'kms_symmetric_key.main')!;
        expect(change.change.actions).toEqual(['delete', 'create']);
        expect(change.change.replace_paths).toEqual([['folder_id']]);

        await ws.apply();
        const key = (await ws.state()).get('kms_symmetric_key.main')!.values;
        expect(key.folder_id).toBe(otherFolder);
        expect(key.id).not.toBe(ids.main);
        expect(await kms.rest.getKey(ids.main!)).toBeUndefined();
        ids.moved = key.id as string;
        expect(await ws.planExitCode()).toBe(0);
      },
      E2E_TIMEOUT,
    );
  });

  describe('import', () => {
    it(
      'imports a key created through the REST API with `import` and then plans clean',
      async () => {
        const created = await kms.rest.createKey({
          folderId,
          name: 'legacy',
          description: 'made by hand',
          labels: { origin: 'rest' },
          rotationPeriod: '86400s',
          defaultAlgorithm: 'AES_192',
        });
        ids.legacy = created.id;
        const legacy = keyResource('legacy', {
          name: 'legacy',
          description: 'made by hand',
          labels: { origin: 'rest' },
          // Written differently from the API's "86400s": equal durations must not diff.
          rotation_period: '24h',
          default_algorithm: 'AES_192',
        });
        ws.write(config(keyResource('main', { ...initial, folder_id: otherFolder }), legacy));
        await ws.run(['import', '-no-color', '-input=false', 'kms_symmetric_key.legacy', created.id]);
        const imported = (await ws.state()).get('kms_symmetric_key.legacy')!.values;
        expect(imported).toMatchObject({ id: created.id, folder_id: folderId, name: 'legacy', labels: { origin: 'rest' } });
        expect(await ws.planExitCode()).toBe(0);
      },
      E2E_TIMEOUT,
    );

    it(
      'imports with an import block, plans it as an import and no change',
      async () => {
        const created = await kms.rest.createKey({ folderId, name: 'adopted', deletionProtection: false });
        ids.adopted = created.id;
        const blocks = [
          keyResource('main', { ...initial, folder_id: otherFolder }),
          keyResource('legacy', {
            name: 'legacy',
            description: 'made by hand',
            labels: { origin: 'rest' },
            rotation_period: '24h',
            default_algorithm: 'AES_192',
          }),
          keyResource('adopted', { name: 'adopted' }),
          `import {\n  to = kms_symmetric_key.adopted\n  id = ${JSON.stringify(created.id)}\n}\n`,
        ];
        ws.write(config(...blocks));
        const { code, plan } = await ws.savedPlan();
        // Importing counts as a change for -detailed-exitcode; the action itself is a no-op.
        expect(code).toBe(2);
        const change = plan.resource_changes!.find((c) => c.address === 'kms_symmetric_key.adopted')!;
        expect(change.change.actions).toEqual(['no-op']);
        expect(change.change.importing).toEqual({ id: created.id });
        await ws.apply();
        expect((await ws.state()).get('kms_symmetric_key.adopted')!.values.id).toBe(created.id);
        ws.write(config(...blocks.slice(0, 3)));
        expect(await ws.planExitCode()).toBe(0);
      },
      E2E_TIMEOUT,
    );
  });

  describe('destroy', () => {
    it(
      'destroys every key it manages',
      async () => {
        await ws.destroy();
        expect((await ws.state()).size).toBe(0);
        for (const id of [ids.moved!, ids.legacy!, ids.adopted!]) expect(await kms.rest.getKey(id)).toBeUndefined();
      },
      E2E_TIMEOUT,
    );
  });
});
