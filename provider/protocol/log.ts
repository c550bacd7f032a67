/**
 * Logging to stderr as JSON lines with `@level` and `@message` (what core's go-plugin log
 * forwarding understands; visible under TF_LOG). stdout belongs to the handshake.
 */

/** Levels in go-hclog's names. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Debug and trace lines only when core logs at all (it forwards plugin stderr under TF_LOG). */
let verbose: boolean | undefined;

/**
 * Whether a line at `level` would be written: callers check it before building a debug or trace
 * line (its message, fields and timings), so that costs nothing when core does not log.
 */
export function logs(level: LogLevel): boolean {
  verbose ??= Boolean(process.env['TF_LOG'] || process.env['TF_LOG_PROVIDER']);
  return verbose || (level !== 'debug' && level !== 'trace');
}

/** Write one log line; `fields` are added as-is (never pass tokens or key material). */
export function log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  if (!logs(level)) return;
  // go-plugin parses @timestamp with the layout 2006-01-02T15:04:05.000000Z07:00 (exactly six
  // fractional digits) and shows the line as unparsed text otherwise.
  const timestamp = new Date().toISOString().replace('Z', '000Z');
  const line = JSON.stringify({ '@level': level, '@message': message, '@module': 'provider.kms', '@timestamp': timestamp, ...fields });
  process.stderr.write(`${line}\n`);
}
