/**
 * kmsctl against the real daemon (in this process, port 0, SoftHSM2): every command in each
 * output format, binary-safe crypto through files and stdin/stdout, errors with their exit codes,
 * profiles, completion, and that the token never shows up in output, in the process arguments we
 * started, or in the audit trail.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { api, REPO_ROOT, tempDir } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

// Each test starts dozens of kmsctl processes; on a loaded CI machine that takes a while.
jest.setTimeout(180_000);
const KMSCTL = join(REPO_ROOT, 'dist/kmsctl/main.js');
let kmsd: TestKmsd;
let home: string;
let work: string;
const FOLDER = 'cli-folder';

interface Run {
  code: number;
  stdout: Buffer;
  out: string;
  err: string;
}

/** Every argv and every output we saw, checked for the token at the end. */
const spawned: string[][] = [];
const outputs: string[] = [];

function kmsctl(args: string[], options: { stdin?: Buffer | string; env?: Record<string, string | undefined> } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries({ PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: undefined, ...options.env })) {
    if (value !== undefined) env[name] = value;
  }
  const argv = [KMSCTL, ...args];
  spawned.push(argv);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      const run = { code: code ?? -1, stdout, out: stdout.toString('utf8'), err: Buffer.concat(err).toString('utf8') };
      outputs.push(run.out, run.err);
      resolve(run);
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** Runs with the admin environment (endpoint, token and folder from KMS_*). */
const admin = (args: string[], options: { stdin?: Buffer | string; env?: Record<string, string | undefined> } = {}) =>
  kmsctl(args, { ...options, env: { KMS_ENDPOINT: kmsd.url, KMS_TOKEN: kmsd.token, KMS_FOLDER_ID: FOLDER, ...options.env } });

async function ok(args: string[], options: { stdin?: Buffer | string; env?: Record<string, string | undefined> } = {}): Promise<Run> {
  const run = await admin(args, options);
  if (run.code !== 0) throw new Error(`kmsctl ${args.join(' ')} exited ${run.code}: ${run.err}`);
  return run;
}

/** The object a command printed, whatever the format (text prints one object as YAML). */
function parsed(run: Run, format: string): any {
  return format === 'json' ? JSON.parse(run.out) : parse(run.out);
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
  home = tempDir('kmsctl-home-');
  work = tempDir('kmsctl-work-');
});

afterAll(async () => {
  await kmsd?.stop();
});

