/**
 * Throughput of 1 vs 3 kmsd nodes on one PostgreSQL (all on this machine): a write (CreateKey:
 * one transaction of three records) and a data-plane call (Encrypt, 256 B, AES_256: no database
 * round trip, one fsynced audit event). The load is spread evenly over the nodes (autocannon,
 * one instance per node at once).
 *
 *   node dist/bench/cluster.js [--seconds 8] [--connections 24]
 *
 * Starts its own PostgreSQL (scripts/test-postgres.mjs) and SoftHSM2 token directory.
 */
import autocannon from 'autocannon';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { TestCluster, request } from '../test/support/cluster.js';
import { inClusterEnvironment } from './cluster-env.js';


const { values } = parseArgs({ options: { seconds: { type: 'string' }, connections: { type: 'string' } } });
const seconds = Number(values.seconds ?? 8);
const connections = Number(values.connections ?? 24);

async function load(cluster: TestCluster, path: (i: number) => string, body: string): Promise<number> {
  const per = Math.max(1, Math.floor(connections / cluster.nodes.length));
  const runs = cluster.nodes.map((node, i) =>
    autocannon({
      url: `${node.daemon.url}${path(i)}`,
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' },
      body,
      connections: per,
      duration: seconds,
    }),
  );
  const results = await Promise.all(runs);
  for (const r of results) if (r.non2xx > 0) throw new Error(`${r.non2xx} failed requests`);
  return results.reduce((sum, r) => sum + r['2xx'] / r.duration, 0);
}

async function measure(nodes: number): Promise<{ createKey: number; encrypt: number }> {
  const cluster = await TestCluster.start(nodes);
  try {
    const keyIds: string[] = [];
    for (const node of cluster.nodes) {
      const key = await request({ url: node.daemon.url, token: cluster.token }, 'POST', '/kms/v1/keys', { folderId: 'bench', defaultAlgorithm: 'AES_256' });
      keyIds.push(key.body.response.id as string);
    }
    const encryptBody = JSON.stringify({ plaintext: Buffer.alloc(256, 7).toString('base64') });
    await load(cluster, (i) => `/kms/v1/keys/${keyIds[i]!}:encrypt`, encryptBody); // warm-up
    const encrypt = await load(cluster, (i) => `/kms/v1/keys/${keyIds[i]!}:encrypt`, encryptBody);
    const createKey = await load(cluster, () => '/kms/v1/keys', JSON.stringify({ folderId: 'bench-writes' }));
    return { createKey, encrypt };
  } finally {
    await cluster.stop();
  }
}

await inClusterEnvironment('cluster', async () => {
  const one = await measure(1);
  const three = await measure(3);
  const line = (name: string, a: number, b: number) => `| ${name} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(2)}× |`;
  process.stdout.write(
    [
      `${cpus().length} CPUs, ${connections} connections spread over the nodes, ${seconds} s per figure`,
      '',
      '| calls/s | 1 node | 3 nodes | 3 vs 1 |',
      '| --- | ---: | ---: | ---: |',
      line('CreateKey (one PostgreSQL transaction)', one.createKey, three.createKey),
      line('Encrypt 256 B (no database round trip)', one.encrypt, three.encrypt),
      '',
    ].join('\n'),
  );
});
