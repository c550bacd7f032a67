/**
 * Drive the provider's RPC handlers the way core does: msgpack DynamicValues in and out, plan then
 * apply, with core's "proposed new state" and its consistency checks.
 */
import { expect } from '@jest/globals';
import type { CtyType } from '../../provider/codec/cty.js';
import { decodeDynamicValue, encodeDynamicValue } from '../../provider/codec/dynamic-value.js';
import { isUnknown, type TfObject, type TfValue } from '../../provider/codec/values.js';
import { createProviderHandlers, type UnaryHandler } from '../../provider/server.js';
import { impliedType, providerSchemas, type SchemaBlock } from '../../provider/schema.js';

/** tfplugin6.Diagnostic as the handlers return it. */
export type Diag = { severity: number; summary: string; detail?: string; attribute?: { steps: Record<string, unknown>[] } };

/** The cty type and schema block of a resource (or, with `data`, a data source) type. */
export function typeOf(typeName: string, data = false): { type: CtyType; block: SchemaBlock } {
  const schema = data ? providerSchemas.data_source_schemas?.[typeName] : providerSchemas.resource_schemas?.[typeName];
  if (!schema) throw new Error(`no schema for ${typeName}`);
  return { type: impliedType(schema.block), block: schema.block };
}

/** A whole object of the type: every attribute null unless given. */
export function objectOf(typeName: string, values: Partial<TfObject> = {}, data = false): TfObject {
  const out: TfObject = {};
  for (const name of Object.keys(typeOf(typeName, data).block.attributes ?? {})) out[name] = null;
  return { ...out, ...values } as TfObject;
}

/** What core proposes: config, with prior values for computed attributes the config leaves null. */
export function propose(typeName: string, prior: TfObject | null, cfg: TfObject): TfObject {
  const out: TfObject = { ...cfg };
  for (const [name, attr] of Object.entries(typeOf(typeName).block.attributes ?? {})) {
    if (attr.computed && cfg[name] === null) out[name] = prior?.[name] ?? null;
  }
  return out;
}

/** Handlers configured against a daemon, plus typed plan/apply/read/import helpers. */
export class ProviderDriver {
  private constructor(readonly handlers: Record<string, UnaryHandler>) {}

  /** Configure a fresh handler set; returns it with ConfigureProvider's diagnostics. */
  static async configure(endpoint: string, token: string, folderId?: string): Promise<{ driver: ProviderDriver; diags: Diag[] }> {
    const handlers = createProviderHandlers({});
    const providerType = impliedType(providerSchemas.provider.block);
    const res = await handlers.ConfigureProvider!({
      config: encodeDynamicValue({ endpoint, token, folder_id: folderId ?? null }, providerType),
    });
    return { driver: new ProviderDriver(handlers), diags: res['diagnostics'] as Diag[] };
  }

  dv(typeName: string, value: TfValue, data = false): { msgpack: Buffer } {
    return encodeDynamicValue(value, typeOf(typeName, data).type);
  }

  decode(typeName: string, message: unknown, data = false): TfObject | null {
    return decodeDynamicValue(message as { msgpack: Buffer }, typeOf(typeName, data).type) as TfObject | null;
  }

  async validate(typeName: string, cfg: TfObject): Promise<Diag[]> {
    const res = await this.handlers.ValidateResourceConfig!({ type_name: typeName, config: this.dv(typeName, cfg) });
    return res['diagnostics'] as Diag[];
  }

  async plan(typeName: string, prior: TfObject | null, cfg: TfObject): Promise<{ planned: TfObject | null; replace: unknown[]; diags: Diag[] }> {
    const res = await this.handlers.PlanResourceChange!({
      type_name: typeName,
      prior_state: this.dv(typeName, prior),
      proposed_new_state: this.dv(typeName, propose(typeName, prior, cfg)),
      config: this.dv(typeName, cfg),
    });
    const diags = res['diagnostics'] as Diag[];
    if (diags.length > 0) return { planned: null, replace: [], diags };
    return { planned: this.decode(typeName, res['planned_state']), replace: (res['requires_replace'] as unknown[] | undefined) ?? [], diags };
  }

