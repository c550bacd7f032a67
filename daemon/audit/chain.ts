/**
 * The keyed chain of the audit trail, shared by the writer (./trail.ts), the start-up checks and
 * the offline verifier (./verify.ts), so that all of them agree byte for byte on what a valid
 * line is.
 *
 * A line is the canonical JSON of a `ChainedAuditEvent` followed by "\n". Canonical JSON has the
 * object keys sorted (recursively) and no whitespace, so the same event always serializes to the
 * same bytes. `mac` is the hex HMAC-SHA256, under the keystore's audit key
 * (`Keystore.auditKeyring`), of the UTF-8 canonical JSON of the event without `mac` (that is,
 * including `seq` and `prev`); `prev` is the `mac` of the event before ("0"×64 for the first
 * event of a trail, or the last `hash` of a migrated pre-MAC log). Editing, removing, inserting or
 * reordering a line breaks its own MAC, the `seq` sequence or the next line's `prev`; recomputing
 * the chain needs the key, which never leaves the HSM.
 *
 * Chain keys. The HMAC of an event is computed in the HSM for events without `chainKey`. An event
 * with `chainKey` (32 hex digits, a random id) is MACed instead in the process, under the key the
 * HSM derives from that id: K = HMAC-SHA256 under the audit key over "kmsd-audit-chain-key-v1:"
 * followed by the id (`deriveChainKey`). The writer derives a new chain key at start-up, at each
 * segment rotation and at least hourly, and never writes K anywhere: a verifier derives it again
 * through the HSM from the id on the line. So the chain still cannot be recomputed without the
 * HSM key, and the HSM is used once per chain key instead of once per event (≈ 30 µs each in
 * SoftHSM2, the largest per-call cost of the data plane).
 *
 * The pre-MAC format (kmsd 0.1 `audit.log`: the same canonical lines with an unkeyed SHA-256
 * `hash` instead of `mac`) is checked by `LegacyChainChecker`, for migrated legacy segments.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { readSync } from 'node:fs';
import type { AuditDetails, AuditEvent, AuditKeyring, ChainedAuditEvent } from '../domain/ports.js';

/** `prev` of the first event of a trail. */
export const GENESIS_PREV = '0'.repeat(64);

/** The pre-segment log's file name inside the data dir (migrated into `audit/` on first start). */
export const LEGACY_AUDIT_LOG_FILE = 'audit.log';

/**
 * Caps on every event field, in UTF-16 code units (what JavaScript's `length` counts). A longer
 * value is cut to the cap, its last character replaced by "…", so that no caller (and no
 * anonymous request with an 8 KB path) can make an event, the trail or a query page large.
 * `operation` is long enough for `<METHOD> <path>` of an unrouted call, cut; ids fit the API's
 * 50-character ids with room to spare; `subject` fits `serviceAccount:<id>`.
 */
export const AUDIT_FIELD_LIMITS = Object.freeze({
  time: 40,
  requestId: 64,
  subject: 80,
  operation: 256,
  folderId: 64,
  keyId: 64,
  versionId: 64,
  result: 32,
  remoteAddress: 64,
  /** System events only: at most this many entries in `details`… */
  detailsEntries: 16,
  /** …each name at most this long… */
  detailsName: 32,
  /** …each string value (and each list item) at most this long… */
  detailsValue: 256,
  /** …and each list at most this many items. */
  detailsListItems: 64,
});

const REQUIRED_FIELDS = ['time', 'requestId', 'subject', 'operation', 'result'] as const;
const OPTIONAL_FIELDS = ['folderId', 'keyId', 'versionId', 'remoteAddress'] as const;
type StringField = (typeof REQUIRED_FIELDS)[number] | (typeof OPTIONAL_FIELDS)[number];
const HEX_256 = /^[0-9a-f]{64}$/;
const DETAILS_NAME = /^[a-zA-Z][a-zA-Z0-9]*$/;
/** RFC 3339 date-time (what `Date.toISOString()` produces, offsets allowed). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** JSON with object keys sorted recursively and no whitespace; `undefined` members are omitted. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    // JSON has no NaN/Infinity; JSON.stringify would silently write null and the MAC would lie.
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

/**
 * `canonicalJson({...event, seq, prev})` of a picked event, built directly in the sorted key order
 * the fields are known to have (the generic walk sorts keys and recurses on every append: a
 * profile showed it as the largest cost of the audit trail per call). Byte for byte the same text;
 * a unit test compares both on varied events.
 */
