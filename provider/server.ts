/**
 * tfplugin6.Provider RPC handlers: protocol messages in, protocol messages out. Each handler
 * decodes its DynamicValues against the schema (a decode failure is an error diagnostic), calls
 * the provider or resource logic, and encodes the result. Nothing throws across gRPC: an
 * unexpected exception becomes an error diagnostic too.
 */
import { CodecError, ctyTypeJson, type CtyType, type PathStep } from './codec/cty.js';
import { decodeDynamicValue, decodeJsonValue, encodeDynamicValue, type DynamicValueMessage } from './codec/dynamic-value.js';
import { isObject, isWhollyKnown, type TfObject, type TfValue } from './codec/values.js';
import { errorDiag, hasErrors, type Diagnostic } from './diagnostics.js';
import { configureProvider, validateProviderConfig } from './provider-config.js';
import type { ProtoMessage } from './protocol/definitions.js';
import { log } from './protocol/log.js';
import { symmetricKeyDataSource } from './resources/data_source_symmetric_key.js';
import type { DataSource, ManagedResource, ProviderContext } from './resources/resource.js';
import { secretCiphertextResource } from './resources/secret_ciphertext.js';
import { symmetricKeyResource } from './resources/symmetric_key.js';
import { iamBindingResource } from './resources/symmetric_key_iam_binding.js';
import { iamMemberResource } from './resources/symmetric_key_iam_member.js';
import { impliedType, providerSchemas, type Schema, type SchemaBlock } from './schema.js';

/** Every managed resource type this provider serves, by type name. */
export const RESOURCES: ReadonlyMap<string, ManagedResource> = new Map(
  [symmetricKeyResource, iamBindingResource, iamMemberResource, secretCiphertextResource].map((r) => [r.typeName, r]),
);

/** Every data source type this provider serves, by type name. */
export const DATA_SOURCES: ReadonlyMap<string, DataSource> = new Map([symmetricKeyDataSource].map((d) => [d.typeName, d]));

const SEVERITY = { error: 1, warning: 2 } as const;
const NESTING = { single: 1, list: 2, set: 3, map: 4, group: 5 } as const;

/** A diagnostic as tfplugin6.Diagnostic. */
export function diagnosticToProto(d: Diagnostic): ProtoMessage {
  return {
    severity: SEVERITY[d.severity],
    summary: d.summary,
    ...(d.detail !== undefined && { detail: d.detail }),
    ...(d.path && d.path.length > 0 && { attribute: pathToProto(d.path) }),
  };
}

/** An attribute path as tfplugin6.AttributePath. */
export function pathToProto(path: readonly PathStep[]): ProtoMessage {
  return {
    steps: path.map((step) =>
      'attribute' in step ? { attribute_name: step.attribute } : 'key' in step ? { element_key_string: step.key } : { element_key_int: step.index },
    ),
  };
}

function blockToProto(block: SchemaBlock): ProtoMessage {
  const kind = (k: string | undefined): number => (k === 'markdown' ? 1 : 0);
  return {
    attributes: Object.entries(block.attributes ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, a]) => ({
        name,
        type: ctyTypeJson(a.type),
        description: a.description ?? '',
        description_kind: kind(a.description_kind),
        required: a.required === true,
        optional: a.optional === true,
        computed: a.computed === true,
        sensitive: a.sensitive === true,
        deprecated: a.deprecated === true,
      })),
    block_types: Object.entries(block.block_types ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, nb]) => ({
        type_name: name,
        block: blockToProto(nb.block),
        nesting: NESTING[nb.nesting_mode],
        min_items: nb.min_items ?? 0,
        max_items: nb.max_items ?? 0,
      })),
    description: block.description ?? '',
    description_kind: kind(block.description_kind),
    deprecated: block.deprecated === true,
  };
}

/** A schema as tfplugin6.Schema. */
export function schemaToProto(schema: Schema): ProtoMessage {
  return { version: schema.version, block: blockToProto(schema.block) };
}

const SERVER_CAPABILITIES = { get_provider_schema_optional: true, plan_destroy: false, move_resource_state: false };

