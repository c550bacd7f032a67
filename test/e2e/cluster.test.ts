// The provider against a three-node cluster on PostgreSQL: `apply` against node A, then `plan`
// against node B (and C) is clean — every node serves what another wrote. One CLI (the first of
// the matrix found) is enough here: the cluster is the subject, not the CLI versions.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Workspace, availableClis } from '../support/cli.js';
import { TestCluster, eventually, request } from '../support/cluster.js';
import { E2E_TIMEOUT, config, keyResource, uniqueFolder } from './fixtures.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(3);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('terraform against a PostgreSQL cluster', () => {
  it(
    'apply against node A, then plan against node B and C: no changes',
    async () => {
      const cli = availableClis()[0];
      if (cli === undefined) throw new Error('no terraform or tofu CLI found (see test/support/clis.ts)');
      const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
      const folder = uniqueFolder('cluster');
      const env = (url: string) => ({ KMS_ENDPOINT: url, KMS_TOKEN: cluster.token, KMS_FOLDER_ID: folder });
      const onA = new Workspace(cli, env(a.daemon.url), { prefix: `${cli.name}-cluster` });
      try {
        onA.write(
          config(
            keyResource('one', { name: 'one', labels: { env: 'prod' }, rotation_period: '24h' }),
            keyResource('two', { name: 'two', description: 'second', default_algorithm: 'AES_256', deletion_protection: false }),
          ),
        );
        await onA.init();
        await onA.apply();
        const state = await onA.state();
        const ids = [...state.values()].map((r) => r.values.id as string);
        expect(ids).toHaveLength(2);
        // Within the consistency window every node has both keys.
        for (const node of [b, c]) {
          await eventually(
            async () => {
              const list = await request({ url: node.daemon.url, token: cluster.token }, 'GET', `/kms/v1/keys?folderId=${folder}`);
              return ids.every((id) => (list.body.keys as { id: string }[]).some((k) => k.id === id));
            },
            5000,
            `the keys on ${node.name}`,
          );
        }
        for (const node of [b, c]) {
          const other = new Workspace(cli, env(node.daemon.url), { dir: onA.dir });
          expect(await other.planExitCode()).toBe(0);
        }
        // A change applied through B is what A then plans against: again clean.
        const onB = new Workspace(cli, env(b.daemon.url), { dir: onA.dir });
        onB.write(
          config(
            keyResource('one', { name: 'one', labels: { env: 'staging' }, rotation_period: '24h' }),
            keyResource('two', { name: 'two', description: 'second', default_algorithm: 'AES_256', deletion_protection: false }),
          ),
        );
        await onB.apply();
        await eventually(async () => {
          const key = await request({ url: a.daemon.url, token: cluster.token }, 'GET', `/kms/v1/keys/${state.get('kms_symmetric_key.one')!.values.id as string}`);
          return key.body.labels?.env === 'staging';
        }, 5000, 'the change on node A');
        expect(await onA.planExitCode()).toBe(0);
      } finally {
        onA.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
