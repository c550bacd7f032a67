/**
 * The provider schema. `schemas/provider.schema.json` (the `terraform providers schema -json`
 * document) is the single source: GetProviderSchema serves exactly it, the codec derives value
 * types from it and the CDKTF bindings are generated from it.
 *
 * The JSON is imported (not read from disk) so the esbuild bundle of the plugin is self-contained.
 */
import document from '../schemas/provider.schema.json' with { type: 'json' };
import { parseCtyType, type CtyType } from './codec/cty.js';

/** Source address the schema document is keyed by (and the one users put in `required_providers`). */
export const PROVIDER_ADDRESS = 'terraform.local/local/kms';

/** One attribute as written in the schema document. */
export interface SchemaAttribute {
  type: CtyType;
  description?: string;
  description_kind?: 'plain' | 'markdown';
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
  /** Terraform >= 1.11 / OpenTofu >= 1.11: taken from config only, never in plan or state. */
  write_only?: boolean;
  deprecated?: boolean;
}

/** One attribute of a resource identity (Terraform >= 1.12, OpenTofu >= 1.12). */
export interface IdentityAttribute {
  type: CtyType;
  description?: string;
  required_for_import?: boolean;
  optional_for_import?: boolean;
}

/** A resource identity schema, versioned separately from the resource schema. */
export interface IdentitySchema {
  version: number;
  attributes: Record<string, IdentityAttribute>;
}

/** A nested block type as written in the schema document. */
export interface SchemaNestedBlock {
  nesting_mode: 'single' | 'list' | 'set' | 'map' | 'group';
  block: SchemaBlock;
  min_items?: number;
  max_items?: number;
}

/** A block: attributes and nested blocks. */
export interface SchemaBlock {
  attributes?: Record<string, SchemaAttribute>;
  block_types?: Record<string, SchemaNestedBlock>;
  description?: string;
  description_kind?: 'plain' | 'markdown';
  deprecated?: boolean;
}

/** A versioned schema (provider, resource or data source). */
export interface Schema {
  version: number;
  block: SchemaBlock;
}

/** The part of the document that describes this provider. */
export interface ProviderSchemas {
  provider: Schema;
  resource_schemas?: Record<string, Schema>;
  data_source_schemas?: Record<string, Schema>;
  ephemeral_resource_schemas?: Record<string, Schema>;
  resource_identity_schemas?: Record<string, IdentitySchema>;
}

function checkBlock(block: SchemaBlock): SchemaBlock {
  for (const attr of Object.values(block.attributes ?? {})) attr.type = parseCtyType(attr.type);
  for (const nested of Object.values(block.block_types ?? {})) checkBlock(nested.block);
  return block;
}

function loadProviderSchemas(): ProviderSchemas {
  const all = (document as unknown as { provider_schemas?: Record<string, ProviderSchemas> }).provider_schemas;
  const mine = all?.[PROVIDER_ADDRESS];
  if (!mine) throw new Error(`schemas/provider.schema.json has no provider_schemas["${PROVIDER_ADDRESS}"]`);
  checkBlock(mine.provider.block);
  for (const s of Object.values(mine.resource_schemas ?? {})) checkBlock(s.block);
  for (const s of Object.values(mine.data_source_schemas ?? {})) checkBlock(s.block);
  for (const s of Object.values(mine.ephemeral_resource_schemas ?? {})) checkBlock(s.block);
  for (const s of Object.values(mine.resource_identity_schemas ?? {})) {
    for (const attr of Object.values(s.attributes)) attr.type = parseCtyType(attr.type);
  }
  return mine;
}

/** The schemas of this provider, checked once at load. */
export const providerSchemas: ProviderSchemas = loadProviderSchemas();

/** The cty object type a block implies (what a DynamicValue of that block decodes to). */
export function impliedType(block: SchemaBlock): CtyType {
  const attrs: Record<string, CtyType> = {};
  for (const [name, attr] of Object.entries(block.attributes ?? {})) attrs[name] = attr.type;
  for (const [name, nested] of Object.entries(block.block_types ?? {})) {
    const inner = impliedType(nested.block);
    switch (nested.nesting_mode) {
      case 'single':
      case 'group':
        attrs[name] = inner;
        break;
      case 'list':
      case 'set':
      case 'map':
        attrs[name] = [nested.nesting_mode, inner];
        break;
    }
  }
  return ['object', attrs];
}

/** The cty object type of an identity schema. */
export function identityType(schema: IdentitySchema): CtyType {
  const attrs: Record<string, CtyType> = {};
  for (const [name, attr] of Object.entries(schema.attributes)) attrs[name] = attr.type;
  return ['object', attrs];
}

/** The schema of a managed resource type, or undefined when the provider has no such type. */
export function resourceSchema(typeName: string): Schema | undefined {
  return providerSchemas.resource_schemas?.[typeName];
}
