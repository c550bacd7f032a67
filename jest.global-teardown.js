// Jest globalTeardown: stops the run's PostgreSQL cluster (jest.global-setup.js started it).
import { rmSync } from 'node:fs';
import process from 'node:process';
import { stopTestPostgres } from './scripts/test-postgres.mjs';

export default function globalTeardown() {
  const dir = process.env.KMS_TEST_PG_DIR;
  if (dir === undefined) return;
  stopTestPostgres(dir);
  rmSync(dir, { recursive: true, force: true });
}
