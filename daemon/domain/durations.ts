/**
 * Durations on the wire are protobuf JSON Durations: a decimal number of seconds with an `s`
 * suffix ("86400s", "1.5s"). The domain keeps whole seconds.
 */
import { invalidArgument } from './errors.js';

const DURATION = /^(\d{1,12})(?:\.(\d{1,9}))?s$/;

/** Parses "<seconds>s"; fractional seconds are accepted only when they are zero. */
export function parseDurationSeconds(field: string, text: string): number {
  const match = DURATION.exec(text);
  if (!match) {
    throw invalidArgument(field, `invalid duration "${text}": expected seconds with an "s" suffix, such as "86400s"`);
  }
  if (match[2] !== undefined && !/^0+$/.test(match[2])) {
    throw invalidArgument(field, `invalid duration "${text}": fractional seconds are not supported`);
  }
  return Number(match[1]);
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
