/**
 * `kmsd audit …` maintenance subcommands. daemon/cli.ts hands over the arguments after `audit`.
 * Both are read-only and safe to run next to a live daemon: they take no lock, write nothing in the
 * data dir, and open the keystore the way the daemon does (for SoftHSM2 the PIN file in the data
 * dir; two processes may open the same SoftHSM2 token) without allowing it to create anything.
 */
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULTS, parseConfig, type KmsdConfig } from '../config.js';
import type { Keystore } from '../domain/ports.js';
import { openConfiguredKeystore } from '../kmsd.js';
import { SOFTHSM_FILES } from '../keystore/softhsm.js';
import { LEGACY_AUDIT_LOG_FILE, LegacyChainChecker, readLinesSync } from './chain.js';
import { parseBound, scanSegments, type ReadableSegment } from './query.js';
import { auditDir, dataExtent, indexFileName, openIndex } from './segments.js';
import { listSegments } from './trail.js';
import { verifyTrail } from './verify.js';
import pg from 'pg';
import { PgAuditAnchorStore, instanceIdOf } from '../cluster/node.js';
import { listAuditAnchors } from '../store/pg-sql.js';
import { pgConnectionConfig } from '../store/pg-store.js';

export const AUDIT_USAGE = `Usage: kmsd audit verify --data-dir DIR [keystore options]
       kmsd audit verify --store postgres://… --data-dir DIR [--data-dir DIR2 …] [keystore options]
       kmsd audit export --data-dir DIR --from TIME --to TIME [--key ID] [--subject S] [--out FILE] [keystore options]

  verify   walks every segment of <data-dir>/audit: each line's MAC under the audit key, the chain,
           the indexes, the start (genesis or an Audit.Prune record) and the end (the head anchor).
           Prints "audit trail OK: N events in M segments, head seq S" and exits 0; prints each
           problem with its segment file and line on stderr and exits 1 when a line was edited,
           removed, inserted or reordered, the tail was cut, a segment was rewritten without the
           key, an old segment was deleted without a prune record, an index disagrees with its
           segment, or the trail cannot be read; exits 2 on a usage error.
  export   writes the events with time in [--from, --to] (RFC 3339, inclusive), optionally only
           those of key --key or subject --subject, as JSONL lines exactly as stored (with seq,
           prev and mac) to --out FILE (mode 0600) or stdout.

  --data-dir DIR              KMS_DATA_DIR             ${DEFAULTS.dataDir}
  --store postgres://…        KMS_STORE                a cluster node: its chain's head anchor is in PostgreSQL; verify
                                                       checks the chain of every --data-dir given (one per node, same HSM)
                                                       and fails when a node anchored in the database was not checked
  --keystore pkcs11|software  KMS_KEYSTORE             as for kmsd
  --pkcs11-module PATH        KMS_PKCS11_MODULE        as for kmsd
  --pkcs11-token-label LABEL  KMS_PKCS11_TOKEN_LABEL   as for kmsd
  --pkcs11-pin PIN            KMS_PKCS11_PIN           as for kmsd (SoftHSM2: <data-dir>/hsm-pins.json)
`;

/** Where the subcommand writes; tests pass their own. */
export interface AuditCommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

class UsageError extends Error {}
class CommandError extends Error {}

const KEYSTORE_OPTIONS = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  keystore: { type: 'string' },
  'pkcs11-module': { type: 'string' },
  'pkcs11-token-label': { type: 'string' },
  'pkcs11-pin': { type: 'string' },
  help: { type: 'boolean' },
} as const;

const EXPORT_OPTIONS = {
  ...KEYSTORE_OPTIONS,
  from: { type: 'string' },
  to: { type: 'string' },
  key: { type: 'string' },
  subject: { type: 'string' },
  out: { type: 'string' },
} as const;

/**
 * Runs `kmsd audit <argv…>` and returns the process exit code: 0 success, 1 tampered or
 * unreadable trail, 2 usage error.
 */
