/**
 * The `AuditLog` port as a segmented, keyed, anchored trail under `<data-dir>/audit/` (layout in
 * ./segments.ts, chain rules in ./chain.ts). Nothing in memory grows with the number of events.
 *
 * Write path. `append` picks and caps the fields, MACs the event under the current chain key (in
 * process; the HSM derives it, see ./chain.ts), serializes it once and pushes the line on a queue.
 * A background writer writes the queue with one durable write per batch (the segment is open with O_DSYNC, so the write
 * returns once its data is on disk: one thread-pool round trip, where write + fdatasync took two,
 * each waiting its turn on a busy event loop); lines appended while a batch is in flight
 * form the next (group commit). `flush` resolves once the caller's event is fsynced. A segment
 * that would outgrow `segmentBytes`, or is older than `segmentMaxAgeMs`, is sealed before the
 * next batch: a new segment file is created (directory fsynced) and the old one's index is
 * written in the background, then retention runs.
 *
 * Preallocation. Writing past a file's end makes every fdatasync commit a new size and new blocks
 * through the filesystem journal; overwriting blocks that already exist only writes the data
 * (measured here: 0.7–0.9 ms against 0.15–0.17 ms per 9 KB write+fdatasync on ext4). So the
 * active segment is kept zero-filled up to `zeroAheadBytes` past the write position (or to
 * `segmentBytes`), in chunks written and fsynced off the request path, and each batch is written
 * at its position rather than appended (PostgreSQL's zero-filled WAL segments do the same). No
 * line contains a NUL byte, so the data ends where the zeros begin (./segments.ts `dataExtent`);
 * correctness never depends on the zeros being there (a batch past them extends the file, and its
 * fdatasync commits that), and the writer never writes where a zero-fill is in flight. A sealed
 * segment, and the active one at close, is cut back to its data.
 *
 * Anchor. At most once per `anchorIntervalMs`, off the request path, the seq and MAC of the last
 * fsynced event are written to `keystore.auditAnchorStore` (a token object), and once more at
 * close. The anchor is never ahead of what is durable, so a crash or power loss never looks like a
 * cut; a trail that ends before its anchor was cut or rolled back.
 *
 * Faults. A failed write or fsync rejects the waiting flushes with `writeFailure('audit trail',
 * …)` (503 UNAVAILABLE), makes `append` throw it and `health()` report it; queued events (never
 * acknowledged) are dropped and the chain head rolls back to the last durable event, so memory
 * stays bounded. Every `retryIntervalMs` the trail reopens the segment, truncates it to the last
 * durable byte (after a failed fsync the page cache cannot be trusted: fsyncgate), and writes an
 * `Audit.Recovered` system event; once that is fsynced the trail is healthy again.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { constants as fsConstants, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chmod, open, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { KmsError, invalidArgument } from '../domain/errors.js';
import type {
  AuditAnchor,
  AuditAnchorStore,
  AuditEvent,
  AuditKeyring,
  AuditLog,
  AuditPage,
  AuditQuery,
  ChainedAuditEvent,
  ComponentHealth,
  Keystore,
  Metrics,
} from '../domain/ports.js';
import { fsyncDirectory } from '../store/durable-file.js';
import { writeFailure } from '../store/write-failure.js';
import { ChainChecker, GENESIS_PREV, LineSplitter, canonicalEventJson, canonicalJson, chainMacOf, deriveChainKey, isRecordedGap, lineWithMac, macOf, parseLine, pickAuditFields, type ChainKey, type RawLine } from './chain.js';
import { CorruptAuditLogError, checkLegacyLog, legacyLogPath, moveLegacyLog } from './legacy.js';
import { AUDIT_QUERY_SCAN_BUDGET, encodePageToken, scanSegments, validateQuery, type ReadableSegment } from './query.js';
import {
  IndexBuilder,
  PRUNE_PENDING_FILE,
  auditDir,
  dataExtent,
  indexFileName,
  indexedEventOf,
  openForReading,
  openIndex,
  parseSegmentName,
  readLines,
  sealIndex,
  segmentFileName,
  type SegmentIndex,
  type SegmentName,
} from './segments.js';

export { CorruptAuditLogError } from './legacy.js';
export { AUDIT_DEFAULT_PAGE_SIZE, AUDIT_MAX_PAGE_SIZE, AUDIT_QUERY_SCAN_BUDGET } from './query.js';

const MiB = 1024 * 1024;
const HOUR_MS = 3600_000;

/** Defaults of the `--audit-*` flags (daemon/config.ts shows them in `kmsd --help`). */
export const AUDIT_DEFAULTS = Object.freeze({
  segmentBytes: 16 * MiB,
  segmentMaxAgeMs: 24 * HOUR_MS,
  retentionMs: 8760 * HOUR_MS,
  maxTotalBytes: 10 * 1024 * MiB,
});

/**
 * A chain key MACs events for at most this long, and at most this many; a new one is also
 * derived at start-up and after each segment rotation.
 */
export const CHAIN_KEY_MAX_AGE_MS = HOUR_MS;
export const CHAIN_KEY_MAX_EVENTS = 65_536;

/** Segments one prune record may cover, so that its `details.segments` list stays bounded. */
export const PRUNE_BATCH_SEGMENTS = 32;
/** Bytes read from the end of the active segment's data at start-up to resume the chain. */
const TAIL_BYTES = 64 * 1024;
/** Preallocation (see above): how far ahead of the write position the zeros reach by default… */
export const ZERO_AHEAD_BYTES = 4 * MiB;
/** …written in chunks of this size (the first chunk of a segment is smaller: the writer waits for it). */
const ZERO_CHUNK_BYTES = MiB;
const ZERO_FIRST_CHUNK_BYTES = 128 * 1024;
/** After a zero-fill failed (ENOSPC…), the next one waits this long (the writer does not need it). */
const ZERO_RETRY_MS = 60_000;
/**
 * How long the active segment stays open for writing after the last batch: while calls keep
 * coming, each batch is one write on the open handle (no open and close per batch); after this
 * much quiet it is closed, so an operator can remount the data directory read-only.
 */
export const IDLE_CLOSE_MS = 1000;

/** The write handle of the active segment: what the writer needs of a `FileHandle` (a test seam). */
export interface AuditFileHandle {
  /** Writes at `position` (the file is not opened for appending: see "Preallocation"). */
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
  /**
   * The file is open with O_DSYNC: a write has returned once its data is durable, so the batch
   * needs no `datasync` after it (one thread-pool round trip per batch instead of two).
   */
  readonly syncsOnWrite?: boolean;
}

/** Opens (creating) the active segment for writing; tests pass one that injects ENOSPC, EIO… */
export type OpenSegmentFile = (path: string) => Promise<AuditFileHandle>;

const openForWriting: OpenSegmentFile = async (path) => {
  const file = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_DSYNC, 0o600);
  return {
    write: (buffer, offset, length, position) => file.write(buffer, offset, length, position),
    datasync: () => file.datasync(),
    truncate: (length) => file.truncate(length),
    close: () => file.close(),
    syncsOnWrite: true,
  };
};

