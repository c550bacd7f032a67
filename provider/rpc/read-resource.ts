/** ReadResource: refresh one instance (null = gone, core then plans a create). */
import type { Diagnostic } from '../diagnostics.js';
import { readResource as read } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import { identityField } from './identity.js';
import type { ProviderServer } from './server.js';

export async function readResource(server: ProviderServer, req: ProtoMessage): Promise<ProtoMessage> {
  const found = server.resources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const current = decodeObject(req['current_state'], found.cty, 'the current state', diags);
  if (current === undefined) return withDiagnostics({}, diags);
  if (current === null) return withDiagnostics({ new_state: encodeObject(null, found.cty, diags) }, diags);
  const result = await read(found.type, current, server.context);
  diags.push(...result.diagnostics);
  return withDiagnostics(
    {
      new_state: encodeObject(result.state, found.cty, diags),
      private: req['private'] ?? Buffer.alloc(0),
      ...identityField(found, 'new_identity', result.state, diags),
    },
    diags,
  );
}