/** Decode a DynamicValue; on failure return a diagnostic naming what could not be decoded. */
function decodeValue(message: unknown, type: CtyType, what: string): { value: TfValue } | { diagnostic: Diagnostic } {
  try {
    return { value: decodeDynamicValue(message as DynamicValueMessage | undefined, type) };
  } catch (err) {
    const path = err instanceof CodecError ? err.path : [];
    return { diagnostic: errorDiag(`Cannot decode ${what}`, (err as Error).message, path.length > 0 ? path : undefined) };
  }
}

function decodeObject(message: unknown, type: CtyType, what: string, diags: Diagnostic[]): TfObject | null | undefined {
  const decoded = decodeValue(message, type, what);
  if ('diagnostic' in decoded) {
    diags.push(decoded.diagnostic);
    return undefined;
  }
  if (decoded.value === null) return null;
  if (!isObject(decoded.value)) {
    diags.push(errorDiag(`Cannot decode ${what}`, 'expected an object'));
    return undefined;
  }
  return decoded.value;
}

function encodeState(state: TfObject | null, type: CtyType, diags: Diagnostic[]): ProtoMessage {
  try {
    return encodeDynamicValue(state, type);
  } catch (err) {
    diags.push(errorDiag('Cannot encode the new state', (err as Error).message));
    return encodeDynamicValue(null, type);
  }
}

function unknownResource(typeName: unknown): Diagnostic {
  return errorDiag('Unknown resource type', `The kms provider has no resource type ${JSON.stringify(typeName)}.`);
}

function unknownDataSource(typeName: unknown): Diagnostic {
  return errorDiag('Unknown data source', `The kms provider has no data source ${JSON.stringify(typeName)}.`);
}

function withDiagnostics(response: ProtoMessage, diags: Diagnostic[]): ProtoMessage {
  return { ...response, diagnostics: diags.map(diagnosticToProto) };
}

/** A unary handler on plain protocol objects. */
export type UnaryHandler = (request: ProtoMessage) => Promise<ProtoMessage>;

/**
 * Build the tfplugin6.Provider handlers. State (the configured client) lives in this closure:
 * one plugin process serves one provider configuration.
 */
