// The store's in-memory engine: what readers and transactions see, rollback, freezing, and ids
// that are names of Object.prototype members.
import { describe, expect, it } from '@jest/globals';
import type { KeyRecord, StateTx } from '../../daemon/domain/model.js';
import { Layer, StateEngine, emptyTables } from '../../daemon/store/state-engine.js';

function key(id: string, name = id): KeyRecord {
  return {
    id,
    folderId: 'f',
    createdAt: '2026-01-01T00:00:00.000Z',
    name,
    description: '',
    labels: {},
    status: 'ACTIVE',
    primaryVersionId: 'v',
    defaultAlgorithm: 'AES_128',
    deletionProtection: false,
  };
}

function engineWith(...ids: string[]): StateEngine {
  const tables = emptyTables();
  for (const id of ids) tables.get('keys')?.set(id, key(id));
  return new StateEngine(tables);
}

/** One accepted-but-not-durable batch, the way the store makes them. */
function pending(engine: StateEngine): Layer {
  const layer = new Layer();
  engine.push(layer);
  return layer;
}

describe('StateEngine', () => {
  it('readers see only durable state; transactions see pending layers too', () => {
    const engine = engineWith('a');
    const layer = pending(engine);
    engine.transact(layer, (tx) => tx.keys.set('b', key('b')));
    expect(engine.durable().keys.has('b')).toBe(false);
    expect(engine.transact(new Layer(), (tx) => tx.keys.has('b'))).toBe(true);
    engine.commitOldest(layer);
    expect(engine.durable().keys.get('b')?.name).toBe('b');
  });

  it('a transaction edits a private copy; the durable record changes only on commit', () => {
    const engine = engineWith('a');
    const layer = pending(engine);
    engine.transact(layer, (tx) => {
      const record = tx.keys.get('a');
      if (record === undefined) throw new Error('missing');
      record.name = 'renamed';
    });
    expect(engine.durable().keys.get('a')?.name).toBe('a');
    engine.commitOldest(layer);
    expect(engine.durable().keys.get('a')?.name).toBe('renamed');
  });

  it('a throwing mutation keeps nothing and runs its undo steps', () => {
    const engine = engineWith('a');
    const layer = pending(engine);
    const undone: string[] = [];
    expect(() =>
      engine.transact(layer, (tx: StateTx) => {
        tx.keys.set('b', key('b'));
        tx.onAbort(() => undone.push('b'));
        throw new Error('precondition');
      }),
    ).toThrow('precondition');
    expect(layer.empty).toBe(true);
    expect(undone).toEqual(['b']);
    expect(engine.transact(new Layer(), (tx) => tx.keys.has('b'))).toBe(false);
  });

  it('a failed write drops every pending layer, newest first, and undoes them', () => {
    const engine = engineWith();
    const undone: string[] = [];
    const first = pending(engine);
    engine.transact(first, (tx) => {
      tx.keys.set('one', key('one'));
      tx.onAbort(() => undone.push('one'));
    });
    const second = pending(engine);
    engine.transact(second, (tx) => {
      // Built on the first layer: it must go too.
      const one = tx.keys.get('one');
      if (one !== undefined) one.description = 'seen';
      tx.keys.set('two', key('two'));
      tx.onAbort(() => undone.push('two'));
    });
    expect(engine.abortAll()).toHaveLength(2);
    expect(undone).toEqual(['two', 'one']);
    expect(engine.transact(new Layer(), (tx) => [...tx.keys.values()].length)).toBe(0);
  });

  it('records are frozen once accepted: an in-place edit of a scanned record throws', () => {
    const engine = engineWith('a');
    expect(() => {
      (engine.durable().keys.get('a') as KeyRecord).name = 'x';
    }).toThrow(TypeError);
    expect(() =>
      engine.transact(new Layer(), (tx) => {
        for (const record of tx.keys.values()) (record as KeyRecord).labels.x = 'y';
      }),
    ).toThrow(TypeError);
  });

  it('deletes are visible to later transactions and become durable on commit', () => {
    const engine = engineWith('a', 'b');
    const layer = pending(engine);
    expect(engine.transact(layer, (tx) => tx.keys.delete('a'))).toBe(true);
    expect(engine.transact(new Layer(), (tx) => [...tx.keys.values()].map((k) => k.id))).toEqual(['b']);
    expect(engine.transact(new Layer(), (tx) => tx.keys.get('a'))).toBeUndefined();
    engine.commitOldest(layer);
    expect([...engine.durable().keys.values()].map((k) => k.id)).toEqual(['b']);
  });

  it('scans keep creation order: durable first, then new records in the order they were made', () => {
    const engine = engineWith('a', 'b');
    const first = pending(engine);
    engine.transact(first, (tx) => tx.keys.set('c', key('c')));
    const second = pending(engine);
    engine.transact(second, (tx) => {
      tx.keys.set('d', key('d'));
      const a = tx.keys.get('a');
      if (a !== undefined) a.name = 'a2';
    });
    expect(engine.transact(new Layer(), (tx) => [...tx.keys.values()].map((k) => k.name))).toEqual(['a2', 'b', 'c', 'd']);
  });

  it.each(['constructor', '__proto__', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'])('"%s" is an ordinary id', (id) => {
    const engine = engineWith();
    expect(engine.durable().keys.get(id)).toBeUndefined();
    expect(engine.durable().keys.has(id)).toBe(false);
    const layer = pending(engine);
    engine.transact(layer, (tx) => tx.keys.set(id, key(id)));
    engine.commitOldest(layer);
    expect(engine.durable().keys.get(id)?.id).toBe(id);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).name).toBeUndefined();
  });
});
