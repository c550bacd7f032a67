import { describe, expect, it } from '@jest/globals';
import type { SymmetricKey } from '../../provider/client/kms-client.js';
import { isUnknown, UNKNOWN, type TfObject } from '../../provider/codec/values.js';
import { formatPath } from '../../provider/diagnostics.js';
import type { ProviderContext } from '../../provider/framework/context.js';
import { keyToState, planSymmetricKey, updateFields, validateSymmetricKeyConfig } from '../../provider/resources/symmetric_key.js';

/** A config/state object with every attribute of the schema (null unless given). */
function obj(values: Partial<TfObject> = {}): any {
  return {
    id: null,
    folder_id: null,
    name: null,
    description: null,
    labels: null,
    default_algorithm: null,
    rotation_period: null,
    deletion_protection: null,
    status: null,
    created_at: null,
    rotated_at: null,
    primary_version_id: null,
    ...values,
  };
}

const PRIOR = obj({
  id: 'k1',
  folder_id: 'f1',
  name: 'app',
  description: null,
  labels: null,
  default_algorithm: 'AES_128',
  rotation_period: '24h',
  deletion_protection: false,
  status: 'ACTIVE',
  created_at: '2026-01-01T00:00:00Z',
  rotated_at: null,
  primary_version_id: 'v1',
});

const CTX: ProviderContext = { client: undefined, folderId: 'provider-folder' };

/** What core proposes: config for non-computed, prior for computed attributes left null. */
function proposed(prior: TfObject | null, config: TfObject): any {
  const out: TfObject = { ...config };
  for (const name of ['id', 'created_at', 'rotated_at', 'primary_version_id']) out[name] = prior?.[name] ?? null;
  for (const name of ['folder_id', 'default_algorithm', 'deletion_protection', 'status']) {
    if (config[name] === null) out[name] = prior?.[name] ?? null;
  }
  return out;
}

function plan(prior: TfObject | null, config: TfObject, ctx: ProviderContext = CTX) {
  return planSymmetricKey({ prior, proposed: proposed(prior, config), config }, ctx);
}

describe('kms_symmetric_key validation', () => {
  it.each<[string, Partial<TfObject>, string, string, string]>([
    ['label key with capitals', { labels: { Env: 'dev' } }, 'labels["Env"]', 'Invalid label key', 'Label key "Env" must match [a-z][-_0-9a-z]*'],
    ['label key starting with a digit', { labels: { '1x': 'a' } }, 'labels["1x"]', 'Invalid label key', 'must match'],
    ['label key of 64 characters', { labels: { ['a'.repeat(64)]: 'a' } }, `labels["${'a'.repeat(64)}"]`, 'Invalid label key', 'at most 63'],
    ['label value with a dot', { labels: { env: 'a.b' } }, 'labels["env"]', 'Invalid label value', 'Label value "a.b" must match [-_0-9a-z]*'],
    ['name of 101 characters', { name: 'n'.repeat(101) }, 'name', 'Invalid name', 'at most 100 characters; got 101'],
    ['description of 1025 characters', { description: 'd'.repeat(1025) }, 'description', 'Invalid description', 'at most 1024'],
    ['unknown algorithm', { default_algorithm: 'DES' }, 'default_algorithm', 'Invalid default_algorithm', 'AES_128, AES_192, AES_256, AES_256_HSM'],
    ['status CREATING', { status: 'CREATING' }, 'status', 'Invalid status', 'ACTIVE or INACTIVE'],
    ['rotation period of 30m', { rotation_period: '30m' }, 'rotation_period', 'Invalid rotation_period', 'at least 1h; got "30m"'],
    ['rotation period in days', { rotation_period: '1d' }, 'rotation_period', 'Invalid rotation_period', 'unknown unit "d"'],
    ['rotation period with no unit', { rotation_period: '86400' }, 'rotation_period', 'Invalid rotation_period', 'Go-style duration'],
    ['empty folder_id', { folder_id: '' }, 'folder_id', 'Invalid folder_id', '1 to 50 characters'],
  ])('%s', (_name, config, path, summary, detail) => {
    const diags = validateSymmetricKeyConfig(obj(config));
    expect(diags).toHaveLength(1);
    expect(diags[0]?.severity).toBe('error');
    expect(diags[0]?.summary).toBe(summary);
    expect(diags[0]?.detail).toContain(detail);
    expect(formatPath(diags[0]?.path ?? [])).toBe(path);
  });

  it.each<[string, Partial<TfObject>]>([
    ['a full valid config', { name: 'n', description: 'd', labels: { env: 'prod', 'a-b_1': '' }, default_algorithm: 'AES_256_HSM', rotation_period: '8760h', status: 'INACTIVE' }],
    ['rotation period of exactly 1h', { rotation_period: '3600s' }],
    ['unknown values everywhere', { name: UNKNOWN, labels: UNKNOWN, rotation_period: UNKNOWN, default_algorithm: UNKNOWN, status: UNKNOWN }],
    ['unknown label values', { labels: { env: UNKNOWN } }],
    ['empty labels', { labels: {} }],
  ])('accepts %s', (_name, config) => {
    expect(validateSymmetricKeyConfig(obj(config))).toEqual([]);
  });
});

