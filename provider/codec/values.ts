/**
 * The in-memory model of Terraform values exchanged over the plugin protocol.
 *
 * A value is null, a primitive, a list, a string-keyed object/map, or {@link UNKNOWN}. Unknown is
 * its own sentinel and never null: Terraform distinguishes "not set" (null) from "known only after
 * apply" (unknown), and conflating them produces plans core rejects.
 */

/** The class of the single unknown sentinel; compare with {@link isUnknown}. */
export class UnknownValue {
  private constructor() {}
  /** The one instance. */
  static readonly instance = new UnknownValue();
  toString(): string {
    return '<unknown>';
  }
  toJSON(): string {
    return '<unknown>';
  }
}

/** A value that will be known only after apply. */
export const UNKNOWN: UnknownValue = UnknownValue.instance;

/** Any Terraform value. */
export type TfValue = null | UnknownValue | string | number | boolean | TfValue[] | TfObject;

/** An object or map value: attribute name (or map key) to value. */
export interface TfObject {
  [key: string]: TfValue;
}

/** True for the unknown sentinel. */
export function isUnknown(value: unknown): value is UnknownValue {
  return value instanceof UnknownValue;
}

/** True for a plain object/map value (not null, not unknown, not a list). */
export function isObject(value: TfValue | undefined): value is TfObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isUnknown(value);
}

/** True when the value and everything inside it is known. */
export function isWhollyKnown(value: TfValue): boolean {
  if (isUnknown(value)) return false;
  if (Array.isArray(value)) return value.every(isWhollyKnown);
  if (isObject(value)) return Object.values(value).every(isWhollyKnown);
  return true;
}

/** Structural equality of two values; unknown equals only unknown. */
export function valuesEqual(a: TfValue, b: TfValue): boolean {
  if (a === b) return true;
  if (isUnknown(a) || isUnknown(b)) return isUnknown(a) && isUnknown(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => valuesEqual(item, b[i] as TfValue));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => Object.hasOwn(b, k) && valuesEqual(a[k] as TfValue, b[k] as TfValue));
  }
  return false;
}
