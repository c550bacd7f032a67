/** GetMetadata, GetProviderSchema, GetResourceIdentitySchemas and GetFunctions. */
import type { ProtoMessage } from '../protocol/definitions.js';
import { providerSchemas } from '../schema.js';
import { identitySchemaToProto, schemaToProto } from './convert.js';
import type { ProviderServer } from './server.js';

/** Core may cache the schema across plugin processes of one command; we plan no destroys. */
export const SERVER_CAPABILITIES = { get_provider_schema_optional: true, plan_destroy: false, move_resource_state: false };

/** GetMetadata: the type names only. */
export function getMetadata(server: ProviderServer): ProtoMessage {
  return {
    server_capabilities: SERVER_CAPABILITIES,
    resources: [...server.resources.keys()].map((type_name) => ({ type_name })),
    data_sources: [...server.dataSources.keys()].map((type_name) => ({ type_name })),
    ephemeral_resources: [...server.ephemeralResources.keys()].map((type_name) => ({ type_name })),
    diagnostics: [],
  };
}

let schemaResponse: ProtoMessage | undefined;

/** GetProviderSchema: exactly schemas/provider.schema.json (built once per process). */
export function getProviderSchema(): ProtoMessage {
  const map = (schemas: Record<string, Parameters<typeof schemaToProto>[0]> | undefined): ProtoMessage =>
    Object.fromEntries(Object.entries(schemas ?? {}).map(([n, s]) => [n, schemaToProto(s)]));
  schemaResponse ??= {
    provider: schemaToProto(providerSchemas.provider),
    resource_schemas: map(providerSchemas.resource_schemas),
    data_source_schemas: map(providerSchemas.data_source_schemas),
    ephemeral_resource_schemas: map(providerSchemas.ephemeral_resource_schemas),
    server_capabilities: SERVER_CAPABILITIES,
    diagnostics: [],
  };
  return schemaResponse;
}

/** GetResourceIdentitySchemas (Terraform >= 1.12, OpenTofu >= 1.12). */
export function getResourceIdentitySchemas(): ProtoMessage {
  return {
    identity_schemas: Object.fromEntries(Object.entries(providerSchemas.resource_identity_schemas ?? {}).map(([n, s]) => [n, identitySchemaToProto(s)])),
    diagnostics: [],
  };
}

/** GetFunctions: none. */
export function getFunctions(): ProtoMessage {
  return { functions: {}, diagnostics: [] };
}