export interface AuditTrailOptions {
  /** Holds the MAC key and the head anchor. */
  keystore: Keystore;
  segmentBytes?: number;
  segmentMaxAgeMs?: number;
  retentionMs?: number;
  maxTotalBytes?: number;
  /**
   * Start even though the trail ends before its anchor (events were cut off or the trail was
   * rolled back): records an `Audit.IntegrityAlert` and continues. Off by default: start-up refuses.
   */
  acceptLoss?: boolean;
  /** Event time of system events and the clock of rotation by age and retention. */
  now?: () => Date;
  logger?: { info?(message: string): void; warn(message: string): void; error?(message: string): void };
  openSegmentFile?: OpenSegmentFile;
  /** Told the write+fsync time and event count of each durable batch (`/metrics`). */
  metrics?: Pick<Metrics, 'auditFlushed'>;
  anchorIntervalMs?: number;
  retryIntervalMs?: number;
  /** How often retention is checked besides after each rotation. */
  maintenanceIntervalMs?: number;
  /** Events one chain key MACs at most (default CHAIN_KEY_MAX_EVENTS). */
  chainKeyMaxEvents?: number;
  /** Zeros kept ahead of the write position (default ZERO_AHEAD_BYTES; 0: none, every batch appends). */
  zeroAheadBytes?: number;
  /** How long the active segment stays open after the last batch (default IDLE_CLOSE_MS; 0: closed as each burst ends). */
  idleCloseMs?: number;
}

/** A segment in memory: its name and what is known of its content. */
class Segment {
  /** Complete index (sealed segments). */
  index: SegmentIndex | undefined;
  /** Index under construction (active segment, or sealed one whose index is being written). */
  builder: IndexBuilder | undefined;
  /** Bytes of complete durable lines. */
  bytes: number;
  /** Whether `index` is on disk. */
  persisted = false;
  /** The file holds zeros from `bytes` up to here, fsynced: a batch below it overwrites in place. */
  zeroedTo: number;
  /** The zero-fill in flight, [from, to); `done` never rejects. */
  zeroing: { from: number; to: number; done: Promise<void> } | undefined;
  /** End of what the writer is writing or about to write: a zero-fill starts past it. */
  claimed: number;
  /** Bumped when the file is cut back to `bytes`: a zero-fill started before does not count. */
  cuts = 0;
  private catchingUp: Promise<void> = Promise.resolve();

  constructor(
    readonly name: SegmentName,
    readonly path: string,
    bytes: number,
  ) {
    this.bytes = bytes;
    this.zeroedTo = bytes;
    this.claimed = bytes;
  }

  /** Claims [bytes, end) for the writer: waits while a zero-fill in flight overlaps it. */
  async claim(end: number): Promise<void> {
    this.claimed = Math.max(this.claimed, end);
    while (this.zeroing !== undefined && this.zeroing.from < end) await this.zeroing.done;
  }

  /** The file is being cut back to `bytes` (a failed write): forget what was preallocated. */
  cut(): void {
    this.cuts++;
    this.zeroedTo = this.bytes;
    this.claimed = this.bytes;
  }

  /** Waits for the zero-fill in flight (none starts meanwhile where this is called). */
  async settleZeroing(): Promise<void> {
    while (this.zeroing !== undefined) await this.zeroing.done;
  }

  /** Cuts the file back to its data (the zero-filled tail): before sealing, and at close. */
  async cutToData(): Promise<void> {
    await this.settleZeroing();
    const handle = await open(this.path, fsConstants.O_WRONLY);
    try {
      if ((await handle.stat()).size > this.bytes) {
        await handle.truncate(this.bytes);
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
    this.zeroedTo = this.bytes;
  }

  current(): SegmentIndex | undefined {
    return this.index ?? this.builder?.snapshot();
  }

  /** Brings `builder` up to `end` by reading the file (serialized: one catch-up at a time). */
  catchUp(end: number): Promise<void> {
    const next = this.catchingUp.then(async () => {
      const builder = this.builder;
      if (builder === undefined || builder.bytes >= end) return;
      const handle = await openForReading(this.path);
      if (handle === undefined) return;
      try {
        for await (const line of readLines(handle, builder.bytes, end)) {
          if (!line.terminated) break;
          const parsed = parseLine(line.bytes);
          const event = parsed.ok ? indexedEventOf(parsed.record) : undefined;
          if (event === undefined) throw new KmsError('INTERNAL', `audit segment ${this.name.name} has an unreadable line at byte ${line.offset}`);
          builder.add(event, line.offset, line.bytes.length);
        }
      } finally {
        await handle.close();
      }
    });
    this.catchingUp = next.catch(() => undefined);
    return next;
  }

  readable(end = this.bytes): ReadableSegment {
    return { path: this.path, name: this.name.name, end, index: this.current() };
  }
}

interface FlushWaiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The durable head of the chain. */
interface Head {
  seq: number;
  mac: string;
}

/** Start-up refused: the trail ends before (or differs from) its anchor. */
export class AuditIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditIntegrityError';
  }
}

/**
 * Opens (or creates) the trail under `<dataDir>/audit/`, migrating a legacy `audit.log` first.
 *
 * Start-up reads only the small index files of sealed segments (a missing or untrustworthy index
 * is rebuilt from its one segment, with a warning) and the last 64 KiB of the active segment: the
 * tail's lines are MAC-checked and chained, a torn last line (never acknowledged) is cut with a
 * warning, anything else wrong is `CorruptAuditLogError`. Then the anchor is compared with the
 * head: a trail that ends before its anchor, or whose event at the anchor's seq has another MAC,
 * refuses to start (`AuditIntegrityError`) unless `acceptLoss`. The full walk is `kmsd audit verify`.
 */
