/** Test helpers that read the audit trail's files directly, as an outside witness of what kmsd wrote. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toChained } from '../../daemon/audit/chain.js';
import { auditDir } from '../../daemon/audit/segments.js';
import { listSegments } from '../../daemon/audit/trail.js';
import type { ChainedAuditEvent } from '../../daemon/domain/ports.js';

/** Segment file paths of a data dir's trail, oldest first. */
export function segmentPaths(dataDir: string): string[] {
  return listSegments(auditDir(dataDir)).map((s) => join(auditDir(dataDir), s.name));
}

/** A segment's text up to its data's end (the active one has a zero-filled tail). */
export function segmentText(path: string): string {
  const text = readFileSync(path, 'utf8');
  const end = text.indexOf('\0');
  return end === -1 ? text : text.slice(0, end);
}

/** Complete lines of every segment, oldest first (a torn last line is left out). */
export function trailLines(dataDir: string): string[] {
  return segmentPaths(dataDir).flatMap((path) => {
    const text = segmentText(path);
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    return complete === '' ? [] : complete.slice(0, -1).split('\n');
  });
}

/** Every event of the trail, oldest first, parsed from the segments on disk. */
export function readTrailEvents(dataDir: string): ChainedAuditEvent[] {
  return trailLines(dataDir).map((line) => toChained(JSON.parse(line) as Record<string, unknown>));
}