describe('kms_symmetric_key plan', () => {
  it('create: computed-only unknown, defaults known, folder from the provider', () => {
    const result = plan(null, obj({ name: 'app', rotation_period: '24h' }));
    expect(result.diagnostics).toEqual([]);
    expect(result.requiresReplace).toEqual([]);
    const p = result.planned!;
    for (const name of ['id', 'created_at', 'rotated_at', 'primary_version_id']) expect(isUnknown(p[name])).toBe(true);
    expect(p).toMatchObject({ folder_id: 'provider-folder', default_algorithm: 'AES_128', deletion_protection: false, status: 'ACTIVE', name: 'app', rotation_period: '24h', labels: null });
  });

  it('create: configured values win over defaults', () => {
    const p = plan(null, obj({ folder_id: 'f9', default_algorithm: 'AES_256', deletion_protection: true, status: 'INACTIVE', labels: {} })).planned!;
    expect(p).toMatchObject({ folder_id: 'f9', default_algorithm: 'AES_256', deletion_protection: true, status: 'INACTIVE', labels: {} });
  });

  it('create: folder unknown while the provider config is unknown', () => {
    expect(isUnknown(plan(null, obj(), { client: undefined, folderId: UNKNOWN }).planned!['folder_id'])).toBe(true);
  });

  it('create without any folder is an error on folder_id', () => {
    const result = plan(null, obj(), { client: undefined, folderId: undefined });
    expect(result.diagnostics[0]?.summary).toBe('Missing folder_id');
    expect(formatPath(result.diagnostics[0]?.path ?? [])).toBe('folder_id');
  });

  it('no change: the plan equals the prior state', () => {
    const result = plan(PRIOR, obj({ name: 'app', rotation_period: '24h' }));
    expect(result.planned).toEqual(PRIOR);
    expect(result.requiresReplace).toEqual([]);
  });

  it.each([['1440m'], ['86400s'], ['24h0m0s']])('an equal duration (%s) keeps the prior spelling', (period) => {
    expect(plan(PRIOR, obj({ name: 'app', rotation_period: period })).planned).toEqual(PRIOR);
  });

  it('a different duration is planned as written, computed values kept', () => {
    const p = plan(PRIOR, obj({ name: 'app', rotation_period: '48h' })).planned!;
    expect(p['rotation_period']).toBe('48h');
    expect(p['primary_version_id']).toBe('v1');
    expect(p['rotated_at']).toBeNull();
  });

  it.each<[string, Partial<TfObject>, Partial<TfObject>]>([
    ['default_algorithm', { default_algorithm: 'AES_256' }, { default_algorithm: 'AES_256' }],
    ['status', { status: 'INACTIVE' }, { status: 'INACTIVE' }],
    ['labels', { labels: { env: 'dev' } }, { labels: { env: 'dev' } }],
    ['deletion_protection', { deletion_protection: true }, { deletion_protection: true }],
  ])('an in-place change of %s keeps every computed value', (_name, change, expected) => {
    const result = plan(PRIOR, obj({ name: 'app', rotation_period: '24h', ...change }));
    expect(result.requiresReplace).toEqual([]);
    expect(result.planned).toEqual({ ...PRIOR, ...expected });
  });

  it('removing a defaulted attribute from the config plans its default', () => {
    const prior = { ...PRIOR, default_algorithm: 'AES_256', deletion_protection: true };
    expect(plan(prior, obj({ name: 'app', rotation_period: '24h' })).planned).toMatchObject({ default_algorithm: 'AES_128', deletion_protection: false });
  });

  it('removing status from the config keeps the prior status', () => {
    const prior = { ...PRIOR, status: 'INACTIVE' };
    expect(plan(prior, obj({ name: 'app', rotation_period: '24h' })).planned!['status']).toBe('INACTIVE');
  });

  it.each<[string, TfObject[string], boolean]>([
    ['a different folder', 'f2', true],
    ['the same folder', 'f1', false],
    ['an unknown folder', UNKNOWN, true],
    ['no folder in config', null, false],
  ])('folder_id: %s', (_name, folder, replace) => {
    const result = plan(PRIOR, obj({ name: 'app', rotation_period: '24h', folder_id: folder }));
    expect(result.requiresReplace).toEqual(replace ? [[{ attribute: 'folder_id' }]] : []);
  });

  it('labels {} and null stay distinct', () => {
    expect(plan(PRIOR, obj({ name: 'app', rotation_period: '24h', labels: {} })).planned!['labels']).toEqual({});
    expect(plan({ ...PRIOR, labels: {} }, obj({ name: 'app', rotation_period: '24h' })).planned!['labels']).toBeNull();
  });

  it('destroy plans null', () => {
    expect(planSymmetricKey({ prior: PRIOR, proposed: null, config: null }, CTX).planned).toBeNull();
  });
});

