/**
 * The wire types (generated from the protos into ./wire.gen.ts) and how a writer narrows them:
 * proto3 JSON makes every field optional; a daemon view or a client that knows the daemon always
 * writes a field says so with `Present`, and the field's type still comes from the proto.
 */
export type * from './wire.gen.js';

/** `T` with the fields `K` always present (their types unchanged but for `undefined`). */
export type Present<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };
