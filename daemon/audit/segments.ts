/**
 * The on-disk layout of the audit trail: segment files, their small index files, and how both are
 * read without blocking the event loop.
 *
 *   <data-dir>/audit/                              mode 0700
 *     seg-00000000000000000001.jsonl               events seq 1… (one canonical line each)
 *     seg-00000000000000000001.idx.json            its index, written when the segment is sealed
 *     seg-00000000000000080213.jsonl               the next segment, named by its first seq
 *     seg-00000000000000000001.legacy.jsonl        a migrated pre-MAC audit.log (only ever first)
 *     prune-pending.json                           only between a prune record and its deletions
 *
 * The last segment is the active one (written to); every other one is sealed (mode 0400) and
 * has an index. The active segment is kept zero-filled ahead of its write position (trail.ts,
 * "Preallocation"), so its data ends at its first NUL byte (no line contains one: canonical JSON
 * escapes it); a sealed segment is cut to its data before its index is written. An index is the canonical JSON of a `SegmentIndex`, MACed under the audit key
 * like an event, so start-up can trust it without reading its segment, and `kmsd audit verify`
 * recomputes it from the segment to report any disagreement.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditKeyring } from '../domain/ports.js';
import { LineSplitter, canonicalJson, macOf, type RawLine } from './chain.js';

/** `<data-dir>/audit`. */
export const AUDIT_DIR = 'audit';
/** Written durably between a prune record and the deletions it announces (see trail.ts). */
export const PRUNE_PENDING_FILE = 'prune-pending.json';

const SEGMENT_NAME = /^seg-(\d{20})\.(jsonl|legacy\.jsonl)$/;
const INDEX_NAME = /^seg-(\d{20})\.idx\.json$/;

/** Index file format tag; bump on an incompatible change. */
export const INDEX_FORMAT = 'kms-audit-index/1';
/** A new index block starts after this many bytes, so a lookup reads at most about this much extra. */
export const INDEX_BLOCK_BYTES = 64 * 1024;
/** Distinct values an index lists per field; past this the list is dropped (null: "scan"). */
export const INDEX_MAX_VALUES = 256;
/** Read size of the asynchronous readers: one chunk is parsed between two event-loop turns. */
export const READ_CHUNK_BYTES = 64 * 1024;

/** What a segment's file name says. */
export interface SegmentName {
  name: string;
  firstSeq: number;
  /** A migrated pre-MAC log, checked with the legacy rules. */
  legacy: boolean;
}

export function segmentFileName(firstSeq: number, legacy = false): string {
  return `seg-${String(firstSeq).padStart(20, '0')}.${legacy ? 'legacy.jsonl' : 'jsonl'}`;
}

export function parseSegmentName(name: string): SegmentName | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (match?.[1] === undefined) return undefined;
  const firstSeq = Number(match[1]);
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1) return undefined;
  return { name, firstSeq, legacy: match[2] === 'legacy.jsonl' };
}

/** The index file of a segment. */
export function indexFileName(segment: SegmentName): string {
  return `seg-${String(segment.firstSeq).padStart(20, '0')}.idx.json`;
}

