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
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TestCluster } from '../test/support/cluster.js';
import { REPO_ROOT } from './paths.js';
import { percentile } from './stats.js';

interface TestPostgresModule {
  startTestPostgres(dir: string): Promise<string>;
  stopTestPostgres(dir: string): void;
}

const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'lease-ttl': { type: 'string' }, 'lease-renew': { type: 'string' } } });
const rounds = Number(values.rounds ?? 5);
const ttl = values['lease-ttl'] ?? '15s';
const renew = values['lease-renew'] ?? '5s';

const work = mkdtempSync(join(tmpdir(), 'kms-bench-failover-'));
const pgDir = mkdtempSync(join(tmpdir(), 'kms-bench-pg-'));
const pgModule = (await import(join(REPO_ROOT, 'scripts/test-postgres.mjs'))) as TestPostgresModule;
try {
  const tokens = join(work, 'tokens');
  mkdirSync(tokens);
  writeFileSync(join(work, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = join(work, 'softhsm2.conf');
  process.env.KMS_GRPC_LISTEN = 'off'; // three nodes on one host would fight over 127.0.0.1:8444
  process.env.KMS_TEST_PG_URL = await pgModule.startTestPostgres(pgDir);
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
} finally {
  pgModule.stopTestPostgres(pgDir);
  rmSync(work, { recursive: true, force: true });
  rmSync(pgDir, { recursive: true, force: true });
}
