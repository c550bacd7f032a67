/**
 * The state one plugin process keeps across RPCs: the registered types with their cty types
 * (derived once from the schema document), the configured client and the stop signal. One
 * plugin process serves one provider configuration.
 */
import type { CtyType } from '../codec/cty.js';
import type { ProviderContext } from '../framework/context.js';
import type { DataSourceDefinition } from '../framework/data-source.js';
import type { EphemeralResourceDefinition } from '../framework/ephemeral.js';
import { resourceTypeOf, type ResourceDefinition, type ResourceType } from '../framework/resource.js';
import { identityType, impliedType, providerSchemas } from '../schema.js';

/** A managed resource type with its value and identity types. */
export interface RegisteredResource {
  type: ResourceType;
  cty: CtyType;
  identityCty: CtyType | undefined;
}

/** A data source or ephemeral resource with its value type. */
export interface Registered<D> {
  definition: D;
  cty: CtyType;
}

/** Everything the RPC handlers share. */
export class ProviderServer {
  readonly context: ProviderContext = { client: undefined, folderId: undefined };
  readonly stop = new AbortController();
  readonly providerCty: CtyType = impliedType(providerSchemas.provider.block);
  readonly resources = new Map<string, RegisteredResource>();
  readonly dataSources = new Map<string, Registered<DataSourceDefinition>>();
  readonly ephemeralResources = new Map<string, Registered<EphemeralResourceDefinition>>();

  constructor(
    readonly env: NodeJS.ProcessEnv,
    resources: readonly ResourceDefinition[],
    dataSources: readonly DataSourceDefinition[],
    ephemeralResources: readonly EphemeralResourceDefinition[],
  ) {
    for (const definition of resources) {
      const type = resourceTypeOf(definition);
      this.resources.set(definition.typeName, {
        type,
        cty: impliedType(type.schema.block),
        identityCty: type.identitySchema ? identityType(type.identitySchema) : undefined,
      });
    }
    for (const definition of dataSources) {
      const schema = providerSchemas.data_source_schemas?.[definition.typeName];
      if (!schema) throw new Error(`data source ${definition.typeName} is missing from schemas/provider.schema.json`);
      this.dataSources.set(definition.typeName, { definition, cty: impliedType(schema.block) });
    }
    for (const definition of ephemeralResources) {
      const schema = providerSchemas.ephemeral_resource_schemas?.[definition.typeName];
      if (!schema) throw new Error(`ephemeral resource ${definition.typeName} is missing from schemas/provider.schema.json`);
      this.ephemeralResources.set(definition.typeName, { definition, cty: impliedType(schema.block) });
    }
  }
}
