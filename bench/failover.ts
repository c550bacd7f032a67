/**
 * Failover time with the default leader lease (15 s TTL, renewed every 5 s): three kmsd nodes
 * on one PostgreSQL, the leader killed with SIGKILL, the time until another node answers 200 to
 * `/healthz?leader`; then the killed node is restarted and the next round begins. The CI test
 * (test/integration/cluster.failover.test.ts) measures the same with a 2 s lease, 50 times.
 *
 *   node dist/bench/failover.js [--rounds 5] [--lease-ttl 15s] [--lease-renew 5s]
 *
 * Starts its own PostgreSQL (scripts/test-postgres.mjs) and SoftHSM2 token directory.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TestCluster } from '../test/support/cluster.js';
import { inClusterEnvironment } from './cluster-env.js';
import { percentile } from './stats.js';


const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'lease-ttl': { type: 'string' }, 'lease-renew': { type: 'string' } } });
const rounds = Number(values.rounds ?? 5);
const ttl = values['lease-ttl'] ?? '15s';
const renew = values['lease-renew'] ?? '5s';

await inClusterEnvironment('failover', async () => {
  // (later arguments win: these replace the short test lease of TestCluster)
  const cluster = await TestCluster.start(3, ['--lease-ttl', ttl, '--lease-renew', renew]);
  const times: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const { node: leader } = await cluster.waitForLeader(cluster.alive(), 60_000);
      const killedAt = performance.now();
      await leader.daemon.kill();
      const { node: next, at } = await cluster.waitForLeader(
        cluster.alive().filter((n) => n !== leader),
        60_000,
      );
      times.push(at - killedAt);
      process.stderr.write(`round ${round + 1}: ${leader.name} killed, ${next.name} leads after ${(at - killedAt).toFixed(0)} ms\n`);
      await cluster.restart(leader);
    }
  } finally {
    await cluster.stop();
  }
  const sorted = [...times].sort((a, b) => a - b);
  process.stdout.write(
    `lease TTL ${ttl}, renew ${renew}, ${rounds} kill -9 failovers of the leader: ` +
      `median ${percentile(sorted, 50).toFixed(0)} ms, min ${sorted[0]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms\n`,
  );
});
