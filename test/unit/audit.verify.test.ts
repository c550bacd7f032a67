/**
 * `kmsd audit verify` and `kmsd audit export` on trails written by the real writer (software
 * keystore), then tampered with the ways an attacker with file access (but no key) would.
 */
import { describe, it, expect, beforeAll } from '@jest/globals';
import { createHash, createHmac } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../../daemon/audit/chain.js';
import { runAuditCommand, type AuditCommandIo } from '../../daemon/audit/cli.js';
import { auditDir, sealIndex, type SegmentIndex } from '../../daemon/audit/segments.js';
import { openAuditLog } from '../../daemon/audit/trail.js';
import { verifyTrail } from '../../daemon/audit/verify.js';
import { openSoftwareKeystore } from '../../daemon/keystore/software.js';
import { segmentPaths } from '../support/audit.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
/** A data dir with a trail directory but neither HSM PINs nor a software key. */
const noPins = mkdtempSync(join(tmpdir(), 'kms-verify-nopins-'));
mkdirSync(join(noPins, 'audit'));
/** A genuine trail of 150 events in several 4 KiB segments; each test tampers with a copy. */
let genuine: string;

beforeAll(async () => {
  genuine = mkdtempSync(join(tmpdir(), 'kms-verify-'));
  const log = await openAuditLog(genuine, { keystore: openSoftwareKeystore({ dataDir: genuine }), segmentBytes: 4096, now: () => new Date(T0) });
  for (let n = 1; n <= 150; n++) {
    log.append({
      time: new Date(T0 + n * 1000).toISOString(),
      requestId: `req-${n}`,
      subject: n % 2 === 0 ? 'userAccount:alice' : 'serviceAccount:ci',
      operation: 'SymmetricCrypto.Decrypt',
      folderId: 'folder-1',
      keyId: `key-${n % 3}`,
      result: 'OK',
    });
  }
  await log.close();
  expect(segmentPaths(genuine).length).toBeGreaterThanOrEqual(4);
});

function copy(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'kms-verify-')), 'data');
  cpSync(genuine, dir, { recursive: true });
  for (const path of segmentPaths(dir)) chmodSync(path, 0o600);
  return dir;
}

async function verify(dataDir: string) {
  const keystore = openSoftwareKeystore({ dataDir, allowCreate: false });
  return verifyTrail(dataDir, keystore.auditKeyring({ allowCreate: false }), keystore.auditAnchorStore({ allowCreate: false }));
}

const nameOf = (path: string) => path.split('/').pop()!;
const linesOf = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n');
const writeLines = (path: string, lines: string[]) => writeFileSync(path, `${lines.join('\n')}\n`);

/** Rewrites a segment with a freshly computed chain: unkeyed SHA-256, or HMAC under another key. */
function rechain(path: string, digest: (text: string) => string): void {
  const lines = linesOf(path).map((l) => JSON.parse(l) as Record<string, unknown>);
  let prev = lines[0]!.prev as string;
  writeLines(
    path,
    lines.map((record) => {
      const { mac: _old, ...rest }: Record<string, unknown> = { ...record, prev, result: 'DENIED' };
      const mac = digest(canonicalJson(rest));
      prev = mac;
      return canonicalJson({ ...rest, mac });
    }),
  );
}