export function canonicalEventJson(event: AuditEvent, seq: number, prev: string, chainKeyId?: string): string {
  // Sorted: chainKey, details, folderId, keyId, operation, prev, remoteAddress, requestId, result,
  // seq, subject, time, versionId ("mac" would go between keyId and operation).
  let text = '{';
  if (chainKeyId !== undefined) text += `"chainKey":${JSON.stringify(chainKeyId)},`;
  if (event.details !== undefined) text += `"details":${canonicalJson(event.details)},`;
  if (event.folderId !== undefined) text += `"folderId":${JSON.stringify(event.folderId)},`;
  if (event.keyId !== undefined) text += `"keyId":${JSON.stringify(event.keyId)},`;
  text += `"operation":${JSON.stringify(event.operation)},"prev":${JSON.stringify(prev)},`;
  if (event.remoteAddress !== undefined) text += `"remoteAddress":${JSON.stringify(event.remoteAddress)},`;
  text += `"requestId":${JSON.stringify(event.requestId)},"result":${JSON.stringify(event.result)},"seq":${JSON.stringify(seq)},`;
  text += `"subject":${JSON.stringify(event.subject)},"time":${JSON.stringify(event.time)}`;
  if (event.versionId !== undefined) text += `,"versionId":${JSON.stringify(event.versionId)}`;
  return `${text}}`;
}

/** `value` cut to `limit` UTF-16 code units, ending in "…" when cut (never splitting a surrogate pair). */
export function capField(value: string, limit: number): string {
  if (value.length <= limit) return value;
  let cut = value.slice(0, limit - 1);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Copies only the fields an audit event may carry, each cut to its cap (AUDIT_FIELD_LIMITS).
 * Anything else a caller passes (a request body, a token, plaintext by mistake) is dropped here
 * rather than written to disk for years. Throws a TypeError naming the field when a field has the
 * wrong type: that is a bug in the caller.
 */
export function pickAuditFields(event: AuditEvent): AuditEvent {
  const source = event as unknown as Record<string, unknown>;
  const problem = describeInvalidFields(source);
  if (problem !== undefined) throw new TypeError(`invalid audit event: ${problem}`);
  const picked: Partial<Record<StringField, string>> & { details?: AuditDetails } = {};
  for (const field of REQUIRED_FIELDS) picked[field] = capField(source[field] as string, AUDIT_FIELD_LIMITS[field]);
  for (const field of OPTIONAL_FIELDS) {
    const value = source[field];
    if (typeof value === 'string') picked[field] = capField(value, AUDIT_FIELD_LIMITS[field]);
  }
  if (source.details !== undefined) picked.details = pickDetails(source.details);
  return picked as AuditEvent;
}

function pickDetails(value: unknown): AuditDetails {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('invalid audit event: field "details" is not an object');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > AUDIT_FIELD_LIMITS.detailsEntries) {
    throw new TypeError(`invalid audit event: field "details" has more than ${AUDIT_FIELD_LIMITS.detailsEntries} entries`);
  }
  // Null prototype: the names come from the caller and must not reach Object.prototype.
  const details = Object.create(null) as Record<string, string | number | string[]>;
  for (const [name, item] of entries) {
    if (name.length > AUDIT_FIELD_LIMITS.detailsName || !DETAILS_NAME.test(name)) throw new TypeError(`invalid audit event: details name ${JSON.stringify(name.slice(0, 40))} is not a short identifier`);
    if (typeof item === 'string') details[name] = capField(item, AUDIT_FIELD_LIMITS.detailsValue);
    else if (typeof item === 'number' && Number.isSafeInteger(item)) details[name] = item;
    else if (Array.isArray(item) && item.every((v): v is string => typeof v === 'string')) {
      if (item.length > AUDIT_FIELD_LIMITS.detailsListItems) throw new TypeError(`invalid audit event: details.${name} has more than ${AUDIT_FIELD_LIMITS.detailsListItems} items`);
      details[name] = item.map((v) => capField(v, AUDIT_FIELD_LIMITS.detailsValue));
    } else throw new TypeError(`invalid audit event: details.${name} is not a string, an integer or a list of strings`);
  }
  return details;
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
  if (!RFC3339.test(time) || Number.isNaN(Date.parse(time))) return `field "time" is not an RFC 3339 date-time: ${JSON.stringify(time.slice(0, 64))}`;
  return undefined;
}

