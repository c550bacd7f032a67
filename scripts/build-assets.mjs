// Second half of `npm run build` (after tsc): marks the bins executable (so `npx kmsctl` and a
// global install work from dist/), type-checks the web console (console/, DOM types) and bundles
// it with esbuild into dist/console: app.js (one ES module, the REST client included), app.css,
// index.html, favicon.svg. Nothing is fetched at run time: no CDN, no web fonts.
import { build } from 'esbuild';
import process from 'node:process';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const bin of ['dist/kmsctl/main.js', 'dist/daemon/main.js']) {
  const path = join(root, bin);
  if (existsSync(path)) chmodSync(path, 0o755);
}

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'console/tsconfig.json')], { stdio: 'inherit' });

const out = join(root, 'dist/console');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'console/app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  // The client's node:http(s) transport is loaded lazily and never in the browser.
  external: ['node:*'],
  logLevel: 'warning',
});
for (const file of ['index.html', 'app.css', 'favicon.svg']) copyFileSync(join(root, 'console', file), join(out, file));