const KEY: SymmetricKey = {
  id: 'k1',
  folderId: 'f1',
  createdAt: '2026-01-01T00:00:00Z',
  name: '',
  description: '',
  labels: {},
  status: 'ACTIVE',
  primaryVersion: { id: 'v2', keyId: 'k1', status: 'ACTIVE', algorithm: 'AES_128', createdAt: '2026-01-02T00:00:00Z', primary: true },
  defaultAlgorithm: 'AES_128',
  rotatedAt: '2026-01-02T00:00:00Z',
  rotationPeriod: '86400s',
  deletionProtection: false,
};

describe('kms_symmetric_key state from the API', () => {
  it('keeps null where the API has "" or {} and the reference had null', () => {
    expect(keyToState(KEY, obj())).toMatchObject({ name: null, description: null, labels: null });
  });

  it('keeps "" and {} when the reference had them', () => {
    expect(keyToState(KEY, obj({ name: '', description: '', labels: {} }))).toMatchObject({ name: '', description: '', labels: {} });
  });

  it('shows API values that differ from the reference (drift)', () => {
    const key = { ...KEY, name: 'renamed', labels: { env: 'x' } };
    expect(keyToState(key, obj({ name: 'app' }))).toMatchObject({ name: 'renamed', labels: { env: 'x' } });
  });

  it.each<[string, string | null, string | undefined, string | null]>([
    ['equal duration keeps the reference spelling', '1440m', '86400s', '1440m'],
    ['changed duration is shown compactly', '24h', '90000s', '25h'],
    ['no reference (import) is shown compactly', null, '5400s', '1h30m'],
    ['no period in the API is null', '24h', undefined, null],
  ])('rotation_period: %s', (_name, ref, api, expected) => {
    const key: SymmetricKey = { ...KEY };
    if (api === undefined) delete key.rotationPeriod;
    else key.rotationPeriod = api;
    expect(keyToState(key, obj({ rotation_period: ref }))['rotation_period']).toBe(expected);
  });

  it('maps computed attributes', () => {
    const noRotation: SymmetricKey = { ...KEY };
    delete noRotation.rotatedAt;
    expect(keyToState(noRotation, null)).toMatchObject({ id: 'k1', folder_id: 'f1', created_at: '2026-01-01T00:00:00Z', rotated_at: null, primary_version_id: 'v2' });
  });
});

describe('kms_symmetric_key update mask', () => {
  it('sends only what changed', () => {
    expect(updateFields(PRIOR, { ...PRIOR })).toEqual({});
    expect(updateFields(PRIOR, { ...PRIOR, rotation_period: '1440m' })).toEqual({});
    expect(updateFields(PRIOR, { ...PRIOR, name: null, labels: { a: 'b' }, status: 'INACTIVE' })).toEqual({ name: '', labels: { a: 'b' }, status: 'INACTIVE' });
  });

  it('clears the rotation period with null and converts durations to seconds', () => {
    expect(updateFields(PRIOR, { ...PRIOR, rotation_period: null })).toEqual({ rotationPeriod: null });
    expect(updateFields(PRIOR, { ...PRIOR, rotation_period: '1h30m' })).toEqual({ rotationPeriod: '5400s' });
  });

  it('clears labels with {}', () => {
    expect(updateFields({ ...PRIOR, labels: { a: 'b' } }, PRIOR)).toEqual({ labels: {} });
  });
});
