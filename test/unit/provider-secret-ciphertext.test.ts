import { describe, expect, it } from '@jest/globals';
import type { SymmetricKey } from '../../provider/client/kms-client.js';
import { isUnknown, UNKNOWN, type TfObject } from '../../provider/codec/values.js';
import { formatPath } from '../../provider/diagnostics.js';
import { keyToDataState, validateSymmetricKeyDataConfig } from '../../provider/resources/data_source_symmetric_key.js';
import { ciphertextId, planSecretCiphertext, validateSecretCiphertextConfig } from '../../provider/resources/secret_ciphertext.js';

function secret(values: Partial<TfObject> = {}): any {
  return { id: null, key_id: 'k1', aad_context: null, plaintext: 'hunter2', ciphertext: null, plaintext_wo: null, plaintext_wo_version: null, ...values };
}

const PRIOR = secret({ id: 'k1/v1/0123456789abcdef', ciphertext: 'AAAA' });

/** What core proposes: config with the prior's computed values. */
function proposedFrom(cfg: TfObject): any {
  return { ...cfg, id: PRIOR['id'] ?? null, ciphertext: PRIOR['ciphertext'] ?? null };
}

describe('kms_secret_ciphertext validation', () => {
  it.each<[string, Partial<TfObject>, string, string, string]>([
    ['a plaintext over 32768 bytes', { plaintext: 'x'.repeat(32769) }, 'plaintext', 'Invalid plaintext', 'at most 32768 bytes of UTF-8; got 32769'],
    ['a plaintext over the limit only in bytes', { plaintext: 'ж'.repeat(16385) }, 'plaintext', 'Invalid plaintext', 'got 32770'],
    ['an AAD over 8192 bytes', { aad_context: 'a'.repeat(8193) }, 'aad_context', 'Invalid aad_context', 'at most 8192 bytes'],
    ['an empty key id', { key_id: '' }, 'key_id', 'Invalid key_id', 'must not be empty'],
  ])('refuses %s', (_name, values, path, summary, detail) => {
    const diags = validateSecretCiphertextConfig(secret(values));
    expect(diags.map((d) => [d.summary, formatPath(d.path ?? [])])).toEqual([[summary, path]]);
    expect(diags[0]?.detail).toContain(detail);
  });

  it('never puts the plaintext into a diagnostic', () => {
    const plaintext = `secret-${'s'.repeat(40000)}`;
    expect(JSON.stringify(validateSecretCiphertextConfig(secret({ plaintext })))).not.toContain('secret-');
  });

  it('skips unknown values', () => {
    expect(validateSecretCiphertextConfig(secret({ plaintext: UNKNOWN, key_id: UNKNOWN, aad_context: UNKNOWN }))).toEqual([]);
  });
});

describe('kms_secret_ciphertext plan', () => {
  it('plans id and ciphertext unknown on create', () => {
    const res = planSecretCiphertext({ prior: null, proposed: secret(), config: secret() });
    expect(res.requiresReplace).toEqual([]);
    expect(isUnknown(res.planned?.['id'])).toBe(true);
    expect(isUnknown(res.planned?.['ciphertext'])).toBe(true);
  });

  it('keeps the prior ciphertext when nothing changes', () => {
    expect(planSecretCiphertext({ prior: PRIOR, proposed: proposedFrom(secret()), config: secret() })).toEqual({
      planned: PRIOR,
      requiresReplace: [],
      diagnostics: [],
    });
  });

  it.each<[string, Partial<TfObject>]>([
    ['key_id', { key_id: 'k2' }],
    ['key_id', { key_id: UNKNOWN }],
    ['plaintext', { plaintext: 'hunter3' }],
    ['aad_context', { aad_context: 'ctx' }],
  ])('replaces when %s changes', (name, values) => {
    const cfg = secret(values);
    const res = planSecretCiphertext({ prior: PRIOR, proposed: proposedFrom(cfg), config: cfg });
    expect(res.requiresReplace.map(formatPath)).toEqual([name]);
    expect(isUnknown(res.planned?.['ciphertext'])).toBe(true);
  });

  it('builds a short id from key, version and a ciphertext digest', () => {
    expect(ciphertextId('k1', 'v1', 'AAAA')).toMatch(/^k1\/v1\/[0-9a-f]{16}$/);
    expect(ciphertextId('k1', 'v1', 'AAAA')).not.toBe(ciphertextId('k1', 'v1', 'AAAB'));
  });
});

