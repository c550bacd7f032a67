/**
 * Reading events off the segments for `AuditLog.query` and `kmsd audit export`: skips whole
 * segments and index blocks that cannot match (time range, listed ids), reads the rest in
 * asynchronous chunks, and stops after a byte budget so that one page never holds the event loop
 * or the disk for long.
 */
import type { FileHandle } from 'node:fs/promises';
import { invalidArgument } from '../domain/errors.js';
import type { AuditQuery, ChainedAuditEvent } from '../domain/ports.js';
import { RFC3339, parseLine, toChained } from './chain.js';
import { openForReading, readLines, type SegmentIndex } from './segments.js';

/** Same limits as the key listings (daemon/domain/keys.ts). */
export const AUDIT_DEFAULT_PAGE_SIZE = 100;
export const AUDIT_MAX_PAGE_SIZE = 1000;
/**
 * Bytes of segment a single query page may read (≈ 40,000 events). A page that reaches it is
 * returned short, with a `nextPageToken` after the last event examined; the caller keeps paging.
 */
export const AUDIT_QUERY_SCAN_BUDGET = 8 * 1024 * 1024;

/** A segment as a reader sees it: where to read, up to which byte, and its index when trusted. */
export interface ReadableSegment {
  path: string;
  name: string;
  /** Bytes of complete, durable lines. */
  end: number;
  /** Covers the bytes up to `index.bytes`; absent: read everything. */
  index: SegmentIndex | undefined;
}

/** A validated query: exact filters, an inclusive time range in ms, and the seq to continue after. */
export interface ScanFilter {
  folderId?: string | undefined;
  keyId?: string | undefined;
  subject?: string | undefined;
  operation?: string | undefined;
  fromMs: number;
  toMs: number;
  afterSeq: number;
}

const EXACT = ['folderId', 'keyId', 'subject', 'operation'] as const;
const LISTS = { folderId: 'folderIds', keyId: 'keyIds', subject: 'subjects', operation: 'operations' } as const;

/** Checks paging and time arguments; throws `INVALID_ARGUMENT` naming the parameter. */
export function validateQuery(query: AuditQuery): { filter: ScanFilter; pageSize: number } {
  const pageSize = query.pageSize === undefined || query.pageSize === 0 ? AUDIT_DEFAULT_PAGE_SIZE : query.pageSize;
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > AUDIT_MAX_PAGE_SIZE) {
    throw invalidArgument('pageSize', `must be an integer from 0 to ${AUDIT_MAX_PAGE_SIZE}`);
  }
  const afterSeq = query.pageToken === undefined || query.pageToken === '' ? 0 : decodePageToken(query.pageToken);
  const fromMs = query.from === undefined ? -Infinity : parseBound('from', query.from);
  const toMs = query.to === undefined ? Infinity : parseBound('to', query.to);
  if (fromMs > toMs) throw invalidArgument('to', 'must not be earlier than from');
  return { filter: { folderId: query.folderId, keyId: query.keyId, subject: query.subject, operation: query.operation, fromMs, toMs, afterSeq }, pageSize };
}

/** Opaque to callers; names the last seq examined, so it survives appends, rotation and pruning. */
export function encodePageToken(seq: number): string {
  return Buffer.from(`after:${seq}`).toString('base64url');
}