describe.each(['text', 'yaml', 'json'])('every command with --format %s', (format) => {
  it('runs the whole lifecycle', async () => {
    const f = ['--format', format];
    // Service accounts and tokens.
    const sa = parsed(await ok(['service-account', 'create', '--name', `sa-${format}`, '--description', 'cli test', ...f]), format);
    expect(sa).toMatchObject({ name: `sa-${format}`, description: 'cli test' });
    const saList = await ok(['service-account', 'list', ...f]);
    if (format === 'text') expect(saList.out).toMatch(new RegExp(`\\| ${sa.id} +\\| sa-${format} +\\|`));
    else expect(parsed(saList, format).map((a: any) => a.id)).toContain(sa.id);
    const tokenFile = join(work, `sa-${format}.token`);
    const issued = parsed(await ok(['token', 'create', '--subject', `serviceAccount:${sa.id}`, '--description', 'for cli', '--out', tokenFile, ...f]), format);
    expect(issued.subject).toBe(`serviceAccount:${sa.id}`);
    expect(issued.token).toBeUndefined();
    const saToken = readFileSync(tokenFile, 'utf8').trim();
    expect(saToken.length).toBeGreaterThan(20);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const shown = parsed(await ok(['token', 'create', '--subject', `serviceAccount:${sa.id}`, ...f]), format);
    expect(typeof shown.token).toBe('string');
    const tokens = await ok(['token', 'list', ...f]);
    if (format === 'text') expect(tokens.out).toContain(`serviceAccount:${sa.id}`);
    else expect(parsed(tokens, format).map((t: any) => t.id)).toEqual(expect.arrayContaining([issued.id, shown.id]));
    expect(tokens.out).not.toContain(saToken);

    // Keys.
    const name = `key-${format}`;
    const created = parsed(
      await ok(['symmetric-key', 'create', '--name', name, '--description', 'd', '--labels', 'env=prod,team=cli', '--default-algorithm', 'aes-256', '--rotation-period', '24h', '--deletion-protection', ...f]),
      format,
    );
    expect(created).toMatchObject({ name, folderId: FOLDER, labels: { env: 'prod', team: 'cli' }, defaultAlgorithm: 'AES_256', rotationPeriod: '86400s', deletionProtection: true, status: 'ACTIVE' });
    const keyId: string = created.id;
    const firstVersion: string = created.primaryVersion.id;
    expect(parsed(await ok(['symmetric-key', 'get', keyId, ...f]), format).id).toBe(keyId);
    expect(parsed(await ok(['symmetric-key', 'get', '--name', name, ...f]), format).id).toBe(keyId);
    const list = await ok(['symmetric-key', 'list', ...f]);
    if (format === 'text') {
      expect(list.out).toMatch(/^\+-+\+/);
      expect(list.out).toMatch(/\|\s+ID\s+\|\s+NAME\s+\|/);
      expect(list.out).toMatch(new RegExp(`\\| ${keyId} \\| ${name} +\\| env=prod,team=cli`));
    } else expect(parsed(list, format).find((k: any) => k.id === keyId)).toMatchObject({ name });

    const renamed = parsed(await ok(['symmetric-key', 'update', '--name', name, '--new-name', `${name}-2`, '--no-deletion-protection', '--labels', 'env=stage', ...f]), format);
    expect(renamed).toMatchObject({ name: `${name}-2`, deletionProtection: false, labels: { env: 'stage' } });
    expect(parsed(await ok(['symmetric-key', 'update', keyId, '--status', 'inactive', ...f]), format).status).toBe('INACTIVE');
    expect(parsed(await ok(['symmetric-key', 'update', keyId, '--status', 'active', '--rotation-period', '', ...f]), format)).toMatchObject({ status: 'ACTIVE' });

    // Rotate answers the key (as Yandex's Rotate operation does), with its new primary version.
    const rotatedKey = parsed(await ok(['symmetric-key', 'rotate', '--id', keyId, ...f]), format);
    expect(rotatedKey).toMatchObject({ id: keyId, primaryVersion: { keyId, primary: true, algorithm: 'AES_256' } });
    const rotated = rotatedKey.primaryVersion;
    expect(rotated.id).not.toBe(firstVersion);
    const versions = await ok(['symmetric-key', 'list-versions', keyId, ...f]);
    if (format === 'text') {
      expect(versions.out).toMatch(/\|\s+ID\s+\|\s+STATUS\s+\|\s+ALGORITHM\s+\|\s+PRIMARY\s+\|\s+HOSTED BY HSM\s+\|/);
      expect(versions.out).toMatch(new RegExp(`\\| ${rotated.id} \\| ACTIVE +\\| AES_256 +\\| true `));
    } else expect(parsed(versions, format).map((v: any) => v.id).sort()).toEqual([firstVersion, rotated.id].sort());
    expect(parsed(await ok(['symmetric-key', 'set-primary-version', keyId, '--version-id', firstVersion, ...f]), format).primaryVersion.id).toBe(firstVersion);
    const scheduled = parsed(await ok(['symmetric-key', 'schedule-version-destruction', keyId, '--version-id', rotated.id, '--pending-period', '48h', ...f]), format);
    expect(scheduled).toMatchObject({ id: rotated.id, status: 'SCHEDULED_FOR_DESTRUCTION' });
    expect(Date.parse(scheduled.destroyAt) - Date.now()).toBeGreaterThan(47 * 3600_000);
    expect(parsed(await ok(['symmetric-key', 'cancel-version-destruction', keyId, '--version-id', rotated.id, ...f]), format)).toMatchObject({ id: rotated.id, status: 'ACTIVE' });

    // Access bindings.
    await ok(['symmetric-key', 'add-access-binding', keyId, '--role', 'kms.keys.encrypterDecrypter', '--service-account-id', sa.id, ...f]);
    await ok(['symmetric-key', 'add-access-binding', keyId, '--role', 'kms.viewer', '--subject', `serviceAccount:${sa.id}`, ...f]);
    const bindings = await ok(['symmetric-key', 'list-access-bindings', keyId, ...f]);
    if (format === 'text') expect(bindings.out).toMatch(new RegExp(`\\| kms.keys.encrypterDecrypter \\| serviceAccount +\\| ${sa.id} +\\|`));
    else expect(parsed(bindings, format)).toEqual(expect.arrayContaining([{ roleId: 'kms.viewer', subject: { type: 'serviceAccount', id: sa.id } }]));
    await ok(['symmetric-key', 'remove-access-binding', keyId, '--role', 'kms.viewer', '--service-account-id', sa.id, ...f]);
    const after = parsed(await ok(['symmetric-key', 'list-access-bindings', keyId, '--format', 'json']), 'json');
    expect(after).toEqual([{ roleId: 'kms.keys.encrypterDecrypter', subject: { type: 'serviceAccount', id: sa.id } }]);
    await ok(['symmetric-key', 'set-access-bindings', keyId, '--access-binding', `role=kms.keys.encrypterDecrypter,service-account-id=${sa.id}`, '--access-binding', `role=kms.auditor,subject=serviceAccount:${sa.id}`, ...f]);
    expect(parsed(await ok(['symmetric-key', 'list-access-bindings', keyId, '--format', 'json']), 'json')).toHaveLength(2);
    // Folder bindings (the default folder, or one named).
    await ok(['resource-manager', 'folder', 'add-access-binding', '--role', 'kms.auditor', '--subject', `serviceAccount:${sa.id}`, ...f]);
    const folderBindings = await ok(['resource-manager', 'folder', 'list-access-bindings', FOLDER, ...f]);
    if (format === 'text') expect(folderBindings.out).toMatch(new RegExp(`\\| kms.auditor +\\| serviceAccount +\\| ${sa.id} +\\|`));
    else expect(parsed(folderBindings, format)).toEqual(expect.arrayContaining([{ roleId: 'kms.auditor', subject: { type: 'serviceAccount', id: sa.id } }]));
    await ok(['resource-manager', 'folder', 'remove-access-binding', FOLDER, '--role', 'kms.auditor', '--service-account-id', sa.id, ...f]);
    expect(parsed(await ok(['resource-manager', 'folder', 'list-access-bindings', '--format', 'json']), 'json')).not.toEqual(
      expect.arrayContaining([{ roleId: 'kms.auditor', subject: { type: 'serviceAccount', id: sa.id } }]),
    );

    // Crypto with the service account's token (from a file), printed as base64 without an output file.
    const asSa = { KMS_TOKEN: undefined };
    const saArgs = ['--token-file', tokenFile];
    const encrypted = parsed(await ok([...saArgs, 'symmetric-crypto', 'encrypt', keyId, '--plaintext-file', '-', '--aad-context', 'ctx', ...f], { stdin: 'hello cli', env: asSa }), format);
    expect(encrypted).toMatchObject({ keyId, versionId: firstVersion });
    const cipherFile = join(work, `c-${format}.bin`);
    writeFileSync(cipherFile, Buffer.from(encrypted.ciphertext, 'base64'));
    const plainFile = join(work, `p-${format}.txt`);
    const decrypted = parsed(await ok([...saArgs, 'symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', cipherFile, '--plaintext-file', plainFile, '--aad-context', 'ctx', ...f], { env: asSa }), format);
    expect(decrypted).toEqual({ keyId, versionId: firstVersion });
    expect(readFileSync(plainFile, 'utf8')).toBe('hello cli');
    expect(statSync(plainFile).mode & 0o777).toBe(0o600);
    const reEncrypted = parsed(await ok([...saArgs, 'symmetric-crypto', 're-encrypt', keyId, '--source-key-id', keyId, '--ciphertext-file', cipherFile, '--source-aad-context', 'ctx', '--aad-context', 'new', ...f], { env: asSa }), format);
    expect(reEncrypted).toMatchObject({ keyId, sourceKeyId: keyId });
    const dek = parsed(await ok([...saArgs, 'symmetric-crypto', 'generate-data-key', keyId, '--data-key-spec', 'aes-128', ...f], { env: asSa }), format);
    expect(dek.dataKeyCiphertext).toEqual(expect.any(String));
    expect(dek.dataKeyPlaintext).toBeUndefined();

    // Operations and the audit trail.
    const ops = await ok(['symmetric-key', 'list-operations', keyId, ...f]);
    const opList = format === 'text' ? null : parsed(ops, format);
    if (format === 'text') expect(ops.out).toMatch(/\|\s+ID\s+\|\s+DESCRIPTION\s+\|/);
    const json = parsed(await ok(['symmetric-key', 'list-operations', keyId, '--format', 'json']), 'json');
    expect(json.length).toBeGreaterThanOrEqual(8);
    if (opList !== null) expect(opList.map((o: any) => o.id)).toEqual(json.map((o: any) => o.id));
    const op = parsed(await ok(['operation', 'get', json[0].id, ...f]), format);
    expect(op).toMatchObject({ id: json[0].id, done: true });

    const events = await ok(['audit', 'list', '--key-id', keyId, '--operation', 'SymmetricKey.Rotate', ...f]);
    if (format === 'text') expect(events.out).toMatch(new RegExp(`\\| SymmetricKey.Rotate +\\| OK +\\| ${FOLDER} +\\| ${keyId} `));
    else expect(parsed(events, format)).toEqual([expect.objectContaining({ operation: 'SymmetricKey.Rotate', keyId, subject: 'userAccount:admin', result: 'OK' })]);
    const decrypts = parsed(await ok(['audit', 'list', '--key-id', keyId, '--subject', `serviceAccount:${sa.id}`, '--operation', 'SymmetricCrypto.Decrypt', '--format', 'json']), 'json');
    expect(decrypts).toHaveLength(1);
    const exportFile = join(work, `audit-${format}.jsonl`);
    await ok(['audit', 'export', '--key-id', keyId, '--out', exportFile, ...f]);
    const exported = readFileSync(exportFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(exported.length).toBeGreaterThan(10);
    expect(exported.every((e: any) => e.keyId === keyId && typeof e.mac === 'string' && typeof e.seq === 'number')).toBe(true);
    const verify = await ok(['audit', 'verify', ...f]);
    if (format === 'text') expect(verify.out).toMatch(/^audit trail OK: \d+ events in \d+ segments, head seq \d+$/m);
    else expect(parsed(verify, format)).toMatchObject({ ok: true, findings: [] });

    // Delete, restore, revoke, delete the account.
    const deleted = parsed(await ok(['symmetric-key', 'delete', keyId, ...f]), format);
    expect(deleted).toMatchObject({ done: true });
    const gone = await admin(['symmetric-key', 'get', keyId]);
    expect(gone.code).toBe(1);
    expect(parsed(await ok(['symmetric-key', 'restore', keyId, ...f]), format)).toMatchObject({ id: keyId, status: 'ACTIVE' });
    expect(parsed(await ok(['token', 'revoke', issued.id, ...f]), format)).toEqual({ id: issued.id, revoked: true });
    const revoked = await kmsctl([...saArgs, 'symmetric-key', 'get', keyId], { env: { KMS_ENDPOINT: kmsd.url } });
    expect(revoked.code).toBe(1);
    expect(revoked.err).toContain('UNAUTHENTICATED');
    expect(parsed(await ok(['service-account', 'delete', sa.id, ...f]), format)).toEqual({ id: sa.id, deleted: true });
  });
});

describe('binary-safe crypto', () => {
  let keyId: string;
  beforeAll(async () => {
    keyId = JSON.parse((await ok(['symmetric-key', 'create', '--name', 'binary', '--format', 'json'])).out).id;
  });

  it('round-trips every byte value through files', async () => {
    const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(16_000)]);
    const input = join(work, 'in.bin');
    const cipher = join(work, 'in.enc');
    const output = join(work, 'out.bin');
    writeFileSync(input, data);
    await ok(['symmetric-crypto', 'encrypt', keyId, '--plaintext-file', input, '--ciphertext-file', cipher, '--aad-context', 'a\u00e9']);
    expect(readFileSync(cipher).length).toBeGreaterThan(data.length);
    expect(readFileSync(cipher).includes(data.subarray(0, 64))).toBe(false);
    await ok(['symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', cipher, '--plaintext-file', output, '--aad-context', 'a\u00e9']);
    expect(readFileSync(output).equals(data)).toBe(true);
    const wrongAad = await admin(['symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', cipher, '--plaintext-file', join(work, 'never.bin'), '--aad-context', 'other']);
    expect(wrongAad.code).toBe(1);
    expect(existsSync(join(work, 'never.bin'))).toBe(false);
  });

  it('round-trips through stdin and stdout, printing nothing else', async () => {
    const data = Buffer.concat([Buffer.from([0, 255, 10, 13, 0]), randomBytes(30_000)]);
    const enc = await ok(['symmetric-crypto', 'encrypt', keyId, '--plaintext-file', '-', '--ciphertext-file', '-'], { stdin: data });
    expect(enc.err).toBe('');
    const dec = await ok(['symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', '-', '--plaintext-file', '-'], { stdin: enc.stdout });
    expect(dec.stdout.equals(data)).toBe(true);
    expect(dec.err).toBe('');
  });

  it('never prints a plaintext that was not asked for; data keys decrypt to their plaintext', async () => {
    const dekPlain = join(work, 'dek.bin');
    const dekCipher = join(work, 'dek.enc');
    const meta = JSON.parse((await ok(['symmetric-crypto', 'generate-data-key', keyId, '--data-key-plaintext-file', dekPlain, '--data-key-ciphertext-file', dekCipher, '--format', 'json'])).out);
    expect(Object.keys(meta).sort()).toEqual(['keyId', 'versionId']);
    expect(readFileSync(dekPlain)).toHaveLength(32);
    expect(statSync(dekPlain).mode & 0o777).toBe(0o600);
    const back = await ok(['symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', dekCipher, '--plaintext-file', '-']);
    expect(back.stdout.equals(readFileSync(dekPlain))).toBe(true);
    const noFile = await admin(['symmetric-crypto', 'decrypt', keyId, '--ciphertext-file', dekCipher]);
    expect(noFile.code).toBe(2);
    expect(noFile.err).toContain("required option '--plaintext-file <file>' not specified");
    const bothStdin = await admin(['--token-file', '-', 'symmetric-crypto', 'encrypt', keyId, '--plaintext-file', '-'], { stdin: kmsd.token, env: { KMS_TOKEN: undefined } });
    expect(bothStdin.code).toBe(2);
    expect(bothStdin.err).toContain('stdin is already used');
  });
});

