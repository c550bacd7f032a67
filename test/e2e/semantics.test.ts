// Value semantics users rely on: equal durations, {} vs omitted labels, empty label values,
// deletion protection.
import { expect, it } from '@jest/globals';
import { describeEachCli } from '../support/cli.js';
import { E2E_TIMEOUT, config, keyResource, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

describeEachCli('kms_symmetric_key value semantics', (cli) => {
  const kms = useKms();

  it(
    'never diffs between equal rotation periods ("24h", "1440m", "86400s")',
    async () => {
      const ws = workspaceFor(cli, kms, uniqueFolder('dur'), 'dur');
      try {
        ws.write(config(keyResource('k', { name: 'durations', rotation_period: '24h' })));
        await ws.init();
        await ws.apply();
        for (const written of ['1440m', '86400s', '24h0m0s', '24h']) {
          ws.write(config(keyResource('k', { name: 'durations', rotation_period: written })));
          expect({ written, code: await ws.planExitCode() }).toEqual({ written, code: 0 });
          await ws.apply();
          // Stored as first written: the equal value in config keeps the prior state.
          expect((await ws.state()).get('kms_symmetric_key.k')!.values.rotation_period).toBe('24h');
        }
        // A different duration is a real change.
        ws.write(config(keyResource('k', { name: 'durations', rotation_period: '25h' })));
        expect(await ws.planExitCode()).toBe(2);
        await ws.destroy();
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'keeps labels = {} and omitted labels as configured, and accepts empty label values',
    async () => {
      const folderId = uniqueFolder('labels');
      const ws = workspaceFor(cli, kms, folderId, 'labels');
      try {
        ws.write(
          config(
            keyResource('empty_map', { name: 'empty-map', labels: {} }),
            keyResource('omitted', { name: 'omitted' }),
            keyResource('empty_value', { name: 'empty-value', labels: { env: '', team: 'core' } }),
          ),
        );
        await ws.init();
        await ws.apply();
        let state = await ws.state();
        expect(state.get('kms_symmetric_key.empty_map')!.values.labels).toEqual({});
        expect(state.get('kms_symmetric_key.omitted')!.values.labels).toBeNull();
        expect(state.get('kms_symmetric_key.empty_value')!.values.labels).toEqual({ env: '', team: 'core' });
        const remote = await kms.rest.getKey(state.get('kms_symmetric_key.empty_value')!.values.id as string);
        expect(remote?.labels).toEqual({ env: '', team: 'core' });
        expect(await ws.planExitCode()).toBe(0);

        // Swapping {} and omitted is an in-place update each way, then clean again.
        ws.write(
          config(
            keyResource('empty_map', { name: 'empty-map' }),
            keyResource('omitted', { name: 'omitted', labels: {} }),
            keyResource('empty_value', { name: 'empty-value', labels: { env: '', team: 'core' } }),
          ),
        );
        const { code, plan } = await ws.savedPlan();
        expect(code).toBe(2);
        const actions = Object.fromEntries(plan.resource_changes!.map((c) => [c.address, c.change.actions]));
        expect(actions).toEqual({
          'kms_symmetric_key.empty_map': ['update'],
          'kms_symmetric_key.omitted': ['update'],
          'kms_symmetric_key.empty_value': ['no-op'],
        });
        await ws.apply();
        state = await ws.state();
        expect(state.get('kms_symmetric_key.empty_map')!.values.labels).toBeNull();
        expect(state.get('kms_symmetric_key.omitted')!.values.labels).toEqual({});
        expect(await ws.planExitCode()).toBe(0);
        await ws.destroy();
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'refuses to destroy a key with deletion_protection = true, with a readable error',
    async () => {
      const ws = workspaceFor(cli, kms, uniqueFolder('protect'), 'protect');
      try {
        ws.write(config(keyResource('guarded', { name: 'guarded', deletion_protection: true })));
        await ws.init();
        await ws.apply();
        const id = (await ws.state()).get('kms_symmetric_key.guarded')!.values.id as string;

        const refused = await ws.destroy([], { expect: 1 });
        const output = refused.stdout + refused.stderr;
        expect(output).toMatch(/Error: /);
        expect(output).toMatch(/deletion[ _]protection/i);
        expect(output).toContain('kms_symmetric_key.guarded');
        expect(await kms.rest.getKey(id)).toBeDefined();
        expect((await ws.state()).has('kms_symmetric_key.guarded')).toBe(true);

        ws.write(config(keyResource('guarded', { name: 'guarded', deletion_protection: false })));
        await ws.apply();
        expect((await kms.rest.getKey(id))?.deletionProtection).toBe(false);
        await ws.destroy();
        expect(await kms.rest.getKey(id)).toBeUndefined();
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
