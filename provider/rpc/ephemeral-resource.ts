/**
 * ValidateEphemeralResourceConfig, OpenEphemeralResource, RenewEphemeralResource and
 * CloseEphemeralResource. Results carry no renew_at and no private data: each open is
 * self-contained, so renew and close have nothing to do.
 */
import { isUnknown, isWhollyKnown, UNKNOWN, type TfObject } from '../codec/values.js';
import { hasErrors, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { providerSchemas } from '../schema.js';
import { decodeObject, encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import type { ProviderServer } from './server.js';

export function validateEphemeralResourceConfig(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.ephemeralResources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('ephemeral resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], found.cty, 'the ephemeral resource configuration', diags);
  if (config) diags.push(...(found.definition.validate?.(config) ?? []));
  return withDiagnostics({}, diags);
}

/** A result for a config that is not known yet: configured values, every computed one unknown. */
function unknownResult(typeName: string, config: TfObject): TfObject {
  const out: TfObject = { ...config };
  for (const [name, attr] of Object.entries(providerSchemas.ephemeral_resource_schemas?.[typeName]?.block.attributes ?? {})) {
    if (attr.computed && (out[name] === null || isUnknown(out[name]))) out[name] = UNKNOWN;
  }
  return out;
}

export async function openEphemeralResource(server: ProviderServer, req: ProtoMessage): Promise<ProtoMessage> {
  const typeName = String(req['type_name']);
  const found = server.ephemeralResources.get(typeName);
  if (!found) return withDiagnostics({}, [unknownTypeDiag('ephemeral resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], found.cty, 'the ephemeral resource configuration', diags);
  if (!config) return withDiagnostics({}, diags);
  if (!isWhollyKnown(config)) return withDiagnostics({ result: encodeObject(unknownResult(typeName, config), found.cty, diags, 'the result') }, diags);
  const client = server.context.client;
  if (!client) return withDiagnostics({}, [notConfiguredDiag()]);
  const result = await found.definition.open(config, { ...server.context, client });
  diags.push(...result.diagnostics);
  if (result.value === null || hasErrors(diags)) return withDiagnostics({}, diags);
  return withDiagnostics({ result: encodeObject(result.value, found.cty, diags, 'the result') }, diags);
}

export function renewEphemeralResource(): ProtoMessage {
  return { diagnostics: [] };
}

export function closeEphemeralResource(): ProtoMessage {
  return { diagnostics: [] };
}
