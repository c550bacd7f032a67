import { describe, it, expect } from '@jest/globals';
import { BoundedCache } from '../../daemon/keystore/bounded-cache.js';

function cache(maxEntries: number, ttlMs: number) {
  let now = 0;
  const evicted: string[] = [];
  const c = new BoundedCache<string, string>({ maxEntries, ttlMs, onEvict: (v) => void evicted.push(v), now: () => now });
  return { c, evicted, advance: (ms: number) => void (now += ms) };
}

describe('BoundedCache', () => {
  it('evicts the least recently used entry beyond maxEntries', () => {
    const { c, evicted } = cache(2, 1000);
    c.set('a', 'A');
    c.set('b', 'B');
    expect(c.get('a')).toBe('A'); // a is now most recent
    c.set('c', 'C');
    expect(evicted).toEqual(['B']);
    expect(c.size).toBe(2);
    expect(c.get('b')).toBeUndefined();
  });

  it('drops entries at their TTL even when used, and sweeps ones nobody asks for', () => {
    const { c, evicted, advance } = cache(10, 1000);
    c.set('a', 'A');
    c.set('b', 'B');
    advance(500);
    expect(c.get('a')).toBe('A');
    advance(500);
    expect(c.get('a')).toBeUndefined();
    expect(evicted).toContain('A');
    advance(1000);
    c.set('c', 'C'); // triggers the periodic sweep
    expect(evicted).toEqual(expect.arrayContaining(['A', 'B']));
    expect(c.size).toBe(1);
  });

  it('calls onEvict exactly once per value: replace, delete, clear', () => {
    const { c, evicted } = cache(10, 1000);
    c.set('a', 'A1');
    c.set('a', 'A2');
    expect(c.delete('a')).toBe(true);
    expect(c.delete('a')).toBe(false);
    c.set('b', 'B');
    c.clear();
    expect(evicted).toEqual(['A1', 'A2', 'B']);
    expect(c.size).toBe(0);
  });

  it('rejects nonsensical bounds', () => {
    expect(() => new BoundedCache({ maxEntries: 0, ttlMs: 1, onEvict: () => undefined })).toThrow(RangeError);
    expect(() => new BoundedCache({ maxEntries: 1, ttlMs: 0, onEvict: () => undefined })).toThrow(RangeError);
  });
});
