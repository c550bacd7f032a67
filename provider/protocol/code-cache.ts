/**
 * Loading the plugin's second bundle (kms-plugin-rpc.cjs) with V8's code cache.
 *
 * Core starts the plugin 3–5 times per command, and each process would otherwise parse the
 * ≈230 KiB bundle again and compile every function it calls (≈10 ms per process, more on the
 * first RPCs). V8 can save the compiled bytecode of a script and take it back on the next start
 * (vm.Script `cachedData`); V8 itself refuses data from another V8 version or other flags, and
 * the file name here carries a hash of the bundle's text, so a cache never serves other code.
 *
 * The cache lives under `$XDG_CACHE_HOME/terraform-provider-kms` (default `~/.cache/…`; set
 * KMS_PLUGIN_CACHE_DIR to use another directory, or to an empty value to turn it off), not
 * beside the bundle: the lock file's hash covers every file in the plugin's directory, and the
 * cache differs per machine and Node version. A directory that is not the user's own, or not
 * writable, just means no cache. The cache is written when the process exits, and only when it
 * was missing or refused, or when this process served an RPC the saved cache had not seen (so
 * it grows to cover plan, apply and destroy, then stays as it is).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { Script } from 'node:vm';

const MAGIC = 'kms-code-cache-1\n';
/** Cache files untouched this long are removed when a new one is written. */
const STALE_MS = 30 * 24 * 3600_000;

/** How a bundle was compiled: from a cache on disk, or not (and why). */
export type CodeCacheStatus = 'hit' | 'miss' | 'rejected' | 'off';

interface LoadedBundle {
  script: Script;
  file: string;
  /** RPCs the cache on disk covers; undefined when there is no usable cache on disk. */
  covered: Set<string> | undefined;
}

const bundles: LoadedBundle[] = [];
const statuses: CodeCacheStatus[] = [];
const served = new Set<string>();
let exitHook = false;

/** The cache directory, or undefined when there is none to use. */
export function codeCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const configured = env['KMS_PLUGIN_CACHE_DIR'];
  if (configured !== undefined) return configured !== '' && isAbsolute(configured) ? configured : undefined;
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg && isAbsolute(xdg) ? xdg : env['HOME'] && isAbsolute(env['HOME']) ? join(env['HOME'], '.cache') : undefined;
  return base === undefined ? undefined : join(base, 'terraform-provider-kms');
}

/** The directory exists (created 0700 if need be), is ours, and only we can write it. */
function usableDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function cacheFileOf(dir: string, file: string, source: string): string {
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 32);
  return join(dir, `${basename(file, '.cjs')}-${hash}-${process.version}-${process.arch}.v8cache`);
}

function readCache(path: string): { covered: Set<string>; data: Buffer } | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  if (bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
  const end = bytes.indexOf(0x0a, MAGIC.length);
  if (end < 0) return undefined;
  try {
    const names: unknown = JSON.parse(bytes.toString('utf8', MAGIC.length, end));
    if (!Array.isArray(names)) return undefined;
    return { covered: new Set(names.map(String)), data: bytes.subarray(end + 1) };
  } catch {
    return undefined;
  }
}

function writeCaches(dir: string): void {
  for (const bundle of bundles) {
    const missing = [...served].some((name) => !bundle.covered?.has(name));
    if (bundle.covered && !missing) continue;
    try {
      const data = bundle.script.createCachedData();
      const names = [...new Set([...(bundle.covered ?? []), ...served])].sort();
      const tmp = `${bundle.file}.${process.pid}.tmp`;
      writeFileSync(tmp, Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(names)}\n`), data]), { mode: 0o600 });
      renameSync(tmp, bundle.file);
    } catch {
      // A full disk or a read-only home: run without a cache.
    }
  }
  try {
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.v8cache') && !name.endsWith('.tmp')) continue;
      const path = join(dir, name);
      if (now - statSync(path).mtimeMs > STALE_MS) unlinkSync(path);
    }
  } catch {
    // best effort
  }
}

/** How each bundle loaded so far was compiled, in load order. */
export function codeCacheStatuses(): readonly CodeCacheStatus[] {
  return statuses;
}

/** Note an RPC this process served, so the cache written at exit says it covers it. */
export function noteServed(name: string): void {
  if (bundles.length > 0) served.add(name);
}

/**
 * `require(file)` for a self-contained CommonJS bundle, through the code cache when there is a
 * usable cache directory; a plain compile otherwise.
 */
export function requireBundle(file: string, env: NodeJS.ProcessEnv = process.env): unknown {
  const source = readFileSync(file, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) { ${source}\n})`;
  const dir = codeCacheDir(env);
  const usable = dir !== undefined && usableDir(dir);
  const cacheFile = usable ? cacheFileOf(dir, file, source) : undefined;
  const cached = cacheFile ? readCache(cacheFile) : undefined;
  // Named by its base name, not its path: the same cache serves every working directory's copy
  // (core runs the plugin from .terraform/providers/…), and V8 12 and older keep the name the
  // cache was made under, so a full path could name another directory in stack traces.
  const script = new Script(wrapper, { filename: basename(file), ...(cached && { cachedData: cached.data }) });
  statuses.push(!cacheFile ? 'off' : !cached ? 'miss' : script.cachedDataRejected ? 'rejected' : 'hit');
  if (cacheFile) {
    bundles.push({ script, file: cacheFile, covered: cached && !script.cachedDataRejected ? cached.covered : undefined });
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => writeCaches(dir!));
    }
  }
  const module = { exports: {} as unknown };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return module.exports;
}
