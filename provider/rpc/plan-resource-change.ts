/** PlanResourceChange: the framework's plan, encoded, with the planned identity. */
import { hasErrors, type Diagnostic } from '../diagnostics.js';
import { planResource } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, encodeObject, pathToProto, unknownTypeDiag, withDiagnostics } from './convert.js';
import { decodeIdentity, identityField } from './identity.js';
import type { ProviderServer } from './server.js';

export function planResourceChange(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.resources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const prior = decodeObject(req['prior_state'], found.cty, 'the prior state', diags);
  const proposed = decodeObject(req['proposed_new_state'], found.cty, 'the proposed new state', diags);
  const config = decodeObject(req['config'], found.cty, 'the resource configuration', diags);
  const priorIdentity = decodeIdentity(found, req['prior_identity'], diags);
  if (prior === undefined || proposed === undefined || config === undefined) return withDiagnostics({}, diags);
  const result = planResource(found.type, { prior, proposed, config }, server.context);
  diags.push(...result.diagnostics);
  if (hasErrors(diags)) return withDiagnostics({}, diags);
  // An identity never changes in place: an update keeps the prior one. A create sends one only
  // when it is wholly known (OpenTofu cannot write a plan file holding an unknown identity).
  const identity =
    priorIdentity && found.identityCty && result.planned !== null && result.requiresReplace.length === 0
      ? { planned_identity: { identity_data: encodeObject(priorIdentity, found.identityCty, diags, 'the resource identity') } }
      : identityField(found, 'planned_identity', result.planned, diags);
  return withDiagnostics(
    {
      planned_state: encodeObject(result.planned, found.cty, diags, 'the planned state'),
      requires_replace: result.requiresReplace.map(pathToProto),
      planned_private: req['prior_private'] ?? Buffer.alloc(0),
      ...identity,
    },
    diags,
  );
}