/** The first seq an index file name belongs to, or undefined when it is not an index name. */
export function parseIndexName(name: string): number | undefined {
  const match = INDEX_NAME.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export function auditDir(dataDir: string): string {
  return join(dataDir, AUDIT_DIR);
}

/** A block of consecutive events: [first seq, byte offset of its first line, min time ms, max time ms]. */
export type IndexBlock = [number, number, number, number];

/**
 * What a segment holds, in a few kilobytes: enough to skip segments and blocks that cannot match
 * a query and to seek to a seq, without reading the segment.
 */
export interface SegmentIndex {
  format: typeof INDEX_FORMAT;
  segment: string;
  legacy: boolean;
  /** Bytes of complete lines. */
  bytes: number;
  events: number;
  firstSeq: number;
  lastSeq: number;
  /** `prev` of the first event and `mac` (legacy: `hash`) of the last: how neighbours chain. */
  firstPrev: string;
  lastMac: string;
  minTime: number;
  maxTime: number;
  blocks: IndexBlock[];
  /** Distinct values, sorted; null when there were more than INDEX_MAX_VALUES. */
  folderIds: string[] | null;
  keyIds: string[] | null;
  subjects: string[] | null;
  operations: string[] | null;
}

/** An index as stored: with its MAC under the audit key. */
export type StoredIndex = SegmentIndex & { mac: string };

const VALUE_FIELDS = ['folderIds', 'keyIds', 'subjects', 'operations'] as const;
const EVENT_FIELD = { folderIds: 'folderId', keyIds: 'keyId', subjects: 'subject', operations: 'operation' } as const;

/** The facts of one event an index needs. */
export interface IndexedEvent {
  seq: number;
  prev: string;
  mac: string;
  timeMs: number;
  folderId?: string | undefined;
  keyId?: string | undefined;
  subject?: string | undefined;
  operation?: string | undefined;
}

/** Reads an `IndexedEvent` off a parsed record (`hash` stands for `mac` in legacy lines). */
export function indexedEventOf(record: Record<string, unknown>): IndexedEvent | undefined {
  const { seq, prev, time } = record;
  const mac = record.mac ?? record.hash;
  if (typeof seq !== 'number' || typeof prev !== 'string' || typeof mac !== 'string' || typeof time !== 'string') return undefined;
  const timeMs = Date.parse(time);
  if (Number.isNaN(timeMs)) return undefined;
  const str = (value: unknown) => (typeof value === 'string' ? value : undefined);
  return { seq, prev, mac, timeMs, folderId: str(record.folderId), keyId: str(record.keyId), subject: str(record.subject), operation: str(record.operation) };
}

/**
 * Builds a segment's index from its lines in order. Used while a segment is active (caught up
 * lazily from the file by queries and at sealing, never on the append path), at start-up for a
 * sealed segment whose index is missing, and by the verifier to check a stored index.
 */
export class IndexBuilder {
  private index: SegmentIndex;
  private readonly sets = new Map<(typeof VALUE_FIELDS)[number], Set<string> | null>(VALUE_FIELDS.map((f) => [f, new Set<string>()]));

  constructor(segment: SegmentName) {
    this.index = {
      format: INDEX_FORMAT,
      segment: segment.name,
      legacy: segment.legacy,
      bytes: 0,
      events: 0,
      firstSeq: segment.firstSeq,
      lastSeq: segment.firstSeq - 1,
      firstPrev: '',
      lastMac: '',
      minTime: 0,
      maxTime: 0,
      blocks: [],
      folderIds: [],
      keyIds: [],
      subjects: [],
      operations: [],
    };
  }

  /** Byte offset up to which lines have been added. */
  get bytes(): number {
    return this.index.bytes;
  }

  get events(): number {
    return this.index.events;
  }

  /** Adds the line at `offset` (of `length` bytes plus its "\n"). Lines must come in file order. */
  add(event: IndexedEvent, offset: number, length: number): void {
    const index = this.index;
    if (index.events === 0) {
      index.firstSeq = event.seq;
      index.firstPrev = event.prev;
      index.minTime = event.timeMs;
      index.maxTime = event.timeMs;
    }
    index.events++;
    index.lastSeq = event.seq;
    index.lastMac = event.mac;
    if (event.timeMs < index.minTime) index.minTime = event.timeMs;
    if (event.timeMs > index.maxTime) index.maxTime = event.timeMs;
    const block = index.blocks.at(-1);
    if (block === undefined || offset - block[1] >= INDEX_BLOCK_BYTES) index.blocks.push([event.seq, offset, event.timeMs, event.timeMs]);
    else {
      if (event.timeMs < block[2]) block[2] = event.timeMs;
      if (event.timeMs > block[3]) block[3] = event.timeMs;
    }
    for (const field of VALUE_FIELDS) {
      const set = this.sets.get(field);
      const value = event[EVENT_FIELD[field]];
      if (set === null || set === undefined || value === undefined || set.has(value)) continue;
      if (set.size >= INDEX_MAX_VALUES) this.sets.set(field, null);
      else set.add(value);
    }
    index.bytes = offset + length + 1;
  }

  /** The index so far (a snapshot; later `add`s do not change it). */
  snapshot(): SegmentIndex {
    const result: SegmentIndex = { ...this.index, blocks: this.index.blocks.map((b) => [...b] as IndexBlock) };
    for (const field of VALUE_FIELDS) {
      const set = this.sets.get(field);
      result[field] = set === null || set === undefined ? null : [...set].sort();
    }
    return result;
  }
}

/** The stored form of an index: canonical JSON with its MAC. */
export function sealIndex(index: SegmentIndex, keyring: AuditKeyring): string {
  const { ...plain } = index;
  return `${canonicalJson({ ...plain, mac: macOf(keyring, canonicalJson(plain)) })}\n`;
}

/** The top-level `mac` member of a stored index (string values cannot hold an unescaped quote). */
const INDEX_MAC_MEMBER = /,"mac":"([0-9a-f]{64})"/;

/**
 * Parses and authenticates a stored index; returns the reason when it cannot be trusted. The MAC
 * is checked over the stored text with its `mac` member cut out, which is the canonical JSON it
 * was computed over: start-up reads hundreds of indexes and re-serializing each one would cost
 * more than reading it. A stored index that is not byte for byte canonical therefore fails too.
 */
export function openIndex(text: string, segment: SegmentName, keyring: AuditKeyring): { ok: true; index: SegmentIndex } | { ok: false; reason: string } {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const member = INDEX_MAC_MEMBER.exec(body);
  if (member?.[1] === undefined || macOf(keyring, body.slice(0, member.index) + body.slice(member.index + member[0].length)) !== member[1]) {
    return { ok: false, reason: 'has a MAC that does not match its content under the audit key (edited, or written under another key)' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'is not a JSON object' };
  const { mac: _mac, ...plain } = parsed as Record<string, unknown>;
  const index = plain as unknown as SegmentIndex;
  if (index.format !== INDEX_FORMAT || index.segment !== segment.name || index.legacy !== segment.legacy || index.firstSeq < segment.firstSeq) {
    return { ok: false, reason: `does not describe ${segment.name}` };
  }
  return { ok: true, index };
}

/** Why two indexes of the same segment differ, or undefined when they agree. */
export function compareIndexes(stored: SegmentIndex, computed: SegmentIndex): string | undefined {
  for (const field of ['bytes', 'events', 'firstSeq', 'lastSeq', 'firstPrev', 'lastMac', 'minTime', 'maxTime'] as const) {
    if (stored[field] !== computed[field]) return `${field} is ${JSON.stringify(stored[field])} in the index but ${JSON.stringify(computed[field])} in the segment`;
  }
  if (canonicalJson(stored.blocks) !== canonicalJson(computed.blocks)) return 'its blocks (seq → byte offset, time range) do not match the segment';
  for (const field of VALUE_FIELDS) {
    if (canonicalJson(stored[field]) !== canonicalJson(computed[field])) return `its ${field} list does not match the segment`;
  }
  return undefined;
}

/**
 * Lines of `handle` between byte `start` and `end` (exclusive), read in READ_CHUNK_BYTES chunks;
 * each chunk is an `await`, so a long scan lets other requests run in between.
 */
export async function* readLines(handle: FileHandle, start: number, end: number, chunkSize = READ_CHUNK_BYTES): AsyncGenerator<RawLine> {
  const chunk = Buffer.allocUnsafe(chunkSize);
  const splitter = new LineSplitter(start);
  let position = start;
  while (position < end) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunkSize, end - position), position);
    if (bytesRead === 0) break;
    yield* splitter.push(chunk.subarray(0, bytesRead));
    position += bytesRead;
  }
  const rest = splitter.end();
  if (rest !== undefined) yield rest;
}

