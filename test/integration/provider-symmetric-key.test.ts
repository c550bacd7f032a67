/**
 * kms_symmetric_key against the real daemon, through the provider's RPC handlers with msgpack
 * values exactly as core sends them (create → read → update → import → drift → delete).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type AddressInfo } from 'node:net';
import type { CtyType } from '../../provider/codec/cty.js';
import { decodeDynamicValue, encodeDynamicValue } from '../../provider/codec/dynamic-value.js';
import { isUnknown, UNKNOWN, type TfObject, type TfValue } from '../../provider/codec/values.js';
import { createProviderHandlers, type UnaryHandler } from '../../provider/server.js';
import { impliedType, providerSchemas } from '../../provider/schema.js';
import { api, startDaemon, type DaemonProcess } from '../support/daemon.js';

const KEY_TYPE = impliedType(providerSchemas.resource_schemas!['kms_symmetric_key']!.block);
const PROVIDER_TYPE = impliedType(providerSchemas.provider.block);
const FOLDER = 'folder-provider-it';

type Diag = { severity: number; summary: string; detail?: string; attribute?: { steps: Record<string, unknown>[] } };

function dv(value: TfValue, type: CtyType = KEY_TYPE): { msgpack: Buffer } {
  return encodeDynamicValue(value, type);
}

function decode(message: unknown): TfObject | null {
  return decodeDynamicValue(message as { msgpack: Buffer }, KEY_TYPE) as TfObject | null;
}

function config(values: Partial<TfObject>): TfObject {
  const out: TfObject = {};
  for (const name of Object.keys((KEY_TYPE as readonly ['object', Record<string, CtyType>])[1])) out[name] = null;
  return { ...out, ...values } as TfObject;
}

/** What core proposes from config + prior (optional+computed left null keep prior). */
function propose(prior: TfObject | null, cfg: TfObject): TfObject {
  const out: TfObject = { ...cfg };
  for (const n of ['id', 'created_at', 'rotated_at', 'primary_version_id']) out[n] = prior?.[n] ?? null;
  for (const n of ['folder_id', 'default_algorithm', 'deletion_protection', 'status']) if (cfg[n] === null) out[n] = prior?.[n] ?? null;
  return out;
}

let daemon: DaemonProcess;
let h: Record<string, UnaryHandler>;

async function configured(endpoint: string, token: string): Promise<{ handlers: Record<string, UnaryHandler>; diags: Diag[] }> {
  const handlers = createProviderHandlers({});
  const res = await handlers.ConfigureProvider!({ config: dv({ endpoint, token, folder_id: FOLDER }, PROVIDER_TYPE) });
  return { handlers, diags: res['diagnostics'] as Diag[] };
}

/** plan + apply like core; returns the new state and both responses' diagnostics. */
async function planApply(prior: TfObject | null, cfg: TfObject | null): Promise<{ state: TfObject | null; planned: TfObject | null; diags: Diag[]; replace: unknown[] }> {
  let planned: TfObject | null = null;
  let replace: unknown[] = [];
  if (cfg !== null) {
    const plan = await h.PlanResourceChange!({
      type_name: 'kms_symmetric_key',
      prior_state: dv(prior),
      proposed_new_state: dv(propose(prior, cfg)),
      config: dv(cfg),
    });
    const diags = plan['diagnostics'] as Diag[];
    if (diags.length > 0) return { state: prior, planned: null, diags, replace: [] };
    planned = decode(plan['planned_state']);
    replace = (plan['requires_replace'] as unknown[] | undefined) ?? [];
  }
  const applied = await h.ApplyResourceChange!({ type_name: 'kms_symmetric_key', prior_state: dv(prior), planned_state: dv(planned), config: dv(cfg) });
  return { state: decode(applied['new_state']), planned, diags: applied['diagnostics'] as Diag[], replace };
}

async function read(state: TfObject): Promise<{ state: TfObject | null; diags: Diag[] }> {
  const res = await h.ReadResource!({ type_name: 'kms_symmetric_key', current_state: dv(state) });
  return { state: decode(res['new_state']), diags: res['diagnostics'] as Diag[] };
}

/** Every known planned value must come back identical (core's "inconsistent result" check). */
function expectConsistent(planned: TfObject | null, state: TfObject | null): void {
  expect(state).not.toBeNull();
  for (const [name, value] of Object.entries(planned ?? {})) {
    if (!isUnknown(value)) expect([name, state?.[name]]).toEqual([name, value]);
    else expect([name, isUnknown(state?.[name])]).toEqual([name, false]);
  }
}

beforeAll(async () => {
  daemon = await startDaemon();
  const c = await configured(daemon.url, daemon.token);
  expect(c.diags).toEqual([]);
  h = c.handlers;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
});

