/**
 * The contract between the RPC layer (provider/server.ts) and one managed resource type. The RPC
 * layer decodes and type-checks values against the schema, so a resource sees whole objects with
 * exactly its schema's attributes, and returns values plus diagnostics — it never throws for
 * anything a user can cause.
 */
import type { KmsClient } from '../client/kms-client.js';
import type { PathStep } from '../codec/cty.js';
import type { TfObject, UnknownValue } from '../codec/values.js';
import type { Diagnostic } from '../diagnostics.js';

/** What ConfigureProvider established; handed to every resource call. */
export interface ProviderContext {
  /** Undefined until ConfigureProvider succeeded (or when its config was not yet known). */
  client: KmsClient | undefined;
  /** Default folder for resources that do not set folder_id; unknown while the provider config is. */
  folderId: string | UnknownValue | undefined;
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

/** One managed resource type. */
export interface ManagedResource {
  readonly typeName: string;
  validate(config: TfObject): Diagnostic[];
  plan(request: PlanRequest, ctx: ProviderContext): PlanResult;
  apply(request: ApplyRequest, ctx: ProviderContext): Promise<StateResult>;
  read(current: TfObject, ctx: ProviderContext): Promise<StateResult>;
  importState(id: string, ctx: ProviderContext): StateResult;
}

/** One data source type. The RPC layer only calls `read` with a wholly known config. */
export interface DataSource {
  readonly typeName: string;
  validate(config: TfObject): Diagnostic[];
  read(config: TfObject, ctx: ProviderContext): Promise<StateResult>;
}
