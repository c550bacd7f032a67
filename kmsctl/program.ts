/**
 * `kmsctl`: the command line for kmsd, modelled on `yc kms …` (command and flag names as there),
 * on commander. Every call goes through the one REST client of the codebase
 * (provider/client/kms-client.ts). The token comes from the profile, `KMS_TOKEN` or
 * `--token-file FILE|-`, never from a flag value (process arguments are visible to every user of
 * the machine), and is never printed.
 */
import { Command, CommanderError, Option } from 'commander';
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import {
  KmsApiError,
  KmsClient,
  KmsUnreachableError,
  base64ToBytes,
  bytesToBase64,
  type AccessBinding,
  type AuditEvent,
  type AuditEventQuery,
  type Operation,
  type ServiceAccount,
  type SymmetricAlgorithm,
  type SymmetricKey,
  type SymmetricKeyVersion,
  type TokenInfo,
  type UpdateSymmetricKeyFields,
} from '../provider/client/kms-client.js';
import { nodeTransport } from '../provider/client/node-transport.js';
import { MEMBER_SYNTAX, memberSubject } from '../provider/client/subjects.js';
import { PROFILE_NAME, configPath, permissionWarning, readConfig, writeConfig, type Profile } from './config.js';
import { EXIT, UsageError, VerificationFailed } from './errors.js';
import { parseFormat, printList, printObject, type Column, type Format } from './output.js';
import { completionScript, completeWords } from './completion.js';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:8443';

/** Where kmsctl reads and writes; the binary passes the process's, tests their own. */
export interface CliIo {
  stdin: AsyncIterable<Buffer | string>;
  stdout: { write(data: string | Uint8Array): unknown };
  stderr: { write(data: string): unknown };
  env: NodeJS.ProcessEnv;
}

interface GlobalOptions {
  profile?: string;
  endpoint?: string;
  folderId?: string;
  tokenFile?: string;
  format?: string;
  timeout?: string;
}

/** What one command runs with. */
interface Context {
  io: CliIo;
  format: Format;
  folderId: string | undefined;
  client(): Promise<KmsClient>;
  /** stdin, read at most once (the token and a file argument cannot both be `-`). */
  readStdin(purpose: string): Promise<Buffer>;
}

const ALGORITHMS: readonly SymmetricAlgorithm[] = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'];

/** `aes-256`, `AES_256` → `AES_256`. */
function algorithm(flag: string, value: string): SymmetricAlgorithm {
  const normal = value.trim().toUpperCase().replace(/-/g, '_');
  if ((ALGORITHMS as readonly string[]).includes(normal)) return normal as SymmetricAlgorithm;
  throw new UsageError(`${flag}: "${value}" is not one of ${ALGORITHMS.map((a) => a.toLowerCase().replace(/_/g, '-')).join(', ')}`);
}

const UNIT_SECONDS = new Map<string, number>([
  ['s', 1],
  ['m', 60],
  ['h', 3600],
  ['d', 86400],
]);

/** Go-style durations (`24h`, `1h30m`, `90s`, also `7d`) → the API's `"<seconds>s"`. */
export function duration(flag: string, value: string): string {
  const text = value.trim();
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) {
    throw new UsageError(`${flag}: "${value}" is not a duration such as 24h, 1h30m, 3600s or 7d`);
  }
  let seconds = 0;
  for (const p of parts) seconds += Number(p[1]) * (UNIT_SECONDS.get(p[2] as string) as number);
  return `${seconds}s`;
}

/** `k=v,k2=v2` → labels (an empty string clears them). */
function labels(value: string): Record<string, string> {
  const result = new Map<string, string>();
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--labels: "${part}" is not key=value`);
    result.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return Object.fromEntries(result);
}

/** `TYPE:ID` (the member syntax of provider/client/subjects.ts) → an access binding subject. */
function subject(flag: string, value: string): AccessBinding['subject'] {
  const parsed = memberSubject(value);
  if (parsed === undefined) throw new UsageError(`${flag}: ${JSON.stringify(value)} must be ${MEMBER_SYNTAX}`);
  return parsed;
}

/** `role=ROLE,subject=TYPE:ID` (or `service-account-id=ID` / `user-account-id=ID`, as yc writes it). */
function accessBinding(value: string): AccessBinding {
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--access-binding: "${part}" is not name=value`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const role = fields.get('role');
  if (role === undefined || role === '') throw new UsageError(`--access-binding: "${value}" names no role=`);
  const sa = fields.get('service-account-id');
  const ua = fields.get('user-account-id');
  const s = fields.get('subject');
  if ([sa, ua, s].filter((v) => v !== undefined).length !== 1) {
    throw new UsageError(`--access-binding: "${value}" needs exactly one of subject=, service-account-id=, user-account-id=`);
  }
  const who = s !== undefined ? subject('--access-binding', s) : sa !== undefined ? { type: 'serviceAccount', id: sa } : { type: 'userAccount', id: ua as string };
  return { roleId: role, subject: who };
}

