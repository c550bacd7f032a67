/**
 * The `Store` port on lowdb 7: the only file that imports lowdb. The state lives in memory
 * (lowdb's `data`); every update is committed to `<data-dir>/kms.json` through the durable adapter,
 * with group commit: updates that arrive while a write is in flight share the next write.
 */
import { Low } from 'lowdb';
import { join } from 'node:path';
import { CURRENT_SCHEMA_VERSION, emptyState, type KmsState } from '../domain/model.js';
import type { Store } from '../domain/ports.js';
import { DurableJsonFile } from './durable-file.js';

export const DATA_FILE = 'kms.json';

/** Start-up refused because the data file cannot be trusted. The message says what to do. */
export class CorruptDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptDataError';
  }
}

export async function openLowdbStore(dataDir: string): Promise<Store> {
  const path = join(dataDir, DATA_FILE);
  const db = new Low<KmsState>(new DurableJsonFile(path, (text) => parseState(path, text)), emptyState());
  await db.read();
  const store = new LowdbStore(db);
  return store;
}

class LowdbStore implements Store {
  /** The write in flight, if any. */
  private writing: Promise<void> | null = null;
  /** The write that will start after the one in flight: every update since then waits on it. */
  private next: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly db: Low<KmsState>) {}

  read<T>(query: (state: Readonly<KmsState>) => T): T {
    return query(this.db.data);
  }

  update<T>(mutate: (state: KmsState) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    let result: T;
    try {
      result = mutate(this.db.data);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.commit().then(() => result);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.next?.catch(() => undefined);
    await this.writing?.catch(() => undefined);
  }

  /** Resolves when a write that began after this call has completed. */
  private commit(): Promise<void> {
    if (this.next !== null) return this.next;
    const previous = this.writing ?? Promise.resolve();
    // Start after the current write and after this tick, so that every update made in the
    // meantime lands in the same write.
    const write = previous
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        this.next = null;
        this.writing = write;
        return this.db.write();
      })
      .finally(() => {
        if (this.writing === write) this.writing = null;
      });
    this.next = write;
    return write;
  }
}

function parseState(path: string, text: string): KmsState {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CorruptDataError(
      `data file ${path} is not valid JSON (${(err as Error).message}); refusing to start. ` +
        'Restore it from a backup or move it away to start empty; kmsd never resets it silently.',
    );
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new CorruptDataError(`data file ${path} does not hold a JSON object; refusing to start`);
  }
  const state = data as Partial<KmsState>;
  if (state.schemaVersion !== CURRENT_SCHEMA_VERSION) {
    throw new CorruptDataError(
      `data file ${path} has schemaVersion ${JSON.stringify(state.schemaVersion)}, ` +
        `this kmsd understands ${CURRENT_SCHEMA_VERSION}; refusing to start`,
    );
  }
  for (const table of ['keys', 'versions', 'operations', 'tokens', 'serviceAccounts', 'accessBindings'] as const) {
    const value = state[table];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new CorruptDataError(`data file ${path} is missing its "${table}" table; refusing to start`);
    }
  }
  return state as KmsState;
}
