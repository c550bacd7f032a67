/** Where the bench finds the repository (it runs from dist/bench) and its tools cache. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench: cannot find the repository root');
    dir = parent;
  }
  return dir;
})();

export const KMSD_MAIN = join(REPO_ROOT, 'dist', 'daemon', 'main.js');

/** Built tools (tofu, local-kms) live here, never in the repository. */
export const TOOLS_CACHE = process.env.KMS_TOOLS_CACHE ?? join(homedir(), '.cache', 'kms-tools');
