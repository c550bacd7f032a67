/**
 * `kms_symmetric_key_iam_binding`: authoritative for one role on one key. Apply reads the key's
 * bindings and sends the ADD/REMOVE deltas that leave exactly the configured members holding the
 * role; bindings of other roles are never touched. Read reports the role's current holders, so
 * changes made outside Terraform show as drift.
 */
import { GrpcCode, KmsApiError, type KmsClient } from '../client/kms-client.js';
import { UNKNOWN, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext } from '../framework/context.js';
import { defineResource, planResource, resourceTypeOf, type PlanModification, type PlanRequest, type PlanResult } from '../framework/resource.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SymmetricKeyIamBindingConfig as IamBindingConfig, SymmetricKeyIamBindingState as IamBindingState } from '../models.gen.js';
import { bindingId, memberProblem, membersOfRole, parseImportId, roleDeltas, str, validateKeyAndRole } from './key_access.js';

/** Terraform type name. */
export const IAM_BINDING_TYPE = 'kms_symmetric_key_iam_binding';

/** Attributes whose change replaces the binding (a different key or role is a different binding). */
const FORCE_NEW = ['symmetric_key_id', 'role'] as const;

function isNotFound(err: unknown): boolean {
  return err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND;
}

/** The known members of a set value; unknown elements are skipped. */
function memberList(value: TfValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((m): m is string => typeof m === 'string') : [];
}

/** Config validation: role and every member; unknown values are skipped. */
export function validateIamBindingConfig(config: IamBindingConfig): Diagnostic[] {
  const diags = validateKeyAndRole(config);
  // Set elements have no attribute-path step in the protocol, so the path stops at `members`
  // and the detail names the element.
  for (const member of memberList(config.members)) {
    const problem = memberProblem(member);
    if (problem) diags.push(errorDiag('Invalid member', problem, attrPath('members')));
  }
  return diags;
}

/** The binding's own planning: its id follows from two inputs, so it is known whenever they are. */
function modifyIamBindingPlan({ config, planned }: PlanModification<IamBindingState, IamBindingConfig>): Diagnostic[] {
  const keyId = str(config.symmetric_key_id);
  const role = str(config.role);
  planned.id = keyId !== undefined && role !== undefined ? bindingId(keyId, role) : UNKNOWN;
  return [];
}

/** Make exactly `members` hold `role` on the key. */
async function reconcileRole(client: KmsClient, keyId: string, role: string, members: readonly string[]): Promise<void> {
  const deltas = roleDeltas(await client.listKeyAccessBindings(keyId), role, members);
  if (deltas.length > 0) await client.updateKeyAccessBindings(keyId, deltas);
}

async function setBinding(planned: IamBindingConfig, fallback: IamBindingState | null, ctx: ConfiguredContext): Promise<Result<IamBindingState | null>> {
  const keyId = str(planned.symmetric_key_id);
  const role = str(planned.role);
  if (keyId === undefined || role === undefined) {
    return withDiags(fallback, errorDiag('Missing symmetric_key_id or role', 'The binding has no known key id and role at apply time.'));
  }
  const members = planned.members;
  if (!Array.isArray(members) || members.some((m) => typeof m !== 'string')) {
    return withDiags(fallback, errorDiag('Unknown members', 'members is not wholly known at apply time.', attrPath('members')));
  }
  try {
    await reconcileRole(ctx.client, keyId, role, memberList(members));
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.INVALID_ARGUMENT ? attrPath('members') : undefined;
    return withDiags(fallback, failureDiag(`Cannot set the ${role} binding of key ${keyId}`, err, path));
  }
  return ok({ symmetric_key_id: keyId, role, members: memberList(members), id: bindingId(keyId, role) });
}

async function removeBinding(prior: IamBindingState, ctx: ConfiguredContext): Promise<Diagnostic[]> {
  const { symmetric_key_id: keyId, role } = prior;
  if (keyId === null || role === null) return [];
  try {
    await reconcileRole(ctx.client, keyId, role, []);
  } catch (err) {
    // The key is gone, and its bindings with it.
    if (isNotFound(err)) return [];
    return [failureDiag(`Cannot remove the ${role} binding of key ${keyId}`, err)];
  }
  return [];
}

async function readIamBinding(current: IamBindingState, ctx: ConfiguredContext): Promise<Result<IamBindingState | null>> {
  const { symmetric_key_id: keyId, role } = current;
  if (keyId === null || role === null) return ok(null);
  try {
    const members = membersOfRole(await ctx.client.listKeyAccessBindings(keyId), role);
    // A role with no holders stays in state with no members: the next plan adds them back.
    return ok({ ...current, id: bindingId(keyId, role), members });
  } catch (err) {
    // The key was deleted outside Terraform: the binding went with it.
    if (isNotFound(err)) return ok(null);
    return withDiags(current, failureDiag(`Cannot read the bindings of key ${keyId}`, err));
  }
}

/** ImportResourceState: `"<symmetric_key_id>,<role>"`; ReadResource fills in the members. */
export function importIamBinding(id: string): Result<IamBindingState | null> {
  const parsed = parseImportId(IAM_BINDING_TYPE, id, ['symmetric_key_id', 'role']);
  if ('diagnostic' in parsed) return withDiags(null, parsed.diagnostic);
  const { symmetric_key_id: keyId = '', role = '' } = parsed.parts;
  return ok({ id: bindingId(keyId, role), symmetric_key_id: keyId, role, members: null });
}

/** The resource: members change in place; a different key or role is a replacement. */
export const iamBindingResource = defineResource<IamBindingState, IamBindingConfig>({
  typeName: IAM_BINDING_TYPE,
  requiresReplace: FORCE_NEW,
  identity: ['symmetric_key_id', 'role'],
  validate: validateIamBindingConfig,
  modifyPlan: modifyIamBindingPlan,
  create: ({ planned }, ctx) => setBinding(planned, null, ctx),
  update: async ({ prior, planned }, ctx) => {
    const result = await setBinding(planned, prior, ctx);
    return { value: result.value ?? prior, diagnostics: result.diagnostics };
  },
  read: readIamBinding,
  delete: removeBinding,
  importState: importIamBinding,
});

/** PlanResourceChange of this resource. */
export function planIamBinding(request: PlanRequest): PlanResult {
  return planResource(resourceTypeOf(iamBindingResource), request, { client: undefined, folderId: undefined });
}
