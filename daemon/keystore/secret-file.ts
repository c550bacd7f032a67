import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsyncDirectory } from '../store/durable-file.js';

/**
 * Writes a file that must never be half-written or readable by others (HSM PINs, the software
 * root key): created 0600 next to its target, fsynced, renamed into place, directory fsynced.
 * Refuses to overwrite a leftover temp file of the same process (`wx`) unless `replace`.
 */
export function writeSecretFile(file: string, content: string, options: { replace?: boolean } = {}): void {
  const tmp = `${file}.${process.pid}.tmp`;
  // `replace`: a file rewritten in place (an anchor) may find its own leftover temp file.
  writeFileSync(tmp, content, { mode: 0o600, flag: options.replace === true ? 'w' : 'wx' });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDirectory(dirname(file));
}
