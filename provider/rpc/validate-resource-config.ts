/** ValidateResourceConfig: the resource's checks, and write-only attributes on CLIs without them. */
import type { Diagnostic } from '../diagnostics.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { capabilitiesOf, decodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import type { ProviderServer } from './server.js';

export function validateResourceConfig(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.resources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], found.cty, 'the resource configuration', diags);
  if (config) diags.push(...(found.type.definition.validate?.(config, capabilitiesOf(req)) ?? []));
  return withDiagnostics({}, diags);
}