export function createProviderHandlers(env: NodeJS.ProcessEnv = process.env): Record<string, UnaryHandler> {
  const ctx: ProviderContext = { client: undefined, folderId: undefined };
  const stop = new AbortController();
  const providerType = impliedType(providerSchemas.provider.block);
  const resourceTypes = new Map<string, CtyType>();
  for (const [name, resource] of RESOURCES) {
    const schema = providerSchemas.resource_schemas?.[name];
    if (!schema) throw new Error(`resource ${name} is missing from schemas/provider.schema.json`);
    resourceTypes.set(resource.typeName, impliedType(schema.block));
  }
  const dataTypes = new Map<string, CtyType>();
  for (const [name, dataSource] of DATA_SOURCES) {
    const schema = providerSchemas.data_source_schemas?.[name];
    if (!schema) throw new Error(`data source ${name} is missing from schemas/provider.schema.json`);
    dataTypes.set(dataSource.typeName, impliedType(schema.block));
  }
  const lookupData = (typeName: unknown): { dataSource: DataSource; type: CtyType } | undefined => {
    const dataSource = DATA_SOURCES.get(String(typeName));
    const type = dataTypes.get(String(typeName));
    return dataSource && type ? { dataSource, type } : undefined;
  };
  const lookup = (typeName: unknown): { resource: ManagedResource; type: CtyType } | undefined => {
    const resource = RESOURCES.get(String(typeName));
    const type = resourceTypes.get(String(typeName));
    return resource && type ? { resource, type } : undefined;
  };
  let schemaResponse: ProtoMessage | undefined;

  const handlers: Record<string, UnaryHandler> = {
    GetMetadata: () =>
      Promise.resolve({
        server_capabilities: SERVER_CAPABILITIES,
        resources: [...RESOURCES.keys()].map((type_name) => ({ type_name })),
        data_sources: [...DATA_SOURCES.keys()].map((type_name) => ({ type_name })),
        diagnostics: [],
      }),

    GetProviderSchema: () => {
      schemaResponse ??= {
        provider: schemaToProto(providerSchemas.provider),
        resource_schemas: Object.fromEntries(Object.entries(providerSchemas.resource_schemas ?? {}).map(([n, s]) => [n, schemaToProto(s)])),
        data_source_schemas: Object.fromEntries(Object.entries(providerSchemas.data_source_schemas ?? {}).map(([n, s]) => [n, schemaToProto(s)])),
        server_capabilities: SERVER_CAPABILITIES,
        diagnostics: [],
      };
      return Promise.resolve(schemaResponse);
    },

    ValidateProviderConfig: (req) => {
      const diags: Diagnostic[] = [];
      const config = decodeObject(req['config'], providerType, 'the provider configuration', diags);
      if (config) diags.push(...validateProviderConfig(config));
      return Promise.resolve(withDiagnostics({}, diags));
    },

    ConfigureProvider: async (req) => {
      const diags: Diagnostic[] = [];
      const config = decodeObject(req['config'], providerType, 'the provider configuration', diags);
      if (!config) return withDiagnostics({}, diags);
      const result = await configureProvider(config, env, stop.signal);
      ctx.client = result.context.client;
      ctx.folderId = result.context.folderId;
      return withDiagnostics({}, result.diagnostics);
    },

    ValidateResourceConfig: (req) => {
      const found = lookup(req['type_name']);
      if (!found) return Promise.resolve(withDiagnostics({}, [unknownResource(req['type_name'])]));
      const diags: Diagnostic[] = [];
      const config = decodeObject(req['config'], found.type, 'the resource configuration', diags);
      if (config) diags.push(...found.resource.validate(config));
      return Promise.resolve(withDiagnostics({}, diags));
    },

    ValidateDataResourceConfig: (req) => {
      const found = lookupData(req['type_name']);
      if (!found) return Promise.resolve(withDiagnostics({}, [unknownDataSource(req['type_name'])]));
      const diags: Diagnostic[] = [];
      const config = decodeObject(req['config'], found.type, 'the data source configuration', diags);
      if (config) diags.push(...found.dataSource.validate(config));
      return Promise.resolve(withDiagnostics({}, diags));
    },

    ReadDataSource: async (req) => {
      const found = lookupData(req['type_name']);
      if (!found) return withDiagnostics({}, [unknownDataSource(req['type_name'])]);
      const diags: Diagnostic[] = [];
      const config = decodeObject(req['config'], found.type, 'the data source configuration', diags);
      if (!config) {
        if (config === null) diags.push(errorDiag('Cannot read the data source', 'The configuration is null.'));
        return withDiagnostics({}, diags);
      }
      // Core reads a data source only once its config is wholly known (otherwise it waits for
      // apply), so an unknown here is a core bug, not a user error; refuse rather than guess.
      if (!isWhollyKnown(config)) {
        return withDiagnostics({}, [errorDiag('Cannot read the data source', 'Its configuration is not wholly known yet.')]);
      }
      const result = await found.dataSource.read(config, ctx);
      diags.push(...result.diagnostics);
      if (result.state === null || hasErrors(diags)) return withDiagnostics({}, diags);
      return withDiagnostics({ state: encodeState(result.state, found.type, diags) }, diags);
    },

    UpgradeResourceState: (req) => {
      const typeName = req['type_name'];
      const found = lookup(typeName);
      if (!found) return Promise.resolve(withDiagnostics({}, [unknownResource(typeName)]));
      const schema = providerSchemas.resource_schemas?.[String(typeName)];
      const version = typeof req['version'] === 'number' ? req['version'] : 0;
      if (schema && version > schema.version) {
        return Promise.resolve(
          withDiagnostics({}, [
            errorDiag('State written by a newer provider', `The state has schema version ${version}; this provider knows up to ${schema.version}. Upgrade the provider.`),
          ]),
        );
      }
      const raw = req['raw_state'] as { json?: Uint8Array; flatmap?: Record<string, string> } | undefined;
      if (!raw?.json || raw.json.length === 0) {
        const detail = raw?.flatmap && Object.keys(raw.flatmap).length > 0 ? 'Legacy flatmap state is not supported.' : 'The stored state is empty.';
        return Promise.resolve(withDiagnostics({}, [errorDiag('Cannot upgrade the resource state', detail)]));
      }
      const diags: Diagnostic[] = [];
      let state: TfValue;
      try {
        state = decodeJsonValue(raw.json, found.type);
      } catch (err) {
        const path = err instanceof CodecError && err.path.length > 0 ? err.path : undefined;
        return Promise.resolve(withDiagnostics({}, [errorDiag('Cannot decode the stored state', (err as Error).message, path)]));
      }
      const upgraded = encodeState(isObject(state) ? state : null, found.type, diags);
      return Promise.resolve(withDiagnostics({ upgraded_state: upgraded }, diags));
    },

    ReadResource: async (req) => {
      const found = lookup(req['type_name']);
      if (!found) return withDiagnostics({}, [unknownResource(req['type_name'])]);
      const diags: Diagnostic[] = [];
      const current = decodeObject(req['current_state'], found.type, 'the current state', diags);
      if (current === undefined) return withDiagnostics({}, diags);
      if (current === null) return withDiagnostics({ new_state: encodeState(null, found.type, diags) }, diags);
      const result = await found.resource.read(current, ctx);
      diags.push(...result.diagnostics);
      return withDiagnostics({ new_state: encodeState(result.state, found.type, diags), private: req['private'] ?? Buffer.alloc(0) }, diags);
    },

    PlanResourceChange: (req) => {
      const found = lookup(req['type_name']);
      if (!found) return Promise.resolve(withDiagnostics({}, [unknownResource(req['type_name'])]));
      const diags: Diagnostic[] = [];
      const prior = decodeObject(req['prior_state'], found.type, 'the prior state', diags);
      const proposed = decodeObject(req['proposed_new_state'], found.type, 'the proposed new state', diags);
      const config = decodeObject(req['config'], found.type, 'the resource configuration', diags);
      if (prior === undefined || proposed === undefined || config === undefined) return Promise.resolve(withDiagnostics({}, diags));
      const result = found.resource.plan({ prior, proposed, config }, ctx);
      diags.push(...result.diagnostics);
      if (hasErrors(diags)) return Promise.resolve(withDiagnostics({}, diags));
      return Promise.resolve(
        withDiagnostics(
          {
            planned_state: encodeState(result.planned, found.type, diags),
            requires_replace: result.requiresReplace.map(pathToProto),
            planned_private: req['prior_private'] ?? Buffer.alloc(0),
          },
          diags,
        ),
      );
    },

    ApplyResourceChange: async (req) => {
      const found = lookup(req['type_name']);
      if (!found) return withDiagnostics({}, [unknownResource(req['type_name'])]);
      const diags: Diagnostic[] = [];
      const prior = decodeObject(req['prior_state'], found.type, 'the prior state', diags);
      const planned = decodeObject(req['planned_state'], found.type, 'the planned state', diags);
      const config = decodeObject(req['config'], found.type, 'the resource configuration', diags);
      if (prior === undefined || planned === undefined || config === undefined) return withDiagnostics({}, diags);
      const result = await found.resource.apply({ prior, planned, config }, ctx);
      diags.push(...result.diagnostics);
      return withDiagnostics({ new_state: encodeState(result.state, found.type, diags), private: req['planned_private'] ?? Buffer.alloc(0) }, diags);
    },

    ImportResourceState: (req) => {
      const found = lookup(req['type_name']);
      if (!found) return Promise.resolve(withDiagnostics({}, [unknownResource(req['type_name'])]));
      const diags: Diagnostic[] = [];
      const result = found.resource.importState(typeof req['id'] === 'string' ? req['id'] : '', ctx);
      diags.push(...result.diagnostics);
      if (result.state === null) return Promise.resolve(withDiagnostics({}, diags));
      return Promise.resolve(
        withDiagnostics({ imported_resources: [{ type_name: found.resource.typeName, state: encodeState(result.state, found.type, diags) }] }, diags),
      );
    },

    GetFunctions: () => Promise.resolve({ functions: {}, diagnostics: [] }),

    StopProvider: () => {
      // Cancel in-flight daemon calls; core is interrupting (Ctrl-C).
      stop.abort();
      return Promise.resolve({});
    },
  };

  // Never throw across gRPC: an unexpected exception is still an error diagnostic.
  const guarded: Record<string, UnaryHandler> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    guarded[name] = async (request) => {
      const started = performance.now();
      try {
        const response = await handler(request);
        log('debug', `${name} done`, { rpc: name, ms: Math.round(performance.now() - started) });
        return response;
      } catch (err) {
        log('error', `${name} failed`, { rpc: name, error: (err as Error).stack ?? String(err) });
        if (name === 'StopProvider') return { Error: (err as Error).message };
        return withDiagnostics({}, [errorDiag('Internal provider error', `${name}: ${(err as Error).message}`)]);
      }
    };
  }
  return guarded;
}
