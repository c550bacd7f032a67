/**
 * API tokens. Only the SHA-256 of a token is stored; the value is shown once (or written once to
 * `<data-dir>/admin.token` for the bootstrap admin) and never logged.
 */
import { hash, randomBytes } from 'node:crypto';
import { BOOTSTRAP_ADMIN } from './access.js';
import type { TokenRecord } from './model.js';
import type { Caller, Clock, IdGenerator, Store } from './ports.js';

export function hashToken(token: string): string {
  // One-shot hashing (node ≥ 20.12): no Hash object per request on the data plane.
  return hash('sha256', token, 'hex');
}

/** 32 random bytes, base64url, with a prefix that secret scanners can recognise. */
export function newToken(): string {
  return `kms_${randomBytes(32).toString('base64url')}`;
}

/** IAM tokens (IamTokenService.Create) live this long, as Yandex Cloud's do (at most 12 hours). */
export const IAM_TOKEN_LIFETIME_SECONDS = 12 * 3600;
/** Live IAM tokens per API token; the oldest is revoked when another is made. */
export const MAX_IAM_TOKENS_PER_TOKEN = 32;

export function tokenAuthenticator(store: Store, now: () => Date = () => new Date()): (token: string) => Caller | null {
  return (token) => {
    const record = store.read((state) => state.tokens.get(hashToken(token)));
    if (record === undefined) return null;
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now().getTime()) return null;
    return { subject: record.subject };
  };
}

/** What `ensureBootstrapToken` did. */
export interface BootstrapResult {
  /** The new token's value when one was generated (the caller writes it to admin.token). */
  generated: string | null;
  /** Earlier bootstrap tokens revoked because KMS_BOOTSTRAP_TOKEN names another one. */
  revoked: number;
}

/** Descriptions that mark the bootstrap admin's tokens. */
const BOOTSTRAP_FROM_ENV = 'bootstrap (KMS_BOOTSTRAP_TOKEN)';
const BOOTSTRAP_GENERATED = 'bootstrap';

/**
 * Makes sure exactly the right bootstrap admin token is registered.
 *
 * - `given` (KMS_BOOTSTRAP_TOKEN): it is registered, and every other bootstrap token (an earlier
 *   KMS_BOOTSTRAP_TOKEN or a generated one) is revoked: changing the variable rotates the token.
 * - nothing given: an existing bootstrap token is kept; with none, one is generated.
 */
export async function ensureBootstrapToken(store: Store, clock: Clock, ids: IdGenerator, given: string | undefined): Promise<BootstrapResult> {
  const record = (description: string): TokenRecord => ({ id: ids.next(), subject: BOOTSTRAP_ADMIN, createdAt: clock.now().toISOString(), description });
  const isBootstrap = (t: Readonly<TokenRecord>) =>
    t.subject === BOOTSTRAP_ADMIN && (t.description === BOOTSTRAP_FROM_ENV || t.description === BOOTSTRAP_GENERATED);
  if (given !== undefined && given !== '') {
    const hash = hashToken(given);
    const stale = store.read((state) => [...state.tokens.entries()].filter(([h, t]) => h !== hash && isBootstrap(t)).map(([h]) => h));
    const known = store.read((state) => state.tokens.has(hash));
    if (stale.length === 0 && known) return { generated: null, revoked: 0 };
    await store.update((state) => {
      for (const h of stale) state.tokens.delete(h);
      if (!state.tokens.has(hash)) state.tokens.set(hash, record(BOOTSTRAP_FROM_ENV));
    });
    return { generated: null, revoked: stale.length };
  }
  const hasAdmin = store.read((state) => [...state.tokens.values()].some(isBootstrap));
  if (hasAdmin) return { generated: null, revoked: 0 };
  const token = newToken();
  await store.update((state) => {
    state.tokens.set(hashToken(token), record(BOOTSTRAP_GENERATED));
  });
  return { generated: token, revoked: 0 };
}
