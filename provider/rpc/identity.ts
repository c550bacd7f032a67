/** Resource identity data (tfplugin6 ResourceIdentityData) in and out of the framework. */
import type { TfObject } from '../codec/values.js';
import type { Diagnostic } from '../diagnostics.js';
import { identityOf, isCompleteIdentity } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, encodeObject } from './convert.js';
import type { RegisteredResource } from './server.js';

/** The identity object a request carries (`current_identity`, `prior_identity`, …), or null. */
export function decodeIdentity(resource: RegisteredResource, message: unknown, diags: Diagnostic[]): TfObject | null {
  const data = (message as { identity_data?: unknown } | undefined)?.identity_data;
  if (!resource.identityCty || data === undefined || data === null) return null;
  return decodeObject(data, resource.identityCty, 'the resource identity', diags) ?? null;
}

/**
 * The identity of a state or plan for a response, or nothing when it is not wholly known yet
 * (older CLIs ignore the field; a resource without identity sends none).
 */
export function identityField(resource: RegisteredResource, field: string, state: TfObject | null, diags: Diagnostic[]): ProtoMessage {
  if (!resource.identityCty || state === null) return {};
  const identity = identityOf(resource.type, state);
  if (!isCompleteIdentity(identity)) return {};
  return { [field]: { identity_data: encodeObject(identity, resource.identityCty, diags, 'the resource identity') } };
}
