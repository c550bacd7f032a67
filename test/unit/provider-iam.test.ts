import { describe, expect, it } from '@jest/globals';
import type { AccessBinding } from '../../provider/client/kms-client.js';
import { isUnknown, UNKNOWN, type TfObject } from '../../provider/codec/values.js';
import { formatPath } from '../../provider/diagnostics.js';
import { memberProblem, memberSubject, membersOfRole, parseImportId, roleDeltas } from '../../provider/resources/key_access.js';
import { importIamBinding, planIamBinding, validateIamBindingConfig } from '../../provider/resources/symmetric_key_iam_binding.js';
import { importIamMember, planIamMember, validateIamMemberConfig } from '../../provider/resources/symmetric_key_iam_member.js';

function binding(values: Partial<TfObject> = {}): any {
  return { id: null, symmetric_key_id: 'k1', role: 'kms.viewer', members: ['serviceAccount:sa1'], ...values };
}

function member(values: Partial<TfObject> = {}): any {
  return { id: null, symmetric_key_id: 'k1', role: 'kms.viewer', member: 'serviceAccount:sa1', ...values };
}

function b(roleId: string, subject: string): AccessBinding {
  const [type = '', id = ''] = subject.split(':');
  return { roleId, subject: { type, id } };
}

describe('kms_symmetric_key_iam_binding validation', () => {
  it.each<[string, Partial<TfObject>, string, string, string]>([
    ['an unknown role', { role: 'viewer' }, 'role', 'Invalid role', 'Unknown role "viewer"; a key binding grants one of kms.auditor'],
    ['a member without a type', { members: ['sa1'] }, 'members', 'Invalid member', '"sa1" must be serviceAccount:<id>, userAccount:<id>'],
    ['a member of an unknown type', { members: ['serviceAccount:sa1', 'robot:devs'] }, 'members', 'Invalid member', '"robot:devs"'],
    ['a system member other than everyone', { members: ['system:root'] }, 'members', 'Invalid member', '"system:root"'],
    ['a member id with capitals', { members: ['userAccount:Alice'] }, 'members', 'Invalid member', '[a-z0-9_-]'],
    ['a member id of 51 characters', { members: [`serviceAccount:${'a'.repeat(51)}`] }, 'members', 'Invalid member', '1 to 50 characters'],
    ['an empty key id', { symmetric_key_id: '' }, 'symmetric_key_id', 'Invalid symmetric_key_id', 'must not be empty'],
  ])('refuses %s', (_name, values, path, summary, detail) => {
    const diags = validateIamBindingConfig(binding(values));
    expect(diags).toHaveLength(1);
    expect(diags[0]?.severity).toBe('error');
    expect(diags[0]?.summary).toBe(summary);
    expect(diags[0]?.detail).toContain(detail);
    expect(formatPath(diags[0]?.path ?? [])).toBe(path);
  });

  it.each<[string, Partial<TfObject>]>([
    ['every role', {}],
    ['unknown members', { members: UNKNOWN }],
    ['an unknown member element', { members: [UNKNOWN, 'userAccount:alice'] }],
    ['an unknown role', { role: UNKNOWN }],
    ['no members (nobody holds the role)', { members: [] }],
  ])('accepts %s', (_name, values) => {
    expect(validateIamBindingConfig(binding(values))).toEqual([]);
  });

  it('accepts each documented role', () => {
    for (const role of ['kms.auditor', 'kms.viewer', 'kms.editor', 'kms.admin', 'kms.keys.encrypter', 'kms.keys.decrypter', 'kms.keys.encrypterDecrypter']) {
      expect([role, validateIamBindingConfig(binding({ role }))]).toEqual([role, []]);
    }
  });
});

