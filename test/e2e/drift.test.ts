// Changes made outside Terraform (through the REST API) show up in the next plan — exactly
// them, nothing more.
import { expect, it } from '@jest/globals';
import { actionsByAddress, describeEachCli } from '../support/cli.js';
import { E2E_TIMEOUT, config, keyResource, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

describeEachCli('drift detection', (cli) => {
  const kms = useKms();

  it(
    'detects a key changed and a key deleted through the REST API',
    async () => {
      const ws = workspaceFor(cli, kms, uniqueFolder('drift'), 'drift');
      try {
        const blocks = [
          keyResource('changed', { name: 'changed', labels: { env: 'prod' }, rotation_period: '24h' }),
          keyResource('deleted', { name: 'deleted' }),
          keyResource('untouched', { name: 'untouched', labels: { env: 'prod' } }),
        ];
        ws.write(config(...blocks));
        await ws.init();
        await ws.apply();
        const state = await ws.state();
        const id = (address: string): string => state.get(address)!.values.id as string;

        await kms.rest.updateKey(id('kms_symmetric_key.changed'), {
          name: 'renamed-by-hand',
          labels: { env: 'dev' },
          rotationPeriod: '3600s',
        });
        await kms.rest.deleteKey(id('kms_symmetric_key.deleted'));

        expect(await ws.planExitCode()).toBe(2);
        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(2);
        expect(actionsByAddress(plan.resource_changes)).toEqual({
          'kms_symmetric_key.changed': ['update'],
          'kms_symmetric_key.deleted': ['create'],
          'kms_symmetric_key.untouched': ['no-op'],
        });
        const changed = plan.resource_changes!.find((c) => c.address === 'kms_symmetric_key.changed')!.change;
        expect(changed.before).toMatchObject({ id: id('kms_symmetric_key.changed'), name: 'renamed-by-hand', labels: { env: 'dev' } });
        expect(changed.after).toMatchObject({ id: id('kms_symmetric_key.changed'), name: 'changed', labels: { env: 'prod' } });
        // The API's "3600s" differs from the configured "24h", so it is part of the update.
        expect(changed.before?.rotation_period).not.toBe('24h');
        expect(changed.after?.rotation_period).toBe('24h');

        // The refresh itself is reported as drift: the edit as an update, the deletion as a delete.
        expect(actionsByAddress(plan.resource_drift)).toEqual({
          'kms_symmetric_key.changed': ['update'],
          'kms_symmetric_key.deleted': ['delete'],
        });

        await ws.apply();
        expect(await ws.planExitCode()).toBe(0);
        const after = await ws.state();
        expect(after.get('kms_symmetric_key.deleted')!.values.id).not.toBe(id('kms_symmetric_key.deleted'));
        expect(await kms.rest.getKey(id('kms_symmetric_key.changed'))).toMatchObject({
          name: 'changed',
          labels: { env: 'prod' },
          rotationPeriod: '86400s',
        });
        await ws.destroy();
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'reports no drift when the API returns an equal duration in another spelling',
    async () => {
      const ws = workspaceFor(cli, kms, uniqueFolder('drift-eq'), 'drift-eq');
      try {
        ws.write(config(keyResource('k', { name: 'k', rotation_period: '90m' })));
        await ws.init();
        await ws.apply();
        const id = (await ws.state()).get('kms_symmetric_key.k')!.values.id as string;
        // Re-set through the API to the same period (the API spells it "5400s").
        await kms.rest.updateKey(id, { rotationPeriod: '5400s' });
        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(0);
        expect(plan.resource_drift ?? []).toEqual([]);
        await ws.destroy();
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