describe('errors and exit codes', () => {
  it('usage errors exit 2 before calling the daemon', async () => {
    const cases: [string[], RegExp][] = [
      [['symmetric-key', 'list', '--bogus'], /unknown option '--bogus'/],
      [['symmetric-key', 'creat'], /unknown command 'creat'[\s\S]*Did you mean create\?/],
      [['symmetric-key', 'create', '--rotation-period', '5x'], /--rotation-period: "5x" is not a duration/],
      [['symmetric-key', 'create', '--default-algorithm', 'des'], /--default-algorithm: "des" is not one of aes-128/],
      [['symmetric-key', 'create', '--labels', 'novalue'], /--labels: "novalue" is not key=value/],
      [['symmetric-key', 'get'], /exactly one of <key-id>, --id or --name/],
      [['symmetric-key', 'update', 'k1'], /nothing to update/],
      [['symmetric-key', 'add-access-binding', 'k1', '--role', 'kms.viewer', '--subject', 'bob'], /must be serviceAccount:<id>, userAccount:<id>/],
      [['--format', 'xml', 'symmetric-key', 'list'], /argument 'xml' is invalid/],
      [['symmetric-crypto', 'encrypt', 'k1', '--plaintext-file', join(work, 'missing')], /cannot read .*missing: ENOENT/],
    ];
    for (const [args, message] of cases) {
      const run = await admin(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.err).toMatch(message);
    }
    const noToken = await kmsctl(['symmetric-key', 'list'], { env: { KMS_ENDPOINT: kmsd.url, KMS_FOLDER_ID: FOLDER } });
    expect(noToken.code).toBe(2);
    expect(noToken.err).toContain('no token');
  });

  it('API errors exit 1 with the message and code; an unreachable daemon exits 3', async () => {
    const missing = await admin(['symmetric-key', 'get', 'abjnosuchkey']);
    expect(missing).toMatchObject({ code: 1, out: '' });
    expect(missing.err).toBe('ERROR: key abjnosuchkey not found (code 5 NOT_FOUND, HTTP 404)\n');
    const byName = await admin(['symmetric-key', 'get', '--name', 'no-such-name']);
    expect(byName.code).toBe(1);
    expect(byName.err).toContain(`no key named "no-such-name" in folder ${FOLDER}`);
    const invalid = await admin(['symmetric-key', 'create', '--labels', 'Env=x']);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toMatch(/labels\.Env: .*\(code 3 INVALID_ARGUMENT, HTTP 400\)/);
    // No permission: a viewer of the folder can read but not rotate.
    const sa = (await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'viewer' })).body;
    const viewerToken = (await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.id}` })).body.token as string;
    await api(kmsd, 'POST', `/resource-manager/v1/folders/${FOLDER}:updateAccessBindings`, {
      accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'serviceAccount', id: sa.id } } }],
    });
    const viewerFile = join(work, 'viewer.token');
    writeFileSync(viewerFile, viewerToken, { mode: 0o600 });
    const keyId = JSON.parse((await ok(['symmetric-key', 'create', '--name', 'guarded', '--format', 'json'])).out).id;
    const env = { KMS_TOKEN: undefined };
    expect((await admin(['--token-file', viewerFile, 'symmetric-key', 'get', keyId], { env })).code).toBe(0);
    const denied = await admin(['--token-file', viewerFile, 'symmetric-key', 'rotate', keyId], { env });
    expect(denied.code).toBe(1);
    expect(denied.err).toBe(`ERROR: serviceAccount:${sa.id} lacks permission kms.keys.rotate on key ${keyId} (code 7 PERMISSION_DENIED, HTTP 403)\n`);
    const verifyDenied = await admin(['--token-file', viewerFile, 'audit', 'verify'], { env });
    expect(verifyDenied.code).toBe(1);
    expect(verifyDenied.err).toContain('lacks permission kms.audit.read');
    // The daemon is down (nothing listens on the port any more).
    const down = await startTestKmsd();
    const downUrl = down.url;
    await down.stop();
    const unreachable = await admin(['symmetric-key', 'list'], { env: { KMS_ENDPOINT: downUrl } });
    expect(unreachable.code).toBe(3);
    expect(unreachable.err).toBe(`ERROR: cannot reach the KMS daemon at ${downUrl}: ECONNREFUSED\n`);
  });
});

describe('profiles', () => {
  it('creates, lists and switches profiles in a 0600 file; the environment and flags override them', async () => {
    const xdg = tempDir('kmsctl-xdg-');
    const env = { XDG_CONFIG_HOME: xdg };
    const created = await kmsctl(['config', 'profile', 'create', 'local', '--endpoint', kmsd.url, '--folder-id', FOLDER, '--token-file', '-', '--format', 'json'], { stdin: `${kmsd.token}\n`, env });
    expect(created.code).toBe(0);
    expect(JSON.parse(created.out)).toEqual({ name: 'local', active: true, endpoint: kmsd.url, folderId: FOLDER, token: 'set' });
    const file = join(xdg, 'kmsctl', 'config.yaml');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, 'kmsctl')).mode & 0o777).toBe(0o700);
    expect(parse(readFileSync(file, 'utf8'))).toEqual({ current: 'local', profiles: { local: { endpoint: kmsd.url, 'folder-id': FOLDER, token: kmsd.token } } });
    // The active profile is enough to work.
    const listed = await kmsctl(['symmetric-key', 'list', '--format', 'json'], { env });
    expect(listed.code).toBe(0);
    expect(Array.isArray(JSON.parse(listed.out))).toBe(true);
    // A file others can read is used, with a warning; the next write puts it back to 0600.
    chmodSync(file, 0o644);
    const loose = await kmsctl(['symmetric-key', 'list'], { env });
    expect(loose.code).toBe(0);
    expect(loose.err).toBe(`warning: ${file} is readable by others (mode 644); it holds tokens: chmod 600 ${file}\n`);
    // A second profile pointing nowhere, not activated; then used.
    expect((await kmsctl(['config', 'profile', 'create', 'broken', '--endpoint', 'http://127.0.0.1:9', '--no-activate'], { env })).code).toBe(0);
    const table = await kmsctl(['config', 'profile', 'list'], { env });
    expect(table.out).toMatch(/\| local +\| yes +\| http:\/\/127\.0\.0\.1:\d+ +\| cli-folder +\| set +\|/);
    expect(table.out).toMatch(/\| broken +\| +\| http:\/\/127\.0\.0\.1:9 +\| +\| not set +\|/);
    expect((await kmsctl(['--profile', 'broken', 'symmetric-key', 'list', '--folder-id', 'x'], { env: { ...env, KMS_TOKEN: 't' } })).code).toBe(3);
    expect((await kmsctl(['config', 'profile', 'use', 'broken'], { env })).code).toBe(0);
    expect(parse(readFileSync(file, 'utf8')).current).toBe('broken');
    // KMS_ENDPOINT and KMS_TOKEN override the broken profile; --endpoint overrides the environment.
    expect((await kmsctl(['symmetric-key', 'list', '--folder-id', FOLDER], { env: { ...env, KMS_ENDPOINT: kmsd.url, KMS_TOKEN: kmsd.token } })).code).toBe(0);
    expect((await kmsctl(['--endpoint', 'http://127.0.0.1:9', 'symmetric-key', 'list', '--folder-id', FOLDER], { env: { ...env, KMS_ENDPOINT: kmsd.url, KMS_TOKEN: kmsd.token } })).code).toBe(3);
    // KMS_FOLDER_ID overrides the profile's folder.
    expect((await kmsctl(['config', 'profile', 'use', 'local'], { env })).code).toBe(0);
    const other = await kmsctl(['symmetric-key', 'list', '--format', 'json'], { env: { ...env, KMS_FOLDER_ID: 'empty-folder' } });
    expect(JSON.parse(other.out)).toEqual([]);
    // Mistakes.
    const dup = await kmsctl(['config', 'profile', 'create', 'local'], { env });
    expect(dup.code).toBe(2);
    expect(dup.err).toContain('profile "local" already exists');
    expect((await kmsctl(['--profile', 'nope', 'symmetric-key', 'list'], { env })).code).toBe(2);
    expect((await kmsctl(['config', 'profile', 'use', 'nope'], { env })).code).toBe(2);
    expect((await kmsctl(['config', 'profile', 'delete', 'broken'], { env })).code).toBe(0);
    expect([...Object.keys(parse(readFileSync(file, 'utf8')).profiles)]).toEqual(['local']);
    // HOME is used when XDG_CONFIG_HOME is not set.
    const homeRun = await kmsctl(['config', 'profile', 'create', 'h', '--endpoint', kmsd.url], { env: {} });
    expect(homeRun.code).toBe(0);
    expect(existsSync(join(home, '.config', 'kmsctl', 'config.yaml'))).toBe(true);
    // A hand-written file with a profile named like a prototype member is just a name.
    const odd = tempDir('kmsctl-odd-');
    mkdirSync(join(odd, 'kmsctl'));
    writeFileSync(join(odd, 'kmsctl', 'config.yaml'), `current: __proto__\nprofiles:\n  __proto__:\n    endpoint: ${kmsd.url}\n    token: ${kmsd.token}\n    folder-id: ${FOLDER}\n`, { mode: 0o600 });
    expect((await kmsctl(['symmetric-key', 'list'], { env: { XDG_CONFIG_HOME: odd } })).code).toBe(0);
  });
});

describe('help and completion', () => {
  it('has help with examples for every command', async () => {
    const top = await kmsctl(['--help']);
    expect(top.code).toBe(0);
    for (const word of ['symmetric-key', 'symmetric-crypto', 'service-account', 'token', 'audit', 'operation', 'config', 'completion', 'Examples:', 'Exit codes']) expect(top.out).toContain(word);
    const commands = [
      ...['create', 'get', 'list', 'update', 'delete', 'restore', 'rotate', 'list-versions', 'set-primary-version', 'schedule-version-destruction', 'cancel-version-destruction', 'list-operations', 'list-access-bindings', 'set-access-bindings', 'add-access-binding', 'remove-access-binding'].map((c) => ['symmetric-key', c]),
      ...['encrypt', 'decrypt', 're-encrypt', 'generate-data-key'].map((c) => ['symmetric-crypto', c]),
      ...['create', 'list', 'delete'].map((c) => ['service-account', c]),
      ...['create', 'list', 'revoke'].map((c) => ['token', c]),
      ...['list', 'export', 'verify'].map((c) => ['audit', c]),
      ['operation', 'get'],
      ...['list-access-bindings', 'add-access-binding', 'remove-access-binding'].map((c) => ['resource-manager', 'folder', c]),
      ...['create', 'use', 'list'].map((c) => ['config', 'profile', c]),
    ];
    for (const command of commands) {
      const help = await kmsctl([...command, '--help']);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.out).toContain(`Usage: kmsctl ${command.join(' ')}`);
      expect(help.out).toMatch(new RegExp(`Examples:\\n  \\$ (.*\\| )?kmsctl ${command.join(' ')}[ \\n]`));
    }
  });

  it('prints completion scripts and completes commands and flags from the command tree', async () => {
    const bash = await kmsctl(['completion', 'bash']);
    expect(bash.out).toContain('complete -o default -F _kmsctl_complete kmsctl');
    expect((await kmsctl(['completion', 'zsh'])).out).toContain('bashcompinit');
    expect((await kmsctl(['__complete', 'sym'])).out.trim().split('\n')).toEqual(['symmetric-crypto', 'symmetric-key']);
    expect((await kmsctl(['__complete', 'symmetric-key', 'list-'])).out.trim().split('\n')).toEqual(['list-access-bindings', 'list-operations', 'list-versions']);
    expect((await kmsctl(['__complete', 'symmetric-key', 'create', '--de'])).out.trim().split('\n')).toEqual(['--default-algorithm', '--deletion-protection', '--description']);
    // The script really completes in bash.
    const script = join(work, 'complete.sh');
    writeFileSync(
      script,
      `${bash.out}\nkmsctl() { node ${KMSCTL} "$@"; }\nCOMP_WORDS=(kmsctl symmetric-key rot); COMP_CWORD=2; _kmsctl_complete; printf '%s\\n' "\${COMPREPLY[@]}"\n`,
    );
    const run = await new Promise<string>((resolve) => {
      const child = spawn('bash', [script], { env: { PATH: process.env.PATH ?? '', HOME: home } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', () => resolve(out));
    });
    expect(run.trim()).toBe('rotate');
  });
});

describe('the token stays secret', () => {
  it('never appears in any output, in any process argument we started, or in the audit trail', async () => {
    expect(spawned.length).toBeGreaterThan(100);
    for (const argv of spawned) expect(argv.join(' ')).not.toContain(kmsd.token);
    for (const text of outputs) expect(text).not.toContain(kmsd.token);
    const events: unknown[] = [];
    let pageToken: string | undefined;
    do {
      const page = await api(kmsd, 'GET', `/kms/v1/auditEvents?pageSize=1000${pageToken ? `&pageToken=${pageToken}` : ''}`);
      events.push(...page.body.events);
      pageToken = page.body.nextPageToken;
    } while (pageToken);
    expect(events.length).toBeGreaterThan(100);
    expect(JSON.stringify(events)).not.toContain(kmsd.token);
  });
});
