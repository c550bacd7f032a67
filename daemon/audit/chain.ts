/**
 * The hash chain of the audit log, shared by the writer (./jsonl-audit.ts) and the offline
 * checker (./verify.ts) so that both agree byte for byte on what a valid line is.
 *
 * A line is the canonical JSON of a `ChainedAuditEvent` followed by "\n". Canonical JSON has the
 * object keys sorted (recursively) and no whitespace, so the same event always serializes to the
 * same bytes. `hash` is the hex SHA-256 of the canonical JSON of the event without `hash` (that is,
 * including `seq` and `prev`), and `prev` is the `hash` of the line before ("0"×64 on line 1).
 * Editing, removing, inserting or reordering a line therefore breaks either its own hash, the
 * `seq` sequence or the next line's `prev`.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { AuditEvent, ChainedAuditEvent } from '../domain/ports.js';

/** `prev` of the first event. */
export const GENESIS_PREV = '0'.repeat(64);

/** The log's file name inside the data dir. */
export const AUDIT_LOG_FILE = 'audit.log';

const REQUIRED_FIELDS = ['time', 'requestId', 'subject', 'operation', 'result'] as const;
const OPTIONAL_FIELDS = ['folderId', 'keyId', 'versionId', 'remoteAddress'] as const;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** RFC 3339 date-time (what `Date.toISOString()` produces, offsets allowed). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** JSON with object keys sorted recursively and no whitespace; `undefined` members are omitted. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    // JSON has no NaN/Infinity; JSON.stringify would silently write null and the hash would lie.
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON cannot hold the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item: unknown) => canonicalJson(item ?? null)).join(',')}]`;
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
    return `{${members.join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

/** The `hash` of an event: hex SHA-256 over its canonical JSON without `hash`. */
export function hashEvent(event: Omit<ChainedAuditEvent, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = event;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/**
 * Copies only the fields an audit event may carry. Anything else a caller passes (a request body,
 * a token, plaintext by mistake) is dropped here rather than written to disk forever.
 * Throws a TypeError naming the field when a field has the wrong type: that is a bug in the caller.
 */
export function pickAuditFields(event: AuditEvent): AuditEvent {
  const source = event as unknown as Record<string, unknown>;
  const problem = describeInvalidFields(source);
  if (problem !== undefined) throw new TypeError(`invalid audit event: ${problem}`);
  const picked: Record<string, string> = {};
  for (const field of [...REQUIRED_FIELDS, ...OPTIONAL_FIELDS]) {
    const value = source[field];
    if (typeof value === 'string') picked[field] = value;
  }
  return picked as unknown as AuditEvent;
}

/** Why `record` is not a valid AuditEvent, or undefined when it is. Unknown fields are ignored. */
function describeInvalidFields(record: Record<string, unknown>): string | undefined {
  for (const field of REQUIRED_FIELDS) {
    if (typeof record[field] !== 'string') return `field "${field}" is missing or not a string`;
  }
  for (const field of OPTIONAL_FIELDS) {
    if (record[field] !== undefined && typeof record[field] !== 'string') return `field "${field}" is not a string`;
  }
  const time = record.time as string;
  if (!RFC3339.test(time) || Number.isNaN(Date.parse(time))) return `field "time" is not an RFC 3339 date-time: ${JSON.stringify(time)}`;
  return undefined;
}

/** The outcome of checking one line against the chain. */
export type LineCheck =
  | { ok: true; event: ChainedAuditEvent }
  | {
      ok: false;
      reason: string;
      /**
       * The line is not JSON at all (or empty): what a crash leaves behind at the end of the file.
       * The other failures (wrong seq, prev or hash) mean someone or something changed the file.
       */
      unparseable: boolean;
    };

/**
 * Walks the chain line by line. Each `check` compares the line with the state the previous lines
 * left (expected seq, expected prev) and advances that state only when the line is valid.
 */
export class ChainChecker {
  private expectedSeq = 1;
  private expectedPrev = GENESIS_PREV;

  /** Number of valid lines so far (the seq of the last one). */
  get count(): number {
    return this.expectedSeq - 1;
  }

  /** The hash the next line's `prev` must carry. */
  get head(): string {
    return this.expectedPrev;
  }

  check(line: Buffer): LineCheck {
    if (line.length === 0) return { ok: false, reason: 'line is empty', unparseable: true };
    const text = line.toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return { ok: false, reason: `not valid JSON (${(err as Error).message})`, unparseable: true };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return { ok: false, reason: 'not a JSON object', unparseable: true };
    }
    const record = parsed as Record<string, unknown>;
    const problem = describeInvalidFields(record);
    if (problem !== undefined) return { ok: false, reason: problem, unparseable: false };
    const { seq, prev, hash } = record;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
      return { ok: false, reason: 'field "seq" is missing or not a positive integer', unparseable: false };
    }
    if (typeof prev !== 'string' || !HEX_SHA256.test(prev)) {
      return { ok: false, reason: 'field "prev" is missing or not a hex SHA-256', unparseable: false };
    }
    if (typeof hash !== 'string' || !HEX_SHA256.test(hash)) {
      return { ok: false, reason: 'field "hash" is missing or not a hex SHA-256', unparseable: false };
    }
    if (seq !== this.expectedSeq) {
      return {
        ok: false,
        reason: `seq is ${seq}, expected ${this.expectedSeq} (a line was removed, inserted or moved)`,
        unparseable: false,
      };
    }
    if (prev !== this.expectedPrev) {
      const previous = seq === 1 ? 'must be 64 zeros on the first line' : `does not match the hash of line ${seq - 1}`;
      return { ok: false, reason: `prev ${previous} (a line was removed, inserted or moved)`, unparseable: false };
    }
    const event = record as unknown as ChainedAuditEvent;
    if (hashEvent(event) !== hash) {
      return { ok: false, reason: 'hash does not match the line content (the line was edited)', unparseable: false };
    }
    // The hash covers the parsed values only; this catches edits that do not change them
    // (whitespace, key order, escapes, a duplicate key that JSON.parse silently overrides).
    if (!Buffer.from(canonicalJson(record), 'utf8').equals(line)) {
      return { ok: false, reason: 'line is not byte for byte as kmsd wrote it (whitespace, key order, escapes or a duplicate key changed)', unparseable: false };
    }
    this.expectedSeq = seq + 1;
    this.expectedPrev = hash;
    return { ok: true, event };
  }
}

/** One line of the file without its "\n". */
export interface RawLine {
  bytes: Buffer;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** False for a last line the file ends in the middle of (no "\n"). */
  terminated: boolean;
}

/**
 * Reads a file line by line in fixed-size chunks, so that checking a log of any size needs
 * memory for one chunk and one line, not for the whole file (V8 strings stop at ~512 MiB).
 * Splitting on the byte 0x0A is safe in UTF-8: it never occurs inside a multi-byte character.
 */
export function* readLines(fd: number, chunkSize = 1 << 20): Generator<RawLine> {
  const chunk = Buffer.allocUnsafe(chunkSize);
  /** Pieces of a line that spans chunks; joined once its "\n" shows up. */
  let carry: Buffer[] = [];
  let carryOffset = 0;
  let position = 0;
  for (;;) {
    const read = readSync(fd, chunk, 0, chunkSize, position);
    if (read === 0) break;
    const data = chunk.subarray(0, read);
    let start = 0;
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
      const piece = data.subarray(start, newline);
      // Copied, because `chunk` is overwritten by the next read while callers may keep the line.
      const bytes = carry.length === 0 ? Buffer.from(piece) : Buffer.concat([...carry, piece]);
      yield { bytes, offset: carryOffset, terminated: true };
      carry = [];
      carryOffset = position + newline + 1;
      start = newline + 1;
    }
    // `chunk` is reused by the next read, so the unfinished tail must be copied out.
    if (start < read) carry.push(Buffer.from(data.subarray(start)));
    position += read;
  }
  if (carry.length > 0) yield { bytes: Buffer.concat(carry), offset: carryOffset, terminated: false };
}
