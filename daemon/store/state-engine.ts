/**
 * The in-memory half of every store: durable tables, layers of accepted-but-not-yet-durable
 * changes, and transactions that edit private copies. Store adapters (./lowdb-store.ts) decide how
 * a layer becomes durable; this file decides what every reader and writer sees.
 *
 *   base        the durable state (frozen records in `Map`s)
 *   layers      changes accepted by `update` but not yet on disk, oldest first: at most the batch
 *               being written and the batch accumulating behind it
 *   transaction sees base + layers + its own draft; its draft becomes the newest layer's changes
 *               when `mutate` returns, or is dropped when it throws
 *
 * `read` sees only `base`, so a change whose write may still fail is never shown to anyone, and
 * a failed write drops its layer and every layer above it (they were computed on top of it).
 * Records are deep-frozen when they enter a layer, so a stray in-place edit of a record obtained
 * by scanning throws instead of changing shared state behind the store's back.
 */
import { TABLE_NAMES, type ReadTable, type StateTx, type StateView, type TableName, type WriteTable } from '../domain/model.js';

/** A deleted record inside a layer or a draft. */
const DELETED: unique symbol = Symbol('deleted');
type Slot = object | typeof DELETED;

/** Changes per table: id → new record, or DELETED. */
export type ChangeSet = Map<TableName, Map<string, Slot>>;

/** A change set as plain data, for journals: records to set and ids to delete, per table. */
export interface ChangeList {
  set: Map<TableName, Map<string, object>>;
  del: Map<TableName, string[]>;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/** One batch of accepted changes and the undo steps of the transactions that made them. */
export class Layer {
  readonly changes: ChangeSet = new Map();
  readonly undo: (() => void)[] = [];

  get empty(): boolean {
    return this.changes.size === 0;
  }

  /** The changes as plain data (records are frozen and may be serialized as they are). */
  list(): ChangeList {
    const list: ChangeList = { set: new Map(), del: new Map() };
    for (const [table, slots] of this.changes) {
      for (const [id, slot] of slots) {
        if (slot === DELETED) {
          let ids = list.del.get(table);
          if (ids === undefined) list.del.set(table, (ids = []));
          ids.push(id);
        } else {
          let records = list.set.get(table);
          if (records === undefined) list.set.set(table, (records = new Map<string, object>()));
          records.set(id, slot);
        }
      }
    }
    return list;
  }
}

export type BaseTables = Map<TableName, Map<string, object>>;

export function emptyTables(): BaseTables {
  return new Map(TABLE_NAMES.map((name) => [name, new Map<string, object>()]));
}

class BaseTable<R> implements ReadTable<R> {
  constructor(private readonly rows: Map<string, object>) {}

  get(id: string): Readonly<R> | undefined {
    return this.rows.get(id) as Readonly<R> | undefined;
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  values(): IterableIterator<Readonly<R>> {
    return this.rows.values() as IterableIterator<Readonly<R>>;
  }

  entries(): IterableIterator<[string, Readonly<R>]> {
    return this.rows.entries() as IterableIterator<[string, Readonly<R>]>;
  }

  get size(): number {
    return this.rows.size;
  }
}

class TxTable<R extends object> implements WriteTable<R> {
  /** This transaction's changes to the table. */
  readonly draft = new Map<string, Slot>();

  constructor(
    private readonly rows: Map<string, object>,
    /** The layers' changes to this table, newest first. */
    private readonly layers: Map<string, Slot>[],
  ) {}

  /** The current value: draft, then layers (newest first), then base. */
  private current(id: string): Slot | undefined {
    const drafted = this.draft.get(id);
    if (drafted !== undefined) return drafted;
    for (const layer of this.layers) {
      const slot = layer.get(id);
      if (slot !== undefined) return slot;
    }
    return this.rows.get(id);
  }

  get(id: string): R | undefined {
    const drafted = this.draft.get(id);
    if (drafted !== undefined) return drafted === DELETED ? undefined : (drafted as R);
    const slot = this.current(id);
    if (slot === undefined || slot === DELETED) return undefined;
    // A private copy: the caller edits it in place, and the edit is this transaction's alone.
    const copy = structuredClone(slot) as R;
    this.draft.set(id, copy);
    return copy;
  }

  has(id: string): boolean {
    const slot = this.current(id);
    return slot !== undefined && slot !== DELETED;
  }

  set(id: string, record: R): void {
    this.draft.set(id, record);
  }

  delete(id: string): boolean {
    const existed = this.has(id);
    this.draft.set(id, DELETED);
    return existed;
  }

