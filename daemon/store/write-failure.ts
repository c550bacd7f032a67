/**
 * What a failed write of the data directory means to a caller. Every durable writer (the store,
 * its journal and snapshot, the audit trail) turns a filesystem error into one
 * `KmsError('UNAVAILABLE')` with a message that names the cause, so a full disk is a 503 that
 * says "no space left on device", never an opaque 500.
 */
import { KmsError } from '../domain/errors.js';

/** errno codes a writer may meet, in the words an operator searches for. */
const CAUSES = new Map<string, string>([
  ['ENOSPC', 'no space left on device'],
  ['EDQUOT', 'disk quota exceeded'],
  ['EROFS', 'read-only file system'],
  ['EIO', 'input/output error'],
  ['EACCES', 'permission denied'],
  ['EPERM', 'operation not permitted'],
  ['EFBIG', 'file too large'],
  ['EMFILE', 'too many open files'],
  ['ENFILE', 'too many open files in system'],
  ['ENOENT', 'a file or directory is missing'],
]);

/** The errno code of a Node.js fs error, if it is one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** "no space left on device (ENOSPC)", or the error's own message for anything else. */
export function describeWriteError(err: unknown): string {
  const code = errnoCode(err);
  const cause = code === undefined ? undefined : CAUSES.get(code);
  if (cause !== undefined && code !== undefined) return `${cause} (${code})`;
  if (code !== undefined) return code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * `what` is the thing that could not be written: "data directory", "audit trail". The result is
 * safe to show to any caller: it names the cause, not paths or internals.
 */
export function writeFailure(what: string, err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  return new KmsError('UNAVAILABLE', `${what} is not writable: ${describeWriteError(err)}`);
}