describe('kms_symmetric_key against the daemon', () => {
  it('creates, reads back without a diff, updates in place and deletes', async () => {
    const cfg = config({ name: 'app', labels: { env: 'dev' }, rotation_period: '24h' });
    const created = await planApply(null, cfg);
    expect(created.diags).toEqual([]);
    expectConsistent(created.planned, created.state);
    const state = created.state!;
    expect(state).toMatchObject({ folder_id: FOLDER, name: 'app', description: null, labels: { env: 'dev' }, rotation_period: '24h', default_algorithm: 'AES_128', deletion_protection: false, status: 'ACTIVE', rotated_at: null });
    expect(typeof state['primary_version_id']).toBe('string');

    const refreshed = await read(state);
    expect(refreshed).toEqual({ state, diags: [] });

    const cfg2 = config({ name: 'app', labels: {}, rotation_period: '1440m', default_algorithm: 'AES_256', status: 'INACTIVE' });
    const updated = await planApply(state, cfg2);
    expect(updated.diags).toEqual([]);
    expect(updated.replace).toEqual([]);
    expectConsistent(updated.planned, updated.state);
    expect(updated.state).toMatchObject({ rotation_period: '24h', labels: {}, default_algorithm: 'AES_256', status: 'INACTIVE', primary_version_id: state['primary_version_id'] });
    expect((await read(updated.state!)).state).toEqual(updated.state);

    const deleted = await planApply(updated.state, null);
    expect(deleted).toMatchObject({ state: null, diags: [] });
    expect((await read(updated.state!)).state).toBeNull();
  });

  it('imports by id; the read fills in everything and keeps null for empty labels', async () => {
    const created = await api(daemon, 'POST', '/kms/v1/keys', { folderId: FOLDER, name: 'imported', rotationPeriod: '5400s', defaultAlgorithm: 'AES_192' });
    expect(created.status).toBe(200);
    const id = created.body.response.id as string;
    const imported = await h.ImportResourceState!({ type_name: 'kms_symmetric_key', id });
    const resources = imported['imported_resources'] as { type_name: string; state: unknown }[];
    expect(resources).toHaveLength(1);
    const state = decode(resources[0]!.state)!;
    expect(state['id']).toBe(id);
    const { state: full } = await read(state);
    expect(full).toMatchObject({ id, folder_id: FOLDER, name: 'imported', description: null, labels: null, rotation_period: '1h30m', default_algorithm: 'AES_192' });
  });

  it('shows out-of-band changes as drift and keeps an equal duration as written', async () => {
    const { state } = await planApply(null, config({ name: 'drift', rotation_period: '8760h' }));
    const id = state!['id'] as string;
    await api(daemon, 'PATCH', `/kms/v1/keys/${id}`, { updateMask: 'name,labels', name: 'changed', labels: { owner: 'ops' } });
    const { state: after } = await read(state!);
    expect(after).toMatchObject({ name: 'changed', labels: { owner: 'ops' }, rotation_period: '8760h' });
  });

  it('refuses to destroy a protected key with the daemon message', async () => {
    const { state } = await planApply(null, config({ name: 'protected', deletion_protection: true }));
    const destroyed = await planApply(state, null);
    expect(destroyed.state).toEqual(state);
    expect(destroyed.diags).toHaveLength(1);
    expect(destroyed.diags[0]!.summary).toBe(`Cannot delete key ${state!['id'] as string}`);
    expect(destroyed.diags[0]!.detail).toMatch(/deletion protection/i);
    expect(destroyed.diags[0]!.detail).toMatch(/FAILED_PRECONDITION/);
  });

  it('plans a replacement when folder_id changes', async () => {
    const { state } = await planApply(null, config({ name: 'mover' }));
    const moved = config({ name: 'mover', folder_id: 'other-folder' });
    const plan = await h.PlanResourceChange!({ type_name: 'kms_symmetric_key', prior_state: dv(state), proposed_new_state: dv(propose(state, moved)), config: dv(moved) });
    expect(plan['requires_replace']).toEqual([{ steps: [{ attribute_name: 'folder_id' }] }]);
  });

  it('reports validation errors with attribute paths', async () => {
    const res = await h.ValidateResourceConfig!({ type_name: 'kms_symmetric_key', config: dv(config({ labels: { Bad: 'x' }, rotation_period: UNKNOWN })) });
    expect(res['diagnostics']).toEqual([
      {
        severity: 1,
        summary: 'Invalid label key',
        detail: 'Label key "Bad" must match [a-z][-_0-9a-z]* and be at most 63 characters.',
        attribute: { steps: [{ attribute_name: 'labels' }, { element_key_string: 'Bad' }] },
      },
    ]);
  });

  it('turns an undecodable config into an error diagnostic', async () => {
    const res = await h.ValidateResourceConfig!({ type_name: 'kms_symmetric_key', config: { msgpack: Buffer.from([0x81, 0xa4, 0x6e, 0x61, 0x6d, 0x65, 0x05]) } });
    expect(res['diagnostics']).toEqual([
      { severity: 1, summary: 'Cannot decode the resource configuration', detail: 'expected a string, got a number', attribute: { steps: [{ attribute_name: 'name' }] } },
    ]);
  });

  it('upgrades JSON state to msgpack with exactly the schema attributes', async () => {
    const json = Buffer.from(JSON.stringify({ id: 'k1', name: 'n', labels: null, removed_attribute: 1 }));
    const res = await h.UpgradeResourceState!({ type_name: 'kms_symmetric_key', version: 0, raw_state: { json } });
    expect(res['diagnostics']).toEqual([]);
    expect(decode(res['upgraded_state'])).toEqual(config({ id: 'k1', name: 'n' }));
  });

  it('says clearly when the token is refused or the daemon is unreachable', async () => {
    const badToken = await configured(daemon.url, 'not-a-token');
    expect(badToken.diags).toMatchObject([{ severity: 1, summary: 'KMS token refused', attribute: { steps: [{ attribute_name: 'token' }] } }]);
    const closedPort = await new Promise<number>((r) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as AddressInfo;
        srv.close(() => r(port));
      });
    });
    const down = await configured(`http://127.0.0.1:${closedPort}`, daemon.token);
    expect(down.diags).toMatchObject([{ severity: 1, summary: 'KMS daemon unreachable', attribute: { steps: [{ attribute_name: 'endpoint' }] } }]);
    expect(down.diags[0]!.detail).toMatch(/^cannot reach the KMS daemon at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\. Is kmsd running/);
  });
});
