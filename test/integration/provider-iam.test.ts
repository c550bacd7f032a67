/**
 * kms_symmetric_key_iam_binding and kms_symmetric_key_iam_member against the real daemon, through
 * the provider's RPC handlers with msgpack values as core sends them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { TfObject } from '../../provider/codec/values.js';
import { api, startDaemon, type DaemonProcess } from '../support/daemon.js';
import { expectConsistent, objectOf, pathOf, ProviderDriver } from '../support/provider-rpc.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

const BINDING = 'kms_symmetric_key_iam_binding';
const MEMBER = 'kms_symmetric_key_iam_member';
const FOLDER = 'folder-iam-it';

let daemon: DaemonProcess;
let p: ProviderDriver;

async function newKey(name: string): Promise<string> {
  const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: FOLDER, name });
  expect(res.status).toBe(200);
  return res.body.response.id as string;
}

async function newServiceAccount(name: string): Promise<string> {
  const res = await api(daemon, 'POST', ADMIN_PATHS.serviceAccounts, { name });
  expect(res.status).toBe(200);
  return `serviceAccount:${res.body.id as string}`;
}

/** The key's bindings as sorted "role member" strings. */
async function bindingsOf(keyId: string): Promise<string[]> {
  const res = await api(daemon, 'GET', `/kms/v1/keys/${keyId}:listAccessBindings`);
  expect(res.status).toBe(200);
  return (res.body.accessBindings as { roleId: string; subject: { id: string; type: string } }[])
    .map((b) => `${b.roleId} ${b.subject.type}:${b.subject.id}`)
    .sort();
}

async function changeBinding(keyId: string, action: 'ADD' | 'REMOVE', role: string, member: string): Promise<void> {
  const [type, id] = member.split(':');
  const res = await api(daemon, 'POST', `/kms/v1/keys/${keyId}:updateAccessBindings`, {
    accessBindingDeltas: [{ action, accessBinding: { roleId: role, subject: { id, type } } }],
  });
  expect(res.status).toBe(200);
}

function binding(keyId: string, role: string, members: string[]): TfObject {
  return objectOf(BINDING, { symmetric_key_id: keyId, role, members });
}

function member(keyId: string, role: string, who: string): TfObject {
  return objectOf(MEMBER, { symmetric_key_id: keyId, role, member: who });
}

let sa1: string;
let sa2: string;
let sa3: string;

beforeAll(async () => {
  daemon = await startDaemon();
  const c = await ProviderDriver.configure(daemon.url, daemon.token, FOLDER);
  expect(c.diags).toEqual([]);
  p = c.driver;
  [sa1, sa2, sa3] = await Promise.all([newServiceAccount('sa-one'), newServiceAccount('sa-two'), newServiceAccount('sa-three')]);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
});

