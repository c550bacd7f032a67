/**
 * PostgreSQL for tests: the run's cluster (started by jest.global-setup.js, URL in
 * KMS_TEST_PG_URL) and one database per daemon data dir, so that every daemon under
 * `KMS_TEST_STORE=postgres` starts as empty as a fresh file store, and a restart on the same data
 * dir finds its state again.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import pg from 'pg';

export function testPgUrl(): string {
  const url = process.env.KMS_TEST_PG_URL;
  if (process.env.KMS_TEST_PG_ERROR !== undefined) throw new Error(process.env.KMS_TEST_PG_ERROR);
  if (url === undefined || url === '') throw new Error('KMS_TEST_PG_URL is not set: jest.global-setup.js starts PostgreSQL (apt-get install postgresql)');
  return url;
}

/** True when the suite runs its daemons on PostgreSQL (`KMS_TEST_STORE=postgres`). */
export function testStoreIsPostgres(): boolean {
  return process.env.KMS_TEST_STORE === 'postgres';
}

export function databaseUrl(name: string): string {
  const url = new URL(testPgUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** Creates database `name` unless it exists; returns its URL. */
export async function ensureDatabase(name: string): Promise<string> {
  const client = new pg.Client({ connectionString: testPgUrl() });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42P04') throw err; // duplicate_database
  } finally {
    await client.end();
  }
  return databaseUrl(name);
}

/** A fresh, empty database with a random name. */
export async function freshDatabase(prefix = 'kms_t'): Promise<string> {
  return ensureDatabase(`${prefix}_${createHash('sha256').update(`${process.pid}-${Math.random()}`).digest('hex').slice(0, 16)}`);
}

/** The database of a daemon data dir under KMS_TEST_STORE=postgres. */
export function databaseForDataDir(dataDir: string): Promise<string> {
  return ensureDatabase(`kms_d_${createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 20)}`);
}

/** `--store URL` for a daemon on `dataDir` when the suite runs on PostgreSQL, else nothing. */
export async function storeArgs(dataDir: string, args: readonly string[] = []): Promise<string[]> {
  if (!testStoreIsPostgres() || args.includes('--store')) return [];
  return ['--store', await databaseForDataDir(dataDir)];
}

/** Runs SQL against a database (tests inspect and provoke the cluster with it). */
export async function sql<R extends pg.QueryResultRow = any>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}
