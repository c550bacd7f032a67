/**
 * Durations on the wire are protobuf JSON Durations: a decimal number of seconds with an `s`
 * suffix ("86400s", "1.5s"). The domain keeps whole seconds.
 */
import { invalidArgument } from './errors.js';

const DURATION = /^(-)?(\d{1,12})(?:\.(\d{1,9}))?s$/;

/**
 * Parses every proto3 JSON Duration form ("3600s", "3600.5s", "3600.000000001s"). The domain keeps
 * whole seconds: a fraction is dropped (so a minimum is never met by rounding up).
 */
export function parseDurationSeconds(field: string, text: string): number {
  const match = DURATION.exec(text);
  if (!match) {
    throw invalidArgument(field, `invalid duration "${text}": expected seconds with an "s" suffix, such as "86400s" or "0.5s"`);
  }
  if (match[1] === '-' && !/^0+$/.test(`${match[2]}${match[3] ?? ''}`)) throw invalidArgument(field, `invalid duration "${text}": must not be negative`);
  return Number(match[2]);
}

export function formatDurationSeconds(seconds: number): string {
  return `${seconds}s`;
}

/** Human form for messages: 3600 → "1h", 90000 → "25h". */
export function describeSeconds(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