export async function openAuditLog(dataDir: string, options: AuditTrailOptions): Promise<SegmentedAuditLog> {
  const dir = auditDir(dataDir);
  const legacyPath = legacyLogPath(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  fsyncDirectory(dataDir);
  const logger = options.logger;
  const listing = listSegments(dir);
  const hasLegacyFile = existsFile(legacyPath);
  if (hasLegacyFile && listing.length > 0) {
    throw new CorruptAuditLogError(
      `both ${legacyPath} and segments in ${dir} exist: the legacy log was already moved into the trail; move ${legacyPath} away (keep it as evidence) and start again`,
    );
  }
  // A missing key or anchor is only created for a trail that has no keyed history yet.
  const allowCreate = listing.length === 0;
  const keyring = withRecovery(() => options.keystore.auditKeyring({ allowCreate }), dataDir);
  const anchors = withRecovery(() => options.keystore.auditAnchorStore({ allowCreate }), dataDir);
  const anchor = anchors.read();
  const now = options.now ?? (() => new Date());

  completePendingPrune(dir, logger);
  let segments = listSegments(dir);
  let start: Head = { seq: 0, mac: GENESIS_PREV };
  if (hasLegacyFile) {
    const legacy = checkLegacyLog(legacyPath, logger);
    start = { seq: legacy.events, mac: legacy.head };
    // Anchored before the move: a non-empty trail always has an anchor, so a crash right after
    // the move cannot look like a trail whose anchor was deleted.
    if (anchor === null || anchor.seq < legacy.events) anchors.write({ seq: legacy.events, mac: legacy.head, time: now().toISOString() });
    const moved = moveLegacyLog(dataDir, dir, legacy);
    logger?.warn(
      moved === undefined
        ? `audit log ${legacyPath} was empty; removed it, the keyed trail starts in ${dir}`
        : `moved the audit log ${legacyPath} (${legacy.events} events, unkeyed SHA-256 chain) into ${join(dir, moved)}; the keyed trail continues after it`,
    );
    segments = listSegments(dir);
  } else if (segments.length === 0 && anchor === null) {
    anchors.write({ seq: 0, mac: GENESIS_PREV, time: now().toISOString() });
  }

  const sealed: Segment[] = [];
  let previous: Head | undefined;
  const last = segments.at(-1);
  const activeName = last !== undefined && !last.legacy ? last : undefined;
  for (const name of segments) {
    if (name === activeName) break;
    const segment = await loadSealed(dir, name, keyring, hasLegacyFile && name.legacy ? undefined : logger);
    const index = segment.index as SegmentIndex;
    if (previous !== undefined && index.events > 0 && (index.firstSeq <= previous.seq || index.firstPrev !== previous.mac)) {
      throw corrupt(segment.path, 1, `its first event (seq ${index.firstSeq}) does not continue the previous segment, which ends at seq ${previous.seq}`);
    }
    if (index.events > 0) previous = { seq: index.lastSeq, mac: index.lastMac };
    sealed.push(segment);
  }
  if (previous !== undefined) start = previous;

  const openSegmentFile = options.openSegmentFile ?? openForWriting;
  let active: Segment;
  let handle: AuditFileHandle | undefined;
  let head: Head;
  let createdMs: number;
  if (activeName !== undefined) {
    // The first segment left after pruning chains to a pruned event: its first line is the start.
    const expected = previous ?? (activeName.firstSeq === 1 ? start : undefined);
    const resumed = await resumeActive(dir, activeName, keyring, expected, openSegmentFile, logger);
    ({ segment: active, handle, head } = resumed);
    createdMs = resumed.firstTimeMs ?? now().getTime();
  } else {
    const name = parseSegmentName(segmentFileName(start.seq + 1)) as SegmentName;
    // Created (and its directory entry made durable) now; opened again by the first batch.
    await (await openSegmentFile(join(dir, name.name))).close();
    handle = undefined;
    fsyncDirectory(dir);
    active = new Segment(name, join(dir, name.name), 0);
    active.builder = new IndexBuilder(name);
    head = start;
    createdMs = now().getTime();
  }

  const trail = new SegmentedAuditLog(dir, keyring, anchors, [...sealed, active], handle, head, createdMs, options, anchor);
  try {
    await trail.checkAnchor(anchor);
    trail.startTimers();
    await trail.prune();
  } catch (err) {
    await trail.close();
    throw err;
  }
  return trail;
}

/** The keystore's refusal, with what it means for this data dir. */
function withRecovery<T>(get: () => T, dataDir: string): T {
  try {
    return get();
  } catch (err) {
    if (err instanceof KmsError && err.code === 'FAILED_PRECONDITION') {
      throw new KmsError(
        'FAILED_PRECONDITION',
        `${err.message}; the audit trail in ${auditDir(dataDir)} is not empty and cannot be continued or checked without it: ` +
          'restore the token (or key file) from backup; kmsd never starts a new chain over an existing trail',
      );
    }
    throw err;
  }
}

function existsFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Segment files of `dir`, in seq order. */
export function listSegments(dir: string): SegmentName[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map(parseSegmentName)
    .filter((s): s is SegmentName => s !== undefined)
    .sort((a, b) => a.firstSeq - b.firstSeq || Number(b.legacy) - Number(a.legacy));
}

function corrupt(path: string, line: number | string, reason: string): CorruptAuditLogError {
  return new CorruptAuditLogError(
    `audit trail segment ${path} is corrupt at line ${line}: ${reason}; refusing to start. ` +
      'Run `kmsd audit verify --data-dir DIR` for details, then restore the audit directory from a backup; ' +
      'kmsd never rewrites the trail silently.',
  );
}

/** Reads a sealed segment's index, rebuilding it from the segment when missing or untrustworthy. */
async function loadSealed(dir: string, name: SegmentName, keyring: AuditKeyring, logger: AuditTrailOptions['logger']): Promise<Segment> {
  const segment = new Segment(name, join(dir, name.name), 0);
  const indexPath = join(dir, indexFileName(name));
  let why: string;
  try {
    const opened = openIndex(readFileSync(indexPath, 'utf8'), name, keyring);
    if (opened.ok) {
      segment.index = opened.index;
      segment.bytes = opened.index.bytes;
      segment.persisted = true;
      return segment;
    }
    why = `its index ${indexFileName(name)} ${opened.reason}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    why = `it has no index (a crash right after it was sealed)`;
  }
  segment.builder = new IndexBuilder(name);
  // Sealed but not yet cut back to its data (see "Preallocation"): cut the zero-filled tail now.
  const reader = await open(segment.path, 'r');
  let extent: Awaited<ReturnType<typeof dataExtent>>;
  try {
    extent = await dataExtent(reader);
  } finally {
    await reader.close();
  }
  const size = extent.end;
  if (extent.junkAfter) throw corrupt(segment.path, `byte ${size}`, 'a sealed segment has data after a run of zero bytes');
  if (extent.size > size) {
    segment.bytes = size;
    await segment.cutToData();
  }
  await segment.catchUp(size);
  const builder = segment.builder;
  if (builder.bytes !== size) throw corrupt(segment.path, builder.events + 1, 'a sealed segment ends in an incomplete line');
  segment.index = builder.snapshot();
  segment.builder = undefined;
  segment.bytes = size;
  await writeIndex(dir, segment, keyring);
  logger?.warn(`audit segment ${segment.path}: ${why}; rebuilt the index from the segment (run \`kmsd audit verify\` to check the segment itself)`);
  return segment;
}

/** Writes a segment's index durably: temp file, fsync, rename, directory fsync. */
async function writeIndex(dir: string, segment: Segment, keyring: AuditKeyring): Promise<void> {
  const index = segment.index as SegmentIndex;
  const path = join(dir, indexFileName(segment.name));
  const temp = `${path}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(sealIndex(index, keyring), 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  fsyncDirectory(dir);
  segment.persisted = true;
}

/**
 * Resumes the active segment from its tail: MAC-checks and chains the complete lines of its last
 * 64 KiB (and its first line against the previous segment), and cuts a torn last line.
 */
async function resumeActive(
  dir: string,
  name: SegmentName,
  keyring: AuditKeyring,
  expected: Head | undefined,
  openSegmentFile: OpenSegmentFile,
  logger: AuditTrailOptions['logger'],
): Promise<{ segment: Segment; handle: AuditFileHandle | undefined; head: Head; firstTimeMs: number | undefined }> {
  // (the anchor check later finds recent MACs with `macBackwards`, reading from the end)
  const path = join(dir, name.name);
  const reader = await open(path, 'r');
  let cutAt: number;
  let size: number;
  let extent: Awaited<ReturnType<typeof dataExtent>>;
  let head: Head;
  let firstTimeMs: number | undefined;
  let repairReason: string | undefined;
  try {
    // The data ends where the zero-filled tail begins (see "Preallocation").
    extent = await dataExtent(reader);
    size = extent.end;
    const tailStart = Math.max(0, size - TAIL_BYTES);
    const tail = await readRange(reader, tailStart, size);
    const splitter = new LineSplitter(tailStart);
    const lines: RawLine[] = splitter.push(tail);
    const fragment = splitter.end();
    if (tailStart > 0) lines.shift(); // starts mid-line
    cutAt = size;
    if (fragment !== undefined) {
      cutAt = fragment.offset;
      repairReason = 'its last line has no trailing newline';
    }
    const lastLine = lines.at(-1);
    if (lastLine !== undefined && !parseLine(lastLine.bytes).ok) {
      lines.pop();
      cutAt = lastLine.offset;
      repairReason = `its last line is not JSON (${(parseLine(lastLine.bytes) as { reason: string }).reason})`;
    }
    const lineNumber = (offsetIndex: number, seq: number | undefined) =>
      tailStart === 0 ? offsetIndex + 1 : seq !== undefined ? `${seq - name.firstSeq + 1} (seq ${seq})` : `near byte ${lines[offsetIndex]?.offset ?? 0}`;
    const ownStart = (line: RawLine | undefined): Head => {
      const record = line === undefined ? undefined : parseLine(line.bytes);
      const seq = record?.ok === true ? record.record.seq : undefined;
      const prev = record?.ok === true ? record.record.prev : undefined;
      if (typeof seq !== 'number' || typeof prev !== 'string') throw corrupt(path, 1, 'its first line is not an audit event');
      return { seq: seq - 1, mac: prev };
    };
    if (lines.length === 0) {
      if (tailStart > 0) throw corrupt(path, `near byte ${tailStart}`, 'no complete line in its last 64 KiB');
      if (expected === undefined) throw corrupt(path, 1, 'the segment is empty and no earlier segment gives the head of the chain');
      head = expected;
    } else {
      let checker: ChainChecker;
      if (tailStart === 0) {
        const from = expected ?? ownStart(lines[0]);
        checker = new ChainChecker(keyring, { seq: from.seq + 1, prev: from.mac });
      } else {
        // The first line must continue the previous segment; the tail must chain in itself.
        const firstLine = new LineSplitter(0).push(await readRange(reader, 0, Math.min(size, TAIL_BYTES)))[0];
        if (firstLine === undefined) throw corrupt(path, 1, 'no complete first line');
        const from = expected ?? ownStart(firstLine);
        const first = new ChainChecker(keyring, { seq: from.seq + 1, prev: from.mac });
        const checked = first.check(firstLine.bytes);
        if (!checked.ok && !acceptsGap(checked, firstLine.bytes, from)) throw corrupt(path, 1, checked.reason);
        const record = parseLine((lines[0] as RawLine).bytes);
        const seq = record.ok ? record.record.seq : undefined;
        const prev = record.ok ? record.record.prev : undefined;
        if (typeof seq !== 'number' || typeof prev !== 'string') throw corrupt(path, lineNumber(0, undefined), 'not an audit event');
        checker = new ChainChecker(keyring, { seq, prev });
      }
      for (const [i, line] of lines.entries()) {
        const checked = checker.check(line.bytes);
        if (checked.ok) {
          if (i === 0 && tailStart === 0) firstTimeMs = Date.parse(checked.event.time);
          continue;
        }
        // An IntegrityAlert may jump over a recorded gap of seqs (see checkAnchor).
        if (acceptsGap(checked, line.bytes, { seq: checker.nextSeq - 1, mac: checker.head })) {
          const record = parseLine(line.bytes);
          if (record.ok) checker.resync({ seq: (record.record.seq as number) + 1, prev: record.record.mac as string });
          if (i === 0 && tailStart === 0 && record.ok) firstTimeMs = Date.parse(record.record.time as string);
          continue;
        }
        throw corrupt(path, lineNumber(i, checked.seq), checked.reason);
      }
      head = { seq: checker.nextSeq - 1, mac: checker.head };
      if (tailStart > 0) {
        const firstLine = new LineSplitter(0).push(await readRange(reader, 0, Math.min(size, TAIL_BYTES)))[0];
        const record = firstLine === undefined ? undefined : parseLine(firstLine.bytes);
        if (record?.ok === true && typeof record.record.time === 'string') firstTimeMs = Date.parse(record.record.time);
      }
    }
  } finally {
    await reader.close();
  }
  // Only zeros after the last line: the preallocated tail, kept. Anything else is cut.
  const torn = cutAt < size || extent.junkAfter;
  if (torn) {
    const handle = await openSegmentFile(path);
    try {
      await handle.truncate(cutAt);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    const why = repairReason ?? (extent.junkAfter ? 'bytes after a run of zeros' : 'torn write');
    logger?.warn(
      `audit segment ${path}: removed ${extent.size - cutAt} bytes at its end (${why}), left by a crash during a write ` +
        `that was never acknowledged; the trail continues after event ${head.seq}`,
    );
  }
  const segment = new Segment(name, path, cutAt);
  if (!torn) segment.zeroedTo = extent.size;
  segment.builder = new IndexBuilder(name);
  return { segment, handle: undefined, head, firstTimeMs };
}

/** Whether a line that breaks the seq sequence is an IntegrityAlert recording exactly that gap. */
function acceptsGap(checked: { ok: false; reason: string }, line: Buffer, before: Head): boolean {
  return isRecordedGap(parseLine(line), before) && /^seq is \d+, expected \d+/.test(checked.reason);
}

async function readRange(handle: FileHandle, start: number, end: number): Promise<Buffer> {
  const buffer = Buffer.alloc(end - start);
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, start + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buffer.subarray(0, done);
}

/** Finishes deletions announced by a prune record that a crash interrupted. */
function completePendingPrune(dir: string, logger: AuditTrailOptions['logger']): void {
  const path = join(dir, PRUNE_PENDING_FILE);
  let pending: { segments?: unknown };
  try {
    pending = JSON.parse(readFileSync(path, 'utf8')) as { segments?: unknown };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CorruptAuditLogError(`${path} is not valid JSON (${(err as Error).message}); restore it or remove it after checking the trail with \`kmsd audit verify\``);
  }
  const names = Array.isArray(pending.segments) ? pending.segments.filter((n): n is string => typeof n === 'string') : [];
  for (const name of names) {
    const segment = parseSegmentName(name);
    if (segment === undefined) continue;
    for (const file of [name, indexFileName(segment)]) {
      try {
        statSync(join(dir, file));
      } catch {
        continue;
      }
      rmSyncQuiet(join(dir, file));
    }
  }
  fsyncDirectory(dir);
  rmSyncQuiet(path);
  fsyncDirectory(dir);
  logger?.warn(`audit trail ${dir}: completed the deletion of ${names.length} pruned segment(s) that a crash interrupted (the prune is recorded in the trail)`);
}