/** The subject of `--subject TYPE:ID`, `--service-account-id ID` or `--user-account-id ID` (exactly one). */
function bindingSubject(o: { subject?: string; serviceAccountId?: string; userAccountId?: string }): AccessBinding['subject'] {
  const given = [o.subject, o.serviceAccountId, o.userAccountId].filter((v) => v !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --subject, --service-account-id, --user-account-id');
  if (o.subject !== undefined) return subject('--subject', o.subject);
  return o.serviceAccountId !== undefined ? { type: 'serviceAccount', id: o.serviceAccountId } : { type: 'userAccount', id: o.userAccountId as string };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** A file argument: a path, or `-` for stdin. */
async function readInput(ctx: Context, flag: string, path: string): Promise<Buffer> {
  if (path === '-') return ctx.readStdin(flag);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as { code?: string }).code ?? (err as Error).message}`);
  }
}

/** Writes bytes to a path (mode 0600, fsynced: plaintext and keys go here) or to stdout for `-`. */
function writeOutput(ctx: Context, flag: string, path: string, data: Uint8Array): void {
  if (path === '-') {
    ctx.io.stdout.write(data);
    return;
  }
  let fd: number;
  try {
    fd = openSync(path, 'w', 0o600);
  } catch (err) {
    throw new UsageError(`${flag}: cannot write ${path}: ${(err as { code?: string }).code ?? (err as Error).message}`);
  }
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function utf8(value: string | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : new TextEncoder().encode(value);
}

const KEY_COLUMNS: Column<SymmetricKey>[] = [
  { header: 'ID', value: (k) => k.id },
  { header: 'NAME', value: (k) => k.name },
  { header: 'LABELS', value: (k) => Object.entries(k.labels ?? {}).map(([n, v]) => `${n}=${v}`).join(',') },
  { header: 'PRIMARY VERSION ID', value: (k) => k.primaryVersion?.id },
  { header: 'DEFAULT ALGORITHM', value: (k) => k.defaultAlgorithm },
  { header: 'ROTATION PERIOD', value: (k) => k.rotationPeriod },
  { header: 'DELETION PROTECTION', value: (k) => k.deletionProtection },
  { header: 'CREATED AT', value: (k) => k.createdAt },
  { header: 'STATUS', value: (k) => k.status },
];

const VERSION_COLUMNS: Column<SymmetricKeyVersion>[] = [
  { header: 'ID', value: (v) => v.id },
  { header: 'STATUS', value: (v) => v.status },
  { header: 'ALGORITHM', value: (v) => v.algorithm },
  { header: 'PRIMARY', value: (v) => v.primary },
  { header: 'HOSTED BY HSM', value: (v) => v.hostedByHsm ?? false },
  { header: 'CREATED AT', value: (v) => v.createdAt },
  { header: 'DESTROY AT', value: (v) => v.destroyAt },
];

const OPERATION_COLUMNS: Column<Operation>[] = [
  { header: 'ID', value: (o) => o.id },
  { header: 'DESCRIPTION', value: (o) => o.description },
  { header: 'CREATED AT', value: (o) => o.createdAt },
  { header: 'CREATED BY', value: (o) => o.createdBy },
  { header: 'DONE', value: (o) => o.done },
  { header: 'ERROR', value: (o) => o.error?.message },
];

const BINDING_COLUMNS: Column<AccessBinding>[] = [
  { header: 'ROLE ID', value: (b) => b.roleId },
  { header: 'SUBJECT TYPE', value: (b) => b.subject.type },
  { header: 'SUBJECT ID', value: (b) => b.subject.id },
];

const SA_COLUMNS: Column<ServiceAccount>[] = [
  { header: 'ID', value: (a) => a.id },
  { header: 'NAME', value: (a) => a.name },
  { header: 'DESCRIPTION', value: (a) => a.description },
  { header: 'CREATED AT', value: (a) => a.createdAt },
];

const TOKEN_COLUMNS: Column<TokenInfo>[] = [
  { header: 'ID', value: (t) => t.id },
  { header: 'SUBJECT', value: (t) => t.subject },
  { header: 'DESCRIPTION', value: (t) => t.description },
  { header: 'CREATED AT', value: (t) => t.createdAt },
];

const EVENT_COLUMNS: Column<AuditEvent>[] = [
  { header: 'SEQ', value: (e) => e.seq },
  { header: 'TIME', value: (e) => e.time },
  { header: 'SUBJECT', value: (e) => e.subject },
  { header: 'OPERATION', value: (e) => e.operation },
  { header: 'RESULT', value: (e) => e.result },
  { header: 'FOLDER ID', value: (e) => e.folderId },
  { header: 'KEY ID', value: (e) => e.keyId },
  { header: 'VERSION ID', value: (e) => e.versionId },
];

interface ProfileRow {
  name: string;
  active: boolean;
  endpoint?: string;
  folderId?: string;
  token: 'set' | 'not set';
}

const PROFILE_COLUMNS: Column<ProfileRow>[] = [
  { header: 'NAME', value: (p) => p.name },
  { header: 'ACTIVE', value: (p) => (p.active ? 'yes' : '') },
  { header: 'ENDPOINT', value: (p) => p.endpoint },
  { header: 'FOLDER ID', value: (p) => p.folderId },
  { header: 'TOKEN', value: (p) => p.token },
];

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** Builds the command tree; `context` is made per action from the parsed global flags. */
export function buildProgram(io: CliIo): Command {
  let stdinUsedFor: string | undefined;
  const makeContext = (cmd: Command): Context => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const format = parseFormat(globals.format);
    const path = configPath(io.env);
    const config = readConfig(path);
    const warning = config.profiles.size > 0 ? permissionWarning(path) : undefined;
    if (warning !== undefined) io.stderr.write(`${warning}\n`);
    const profileName = globals.profile ?? config.current;
    let profile: Profile = {};
    if (profileName !== undefined) {
      const found = config.profiles.get(profileName);
      if (found === undefined) {
        if (globals.profile !== undefined || config.current !== undefined) throw new UsageError(`profile "${profileName}" does not exist in ${path} (kmsctl config profile list)`);
      } else profile = found;
    }
    const readStdin = async (purpose: string): Promise<Buffer> => {
      if (stdinUsedFor !== undefined) throw new UsageError(`${purpose}: stdin is already used for ${stdinUsedFor}; give a file`);
      stdinUsedFor = purpose;
      return readAll(io.stdin);
    };
    const env = (name: string) => (io.env[name] === undefined || io.env[name] === '' ? undefined : io.env[name]);
    const folderId = globals.folderId ?? env('KMS_FOLDER_ID') ?? profile.folderId;
    const ctx: Context = {
      io,
      format,
      folderId,
      readStdin,
      client: async () => {
        const endpoint = globals.endpoint ?? env('KMS_ENDPOINT') ?? profile.endpoint ?? DEFAULT_ENDPOINT;
        let token: string | undefined;
        if (globals.tokenFile !== undefined) token = (await readInput(ctx, '--token-file', globals.tokenFile)).toString('utf8').trim();
        else token = env('KMS_TOKEN') ?? profile.token;
        if (token === undefined || token === '') {
          throw new UsageError('no token: set one in a profile (kmsctl config profile create), in KMS_TOKEN, or give --token-file FILE|-');
        }
        const timeoutMs = globals.timeout === undefined ? 30_000 : Number(duration('--timeout', globals.timeout).slice(0, -1)) * 1000;
        return new KmsClient({ endpoint, token, timeoutMs, transport: nodeTransport({ keepAlive: false }) });
      },
    };
    return ctx;
  };

  const program = new Command('kmsctl');
  program
    .description('Command line for kmsd, the self-hosted Key Management Service (in the style of `yc kms`).')
    .version('0.1.0', '--version')
    .option('--profile <name>', 'profile of the config file to use (default: its current one)')
    .option('--endpoint <url>', `kmsd URL (env KMS_ENDPOINT; default ${DEFAULT_ENDPOINT})`)
    .option('--folder-id <id>', 'folder (env KMS_FOLDER_ID)')
    .option('--token-file <file>', 'read the token from FILE, or from stdin with - (else the profile or KMS_TOKEN)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'yaml', 'json']).default('text'))
    .option('--timeout <duration>', 'per-request timeout, e.g. 30s', undefined)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText(
      'after',
      `
Profiles live in ${'$XDG_CONFIG_HOME'}/kmsctl/config.yaml (default ~/.config/kmsctl/config.yaml, mode 0600).
Exit codes: 0 ok, 1 the API answered with an error, 2 usage error, 3 the daemon could not be reached,
4 audit verify found the trail tampered.
${examples(
  'kmsctl config profile create local --endpoint http://127.0.0.1:8443 --folder-id default --token-file kms-data/admin.token',
  'kmsctl symmetric-key create --name payments --default-algorithm aes-256 --rotation-period 720h',
  'kmsctl symmetric-key list --format json',
  "printf 'secret' | kmsctl symmetric-crypto encrypt --name payments --plaintext-file - --ciphertext-file secret.enc",
  'source <(kmsctl completion bash)',
)}`,
    );

  const run =
    <A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      await fn(makeContext(cmd), ...(args.slice(0, -1) as A));
    };

  const key = program.command('symmetric-key').description('manage symmetric keys');
  const keyRef = (c: Command) => c.argument('[key-id]', 'id of the key').option('--id <id>', 'id of the key').option('--name <name>', 'name of the key (in --folder-id)');

  async function resolveKey(ctx: Context, positional: string | undefined, opts: { id?: string; name?: string }): Promise<{ client: KmsClient; keyId: string }> {
    const client = await ctx.client();
    const given = [positional, opts.id, opts.name].filter((v) => v !== undefined);
    if (given.length !== 1) throw new UsageError('name the key with exactly one of <key-id>, --id or --name');
    if (opts.name === undefined) return { client, keyId: (positional ?? opts.id) as string };
    if (ctx.folderId === undefined) throw new UsageError('--name needs a folder: give --folder-id, set KMS_FOLDER_ID, or use a profile with folder-id');
    const matches = (await client.listAllKeys(ctx.folderId)).filter((k) => k.name === opts.name);
    if (matches.length === 0) throw new KmsApiError(5, `no key named "${opts.name}" in folder ${ctx.folderId}`, 404);
    if (matches.length > 1) throw new UsageError(`${matches.length} keys are named "${opts.name}" in folder ${ctx.folderId} (${matches.map((k) => k.id).join(', ')}); use --id`);
    return { client, keyId: (matches[0] as SymmetricKey).id };
  }

  const needFolder = (ctx: Context): string => {
    if (ctx.folderId === undefined) throw new UsageError('no folder: give --folder-id, set KMS_FOLDER_ID, or use a profile with folder-id');
    return ctx.folderId;
  };

  key
    .command('create')
    .description('create a symmetric key (and its first, primary version)')
    .option('--name <name>', 'name of the key')
    .option('--description <text>', 'description')
    .option('--labels <k=v,...>', 'labels, e.g. env=prod,team=billing')
    .option('--default-algorithm <algorithm>', 'aes-128 (default), aes-192, aes-256, aes-256-hsm')
    .option('--rotation-period <duration>', 'automatic rotation, e.g. 24h, 720h (at least 1h)')
    .option('--deletion-protection', 'refuse deletion until it is turned off')
    .addHelpText('after', examples('kmsctl symmetric-key create --name payments --default-algorithm aes-256 --rotation-period 24h --labels env=prod --deletion-protection'))
    .action(
      run(async (ctx, o: { name?: string; description?: string; labels?: string; defaultAlgorithm?: string; rotationPeriod?: string; deletionProtection?: boolean }) => {
        const body = {
          folderId: needFolder(ctx),
          ...(o.name !== undefined && { name: o.name }),
          ...(o.description !== undefined && { description: o.description }),
          ...(o.labels !== undefined && { labels: labels(o.labels) }),
          ...(o.defaultAlgorithm !== undefined && { defaultAlgorithm: algorithm('--default-algorithm', o.defaultAlgorithm) }),
          ...(o.rotationPeriod !== undefined && { rotationPeriod: duration('--rotation-period', o.rotationPeriod) }),
          ...(o.deletionProtection === true && { deletionProtection: true }),
        };
        printObject(ctx.io.stdout, ctx.format, await (await ctx.client()).createKey(body));
      }),
    );

  keyRef(key.command('get').description('show a symmetric key'))
    .addHelpText('after', examples('kmsctl symmetric-key get abcd1234', 'kmsctl symmetric-key get --name payments --format yaml'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        printObject(ctx.io.stdout, ctx.format, await client.getKey(keyId));
      }),
    );

  key
    .command('list')
    .description('list the symmetric keys of the folder')
    .option('--limit <n>', 'at most this many keys')
    .addHelpText('after', examples('kmsctl symmetric-key list', 'kmsctl symmetric-key list --folder-id prod --format json'))
    .action(
      run(async (ctx, o: { limit?: string }) => {
        let keys = await (await ctx.client()).listAllKeys(needFolder(ctx));
        if (o.limit !== undefined) keys = keys.slice(0, positiveInt('--limit', o.limit));
        printList(ctx.io.stdout, ctx.format, keys, KEY_COLUMNS);
      }),
    );

  keyRef(key.command('update').description('change a symmetric key'))
    .option('--new-name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--labels <k=v,...>', 'replace the labels ("" clears them)')
    .option('--default-algorithm <algorithm>', 'algorithm of the next versions')
    .option('--rotation-period <duration>', 'automatic rotation period ("" or 0 turns it off)')
    .option('--deletion-protection', 'turn deletion protection on')
    .option('--no-deletion-protection', 'turn deletion protection off')
    .addOption(new Option('--status <status>', 'activate or deactivate the key').choices(['active', 'inactive', 'ACTIVE', 'INACTIVE']))
    .addHelpText('after', examples('kmsctl symmetric-key update --name payments --new-name billing --labels env=prod', 'kmsctl symmetric-key update abcd1234 --no-deletion-protection', 'kmsctl symmetric-key update abcd1234 --status inactive'))
    .action(
      run(
        async (
          ctx,
          id: string | undefined,
          o: { id?: string; name?: string; newName?: string; description?: string; labels?: string; defaultAlgorithm?: string; rotationPeriod?: string; deletionProtection?: boolean; status?: string },
        ) => {
          const fields: UpdateSymmetricKeyFields = {};
          if (o.newName !== undefined) fields.name = o.newName;
          if (o.description !== undefined) fields.description = o.description;
          if (o.labels !== undefined) fields.labels = labels(o.labels);
          if (o.defaultAlgorithm !== undefined) fields.defaultAlgorithm = algorithm('--default-algorithm', o.defaultAlgorithm);
          if (o.rotationPeriod !== undefined) fields.rotationPeriod = o.rotationPeriod === '' || o.rotationPeriod === '0' ? null : duration('--rotation-period', o.rotationPeriod);
          if (o.deletionProtection !== undefined) fields.deletionProtection = o.deletionProtection;
          if (o.status !== undefined) fields.status = o.status.toUpperCase() as 'ACTIVE' | 'INACTIVE';
          if (Object.keys(fields).length === 0) throw new UsageError('nothing to update: give at least one of --new-name, --description, --labels, --default-algorithm, --rotation-period, --[no-]deletion-protection, --status');
          const { client, keyId } = await resolveKey(ctx, id, o);
          printObject(ctx.io.stdout, ctx.format, await client.updateKey(keyId, fields));
        },
      ),
    );

  keyRef(key.command('delete').description('delete a symmetric key (restorable during the restore window)'))
    .addHelpText('after', examples('kmsctl symmetric-key delete --name payments'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        printObject(ctx.io.stdout, ctx.format, await client.deleteKeyOperation(keyId));
      }),
    );

  key
    .command('restore')
    .description('bring a deleted key back while its restore window is open')
    .argument('[key-id]', 'id of the deleted key')
    .option('--id <id>', 'id of the deleted key')
    .addHelpText('after', examples('kmsctl symmetric-key restore abcd1234'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        printObject(ctx.io.stdout, ctx.format, await client.restoreKey(keyId));
      }),
    );

  keyRef(key.command('rotate').description('add a version with the default algorithm and make it primary'))
    .addHelpText('after', examples('kmsctl symmetric-key rotate --name payments'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        const op = await client.rotateKeyOperation(keyId);
        printObject(ctx.io.stdout, ctx.format, op.response ?? op);
      }),
    );

  keyRef(key.command('list-versions').description('list the versions of a key'))
    .addHelpText('after', examples('kmsctl symmetric-key list-versions --name payments'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        const versions: SymmetricKeyVersion[] = [];
        let pageToken: string | undefined;
        do {
          const page = await client.listVersions(keyId, 1000, pageToken);
          versions.push(...page.items);
          pageToken = page.nextPageToken;
        } while (pageToken);
        printList(ctx.io.stdout, ctx.format, versions, VERSION_COLUMNS);
      }),
    );

  const versionCommand = (name: string, description: string, extra: (c: Command) => Command, call: (client: KmsClient, keyId: string, versionId: string, o: Record<string, string>) => Promise<unknown>, example: string) =>
    extra(keyRef(key.command(name).description(description)).requiredOption('--version-id <id>', 'the version'))
      .addHelpText('after', examples(example))
      .action(
        run(async (ctx, id: string | undefined, o: { id?: string; name?: string; versionId: string } & Record<string, string>) => {
          const { client, keyId } = await resolveKey(ctx, id, o);
          printObject(ctx.io.stdout, ctx.format, await call(client, keyId, o.versionId, o));
        }),
      );
  versionCommand('set-primary-version', 'make an ACTIVE version the primary one', (c) => c, (client, keyId, versionId) => client.setPrimaryVersion(keyId, versionId), 'kmsctl symmetric-key set-primary-version --name payments --version-id efgh5678');
  versionCommand(
    'schedule-version-destruction',
    'destroy a non-primary version after a pending period',
    (c) => c.option('--pending-period <duration>', 'how long until destruction (default 7 days, as the API)'),
    (client, keyId, versionId, o) => client.scheduleVersionDestruction(keyId, versionId, o['pendingPeriod'] === undefined ? undefined : duration('--pending-period', o['pendingPeriod'])),
    'kmsctl symmetric-key schedule-version-destruction --name payments --version-id efgh5678 --pending-period 24h',
  );
  versionCommand('cancel-version-destruction', 'cancel a scheduled destruction', (c) => c, (client, keyId, versionId) => client.cancelVersionDestruction(keyId, versionId), 'kmsctl symmetric-key cancel-version-destruction --name payments --version-id efgh5678');

  keyRef(key.command('list-operations').description('list the operations on a key, oldest first'))
    .addHelpText('after', examples('kmsctl symmetric-key list-operations --name payments'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        const ops: Operation[] = [];
        let pageToken: string | undefined;
        do {
          const page = await client.listOperations(keyId, 1000, pageToken);
          ops.push(...page.items);
          pageToken = page.nextPageToken;
        } while (pageToken);
        printList(ctx.io.stdout, ctx.format, ops, OPERATION_COLUMNS);
      }),
    );

  keyRef(key.command('list-access-bindings').description('list the access bindings of a key'))
    .addHelpText('after', examples('kmsctl symmetric-key list-access-bindings --name payments'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string }) => {
        const { client, keyId } = await resolveKey(ctx, id, o);
        printList(ctx.io.stdout, ctx.format, await client.listKeyAccessBindings(keyId), BINDING_COLUMNS);
      }),
    );

  keyRef(key.command('set-access-bindings').description('replace every access binding of a key'))
    .option('--access-binding <role=ROLE,subject=TYPE:ID>', 'a binding (repeat the flag); none clears them', collect)
    .addHelpText('after', examples('kmsctl symmetric-key set-access-bindings --name payments --access-binding role=kms.keys.encrypterDecrypter,service-account-id=sa1'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string; accessBinding?: string[] }) => {
        const bindings = (o.accessBinding ?? []).map(accessBinding);
        const { client, keyId } = await resolveKey(ctx, id, o);
        printObject(ctx.io.stdout, ctx.format, await client.setKeyAccessBindings(keyId, bindings));
      }),
    );

  for (const [name, action, verb] of [
    ['add-access-binding', 'ADD', 'grant a role on a key'],
    ['remove-access-binding', 'REMOVE', 'take a role on a key away'],
  ] as const) {
    keyRef(key.command(name).description(verb))
      .requiredOption('--role <role>', 'e.g. kms.keys.encrypterDecrypter, kms.viewer, kms.admin')
      .option('--subject <type:id>', 'serviceAccount:<id> or userAccount:<id>')
      .option('--service-account-id <id>', 'a service account')
      .option('--user-account-id <id>', 'a user account')
      .addHelpText('after', examples(`kmsctl symmetric-key ${name} --name payments --role kms.keys.encrypterDecrypter --service-account-id sa1`))
      .action(
        run(async (ctx, id: string | undefined, o: { id?: string; name?: string; role: string; subject?: string; serviceAccountId?: string; userAccountId?: string }) => {
          const who = bindingSubject(o);
          const { client, keyId } = await resolveKey(ctx, id, o);
          printObject(ctx.io.stdout, ctx.format, await client.updateKeyAccessBindings(keyId, [{ action, accessBinding: { roleId: o.role, subject: who } }]));
        }),
      );
  }

  const folder = program.command('resource-manager').description('folders').command('folder').description('folders: access bindings that apply to every key of the folder');
  const folderArg = (c: Command) => c.argument('[folder-id]', 'the folder (default: --folder-id, KMS_FOLDER_ID or the profile)');
  const folderOf = (ctx: Context, id: string | undefined) => id ?? needFolder(ctx);
  folderArg(folder.command('list-access-bindings').description('list the access bindings of a folder'))
    .addHelpText('after', examples('kmsctl resource-manager folder list-access-bindings prod'))
    .action(
      run(async (ctx, id: string | undefined) => {
        printList(ctx.io.stdout, ctx.format, await (await ctx.client()).listFolderAccessBindings(folderOf(ctx, id)), BINDING_COLUMNS);
      }),
    );
  for (const [name, action, verb] of [
    ['add-access-binding', 'ADD', 'grant a role on every key of a folder'],
    ['remove-access-binding', 'REMOVE', 'take a folder role away'],
  ] as const) {
    folderArg(folder.command(name).description(verb))
      .requiredOption('--role <role>', 'e.g. kms.viewer, kms.auditor, kms.keys.encrypter')
      .option('--subject <type:id>', 'serviceAccount:<id> or userAccount:<id>')
      .option('--service-account-id <id>', 'a service account')
      .option('--user-account-id <id>', 'a user account')
      .addHelpText('after', examples(`kmsctl resource-manager folder ${name} prod --role kms.viewer --service-account-id sa1`))
      .action(
        run(async (ctx, id: string | undefined, o: { role: string; subject?: string; serviceAccountId?: string; userAccountId?: string }) => {
          const who = bindingSubject(o);
          const client = await ctx.client();
          printObject(ctx.io.stdout, ctx.format, await client.updateFolderAccessBindings(folderOf(ctx, id), [{ action, accessBinding: { roleId: o.role, subject: who } }]));
        }),
      );
  }

  const crypto = program.command('symmetric-crypto').description('encrypt and decrypt with symmetric keys');
  keyRef(crypto.command('encrypt').description('encrypt a file (or stdin) with a key'))
    .requiredOption('--plaintext-file <file>', 'what to encrypt; - for stdin (at most 32 KiB)')
    .option('--ciphertext-file <file>', 'where the ciphertext goes (raw bytes); - for stdout; else printed as base64')
    .option('--aad-context <text>', 'additional authenticated data, needed again to decrypt')
    .option('--version-id <id>', 'a version other than the primary one')
    .addHelpText('after', examples("printf 'card 4111' | kmsctl symmetric-crypto encrypt --name payments --plaintext-file - --ciphertext-file card.enc --aad-context order-42"))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string; plaintextFile: string; ciphertextFile?: string; aadContext?: string; versionId?: string }) => {
        const plaintext = await readInput(ctx, '--plaintext-file', o.plaintextFile);
        const { client, keyId } = await resolveKey(ctx, id, o);
        const result = await client.encrypt(keyId, plaintext, utf8(o.aadContext), o.versionId);
        if (o.ciphertextFile === undefined) {
          printObject(ctx.io.stdout, ctx.format, result);
          return;
        }
        writeOutput(ctx, '--ciphertext-file', o.ciphertextFile, base64ToBytes(result.ciphertext));
        if (o.ciphertextFile !== '-') printObject(ctx.io.stdout, ctx.format, { keyId: result.keyId, versionId: result.versionId });
      }),
    );

  keyRef(crypto.command('decrypt').description('decrypt a ciphertext file (or stdin); the plaintext goes only to --plaintext-file'))
    .requiredOption('--ciphertext-file <file>', 'raw ciphertext bytes as encrypt wrote them; - for stdin')
    .requiredOption('--plaintext-file <file>', 'where the plaintext goes (mode 0600); - for stdout')
    .option('--aad-context <text>', 'the additional authenticated data given to encrypt')
    .addHelpText('after', examples('kmsctl symmetric-crypto decrypt --name payments --ciphertext-file card.enc --plaintext-file - --aad-context order-42'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string; plaintextFile: string; ciphertextFile: string; aadContext?: string }) => {
        const ciphertext = await readInput(ctx, '--ciphertext-file', o.ciphertextFile);
        const { client, keyId } = await resolveKey(ctx, id, o);
        const result = await client.decrypt(keyId, bytesToBase64(ciphertext), utf8(o.aadContext));
        writeOutput(ctx, '--plaintext-file', o.plaintextFile, base64ToBytes(result.plaintext));
        if (o.plaintextFile !== '-') printObject(ctx.io.stdout, ctx.format, { keyId: result.keyId, versionId: result.versionId });
      }),
    );

  keyRef(crypto.command('re-encrypt').description('decrypt with a source key and encrypt with this key, without the plaintext leaving the daemon'))
    .requiredOption('--source-key-id <id>', 'the key the ciphertext was made with')
    .requiredOption('--ciphertext-file <file>', 'the ciphertext (raw bytes); - for stdin')
    .option('--source-aad-context <text>', 'AAD of the source ciphertext')
    .option('--aad-context <text>', 'AAD for the new ciphertext')
    .option('--new-ciphertext-file <file>', 'where the new ciphertext goes; - for stdout; else printed as base64')
    .addHelpText('after', examples('kmsctl symmetric-crypto re-encrypt --name payments-2026 --source-key-id abcd1234 --ciphertext-file card.enc --new-ciphertext-file card.2026.enc'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string; sourceKeyId: string; ciphertextFile: string; sourceAadContext?: string; aadContext?: string; newCiphertextFile?: string }) => {
        const ciphertext = await readInput(ctx, '--ciphertext-file', o.ciphertextFile);
        const { client, keyId } = await resolveKey(ctx, id, o);
        const result = await client.reEncrypt(keyId, {
          sourceKeyId: o.sourceKeyId,
          ciphertext: bytesToBase64(ciphertext),
          ...(o.sourceAadContext !== undefined && { sourceAadContext: utf8(o.sourceAadContext) }),
          ...(o.aadContext !== undefined && { aadContext: utf8(o.aadContext) }),
        });
        if (o.newCiphertextFile === undefined) {
          printObject(ctx.io.stdout, ctx.format, result);
          return;
        }
        writeOutput(ctx, '--new-ciphertext-file', o.newCiphertextFile, base64ToBytes(result.ciphertext));
        if (o.newCiphertextFile !== '-') {
          printObject(ctx.io.stdout, ctx.format, { keyId: result.keyId, versionId: result.versionId, sourceKeyId: result.sourceKeyId, sourceVersionId: result.sourceVersionId });
        }
      }),
    );

  keyRef(crypto.command('generate-data-key').description('generate a data key for envelope encryption'))
    .option('--data-key-spec <algorithm>', 'aes-128, aes-192, aes-256 (default)', 'aes-256')
    .option('--aad-context <text>', 'additional authenticated data for the encrypted data key')
    .option('--data-key-plaintext-file <file>', 'where the plaintext data key goes (mode 0600); - for stdout; without it none is returned')
    .option('--data-key-ciphertext-file <file>', 'where the encrypted data key goes (raw bytes); - for stdout; else printed as base64')
    .addHelpText('after', examples('kmsctl symmetric-crypto generate-data-key --name payments --data-key-plaintext-file dek.bin --data-key-ciphertext-file dek.enc'))
    .action(
      run(async (ctx, id: string | undefined, o: { id?: string; name?: string; dataKeySpec: string; aadContext?: string; dataKeyPlaintextFile?: string; dataKeyCiphertextFile?: string }) => {
        if (o.dataKeyPlaintextFile === '-' && o.dataKeyCiphertextFile === '-') throw new UsageError('--data-key-plaintext-file and --data-key-ciphertext-file cannot both be -');
        const spec = algorithm('--data-key-spec', o.dataKeySpec);
        const { client, keyId } = await resolveKey(ctx, id, o);
        const result = await client.generateDataKey(keyId, spec, utf8(o.aadContext), o.dataKeyPlaintextFile === undefined);
        const shown: Record<string, unknown> = { keyId: result.keyId, versionId: result.versionId };
        if (o.dataKeyPlaintextFile !== undefined && result.dataKeyPlaintext !== undefined) writeOutput(ctx, '--data-key-plaintext-file', o.dataKeyPlaintextFile, base64ToBytes(result.dataKeyPlaintext));
        if (o.dataKeyCiphertextFile !== undefined) writeOutput(ctx, '--data-key-ciphertext-file', o.dataKeyCiphertextFile, base64ToBytes(result.dataKeyCiphertext));
        else shown['dataKeyCiphertext'] = result.dataKeyCiphertext;
        if (o.dataKeyPlaintextFile !== '-' && o.dataKeyCiphertextFile !== '-') printObject(ctx.io.stdout, ctx.format, shown);
      }),
    );

  const sa = program.command('service-account').description('service accounts (bootstrap admin only)');
  sa.command('create')
    .description('create a service account (subject serviceAccount:<id>)')
    .requiredOption('--name <name>', 'name')
    .option('--description <text>', 'description')
    .addHelpText('after', examples('kmsctl service-account create --name billing'))
    .action(run(async (ctx, o: { name: string; description?: string }) => printObject(ctx.io.stdout, ctx.format, await (await ctx.client()).createServiceAccount(o.name, o.description))));
  sa.command('list')
    .description('list service accounts')
    .addHelpText('after', examples('kmsctl service-account list --format yaml'))
    .action(run(async (ctx) => printList(ctx.io.stdout, ctx.format, await (await ctx.client()).listServiceAccounts(), SA_COLUMNS)));
  sa.command('delete')
    .description('delete a service account (revokes its tokens and bindings)')
    .argument('<service-account-id>', 'the account')
    .addHelpText('after', examples('kmsctl service-account delete sa1'))
    .action(
      run(async (ctx, id: string) => {
        await (await ctx.client()).deleteServiceAccount(id);
        printObject(ctx.io.stdout, ctx.format, { id, deleted: true });
      }),
    );

  const token = program.command('token').description('tokens (bootstrap admin only)');
  token
    .command('create')
    .description('issue a token for a subject; its value is shown once')
    .requiredOption('--subject <subject>', 'serviceAccount:<id>, userAccount:<id> or system:metrics')
    .option('--description <text>', 'description')
    .option('--out <file>', 'write the token value to FILE (mode 0600) instead of printing it')
    .addHelpText('after', examples('kmsctl token create --subject serviceAccount:sa1 --out sa1.token', 'kmsctl token create --subject system:metrics --description prometheus'))
    .action(
      run(async (ctx, o: { subject: string; description?: string; out?: string }) => {
        const issued = await (await ctx.client()).issueToken(o.subject, o.description);
        if (o.out === undefined) {
          printObject(ctx.io.stdout, ctx.format, issued);
          return;
        }
        writeOutput(ctx, '--out', o.out, new TextEncoder().encode(`${issued.token}\n`));
        const { token: _value, ...rest } = issued;
        printObject(ctx.io.stdout, ctx.format, rest);
      }),
    );
  token
    .command('list')
    .description('list tokens (never their values)')
    .addHelpText('after', examples('kmsctl token list'))
    .action(run(async (ctx) => printList(ctx.io.stdout, ctx.format, await (await ctx.client()).listTokens(), TOKEN_COLUMNS)));
  token
    .command('revoke')
    .description('revoke a token at once')
    .argument('<token-id>', 'the token (its id, not its value)')
    .addHelpText('after', examples('kmsctl token revoke tok123'))
    .action(
      run(async (ctx, id: string) => {
        await (await ctx.client()).revokeToken(id);
        printObject(ctx.io.stdout, ctx.format, { id, revoked: true });
      }),
    );

  const audit = program.command('audit').description('the audit trail');
  const auditFilters = (c: Command) =>
    c
      .option('--key-id <id>', 'events of this key')
      .option('--folder <id>', 'events of this folder')
      .option('--subject <subject>', 'events of this caller, e.g. serviceAccount:sa1')
      .option('--operation <operation>', 'e.g. SymmetricCrypto.Decrypt')
      .option('--from <time>', 'RFC 3339, inclusive')
      .option('--to <time>', 'RFC 3339, inclusive');
  type AuditFilterOptions = { keyId?: string; folder?: string; subject?: string; operation?: string; from?: string; to?: string };
  const auditQuery = (o: AuditFilterOptions): AuditEventQuery => ({
    ...(o.keyId !== undefined && { keyId: o.keyId }),
    ...(o.folder !== undefined && { folderId: o.folder }),
    ...(o.subject !== undefined && { subject: o.subject }),
    ...(o.operation !== undefined && { operation: o.operation }),
    ...(o.from !== undefined && { from: o.from }),
    ...(o.to !== undefined && { to: o.to }),
  });
  auditFilters(audit.command('list').description('list audit events, oldest first'))
    .option('--page-size <n>', 'events per page (≤ 1000)', '100')
    .option('--page-token <token>', 'continue after a previous page')
    .option('--all', 'follow every page')
    .addHelpText('after', examples('kmsctl audit list --key-id abcd1234 --operation SymmetricCrypto.Decrypt', 'kmsctl audit list --subject serviceAccount:sa1 --from 2026-01-01T00:00:00Z --all --format json'))
    .action(
      run(async (ctx, o: AuditFilterOptions & { pageSize: string; pageToken?: string; all?: boolean }) => {
        const client = await ctx.client();
        const events: AuditEvent[] = [];
        let pageToken = o.pageToken;
        let next: string | undefined;
        do {
          const page = await client.listAuditEvents({ ...auditQuery(o), pageSize: positiveInt('--page-size', o.pageSize), ...(pageToken !== undefined && { pageToken }) });
          events.push(...page.items);
          next = page.nextPageToken;
          pageToken = next;
        } while (o.all === true && next !== undefined);
        printList(ctx.io.stdout, ctx.format, events, EVENT_COLUMNS);
        if (next !== undefined && o.all !== true) ctx.io.stderr.write(`more events: --page-token ${next}\n`);
      }),
    );
  auditFilters(audit.command('export').description('write every matching event as JSONL, exactly as the API returns them (with seq, prev, mac)'))
    .option('--out <file>', 'write to FILE (mode 0600) instead of stdout')
    .addHelpText('after', examples('kmsctl audit export --from 2026-01-01T00:00:00Z --to 2026-02-01T00:00:00Z --out january.jsonl'))
    .action(
      run(async (ctx, o: AuditFilterOptions & { out?: string }) => {
        const client = await ctx.client();
        const lines: string[] = [];
        let pageToken: string | undefined;
        do {
          const page = await client.listAuditEvents({ ...auditQuery(o), pageSize: 1000, ...(pageToken !== undefined && { pageToken }) });
          for (const event of page.items) lines.push(`${JSON.stringify(event)}\n`);
          pageToken = page.nextPageToken;
        } while (pageToken !== undefined);
        const data = new TextEncoder().encode(lines.join(''));
        writeOutput(ctx, '--out', o.out ?? '-', data);
        if (o.out !== undefined) ctx.io.stderr.write(`exported ${lines.length} events to ${o.out}\n`);
      }),
    );
  audit
    .command('verify')
    .description('have the daemon verify the whole trail under its audit key (exit 4 when tampered)')
    .addHelpText('after', examples('kmsctl audit verify', 'kmsctl audit verify --format json'))
    .action(
      run(async (ctx) => {
        const result = await (await ctx.client()).verifyAudit();
        if (ctx.format === 'text') {
          for (const note of result.notes) ctx.io.stdout.write(`note: ${note}\n`);
          if (result.ok) ctx.io.stdout.write(`audit trail OK: ${result.events} events in ${result.segments} segments, head seq ${result.headSeq}\n`);
          for (const f of result.findings) {
            const where = f.segment === undefined ? '' : f.line === undefined ? `${f.segment}: ` : `${f.segment} line ${f.line}: `;
            ctx.io.stdout.write(`audit trail TAMPERED: ${where}${f.reason}\n`);
          }
        } else printObject(ctx.io.stdout, ctx.format, result);
        if (!result.ok) throw new VerificationFailed(`the daemon reports the audit trail as tampered (${result.findings.length} findings)`);
      }),
    );

  program
    .command('operation')
    .description('operations')
    .command('get')
    .description('show an operation')
    .argument('<operation-id>', 'the operation')
    .addHelpText('after', examples('kmsctl operation get op123'))
    .action(run(async (ctx, id: string) => printObject(ctx.io.stdout, ctx.format, await (await ctx.client()).getOperation(id))));

  const profiles = program.command('config').description("kmsctl's own configuration").command('profile').description('profiles: endpoint, folder and token');
  profiles
    .command('create')
    .description('create a profile (and make it the current one)')
    .argument('<name>', 'profile name')
    .option('--endpoint <url>', `kmsd URL (default ${DEFAULT_ENDPOINT})`)
    .option('--folder-id <id>', 'default folder')
    .option('--token-file <file>', 'read the token from FILE, or - for stdin')
    .option('--no-activate', 'do not make it the current profile')
    .addHelpText('after', examples('kmsctl config profile create prod --endpoint https://kms.example:8443 --folder-id prod --token-file -   # paste the token', 'kmsctl config profile create local --token-file kms-data/admin.token'))
    .action(async (name: string, o: { endpoint?: string; folderId?: string; tokenFile?: string; activate: boolean }, cmd: Command) => {
      const ctx = makeContext(cmd);
      if (!PROFILE_NAME.test(name)) throw new UsageError(`profile name "${name}" must match ${PROFILE_NAME.source}`);
      const path = configPath(io.env);
      const config = readConfig(path);
      if (config.profiles.has(name)) throw new UsageError(`profile "${name}" already exists in ${path}`);
      const profile: Profile = {};
      // Only this command's own flags (a global --endpoint or --folder-id given before the command counts too).
      const endpoint = o.endpoint ?? cmd.optsWithGlobals<GlobalOptions>().endpoint;
      const folderId = o.folderId ?? cmd.optsWithGlobals<GlobalOptions>().folderId;
      if (endpoint !== undefined) {
        try {
          new URL(endpoint);
        } catch {
          throw new UsageError(`--endpoint: "${endpoint}" is not a URL`);
        }
        profile.endpoint = endpoint;
      }
      if (folderId !== undefined) profile.folderId = folderId;
      const tokenFile = o.tokenFile ?? cmd.optsWithGlobals<GlobalOptions>().tokenFile;
      if (tokenFile !== undefined) {
        const value = (await readInput(ctx, '--token-file', tokenFile)).toString('utf8').trim();
        if (value === '') throw new UsageError('--token-file: the token is empty');
        profile.token = value;
      }
      config.profiles.set(name, profile);
      if (o.activate) config.current = name;
      writeConfig(path, config);
      printObject(io.stdout, ctx.format, profileRow(name, profile, config.current === name));
    });
  profiles
    .command('use')
    .description('make a profile the current one')
    .argument('<name>', 'profile name')
    .addHelpText('after', examples('kmsctl config profile use prod'))
    .action((name: string, _o: unknown, cmd: Command) => {
      const ctx = makeContext(cmd);
      const path = configPath(io.env);
      const config = readConfig(path);
      const profile = config.profiles.get(name);
      if (profile === undefined) throw new UsageError(`profile "${name}" does not exist in ${path}`);
      config.current = name;
      writeConfig(path, config);
      printObject(io.stdout, ctx.format, profileRow(name, profile, true));
    });
  profiles
    .command('list')
    .description('list profiles (tokens are shown as set / not set, never their values)')
    .addHelpText('after', examples('kmsctl config profile list'))
    .action((_o: unknown, cmd: Command) => {
      const ctx = makeContext(cmd);
      const config = readConfig(configPath(io.env));
      printList(io.stdout, ctx.format, [...config.profiles].map(([name, p]) => profileRow(name, p, config.current === name)), PROFILE_COLUMNS);
    });
  profiles
    .command('delete')
    .description('delete a profile')
    .argument('<name>', 'profile name')
    .action((name: string, _o: unknown, cmd: Command) => {
      const ctx = makeContext(cmd);
      const path = configPath(io.env);
      const config = readConfig(path);
      if (!config.profiles.delete(name)) throw new UsageError(`profile "${name}" does not exist in ${path}`);
      if (config.current === name) delete config.current;
      writeConfig(path, config);
      printObject(io.stdout, ctx.format, { name, deleted: true });
    });

  program
    .command('completion')
    .description('print a shell completion script')
    .argument('[shell]', 'bash or zsh', 'bash')
    .addHelpText('after', examples('source <(kmsctl completion bash)        # add to ~/.bashrc', 'source <(kmsctl completion zsh)         # add to ~/.zshrc'))
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion: "${shell}" is not bash or zsh`);
      io.stdout.write(completionScript(shell));
    });

  return program;
}

