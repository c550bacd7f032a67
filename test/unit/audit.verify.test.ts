import { describe, it, expect, beforeAll } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, hashEvent } from '../../daemon/audit/chain.js';
import { runAuditCommand, type AuditCommandIo } from '../../daemon/audit/cli.js';
import { auditLogPath, openAuditLog } from '../../daemon/audit/jsonl-audit.js';
import { verifyAuditLog } from '../../daemon/audit/verify.js';
import type { ChainedAuditEvent } from '../../daemon/domain/ports.js';

/** The lines (without "\n") of a genuine 6-event log, written by the real writer. */
let genuine: string[];

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kms-audit-verify-'));
  const log = await openAuditLog(dataDir);
  for (let n = 1; n <= 6; n++) {
    log.append({
      time: new Date(Date.UTC(2024, 4, 1, 10, 0, n)).toISOString(),
      requestId: `req-${n}`,
      subject: 'userAccount:alice',
      operation: 'SymmetricCrypto.Decrypt',
      folderId: 'folder-1',
      keyId: 'key-1',
      versionId: 'version-1',
      result: 'OK',
      remoteAddress: '127.0.0.1',
    });
  }
  await log.close();
  genuine = readFileSync(auditLogPath(dataDir), 'utf8').split('\n').slice(0, -1);
});

/** Writes `content` as a data dir's audit.log and returns the data dir. */
function dataDirWith(content: string): string {
  const dataDir = mkdtempSync(join(tmpdir(), 'kms-audit-verify-'));
  writeFileSync(auditLogPath(dataDir), content, { mode: 0o600 });
  return dataDir;
}

const joined = (lines: string[]) => lines.map((l) => `${l}\n`).join('');
const at = (index: number) => genuine[index]!;
const parsed = (index: number) => JSON.parse(at(index)) as ChainedAuditEvent;

/** A forged line that is internally consistent: right seq, right prev, recomputed hash. */
function forged(seq: number, prev: string): string {
  const unhashed = { ...parsed(0), requestId: 'forged', seq, prev, hash: undefined };
  return canonicalJson({ ...unhashed, hash: hashEvent(unhashed) });
}

describe('verifyAuditLog', () => {
  it('passes a genuine log and an empty one', () => {
    expect(verifyAuditLog(auditLogPath(dataDirWith(joined(genuine))))).toEqual({ ok: true, events: 6 });
    expect(verifyAuditLog(auditLogPath(dataDirWith('')))).toEqual({ ok: true, events: 0 });
  });

  it.each<[string, () => string, number, RegExp]>([
    ['an edited field (result OK → DENIED)', () => joined(genuine.map((l, i) => (i === 2 ? l.replace('"result":"OK"', '"result":"DENIED"') : l))), 3, /hash does not match the line content \(the line was edited\)/],
    ['an edited hash', () => joined(genuine.map((l, i) => (i === 2 ? l.replace(/"hash":"[0-9a-f]/, '"hash":"x') : l))), 3, /field "hash" is missing or not a hex SHA-256/],
    ['an edited line whose hash was recomputed', () => {
      const edited = { ...parsed(2), result: 'DENIED' };
      return joined(genuine.map((l, i) => (i === 2 ? canonicalJson({ ...edited, hash: hashEvent(edited) }) : l)));
    }, 4, /prev does not match the hash of line 3/],
    ['a removed line', () => joined(genuine.filter((_, i) => i !== 3)), 4, /seq is 5, expected 4 \(a line was removed, inserted or moved\)/],
    ['a removed first line', () => joined(genuine.slice(1)), 1, /seq is 2, expected 1/],
    ['two swapped lines', () => joined([at(0), at(1), at(3), at(2), at(4), at(5)]), 3, /seq is 4, expected 3/],
    ['an inserted copy of a line', () => joined([at(0), at(1), at(1), ...genuine.slice(2)]), 3, /seq is 2, expected 3/],
    ['an inserted forged line with a valid seq, prev and hash', () => joined([at(0), at(1), forged(3, parsed(1).hash), ...genuine.slice(2)]), 4, /seq is 3, expected 4/],
    ['an inserted line of text', () => joined([at(0), 'hello', ...genuine.slice(1)]), 2, /not valid JSON/],
    ['an inserted empty line', () => joined([at(0), '', ...genuine.slice(1)]), 2, /line is empty/],
    ['a file truncated in the middle of a line', () => joined(genuine.slice(0, 3)) + at(3).slice(0, 30), 4, /incomplete last line \(no trailing newline\)/],
    ['a last line without its newline', () => joined(genuine).slice(0, -1), 6, /incomplete last line/],
    ['whitespace added inside a line', () => joined(genuine.map((l, i) => (i === 1 ? l.replace('","', '", "') : l))), 2, /not byte for byte as kmsd wrote it/],
    ['a duplicate key that JSON.parse would hide', () => joined(genuine.map((l, i) => (i === 4 ? l.replace('{', '{"result":"DENIED",') : l))), 5, /not byte for byte as kmsd wrote it/],
    ['a line that is a JSON array', () => joined([at(0), '[]', ...genuine.slice(1)]), 2, /not a JSON object/],
  ])('fails naming the line for %s', (_name, content, line, reason) => {
    const result = verifyAuditLog(auditLogPath(dataDirWith(content())));
    expect(result).toEqual({ ok: false, line, reason: expect.stringMatching(reason) });
  });

  it('throws ENOENT when there is no log', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kms-audit-verify-'));
    expect(() => verifyAuditLog(auditLogPath(dataDir))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});

describe('runAuditCommand', () => {
  function capture(env: NodeJS.ProcessEnv = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const io: AuditCommandIo = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) }, env };
    return { io, out: () => out.join(''), err: () => err.join('') };
  }

  it('prints "audit log OK: N events" and exits 0 on a genuine log', async () => {
    const c = capture();
    expect(await runAuditCommand(['verify', '--data-dir', dataDirWith(joined(genuine))], c.io)).toBe(0);
    expect(c.out()).toBe('audit log OK: 6 events\n');
    expect(c.err()).toBe('');
  });

  it('takes the data dir from KMS_DATA_DIR like the daemon does', async () => {
    const c = capture({ KMS_DATA_DIR: dataDirWith(joined(genuine.slice(0, 2))) });
    expect(await runAuditCommand(['verify'], c.io)).toBe(0);
    expect(c.out()).toBe('audit log OK: 2 events\n');
  });

  it('prints "audit log TAMPERED at line L: reason" on stderr and exits 1', async () => {
    const c = capture();
    const dataDir = dataDirWith(joined(genuine.filter((_, i) => i !== 1)));
    expect(await runAuditCommand(['verify', '--data-dir', dataDir], c.io)).toBe(1);
    expect(c.err()).toBe('audit log TAMPERED at line 2: seq is 3, expected 2 (a line was removed, inserted or moved)\n');
    expect(c.out()).toBe('');
  });

  it.each<[string, string[], number, RegExp]>([
    ['a data dir without a log', ['verify', '--data-dir', '/nonexistent/kms'], 1, /kmsd audit verify: no audit log at \/nonexistent\/kms\/audit\.log; is --data-dir right\?/],
    ['an unknown subcommand', ['repair'], 2, /kmsd audit: unknown subcommand "repair"\n\nUsage: kmsd audit verify --data-dir DIR/],
    ['no subcommand', [], 2, /kmsd audit: missing subcommand/],
    ['an unknown option', ['verify', '--data-dri', 'x'], 2, /kmsd audit verify: Unknown option '--data-dri'/],
    ['a stray argument', ['verify', 'x'], 2, /kmsd audit verify: .*positional/i],
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
});
