/** ImportResourceState: by id (`terraform import`, `import { id }`) or by identity (>= 1.12). */
import type { Diagnostic } from '../diagnostics.js';
import { importResource, importResourceByIdentity } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import { decodeIdentity, identityField } from './identity.js';
import type { ProviderServer } from './server.js';

export function importResourceState(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.resources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const identity = decodeIdentity(found, req['identity'], diags);
  const id = typeof req['id'] === 'string' ? req['id'] : '';
  const result = identity !== null && id === '' ? importResourceByIdentity(found.type, identity) : importResource(found.type, id);
  diags.push(...result.diagnostics);
  if (result.state === null) return withDiagnostics({}, diags);
  return withDiagnostics(
    {
      imported_resources: [
        {
          type_name: found.type.definition.typeName,
          state: encodeObject(result.state, found.cty, diags),
          ...identityField(found, 'identity', result.state, diags),
        },
      ],
    },
    diags,
  );
}