describe('kms_symmetric_key_iam_binding plan', () => {
  const prior = binding({ id: 'k1/kms.viewer' });

  it('plans the id as soon as key and role are known', () => {
    const res = planIamBinding({ prior: null, proposed: binding(), config: binding() });
    expect(res).toEqual({ planned: binding({ id: 'k1/kms.viewer' }), requiresReplace: [], diagnostics: [] });
    const unknownKey = planIamBinding({ prior: null, proposed: binding({ symmetric_key_id: UNKNOWN }), config: binding({ symmetric_key_id: UNKNOWN }) });
    expect(isUnknown(unknownKey.planned?.['id'])).toBe(true);
  });

  it('changes members in place', () => {
    const cfg = binding({ members: ['serviceAccount:sa1', 'userAccount:bob'] });
    const res = planIamBinding({ prior, proposed: { ...cfg, id: prior['id'] ?? null }, config: cfg });
    expect(res.requiresReplace).toEqual([]);
    expect(res.planned).toEqual({ ...cfg, id: 'k1/kms.viewer' });
  });

  it.each<[string, TfObject[string]]>([['symmetric_key_id', 'k2'], ['role', 'kms.admin'], ['symmetric_key_id', UNKNOWN]])('replaces when %s becomes %s', (name, value) => {
    const cfg = binding({ [name]: value });
    const res = planIamBinding({ prior, proposed: { ...cfg, id: prior['id'] ?? null }, config: cfg });
    expect(res.requiresReplace.map(formatPath)).toEqual([name]);
  });

  it('plans null on destroy', () => {
    expect(planIamBinding({ prior, proposed: null, config: null }).planned).toBeNull();
  });
});

describe('role deltas', () => {
  const current = [b('kms.viewer', 'serviceAccount:a'), b('kms.viewer', 'serviceAccount:b'), b('kms.admin', 'serviceAccount:a')];

  it('adds the missing, removes the extra, and leaves other roles alone', () => {
    expect(roleDeltas(current, 'kms.viewer', ['serviceAccount:b', 'userAccount:c'])).toEqual([
      { action: 'ADD', accessBinding: b('kms.viewer', 'userAccount:c') },
      { action: 'REMOVE', accessBinding: b('kms.viewer', 'serviceAccount:a') },
    ]);
  });

  it('removes every holder for an empty set and nothing when already equal', () => {
    expect(roleDeltas(current, 'kms.viewer', []).map((d) => d.action)).toEqual(['REMOVE', 'REMOVE']);
    expect(roleDeltas(current, 'kms.viewer', ['serviceAccount:b', 'serviceAccount:a'])).toEqual([]);
  });

  it('lists the holders of one role, sorted and without duplicates', () => {
    expect(membersOfRole([...current, b('kms.viewer', 'serviceAccount:a'), b('kms.viewer', 'serviceAccount:0')], 'kms.viewer')).toEqual([
      'serviceAccount:0',
      'serviceAccount:a',
      'serviceAccount:b',
    ]);
  });
});

