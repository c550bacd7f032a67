/**
 * `kmsd hsm status`: what a data directory's store depends on (token, root key, audit key and
 * anchor), what the configured HSM actually holds, and whether they match. Read-only: it writes
 * nothing and takes no lock, so it runs next to a live daemon (SoftHSM2 allows a second process
 * on a token) and against a data directory restored from backup before the daemon starts.
 */
import { resolve } from 'node:path';
import { parseConfig, ConfigError } from '../config.js';
import { HSM_BINDING_ID, type StateView } from '../domain/model.js';
import type { Keystore, KeystoreIdentity } from '../domain/ports.js';
import { openConfiguredKeystore } from '../kmsd.js';
import { readStoreSnapshot } from '../store/lowdb-store.js';
import { readAuditAnchor } from '../store/pg-sql.js';
import { describePgError, pgConnectionConfig, readPgSnapshot } from '../store/pg-store.js';
import { instanceIdOf } from '../cluster/node.js';
import pg from 'pg';
import { describeCustody, describeHoldings, storeIsUnbound, verifyBinding } from './binding.js';

export const HSM_USAGE = `Usage: kmsd hsm status --data-dir DIR [--store postgres://…] [--json] [keystore options as for kmsd]

  status   prints the HSM token and root key the store of DIR depends on (recorded on its first
           start), what the configured HSM holds, the audit MAC key and anchor, and whether they
           match. Exit 0 when they do (or the store is new), 1 when something is missing or
           different, 2 on a usage error. Reads only; safe next to a running kmsd.
           With --store (a node of a PostgreSQL cluster) the binding is the database's and the
           audit anchor is the node's row in it (by the instance id in DIR).
`;

export interface HsmCommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

interface StatusReport {
  dataDir: string;
  store: { keys: number; versions: number };
  recorded: unknown;
  keystore: KeystoreIdentity | null;
  auditKey: string;
  auditAnchor: unknown;
  ok: boolean;
  problem?: string;
}

export async function runHsmCommand(argv: string[], io: HsmCommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    (command === undefined ? io.stderr : io.stdout).write(HSM_USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'status') {
    io.stderr.write(`kmsd hsm: unknown subcommand "${command}"\n\n${HSM_USAGE}`);
    return 2;
  }
  const json = rest.includes('--json');
  let config;
  try {
    config = parseConfig(rest.filter((a) => a !== '--json'), io.env);
  } catch (err) {
    if (err instanceof ConfigError && err.message === 'help') {
      io.stdout.write(HSM_USAGE);
      return 0;
    }
    io.stderr.write(`kmsd hsm status: ${(err as Error).message}\n\n${HSM_USAGE}`);
    return 2;
  }
  const dataDir = resolve(config.dataDir);
  let state: StateView;
  const storeUrl = config.storeUrl;
  try {
    state = storeUrl === undefined ? await readStoreSnapshot(dataDir) : await readPgSnapshot(storeUrl);
  } catch (err) {
    const where = storeUrl === undefined ? `in ${dataDir}` : 'in PostgreSQL';
    io.stderr.write(`kmsd hsm status: cannot read the store ${where}: ${storeUrl === undefined ? (err as Error).message : describePgError(err)}\n`);
    return 1;
  }
  const recorded = state.hsm.get(HSM_BINDING_ID);
  const report: StatusReport = {
    dataDir,
    store: { keys: state.keys.size, versions: state.versions.size },
    recorded: recorded ?? null,
    keystore: null,
    auditKey: 'not checked',
    auditAnchor: null,
    ok: false,
  };
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let keystore: Keystore | undefined;
  try {
    keystore = openConfiguredKeystore(config, dataDir, quiet, { allowCreate: false, readOnly: true });
    report.keystore = keystore.identity();
    verifyBinding(state, keystore, dataDir);
    report.ok = true;
    try {
      report.auditKey = `present (${keystore.auditKeyring({ allowCreate: false }).description})`;
      report.auditAnchor = storeUrl === undefined ? keystore.auditAnchorStore({ allowCreate: false }).read() : await readNodeAnchor(storeUrl, dataDir);
    } catch (err) {
      report.auditKey = `missing: ${(err as Error).message}`;
    }
  } catch (err) {
    // A store that depends on nothing may simply not be provisioned yet: not a problem.
    report.ok = storeIsUnbound(state) && keystore === undefined;
    report.problem = (err as Error).message;
  } finally {
    keystore?.close();
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const lines = [
      ['data dir', dataDir],
      ...(storeUrl === undefined ? [] : [['database', 'PostgreSQL (the cluster\'s binding; the audit anchor is this node\'s row)']]),
      ['store', describeHoldings(state)],
      ['depends on', recorded !== undefined ? `${describeCustody(recorded)}, recorded ${recorded.recordedAt}` : 'nothing recorded yet (a new store, or one from before kmsd recorded it)'],
      ['keystore holds', report.keystore !== null ? describeCustody(report.keystore) : 'could not be opened'],
      ['audit MAC key', report.auditKey],
      ['audit anchor', report.auditAnchor === null ? 'none' : JSON.stringify(report.auditAnchor)],
      [
        'status',
        report.ok
          ? report.problem === undefined
            ? 'OK: the HSM holds what the store depends on'
            : `OK: nothing provisioned yet (${report.problem})`
          : `PROBLEM: ${report.problem ?? 'unknown'}`,
      ],
    ];
    const width = Math.max(...lines.map(([k]) => (k ?? '').length));
    io.stdout.write(lines.map(([k, v]) => `${(k ?? '').padEnd(width)}  ${v ?? ''}\n`).join(''));
  }
  return report.ok ? 0 : 1;
}

/** The node's audit anchor row in PostgreSQL (null: the node has never anchored). */
async function readNodeAnchor(url: string, dataDir: string): Promise<unknown> {
  const client = new pg.Client(pgConnectionConfig(url, 'kmsd-status'));
  await client.connect();
  try {
    return await readAuditAnchor(client, instanceIdOf(dataDir, { create: false }));
  } finally {
    await client.end().catch(() => undefined);
  }
}
