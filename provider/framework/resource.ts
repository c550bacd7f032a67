/**
 * Managed resources: the definition a resource file writes, and the plan/apply/read/import
 * plumbing written once for all of them (PROTOCOL.md "What core checks").
 *
 * A resource declares its defaults, the attributes that force replacement, semantic equality of
 * attributes (durations), and its identity; it implements only what talks to the daemon:
 * create, read, update, delete, import. The framework
 *   - plans: copies the proposal, nulls write-only attributes, applies defaults, marks
 *     computed-only attributes unknown on create and replacement and keeps them otherwise,
 *     compares config with prior for RequiresReplace (semantically), keeps the prior spelling of
 *     semantically equal values, then calls the resource's `modifyPlan`;
 *   - routes apply to create (prior null), update, or delete (planned null);
 *   - reads: keeps the current spelling of semantically equal values the daemon returns;
 *   - returns null for every write-only attribute in every state it hands back to core.
 */
import type { PathStep } from '../codec/cty.js';
import { isUnknown, UNKNOWN, valuesEqual, type TfObject, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, hasErrors, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import { providerSchemas, type IdentitySchema, type Schema } from '../schema.js';
import type { ClientCapabilities, ConfiguredContext, ProviderContext } from './context.js';
import { ok, type Result } from './result.js';

/** True when two values of one attribute mean the same (e.g. "24h" and "1440m"). */
export type SemanticEquality = (a: string, b: string) => boolean;

/** What `modifyPlan` may adjust: `planned` is the framework's plan, to be edited in place. */
export interface PlanModification<S extends TfObject, C extends TfObject> {
  prior: S | null;
  config: C;
  planned: C;
  /** Attribute paths that force replacement; the hook may add more. */
  requiresReplace: PathStep[][];
}

/** One managed resource type: its rules and its calls to the daemon. */
export interface ResourceDefinition<S extends TfObject = TfObject, C extends TfObject = TfObject> {
  readonly typeName: string;
  /** Known defaults planned for optional+computed attributes whose config is null. */
  readonly defaults?: Partial<S>;
  /** Defaults planned only on create; on update a null config keeps the prior value. */
  readonly createDefaults?: Partial<S>;
  /** Attributes whose configured value differing from the prior one replaces the resource. */
  readonly requiresReplace?: readonly (keyof S & string)[];
  /** Per-attribute semantic equality of string values. */
  readonly semanticEquality?: Readonly<Partial<Record<keyof S & string, SemanticEquality>>>;
  /** State attributes that make up the resource identity (same names in the identity schema). */
  readonly identity?: readonly (keyof S & string)[];
  /** Checks without the daemon; unknown values are skipped. */
  validate?(config: C, capabilities: ClientCapabilities): Diagnostic[];
  /** Resource-specific planning after the framework's (e.g. a default from the provider block). */
  modifyPlan?(plan: PlanModification<S, C>, ctx: ProviderContext): Diagnostic[];
  create(request: { planned: C; config: C }, ctx: ConfiguredContext): Promise<Result<S | null>>;
  /** The current remote object, or null when it is gone (core then plans a create). */
  read(current: S, ctx: ConfiguredContext): Promise<Result<S | null>>;
  /** Without it, an in-place update only records the plan (every real change replaces). */
  update?(request: { prior: S; planned: C; config: C }, ctx: ConfiguredContext): Promise<Result<S>>;
  delete(prior: S, ctx: ConfiguredContext): Promise<Diagnostic[]>;
  /** The state for an import id (core reads it next), or null with diagnostics. */
  importState?(id: string): Result<S | null>;
}

/** A resource definition with what the framework derives from its schema, built once. */
export interface ResourceType {
  readonly definition: ResourceDefinition;
  readonly schema: Schema;
  readonly identitySchema: IdentitySchema | undefined;
  readonly attributes: readonly string[];
  readonly writeOnly: readonly string[];
  readonly computedOnly: readonly string[];
  readonly optionalComputed: ReadonlySet<string>;
}

/** Derive the framework's view of a resource from its schema. */
export function resourceType(definition: ResourceDefinition, schema: Schema, identitySchema?: IdentitySchema): ResourceType {
  const attrs = Object.entries(schema.block.attributes ?? {});
  const def = definition;
  for (const name of [...(def.requiresReplace ?? []), ...Object.keys(def.defaults ?? {}), ...(def.identity ?? [])]) {
    if (!attrs.some(([n]) => n === name)) throw new Error(`${def.typeName}: ${name} is not an attribute of its schema`);
  }
  if ((def.identity !== undefined) !== (identitySchema !== undefined)) {
    throw new Error(`${def.typeName}: identity attributes and resource_identity_schemas disagree`);
  }
  return {
    definition: def,
    schema,
    identitySchema,
    attributes: attrs.map(([n]) => n),
    writeOnly: attrs.filter(([, a]) => a.write_only === true).map(([n]) => n),
    computedOnly: attrs.filter(([, a]) => a.computed === true && a.optional !== true).map(([n]) => n),
    optionalComputed: new Set(attrs.filter(([, a]) => a.computed === true && a.optional === true).map(([n]) => n)),
  };
}

/** An object of the resource's schema with every attribute null. */
export function nullObject(type: ResourceType): TfObject {
  return Object.fromEntries(type.attributes.map((n) => [n, null]));
}

/** Core requires null for every write-only attribute in plan and state. */
export function withoutWriteOnly<T extends TfObject | null>(type: ResourceType, state: T): T {
  if (state === null || type.writeOnly.length === 0) return state;
  const out: TfObject = { ...state };
  for (const name of type.writeOnly) out[name] = null;
  return out as T;
}

function semanticallyEqual(type: ResourceType, name: string, a: TfValue | undefined, b: TfValue | undefined): boolean {
  const eq = (type.definition.semanticEquality)?.[name];
  if (eq && typeof a === 'string' && typeof b === 'string') return eq(a, b);
  return valuesEqual(a ?? null, b ?? null);
}

/** PlanResourceChange input. `proposed` is null when the resource is being destroyed. */
export interface PlanRequest {
  prior: TfObject | null;
  proposed: TfObject | null;
  config: TfObject | null;
}

/** PlanResourceChange output. */
export interface PlanResult {
  planned: TfObject | null;
  requiresReplace: PathStep[][];
  diagnostics: Diagnostic[];
}

/** PlanResourceChange, for any resource. */
export function planResource(type: ResourceType, request: PlanRequest, ctx: ProviderContext): PlanResult {
  const { prior, proposed, config } = request;
  const def = type.definition;
  const requiresReplace: PathStep[][] = [];
  if (proposed === null || config === null) return { planned: null, requiresReplace, diagnostics: [] };
  const planned: TfObject = withoutWriteOnly(type, { ...proposed });
  for (const [name, value] of Object.entries(def.defaults ?? {})) if (config[name] === null) planned[name] = value as TfValue;

  if (prior === null) {
    for (const name of type.computedOnly) planned[name] = UNKNOWN;
    for (const [name, value] of Object.entries(def.createDefaults ?? {})) if (config[name] === null) planned[name] = value as TfValue;
  } else {
    for (const name of def.requiresReplace ?? []) {
      // An optional+computed attribute left unset keeps its prior value: no change.
      if (type.optionalComputed.has(name) && config[name] === null) continue;
      if (!semanticallyEqual(type, name, config[name], prior[name])) requiresReplace.push(attrPath(name));
    }
    for (const name of Object.keys(def.semanticEquality ?? {})) {
      if (config[name] !== null && semanticallyEqual(type, name, config[name], prior[name])) planned[name] = prior[name] ?? null;
    }
    // A replacement gets new computed values (core plans it again with a null prior).
    if (requiresReplace.length > 0) for (const name of type.computedOnly) planned[name] = UNKNOWN;
  }
  const diagnostics = def.modifyPlan?.({ prior, config, planned, requiresReplace }, ctx) ?? [];
  return { planned: withoutWriteOnly(type, planned), requiresReplace, diagnostics };
}

/** ApplyResourceChange input: create (prior null), update, or delete (planned null). */
export interface ApplyRequest {
  prior: TfObject | null;
  planned: TfObject | null;
  config: TfObject | null;
}

/** New state (null = gone) and diagnostics. */
export interface StateResult {
  state: TfObject | null;
  diagnostics: Diagnostic[];
}

/** ApplyResourceChange, for any resource: routes to create, update or delete. */
export async function applyResource(type: ResourceType, request: ApplyRequest, ctx: ProviderContext): Promise<StateResult> {
  const { prior, planned, config } = request;
  const def = type.definition;
  if (!ctx.client) return { state: prior, diagnostics: [notConfiguredDiag()] };
  const configured = { ...ctx, client: ctx.client };
  if (planned === null) {
    if (prior === null) return { state: null, diagnostics: [] };
    const diagnostics = await def.delete(prior, configured);
    return { state: hasErrors(diagnostics) ? withoutWriteOnly(type, prior) : null, diagnostics };
  }
  // Write-only values are only in the configuration: hand it over whole.
  const cfg = config ?? planned;
  let result: Result<TfObject | null>;
  if (prior === null) result = await def.create({ planned, config: cfg }, configured);
  else if (def.update) result = await def.update({ prior, planned, config: cfg }, configured);
  else result = ok(planned);
  return { state: withoutWriteOnly(type, result.value), diagnostics: result.diagnostics };
}

/** ReadResource, for any resource: keeps the current spelling of semantically equal values. */
export async function readResource(type: ResourceType, current: TfObject, ctx: ProviderContext): Promise<StateResult> {
  if (!ctx.client) return { state: current, diagnostics: [notConfiguredDiag()] };
  const result = await type.definition.read(current, { ...ctx, client: ctx.client });
  const state = result.value;
  if (state !== null) {
    for (const name of Object.keys(type.definition.semanticEquality ?? {})) {
      if (semanticallyEqual(type, name, current[name], state[name])) state[name] = current[name] ?? null;
    }
  }
  return { state: withoutWriteOnly(type, state), diagnostics: result.diagnostics };
}

/** ImportResourceState by id. */
export function importResource(type: ResourceType, id: string): StateResult {
  const def = type.definition;
  if (!def.importState) {
    return { state: null, diagnostics: [errorDiag('Import not supported', `${def.typeName} cannot be imported.`)] };
  }
  const result = def.importState(id);
  return { state: withoutWriteOnly(type, result.value), diagnostics: result.diagnostics };
}

/** ImportResourceState by identity (Terraform/OpenTofu >= 1.12 `import { identity = {…} }`). */
export function importResourceByIdentity(type: ResourceType, identity: TfObject): StateResult {
  const def = type.definition;
  if (!def.identity || !type.identitySchema) {
    return { state: null, diagnostics: [errorDiag('Import by identity not supported', `${def.typeName} has no resource identity; import it by id.`)] };
  }
  const diagnostics: Diagnostic[] = [];
  const state = nullObject(type);
  for (const [name, attr] of Object.entries(type.identitySchema.attributes)) {
    const value = identity[name];
    if (attr.required_for_import && (typeof value !== 'string' || value.trim() === '')) {
      diagnostics.push(errorDiag('Invalid import identity', `identity.${name} must be a non-empty string.`, attrPath(name)));
    }
    state[name] = value ?? null;
  }
  if (diagnostics.length > 0) return { state: null, diagnostics };
  // The import id check also validates the parts (e.g. the role of a binding).
  if (def.importState) {
    const checked = def.importState(def.identity.map((n) => { const v = state[n]; return typeof v === 'string' ? v : ''; }).join(','));
    if (checked.value === null) return { state: null, diagnostics: checked.diagnostics };
    return { state: withoutWriteOnly(type, checked.value), diagnostics: checked.diagnostics };
  }
  return { state, diagnostics };
}

/** The identity object of a state or plan (values may be unknown in a plan). */
export function identityOf(type: ResourceType, state: TfObject | null): TfObject | null {
  if (!type.definition.identity || state === null) return null;
  return Object.fromEntries(type.definition.identity.map((n) => [n, state[n] ?? null]));
}

/** True when every identity value is known and non-null (what core stores). */
export function isCompleteIdentity(identity: TfObject | null): identity is TfObject {
  return identity !== null && Object.values(identity).every((v) => v !== null && !isUnknown(v));
}

/** Type a resource definition against its generated models, then erase them for the registry. */
export function defineResource<S extends TfObject, C extends TfObject>(definition: ResourceDefinition<S, C>): ResourceDefinition {
  return definition;
}

const types = new WeakMap<ResourceDefinition, ResourceType>();

/** The framework's view of a definition, from the provider schema document (cached). */
export function resourceTypeOf(definition: ResourceDefinition): ResourceType {
  let type = types.get(definition);
  if (!type) {
    const schema = providerSchemas.resource_schemas?.[definition.typeName];
    if (!schema) throw new Error(`resource ${definition.typeName} is missing from schemas/provider.schema.json`);
    type = resourceType(definition, schema, providerSchemas.resource_identity_schemas?.[definition.typeName]);
    types.set(definition, type);
  }
  return type;
}
