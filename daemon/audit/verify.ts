/**
 * Offline check of an audit log (`kmsd audit verify`): walks the whole hash chain and names the
 * first line that breaks it. Reads the file in chunks, so logs of any size can be checked.
 */
import { closeSync, openSync } from 'node:fs';
import { ChainChecker, readLines } from './chain.js';

/** The result of `verifyAuditLog`. `line` is 1-based; `reason` is meant for a human. */
export type AuditVerification = { ok: true; events: number } | { ok: false; line: number; reason: string };

/**
 * Checks every line of the audit log at `path`: it must parse, carry the next `seq`, a `prev`
 * equal to the previous line's `hash`, a `hash` matching its content, and be byte for byte the
 * canonical JSON kmsd writes. Any edited, removed, inserted or reordered line, and a file cut off
 * in the middle of a line, is reported with its line number.
 *
 * Limits (inherent to an unkeyed chain): cutting off whole lines at the end leaves a valid shorter
 * chain, and someone who rewrites every line from the edit onwards with fresh hashes is not
 * detected. Comparing the last `hash` with a copy kept elsewhere closes both gaps.
 *
 * Throws the fs error if the file cannot be read (ENOENT when there is no log).
 */
export function verifyAuditLog(path: string): AuditVerification {
  const fd = openSync(path, 'r');
  try {
    const checker = new ChainChecker();
    let line = 0;
    for (const raw of readLines(fd)) {
      line++;
      if (!raw.terminated) {
        return {
          ok: false,
          line,
          reason:
            'incomplete last line (no trailing newline): the file was cut off, a write was torn by a crash ' +
            '(kmsd removes such a line when it starts), or kmsd was writing it while this ran',
        };
      }
      const result = checker.check(raw.bytes);
      if (!result.ok) return { ok: false, line, reason: result.reason };
    }
    return { ok: true, events: checker.count };
  } finally {
    closeSync(fd);
  }
}
