/** A value plus the diagnostics produced while computing it: how framework hooks return. */
import type { Diagnostic } from '../diagnostics.js';

/** A value (or null) with diagnostics. */
export interface Result<T> {
  value: T;
  diagnostics: Diagnostic[];
}

/** A result without diagnostics. */
export function ok<T>(value: T): Result<T> {
  return { value, diagnostics: [] };
}

/** A result carrying `value` (often the prior state, so nothing is lost) and diagnostics. */
export function withDiags<T>(value: T, ...diagnostics: Diagnostic[]): Result<T> {
  return { value, diagnostics };
}
