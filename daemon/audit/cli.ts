/**
 * `kmsd audit …` maintenance subcommands. daemon/cli.ts hands over the arguments after `audit`.
 * Safe to run next to a live daemon: it only reads the log.
 */
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../config.js';
import { auditLogPath } from './jsonl-audit.js';
import { verifyAuditLog } from './verify.js';

export const AUDIT_USAGE = `Usage: kmsd audit verify --data-dir DIR

  verify   checks the hash chain of <data-dir>/audit.log; exit code 0 when intact,
           1 when a line was edited, removed, inserted or reordered (the line is named)
           or the log cannot be read, 2 on a usage error.
  --data-dir DIR   KMS_DATA_DIR   ${DEFAULTS.dataDir}
`;

/** Where the subcommand writes; tests pass their own. */
export interface AuditCommandIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
}

/**
 * Runs `kmsd audit <argv…>` and returns the process exit code: 0 success, 1 tampered or
 * unreadable log, 2 usage error. Prints `audit log OK: N events` on success and
 * `audit log TAMPERED at line L: reason` on stderr when the chain is broken.
 */
export function runAuditCommand(argv: string[], io: AuditCommandIo = defaultIo()): Promise<number> {
  // Verification is synchronous today; the promise leaves room for subcommands that are not.
  return Promise.resolve(auditCommand(argv, io));
}

function auditCommand(argv: string[], io: AuditCommandIo): number {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(AUDIT_USAGE);
    return 0;
  }
  if (command !== 'verify') {
    io.stderr.write(`kmsd audit: ${command === undefined ? 'missing subcommand' : `unknown subcommand "${command}"`}\n\n${AUDIT_USAGE}`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: { 'data-dir': { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (err) {
    io.stderr.write(`kmsd audit verify: ${(err as Error).message}\n\n${AUDIT_USAGE}`);
    return 2;
  }
  if (values.help === true) {
    io.stdout.write(AUDIT_USAGE);
    return 0;
  }
  // Same resolution as the daemon, so `kmsd audit verify` checks the log `kmsd` writes.
  const dataDir = values['data-dir'] ?? io.env.KMS_DATA_DIR ?? DEFAULTS.dataDir;
  const path = auditLogPath(dataDir);
  let result;
  try {
    result = verifyAuditLog(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === 'ENOENT'
        ? `no audit log at ${path}; is --data-dir right? (kmsd creates the log when it first starts)`
        : `cannot read the audit log ${path}: ${(err as Error).message}`;
    io.stderr.write(`kmsd audit verify: ${message}\n`);
    return 1;
  }
  if (!result.ok) {
    io.stderr.write(`audit log TAMPERED at line ${result.line}: ${result.reason}\n`);
    return 1;
  }
  io.stdout.write(`audit log OK: ${result.events} events\n`);
  return 0;
}

function defaultIo(): AuditCommandIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