function rmSyncQuiet(path: string): void {
  rmSync(path, { force: true });
}

/** The trail. Use `openAuditLog`. */
export class SegmentedAuditLog implements AuditLog {
  /** Oldest first; the last one is `active`. */
  private segments: Segment[];
  private active: Segment;
  private handle: AuditFileHandle | undefined;
  /** Highest seq appended (possibly not yet durable) and its MAC. */
  private head: Head;
  /** Highest seq fsynced and its MAC. */
  private durable: Head;
  private anchored: Head;
  private activeCreatedMs: number;
  /** Lines MACed but not yet handed to write(), and the seq of the first of them. */
  private pending: string[] = [];
  private pendingFirstSeq = 0;
  private waiters: FlushWaiter[] = [];
  private draining: Promise<void> | undefined;
  private failure: KmsError | undefined;
  private failedSince: string | undefined;
  private refusedWhileFailing = 0;
  private closing: Promise<void> | undefined;
  private readonly sealing = new Set<Promise<void>>();
  private pruning: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private idleCloseTimer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;
  private readonly segmentBytes: number;
  private readonly segmentMaxAgeMs: number;
  private readonly retentionMs: number;
  private readonly maxTotalBytes: number;
  private readonly openSegmentFile: OpenSegmentFile;

  constructor(
    private readonly dir: string,
    private readonly keyring: AuditKeyring,
    private readonly anchors: AuditAnchorStore,
    segments: Segment[],
    handle: AuditFileHandle | undefined,
    head: Head,
    activeCreatedMs: number,
    private readonly options: AuditTrailOptions,
    anchor: AuditAnchor | null,
  ) {
    this.segments = segments;
    this.active = segments.at(-1) as Segment;
    this.handle = handle;
    this.head = head;
    this.durable = head;
    this.anchored = anchor === null ? { seq: -1, mac: '' } : { seq: anchor.seq, mac: anchor.mac };
    this.activeCreatedMs = activeCreatedMs;
    this.now = options.now ?? (() => new Date());
    this.segmentBytes = options.segmentBytes ?? AUDIT_DEFAULTS.segmentBytes;
    this.segmentMaxAgeMs = options.segmentMaxAgeMs ?? AUDIT_DEFAULTS.segmentMaxAgeMs;
    this.retentionMs = options.retentionMs ?? AUDIT_DEFAULTS.retentionMs;
    this.maxTotalBytes = options.maxTotalBytes ?? AUDIT_DEFAULTS.maxTotalBytes;
    this.openSegmentFile = options.openSegmentFile ?? openForWriting;
  }

