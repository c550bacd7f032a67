// Jest globalSetup: one SoftHSM2 configuration and token directory for the whole test run.
//
// SoftHSM2 reads SOFTHSM2_CONF from the real process environment, once, at C_Initialize. Inside a
// test file `process.env` is jest's copy, and writes to it never reach the C library, so the
// variable has to be in the environment before jest forks its workers: here. Each test file (and
// each daemon data dir, see daemon/keystore/softhsm.ts) uses its own token label in this shared
// directory. The directory is removed when the jest process exits.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { startTestPostgres, stopTestPostgres } from './scripts/test-postgres.mjs';

export default async function globalSetup() {
  // Every temp dir the run makes (tests' data dirs, daemons', plugins' sockets, terraform's) goes
  // under one directory, removed when the jest process exits: a green CI run used to leave 369
  // dirs (132 MB) in /tmp, as most tests never remove what they make (and a failing one cannot).
  const base = os.tmpdir();
  const runTmp = mkdtempSync(path.join(base, 'kms-jest-tmp-'));
  process.env.TMPDIR = runTmp;
  process.on('exit', () => rmSync(runTmp, { recursive: true, force: true }));

  const dir = mkdtempSync(path.join(base, 'kms-jest-softhsm-'));
  const tokens = path.join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = path.join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    { mode: 0o600 },
  );
  // Deliberately overrides a SOFTHSM2_CONF from the developer's shell: tests must not create
  // tokens in someone's real token directory.
  process.env.SOFTHSM2_CONF = conf;
  process.env.KMS_TEST_SOFTHSM_DIR = dir;
  // kmsd's gRPC listener defaults to 127.0.0.1:8444; parallel test daemons would fight over it.
  // Tests that use gRPC ask for it with --grpc-listen 127.0.0.1:0 (test/support/grpc.ts).
  process.env.KMS_GRPC_LISTEN = 'off';
  // The provider plugins the e2e tests start keep their V8 code cache in the run's temp dir, not
  // in the user's ~/.cache/terraform-provider-kms.
  process.env.KMS_PLUGIN_CACHE_DIR = path.join(dir, 'plugin-cache');
  // Every daemon of the suite checks each 2xx answer against the schema /openapi.json documents
  // for it (a mismatch is a 500 the test sees): the whole suite validates the responses.
  process.env.KMS_TEST_CHECK_RESPONSES = '1';
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  // One throw-away PostgreSQL cluster on a loopback port for the run (the cluster tests, and every
  // daemon under KMS_TEST_STORE=postgres, each on its own database). Stopped in globalTeardown.
  const pgDir = mkdtempSync(path.join(base, 'kms-jest-pg-'));
  process.env.KMS_TEST_PG_DIR = pgDir;
  try {
    process.env.KMS_TEST_PG_URL = await startTestPostgres(pgDir);
  } catch (err) {
    // The tests that need PostgreSQL fail with this reason (test/support/postgres.ts); the rest run.
    process.env.KMS_TEST_PG_ERROR = `could not start the test PostgreSQL: ${err instanceof Error ? err.message : String(err)}`;
  }
  process.on('exit', () => {
    stopTestPostgres(pgDir);
    rmSync(pgDir, { recursive: true, force: true });
  });
}