/** hex HMAC of the canonical JSON `unmacced` (an event without `mac`). */
export function macOf(keyring: AuditKeyring, unmacced: string): string {
  return keyring.mac(Buffer.from(unmacced, 'utf8')).toString('hex');
}

/** What a chain key id looks like on a line. */
export const CHAIN_KEY_ID = /^[0-9a-f]{32}$/;
const CHAIN_KEY_CONTEXT = 'kmsd-audit-chain-key-v1:';

/** A chain key: its id (on every line it MACs) and the key the HSM derived from it (memory only). */
export interface ChainKey {
  id: string;
  /** Imported once into node:crypto. */
  key: KeyObject;
}

/** K = HMAC-SHA256 under the audit key (in the HSM) over "kmsd-audit-chain-key-v1:<id>". */
export function deriveChainKey(keyring: AuditKeyring, id: string): ChainKey {
  if (!CHAIN_KEY_ID.test(id)) throw new TypeError('a chain key id is 32 hex digits');
  return { id, key: createSecretKey(keyring.mac(Buffer.from(CHAIN_KEY_CONTEXT + id, 'utf8'))) };
}

/** hex HMAC-SHA256 of `unmacced` under a chain key (in the process). */
export function chainMacOf(chainKey: ChainKey, unmacced: string): string {
  return createHmac('sha256', chainKey.key).update(unmacced, 'utf8').digest('hex');
}

/**
 * The stored line (without "\n") of an event whose canonical JSON without `mac` is `unmacced`:
 * the same text with `"mac":"…"` inserted where the sorted key order puts it, so the writer
 * serializes each event once. `mac` sorts right before `operation`, which every event has; the
 * last `"operation":` is the top-level one (only `details`, which sorts first, nests objects, and
 * a string value cannot hold an unescaped quote).
 */
export function lineWithMac(unmacced: string, mac: string): string {
  const at = unmacced.lastIndexOf('"operation":');
  if (at < 1) throw new TypeError('canonical event has no "operation"');
  return `${unmacced.slice(0, at)}"mac":"${mac}",${unmacced.slice(at)}`;
}

/** The pre-MAC `hash` of a legacy line: hex SHA-256 over its canonical JSON without `hash`. */
export function legacyHash(record: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record;
  return createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
}

/** The outcome of checking one line against the chain. */
export type LineCheck =
  | { ok: true; event: ChainedAuditEvent; record: Record<string, unknown> }
  | {
      ok: false;
      reason: string;
      /**
       * The line is not JSON at all (or empty): what a crash leaves behind at the end of a file.
       * The other failures (wrong seq, prev or MAC) mean someone or something changed the file.
       */
      unparseable: boolean;
      /** The line's own seq and mac when it parsed that far, to resynchronize after a finding. */
      seq?: number;
      mac?: string;
    };

