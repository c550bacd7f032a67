/**
 * API tokens. Only the SHA-256 of a token is stored; the value is shown once (or written once to
 * `<data-dir>/admin.token` for the bootstrap admin) and never logged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { BOOTSTRAP_ADMIN } from './access.js';
import type { TokenRecord } from './model.js';
import type { Caller, Clock, IdGenerator, Store } from './ports.js';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 32 random bytes, base64url, with a prefix that secret scanners can recognise. */
export function newToken(): string {
  return `kms_${randomBytes(32).toString('base64url')}`;
}

export function tokenAuthenticator(store: Store): (token: string) => Caller | null {
  return (token) => {
    const record = store.read((state) => state.tokens[hashToken(token)]);
    return record === undefined ? null : { subject: record.subject };
  };
}

/**
 * Makes sure the bootstrap admin token is registered. Returns the token value when a new one
 * was generated (the caller writes it to admin.token), or null when `given` was used or an admin
 * token already exists.
 */
export async function ensureBootstrapToken(store: Store, clock: Clock, ids: IdGenerator, given: string | undefined): Promise<string | null> {
  const record = (description: string): TokenRecord => ({ id: ids.next(), subject: BOOTSTRAP_ADMIN, createdAt: clock.now().toISOString(), description });
  if (given !== undefined && given !== '') {
    const hash = hashToken(given);
    await store.update((state) => {
      state.tokens[hash] ??= record('bootstrap (KMS_BOOTSTRAP_TOKEN)');
    });
    return null;
  }
  const hasAdmin = store.read((state) => Object.values(state.tokens).some((t) => t.subject === BOOTSTRAP_ADMIN && t.description === 'bootstrap'));
  if (hasAdmin) return null;
  const token = newToken();
  await store.update((state) => {
    state.tokens[hashToken(token)] = record('bootstrap');
  });
  return token;
}
