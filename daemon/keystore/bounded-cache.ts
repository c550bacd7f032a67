/**
 * A small LRU map with a hard size bound and an absolute time-to-live per entry, calling
 * `onEvict` for every value that leaves it (evicted, expired, deleted or cleared). The keystore
 * keeps unwrapped key handles in it; `onEvict` is where they are destroyed, so "bounded and
 * short-lived" is enforced in one place instead of at every call site.
 */
export interface BoundedCacheOptions<V> {
  /** Most entries kept; inserting one more evicts the least recently used. */
  maxEntries: number;
  /** Milliseconds after insertion at which an entry is dropped, however often it is used. */
  ttlMs: number;
  /** Called exactly once for each value that leaves the cache. Must not throw. */
  onEvict: (value: V) => void;
  /** Injectable for tests. */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class BoundedCache<K, V> {
  // Map iteration order is insertion order; re-inserting on access makes it LRU order.
  private readonly entries = new Map<K, Entry<V>>();
  private readonly now: () => number;
  private nextSweepAt: number;

  constructor(private readonly options: BoundedCacheOptions<V>) {
    if (!(options.maxEntries >= 1) || !(options.ttlMs > 0)) {
      throw new RangeError('BoundedCache needs maxEntries >= 1 and ttlMs > 0');
    }
    this.now = options.now ?? Date.now;
    this.nextSweepAt = this.now() + options.ttlMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The live value for `key`, or undefined (an expired entry is evicted on the way). */
  get(key: K): V | undefined {
    const now = this.now();
    this.sweepIfDue(now);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Inserts or replaces (the replaced value is evicted), then enforces the size bound. */
  set(key: K, value: V): void {
    const now = this.now();
    this.delete(key);
    this.entries.set(key, { value, expiresAt: now + this.options.ttlMs });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
    this.sweepIfDue(now);
  }

  /** Removes and evicts `key`; true when something was there. */
  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.options.onEvict(entry.value);
    return true;
  }

  /** Evicts everything. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.delete(key);
  }

  // Without a timer (which would keep the process alive and need its own shutdown), expired
  // entries nobody asks for would otherwise live until pushed out by size; an O(n) sweep at most
  // once per TTL, piggy-backed on normal use, bounds their lifetime to about 2×TTL.
  private sweepIfDue(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + this.options.ttlMs;
    for (const [key, entry] of [...this.entries]) {
      if (entry.expiresAt <= now) this.delete(key);
    }
  }
}
