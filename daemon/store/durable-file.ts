/**
 * A lowdb adapter that makes every write durable: serialize, write a temp file, fsync it, rename
 * it over the data file, fsync the directory. After a crash (even `kill -9` or power loss) the file
 * is either the previous complete version or the new complete version, never a torn mix.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';

export class DurableJsonFile<T> implements Adapter<T> {
  private readonly tempPath: string;

  constructor(
    private readonly path: string,
    /** Validates and converts the parsed file; throws with a human message on anything unexpected. */
    private readonly parse: (text: string) => T,
    private readonly options: { readOnly?: boolean } = {},
  ) {
    this.tempPath = join(dirname(path), `.${basename(path)}.tmp`);
  }

  async read(): Promise<T | null> {
    // A leftover of a write that never got renamed (not ours to remove when only reading).
    if (this.options.readOnly !== true) await rm(this.tempPath, { force: true });
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return this.parse(text);
  }

  async write(data: T): Promise<void> {
    if (this.options.readOnly === true) throw new Error(`${this.path} was opened read-only`);
    const text = JSON.stringify(data);
    try {
      const handle = await open(this.tempPath, 'w', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(this.tempPath, this.path);
    } catch (err) {
      // A full disk must not also keep the half-written copy: it is the space a retry needs.
      await rm(this.tempPath, { force: true }).catch(() => undefined);
      throw err;
    }
    fsyncDirectory(dirname(this.path));
  }
}

/** Makes a rename in `dir` durable (the directory entry itself must reach the disk). */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