  /** Plan and apply like core (a replacement is planned again with a null prior, then delete + create). */
  async planApply(
    typeName: string,
    prior: TfObject | null,
    cfg: TfObject | null,
  ): Promise<{ state: TfObject | null; planned: TfObject | null; diags: Diag[]; replace: unknown[] }> {
    let planned: TfObject | null = null;
    let replace: unknown[] = [];
    if (cfg !== null) {
      const first = await this.plan(typeName, prior, cfg);
      if (first.diags.length > 0) return { state: prior, planned: null, diags: first.diags, replace: [] };
      replace = first.replace;
      if (replace.length > 0 && prior !== null) {
        const destroyed = await this.apply(typeName, prior, null, null);
        if (destroyed.diags.length > 0) return { state: prior, planned: null, diags: destroyed.diags, replace };
        const again = await this.plan(typeName, null, cfg);
        if (again.diags.length > 0) return { state: null, planned: null, diags: again.diags, replace };
        const created = await this.apply(typeName, null, again.planned, cfg);
        return { ...created, planned: again.planned, replace };
      }
      planned = first.planned;
    }
    const applied = await this.apply(typeName, prior, planned, cfg);
    return { ...applied, planned, replace };
  }

  async apply(typeName: string, prior: TfObject | null, planned: TfObject | null, cfg: TfObject | null): Promise<{ state: TfObject | null; diags: Diag[] }> {
    const res = await this.handlers.ApplyResourceChange!({
      type_name: typeName,
      prior_state: this.dv(typeName, prior),
      planned_state: this.dv(typeName, planned),
      config: this.dv(typeName, cfg),
    });
    return { state: this.decode(typeName, res['new_state']), diags: res['diagnostics'] as Diag[] };
  }

  async read(typeName: string, state: TfObject): Promise<{ state: TfObject | null; diags: Diag[] }> {
    const res = await this.handlers.ReadResource!({ type_name: typeName, current_state: this.dv(typeName, state) });
    return { state: this.decode(typeName, res['new_state']), diags: res['diagnostics'] as Diag[] };
  }

  /** ImportResourceState then ReadResource, like `terraform import`. */
  async importAndRead(typeName: string, id: string): Promise<{ imported: TfObject | null; state: TfObject | null; diags: Diag[] }> {
    const res = await this.handlers.ImportResourceState!({ type_name: typeName, id });
    const diags = res['diagnostics'] as Diag[];
    const resources = (res['imported_resources'] as { state: unknown }[] | undefined) ?? [];
    if (diags.length > 0 || resources.length === 0) return { imported: null, state: null, diags };
    const imported = this.decode(typeName, resources[0]!.state);
    const read = await this.read(typeName, imported!);
    return { imported, state: read.state, diags: read.diags };
  }

  async validateData(typeName: string, cfg: TfObject): Promise<Diag[]> {
    const res = await this.handlers.ValidateDataResourceConfig!({ type_name: typeName, config: this.dv(typeName, cfg, true) });
    return res['diagnostics'] as Diag[];
  }

  async readData(typeName: string, cfg: TfObject): Promise<{ state: TfObject | null; diags: Diag[] }> {
    const res = await this.handlers.ReadDataSource!({ type_name: typeName, config: this.dv(typeName, cfg, true) });
    const state = res['state'] === undefined ? null : this.decode(typeName, res['state'], true);
    return { state, diags: res['diagnostics'] as Diag[] };
  }
}

/** Every known planned value must come back identical (core's "inconsistent result" check). */
export function expectConsistent(planned: TfObject | null, state: TfObject | null): void {
  expect(state).not.toBeNull();
  for (const [name, value] of Object.entries(planned ?? {})) {
    if (isUnknown(value)) expect([name, isUnknown(state?.[name])]).toEqual([name, false]);
    else if (Array.isArray(value) && Array.isArray(state?.[name])) expect([name, [...(state[name] as string[])].sort()]).toEqual([name, [...(value as string[])].sort()]);
    else expect([name, state?.[name]]).toEqual([name, value]);
  }
}

/** The attribute names of a diagnostic's path. */
export function pathOf(d: Diag | undefined): string[] {
  return (d?.attribute?.steps ?? []).map((s) => String(s['attribute_name'] ?? s['element_key_string'] ?? s['element_key_int']));
}
