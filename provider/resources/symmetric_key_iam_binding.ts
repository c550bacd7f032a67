/**
 * `kms_symmetric_key_iam_binding`: authoritative for one role on one key. Apply reads the key's
 * bindings and sends the ADD/REMOVE deltas that leave exactly the configured members holding the
 * role; bindings of other roles are never touched. Read reports the role's current holders, so
 * changes made outside Terraform show as drift.
 */
import { GrpcCode, KmsApiError, type KmsClient } from '../client/kms-client.js';
import type { PathStep } from '../codec/cty.js';
import { UNKNOWN, valuesEqual, type TfObject } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import { bindingId, memberProblem, membersOfRole, parseImportId, roleDeltas, str, validateKeyAndRole } from './key_access.js';
import type { ApplyRequest, ManagedResource, PlanRequest, PlanResult, ProviderContext, StateResult } from './resource.js';

/** Terraform type name. */
export const IAM_BINDING_TYPE = 'kms_symmetric_key_iam_binding';

/** Attributes whose change replaces the binding (a different key or role is a different binding). */
const FORCE_NEW = ['symmetric_key_id', 'role'] as const;

function isNotFound(err: unknown): boolean {
  return err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND;
}

/** The known members of a set value; unknown elements are skipped. */
function memberList(value: TfObject[string] | undefined): string[] {
  return Array.isArray(value) ? value.filter((m): m is string => typeof m === 'string') : [];
}

/** Config validation: role and every member; unknown values are skipped. */
export function validateIamBindingConfig(config: TfObject): Diagnostic[] {
  const diags = validateKeyAndRole(config);
  // Set elements have no attribute-path step in the protocol, so the path stops at `members`
  // and the detail names the element.
  for (const member of memberList(config['members'])) {
    const problem = memberProblem(member);
    if (problem) diags.push(errorDiag('Invalid member', problem, attrPath('members')));
  }
  return diags;
}

/** PlanResourceChange: members change in place; a different key or role is a replacement. */
export function planIamBinding(request: PlanRequest): PlanResult {
  const { prior, proposed, config } = request;
  const requiresReplace: PathStep[][] = [];
  if (proposed === null || config === null) return { planned: null, requiresReplace, diagnostics: [] };
  const planned: TfObject = { ...proposed };
  const keyId = str(config['symmetric_key_id']);
  const role = str(config['role']);
  // The id follows from two inputs; plan it known whenever they are, so nothing waits for apply.
  planned['id'] = keyId !== undefined && role !== undefined ? bindingId(keyId, role) : UNKNOWN;
  if (prior !== null) {
    for (const name of FORCE_NEW) {
      if (!valuesEqual(config[name] ?? null, prior[name] ?? null)) requiresReplace.push(attrPath(name));
    }
  }
  return { planned, requiresReplace, diagnostics: [] };
}

/** Make exactly `members` hold `role` on the key. */
async function reconcileRole(client: KmsClient, keyId: string, role: string, members: readonly string[]): Promise<void> {
  const deltas = roleDeltas(await client.listKeyAccessBindings(keyId), role, members);
  if (deltas.length > 0) await client.updateKeyAccessBindings(keyId, deltas);
}

async function applyIamBinding(request: ApplyRequest, ctx: ProviderContext): Promise<StateResult> {
  const { prior, planned } = request;
  const client = ctx.client;
  if (!client) return { state: prior, diagnostics: [notConfiguredDiag()] };
  const target = planned ?? prior;
  const keyId = str(target?.['symmetric_key_id']);
  const role = str(target?.['role']);
  if (keyId === undefined || role === undefined) {
    return { state: prior, diagnostics: [errorDiag('Missing symmetric_key_id or role', 'The binding has no known key id and role at apply time.')] };
  }
  if (planned === null) {
    try {
      await reconcileRole(client, keyId, role, []);
    } catch (err) {
      // The key is gone, and its bindings with it.
      if (isNotFound(err)) return { state: null, diagnostics: [] };
      return { state: prior, diagnostics: [failureDiag(`Cannot remove the ${role} binding of key ${keyId}`, err)] };
    }
    return { state: null, diagnostics: [] };
  }
  const members = planned['members'];
  if (!Array.isArray(members) || members.some((m) => typeof m !== 'string')) {
    return { state: prior, diagnostics: [errorDiag('Unknown members', 'members is not wholly known at apply time.', attrPath('members'))] };
  }
  try {
    await reconcileRole(client, keyId, role, memberList(members));
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.INVALID_ARGUMENT ? attrPath('members') : undefined;
    return { state: prior, diagnostics: [failureDiag(`Cannot set the ${role} binding of key ${keyId}`, err, path)] };
  }
  return { state: { ...planned, id: bindingId(keyId, role) }, diagnostics: [] };
}

async function readIamBinding(current: TfObject, ctx: ProviderContext): Promise<StateResult> {
  if (!ctx.client) return { state: current, diagnostics: [notConfiguredDiag()] };
  const keyId = str(current['symmetric_key_id']);
  const role = str(current['role']);
  if (keyId === undefined || role === undefined) return { state: null, diagnostics: [] };
  try {
    const members = membersOfRole(await ctx.client.listKeyAccessBindings(keyId), role);
    // A role with no holders stays in state with no members: the next plan adds them back.
    return { state: { ...current, id: bindingId(keyId, role), members }, diagnostics: [] };
  } catch (err) {
    // The key was deleted outside Terraform: the binding went with it.
    if (isNotFound(err)) return { state: null, diagnostics: [] };
    return { state: current, diagnostics: [failureDiag(`Cannot read the bindings of key ${keyId}`, err)] };
  }
}

/** ImportResourceState: `"<symmetric_key_id>,<role>"`; ReadResource fills in the members. */
export function importIamBinding(id: string): StateResult {
  const parsed = parseImportId(IAM_BINDING_TYPE, id, ['symmetric_key_id', 'role']);
  if ('diagnostic' in parsed) return { state: null, diagnostics: [parsed.diagnostic] };
  const { symmetric_key_id: keyId = '', role = '' } = parsed.parts;
  return { state: { id: bindingId(keyId, role), symmetric_key_id: keyId, role, members: null }, diagnostics: [] };
}

/** The resource as the RPC layer sees it. */
export const iamBindingResource: ManagedResource = {
  typeName: IAM_BINDING_TYPE,
  validate: validateIamBindingConfig,
  plan: planIamBinding,
  apply: applyIamBinding,
  read: readIamBinding,
  importState: importIamBinding,
};
