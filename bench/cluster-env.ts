/**
 * What the cluster benches (./cluster.ts, ./failover.ts) run in: their own PostgreSQL
 * (scripts/test-postgres.mjs, in a temp dir of its own: it belongs to the postgres OS user when
 * run as root), their own SoftHSM2 token directory, and gRPC off (several nodes on one host would
 * fight over 127.0.0.1:8444). Removed again when `run` ends, however it ends.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

interface TestPostgresModule {
  startTestPostgres(dir: string): Promise<string>;
  stopTestPostgres(dir: string): void;
}

export async function inClusterEnvironment<T>(name: string, run: () => Promise<T>): Promise<T> {
  const work = mkdtempSync(join(tmpdir(), `kms-bench-${name}-`));
  const pgDir = mkdtempSync(join(tmpdir(), 'kms-bench-pg-'));
  const pgModule = (await import(join(REPO_ROOT, 'scripts/test-postgres.mjs'))) as TestPostgresModule;
  try {
    const tokens = join(work, 'tokens');
    mkdirSync(tokens);
    writeFileSync(join(work, 'softhsm2.conf'), `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env.SOFTHSM2_CONF = join(work, 'softhsm2.conf');
    process.env.KMS_GRPC_LISTEN = 'off';
    process.env.KMS_TEST_PG_URL = await pgModule.startTestPostgres(pgDir);
    return await run();
  } finally {
    pgModule.stopTestPostgres(pgDir);
    rmSync(work, { recursive: true, force: true });
    rmSync(pgDir, { recursive: true, force: true });
  }
}
