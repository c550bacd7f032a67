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

/**
 * Check decoded data against a cty type and turn it into a {@link TfValue}. Missing object
 * attributes become null (core and stored state both omit nothing, but JSON state may).
 */
export function conformValue(raw: unknown, type: CtyType, options: ConformOptions = {}, path: PathStep[] = []): TfValue {
  if (raw === null || raw === undefined) return null;
  if (isUnknown(raw)) {
    if (options.allowUnknown === false) throw new CodecError('unknown value where only known values are allowed', path);
    return UNKNOWN;
  }
  const fail = (what: string): never => {
    throw new CodecError(`expected ${what}, got ${describe(raw)}`, path);
  };
  if (type === 'string') return typeof raw === 'string' ? raw : fail('a string');
  if (type === 'bool') return typeof raw === 'boolean' ? raw : fail('a bool');
  if (type === 'number') {
    if (typeof raw === 'number') return raw;
    if (typeof raw === 'bigint') return Number(raw);
    // Numbers beyond 2^53 travel as decimal strings.
    if (typeof raw === 'string' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw)) return Number(raw);
    return fail('a number');
  }
  if (type === 'dynamic') throw new CodecError('dynamic values are not supported', path);
  const [kind, arg] = type;
  if (kind === 'list' || kind === 'set' || kind === 'tuple') {
    if (!Array.isArray(raw)) return fail(`a ${kind}`);
    if (kind === 'tuple' && raw.length !== arg.length) return fail(`a tuple of ${arg.length} elements`);
    return raw.map((item: unknown, i) =>
      conformValue(item, kind === 'tuple' ? (arg[i] as CtyType) : arg, options, [...path, stepFor(type, i)]),
    );
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw instanceof Uint8Array) return fail(kind === 'map' ? 'a map' : 'an object');
  const input = raw as Record<string, unknown>;
  const out: TfObject = {};
  if (kind === 'map') {
    for (const [k, v] of Object.entries(input)) out[k] = conformValue(v, arg, options, [...path, { key: k }]);
    return out;
  }
  const attributes = arg as Readonly<Record<string, CtyType>>;
  for (const name of Object.keys(input)) {
    if (!Object.hasOwn(attributes, name) && !options.ignoreUnknownAttributes) {
      throw new CodecError(`unsupported attribute "${name}"`, [...path, { attribute: name }]);
    }
  }
  for (const [name, attrType] of Object.entries(attributes)) {
    out[name] = conformValue(input[name], attrType, options, [...path, { attribute: name }]);
  }
  return out;
}