describe('kms_symmetric_key data source', () => {
  const cfg = (values: Partial<TfObject>): any => ({ symmetric_key_id: null, name: null, folder_id: null, ...values });

  it.each<[string, Partial<TfObject>, string[]]>([
    ['neither selector', {}, ['Missing key selector']],
    ['only folder_id', { folder_id: 'f' }, ['Missing key selector']],
    ['both selectors', { symmetric_key_id: 'k', name: 'n' }, ['Conflicting key selectors']],
    ['an empty name', { name: '' }, ['Invalid name']],
    ['an id', { symmetric_key_id: 'k' }, []],
    ['a name and folder', { name: 'n', folder_id: 'f' }, []],
    ['an unknown name', { name: UNKNOWN }, []],
  ])('validation with %s', (_name, values, summaries) => {
    expect(validateSymmetricKeyDataConfig(cfg(values)).map((d) => d.summary)).toEqual(summaries);
  });

  it('renders the API key like the resource, rotation period as a compact Go duration', () => {
    const key: SymmetricKey = {
      id: 'k1',
      folderId: 'f1',
      createdAt: '2026-01-01T00:00:00Z',
      name: '',
      description: '',
      labels: {},
      status: 'ACTIVE',
      primaryVersion: { id: 'v1', keyId: 'k1', status: 'ACTIVE', algorithm: 'AES_256', createdAt: '2026-01-01T00:00:00Z', primary: true },
      defaultAlgorithm: 'AES_256',
      rotationPeriod: '31536000s',
      deletionProtection: true,
    };
    expect(keyToDataState(key)).toEqual({
      id: 'k1',
      symmetric_key_id: 'k1',
      folder_id: 'f1',
      name: '',
      description: '',
      labels: {},
      default_algorithm: 'AES_256',
      rotation_period: '8760h',
      deletion_protection: true,
      status: 'ACTIVE',
      created_at: '2026-01-01T00:00:00Z',
      rotated_at: null,
      primary_version_id: 'v1',
    });
  });
});

describe('kms_secret_ciphertext write-only plaintext_wo', () => {
  const WO = { writeOnlyAttributesAllowed: true, deferralAllowed: false };
  const wo = (values: Partial<TfObject> = {}) => secret({ plaintext: null, plaintext_wo: 'w0', plaintext_wo_version: 1, ...values });

  it.each<[string, Partial<TfObject>, boolean, string[]]>([
    ['plaintext_wo on a CLI with write-only attributes', {}, true, []],
    ['plaintext_wo on an older CLI', {}, false, ['Write-only attribute not supported:plaintext_wo']],
    ['both plaintext and plaintext_wo', { plaintext: 'p' }, true, ['Conflicting plaintext sources:plaintext_wo']],
    ['neither', { plaintext_wo: null }, true, ['Missing plaintext:plaintext', 'plaintext_wo_version without plaintext_wo:plaintext_wo_version']],
    ['an unknown plaintext_wo', { plaintext_wo: UNKNOWN }, true, []],
  ])('validate: %s', (_name, values, capable, expected) => {
    const diags = validateSecretCiphertextConfig(wo(values), capable ? WO : undefined);
    expect(diags.map((d) => `${d.summary}:${formatPath(d.path ?? [])}`)).toEqual(expected);
    expect(JSON.stringify(diags)).not.toContain('w0');
  });

  it('plans null for plaintext_wo and replaces on a new plaintext_wo_version only', () => {
    const created = planSecretCiphertext({ prior: null, proposed: wo(), config: wo() });
    expect(created.planned?.['plaintext_wo']).toBeNull();
    expect(isUnknown(created.planned?.['ciphertext'])).toBe(true);
    const prior = { ...wo(), plaintext_wo: null, id: 'k1/v1/x', ciphertext: 'AAAA' };
    const sameVersion = planSecretCiphertext({ prior, proposed: { ...wo({ plaintext_wo: 'changed' }), id: 'k1/v1/x', ciphertext: 'AAAA' }, config: wo({ plaintext_wo: 'changed' }) });
    expect(sameVersion).toEqual({ planned: prior, requiresReplace: [], diagnostics: [] });
    const bumped = planSecretCiphertext({ prior, proposed: { ...wo({ plaintext_wo_version: 2 }), id: 'k1/v1/x', ciphertext: 'AAAA' }, config: wo({ plaintext_wo_version: 2 }) });
    expect(bumped.requiresReplace.map(formatPath)).toEqual(['plaintext_wo_version']);
    expect(bumped.planned?.['plaintext_wo']).toBeNull();
  });
});