/** Where a segment's data ends, and what follows it. */
export interface DataExtent {
  /** The first NUL byte, or the file's size: no line contains a NUL. */
  end: number;
  /** Bytes in the file (`end` plus the zero-filled tail and anything after it). */
  size: number;
  /** Whether something other than zeros follows `end`: a crash during an unacknowledged write. */
  junkAfter: boolean;
}

/**
 * Reads a segment from the start to find where its data ends (see the layout above); one chunk
 * per `await`, and the chunks past the end are only compared with zeros.
 */
export async function dataExtent(handle: FileHandle): Promise<DataExtent> {
  const size = (await handle.stat()).size;
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES * 16);
  const zeros = Buffer.alloc(chunk.length);
  let end = size;
  let junkAfter = false;
  for (let position = 0; position < size && !junkAfter; ) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - position), position);
    if (bytesRead === 0) break;
    const read = chunk.subarray(0, bytesRead);
    let from = 0;
    if (end === size) {
      const nul = read.indexOf(0);
      if (nul !== -1) {
        end = position + nul;
        from = nul;
      } else from = bytesRead;
    }
    if (from < bytesRead && !read.subarray(from).equals(zeros.subarray(0, bytesRead - from))) junkAfter = true;
    position += bytesRead;
  }
  return { end, size, junkAfter };
}

/** Opens a segment for reading; undefined when it has been pruned meanwhile. */
export async function openForReading(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
