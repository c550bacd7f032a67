/**
 * The kmsd web console: a single page served by kmsd at /console. Every action is a call of the
 * REST API through the codebase's one client (provider/client/kms-client.ts) on a fetch transport,
 * with the user's token in the Authorization header, so permissions and the audit trail apply as
 * to any client; errors are shown as the API worded them. The token lives in sessionStorage (this
 * tab only, gone when it closes) and is never put in a cookie or a URL.
 */
import { fetchTransport } from '../provider/client/fetch-transport.js';
import {
  KmsApiError,
  KmsClient,
  KmsUnreachableError,
  base64ToBytes,
  type AccessBinding,
  type AuditEvent,
  type AuditEventQuery,
  type AuditVerification,
  type Operation,
  type ServiceAccount,
  type TokenInfo,
  type SymmetricAlgorithm,
  type SymmetricKey,
  type SymmetricKeyVersion,
} from '../provider/client/kms-client.js';
import { badge, checkbox, field, h, select, tableOf, uid, type Child } from './dom.js';

const TOKEN_KEY = 'kms.console.token';
const FOLDERS_KEY = 'kms.console.folders';
const VERIFY_KEY = 'kms.console.verify';
const VERIFY_REUSE_MS = 10 * 60 * 1000;
const ALGORITHMS: SymmetricAlgorithm[] = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'];
const ROLES = ['kms.auditor', 'kms.viewer', 'kms.editor', 'kms.admin', 'kms.keys.encrypter', 'kms.keys.decrypter', 'kms.keys.encrypterDecrypter'];
const CODE_NAMES = new Map<number, string>([
  [3, 'INVALID_ARGUMENT'],
  [5, 'NOT_FOUND'],
  [6, 'ALREADY_EXISTS'],
  [7, 'PERMISSION_DENIED'],
  [8, 'RESOURCE_EXHAUSTED'],
  [9, 'FAILED_PRECONDITION'],
  [12, 'UNIMPLEMENTED'],
  [13, 'INTERNAL'],
  [14, 'UNAVAILABLE'],
  [16, 'UNAUTHENTICATED'],
]);

const main = document.getElementById('main') as HTMLElement;
let flash: string | undefined;

function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

function client(): KmsClient {
  return new KmsClient({ endpoint: location.origin, token: token() ?? '', transport: fetchTransport() });
}

/** The API's message as it is, with its code name. */
function describe(err: unknown): string {
  if (err instanceof KmsApiError) return `${err.message} (${CODE_NAMES.get(err.code) ?? `code ${err.code}`})`;
  if (err instanceof KmsUnreachableError) return `The daemon cannot be reached: ${err.reason}`;
  return err instanceof Error ? err.message : String(err);
}

function alertBox(): HTMLElement {
  return h('p', { class: 'alert', role: 'alert' });
}

/**
 * Runs an API action from a button or form: disables the control while it runs, shows the API's
 * error next to it, or calls `done` (usually a re-render with a flash message).
 */
async function act(control: HTMLButtonElement, alert: HTMLElement, run: () => Promise<void>): Promise<void> {
  alert.textContent = '';
  control.disabled = true;
  try {
    await run();
  } catch (err) {
    if (err instanceof KmsApiError && err.code === 16) {
      signOut('Your token is no longer valid; sign in again.');
      return;
    }
    alert.textContent = describe(err);
  } finally {
    control.disabled = false;
  }
}

function signOut(message?: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(VERIFY_KEY);
  flash = message;
  if (location.hash === '#/signin') void render();
  else location.hash = '#/signin';
}

function route(): { path: string[]; query: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = raw.split('?');
  return { path: path.split('/').filter((p) => p !== '').map(decodeURIComponent), query: new URLSearchParams(query) };
}

