/**
 * kmsctl profiles: `$XDG_CONFIG_HOME/kmsctl/config.yaml` (default `~/.config/kmsctl/config.yaml`),
 * mode 0600 in a 0700 directory, written atomically (temp file, fsync, rename, fsync the dir).
 * Each profile holds an endpoint, a folder id and a token; `current` names the active one. The
 * environment (`KMS_ENDPOINT`, `KMS_TOKEN`, `KMS_FOLDER_ID`) overrides the profile, flags override both.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, chmodSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { UsageError } from './errors.js';

export interface Profile {
  endpoint?: string;
  folderId?: string;
  token?: string;
}

export interface ConfigFile {
  current?: string;
  /** Profile names are user input: a Map, never a plain object. */
  profiles: Map<string, Profile>;
}

export const PROFILE_NAME = /^[a-zA-Z0-9][-_.a-zA-Z0-9]{0,62}$/;

export function configPath(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_CONFIG_HOME'];
  const base = xdg !== undefined && xdg !== '' ? xdg : join(env['HOME'] ?? '.', '.config');
  return join(base, 'kmsctl', 'config.yaml');
}

function stringField(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new UsageError(`${where}: must be a string`);
  return value;
}

export function readConfig(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { profiles: new Map() };
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message}`);
  }
  const config: ConfigFile = { profiles: new Map() };
  if (doc === null || doc === undefined) return config;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${path}: must be a mapping`);
  const root = new Map(Object.entries(doc as Record<string, unknown>));
  const current = stringField(root.get('current'), `${path}: current`);
  if (current !== undefined) config.current = current;
  const profiles = root.get('profiles');
  if (profiles !== undefined && profiles !== null) {
    if (typeof profiles !== 'object' || Array.isArray(profiles)) throw new UsageError(`${path}: profiles must be a mapping`);
    for (const [name, raw] of Object.entries(profiles as Record<string, unknown>)) {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`${path}: profiles.${name} must be a mapping`);
      const fields = new Map(Object.entries(raw as Record<string, unknown>));
      const profile: Profile = {};
      const endpoint = stringField(fields.get('endpoint'), `${path}: profiles.${name}.endpoint`);
      const folderId = stringField(fields.get('folder-id'), `${path}: profiles.${name}.folder-id`);
      const token = stringField(fields.get('token'), `${path}: profiles.${name}.token`);
      if (endpoint !== undefined) profile.endpoint = endpoint;
      if (folderId !== undefined) profile.folderId = folderId;
      if (token !== undefined) profile.token = token;
      config.profiles.set(name, profile);
    }
  }
  return config;
}

export function writeConfig(path: string, config: ConfigFile): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const profiles: Record<string, Record<string, string>> = Object.create(null) as Record<string, Record<string, string>>;
  for (const [name, p] of config.profiles) {
    const entry: Record<string, string> = {};
    if (p.endpoint !== undefined) entry['endpoint'] = p.endpoint;
    if (p.folderId !== undefined) entry['folder-id'] = p.folderId;
    if (p.token !== undefined) entry['token'] = p.token;
    profiles[name] = entry;
  }
  const text = stringify({ ...(config.current !== undefined && { current: config.current }), profiles: { ...profiles } });
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  // A file created before (or by hand) keeps no wider mode than 0600.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