describe('import ids', () => {
  it.each<[string, string, TfObject]>([
    ['comma-separated', 'abc,kms.keys.encrypter', { id: 'abc/kms.keys.encrypter', symmetric_key_id: 'abc', role: 'kms.keys.encrypter', members: null }],
    ['with spaces around the parts', ' abc , kms.viewer ', { id: 'abc/kms.viewer', symmetric_key_id: 'abc', role: 'kms.viewer', members: null }],
    ['space-separated (older Yandex form)', 'abc kms.viewer', { id: 'abc/kms.viewer', symmetric_key_id: 'abc', role: 'kms.viewer', members: null }],
  ])('binding: accepts %s', (_name, id, state) => {
    expect(importIamBinding(id)).toEqual({ value: state, diagnostics: [] });
  });

  it.each<[string, string, string]>([
    ['an empty id', '', 'Import kms_symmetric_key_iam_binding by "<symmetric_key_id>,<role>", e.g. terraform import kms_symmetric_key_iam_binding.x "abc123,kms.keys.encrypter". Got "".'],
    ['a key id alone', 'abc', 'Got "abc".'],
    ['an empty role', 'abc,', 'Got "abc,".'],
    ['an unknown role', 'abc,kms.owner', 'Unknown role "kms.owner"'],
  ])('binding: refuses %s', (_name, id, detail) => {
    const res = importIamBinding(id);
    expect(res.value).toBeNull();
    expect(res.diagnostics.map((d) => d.summary)).toEqual(['Invalid import id']);
    expect(res.diagnostics[0]?.detail).toContain(detail);
  });

  it('member: accepts "<key>,<role>,<member>" and refuses other shapes', () => {
    expect(importIamMember('abc,kms.viewer,userAccount:alice')).toEqual({
      value: { id: 'abc/kms.viewer/userAccount:alice', symmetric_key_id: 'abc', role: 'kms.viewer', member: 'userAccount:alice' },
      diagnostics: [],
    });
    expect(importIamMember('abc,kms.viewer').diagnostics[0]?.detail).toContain('"<symmetric_key_id>,<role>,<member>"');
    expect(importIamMember('abc,kms.viewer,alice').diagnostics[0]?.detail).toContain('Member "alice" must be');
  });

  it('names the expected parts in the usage text', () => {
    const res = parseImportId('t', 'x', ['symmetric_key_id', 'role', 'member']);
    expect('diagnostic' in res && res.diagnostic.detail).toContain('e.g. terraform import t.x "abc123,kms.keys.encrypter,serviceAccount:sa1"');
  });
});

describe('kms_symmetric_key_iam_member', () => {
  it('validates the member and role with attribute paths', () => {
    const diags = validateIamMemberConfig(member({ role: 'editor', member: 'serviceAccount:' }));
    expect(diags.map((d) => [d.summary, formatPath(d.path ?? [])])).toEqual([
      ['Invalid role', 'role'],
      ['Invalid member', 'member'],
    ]);
    expect(validateIamMemberConfig(member({ member: UNKNOWN }))).toEqual([]);
  });

  it('plans the id, and replaces on any change', () => {
    expect(planIamMember({ prior: null, proposed: member(), config: member() }).planned?.['id']).toBe('k1/kms.viewer/serviceAccount:sa1');
    const prior = member({ id: 'k1/kms.viewer/serviceAccount:sa1' });
    for (const name of ['symmetric_key_id', 'role', 'member'] as const) {
      const cfg = member({ [name]: name === 'member' ? 'userAccount:x' : name === 'role' ? 'kms.admin' : 'k9' });
      expect(planIamMember({ prior, proposed: cfg, config: cfg }).requiresReplace.map(formatPath)).toEqual([name]);
    }
    expect(planIamMember({ prior, proposed: member(), config: member() })).toEqual({ planned: prior, requiresReplace: [], diagnostics: [] });
  });
});

describe('members: every subject type the daemon accepts', () => {
  it.each([
    ['serviceAccount:sa1', { type: 'serviceAccount', id: 'sa1' }],
    ['userAccount:alice', { type: 'userAccount', id: 'alice' }],
    ['federatedUser:fed-1', { type: 'federatedUser', id: 'fed-1' }],
    ['group:devs', { type: 'group', id: 'devs' }],
    ['system:allAuthenticatedUsers', { type: 'system', id: 'allAuthenticatedUsers' }],
    ['system:allUsers', { type: 'system', id: 'allUsers' }],
  ])('%s', (text, subject) => {
    expect(memberSubject(text)).toEqual(subject);
    expect(memberProblem(text)).toBeUndefined();
    // Read back from the API, a binding becomes the same member string.
    expect(membersOfRole([{ roleId: 'kms.viewer', subject }], 'kms.viewer')).toEqual([text]);
  });

  it.each(['system:everyone', 'group:Devs', 'robot:x', 'serviceAccount:', 'system:allUsers:x'])('refuses %s', (text) => {
    expect(memberSubject(text)).toBeUndefined();
    expect(memberProblem(text)).toContain(JSON.stringify(text));
  });
});
