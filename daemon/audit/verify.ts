/**
 * The full offline walk of the audit trail (`kmsd audit verify`): every line of every segment is
 * parsed, MAC-checked under the audit key and chained to the one before; every index is
 * authenticated and recomputed; the trail's start must be genesis or explained by an
 * `Audit.Prune` record; its end is compared with the head anchor. Reads in chunks, so a trail of
 * any size is checked in constant memory (plus one small record per prune and alert).
 *
 * Read-only and safe next to a live daemon: the anchor is read before the segments are listed, so
 * every anchored event was durable, and listed, by the time it is looked for; a last line being
 * written (or torn by a crash) at the very end of the active segment is reported as a note, not as
 * tampering (the daemon never acknowledged it and cuts it at its next start).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditAnchorStore, AuditKeyring } from '../domain/ports.js';
import { ChainChecker, GENESIS_PREV, LegacyChainChecker, isRecordedGap, parseLine } from './chain.js';
import {
  IndexBuilder,
  PRUNE_PENDING_FILE,
  auditDir,
  compareIndexes,
  indexFileName,
  indexedEventOf,
  openIndex,
  parseIndexName,
  dataExtent,
  readLines,
  type SegmentName,
} from './segments.js';
import { listSegments } from './trail.js';

/** One problem: where (segment file and 1-based line, when it is about a line) and why. */
export interface Finding {
  segment?: string;
  line?: number;
  reason: string;
}

export interface TrailVerification {
  ok: boolean;
  findings: Finding[];
  /** Facts worth saying that are not tampering: legacy rules used, prunes, recorded alerts, a line being written. */
  notes: string[];
  events: number;
  segments: number;
  headSeq: number;
}

interface Recorded {
  seq: number;
  segment: string;
  line: number;
  details: Record<string, unknown>;
}

/** Findings reported per run at most; the first ones are what matters. */
const MAX_FINDINGS = 50;