export function decodePageToken(token: string): number {
  const match = /^after:(\d{1,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (match?.[1] === undefined) throw invalidArgument('pageToken', 'is not a token returned by a previous call');
  return Number(match[1]);
}

export function parseBound(field: string, value: string): number {
  const time = Date.parse(value);
  if (!RFC3339.test(value) || Number.isNaN(time)) throw invalidArgument(field, `must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z, got "${value.slice(0, 64)}"`);
  return time;
}

/** Whether a segment (by its index) can hold a match at all. */
function mayMatch(index: SegmentIndex, filter: ScanFilter): boolean {
  if (index.events === 0 || index.maxTime < filter.fromMs || index.minTime > filter.toMs) return false;
  for (const field of EXACT) {
    const wanted = filter[field];
    const listed = index[LISTS[field]];
    if (wanted !== undefined && listed !== null && !listed.includes(wanted)) return false;
  }
  return true;
}

function matches(event: ChainedAuditEvent, filter: ScanFilter): boolean {
  for (const field of EXACT) {
    const wanted = filter[field];
    if (wanted !== undefined && event[field] !== wanted) return false;
  }
  const time = Date.parse(event.time);
  return time >= filter.fromMs && time <= filter.toMs;
}

/** Byte strings every matching line must contain (lines are canonical JSON), to skip JSON.parse on most lines. */
function needles(filter: ScanFilter): Buffer[] {
  return EXACT.flatMap((field) => {
    const wanted = filter[field];
    return wanted === undefined ? [] : [Buffer.from(`"${field}":${JSON.stringify(wanted)}`, 'utf8')];
  });
}

/** The byte ranges of a segment worth reading, with the last seq each range ends at (when known). */
function ranges(segment: ReadableSegment, filter: ScanFilter): { start: number; end: number; lastSeq: number | undefined }[] {
  const index = segment.index;
  if (index === undefined) return [{ start: 0, end: segment.end, lastSeq: undefined }];
  const out: { start: number; end: number; lastSeq: number | undefined }[] = [];
  if (mayMatch(index, filter)) {
    index.blocks.forEach((block, i) => {
      const next = index.blocks[i + 1];
      const blockLast = next === undefined ? index.lastSeq : next[0] - 1;
      if (blockLast <= filter.afterSeq || block[3] < filter.fromMs || block[2] > filter.toMs) return;
      out.push({ start: block[1], end: next === undefined ? index.bytes : next[1], lastSeq: blockLast });
    });
  }
  // Whatever the index does not cover yet (the active segment's newest lines): read all of it.
  if (segment.end > index.bytes) out.push({ start: index.bytes, end: segment.end, lastSeq: undefined });
  return out;
}

export type ScanStop = 'end' | 'budget' | 'caller';

/**
 * Calls `onMatch` for each matching event after `filter.afterSeq`, oldest first, until it returns
 * false, the segments end, or `budgetBytes` have been read. `lastExamined` is the highest seq known
 * to have been looked at (skipped by index or read), where a continuation may start.
 */
export async function scanSegments(
  segments: readonly ReadableSegment[],
  filter: ScanFilter,
  budgetBytes: number,
  onMatch: (event: ChainedAuditEvent, line: Buffer) => boolean | Promise<boolean>,
): Promise<{ stop: ScanStop; lastExamined: number }> {
  const required = needles(filter);
  let lastExamined = filter.afterSeq;
  let scanned = 0;
  for (const segment of segments) {
    if (segment.index !== undefined && segment.index.events > 0 && segment.index.lastSeq <= filter.afterSeq && segment.end <= segment.index.bytes) continue;
    const todo = ranges(segment, filter);
    if (todo.length === 0) {
      if (segment.index !== undefined) lastExamined = Math.max(lastExamined, segment.index.lastSeq);
      continue;
    }
    let handle: FileHandle | undefined;
    try {
      handle = await openForReading(segment.path);
      if (handle === undefined) continue; // pruned while we were paging: those events are gone
      for (const range of todo) {
        for await (const line of readLines(handle, range.start, range.end)) {
          if (!line.terminated) break;
          scanned += line.bytes.length + 1;
          if (required.every((needle) => line.bytes.includes(needle))) {
            const parsed = parseLine(line.bytes);
            if (parsed.ok) {
              const event = toChained(parsed.record);
              if (typeof event.seq === 'number' && event.seq > filter.afterSeq) {
                lastExamined = Math.max(lastExamined, event.seq);
                if (matches(event, filter) && !(await onMatch(event, line.bytes))) return { stop: 'caller', lastExamined };
              }
            }
          } else {
            const seq = seqOfLine(line.bytes);
            if (seq !== undefined && seq > lastExamined) lastExamined = seq;
          }
          if (scanned >= budgetBytes) return { stop: 'budget', lastExamined };
        }
        if (range.lastSeq !== undefined) lastExamined = Math.max(lastExamined, range.lastSeq);
      }
      if (segment.index !== undefined && segment.end <= segment.index.bytes) lastExamined = Math.max(lastExamined, segment.index.lastSeq);
    } finally {
      await handle?.close();
    }
  }
  return { stop: 'end', lastExamined };
}

const SEQ_MEMBER = Buffer.from('"seq":');

/** The seq of a canonical line without parsing all of it (it is the only `"seq":` member). */
function seqOfLine(line: Buffer): number | undefined {
  const at = line.lastIndexOf(SEQ_MEMBER);
  if (at === -1) return undefined;
  let value = 0;
  let i = at + SEQ_MEMBER.length;
  const start = i;
  for (; i < line.length; i++) {
    const c = line[i] as number;
    if (c < 0x30 || c > 0x39) break;
    value = value * 10 + (c - 0x30);
  }
  return i === start ? undefined : value;
}