function go(hash: string): void {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

function recentFolders(): string[] {
  try {
    const parsed: unknown = JSON.parse(sessionStorage.getItem(FOLDERS_KEY) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter((f): f is string => typeof f === 'string').slice(0, 10) : [];
  } catch {
    return [];
  }
}

function rememberFolder(folderId: string): void {
  sessionStorage.setItem(FOLDERS_KEY, JSON.stringify([folderId, ...recentFolders().filter((f) => f !== folderId)].slice(0, 10)));
}

function page(title: string, ...children: (Child | Child[])[]): void {
  document.title = `${title} · kmsd console`;
  const note = flash;
  flash = undefined;
  main.replaceChildren(h('h1', {}, title), h('p', { class: 'note', role: 'status', id: 'flash' }, note ?? ''), ...children.flat().filter((c): c is Node | string => c !== null && c !== undefined && c !== false).map((c) => (typeof c === 'number' ? String(c) : c)));
}

function panel(title: string, ...children: (Child | Child[])[]): HTMLElement {
  const id = uid('s');
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function labelsText(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

/** `env=prod, team=x` → labels. */
function parseLabels(text: string): Record<string, string> {
  const result = new Map<string, string>();
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`labels: "${item}" is not key=value`);
    result.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return Object.fromEntries(result);
}

/** `24h`, `1h30m`, `3600s`, `7d` → `"<seconds>s"`. */
function parseDuration(what: string, text: string): string {
  const value = text.trim();
  const parts = [...value.matchAll(/(\d+)([smhd])/g)];
  if (value === '' || parts.map((p) => p[0]).join('') !== value) throw new Error(`${what}: "${text}" is not a duration such as 24h, 30m or 7d`);
  const unit = new Map([
    ['s', 1],
    ['m', 60],
    ['h', 3600],
    ['d', 86400],
  ]);
  return `${parts.reduce((sum, p) => sum + Number(p[1]) * (unit.get(p[2] as string) as number), 0)}s`;
}

/** `"86400s"` → `24h` for display. */
function showDuration(value: string | undefined): string {
  if (value === undefined) return '—';
  const seconds = Number(value.replace(/s$/, ''));
  if (!Number.isFinite(seconds)) return value;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function time(value: string | undefined): Child {
  return value === undefined ? '—' : h('time', { datetime: value }, value.replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
}

// ---------------------------------------------------------------- sign in

function renderSignIn(): void {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'panel signin-form',
      'aria-label': 'Sign in',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(submit, alert, async () => {
          const value = input.value.trim();
          if (value === '') throw new Error('Enter a token.');
          // A call open to every valid token tells a valid token from an unknown one.
          const probe = new KmsClient({ endpoint: location.origin, token: value, transport: fetchTransport() });
          try {
            await probe.describeApi();
          } catch (err) {
            throw new Error(describe(err), { cause: err });
          }
          sessionStorage.setItem(TOKEN_KEY, value);
          flash = 'Signed in.';
          go('#/keys');
        });
      },
    },
    field('Token', input),
    h('p', { class: 'muted' }, 'The token stays in this browser tab (session storage) and is sent only to this daemon, in the Authorization header.'),
    h('div', { class: 'row' }, submit),
    alert,
  );
  page('Sign in', h('div', { class: 'signin' }, form));
  input.focus();
}

// ---------------------------------------------------------------- keys list

async function renderKeys(query: URLSearchParams): Promise<void> {
  const folderId = query.get('folder') ?? recentFolders()[0] ?? 'default';
  const search = query.get('q') ?? '';
  const label = query.get('label') ?? '';
  const status = query.get('status') ?? '';
  const folders = [...new Set([folderId, ...recentFolders()])];

  const folderInput = h('input', { name: 'folder', value: folderId, list: 'folder-list', required: true });
  const searchInput = h('input', { type: 'search', name: 'q', value: search, placeholder: 'part of a name' });
  const labelInput = h('input', { name: 'label', value: label, placeholder: 'env=prod or env' });
  const statusSelect = select('status', [['', 'any'], 'ACTIVE', 'INACTIVE'], status);
  const apply = (event: Event) => {
    event.preventDefault();
    const q = new URLSearchParams({ folder: folderInput.value.trim() });
    if (searchInput.value.trim() !== '') q.set('q', searchInput.value.trim());
    if (labelInput.value.trim() !== '') q.set('label', labelInput.value.trim());
    if (statusSelect.value !== '') q.set('status', statusSelect.value);
    go(`#/keys?${q.toString()}`);
  };
  const filters = h(
    'form',
    { class: 'inline', role: 'search', 'aria-label': 'Folder and filters', onsubmit: apply },
    field('Folder ID', folderInput),
    h('datalist', { id: 'folder-list' }, folders.map((f) => h('option', { value: f }))),
    field('Search by name', searchInput),
    field('Label', labelInput),
    field('Status', statusSelect),
    h('button', { type: 'submit' }, 'Show keys'),
  );
  const folderLinks = h(
    'p',
    { class: 'muted' },
    'Folders: ',
    folders.flatMap((f, i) => [i > 0 ? ' · ' : '', h('a', { href: `#/keys?folder=${encodeURIComponent(f)}`, ...(f === folderId && { 'aria-current': 'true' }) }, f)]),
  );

  const listAlert = alertBox();
  const listArea = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  const folderBindings = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  page(
    `Keys in ${folderId}`,
    panel('Folders', folderLinks, filters),
    panel('Keys', listArea, listAlert),
    createKeyPanel(folderId),
    panel(`Access bindings of folder ${folderId}`, h('p', { class: 'muted' }, 'Roles granted here apply to every key of the folder.'), folderBindings),
    restorePanel(),
  );
  void loadBindings(folderBindings, {
    list: () => client().listFolderAccessBindings(folderId),
    change: (delta) => client().updateFolderAccessBindings(folderId, [delta]),
    reload: (message) => {
      flash = message;
      void renderKeys(query);
    },
    empty: 'No bindings on this folder.',
  });

  try {
    const keys = await client().listAllKeys(folderId);
    rememberFolder(folderId);
    const [labelKey, labelValue] = label.includes('=') ? [label.slice(0, label.indexOf('=')), label.slice(label.indexOf('=') + 1)] : [label, undefined];
    const shown = keys.filter(
      (k) =>
        (search === '' || k.name.toLowerCase().includes(search.toLowerCase())) &&
        (status === '' || k.status === status) &&
        (labelKey === '' || (Object.prototype.hasOwnProperty.call(k.labels ?? {}, labelKey) && (labelValue === undefined || k.labels[labelKey] === labelValue))),
    );
    listArea.replaceChildren(
      h('p', { class: 'muted' }, `${shown.length} of ${keys.length} keys`),
      tableOf<SymmetricKey>(
        'Keys',
        [
          ['Name', (k) => h('a', { href: `#/keys/${encodeURIComponent(k.id)}` }, k.name === '' ? '(no name)' : k.name)],
          ['ID', (k) => h('code', {}, k.id)],
          ['Status', (k) => badge(k.status)],
          ['Algorithm', (k) => k.defaultAlgorithm],
          ['Primary version', (k) => h('code', {}, k.primaryVersion?.id ?? '—')],
          ['Rotation', (k) => showDuration(k.rotationPeriod)],
          ['Labels', (k) => labelsText(k.labels)],
          ['Created', (k) => time(k.createdAt)],
        ],
        shown,
        keys.length === 0 ? 'This folder has no keys yet.' : 'No key matches the filters.',
      ),
    );
  } catch (err) {
    listArea.replaceChildren();
    listAlert.textContent = describe(err);
    if (err instanceof KmsApiError && err.code === 16) signOut('Your token is no longer valid; sign in again.');
  }
}

function createKeyPanel(folderId: string): HTMLElement {
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  const description = h('input', { name: 'description', maxlength: 1024 });
  const labels = h('input', { name: 'labels', placeholder: 'env=prod, team=billing' });
  const algorithm = select('defaultAlgorithm', ALGORITHMS, 'AES_256');
  const rotation = h('input', { name: 'rotationPeriod', placeholder: 'e.g. 720h (empty: none)' });
  const protection = checkbox('Deletion protection', { name: 'deletionProtection' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit' }, 'Create key');
  const form = h(
    'form',
    {
      class: 'inline',
      'aria-label': 'Create key',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(submit, alert, async () => {
          const key = await client().createKey({
            folderId,
            name: name.value.trim(),
            ...(description.value.trim() !== '' && { description: description.value.trim() }),
            ...(labels.value.trim() !== '' && { labels: parseLabels(labels.value) }),
            defaultAlgorithm: algorithm.value as SymmetricAlgorithm,
            ...(rotation.value.trim() !== '' && { rotationPeriod: parseDuration('Rotation period', rotation.value) }),
            ...(protection.input.checked && { deletionProtection: true }),
          });
          flash = `Created key ${key.name} (${key.id}).`;
          void renderKeys(new URLSearchParams({ folder: folderId }));
        });
      },
    },
    field('Name', name),
    field('Description', description),
    field('Labels', labels),
    field('Default algorithm', algorithm),
    field('Rotation period', rotation),
    protection.label,
    submit,
  );
  return panel(`Create a key in ${folderId}`, form, alert);
}

function restorePanel(): HTMLElement {
  const id = h('input', { name: 'keyId', required: true, placeholder: 'id of the deleted key' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'secondary' }, 'Restore');
  return panel(
    'Restore a deleted key',
    h('p', { class: 'muted' }, 'A deleted key can be restored during its restore window (72 h by default).'),
    h(
      'form',
      {
        class: 'inline',
        'aria-label': 'Restore a deleted key',
        onsubmit: (event: Event) => {
          event.preventDefault();
          void act(submit, alert, async () => {
            const key = await client().restoreKey(id.value.trim());
            flash = `Restored key ${key.name} (${key.id}).`;
            go(`#/keys/${encodeURIComponent(key.id)}`);
          });
        },
      },
      field('Key ID', id),
      submit,
    ),
    alert,
  );
}

// ---------------------------------------------------------------- key page

async function renderKey(keyId: string): Promise<void> {
  const api = client();
  const forHash = location.hash;
  let key: SymmetricKey;
  try {
    key = await api.getKey(keyId);
  } catch (err) {
    if (err instanceof KmsApiError && err.code === 16) return signOut('Your token is no longer valid; sign in again.');
    if (location.hash !== forHash) return;
    page(`Key ${keyId}`, h('p', { class: 'alert', role: 'alert' }, describe(err)), restorePanel());
    return;
  }
  const [versions, bindings, operations] = await Promise.allSettled([allVersions(api, keyId), api.listKeyAccessBindings(keyId), allOperations(api, keyId)]);
  // The user moved on while this loaded: do not paint over the newer page.
  if (location.hash !== forHash) return;
  const reload = (message: string) => {
    flash = message;
    void renderKey(keyId);
  };
  rememberFolder(key.folderId);
  page(
    key.name === '' ? `Key ${key.id}` : `Key ${key.name}`,
    h('p', { class: 'crumbs' }, h('a', { href: `#/keys?folder=${encodeURIComponent(key.folderId)}` }, `Keys in ${key.folderId}`), ' › ', key.name === '' ? key.id : key.name),
    h('div', { class: 'grid2' }, attributesPanel(key), actionsPanel(api, key, reload)),
    versionsPanel(api, key, versions, reload),
    h('div', { class: 'grid2' }, bindingsPanel(api, key, bindings, reload), tryItPanel(api, key)),
    operationsPanel(operations),
    h('p', {}, h('a', { href: `#/audit?keyId=${encodeURIComponent(key.id)}` }, 'Audit events of this key')),
    deletePanel(api, key),
  );
}

async function allVersions(api: KmsClient, keyId: string): Promise<SymmetricKeyVersion[]> {
  const all: SymmetricKeyVersion[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api.listVersions(keyId, 1000, pageToken);
    all.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

async function allOperations(api: KmsClient, keyId: string): Promise<Operation[]> {
  const all: Operation[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api.listOperations(keyId, 1000, pageToken);
    all.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

function attributesPanel(key: SymmetricKey): HTMLElement {
  const rows: [string, Child][] = [
    ['ID', h('code', {}, key.id)],
    ['Folder', key.folderId],
    ['Name', key.name],
    ['Description', key.description === '' ? '—' : key.description],
    ['Labels', labelsText(key.labels) || '—'],
    ['Status', badge(key.status)],
    ['Default algorithm', key.defaultAlgorithm],
    ['Primary version', h('code', { id: 'primary-version' }, key.primaryVersion?.id ?? '—')],
    ['Rotation period', showDuration(key.rotationPeriod)],
    ['Rotated at', time(key.rotatedAt)],
    ['Created at', time(key.createdAt)],
    ['Deletion protection', key.deletionProtection ? 'on' : 'off'],
  ];
  return panel('Attributes', h('dl', { class: 'attrs' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

function actionsPanel(api: KmsClient, key: SymmetricKey, reload: (message: string) => void): HTMLElement {
  const alert = alertBox();
  const button = (text: string, run: () => Promise<string>, className = 'secondary') => {
    const b: HTMLButtonElement = h('button', {
      type: 'button',
      class: className,
      onclick: () => void act(b, alert, async () => reload(await run())),
    }, text);
    return b;
  };
  const rotate = button('Rotate', async () => `Rotated: new primary version ${(await api.rotateKey(key.id)) ?? ''}.`, '');
  const toggleStatus = button(key.status === 'ACTIVE' ? 'Deactivate' : 'Activate', async () => {
    const updated = await api.updateKey(key.id, { status: key.status === 'ACTIVE' ? 'INACTIVE' : 'ACTIVE' });
    return `The key is now ${updated.status}.`;
  });
  const toggleProtection = button(key.deletionProtection ? 'Turn deletion protection off' : 'Turn deletion protection on', async () => {
    const updated = await api.updateKey(key.id, { deletionProtection: !key.deletionProtection });
    return `Deletion protection is ${updated.deletionProtection ? 'on' : 'off'}.`;
  });

  const name = h('input', { name: 'name', value: key.name, maxlength: 100 });
  const description = h('input', { name: 'description', value: key.description, maxlength: 1024 });
  const labels = h('input', { name: 'labels', value: labelsText(key.labels) });
  const algorithm = select('defaultAlgorithm', ALGORITHMS, key.defaultAlgorithm);
  const rotation = h('input', { name: 'rotationPeriod', value: key.rotationPeriod === undefined ? '' : showDuration(key.rotationPeriod), placeholder: 'empty: no automatic rotation' });
  const editAlert = alertBox();
  const save = h('button', { type: 'submit', class: 'secondary' }, 'Save changes');
  const edit = h(
    'form',
    {
      class: 'inline',
      'aria-label': 'Edit key',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(save, editAlert, async () => {
          await api.updateKey(key.id, {
            name: name.value.trim(),
            description: description.value.trim(),
            labels: parseLabels(labels.value),
            defaultAlgorithm: algorithm.value as SymmetricAlgorithm,
            rotationPeriod: rotation.value.trim() === '' ? null : parseDuration('Rotation period', rotation.value),
          });
          reload('Saved.');
        });
      },
    },
    field('Name', name),
    field('Description', description),
    field('Labels', labels),
    field('Default algorithm', algorithm),
    field('Rotation period', rotation),
    save,
  );
  return panel('Actions', h('div', { class: 'row' }, rotate, toggleStatus, toggleProtection), alert, h('h3', {}, 'Edit'), edit, editAlert);
}

function versionsPanel(api: KmsClient, key: SymmetricKey, result: PromiseSettledResult<SymmetricKeyVersion[]>, reload: (message: string) => void): HTMLElement {
  if (result.status === 'rejected') return panel('Versions', h('p', { class: 'alert', role: 'alert' }, describe(result.reason)));
  const alert = alertBox();
  const pending = h('input', { name: 'pendingPeriod', value: '7d', size: 6 });
  const actions = (v: SymmetricKeyVersion): Child[] => {
    const make = (text: string, run: () => Promise<string>, className = 'secondary small') => {
      const b: HTMLButtonElement = h('button', { type: 'button', class: className, 'aria-label': `${text} ${v.id}`, onclick: () => void act(b, alert, async () => reload(await run())) }, text);
      return b;
    };
    const list: Child[] = [];
    if (v.status === 'ACTIVE' && !v.primary) list.push(make('Make primary', async () => (await api.setPrimaryVersion(key.id, v.id), `Version ${v.id} is now primary.`)));
    if (v.status === 'ACTIVE' && !v.primary) {
      list.push(
        make('Schedule destruction', async () => {
          const version = await api.scheduleVersionDestruction(key.id, v.id, parseDuration('Pending period', pending.value));
          return `Version ${v.id} will be destroyed at ${version.destroyAt ?? '?'}.`;
        }, 'danger small'),
      );
    }
    if (v.status === 'SCHEDULED_FOR_DESTRUCTION') list.push(make('Cancel destruction', async () => (await api.cancelVersionDestruction(key.id, v.id), `Destruction of ${v.id} cancelled.`)));
    return list;
  };
  return panel(
    'Versions',
    h('div', { class: 'row' }, field('Pending period for destruction', pending)),
    tableOf<SymmetricKeyVersion>(
      'Versions',
      [
        ['ID', (v) => h('code', {}, v.id)],
        ['Status', (v) => badge(v.status)],
        ['Primary', (v) => (v.primary ? badge('primary', 'ok') : '')],
        ['Algorithm', (v) => v.algorithm],
        ['Hosted by HSM', (v) => (v.hostedByHsm === true ? 'yes' : 'no')],
        ['Created', (v) => time(v.createdAt)],
        ['Destroy at', (v) => time(v.destroyAt)],
        ['Actions', (v) => h('span', { class: 'actions' }, actions(v))],
      ],
      result.value,
      'No versions.',
    ),
    alert,
  );
}

interface BindingTarget {
  list: () => Promise<AccessBinding[]>;
  change: (delta: { action: 'ADD' | 'REMOVE'; accessBinding: AccessBinding }) => Promise<unknown>;
  reload: (message: string) => void;
  empty: string;
}

/** A bindings table with Remove buttons and an Add form, for a key or a folder. */
function bindingsEditor(bindings: AccessBinding[], target: BindingTarget, label: string): HTMLElement[] {
  const alert = alertBox();
  const remove = (b: AccessBinding) => {
    const button: HTMLButtonElement = h(
      'button',
      {
        type: 'button',
        class: 'secondary small',
        'aria-label': `Remove ${b.roleId} from ${b.subject.type}:${b.subject.id}`,
        onclick: () =>
          void act(button, alert, async () => {
            await target.change({ action: 'REMOVE', accessBinding: b });
            target.reload(`Removed ${b.roleId} from ${b.subject.type}:${b.subject.id}.`);
          }),
      },
      'Remove',
    );
    return button;
  };
  const role = select('roleId', ROLES, 'kms.keys.encrypterDecrypter');
  const type = select('subjectType', ['serviceAccount', 'userAccount'], 'serviceAccount');
  const id = h('input', { name: 'subjectId', required: true, placeholder: 'account id' });
  const add = h('button', { type: 'submit' }, 'Add binding');
  const form = h(
    'form',
    {
      class: 'inline',
      'aria-label': label,
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(add, alert, async () => {
          const binding = { roleId: role.value, subject: { type: type.value, id: id.value.trim() } };
          await target.change({ action: 'ADD', accessBinding: binding });
          target.reload(`Granted ${binding.roleId} to ${binding.subject.type}:${binding.subject.id}.`);
        });
      },
    },
    field('Role', role),
    field('Subject type', type),
    field('Subject ID', id),
    add,
  );
  return [
    tableOf<AccessBinding>(
      'Access bindings',
      [
        ['Role', (b) => b.roleId],
        ['Subject', (b) => h('code', {}, `${b.subject.type}:${b.subject.id}`)],
        ['', (b) => remove(b)],
      ],
      bindings,
      target.empty,
    ),
    form,
    alert,
  ];
}

async function loadBindings(into: HTMLElement, target: BindingTarget): Promise<void> {
  try {
    into.replaceChildren(...bindingsEditor(await target.list(), target, 'Add folder access binding'));
  } catch (err) {
    into.replaceChildren(h('p', { class: 'alert', role: 'alert' }, describe(err)));
  }
}

function bindingsPanel(api: KmsClient, key: SymmetricKey, result: PromiseSettledResult<AccessBinding[]>, reload: (message: string) => void): HTMLElement {
  if (result.status === 'rejected') return panel('Access bindings', h('p', { class: 'alert', role: 'alert' }, describe(result.reason)));
  const target: BindingTarget = {
    list: () => api.listKeyAccessBindings(key.id),
    change: (delta) => api.updateKeyAccessBindings(key.id, [delta]),
    reload,
    empty: 'No bindings on this key (folder bindings still apply).',
  };
  return panel('Access bindings', ...bindingsEditor(result.value, target, 'Add access binding'));
}

function tryItPanel(api: KmsClient, key: SymmetricKey): HTMLElement {
  const plaintext = h('textarea', { name: 'plaintext', rows: 2, maxlength: 4096 });
  const aad = h('input', { name: 'aad', placeholder: 'optional' });
  const ciphertext = h('textarea', { name: 'ciphertext', rows: 3, placeholder: 'base64' });
  const result = h('output', { class: 'note', 'aria-live': 'polite', id: uid('out') });
  const alert = alertBox();
  const bytes = (text: string) => new TextEncoder().encode(text);
  const encrypt: HTMLButtonElement = h(
    'button',
    {
      type: 'button',
      onclick: () =>
        void act(encrypt, alert, async () => {
          result.textContent = '';
          const out = await api.encrypt(key.id, bytes(plaintext.value), aad.value === '' ? undefined : bytes(aad.value));
          ciphertext.value = out.ciphertext;
          result.textContent = `Encrypted with version ${out.versionId}.`;
        }),
    },
    'Encrypt',
  );
  const decrypt: HTMLButtonElement = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: () =>
        void act(decrypt, alert, async () => {
          result.textContent = '';
          const out = await api.decrypt(key.id, ciphertext.value.trim(), aad.value === '' ? undefined : bytes(aad.value));
          const text = new TextDecoder('utf-8', { fatal: false }).decode(base64ToBytes(out.plaintext));
          plaintext.value = text;
          result.textContent = `Decrypted with version ${out.versionId}: ${text}`;
        }),
    },
    'Decrypt',
  );
  return panel(
    'Try it: encrypt and decrypt',
    h('p', { class: 'muted' }, 'For testing access with a short text; the calls are made with your token and audited like any other.'),
    field('Plaintext', plaintext),
    field('AAD context', aad),
    field('Ciphertext', ciphertext),
    h('div', { class: 'row' }, encrypt, decrypt),
    result,
    alert,
  );
}

function operationsPanel(result: PromiseSettledResult<Operation[]>): HTMLElement {
  if (result.status === 'rejected') return panel('Operations', h('p', { class: 'alert', role: 'alert' }, describe(result.reason)));
  const newest = [...result.value].reverse();
  return panel(
    'Operations',
    tableOf<Operation>(
      'Operations',
      [
        ['ID', (o) => h('code', {}, o.id)],
        ['Description', (o) => o.description ?? ''],
        ['By', (o) => o.createdBy ?? ''],
        ['Created', (o) => time(o.createdAt)],
        ['Result', (o) => (o.error === undefined ? badge(o.done ? 'done' : 'running', o.done ? 'ok' : 'warn') : badge(o.error.message, 'bad'))],
      ],
      newest,
      'No operations.',
    ),
  );
}

function deletePanel(api: KmsClient, key: SymmetricKey): HTMLElement {
  const expected = key.name === '' ? key.id : key.name;
  const confirm = h('input', { name: 'confirm', autocomplete: 'off', spellcheck: 'false' });
  const alert = alertBox();
  const button: HTMLButtonElement = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete key');
  confirm.addEventListener('input', () => {
    button.disabled = confirm.value !== expected;
  });
  const form = h(
    'form',
    {
      class: 'inline',
      'aria-label': 'Delete key',
      onsubmit: (event: Event) => {
        event.preventDefault();
        if (confirm.value !== expected) return;
        void act(button, alert, async () => {
          await api.deleteKey(key.id);
          const restore: HTMLButtonElement = h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              onclick: () =>
                void act(restore, alert, async () => {
                  await api.restoreKey(key.id);
                  flash = `Restored key ${expected}.`;
                  void renderKey(key.id);
                }),
            },
            'Restore',
          );
          page(`Key ${expected} deleted`, h('p', { class: 'note', role: 'status' }, `Key ${key.id} is deleted. It can be restored during the restore window.`), h('div', { class: 'row' }, restore, h('a', { href: `#/keys?folder=${encodeURIComponent(key.folderId)}` }, `Back to ${key.folderId}`)), alert);
        });
      },
    },
    field(`Type “${expected}” to confirm`, confirm),
    button,
  );
  return h(
    'section',
    { class: 'panel danger-zone', 'aria-label': 'Delete key' },
    h('h2', {}, 'Delete key'),
    h('p', { class: 'muted' }, key.deletionProtection ? 'Deletion protection is on: the API refuses to delete this key until it is turned off.' : 'The key and its versions stop working at once; it can be restored during the restore window.'),
    form,
    alert,
  );
}

// ---------------------------------------------------------------- audit

function lastVerification(): AuditVerification | undefined {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(VERIFY_KEY) ?? 'null') as AuditVerification | null;
    return parsed !== null && typeof parsed.verifiedAt === 'string' && typeof parsed.ok === 'boolean' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

async function renderAudit(query: URLSearchParams): Promise<void> {
  const filters: AuditEventQuery = {};
  for (const name of ['folderId', 'keyId', 'subject', 'operation', 'from', 'to', 'pageToken'] as const) {
    const value = query.get(name);
    if (value !== null && value !== '') filters[name] = value;
  }
  const pageSize = Number(query.get('pageSize') ?? '50');
  const back = query.get('back') ?? '';
  const input = (name: keyof AuditEventQuery, placeholder: string) => h('input', { name, value: String(filters[name] ?? ''), placeholder });
  const toLocal = (iso: string | undefined) => {
    if (iso === undefined) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  };
  const folder = input('folderId', 'folder id');
  const keyId = input('keyId', 'key id');
  const subject = input('subject', 'serviceAccount:…');
  const operation = input('operation', 'SymmetricCrypto.Decrypt');
  const from = h('input', { type: 'datetime-local', name: 'from', step: 1, value: toLocal(filters.from) });
  const to = h('input', { type: 'datetime-local', name: 'to', step: 1, value: toLocal(filters.to) });
  const size = select('pageSize', ['20', '50', '100', '500'], String(pageSize));
  const filterAlert = alertBox();
  const form = h(
    'form',
    {
      class: 'inline',
      role: 'search',
      'aria-label': 'Audit filters',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const q = new URLSearchParams();
        for (const [name, el] of [
          ['folderId', folder],
          ['keyId', keyId],
          ['subject', subject],
          ['operation', operation],
        ] as const) {
          if (el.value.trim() !== '') q.set(name, el.value.trim());
        }
        if (from.value !== '') q.set('from', new Date(from.value).toISOString());
        if (to.value !== '') q.set('to', new Date(to.value).toISOString());
        q.set('pageSize', size.value);
        go(`#/audit?${q.toString()}`);
      },
    },
    field('Folder', folder),
    field('Key', keyId),
    field('Subject', subject),
    field('Operation', operation),
    field('From (local time)', from),
    field('To (local time)', to),
    field('Page size', size),
    h('button', { type: 'submit' }, 'Apply filters'),
  );

  const indicator = h('span', { id: 'verify-status', role: 'status' }, badge('verifying…', 'warn'));
  const details = h('span', { class: 'muted' });
  const verifyButton: HTMLButtonElement = h('button', { type: 'button', class: 'secondary small', onclick: () => void verify() }, 'Verify now');
  const show = (result: AuditVerification) => {
    if (result.ok) {
      indicator.replaceChildren(badge('trail verified', 'ok'));
      details.textContent = `${result.events} events in ${result.segments} segments, head seq ${result.headSeq}, checked ${result.verifiedAt}${result.notes.length > 0 ? `; ${result.notes.join('; ')}` : ''}`;
    } else {
      indicator.replaceChildren(badge('TAMPERED', 'bad'));
      details.textContent = `checked ${result.verifiedAt}: ${result.findings.map((f) => `${f.segment ?? ''}${f.line === undefined ? '' : ` line ${f.line}`}: ${f.reason}`).join('; ')}`;
    }
  };
  const verify = async () => {
    verifyButton.disabled = true;
    indicator.replaceChildren(badge('verifying…', 'warn'));
    details.textContent = '';
    try {
      const result = await client().verifyAudit();
      sessionStorage.setItem(VERIFY_KEY, JSON.stringify(result));
      show(result);
    } catch (err) {
      indicator.replaceChildren(badge('not verified', 'warn'));
      details.textContent = describe(err);
    } finally {
      verifyButton.disabled = false;
    }
  };

  const results = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  page('Audit trail', panel('Integrity', h('div', { class: 'verify' }, indicator, details, verifyButton)), panel('Filters', form, filterAlert), panel('Events', results));
  // The walk reads the whole trail (≈ 0.1 ms per event on a small machine): once per tab, then on
  // demand; a result younger than VERIFY_REUSE_MS is shown again with its time.
  const last = lastVerification();
  if (last !== undefined && Date.now() - Date.parse(last.verifiedAt) < VERIFY_REUSE_MS) show(last);
  else void verify();

  try {
    const result = await client().listAuditEvents({ ...filters, pageSize });
    const here = new URLSearchParams(query);
    const pager = h('div', { class: 'pager' });
    if (filters.pageToken !== undefined) {
      const prev = new URLSearchParams(here);
      const stack = back.split(',').filter((t) => t !== '');
      const previous = stack.pop();
      if (previous === undefined || previous === '-') prev.delete('pageToken');
      else prev.set('pageToken', previous);
      if (stack.length > 0) prev.set('back', stack.join(','));
      else prev.delete('back');
      pager.append(h('a', { href: `#/audit?${prev.toString()}`, rel: 'prev' }, '‹ Previous page'));
    }
    if (result.nextPageToken !== undefined) {
      const next = new URLSearchParams(here);
      next.set('pageToken', result.nextPageToken);
      next.set('back', [...back.split(',').filter((t) => t !== ''), filters.pageToken ?? '-'].join(','));
      pager.append(h('a', { href: `#/audit?${next.toString()}`, rel: 'next' }, 'Next page ›'));
    }
    results.replaceChildren(
      h('p', { class: 'muted' }, `${result.items.length} events on this page (oldest first)`),
      tableOf<AuditEvent>(
        'Audit events',
        [
          ['Seq', (e) => e.seq],
          ['Time', (e) => time(e.time)],
          ['Subject', (e) => h('code', {}, e.subject)],
          ['Operation', (e) => e.operation],
          ['Result', (e) => badge(e.result, e.result === 'OK' ? 'ok' : 'bad')],
          ['Folder', (e) => e.folderId ?? ''],
          ['Key', (e) => (e.keyId === undefined ? '' : h('a', { href: `#/keys/${encodeURIComponent(e.keyId)}` }, e.keyId))],
          ['Version', (e) => e.versionId ?? ''],
          ['Remote address', (e) => e.remoteAddress ?? ''],
        ],
        result.items,
        'No events match.',
      ),
      pager,
    );
  } catch (err) {
    results.replaceChildren();
    filterAlert.textContent = describe(err);
  }
}


// ---------------------------------------------------------------- accounts and tokens

async function renderAccounts(): Promise<void> {
  const api = client();
  const forHash = location.hash;
  const [accounts, tokens] = await Promise.allSettled([api.listServiceAccounts(), api.listTokens()]);
  if (location.hash !== forHash) return;
  const reload = (message: string) => {
    flash = message;
    void renderAccounts();
  };

  const saAlert = alertBox();
  const saName = h('input', { name: 'name', required: true, maxlength: 100 });
  const saDescription = h('input', { name: 'description', maxlength: 1024 });
  const saCreate = h('button', { type: 'submit' }, 'Create service account');
  const saForm = h(
    'form',
    {
      class: 'inline',
      'aria-label': 'Create service account',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(saCreate, saAlert, async () => {
          const sa = await api.createServiceAccount(saName.value.trim(), saDescription.value.trim() === '' ? undefined : saDescription.value.trim());
          reload(`Created service account ${sa.name} (serviceAccount:${sa.id}).`);
        });
      },
    },
    field('Name', saName),
    field('Description', saDescription),
    saCreate,
  );
  const deleteButton = (sa: ServiceAccount) => {
    // Two steps: the first click asks, the second deletes (tokens and bindings go with it).
    const button: HTMLButtonElement = h(
      'button',
      {
        type: 'button',
        class: 'secondary small',
        'aria-label': `Delete ${sa.name}`,
        onclick: () => {
          if (button.dataset['armed'] !== 'yes') {
            button.dataset['armed'] = 'yes';
            button.textContent = 'Really delete (revokes its tokens)';
            button.className = 'danger small';
            return;
          }
          void act(button, saAlert, async () => {
            await api.deleteServiceAccount(sa.id);
            reload(`Deleted service account ${sa.name}.`);
          });
        },
      },
      'Delete',
    );
    return button;
  };

  const tokenAlert = alertBox();
  const subject = h('input', { name: 'subject', required: true, placeholder: 'serviceAccount:<id>', list: 'subject-list' });
  const tokenDescription = h('input', { name: 'description', maxlength: 1024 });
  const issued = h('div', { 'aria-live': 'polite' });
  const issue = h('button', { type: 'submit' }, 'Issue token');
  const tokenForm = h(
    'form',
    {
      class: 'inline',
      'aria-label': 'Issue token',
      onsubmit: (event: Event) => {
        event.preventDefault();
        void act(issue, tokenAlert, async () => {
          const token = await api.issueToken(subject.value.trim(), tokenDescription.value.trim() === '' ? undefined : tokenDescription.value.trim());
          const value = h('textarea', { readonly: true, rows: 2, name: 'issued-token' });
          value.value = token.token;
          issued.replaceChildren(
            h('p', { class: 'note', role: 'status' }, `Issued token ${token.id} for ${token.subject}. Copy it now: it is not shown again.`),
            field('New token', value),
          );
          value.select();
        });
      },
    },
    field('Subject', subject),
    h('datalist', { id: 'subject-list' }, accounts.status === 'fulfilled' ? accounts.value.map((a) => h('option', { value: `serviceAccount:${a.id}` }, a.name)) : []),
    field('Description', tokenDescription),
    issue,
  );
  const revokeButton = (t: TokenInfo) => {
    const button: HTMLButtonElement = h(
      'button',
      {
        type: 'button',
        class: 'secondary small',
        'aria-label': `Revoke ${t.id}`,
        onclick: () =>
          void act(button, tokenAlert, async () => {
            await api.revokeToken(t.id);
            reload(`Revoked token ${t.id}.`);
          }),
      },
      'Revoke',
    );
    return button;
  };

  page(
    'Service accounts and tokens',
    h('p', { class: 'muted' }, 'kmsd’s own administration API (/admin/v1): only the bootstrap admin may use it.'),
    panel(
      'Service accounts',
      accounts.status === 'rejected'
        ? h('p', { class: 'alert', role: 'alert' }, describe(accounts.reason))
        : tableOf<ServiceAccount>(
            'Service accounts',
            [
              ['Name', (a) => a.name],
              ['Subject', (a) => h('code', {}, `serviceAccount:${a.id}`)],
              ['Description', (a) => a.description],
              ['Created', (a) => time(a.createdAt)],
              ['', (a) => deleteButton(a)],
            ],
            accounts.value,
            'No service accounts yet.',
          ),
      saForm,
      saAlert,
    ),
    panel(
      'Tokens',
      tokens.status === 'rejected'
        ? h('p', { class: 'alert', role: 'alert' }, describe(tokens.reason))
        : tableOf<TokenInfo>(
            'Tokens',
            [
              ['ID', (t) => h('code', {}, t.id)],
              ['Subject', (t) => h('code', {}, t.subject)],
              ['Description', (t) => t.description],
              ['Created', (t) => time(t.createdAt)],
              ['', (t) => revokeButton(t)],
            ],
            tokens.value,
            'No tokens.',
          ),
      tokenForm,
      issued,
      tokenAlert,
    ),
  );
}

// ---------------------------------------------------------------- shell

function updateNav(path: string[]): void {
  const nav = document.getElementById('nav') as HTMLElement;
  nav.hidden = token() === null;
  for (const [id, name] of [
    ['nav-keys', 'keys'],
    ['nav-audit', 'audit'],
    ['nav-accounts', 'accounts'],
  ] as const) {
    const link = document.getElementById(id) as HTMLElement;
    if (path[0] === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function render(): Promise<void> {
  const { path, query } = route();
  if (token() === null && path[0] !== 'signin') {
    location.hash = '#/signin';
    return;
  }
  updateNav(path);
  if (path[0] === 'signin') {
    if (token() !== null) return go('#/keys');
    renderSignIn();
  } else if (path[0] === 'keys' && path[1] !== undefined) await renderKey(path[1]);
  else if (path[0] === 'audit') await renderAudit(query);
  else if (path[0] === 'accounts') await renderAccounts();
  else if (path[0] === 'keys') await renderKeys(query);
  else location.hash = '#/keys';
}

(document.getElementById('sign-out') as HTMLButtonElement).addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', () => {
  void render().then(() => {
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  });
});
void render();
