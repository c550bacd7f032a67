/**
 * Conversion between protocol messages and the framework's values: DynamicValue decoding and
 * encoding against schema types (a decode failure is a diagnostic, never an empty object),
 * diagnostics and attribute paths, schemas, client capabilities.
 */
import { CodecError, ctyTypeJson, type CtyType, type PathStep } from '../codec/cty.js';
import { decodeDynamicValue, encodeDynamicValue, type DynamicValueMessage } from '../codec/dynamic-value.js';
import { isObject, type TfObject, type TfValue } from '../codec/values.js';
import { errorDiag, type Diagnostic } from '../diagnostics.js';
import type { ClientCapabilities } from '../framework/context.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import type { IdentitySchema, Schema, SchemaBlock } from '../schema.js';

const SEVERITY = { error: 1, warning: 2 } as const;
const NESTING = { single: 1, list: 2, set: 3, map: 4, group: 5 } as const;

/** A diagnostic as tfplugin6.Diagnostic. */

/**
 * Name order for attributes and blocks: plain code-unit order. (localeCompare would load ICU's
 * collator, ≈5 ms of the first GetProviderSchema in every plugin process; core does not care
 * about the order, the names are ASCII.)
 */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
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
      .sort(([a], [b]) => byCodeUnit(a, b))
      .map(([name, a]) => ({
        name,
        type: ctyTypeJson(a.type),
        description: a.description ?? '',
        description_kind: kind(a.description_kind),
        required: a.required === true,
        optional: a.optional === true,
        computed: a.computed === true,
        sensitive: a.sensitive === true,
        write_only: a.write_only === true,
        deprecated: a.deprecated === true,
      })),
    block_types: Object.entries(block.block_types ?? {})
      .sort(([a], [b]) => byCodeUnit(a, b))
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

/** An identity schema as tfplugin6.ResourceIdentitySchema. */
export function identitySchemaToProto(schema: IdentitySchema): ProtoMessage {
  return {
    version: schema.version,
    identity_attributes: Object.entries(schema.attributes)
      .sort(([a], [b]) => byCodeUnit(a, b))
      .map(([name, a]) => ({
        name,
        type: ctyTypeJson(a.type),
        required_for_import: a.required_for_import === true,
        optional_for_import: a.optional_for_import === true,
        description: a.description ?? '',
      })),
  };
}

/** ClientCapabilities from a request (absent = an older CLI that has none). */
export function capabilitiesOf(request: ProtoMessage): ClientCapabilities {
  const caps = request['client_capabilities'] as { write_only_attributes_allowed?: boolean; deferral_allowed?: boolean } | undefined;
  return { writeOnlyAttributesAllowed: caps?.write_only_attributes_allowed === true, deferralAllowed: caps?.deferral_allowed === true };
}

/** Decode a DynamicValue; on failure return a diagnostic naming what could not be decoded. */
export function decodeValue(message: unknown, type: CtyType, what: string): { value: TfValue } | { diagnostic: Diagnostic } {
  try {
    return { value: decodeDynamicValue(message as DynamicValueMessage | undefined, type) };
  } catch (err) {
    const path = err instanceof CodecError ? err.path : [];
    return { diagnostic: errorDiag(`Cannot decode ${what}`, (err as Error).message, path.length > 0 ? path : undefined) };
  }
}

/** Decode an object DynamicValue: the object, null, or undefined with a diagnostic pushed. */
export function decodeObject(message: unknown, type: CtyType, what: string, diags: Diagnostic[]): TfObject | null | undefined {
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

/** Encode an object as a DynamicValue; a value that does not fit the schema is a diagnostic. */
export function encodeObject(value: TfObject | null, type: CtyType, diags: Diagnostic[], what = 'the new state'): ProtoMessage {
  try {
    return encodeDynamicValue(value, type);
  } catch (err) {
    diags.push(errorDiag(`Cannot encode ${what}`, (err as Error).message));
    return encodeDynamicValue(null, type);
  }
}

/** The response with its diagnostics as protocol messages. */
export function withDiagnostics(response: ProtoMessage, diags: readonly Diagnostic[]): ProtoMessage {
  return { ...response, diagnostics: diags.map(diagnosticToProto) };
}

/** The diagnostic for a type name this provider does not serve. */
export function unknownTypeDiag(kind: 'resource type' | 'data source' | 'ephemeral resource type', typeName: unknown): Diagnostic {
  return errorDiag(`Unknown ${kind}`, `The kms provider has no ${kind} ${JSON.stringify(typeName)}.`);
}
