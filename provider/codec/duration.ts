/**
 * Go-style durations (`"24h"`, `"1h30m"`, `"86400s"`) as users write them, and the
 * `"<seconds>s"` form of the REST API (protobuf JSON Duration).
 */

const NANOS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_NANOS = (1n << 63n) - 1n;

/** A duration string that Go's time.ParseDuration would refuse. */
export class DurationSyntaxError extends Error {
  constructor(input: string, reason: string) {
    super(`invalid duration ${JSON.stringify(input)}: ${reason}`);
    this.name = 'DurationSyntaxError';
  }
}

/**
 * Parse a duration exactly as Go's `time.ParseDuration` does, returning nanoseconds.
 * A sequence of decimal numbers with optional fraction and a unit: ns, us (µs), ms, s, m, h.
 */
export function parseGoDuration(input: string): bigint {
  let s = input;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new DurationSyntaxError(input, 'empty');
  let total = 0n;
  const term = /^(\d*)(?:\.(\d*))?([^\d.]+)/;
  while (s !== '') {
    const m = term.exec(s);
    if (!m) throw new DurationSyntaxError(input, 'expected a number followed by a unit such as h, m or s');
    const [whole, intPart = '', fracPart, unit = ''] = m;
    if (intPart === '' && (fracPart === undefined || fracPart === '')) {
      throw new DurationSyntaxError(input, 'expected a number before the unit');
    }
    const perUnit = NANOS_PER_UNIT[unit];
    if (perUnit === undefined) throw new DurationSyntaxError(input, `unknown unit "${unit}" (use ns, us, ms, s, m or h)`);
    let nanos = BigInt(intPart === '' ? '0' : intPart) * perUnit;
    if (fracPart) nanos += (BigInt(fracPart) * perUnit) / 10n ** BigInt(fracPart.length);
    total += nanos;
    if (total > MAX_NANOS) throw new DurationSyntaxError(input, 'too large');
    s = s.slice(whole.length);
  }
  return negative ? -total : total;
}

/**
 * Seconds of a Go-style duration, or an error message. Only whole seconds are accepted because
 * the API stores rotation periods in seconds.
 */
export function goDurationSeconds(input: string): { seconds: number } | { error: string } {
  let nanos: bigint;
  try {
    nanos = parseGoDuration(input);
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (nanos % 1_000_000_000n !== 0n) return { error: `duration ${JSON.stringify(input)} is not a whole number of seconds` };
  return { seconds: Number(nanos / 1_000_000_000n) };
}

/** The API form: `"86400s"`. */
export function toApiDuration(seconds: number): string {
  return `${seconds}s`;
}

/** Seconds of an API duration (`"86400s"`, `"1.5s"`), or undefined when malformed. */
export function parseApiDuration(value: string): number | undefined {
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(value);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** A compact Go-style rendering of whole seconds: 86400 → "24h", 5400 → "1h30m", 0 → "0s". */
export function formatGoDuration(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0) return `${seconds}s`;
  if (seconds === 0) return '0s';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** True when two Go-style durations denote the same length of time ("24h" and "1440m"). */
export function sameGoDuration(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return parseGoDuration(a) === parseGoDuration(b);
  } catch {
    return false;
  }
}