/** Parses a line into a JSON object, or says why it is not one. */
export function parseLine(line: Buffer): { ok: true; record: Record<string, unknown> } | { ok: false; reason: string } {
  if (line.length === 0) return { ok: false, reason: 'line is empty' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `not valid JSON (${(err as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'not a JSON object' };
  return { ok: true, record: parsed as Record<string, unknown> };
}

/** Where a checker starts: the seq and `prev` its first line must carry. */
export interface ChainPosition {
  seq: number;
  prev: string;
}

/**
 * Walks a chain line by line. Each `check` compares the line with the state the previous lines
 * left (expected seq, expected prev) and advances that state only when the line is valid.
 * Subclasses differ in the name and computation of the per-line digest (`mac` or legacy `hash`).
 */
abstract class Checker {
  protected expectedSeq: number;
  protected expectedPrev: string;
  private checked = 0;

  constructor(start: ChainPosition = { seq: 1, prev: GENESIS_PREV }) {
    this.expectedSeq = start.seq;
    this.expectedPrev = start.prev;
  }

  /** Number of valid lines so far. */
  get count(): number {
    return this.checked;
  }

  /** The seq the next line must carry. */
  get nextSeq(): number {
    return this.expectedSeq;
  }

  /** The digest the next line's `prev` must carry. */
  get head(): string {
    return this.expectedPrev;
  }

  /** Continues from another position (after a recorded gap, or to resynchronize after a finding). */
  resync(position: ChainPosition): void {
    this.expectedSeq = position.seq;
    this.expectedPrev = position.prev;
  }

  protected abstract readonly digestField: 'mac' | 'hash';
  protected abstract digest(record: Record<string, unknown>): string;
  protected abstract explainMismatch(record: Record<string, unknown>): string;
  /** A problem with a field only this kind of chain has, or undefined. */
  protected checkExtra(_record: Record<string, unknown>): string | undefined {
    return undefined;
  }

  check(line: Buffer): LineCheck {
    const parsed = parseLine(line);
    if (!parsed.ok) return { ok: false, reason: parsed.reason, unparseable: true };
    const record = parsed.record;
    const { seq, prev } = record;
    const digest = record[this.digestField];
    const own = {
      ...(typeof seq === 'number' ? { seq } : {}),
      ...(typeof digest === 'string' ? { mac: digest } : {}),
    };
    const fail = (reason: string) => ({ ok: false as const, reason, unparseable: false, ...own });
    const problem = describeInvalidFields(record);
    if (problem !== undefined) return fail(problem);
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return fail('field "seq" is missing or not a positive integer');
    if (typeof prev !== 'string' || !HEX_256.test(prev)) return fail('field "prev" is missing or not 64 hex digits');
    if (typeof digest !== 'string' || !HEX_256.test(digest)) return fail(`field "${this.digestField}" is missing or not 64 hex digits`);
    const extra = this.checkExtra(record);
    if (extra !== undefined) return fail(extra);
    if (seq !== this.expectedSeq) return fail(`seq is ${seq}, expected ${this.expectedSeq} (a line was removed, inserted or moved)`);
    if (prev !== this.expectedPrev) {
      const previous = this.expectedPrev === GENESIS_PREV ? 'must be 64 zeros on the first line of the trail' : `does not match the ${this.digestField} of event ${seq - 1}`;
      return fail(`prev ${previous} (a line was removed, inserted or moved)`);
    }
    if (this.digest(record) !== digest) return fail(this.explainMismatch(record));
    // The digest covers the parsed values only; this catches edits that do not change them
    // (whitespace, key order, escapes, a duplicate key that JSON.parse silently overrides).
    if (!Buffer.from(canonicalJson(record), 'utf8').equals(line)) {
      return fail('line is not byte for byte as kmsd wrote it (whitespace, key order, escapes or a duplicate key changed)');
    }
    this.expectedSeq = seq + 1;
    this.expectedPrev = digest;
    this.checked++;
    const event = (this.digestField === 'mac' ? record : toChained(record)) as unknown as ChainedAuditEvent;
    return { ok: true, event, record };
  }
}

/** Checks lines of the keyed chain: `mac` must be the HMAC under `keyring`. */
export class ChainChecker extends Checker {
  protected readonly digestField = 'mac';

  constructor(
    private readonly keyring: AuditKeyring,
    start?: ChainPosition,
  ) {
    super(start);
  }

  /** Chain keys derived so far (a walk meets one per segment or start-up; kept to a few). */
  private readonly chainKeys = new Map<string, ChainKey>();

  protected digest(record: Record<string, unknown>): string {
    const { mac: _ignored, ...rest } = record;
    const id = record.chainKey;
    if (id === undefined) return macOf(this.keyring, canonicalJson(rest));
    // (the format was checked by `checkExtra`)
    let chainKey = this.chainKeys.get(id as string);
    if (chainKey === undefined) {
      chainKey = deriveChainKey(this.keyring, id as string);
      if (this.chainKeys.size >= 16) this.chainKeys.delete(this.chainKeys.keys().next().value as string);
      this.chainKeys.set(chainKey.id, chainKey);
    }
    return chainMacOf(chainKey, canonicalJson(rest));
  }

  protected override checkExtra(record: Record<string, unknown>): string | undefined {
    const id = record.chainKey;
    return id === undefined || (typeof id === 'string' && CHAIN_KEY_ID.test(id)) ? undefined : 'field "chainKey" is not 32 hex digits';
  }

  protected explainMismatch(record: Record<string, unknown>): string {
    const { mac, ...rest } = record;
    const unkeyed = createHash('sha256').update(canonicalJson(rest), 'utf8').digest('hex');
    if (unkeyed === mac) {
      return 'mac is the unkeyed SHA-256 of the line, not its HMAC under the audit key (the line was rewritten by someone without the key)';
    }
    return 'mac does not match the line content under the audit key (the line was edited, or written under another key)';
  }
}

/** Checks lines of a pre-MAC log with its own rules (unkeyed SHA-256 `hash`). */
export class LegacyChainChecker extends Checker {
  protected readonly digestField = 'hash';

  protected digest(record: Record<string, unknown>): string {
    return legacyHash(record);
  }

  protected explainMismatch(): string {
    return 'hash does not match the line content (the line was edited)';
  }
}

/** A legacy record as a `ChainedAuditEvent`: its `hash` is served as `mac`. */
export function toChained(record: Record<string, unknown>): ChainedAuditEvent {
  if (!('hash' in record)) return record as unknown as ChainedAuditEvent;
  const { hash, ...rest } = record;
  return { ...rest, mac: hash } as unknown as ChainedAuditEvent;
}

/** One line of a file without its "\n". */
export interface RawLine {
  bytes: Buffer;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
  /** False for a last line the file ends in the middle of (no "\n"). */
  terminated: boolean;
}

/**
 * Splits chunks into lines; shared by the synchronous and asynchronous readers. Splitting on the
 * byte 0x0A is safe in UTF-8: it never occurs inside a multi-byte character.
 */
export class LineSplitter {
  /** Pieces of a line that spans chunks; joined once its "\n" shows up. */
  private carry: Buffer[] = [];
  private carryOffset: number;

  constructor(private position = 0) {
    this.carryOffset = position;
  }

  /** Lines completed by `data` (which must be the bytes at the current position). */
  push(data: Buffer): RawLine[] {
    const lines: RawLine[] = [];
    let start = 0;
    for (let newline = data.indexOf(0x0a); newline !== -1; newline = data.indexOf(0x0a, start)) {
      const piece = data.subarray(start, newline);
      // Copied, because callers reuse the chunk buffer for the next read.
      const bytes = this.carry.length === 0 ? Buffer.from(piece) : Buffer.concat([...this.carry, piece]);
      lines.push({ bytes, offset: this.carryOffset, terminated: true });
      this.carry = [];
      this.carryOffset = this.position + newline + 1;
      start = newline + 1;
    }
    if (start < data.length) this.carry.push(Buffer.from(data.subarray(start)));
    this.position += data.length;
    return lines;
  }

  /** The unterminated rest, if any. */
  end(): RawLine | undefined {
    if (this.carry.length === 0) return undefined;
    const line = { bytes: Buffer.concat(this.carry), offset: this.carryOffset, terminated: false };
    this.carry = [];
    return line;
  }
}

/**
 * Reads a file line by line in fixed-size chunks (synchronously; for the one-time legacy
 * migration), so memory holds one chunk and one line, not the file.
 */
export function* readLinesSync(fd: number, chunkSize = 1 << 20): Generator<RawLine> {
  const chunk = Buffer.allocUnsafe(chunkSize);
  const splitter = new LineSplitter();
  let position = 0;
  for (;;) {
    const read = readSync(fd, chunk, 0, chunkSize, position);
    if (read === 0) break;
    yield* splitter.push(chunk.subarray(0, read));
    position += read;
  }
  const rest = splitter.end();
  if (rest !== undefined) yield rest;
}

/**
 * Whether a parsed keyed line is an `Audit.IntegrityAlert` that records exactly the gap in seq
 * before it (the only gap a valid chain may have: see `--audit-accept-loss`).
 */
export function isRecordedGap(parsed: ReturnType<typeof parseLine>, last: { seq: number; mac: string }): boolean {
  if (!parsed.ok) return false;
  const r = parsed.record;
  const details = r.details as Record<string, unknown> | undefined;
  return (
    r.operation === 'Audit.IntegrityAlert' &&
    r.subject === 'system:audit' &&
    typeof r.seq === 'number' &&
    r.seq > last.seq + 1 &&
    r.prev === last.mac &&
    details?.foundSeq === last.seq &&
    details.anchorSeq === r.seq - 1
  );
}