  /** Where the trail lives, for messages. */
  get directory(): string {
    return this.dir;
  }

  /** The highest seq that is durable (0: none yet). */
  get durableSeq(): number {
    return this.durable.seq;
  }

  /** The seq of the oldest event still in the trail (retention pruned everything before it). */
  get firstRetainedSeq(): number {
    return this.segments[0]?.name.firstSeq ?? 0;
  }

  private durableListener: ((seq: number) => void) | undefined;

  /** Told the new durable head after each batch is fsynced (one listener: the cluster's audit copy). */
  onDurable(listener: (seq: number) => void): void {
    this.durableListener = listener;
  }

  append(event: AuditEvent): void {
    if (this.closing !== undefined) throw new Error(`audit trail ${this.dir} is closed`);
    // Fail closed: if events cannot be made durable, the caller must not proceed as if recorded.
    if (this.failure !== undefined) {
      this.refusedWhileFailing++;
      throw this.failure;
    }
    this.appendLine(pickAuditFields(event), this.head.seq + 1);
  }

  /** The chain key new events are MACed with (./chain.ts); replaced at rotation and hourly. */
  private chainKey: (ChainKey & { createdMs: number; uses: number }) | undefined;

  private currentChainKey(): ChainKey {
    const nowMs = Date.now();
    let chainKey = this.chainKey;
    if (chainKey === undefined || nowMs - chainKey.createdMs >= CHAIN_KEY_MAX_AGE_MS || chainKey.uses >= (this.options.chainKeyMaxEvents ?? CHAIN_KEY_MAX_EVENTS)) {
      chainKey = { ...deriveChainKey(this.keyring, randomBytes(16).toString('hex')), createdMs: nowMs, uses: 0 };
      this.chainKey = chainKey;
    }
    chainKey.uses++;
    return chainKey;
  }

  private appendLine(fields: AuditEvent, seq: number): void {
    const chainKey = this.currentChainKey();
    const unmacced = canonicalEventJson(fields, seq, this.head.mac, chainKey.id);
    const mac = chainMacOf(chainKey, unmacced);
    if (this.pending.length === 0) this.pendingFirstSeq = seq;
    this.pending.push(`${lineWithMac(unmacced, mac)}\n`);
    this.head = { seq, mac };
    this.scheduleDrain();
  }

  flush(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const seq = this.head.seq;
    if (this.durable.seq >= seq) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    this.scheduleDrain();
    return done;
  }

  health(): ComponentHealth {
    return this.failure === undefined ? { ok: true } : { ok: false, reason: this.failure.message };
  }

  /**
   * Oldest first, read from the segments: exact filters combined with AND, `from`/`to` compare
   * instants. Only durable events are returned (the query waits for the batch in flight). A page
   * is short, with a token, when it read AUDIT_QUERY_SCAN_BUDGET bytes; the token names a seq, so
   * it stays valid across appends, rotation and pruning.
   */
  async query(query: AuditQuery): Promise<AuditPage> {
    const { filter, pageSize } = validateQuery(query);
    if (filter.afterSeq > this.head.seq) throw invalidArgument('pageToken', 'is not a token returned by a previous call');
    await this.settle();
    const active = this.active;
    const end = active.bytes;
    await active.catchUp(end);
    const segments = this.segments.map((s) => (s === active ? s.readable(end) : s.readable()));
    const events: ChainedAuditEvent[] = [];
    let more = false;
    const { stop, lastExamined } = await scanSegments(segments, filter, AUDIT_QUERY_SCAN_BUDGET, (event) => {
      if (events.length === pageSize) {
        more = true;
        return false;
      }
      events.push(event);
      return true;
    });
    if (more) return { events, nextPageToken: encodePageToken(events.at(-1)?.seq ?? filter.afterSeq) };
    if (stop === 'budget') return { events, nextPageToken: encodePageToken(lastExamined) };
    return { events };
  }

