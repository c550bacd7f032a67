/**
 * The plugin's code cache (provider/protocol/code-cache.ts) across real processes: the first
 * process compiles and saves at exit, the next one takes the cache, a changed bundle never runs
 * from an old cache, a broken cache is refused by V8, and a directory others may write is not used.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir as makeTempDir } from '../support/daemon.js';

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = makeTempDir(prefix);
  roots.push(dir);
  return dir;
}

const CODE_CACHE = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'provider/protocol/code-cache.js');

/** Loads `bundle` in a fresh node process, notes `served`, exits; returns what it printed. */
function run(bundle: string, env: Record<string, string>, served: string[] = []): { status: string; value: string } {
  const script = [
    `import { requireBundle, codeCacheStatuses, noteServed } from ${JSON.stringify(pathToFileURL(CODE_CACHE).href)};`,
    `const value = requireBundle(${JSON.stringify(bundle)}).value();`,
    `for (const name of ${JSON.stringify(served)}) noteServed(name);`,
    'process.stdout.write(JSON.stringify({ status: codeCacheStatuses().join(","), value }));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8' });
  return JSON.parse(out) as { status: string; value: string };
}

function bundleSource(value: string): string {
  // Enough functions for V8 to have something to cache, and a require of a built-in.
  const helpers = Array.from({ length: 50 }, (_, i) => `function f${i}(x) { return x + ${i}; }`).join('\n');
  return `'use strict';\nconst { join } = require('node:path');\n${helpers}\nmodule.exports = { value: () => join('a', ${JSON.stringify(value)}) + f49(0) };\n`;
}

function cacheFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.v8cache'));
}

describe('code cache of the plugin bundle', () => {
  it('is written by the first process, taken by the next, and grows with the RPCs served', () => {
    const root = tempDir('kms-code-cache-');
    const cacheDir = join(root, 'cache');
    const bundle = join(root, 'kms-plugin-rpc.cjs');
    writeFileSync(bundle, bundleSource('one'));
    const env = { KMS_PLUGIN_CACHE_DIR: cacheDir };

    expect(run(bundle, env, ['GetProviderSchema'])).toEqual({ status: 'miss', value: 'a/one49' });
    const [file] = cacheFiles(cacheDir);
    expect(file).toMatch(new RegExp(`^kms-plugin-rpc-[0-9a-f]{32}-${process.version.replace(/\./g, '\\.')}-${process.arch}\\.v8cache$`));
    const first = readFileSync(join(cacheDir, file!));
    expect(first.toString('latin1')).toContain('["GetProviderSchema"]');

    // Same RPCs: taken as is, not written again.
    expect(run(bundle, env, ['GetProviderSchema'])).toEqual({ status: 'hit', value: 'a/one49' });
    expect(readFileSync(join(cacheDir, file!)).equals(first)).toBe(true);

    // A new RPC: taken, then saved again covering both.
    expect(run(bundle, env, ['ReadResource'])).toEqual({ status: 'hit', value: 'a/one49' });
    expect(readFileSync(join(cacheDir, file!)).toString('latin1')).toContain('["GetProviderSchema","ReadResource"]');
    expect(run(bundle, env, ['GetProviderSchema', 'ReadResource']).status).toBe('hit');
  });

  it('never runs a changed bundle from the old one\'s cache, even of the same length', () => {
    const root = tempDir('kms-code-cache-');
    const env = { KMS_PLUGIN_CACHE_DIR: join(root, 'cache') };
    const bundle = join(root, 'kms-plugin-rpc.cjs');
    writeFileSync(bundle, bundleSource('one'));
    run(bundle, env);
    expect(run(bundle, env).status).toBe('hit');
    writeFileSync(bundle, bundleSource('two')); // same length: V8's own check would not see it
    expect(run(bundle, env)).toEqual({ status: 'miss', value: 'a/two49' });
    expect(run(bundle, env)).toEqual({ status: 'hit', value: 'a/two49' });
  });

  it('falls back to compiling when the cache is broken', () => {
    const root = tempDir('kms-code-cache-');
    const cacheDir = join(root, 'cache');
    const env = { KMS_PLUGIN_CACHE_DIR: cacheDir };
    const bundle = join(root, 'kms-plugin-rpc.cjs');
    writeFileSync(bundle, bundleSource('one'));
    run(bundle, env);
    const path = join(cacheDir, cacheFiles(cacheDir)[0]!);
    const bytes = readFileSync(path);
    const header = bytes.indexOf(0x0a, bytes.indexOf(0x0a) + 1) + 1;
    writeFileSync(path, Buffer.concat([bytes.subarray(0, header), Buffer.alloc(bytes.length - header, 0x5a)]));
    expect(run(bundle, env)).toEqual({ status: 'rejected', value: 'a/one49' });
    // …and the process that refused it wrote a good one.
    expect(run(bundle, env).status).toBe('hit');
    writeFileSync(path, 'not a cache file');
    expect(run(bundle, env)).toEqual({ status: 'miss', value: 'a/one49' });
  });

  it('is not used in a directory others can write, nor when turned off', () => {
    const root = tempDir('kms-code-cache-');
    const bundle = join(root, 'kms-plugin-rpc.cjs');
    writeFileSync(bundle, bundleSource('one'));
    const shared = join(root, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(run(bundle, { KMS_PLUGIN_CACHE_DIR: shared })).toEqual({ status: 'off', value: 'a/one49' });
    expect(cacheFiles(shared)).toEqual([]);
    expect(run(bundle, { KMS_PLUGIN_CACHE_DIR: '' }).status).toBe('off');
    expect(run(bundle, { KMS_PLUGIN_CACHE_DIR: 'relative/dir' }).status).toBe('off');
    // The default: under XDG_CACHE_HOME (or ~/.cache), created private.
    const xdg = join(root, 'xdg');
    expect(run(bundle, { XDG_CACHE_HOME: xdg, HOME: join(root, 'home') }).status).toBe('miss');
    expect(cacheFiles(join(xdg, 'terraform-provider-kms'))).toHaveLength(1);
    expect(run(bundle, { HOME: join(root, 'home') }).status).toBe('miss');
    expect(cacheFiles(join(root, 'home', '.cache', 'terraform-provider-kms'))).toHaveLength(1);
  });
});
