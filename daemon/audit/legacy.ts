/**
 * The one-time move of a kmsd 0.1 `<data-dir>/audit.log` (unkeyed SHA-256 chain) into the
 * segmented trail: checked with its own rules, a torn last line cut as 0.1 did, then renamed
 * durably to `audit/seg-00000000000000000001.legacy.jsonl` (mode 0400). The keyed chain continues
 * after it: its first event's `prev` is the legacy head `hash`.
 */
import { chmodSync, closeSync, fstatSync, ftruncateSync, fsyncSync, openSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDirectory } from '../store/durable-file.js';
import { GENESIS_PREV, LEGACY_AUDIT_LOG_FILE, LegacyChainChecker, readLinesSync } from './chain.js';
import { segmentFileName } from './segments.js';

/** Start-up refused because the audit trail cannot be trusted. The message says what to do. */
export class CorruptAuditLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptAuditLogError';
  }
}

export function legacyLogPath(dataDir: string): string {
  return join(dataDir, LEGACY_AUDIT_LOG_FILE);
}

/** What a legacy log holds once checked (and repaired). */
export interface LegacyLog {
  events: number;
  /** `hash` of its last event (GENESIS_PREV when empty). */
  head: string;
}

/**
 * Checks the legacy log at `path` with the 0.1 rules and cuts what a crash can leave (a last line
 * without "\n", or a last line that is not JSON at all), with a warning. Anything else throws
 * `CorruptAuditLogError`; the file is never reset. Reads in chunks: memory does not grow with it.
 */
export function checkLegacyLog(path: string, logger?: { warn(message: string): void }): LegacyLog {
  const fd = openSync(path, 'r+');
  try {
    const checker = new LegacyChainChecker();
    let validBytes = 0;
    let lineNumber = 0;
    let suspect: { line: number; reason: string } | undefined;
    let torn = false;
    for (const line of readLinesSync(fd)) {
      lineNumber++;
      if (!line.terminated) {
        torn = true;
        break;
      }
      if (suspect !== undefined) throw corruptLegacy(path, suspect.line, suspect.reason);
      const result = checker.check(line.bytes);
      if (result.ok) validBytes = line.offset + line.bytes.length + 1;
      else if (result.unparseable) suspect = { line: lineNumber, reason: result.reason };
      else throw corruptLegacy(path, lineNumber, result.reason);
    }
    const fileBytes = fstatSync(fd).size;
    if (validBytes < fileBytes) {
      ftruncateSync(fd, validBytes);
      fsyncSync(fd);
      const why = suspect !== undefined ? `line ${suspect.line}: ${suspect.reason}` : torn ? `line ${lineNumber} has no trailing newline` : 'trailing bytes';
      logger?.warn(
        `audit log ${path}: removed ${fileBytes - validBytes} bytes of an incomplete last line (${why}), left by a crash during a ` +
          `write that was never acknowledged; the log continues after event ${checker.count}`,
      );
    }
    return { events: checker.count, head: checker.count === 0 ? GENESIS_PREV : checker.head };
  } finally {
    closeSync(fd);
  }
}

function corruptLegacy(path: string, line: number, reason: string): CorruptAuditLogError {
  return new CorruptAuditLogError(
    `audit log ${path} is corrupt at line ${line}: ${reason}; refusing to start (it is checked before it moves into the segmented trail). ` +
      'Run `kmsd audit verify --data-dir DIR` for details, then restore the file from a backup, or move it away to start a new ' +
      'chain (keep the old file as evidence); kmsd never rewrites it silently.',
  );
}

/**
 * Moves a checked legacy log into `auditDir` as its first, read-only segment; an empty one is
 * simply removed. Both directories are fsynced, so after a crash the log is in exactly one place.
 */
export function moveLegacyLog(dataDir: string, auditDir: string, log: LegacyLog): string | undefined {
  const from = legacyLogPath(dataDir);
  if (log.events === 0) {
    unlinkSync(from);
    fsyncDirectory(dataDir);
    return undefined;
  }
  const name = segmentFileName(1, true);
  const to = join(auditDir, name);
  chmodSync(from, 0o400);
  renameSync(from, to);
  fsyncDirectory(auditDir);
  fsyncDirectory(dataDir);
  return name;
}