  /** Waits for queued events to be written, ignoring a failure (queries read what is durable). */
  private async settle(): Promise<void> {
    if (this.pending.length === 0 && this.draining === undefined) return;
    try {
      await this.flush();
    } catch {
      // what is durable is still readable
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.timers) clearInterval(timer);
      if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
      if (this.idleCloseTimer !== undefined) clearTimeout(this.idleCloseTimer);
      try {
        if (this.failure === undefined && this.head.seq > this.durable.seq) await this.waitDurable();
      } catch (err) {
        this.options.logger?.error?.(`audit trail ${this.dir}: events queued at shutdown could not be written: ${(err as Error).message}`);
      }
      await this.pruning;
      await Promise.allSettled([...this.sealing]);
      await this.anchors.settle?.();
      this.writeAnchor();
      await this.handle?.close();
      this.handle = undefined;
      // A clean shutdown leaves no zero-filled tail (a crash does; start-up finds the data's end).
      // Not possible on a read-only or full file system: harmless, start-up cuts it then.
      await this.active.cutToData().catch(() => undefined);
    })();
    return this.closing;
  }

  /** Resolves once background sealing and pruning have finished (tests and benchmarks wait on it). */
  async idle(): Promise<void> {
    while (this.sealing.size > 0 || this.pruning !== undefined) {
      await Promise.allSettled([...this.sealing]);
      await this.pruning;
    }
  }

  private waitDurable(): Promise<void> {
    const seq = this.head.seq;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    this.scheduleDrain();
    return done;
  }

  // ---- writer ----

  private scheduleDrain(): void {
    if (this.draining !== undefined) return;
    // Start on the next turn of the event loop, so that every append made by the current burst of
    // callbacks shares the first write.
    this.draining = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain()).finally(() => {
      this.draining = undefined;
      if (this.pending.length > 0 && this.failure === undefined) this.scheduleDrain();
    });
  }

  private async drain(): Promise<void> {
    let started: bigint;
    if (this.idleCloseTimer !== undefined) clearTimeout(this.idleCloseTimer);
    this.idleCloseTimer = undefined;
    while (this.pending.length > 0 && this.failure === undefined) {
      let batch = this.pending;
      let batchHead = this.head;
      let bytes = Buffer.from(batch.join(''), 'utf8');
      try {
        if (this.needsRotation(bytes.length)) {
          // Slow path, once per segment: seal first if the segment is old or not even the first
          // line fits; otherwise write the lines that fit, and the rest after sealing.
          const sizes = batch.map((line) => Buffer.byteLength(line, 'utf8'));
          const room = this.segmentBytes - this.active.bytes;
          if (this.active.bytes > 0 && (this.now().getTime() - this.activeCreatedMs >= this.segmentMaxAgeMs || (sizes[0] ?? 0) > room)) {
            await this.rotate(this.pendingFirstSeq);
            continue;
          }
          let take = 1; // an empty segment takes at least one line, however long
          for (let used = sizes[0] ?? 0; take < sizes.length && used + (sizes[take] as number) <= room; take++) used += sizes[take] as number;
          const rest = batch.slice(take);
          batch = batch.slice(0, take);
          batchHead = headOfLine(batch.at(-1) as string);
          bytes = Buffer.from(batch.join(''), 'utf8');
          this.pending = rest;
          this.pendingFirstSeq = headOfLine(rest[0] as string).seq;
        } else this.pending = [];
        started = process.hrtime.bigint();
        const position = this.active.bytes;
        await this.active.claim(position + bytes.length);
        this.handle ??= await this.openSegmentFile(this.active.path);
        const handle = this.handle;
        let written = 0;
        while (written < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
          written += bytesWritten;
        }
      } catch (err) {
        await this.fail(err, false);
        return;
      }
      try {
        if (this.handle.syncsOnWrite !== true) await this.handle.datasync();
      } catch (err) {
        await this.fail(err, true);
        return;
      }
      this.active.bytes += bytes.length;
      this.durable = batchHead;
      this.options.metrics?.auditFlushed(Number(process.hrtime.bigint() - started) / 1e9, batch.length);
      this.zeroAhead();
      const still: FlushWaiter[] = [];
      for (const waiter of this.waiters) {
        if (waiter.seq <= this.durable.seq) waiter.resolve();
        else still.push(waiter);
      }
      this.waiters = still;
      this.durableListener?.(this.durable.seq);
    }
    // Nothing stays open for writing once calls stop (IDLE_CLOSE_MS), so an operator can remount
    // the data directory read-only; a failed write or fsync drops the handle at once (`fail`).
    if (this.pending.length === 0 && this.failure === undefined && this.handle !== undefined) {
      // (a timer even at 0 ms: the close must wait until this drain is over)
      this.idleCloseTimer = setTimeout(() => void this.closeIdleHandle(), this.options.idleCloseMs ?? IDLE_CLOSE_MS);
      this.idleCloseTimer.unref();
    }
  }

  /** Closes the active segment's handle unless a batch, a retry or shutdown is using it. */
  private async closeIdleHandle(): Promise<void> {
    this.idleCloseTimer = undefined;
    if (this.draining !== undefined || this.pending.length > 0 || this.failure !== undefined || this.closing !== undefined) return;
    const handle = this.handle;
    if (handle === undefined) return;
    this.handle = undefined;
    await handle.close().catch(() => undefined);
  }

  /** Whether the batch must be split or the segment sealed first (by size or age). */
  private needsRotation(batchBytes: number): boolean {
    const active = this.active;
    if (active.bytes + batchBytes > this.segmentBytes) return true;
    return active.bytes > 0 && this.now().getTime() - this.activeCreatedMs >= this.segmentMaxAgeMs;
  }

  /** Seals the active segment and starts a new one whose first event is `firstSeq`. */
  private async rotate(firstSeq: number): Promise<void> {
    const name = parseSegmentName(segmentFileName(firstSeq)) as SegmentName;
    const path = join(this.dir, name.name);
    const handle = await this.openSegmentFile(path);
    try {
      fsyncDirectory(this.dir); // the new file's directory entry must be durable before its events
    } catch (err) {
      await handle.close();
      throw err;
    }
    const old = this.active;
    const oldHandle = this.handle;
    this.chainKey = undefined; // each segment's events get a chain key of their own
    const next = new Segment(name, path, 0);
    next.builder = new IndexBuilder(name);
    this.segments.push(next);
    this.active = next;
    this.handle = handle;
    this.activeCreatedMs = this.now().getTime();
    this.zeroAhead();
    await oldHandle?.close();
    const sealing = this.seal(old).finally(() => this.sealing.delete(sealing));
    this.sealing.add(sealing);
  }

  /** Completes a sealed segment's index from its file, writes it, makes the segment read-only. */
  private async seal(segment: Segment): Promise<void> {
    try {
      await segment.catchUp(segment.bytes);
      const builder = segment.builder;
      if (builder !== undefined) {
        segment.index = builder.snapshot();
        segment.builder = undefined;
      }
      await segment.cutToData();
      await writeIndex(this.dir, segment, this.keyring);
      await chmod(segment.path, 0o400);
    } catch (err) {
      this.options.logger?.warn(`audit segment ${segment.path}: its index could not be written (${(err as Error).message}); it is kept in memory and retried`);
      return;
    }
    if (this.closing === undefined) void this.prune();
  }

  /**
   * A write or fsync failed. Waiting and queued events were never acknowledged: reject them, drop
   * them and roll the chain head back to the last durable event. The file is cut back to its
   * last durable byte by the retry timer, which also heals the trail.
   */
  private async fail(err: unknown, fsyncFailed: boolean): Promise<void> {
    // (fsyncFailed only changes the log line: the handle is dropped either way.)
    this.failure = writeFailure('audit trail', err);
    this.failedSince ??= this.now().toISOString();
    this.refusedWhileFailing += this.head.seq - this.durable.seq;
    this.options.logger?.error?.(
      `audit trail ${this.dir}: ${fsyncFailed ? 'fsync' : 'write'} failed (${(err as Error).message}); refusing calls until it can write again (retrying every ${this.options.retryIntervalMs ?? 1000} ms)`,
    );
    const failure = this.failure;
    for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
    this.pending = [];
    this.head = this.durable;
    // Cut the file back to its last durable byte at once, so nothing past it is ever read. Then
    // let go of the handle: after a failed fsync the kernel may have dropped the dirty pages and
    // would report a retry as a success (fsyncgate), so it is never synced again; the retry
    // reopens, truncates again and fsyncs through the new handle. (Nor does a failing trail hold
    // a file open for writing: the directory can be remounted meanwhile.)
    const handle = this.handle;
    this.handle = undefined;
    // (A zero-fill in flight may finish after the cut: zeros past it, harmless; it no longer
    // counts as preallocated, and `heal` waits for it before writing where it writes.)
    const active = this.active;
    active.cut();
    await handle?.truncate(active.bytes).catch(() => undefined);
    await handle?.close().catch(() => undefined);
    this.retryTimer ??= setInterval(() => void this.heal(), this.options.retryIntervalMs ?? 1000);
    this.retryTimer.unref();
  }

  private healing = false;

  /** One retry: cut the segment back to its durable length, write and fsync a recovery event. */
  private async heal(): Promise<void> {
    if (this.healing || this.closing !== undefined || this.failure === undefined) return;
    this.healing = true;
    try {
      if (this.handle === undefined) this.handle = await this.openSegmentFile(this.active.path);
      const handle = this.handle;
      await handle.truncate(this.active.bytes);
      await handle.datasync();
      const seq = this.durable.seq + 1;
      const fields = pickAuditFields({
        time: this.now().toISOString(),
        requestId: randomUUID(),
        subject: 'system:audit',
        operation: 'Audit.Recovered',
        result: 'OK',
        details: { failedSince: this.failedSince ?? '', cause: this.failure.message, refusedEvents: this.refusedWhileFailing },
      });
      const unmacced = canonicalJson({ ...fields, seq, prev: this.durable.mac });
      const mac = macOf(this.keyring, unmacced);
      const bytes = Buffer.from(`${lineWithMac(unmacced, mac)}\n`, 'utf8');
      const position = this.active.bytes;
      await this.active.claim(position + bytes.length);
      let written = 0;
      try {
        while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written, position + written)).bytesWritten;
        await handle.datasync();
      } catch (err) {
        // Reopened by the next retry: never fsync a handle again after it failed (see `fail`).
        await handle.truncate(this.active.bytes).catch(() => undefined);
        this.handle = undefined;
        await handle.close().catch(() => undefined);
        throw err;
      }
      this.active.bytes += bytes.length;
      this.durable = { seq, mac };
      this.head = this.durable;
      this.handle = undefined;
      await handle.close().catch(() => undefined);
      this.options.logger?.warn?.(`audit trail ${this.dir}: writable again after failing since ${this.failedSince ?? '?'}; ${this.refusedWhileFailing} events were refused meanwhile`);
      this.failure = undefined;
      this.failedSince = undefined;
      this.refusedWhileFailing = 0;
      this.durableListener?.(this.durable.seq);
      if (this.retryTimer !== undefined) clearInterval(this.retryTimer);
      this.retryTimer = undefined;
      this.zeroAhead();
    } catch (err) {
      this.failure = writeFailure('audit trail', err);
    } finally {
      this.healing = false;
    }
  }

  // ---- preallocation ----

  private zeroRetryAtMs = 0;

  /** Starts the next zero-fill of the active segment if the zeros reach less than `zeroAheadBytes` ahead. */
  private zeroAhead(): void {
    const segment = this.active;
    const ahead = this.options.zeroAheadBytes ?? ZERO_AHEAD_BYTES;
    if (ahead <= 0 || segment.zeroing !== undefined || this.failure !== undefined || this.closing !== undefined) return;
    if (this.zeroRetryAtMs > 0 && Date.now() < this.zeroRetryAtMs) return;
    const from = Math.max(segment.zeroedTo, segment.claimed, segment.bytes);
    const chunk = Math.min(from === 0 ? ZERO_FIRST_CHUNK_BYTES : ZERO_CHUNK_BYTES, ahead);
    // Whole chunks only, once the zeros reach less than a chunk short of `ahead`: one fill per
    // chunk of events, not one per batch.
    if (from >= this.segmentBytes || from - segment.bytes > ahead - chunk) return;
    const to = Math.min(this.segmentBytes, from + chunk);
    const cuts = segment.cuts;
    const done = zeroFill(this.openSegmentFile, segment.path, from, to).then(
      () => {
        if (segment.cuts === cuts) segment.zeroedTo = to;
        this.zeroRetryAtMs = 0;
      },
      (err: unknown) => {
        if (this.zeroRetryAtMs === 0) {
          this.options.logger?.warn(
            `audit segment ${segment.path}: cannot zero-fill ahead of the writer (${(err as Error).message}); events are appended meanwhile (slower fsyncs), retrying in ${ZERO_RETRY_MS / 1000} s`,
          );
        }
        this.zeroRetryAtMs = Date.now() + ZERO_RETRY_MS;
      },
    );
    segment.zeroing = {
      from,
      to,
      done: done.finally(() => {
        segment.zeroing = undefined;
        if (segment === this.active) this.zeroAhead();
      }),
    };
  }

  // ---- anchor ----

  startTimers(): void {
    this.anchoring = true;
    this.zeroAhead();
    const anchor = setInterval(() => this.writeAnchorBehind(), this.options.anchorIntervalMs ?? 1000);
    const maintenance = setInterval(() => void this.maintain(), this.options.maintenanceIntervalMs ?? 60_000);
    anchor.unref();
    maintenance.unref();
    this.timers.push(anchor, maintenance);
  }

  /**
   * Whether the anchor may be moved: only once start-up has accepted the trail against it, so a
   * refused start never overwrites the evidence of a cut.
   */
  private anchoring = false;

  private anchorInFlight = false;

  /**
   * The periodic anchor: off the event loop where the store can (a token object write takes
   * 2–20 ms on SoftHSM2), else inline. One write in flight at a time.
   */
  private writeAnchorBehind(): void {
    const head = this.durable;
    if (!this.anchoring || head.seq <= this.anchored.seq || this.anchorInFlight) return;
    const behind = this.anchors.writeInBackground?.bind(this.anchors);
    if (behind === undefined) {
      this.writeAnchor();
      return;
    }
    this.anchorInFlight = true;
    behind({ seq: head.seq, mac: head.mac, time: this.now().toISOString() }, (err) => {
      this.anchorInFlight = false;
      if (err === undefined) {
        if (head.seq > this.anchored.seq) this.anchored = head;
      } else this.options.logger?.warn(`audit trail ${this.dir}: the head anchor could not be written (${err.message}); retrying`);
    });
  }

  /** Records the durable head outside the trail, when it moved, before returning. */
  private writeAnchor(): void {
    const head = this.durable;
    if (!this.anchoring || head.seq <= this.anchored.seq) return;
    try {
      this.anchors.write({ seq: head.seq, mac: head.mac, time: this.now().toISOString() });
      this.anchored = head;
    } catch (err) {
      this.options.logger?.warn(`audit trail ${this.dir}: the head anchor could not be written (${(err as Error).message}); retrying`);
    }
  }

  /**
   * Compares the anchor with the trail. Behind or equal is normal (the anchor lags by up to a
   * second); ahead means events were cut off the end or the trail was rolled back.
   */
  async checkAnchor(anchor: AuditAnchor | null): Promise<void> {
    if (anchor === null) return;
    const head = this.head;
    let problem: string | undefined;
    if (anchor.seq > head.seq) {
      problem = `the trail ends at seq ${head.seq} but its head anchor (${this.anchors.description}, written ${anchor.time}) records seq ${anchor.seq}: events ${head.seq + 1}..${anchor.seq} were cut off or the trail was rolled back`;
    } else if (anchor.seq > 0) {
      const found = await this.macOfSeq(anchor.seq);
      if (found !== undefined && found !== anchor.mac) {
        problem = `event ${anchor.seq} has another MAC than its head anchor (${this.anchors.description}, written ${anchor.time}) records: the trail was replaced or rolled back`;
      }
    }
    if (problem === undefined) return;
    this.options.logger?.error?.(`audit trail ${this.dir}: INTEGRITY ALERT: ${problem}`);
    if (this.options.acceptLoss !== true) {
      throw new AuditIntegrityError(
        `audit trail ${this.dir}: ${problem}; refusing to start. Run \`kmsd audit verify --data-dir DIR\`, then restore the audit ` +
          'directory from a backup that holds the anchored events, or, to keep the trail as it is with the loss on record, start once with ' +
          '--audit-accept-loss (it records an Audit.IntegrityAlert event)',
      );
    }
    // The alert takes the seq after the anchor (the anchor never goes backwards) and chains to
    // the last event present, so the gap itself is MACed into the trail.
    const seq = Math.max(anchor.seq, head.seq) + 1;
    this.appendLine(
      pickAuditFields({
        time: this.now().toISOString(),
        requestId: randomUUID(),
        subject: 'system:audit',
        operation: 'Audit.IntegrityAlert',
        result: 'DATA_LOSS',
        details: { anchorSeq: anchor.seq, anchorMac: anchor.mac, anchorTime: anchor.time, foundSeq: head.seq, foundMac: head.mac, problem },
      }),
      seq,
    );
    await this.flush();
    this.anchoring = true;
    this.writeAnchor();
  }

  /**
   * The MAC of event `seq` if it is still in the trail: through the index of a sealed segment
   * (one block read), or reading the active segment backwards from its end, where the anchor
   * normally is (it lags the head by at most about a second of events).
   */
  private async macOfSeq(seq: number): Promise<string | undefined> {
    const segment = [...this.segments].reverse().find((s) => s.name.firstSeq <= seq);
    if (segment === undefined) return undefined;
    if (segment === this.active) return macBackwards(segment.path, segment.bytes, seq);
    let found: string | undefined;
    await scanSegments([segment.readable()], { fromMs: -Infinity, toMs: Infinity, afterSeq: seq - 1 }, Infinity, (event) => {
      if (event.seq === seq) found = event.mac;
      return false;
    });
    return found;
  }

  // ---- retention ----

  /** Retries index files that could not be written, then applies retention. */
  private async maintain(): Promise<void> {
    for (const segment of this.segments) {
      if (segment === this.active || segment.persisted || segment.index === undefined) continue;
      try {
        await segment.cutToData();
        await writeIndex(this.dir, segment, this.keyring);
        await chmod(segment.path, 0o400);
      } catch (err) {
        this.options.logger?.warn(`audit segment ${segment.path}: its index still cannot be written (${(err as Error).message})`);
        return;
      }
    }
    await this.prune();
  }

  /** Prunes whole old segments (never the active one), each batch recorded before deletion. */
  prune(): Promise<void> {
    this.pruning ??= this.pruneNow().finally(() => (this.pruning = undefined));
    return this.pruning;
  }

  private async pruneNow(): Promise<void> {
    for (;;) {
      if (this.failure !== undefined || this.closing !== undefined) return;
      const victims = this.pruneCandidates();
      if (victims.segments.length === 0) return;
      const first = victims.segments[0]?.index as SegmentIndex;
      const last = victims.segments.at(-1)?.index as SegmentIndex;
      const names = victims.segments.map((s) => s.name.name);
      try {
        this.append({
          time: this.now().toISOString(),
          requestId: randomUUID(),
          subject: 'system:audit',
          operation: 'Audit.Prune',
          result: 'OK',
          details: {
            reason: victims.reason,
            segments: names,
            firstSeq: first.firstSeq,
            lastSeq: last.lastSeq,
            lastMac: last.lastMac,
            events: victims.segments.reduce((n, s) => n + (s.index?.events ?? 0), 0),
            bytes: victims.segments.reduce((n, s) => n + s.bytes, 0),
          },
        });
        await this.flush();
        const pendingPath = join(this.dir, PRUNE_PENDING_FILE);
        await writeFile(`${pendingPath}.tmp`, `${JSON.stringify({ segments: names, lastSeq: last.lastSeq, lastMac: last.lastMac, recordSeq: this.durable.seq })}\n`, { mode: 0o600 });
        const temp = await open(`${pendingPath}.tmp`, 'r');
        await temp.sync();
        await temp.close();
        await rename(`${pendingPath}.tmp`, pendingPath);
        fsyncDirectory(this.dir);
        this.segments = this.segments.filter((s) => !victims.segments.includes(s));
        for (const segment of victims.segments) {
          await unlink(segment.path).catch(ignoreMissing);
          await unlink(join(this.dir, indexFileName(segment.name))).catch(ignoreMissing);
        }
        fsyncDirectory(this.dir);
        await unlink(pendingPath);
        fsyncDirectory(this.dir);
        this.options.logger?.info?.(`audit trail ${this.dir}: pruned ${names.length} segment(s) (${victims.reason}), events ${first.firstSeq}..${last.lastSeq}`);
      } catch (err) {
        this.options.logger?.warn(`audit trail ${this.dir}: pruning failed (${(err as Error).message}); retrying later`);
        return;
      }
    }
  }

  private pruneCandidates(): { segments: Segment[]; reason: string } {
    const cutoff = this.now().getTime() - this.retentionMs;
    let total = this.segments.reduce((n, s) => n + s.bytes, 0);
    const segments: Segment[] = [];
    let reason = '';
    for (const segment of this.segments) {
      if (segment === this.active || segment.index === undefined || !segment.persisted || segments.length >= PRUNE_BATCH_SEGMENTS) break;
      const old = segment.index.events > 0 && segment.index.maxTime < cutoff;
      const over = total > this.maxTotalBytes;
      if (!old && !over) break;
      reason ||= old ? 'retention' : 'max-size';
      segments.push(segment);
      total -= segment.bytes;
    }
    return { segments, reason };
  }
}