/** Walks the trail under `<dataDir>/audit`; see the file comment. Throws only when the directory cannot be read. */
export async function verifyTrail(dataDir: string, keyring: AuditKeyring, anchors: AuditAnchorStore): Promise<TrailVerification> {
  const dir = auditDir(dataDir);
  const anchor = anchors.read();
  const segments = listSegments(dir);
  const files = readdirSync(dir);
  const findings: Finding[] = [];
  const notes: string[] = [];
  const find = (finding: Finding) => {
    if (findings.length < MAX_FINDINGS) findings.push(finding);
  };
  const prunes: Recorded[] = [];
  const alerts: Recorded[] = [];
  let events = 0;
  /** seq and mac of the last line read (valid or not), to keep checking after a finding. */
  let last: { seq: number; mac: string; segment: string; line: number } | undefined;
  let first: { seq: number; prev: string; segment: string; operation: unknown; details: unknown } | undefined;
  let anchoredMac: { mac: string; segment: string; line: number } | undefined;

  for (const [position, name] of segments.entries()) {
    const isLast = position === segments.length - 1 && !name.legacy;
    if (name.legacy) notes.push(`${name.name} is the log of a kmsd before keyed chains; checked with its own rules (unkeyed SHA-256 "hash")`);
    const checker = name.legacy ? new LegacyChainChecker() : new ChainChecker(keyring);
    if (last !== undefined) checker.resync({ seq: last.seq + 1, prev: last.mac });
    const builder = new IndexBuilder(name);
    const path = join(dir, name.name);
    let lineNumber = 0;
    let broken = false;
    /** An unparseable line, forgiven only if it is the very last line of the active segment. */
    let suspect: { line: number; reason: string } | undefined;
    let offset = 0;
    const walk = async (): Promise<void> => {
      const handle = await open(path, 'r');
      try {
        // The data ends where a zero-filled (preallocated) tail begins.
        const extent = await dataExtent(handle);
        const size = extent.end;
        if (offset === 0 && extent.junkAfter) {
          if (isLast) notes.push(`${name.name} has bytes after a zero-filled gap at byte ${size} (torn by a crash during a write; never acknowledged, kmsd cuts them at start)`);
          else find({ segment: name.name, reason: `data after a run of zero bytes at byte ${size} in a sealed segment` });
        }
        for await (const raw of readLines(handle, offset, size)) {
          if (!raw.terminated) {
            if (isLast) notes.push(`${name.name} line ${lineNumber + 1} is incomplete (a write in progress, or torn by a crash; never acknowledged, kmsd cuts it at start)`);
            else find({ segment: name.name, line: lineNumber + 1, reason: 'incomplete last line (no trailing newline) in a sealed segment: the segment was cut' });
            break;
          }
          lineNumber++;
          offset = raw.offset + raw.bytes.length + 1;
          if (suspect !== undefined) {
            find({ segment: name.name, line: suspect.line, reason: suspect.reason });
            suspect = undefined;
            broken = true;
          }
          const parsed = parseLine(raw.bytes);
          if (parsed.ok) {
            const indexed = indexedEventOf(parsed.record);
            if (indexed !== undefined) builder.add(indexed, raw.offset, raw.bytes.length);
          }
          if (first === undefined && parsed.ok && typeof parsed.record.seq === 'number' && typeof parsed.record.prev === 'string') {
            first = { seq: parsed.record.seq, prev: parsed.record.prev, segment: name.name, operation: parsed.record.operation, details: parsed.record.details };
            // The first event present starts the walk; whether it may start there is checked at the end.
            checker.resync({ seq: parsed.record.seq, prev: parsed.record.prev });
          }
          if (broken) {
            if (parsed.ok && typeof parsed.record.seq === 'number') last = { seq: parsed.record.seq, mac: String(parsed.record.mac ?? parsed.record.hash), segment: name.name, line: lineNumber };
            continue;
          }
          let result = checker.check(raw.bytes);
          if (!result.ok && last !== undefined && isRecordedGap(parsed, last)) {
            checker.resync({ seq: (parsed as { ok: true; record: { seq: number } }).record.seq, prev: last.mac });
            result = checker.check(raw.bytes);
          }
          if (result.ok) {
            events++;
            const record = result.record;
            last = { seq: result.event.seq, mac: result.event.mac, segment: name.name, line: lineNumber };
            if (anchor !== null && result.event.seq === anchor.seq) anchoredMac = { mac: result.event.mac, segment: name.name, line: lineNumber };
            if (record.subject === 'system:audit' && typeof record.details === 'object' && record.details !== null) {
              const entry = { seq: result.event.seq, segment: name.name, line: lineNumber, details: record.details as Record<string, unknown> };
              if (record.operation === 'Audit.Prune') prunes.push(entry);
              if (record.operation === 'Audit.IntegrityAlert') alerts.push(entry);
            }
          } else if (result.unparseable && isLast) {
            suspect = { line: lineNumber, reason: result.reason };
          } else {
            find({ segment: name.name, line: lineNumber, reason: result.reason });
            broken = true;
            if (result.seq !== undefined && result.mac !== undefined) last = { seq: result.seq, mac: result.mac, segment: name.name, line: lineNumber };
          }
        }
      } finally {
        await handle.close();
      }
    };
    try {
      await walk();
      // Sealed by the daemon while we read it? Then read what it wrote before sealing.
      if (isLast && files.indexOf(indexFileName(name)) === -1 && existsFile(join(dir, indexFileName(name)))) await walk();
    } catch (err) {
      find({ segment: name.name, reason: `cannot be read: ${(err as Error).message}` });
      continue;
    }
    if (suspect !== undefined) notes.push(`${name.name} line ${suspect.line} is not JSON (${suspect.reason}): what power loss leaves at the end; never acknowledged, kmsd cuts it at start`);
    checkIndex(dir, name, builder, keyring, isLast, find, notes);
  }

  // The start: genesis, a recorded prune, or a recorded loss.
  if (first !== undefined) {
    const f = first;
    const firstDetails = (typeof f.details === 'object' && f.details !== null ? f.details : {}) as Record<string, unknown>;
    if (f.seq === 1) {
      if (f.prev !== GENESIS_PREV) find({ segment: f.segment, line: 1, reason: 'prev must be 64 zeros on the first event of the trail' });
    } else if (f.operation === 'Audit.IntegrityAlert' && firstDetails.foundSeq === 0 && firstDetails.anchorSeq === f.seq - 1 && f.prev === GENESIS_PREV) {
      // a recorded loss of the whole trail: reported with the alerts below
    } else {
      const exact = prunes.find((p) => p.details.lastSeq === f.seq - 1);
      const partial = prunes.find((p) => Array.isArray(p.details.segments) && (p.details.segments as unknown[]).includes(f.segment));
      if (exact !== undefined) {
        if (exact.details.lastMac !== f.prev) {
          find({ segment: f.segment, line: 1, reason: `prev does not match the MAC of event ${f.seq - 1} recorded by the Audit.Prune record at ${exact.segment} line ${exact.line}` });
        } else notes.push(`events 1..${f.seq - 1} were pruned by retention (Audit.Prune at ${exact.segment} line ${exact.line})`);
      } else if (partial !== undefined) {
        notes.push(`the prune recorded at ${partial.segment} line ${partial.line} was interrupted; kmsd completes it at its next start`);
      } else {
        find({ segment: f.segment, line: 1, reason: `the trail starts at seq ${f.seq}: events 1..${f.seq - 1} are missing and no Audit.Prune record covers them (an old segment was deleted)` });
      }
    }
  }

  for (const alert of alerts) {
    notes.push(
      `integrity alert recorded at ${alert.segment} line ${alert.line}: events ${Number(alert.details.foundSeq) + 1}..${String(alert.details.anchorSeq)} were missing at a start with --audit-accept-loss (${typeof alert.details.problem === 'string' ? alert.details.problem : 'no detail'})`,
    );
  }

  // Index files whose segment is gone.
  for (const file of files) {
    const seq = parseIndexName(file);
    if (seq === undefined || segments.some((s) => s.firstSeq === seq)) continue;
    const segmentNames = [`seg-${String(seq).padStart(20, '0')}.jsonl`, `seg-${String(seq).padStart(20, '0')}.legacy.jsonl`];
    const pruned = prunes.some((p) => Array.isArray(p.details.segments) && segmentNames.some((n) => (p.details.segments as unknown[]).includes(n)));
    if (pruned) notes.push(`${file} belongs to a pruned segment; kmsd removes it at its next start`);
    else find({ segment: file, reason: 'is the index of a segment that no longer exists and no Audit.Prune record names it (the segment was deleted)' });
  }
  if (files.includes(PRUNE_PENDING_FILE)) notes.push(`${PRUNE_PENDING_FILE}: a prune is being completed (or was interrupted; kmsd completes it at its next start)`);

  const headSeq = last?.seq ?? 0;
  if (anchor === null) find({ reason: `the head anchor (${anchors.description}) is missing` });
  else if (anchor.seq > headSeq && !alerts.some((a) => Number(a.details.anchorSeq) >= anchor.seq)) {
    const where = last === undefined ? 'the trail is empty' : `the trail ends at seq ${headSeq} (${last.segment} line ${last.line})`;
    find({ ...(last !== undefined ? { segment: last.segment, line: last.line } : {}), reason: `cut tail: ${where} but the head anchor (${anchors.description}, written ${anchor.time}) records seq ${anchor.seq}: events were cut off the end or the trail was rolled back` });
  } else if (anchoredMac !== undefined && anchoredMac.mac !== anchor.mac) {
    find({ segment: anchoredMac.segment, line: anchoredMac.line, reason: `event ${anchor.seq} has another MAC than the head anchor (${anchors.description}) records: the trail was replaced or rolled back` });
  }
  return { ok: findings.length === 0, findings, notes, events, segments: segments.length, headSeq };
}


function checkIndex(
  dir: string,
  name: SegmentName,
  builder: IndexBuilder,
  keyring: AuditKeyring,
  isLast: boolean,
  find: (finding: Finding) => void,
  notes: string[],
): void {
  const file = indexFileName(name);
  let text: string;
  try {
    text = readFileSync(join(dir, file), 'utf8');
  } catch {
    if (!isLast) notes.push(`${name.name} is sealed but has no index ${file} (a crash right after sealing; kmsd rebuilds it at start)`);
    return;
  }
  const opened = openIndex(text, name, keyring);
  if (!opened.ok) {
    find({ segment: file, reason: `${opened.reason}` });
    return;
  }
  const disagreement = compareIndexes(opened.index, builder.snapshot());
  if (disagreement !== undefined) find({ segment: file, reason: `disagrees with ${name.name}: ${disagreement}` });
}

function existsFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