  *values(): IterableIterator<Readonly<R>> {
    for (const [, record] of this.entries()) yield record;
  }

  *entries(): IterableIterator<[string, Readonly<R>]> {
    // Base order first (creation order), then records that exist only in layers or the draft.
    // Ids are collected first, so the caller may change the table while iterating.
    const ids: string[] = [...this.rows.keys()];
    const seen = new Set<string>(ids);
    for (const source of [...[...this.layers].reverse(), this.draft]) {
      for (const id of source.keys()) {
        if (seen.has(id)) continue;
        seen.add(id);
        ids.push(id);
      }
    }
    for (const id of ids) {
      const slot = this.current(id);
      if (slot !== undefined && slot !== DELETED) yield [id, slot as Readonly<R>];
    }
  }

  get size(): number {
    let count = 0;
    for (const _ of this.values()) count++;
    return count;
  }
}

/** The durable tables plus pending layers; see the file comment. */
export class StateEngine {
  private readonly view: StateView;
  /** Pending layers, oldest first. */
  private layers: Layer[] = [];

  constructor(private readonly base: BaseTables) {
    for (const rows of base.values()) for (const record of rows.values()) deepFreeze(record);
    const tables = Object.create(null) as Record<TableName, ReadTable<object>>;
    for (const name of TABLE_NAMES) tables[name] = new BaseTable(this.rows(name));
    this.view = tables as unknown as StateView;
  }

  /** The durable state. */
  durable(): StateView {
    return this.view;
  }

  /** The durable tables themselves, for snapshots. Never mutate. */
  tables(): BaseTables {
    return this.base;
  }

  /**
   * Runs `mutate` in a transaction on top of every pending layer and, when it returns, adds its
   * changes to `layer` (the batch accumulating for the next write). Throws what `mutate` throws,
   * after running the undo steps it registered.
   */
  transact<T>(layer: Layer, mutate: (tx: StateTx) => T): T {
    const undo: (() => void)[] = [];
    const txTables = new Map<TableName, TxTable<object>>();
    const newestFirst = [...this.layers].reverse();
    const tx = Object.create(null) as Record<string, unknown>;
    for (const name of TABLE_NAMES) {
      const table = new TxTable<object>(
        this.rows(name),
        newestFirst.map((l) => l.changes.get(name)).filter((m): m is Map<string, Slot> => m !== undefined),
      );
      txTables.set(name, table);
      tx[name] = table;
    }
    tx.onAbort = (step: () => void) => undo.push(step);
    let result: T;
    try {
      result = mutate(tx as unknown as StateTx);
    } catch (err) {
      runUndo(undo);
      throw err;
    }
    for (const [name, table] of txTables) {
      if (table.draft.size === 0) continue;
      let slots = layer.changes.get(name);
      if (slots === undefined) {
        slots = new Map();
        layer.changes.set(name, slots);
      }
      for (const [id, slot] of table.draft) slots.set(id, slot === DELETED ? DELETED : deepFreeze(slot));
    }
    layer.undo.push(...undo);
    return result;
  }

  /** Makes `layer` visible to transactions (it is the newest pending layer from now on). */
  push(layer: Layer): void {
    this.layers.push(layer);
  }

  /** The oldest pending layer is durable: fold it into the base. */
  commitOldest(layer: Layer): void {
    if (this.layers[0] !== layer) throw new Error('layers must commit in order');
    this.layers.shift();
    for (const [name, slots] of layer.changes) {
      const rows = this.rows(name);
      for (const [id, slot] of slots) {
        if (slot === DELETED) rows.delete(id);
        else rows.set(id, slot);
      }
    }
  }

  /**
   * A write failed: drop every pending layer (each built on the failed one) and undo them, newest
   * first. `undo: false` when the write may have committed after all (a connection lost during
   * COMMIT): the side effects stay (an unreferenced HSM object at worst, never a referenced one
   * destroyed).
   */
  abortAll(options: { undo?: boolean } = {}): Layer[] {
    const dropped = this.layers;
    this.layers = [];
    if (options.undo !== false) for (const layer of [...dropped].reverse()) runUndo(layer.undo);
    return dropped;
  }

  private rows(name: TableName): Map<string, object> {
    let rows = this.base.get(name);
    if (rows === undefined) this.base.set(name, (rows = new Map<string, object>()));
    return rows;
  }
}

function runUndo(steps: (() => void)[]): void {
  for (const step of [...steps].reverse()) {
    try {
      step();
    } catch {
      // Best effort: an undo step cleans up side effects (an HSM object) of a change that never
      // became durable; failing to clean up leaves an unreferenced object, not a wrong state.
    }
  }
}
