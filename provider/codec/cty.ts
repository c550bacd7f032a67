/**
 * cty types (the JSON form used in schema attribute `type`) and type-directed conversion of
 * decoded wire data into {@link TfValue}s.
 *
 * Everything arriving from core is checked against the schema type here, so a malformed value
 * becomes an error with an attribute path instead of an object with holes (a decode failure is
 * never an empty object).
 */
import { isUnknown, UNKNOWN, type TfObject, type TfValue } from './values.js';

/** A cty type in its JSON form: `"string"`, `["map","string"]`, `["object",{…}]`, … */
export type CtyType =
  | 'string'
  | 'number'
  | 'bool'
  | 'dynamic'
  | readonly ['list' | 'set' | 'map', CtyType]
  | readonly ['object', Readonly<Record<string, CtyType>>]
  | readonly ['tuple', readonly CtyType[]];

/** One step of an attribute path: an attribute name, a map key or a list index. */
export type PathStep = { attribute: string } | { key: string } | { index: number };

/** A value that does not fit its schema type; carries the path to the offending element. */
export class CodecError extends Error {
  constructor(
    message: string,
    readonly path: PathStep[] = [],
  ) {
    super(message);
    this.name = 'CodecError';
  }
}

/** The cty type JSON bytes, as GetProviderSchema's `Schema.Attribute.type` wants them. */
export function ctyTypeJson(type: CtyType): Buffer {
  return Buffer.from(JSON.stringify(type), 'utf8');
}

/** Parse and check a cty type JSON value (as found in a `providers schema -json` document). */
export function parseCtyType(raw: unknown): CtyType {
  if (raw === 'string' || raw === 'number' || raw === 'bool' || raw === 'dynamic') return raw;
  if (Array.isArray(raw) && raw.length === 2) {
    const [kind, arg] = raw as [unknown, unknown];
    if (kind === 'list' || kind === 'set' || kind === 'map') return [kind, parseCtyType(arg)];
    if (kind === 'object' && typeof arg === 'object' && arg !== null && !Array.isArray(arg)) {
      const attrs: Record<string, CtyType> = {};
      for (const [name, t] of Object.entries(arg)) attrs[name] = parseCtyType(t);
      return ['object', attrs];
    }
    if (kind === 'tuple' && Array.isArray(arg)) return ['tuple', arg.map(parseCtyType)];
  }
  throw new Error(`unsupported cty type ${JSON.stringify(raw)}`);
}

/** Options of {@link conformValue}. */
export interface ConformOptions {
  /**
   * Drop object attributes the type does not declare instead of failing. Used for stored state
   * (an older schema may have had more attributes); never for values core builds from the schema.
   */
  ignoreUnknownAttributes?: boolean;
  /** Accept the unknown sentinel (false for state, which can never hold unknowns). */
  allowUnknown?: boolean;
}

function describe(raw: unknown): string {
  if (raw === null || raw === undefined) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (raw instanceof Uint8Array) return 'binary data';
  return typeof raw === 'object' ? 'an object' : `a ${typeof raw}`;
}

function stepFor(type: CtyType, key: string | number): PathStep {
  if (typeof key === 'number') return { index: key };
  return Array.isArray(type) && type[0] === 'map' ? { key } : { attribute: key };
}

function mismatch(what: string, raw: unknown): CodecError {
  return new CodecError(`expected ${what}, got ${describe(raw)}`);
}

/** Puts `step` in front of the path of an error coming out of an element (built only on failure). */
function within(err: unknown, step: PathStep): unknown {
  if (err instanceof CodecError) err.path.unshift(step);
  return err;
}

const NUMERIC = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * Check decoded data against a cty type and turn it into a {@link TfValue}. Missing object
 * attributes become null (core and stored state both omit nothing, but JSON state may). An error
 * carries the path to the offending element after `path`.
 */
export function conformValue(raw: unknown, type: CtyType, options: ConformOptions = {}, path: PathStep[] = []): TfValue {
  try {
    return conform(raw, type, options);
  } catch (err) {
    if (err instanceof CodecError && path.length > 0) err.path.unshift(...path);
    throw err;
  }
}

/** {@link conformValue} without a path: each container adds its step to an error on the way out. */
function conform(raw: unknown, type: CtyType, options: ConformOptions): TfValue {
  if (raw === null || raw === undefined) return null;
  if (isUnknown(raw)) {
    if (options.allowUnknown === false) throw new CodecError('unknown value where only known values are allowed');
    return UNKNOWN;
  }
  if (type === 'string') {
    if (typeof raw === 'string') return raw;
    throw mismatch('a string', raw);
  }
  if (type === 'bool') {
    if (typeof raw === 'boolean') return raw;
    throw mismatch('a bool', raw);
  }
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return Number(raw);
    // Numbers beyond 2^53 travel as decimal strings.
    if (typeof raw === 'string' && NUMERIC.test(raw)) return Number(raw);
    throw mismatch('a number', raw);
  }
  if (type === 'dynamic') throw new CodecError('dynamic values are not supported');
  const [kind, arg] = type;
  if (kind === 'list' || kind === 'set' || kind === 'tuple') {
    if (!Array.isArray(raw)) throw mismatch(`a ${kind}`, raw);
    if (kind === 'tuple' && raw.length !== arg.length) throw mismatch(`a tuple of ${arg.length} elements`, raw);
    const items: unknown[] = raw;
    const out = new Array<TfValue>(items.length);
    for (let i = 0; i < items.length; i++) {
      try {
        out[i] = conform(items[i], kind === 'tuple' ? (arg[i] as CtyType) : arg, options);
      } catch (err) {
        throw within(err, stepFor(type, i));
      }
    }
    return out;
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array) throw mismatch(kind === 'map' ? 'a map' : 'an object', raw);
  const input = raw as Record<string, unknown>;
  const out: TfObject = {};
  if (kind === 'map') {
    for (const k of Object.keys(input)) {
      try {
        out[k] = conform(input[k], arg, options);
      } catch (err) {
        throw within(err, { key: k });
      }
    }
    return out;
  }
  const attributes = arg as Readonly<Record<string, CtyType>>;
  if (!options.ignoreUnknownAttributes) {
    for (const name of Object.keys(input)) {
      if (!Object.hasOwn(attributes, name)) throw new CodecError(`unsupported attribute "${name}"`, [{ attribute: name }]);
    }
  }
  for (const name of Object.keys(attributes)) {
    try {
      out[name] = conform(input[name], attributes[name] as CtyType, options);
    } catch (err) {
      throw within(err, { attribute: name });
    }
  }
  return out;
}
