/** ApplyResourceChange: create, update or delete through the framework's routing. */
import type { Diagnostic } from '../diagnostics.js';
import { applyResource } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import { identityField } from './identity.js';
import type { ProviderServer } from './server.js';

export async function applyResourceChange(server: ProviderServer, req: ProtoMessage): Promise<ProtoMessage> {
  const found = server.resources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const prior = decodeObject(req['prior_state'], found.cty, 'the prior state', diags);
  const planned = decodeObject(req['planned_state'], found.cty, 'the planned state', diags);
  const config = decodeObject(req['config'], found.cty, 'the resource configuration', diags);
  if (prior === undefined || planned === undefined || config === undefined) return withDiagnostics({}, diags);
  const result = await applyResource(found.type, { prior, planned, config }, server.context);
  diags.push(...result.diagnostics);
  return withDiagnostics(
    {
      new_state: encodeObject(result.state, found.cty, diags),
      private: req['planned_private'] ?? Buffer.alloc(0),
      ...identityField(found, 'new_identity', result.state, diags),
    },
    diags,
  );
}