let zeros: Buffer | undefined;

/** Writes zeros over [from, to) of `path` and fdatasyncs them (one preallocation chunk). */
async function zeroFill(openSegmentFile: OpenSegmentFile, path: string, from: number, to: number): Promise<void> {
  zeros ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  const handle = await openSegmentFile(path);
  try {
    for (let position = from; position < to; ) {
      const { bytesWritten } = await handle.write(zeros, 0, Math.min(zeros.length, to - position), position);
      position += bytesWritten;
    }
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Reads `path` backwards from `end` in growing chunks until the line of `seq` (or an earlier one) shows up. */
async function macBackwards(path: string, end: number, seq: number): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    for (let span = 256 * 1024; ; span *= 4) {
      const start = Math.max(0, end - span);
      const lines = new LineSplitter(start).push(await readRange(handle, start, end));
      if (start > 0) lines.shift();
      for (const line of lines) {
        const parsed = parseLine(line.bytes);
        if (parsed.ok && parsed.record.seq === seq) return typeof parsed.record.mac === 'string' ? parsed.record.mac : undefined;
      }
      const first = lines[0] === undefined ? undefined : parseLine(lines[0].bytes);
      const firstSeq = first?.ok === true && typeof first.record.seq === 'number' ? first.record.seq : undefined;
      if (start === 0 || (firstSeq !== undefined && firstSeq <= seq)) return undefined;
    }
  } finally {
    await handle.close();
  }
}

/** seq and mac of one of our own lines (parsed only when a batch is split at a segment boundary). */
function headOfLine(line: string): Head {
  const record = JSON.parse(line) as { seq: number; mac: string };
  return { seq: record.seq, mac: record.mac };
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