describe('verifyTrail', () => {
  it('passes the genuine trail', async () => {
    expect(await verify(copy())).toMatchObject({ ok: true, findings: [], events: 150, headSeq: 150 });
  });

  it.each<[string, (paths: string[], dataDir: string) => void, number, number | undefined, RegExp]>([
    ['an edited line', (p) => writeLines(p[1]!, linesOf(p[1]!).map((l, i) => (i === 2 ? l.replace('"result":"OK"', '"result":"DENIED"') : l))), 1, 3, /mac does not match the line content under the audit key/],
    ['two reordered lines', (p) => { const l = linesOf(p[1]!); writeLines(p[1]!, [l[0]!, l[2]!, l[1]!, ...l.slice(3)]); }, 1, 2, /seq is \d+, expected \d+ \(a line was removed, inserted or moved\)/],
    ['a deleted line', (p) => writeLines(p[2]!, linesOf(p[2]!).filter((_, i) => i !== 4)), 2, 5, /seq is \d+, expected \d+/],
    ['an inserted copy of a line', (p) => { const l = linesOf(p[0]!); writeLines(p[0]!, [l[0]!, l[0]!, ...l.slice(1)]); }, 0, 2, /seq is 1, expected 2/],
    ['a segment rewritten with a recomputed unkeyed SHA-256 chain', (p) => rechain(p[1]!, (t) => createHash('sha256').update(t).digest('hex')), 1, 1, /mac is the unkeyed SHA-256 of the line, not its HMAC under the audit key/],
    ['a segment rewritten under another HMAC key', (p) => rechain(p[2]!, (t) => createHmac('sha256', Buffer.alloc(32, 1)).update(t).digest('hex')), 2, 1, /mac does not match the line content under the audit key \(the line was edited, or written under another key\)/],
    ['a line whose chain key id was changed', (p) => writeLines(p[2]!, linesOf(p[2]!).map((l, i) => (i === 3 ? l.replace(/"chainKey":"[0-9a-f]{32}"/, `"chainKey":"${'ab'.repeat(16)}"`) : l))), 2, 4, /mac does not match the line content under the audit key/],
    ['a chain key id that is not 32 hex digits', (p) => writeLines(p[1]!, linesOf(p[1]!).map((l, i) => (i === 1 ? l.replace(/"chainKey":"[0-9a-f]{32}"/, '"chainKey":"__proto__"') : l))), 1, 2, /field "chainKey" is not 32 hex digits/],
    ['a line stripped of its chain key (passed off as MACed in the HSM)', (p) => writeLines(p[1]!, linesOf(p[1]!).map((l, i) => (i === 0 ? l.replace(/"chainKey":"[0-9a-f]{32}",/, '') : l))), 1, 1, /mac does not match the line content under the audit key/],
    ['a segment rewritten under a chain key of the attacker\'s own, its id on every line', (p) => rechain(p[1]!, (t) => createHmac('sha256', Buffer.alloc(32, 7)).update(t).digest('hex')), 1, 1, /mac does not match the line content under the audit key/],
    ['a deleted middle segment', (p) => { rmSync(p[1]!); rmSync(p[1]!.replace('.jsonl', '.idx.json')); }, 2, 1, /seq is \d+, expected \d+/],
    ['a deleted oldest segment without a prune record', (p) => { rmSync(p[0]!); rmSync(p[0]!.replace('.jsonl', '.idx.json')); }, 1, 1, /the trail starts at seq \d+: events 1\.\.\d+ are missing and no Audit.Prune record covers them \(an old segment was deleted\)/],
  ])('names the segment and line of %s', async (_name, tamper, segment, line, reason) => {
    const dataDir = copy();
    const paths = segmentPaths(dataDir);
    const target = nameOf(paths[segment]!);
    tamper(paths, dataDir);
    const result = await verify(dataDir);
    expect(result.ok).toBe(false);
    expect(result.findings[0]).toEqual({ segment: target, line, reason: expect.stringMatching(reason) });
  });

  it('finds a cut tail against the anchor, naming where the trail now ends', async () => {
    const dataDir = copy();
    const active = segmentPaths(dataDir).at(-1)!;
    const lines = linesOf(active);
    writeLines(active, lines.slice(0, -2));
    const result = await verify(dataDir);
    expect(result.findings).toEqual([
      { segment: nameOf(active), line: lines.length - 2, reason: expect.stringMatching(/^cut tail: the trail ends at seq 148 \(.* line \d+\) but the head anchor \(software:software-audit-anchor.json, written .*\) records seq 150/) },
    ]);
  });

  it('finds an index that disagrees with its segment, or whose MAC is wrong, and the index of a deleted segment', async () => {
    const dataDir = copy();
    const paths = segmentPaths(dataDir);
    const indexPath = paths[1]!.replace('.jsonl', '.idx.json');
    const stored = JSON.parse(readFileSync(indexPath, 'utf8')) as SegmentIndex & { mac?: string };
    delete stored.mac;
    // Correctly MACed (as only the key holder could) but claiming a key the segment does not hold.
    const keystore = openSoftwareKeystore({ dataDir, allowCreate: false });
    writeFileSync(indexPath, sealIndex({ ...stored, keyIds: ['key-x'] }, keystore.auditKeyring({ allowCreate: false })));
    const editedPath = paths[2]!.replace('.jsonl', '.idx.json');
    writeFileSync(editedPath, readFileSync(editedPath, 'utf8').replace('"maxTime":', '"maxTime":1'));
    rmSync(paths[3]!);
    const result = await verify(dataDir);
    expect(result.findings).toEqual(
      expect.arrayContaining([
        { segment: nameOf(indexPath), reason: `disagrees with ${nameOf(paths[1]!)}: its keyIds list does not match the segment` },
        { segment: nameOf(editedPath), reason: expect.stringMatching(/has a MAC that does not match its content under the audit key/) },
        { segment: nameOf(paths[3]!.replace('.jsonl', '.idx.json')), reason: expect.stringMatching(/is the index of a segment that no longer exists and no Audit.Prune record names it/) },
      ]),
    );
  });

  it('notes, without failing, a last line being written at the end of the active segment', async () => {
    const dataDir = copy();
    const active = segmentPaths(dataDir).at(-1)!;
    writeFileSync(active, `${readFileSync(active, 'utf8')}{"folderId":"fol`);
    const result = await verify(dataDir);
    expect(result.ok).toBe(true);
    expect(result.notes).toContainEqual(expect.stringMatching(/line \d+ is incomplete \(a write in progress, or torn by a crash/));
  });
});

describe('runAuditCommand', () => {
  function capture(env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const io: AuditCommandIo = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env };
    return { io, out: () => out.join(''), err: () => err.join('') };
  }
  const software = ['--keystore', 'software'];

  it('verify prints "audit trail OK: N events in M segments, head seq S" and exits 0', async () => {
    const c = capture();
    const dataDir = copy();
    expect(await runAuditCommand(['verify', '--data-dir', dataDir, ...software], c.io)).toBe(0);
    expect(c.out()).toBe(`audit trail OK: 150 events in ${segmentPaths(dataDir).length} segments, head seq 150\n`);
  });

  it('takes the data dir and keystore from the environment like the daemon does', async () => {
    const c = capture({ KMS_DATA_DIR: copy(), KMS_KEYSTORE: 'software' });
    expect(await runAuditCommand(['verify'], c.io)).toBe(0);
    expect(c.out()).toMatch(/^audit trail OK: 150 events/);
  });

  it('verify prints each problem with its segment and line on stderr and exits 1', async () => {
    const c = capture();
    const dataDir = copy();
    const second = segmentPaths(dataDir)[1]!;
    writeLines(second, linesOf(second).filter((_, i) => i !== 1));
    expect(await runAuditCommand(['verify', '--data-dir', dataDir, ...software], c.io)).toBe(1);
    expect(c.err()).toMatch(new RegExp(`^(warning: .*\\n)*audit trail TAMPERED: ${nameOf(second)} line 2: seq is \\d+, expected \\d+ \\(a line was removed, inserted or moved\\)\\n`));
    expect(c.out()).toBe('');
  });

  it('export writes the matching lines exactly as stored, to stdout or a 0600 file', async () => {
    const dataDir = copy();
    const stored = segmentPaths(dataDir).flatMap(linesOf);
    const c = capture();
    const from = new Date(T0 + 10_000).toISOString();
    const to = new Date(T0 + 100_000).toISOString();
    expect(await runAuditCommand(['export', '--data-dir', dataDir, ...software, '--from', from, '--to', to, '--key', 'key-1', '--subject', 'serviceAccount:ci'], c.io)).toBe(0);
    const expected = stored.filter((l) => {
      const e = JSON.parse(l) as { seq: number; keyId: string; subject: string };
      return e.seq >= 10 && e.seq <= 100 && e.keyId === 'key-1' && e.subject === 'serviceAccount:ci';
    });
    expect(expected.length).toBeGreaterThan(5);
    expect(c.out()).toBe(`${expected.join('\n')}\n`);
    const file = join(dataDir, 'export.jsonl');
    const f = capture();
    expect(await runAuditCommand(['export', '--data-dir', dataDir, ...software, '--from', '2024-01-01T00:00:00Z', '--to', '2025-01-01T00:00:00Z', '--out', file], f.io)).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`${stored.join('\n')}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(f.err()).toMatch(/exported 150 events to /);
  });

  it.each<[string, string[], number, RegExp]>([
    ['a data dir without a trail', ['verify', '--data-dir', '/nonexistent/kms', ...software], 1, /^kmsd audit verify: no audit trail at \/nonexistent\/kms\/audit; is --data-dir right\?/],
    ['a data dir without HSM PINs', ['verify', '--data-dir', noPins], 1, /^kmsd audit verify: no SoftHSM2 PIN file .*hsm-pins.json; is --data-dir right\? \(or give --pkcs11-pin\)/],
    ['an unknown subcommand', ['repair'], 2, /^kmsd audit: unknown subcommand "repair"\n\nUsage: kmsd audit verify --data-dir DIR/],
    ['no subcommand', [], 2, /^kmsd audit: missing subcommand/],
    ['an unknown option', ['verify', '--data-dri', 'x'], 2, /^kmsd audit verify: Unknown option '--data-dri'/],
    ['a stray argument', ['verify', 'x'], 2, /^kmsd audit verify: .*positional/i],
    ['an unknown keystore', ['verify', '--keystore', 'tpm'], 2, /^kmsd audit verify: --keystore must be pkcs11 or software, got "tpm"/],
    ['export without --from', ['export', '--to', '2024-01-01T00:00:00Z'], 2, /^kmsd audit export: --from is required/],
    ['export without --to', ['export', '--from', '2024-01-01T00:00:00Z'], 2, /^kmsd audit export: --to is required/],
    ['export with a bad --from', ['export', '--from', 'yesterday', '--to', '2024-01-01T00:00:00Z'], 2, /^kmsd audit export: --from: must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z, got "yesterday"/],
    ['export with --to before --from', ['export', '--from', '2024-02-01T00:00:00Z', '--to', '2024-01-01T00:00:00Z'], 2, /^kmsd audit export: --to must not be earlier than --from/],
  ])('reports %s on stderr', async (_name, argv, code, message) => {
    const c = capture();
    expect(await runAuditCommand(argv, c.io)).toBe(code);
    expect(c.err()).toMatch(message);
    expect(c.out()).toBe('');
  });

  it('prints usage for --help', async () => {
    const c = capture();
    expect(await runAuditCommand(['verify', '--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(/^Usage: kmsd audit verify --data-dir DIR/);
  });

  it('verifies a kmsd 0.1 data dir that was never migrated, with the old rules, and says so', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kms-verify-legacy-'));
    const { legacyHash, GENESIS_PREV } = await import('../../daemon/audit/chain.js');
    const unhashed = { time: new Date(T0).toISOString(), requestId: 'r', subject: 's', operation: 'o', result: 'OK', seq: 1, prev: GENESIS_PREV };
    writeFileSync(join(dataDir, 'audit.log'), `${canonicalJson({ ...unhashed, hash: legacyHash(unhashed) })}\n`);
    const c = capture();
    expect(await runAuditCommand(['verify', '--data-dir', dataDir], c.io)).toBe(0);
    expect(c.out()).toMatch(/note: .*audit.log is the log of a kmsd before keyed chains .*checked with its own rules.*\naudit trail OK: 1 events in 1 segments, head seq 1\n$/);
    expect(auditDir(dataDir)).toMatch(/audit$/);
  });
});