function profileRow(name: string, p: Profile, active: boolean): ProfileRow {
  return {
    name,
    active,
    ...(p.endpoint !== undefined && { endpoint: p.endpoint }),
    ...(p.folderId !== undefined && { folderId: p.folderId }),
    token: p.token === undefined ? 'not set' : 'set',
  };
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag}: "${value}" is not a positive integer`);
  return n;
}

const CODE_NAMES = new Map<number, string>([
  [1, 'CANCELLED'],
  [2, 'UNKNOWN'],
  [3, 'INVALID_ARGUMENT'],
  [4, 'DEADLINE_EXCEEDED'],
  [5, 'NOT_FOUND'],
  [6, 'ALREADY_EXISTS'],
  [7, 'PERMISSION_DENIED'],
  [8, 'RESOURCE_EXHAUSTED'],
  [9, 'FAILED_PRECONDITION'],
  [10, 'ABORTED'],
  [12, 'UNIMPLEMENTED'],
  [13, 'INTERNAL'],
  [14, 'UNAVAILABLE'],
  [15, 'DATA_LOSS'],
  [16, 'UNAUTHENTICATED'],
]);

/** Runs kmsctl with `argv` (without node and the script) and returns the exit code; never throws. */
export async function runKmsctl(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === '__complete') {
    io.stdout.write(completeWords(buildProgram(io), argv.slice(1)).join('\n') + '\n');
    return EXIT.OK;
  }
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
      if (err.code === 'commander.executeSubCommandAsync' || err.exitCode === 0) return EXIT.OK;
      return EXIT.USAGE;
    }
    if (err instanceof UsageError) {
      io.stderr.write(`ERROR: ${err.message}\n`);
      return EXIT.USAGE;
    }
    if (err instanceof KmsApiError) {
      io.stderr.write(`ERROR: ${err.message} (code ${err.code} ${CODE_NAMES.get(err.code) ?? 'UNKNOWN'}${err.httpStatus === 200 ? '' : `, HTTP ${err.httpStatus}`})\n`);
      return EXIT.API;
    }
    if (err instanceof KmsUnreachableError) {
      io.stderr.write(`ERROR: ${err.message}\n`);
      return EXIT.CONNECTION;
    }
    if (err instanceof VerificationFailed) {
      io.stderr.write(`ERROR: ${err.message}\n`);
      return EXIT.VERIFY_FAILED;
    }
    io.stderr.write(`ERROR: ${(err as Error).message ?? String(err)}\n`);
    return EXIT.API;
  }
}