export async function runAuditCommand(argv: string[], io: AuditCommandIo = defaultIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(AUDIT_USAGE);
    return 0;
  }
  if (command !== 'verify' && command !== 'export') {
    io.stderr.write(`kmsd audit: ${command === undefined ? 'missing subcommand' : `unknown subcommand "${command.slice(0, 64)}"`}\n\n${AUDIT_USAGE}`);
    return 2;
  }
  try {
    // verify takes --data-dir once per node of a cluster (with --store).
    const dataDirs = command === 'verify' ? takeRepeated(rest, '--data-dir') : { args: rest, values: [] };
    const { values } = parseArgs({ args: dataDirs.args, strict: true, allowPositionals: false, options: command === 'verify' ? KEYSTORE_OPTIONS : EXPORT_OPTIONS });
    if (values.help === true) {
      io.stdout.write(AUDIT_USAGE);
      return 0;
    }
    if (dataDirs.values.length > 0) values['data-dir'] = dataDirs.values[0];
    const config = keystoreConfig(values, io.env);
    if (command === 'verify' && config.storeUrl !== undefined) return await verifyCluster(config, dataDirs.values.length > 0 ? dataDirs.values : [config.dataDir], io);
    if (dataDirs.values.length > 1) throw new UsageError('--data-dir may be given several times only with --store (the nodes of a cluster)');
    return command === 'verify' ? await verify(config, io) : await exportEvents(config, values as ExportValues, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' || (err as { code?: unknown }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      io.stderr.write(`kmsd audit ${command}: ${(err as Error).message}\n\n${AUDIT_USAGE}`);
      return 2;
    }
    io.stderr.write(`kmsd audit ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The daemon's own config parsing for the data dir and keystore options, so both open the same keystore. */
function keystoreConfig(values: Partial<Record<keyof typeof KEYSTORE_OPTIONS, string | boolean>>, env: NodeJS.ProcessEnv): KmsdConfig {
  const args: string[] = [];
  for (const name of ['data-dir', 'store', 'keystore', 'pkcs11-module', 'pkcs11-token-label', 'pkcs11-pin'] as const) {
    const value = values[name];
    if (typeof value === 'string') args.push(`--${name}`, value);
  }
  return parseConfig(args, env);
}

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Opens the keystore read-only; a data dir without a trail or PIN file is an error naming --data-dir. */
function openKeystore(config: KmsdConfig, dataDir: string, io: AuditCommandIo): Keystore {
  if (!existsSync(auditDir(dataDir))) throw new CommandError(`no audit trail at ${auditDir(dataDir)}; is --data-dir right? (kmsd creates it when it first starts)`);
  if (config.keystore === 'pkcs11' && config.pkcs11Module === undefined && config.pkcs11Pin === undefined && !existsSync(join(dataDir, SOFTHSM_FILES.pins))) {
    throw new CommandError(`no SoftHSM2 PIN file ${join(dataDir, SOFTHSM_FILES.pins)}; is --data-dir right? (or give --pkcs11-pin)`);
  }
  const warn = { ...silent, warn: (_obj: object, message: string) => void io.stderr.write(`warning: ${message}\n`) };
  return openConfiguredKeystore(config, dataDir, warn, { allowCreate: false, readOnly: true });
}

/** Removes every `flag VALUE` / `flag=VALUE` from `args`, returning the values. */
function takeRepeated(args: string[], flag: string): { args: string[]; values: string[] } {
  const out: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === flag && i + 1 < args.length) values.push(args[++i] as string);
    else if (arg.startsWith(`${flag}=`)) values.push(arg.slice(flag.length + 1));
    else out.push(arg);
  }
  return { args: out, values };
}

/**
 * Every node's chain: each data dir's trail against its own anchor in PostgreSQL (by the
 * instance id in the data dir), all with the cluster's shared audit key. A node anchored in the
 * database whose data dir was not given is a failure: its chain was not checked.
 */
async function verifyCluster(config: KmsdConfig, dataDirs: string[], io: AuditCommandIo): Promise<number> {
  const pool = new pg.Pool({ ...pgConnectionConfig(config.storeUrl ?? '', 'kmsd:audit-verify'), max: 2 });
  const first = resolve(dataDirs[0] as string);
  const keystore = openKeystore(config, first, io);
  let failed = false;
  try {
    const keyring = keystore.auditKeyring({ allowCreate: false });
    const checked = new Set<string>();
    for (const dir of dataDirs.map((d) => resolve(d))) {
      if (!existsSync(auditDir(dir))) throw new CommandError(`no audit trail at ${auditDir(dir)}; is --data-dir right?`);
      const instanceId = instanceIdOf(dir, { create: false });
      checked.add(instanceId);
      const anchors = await PgAuditAnchorStore.open(pool, instanceId, { warn: () => undefined });
      const result = await verifyTrail(dir, keyring, anchors);
      for (const note of result.notes) io.stdout.write(`note: ${note} (node ${instanceId})\n`);
      if (!result.ok) {
        failed = true;
        for (const f of result.findings) {
          const where = f.segment === undefined ? '' : f.line === undefined ? `${f.segment}: ` : `${f.segment} line ${f.line}: `;
          io.stderr.write(`audit trail TAMPERED: ${where}${f.reason} (node ${instanceId}, ${dir})\n`);
        }
        continue;
      }
      io.stdout.write(`audit trail OK: ${result.events} events in ${result.segments} segments, head seq ${result.headSeq} (node ${instanceId})\n`);
    }
    for (const anchor of await listAuditAnchors(pool)) {
      if (checked.has(anchor.instanceId)) continue;
      failed = true;
      io.stderr.write(`audit trail NOT CHECKED: node ${anchor.instanceId} has a chain anchored at seq ${anchor.seq}; give its data dir with --data-dir\n`);
    }
    return failed ? 1 : 0;
  } finally {
    keystore.close();
    await pool.end().catch(() => undefined);
  }
}

async function verify(config: KmsdConfig, io: AuditCommandIo): Promise<number> {
  const dataDir = resolve(config.dataDir);
  const legacy = join(dataDir, LEGACY_AUDIT_LOG_FILE);
  if (!existsSync(auditDir(dataDir)) && existsSync(legacy)) return verifyUnmigrated(legacy, io);
  const keystore = openKeystore(config, dataDir, io);
  try {
    const keyring = keystore.auditKeyring({ allowCreate: false });
    const anchors = keystore.auditAnchorStore({ allowCreate: false });
    const result = await verifyTrail(dataDir, keyring, anchors);
    for (const note of result.notes) io.stdout.write(`note: ${note}\n`);
    if (!result.ok) {
      for (const f of result.findings) {
        const where = f.segment === undefined ? '' : f.line === undefined ? `${f.segment}: ` : `${f.segment} line ${f.line}: `;
        io.stderr.write(`audit trail TAMPERED: ${where}${f.reason}\n`);
      }
      return 1;
    }
    io.stdout.write(`audit trail OK: ${result.events} events in ${result.segments} segments, head seq ${result.headSeq}\n`);
    return 0;
  } finally {
    keystore.close();
  }
}

/** A data dir of kmsd 0.1 that no newer kmsd has started yet: its audit.log, with the old rules. */
function verifyUnmigrated(path: string, io: AuditCommandIo): number {
  const fd = openSync(path, 'r');
  try {
    const checker = new LegacyChainChecker();
    let line = 0;
    for (const raw of readLinesSync(fd)) {
      line++;
      const result = raw.terminated ? checker.check(raw.bytes) : { ok: false as const, reason: 'incomplete last line (no trailing newline)' };
      if (!result.ok) {
        io.stderr.write(`audit trail TAMPERED: ${LEGACY_AUDIT_LOG_FILE} line ${line}: ${result.reason}\n`);
        return 1;
      }
    }
    io.stdout.write(`note: ${path} is the log of a kmsd before keyed chains (not yet moved into audit/); checked with its own rules (unkeyed SHA-256 "hash")\n`);
    io.stdout.write(`audit trail OK: ${checker.count} events in 1 segments, head seq ${checker.count}\n`);
    return 0;
  } finally {
    closeSync(fd);
  }
}

type ExportValues = { from?: string; to?: string; key?: string; subject?: string; out?: string };

async function exportEvents(config: KmsdConfig, values: ExportValues, io: AuditCommandIo): Promise<number> {
  if (values.from === undefined) throw new UsageError('--from is required (RFC 3339, e.g. 2024-05-01T00:00:00Z)');
  if (values.to === undefined) throw new UsageError('--to is required (RFC 3339, e.g. 2024-05-02T00:00:00Z)');
  let fromMs: number;
  let toMs: number;
  try {
    fromMs = parseBound('--from', values.from);
    toMs = parseBound('--to', values.to);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (fromMs > toMs) throw new UsageError('--to must not be earlier than --from');
  const dataDir = resolve(config.dataDir);
  const keystore = openKeystore(config, dataDir, io);
  let out: FileHandle | undefined;
  try {
    const keyring = keystore.auditKeyring({ allowCreate: false });
    const dir = auditDir(dataDir);
    // Indexes are trusted only when their MAC checks; otherwise the segment is read whole.
    const segments: ReadableSegment[] = [];
    for (const name of listSegments(dir)) {
      const path = join(dir, name.name);
      let index;
      try {
        const opened = openIndex(readFileSync(join(dir, indexFileName(name)), 'utf8'), name, keyring);
        if (opened.ok) index = opened.index;
        else io.stderr.write(`warning: ${indexFileName(name)} ${opened.reason}; reading ${name.name} whole\n`);
      } catch {
        // no index (the active segment): read it whole
      }
      // The active segment's data ends where its zero-filled (preallocated) tail begins.
      const reader = await open(path, 'r');
      let end: number;
      try {
        end = (await dataExtent(reader)).end;
      } finally {
        await reader.close();
      }
      segments.push({ path, name: name.name, end, index });
    }
    if (values.out !== undefined) out = await open(values.out, 'w', 0o600);
    let buffered: Buffer[] = [];
    let size = 0;
    const emit = async (force: boolean) => {
      if (size === 0 || (!force && size < 1 << 16)) return;
      const chunk = Buffer.concat(buffered);
      buffered = [];
      size = 0;
      if (out !== undefined) await out.write(chunk);
      else await writeStdout(io, chunk);
    };
    let count = 0;
    await scanSegments(segments, { keyId: values.key, subject: values.subject, fromMs, toMs, afterSeq: 0 }, Infinity, async (_event, line) => {
      buffered.push(line, NEWLINE);
      size += line.length + 1;
      count++;
      await emit(false);
      return true;
    });
    await emit(true);
    if (out !== undefined) {
      await out.sync();
      io.stderr.write(`exported ${count} events to ${values.out}\n`);
    }
    return 0;
  } finally {
    await out?.close();
    keystore.close();
  }
}

const NEWLINE = Buffer.from('\n');

/** Writes to stdout, waiting for it to drain (a SIEM pipe may be slow). */
function writeStdout(io: AuditCommandIo, chunk: Buffer): Promise<void> {
  const stream = io.stdout as NodeJS.WritableStream;
  if (stream === process.stdout) {
    return new Promise((resolveWrite, reject) => {
      process.stdout.write(chunk, (err) => (err ? reject(err) : resolveWrite()));
    });
  }
  io.stdout.write(chunk.toString('utf8'));
  return Promise.resolve();
}

function defaultIo(): AuditCommandIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