describe('kms_symmetric_key_iam_binding against the daemon', () => {
  it('creates, updates, repairs drift and deletes one role, leaving other roles untouched', async () => {
    const keyId = await newKey('binding-lifecycle');
    await changeBinding(keyId, 'ADD', 'kms.viewer', sa3);

    const created = await p.planApply(BINDING, null, binding(keyId, 'kms.keys.encrypter', [sa1]));
    expect(created.diags).toEqual([]);
    expect(created.planned?.['id']).toBe(`${keyId}/kms.keys.encrypter`);
    expectConsistent(created.planned, created.state);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa1}`, `kms.viewer ${sa3}`].sort());
    expect(await p.read(BINDING, created.state!)).toEqual({ state: created.state, diags: [] });

    const grown = await p.planApply(BINDING, created.state, binding(keyId, 'kms.keys.encrypter', [sa1, sa2]));
    expect(grown.diags).toEqual([]);
    expect(grown.replace).toEqual([]);
    expectConsistent(grown.planned, grown.state);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa1}`, `kms.keys.encrypter ${sa2}`, `kms.viewer ${sa3}`].sort());

    const shrunk = await p.planApply(BINDING, grown.state, binding(keyId, 'kms.keys.encrypter', [sa2]));
    expect(shrunk.diags).toEqual([]);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa2}`, `kms.viewer ${sa3}`].sort());

    // Someone grants the role outside Terraform: the read shows it, the next apply removes it.
    await changeBinding(keyId, 'ADD', 'kms.keys.encrypter', sa1);
    const drifted = await p.read(BINDING, shrunk.state!);
    expect(drifted.diags).toEqual([]);
    expect(drifted.state?.['members']).toEqual([sa1, sa2].sort());
    const repaired = await p.planApply(BINDING, drifted.state, binding(keyId, 'kms.keys.encrypter', [sa2]));
    expect(repaired.diags).toEqual([]);
    expect(repaired.planned?.['members']).toEqual([sa2]);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa2}`, `kms.viewer ${sa3}`].sort());

    // Everyone removed outside Terraform: the binding stays with no members, and apply restores it.
    await changeBinding(keyId, 'REMOVE', 'kms.keys.encrypter', sa2);
    expect((await p.read(BINDING, repaired.state!)).state?.['members']).toEqual([]);

    const deleted = await p.planApply(BINDING, repaired.state, null);
    expect(deleted).toMatchObject({ state: null, diags: [] });
    expect(await bindingsOf(keyId)).toEqual([`kms.viewer ${sa3}`]);
  });

  it('replaces the binding when the role changes', async () => {
    const keyId = await newKey('binding-role-change');
    const first = await p.planApply(BINDING, null, binding(keyId, 'kms.keys.encrypter', [sa1]));
    expect(first.diags).toEqual([]);
    const second = await p.planApply(BINDING, first.state, binding(keyId, 'kms.keys.decrypter', [sa1]));
    expect(second.diags).toEqual([]);
    expect(second.replace).toEqual([{ steps: [{ attribute_name: 'role' }] }]);
    expect(second.state?.['id']).toBe(`${keyId}/kms.keys.decrypter`);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.decrypter ${sa1}`]);
  });

  it('drops out of state when the key is deleted, and deleting it then succeeds', async () => {
    const keyId = await newKey('binding-key-gone');
    const created = await p.planApply(BINDING, null, binding(keyId, 'kms.admin', [sa1]));
    expect(created.diags).toEqual([]);
    expect((await api(daemon, 'DELETE', `/kms/v1/keys/${keyId}`)).status).toBe(200);
    expect(await p.read(BINDING, created.state!)).toEqual({ state: null, diags: [] });
    expect(await p.apply(BINDING, created.state, null, null)).toEqual({ state: null, diags: [] });
  });

  it('reports a service account that does not exist with the daemon message on members', async () => {
    const keyId = await newKey('binding-bad-sa');
    const res = await p.planApply(BINDING, null, binding(keyId, 'kms.viewer', ['serviceAccount:nosuchaccount']));
    expect(res.state).toBeNull();
    expect(res.diags).toHaveLength(1);
    expect(res.diags[0]?.summary).toBe(`Cannot set the kms.viewer binding of key ${keyId}`);
    expect(res.diags[0]?.detail).toContain('service account nosuchaccount does not exist');
    expect(res.diags[0]?.detail).toContain('INVALID_ARGUMENT');
    expect(pathOf(res.diags[0])).toEqual(['members']);
  });

  it('validates role and members with attribute paths', async () => {
    const diags = await p.validate(BINDING, binding('k', 'kms.superuser', ['robot:devs', sa1]));
    expect(diags.map((d) => [d.summary, pathOf(d)])).toEqual([
      ['Invalid role', ['role']],
      ['Invalid member', ['members']],
    ]);
    expect(diags[0]?.detail).toContain('kms.keys.encrypterDecrypter');
    expect(diags[1]?.detail).toContain('"robot:devs" must be serviceAccount:<id>, userAccount:<id>, federatedUser:<id> or group:<id>');
  });

  it('imports "<key>,<role>" and reads the members', async () => {
    const keyId = await newKey('binding-import');
    await changeBinding(keyId, 'ADD', 'kms.keys.encrypterDecrypter', sa2);
    await changeBinding(keyId, 'ADD', 'kms.keys.encrypterDecrypter', 'userAccount:alice');
    await changeBinding(keyId, 'ADD', 'kms.viewer', sa3);
    const res = await p.importAndRead(BINDING, `${keyId},kms.keys.encrypterDecrypter`);
    expect(res.diags).toEqual([]);
    expect(res.state).toEqual({
      id: `${keyId}/kms.keys.encrypterDecrypter`,
      symmetric_key_id: keyId,
      role: 'kms.keys.encrypterDecrypter',
      members: [sa2, 'userAccount:alice'].sort(),
    });
    // Core then plans against the config: the same members make an empty plan.
    const plan = await p.plan(BINDING, res.state, binding(keyId, 'kms.keys.encrypterDecrypter', ['userAccount:alice', sa2]));
    expect(plan.diags).toEqual([]);
    expect(plan.replace).toEqual([]);
    expect(plan.planned).toEqual({ ...res.state, members: ['userAccount:alice', sa2] });
  });

  it('reads an imported binding of a missing key as gone', async () => {
    const res = await p.importAndRead(BINDING, 'nosuchkey,kms.viewer');
    expect(res).toMatchObject({ state: null, diags: [] });
  });

  it.each<[string, string, string]>([
    ['no role', 'abc123', 'Import kms_symmetric_key_iam_binding by "<symmetric_key_id>,<role>"'],
    ['three parts', 'abc123,kms.viewer,extra', 'Got "abc123,kms.viewer,extra"'],
    ['an empty key id', ',kms.viewer', 'e.g. terraform import kms_symmetric_key_iam_binding.x "abc123,kms.keys.encrypter"'],
    ['an unknown role', 'abc123,owner', 'Unknown role "owner"'],
  ])('refuses an import id with %s', async (_name, id, detail) => {
    const res = await p.importAndRead(BINDING, id);
    expect(res.imported).toBeNull();
    expect(res.diags).toHaveLength(1);
    expect(res.diags[0]?.summary).toBe('Invalid import id');
    expect(res.diags[0]?.detail).toContain(detail);
  });
});

describe('kms_symmetric_key_iam_member against the daemon', () => {
  it('adds one member without touching the others, and removes only it', async () => {
    const keyId = await newKey('member-lifecycle');
    await changeBinding(keyId, 'ADD', 'kms.keys.encrypter', sa2);
    const created = await p.planApply(MEMBER, null, member(keyId, 'kms.keys.encrypter', sa1));
    expect(created.diags).toEqual([]);
    expect(created.planned?.['id']).toBe(`${keyId}/kms.keys.encrypter/${sa1}`);
    expectConsistent(created.planned, created.state);
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa1}`, `kms.keys.encrypter ${sa2}`].sort());
    expect(await p.read(MEMBER, created.state!)).toEqual({ state: created.state, diags: [] });

    const deleted = await p.planApply(MEMBER, created.state, null);
    expect(deleted).toMatchObject({ state: null, diags: [] });
    expect(await bindingsOf(keyId)).toEqual([`kms.keys.encrypter ${sa2}`]);
  });

  it('replaces the binding when the member changes', async () => {
    const keyId = await newKey('member-change');
    const first = await p.planApply(MEMBER, null, member(keyId, 'kms.viewer', sa1));
    const second = await p.planApply(MEMBER, first.state, member(keyId, 'kms.viewer', sa3));
    expect(second.diags).toEqual([]);
    expect(second.replace).toEqual([{ steps: [{ attribute_name: 'member' }] }]);
    expect(await bindingsOf(keyId)).toEqual([`kms.viewer ${sa3}`]);
  });

  it('drops out of state when the binding is revoked outside Terraform or the key is deleted', async () => {
    const keyId = await newKey('member-drift');
    const created = await p.planApply(MEMBER, null, member(keyId, 'kms.auditor', sa1));
    expect(created.diags).toEqual([]);
    await changeBinding(keyId, 'REMOVE', 'kms.auditor', sa1);
    expect(await p.read(MEMBER, created.state!)).toEqual({ state: null, diags: [] });
    const recreated = await p.planApply(MEMBER, null, member(keyId, 'kms.auditor', sa1));
    expect(recreated.diags).toEqual([]);
    expect((await api(daemon, 'DELETE', `/kms/v1/keys/${keyId}`)).status).toBe(200);
    expect(await p.read(MEMBER, recreated.state!)).toEqual({ state: null, diags: [] });
    expect(await p.apply(MEMBER, recreated.state, null, null)).toEqual({ state: null, diags: [] });
  });

  it('imports "<key>,<role>,<member>"; a binding that does not exist reads as gone', async () => {
    const keyId = await newKey('member-import');
    await changeBinding(keyId, 'ADD', 'kms.editor', sa2);
    const res = await p.importAndRead(MEMBER, `${keyId},kms.editor,${sa2}`);
    expect(res.diags).toEqual([]);
    expect(res.state).toEqual({ id: `${keyId}/kms.editor/${sa2}`, symmetric_key_id: keyId, role: 'kms.editor', member: sa2 });
    expect(await p.importAndRead(MEMBER, `${keyId},kms.editor,${sa1}`)).toMatchObject({ state: null, diags: [] });
  });

  it.each<[string, string, string]>([
    ['two parts', 'abc123,kms.viewer', 'Import kms_symmetric_key_iam_member by "<symmetric_key_id>,<role>,<member>"'],
    ['a malformed member', 'abc123,kms.viewer,alice@example.com', 'Member "alice@example.com" must be serviceAccount:<id>, userAccount:<id>'],
    ['an unknown role', 'abc123,viewer,userAccount:alice', 'Unknown role "viewer"'],
  ])('refuses an import id with %s', async (_name, id, detail) => {
    const res = await p.importAndRead(MEMBER, id);
    expect(res.diags.map((d) => d.summary)).toEqual(['Invalid import id']);
    expect(res.diags[0]?.detail).toContain(detail);
  });

  it('validates the member with an attribute path', async () => {
    const diags = await p.validate(MEMBER, member('k', 'kms.viewer', 'serviceAccount:'));
    expect(diags.map((d) => [d.summary, pathOf(d)])).toEqual([['Invalid member', ['member']]]);
  });
});
