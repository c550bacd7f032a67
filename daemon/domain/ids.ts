import { randomBytes } from 'node:crypto';
import type { IdGenerator } from './ports.js';

const ALPHABET = 'abcdefghijklmnopqrstuv0123456789';

/**
 * Yandex-style resource ids: a 3-letter service prefix and 17 random base32 characters
 * (85 bits of randomness), 20 characters in all, lowercase, safe in URLs and paths.
 */
export function randomIds(prefix = 'abj'): IdGenerator {
  return {
    next(): string {
      const bytes = randomBytes(17);
      let id = prefix;
      for (const byte of bytes) id += ALPHABET[byte & 31];
      return id;
    },
  };
}

/** Ids accepted in paths and bodies: what we generate, and what Yandex documents (≤ 50 chars). */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,49}$/;
