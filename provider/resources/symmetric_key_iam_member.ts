/**
 * `kms_symmetric_key_iam_member`: additive — grants one role on one key to one member and leaves
 * every other binding alone. Every input identifies the binding, so every change replaces it.
 */
import { GrpcCode, KmsApiError, type AccessBinding } from '../client/kms-client.js';
import { UNKNOWN } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext } from '../framework/context.js';
import { defineResource, planResource, resourceTypeOf, type PlanModification, type PlanRequest, type PlanResult } from '../framework/resource.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SymmetricKeyIamMemberConfig as IamMemberConfig, SymmetricKeyIamMemberState as IamMemberState } from '../models.gen.js';
import { memberId, memberProblem, memberSubject, membersOfRole, parseImportId, str, validateKeyAndRole } from './key_access.js';

/** Terraform type name. */
export const IAM_MEMBER_TYPE = 'kms_symmetric_key_iam_member';

const FORCE_NEW = ['symmetric_key_id', 'role', 'member'] as const;

function isNotFound(err: unknown): boolean {
  return err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND;
}

/** Config validation; unknown values are skipped. */
export function validateIamMemberConfig(config: IamMemberConfig): Diagnostic[] {
  const diags = validateKeyAndRole(config);
  const member = str(config.member);
  const problem = member === undefined ? undefined : memberProblem(member);
  if (problem) diags.push(errorDiag('Invalid member', problem, attrPath('member')));
  return diags;
}

/** The member's own planning: the id is known as soon as the inputs are. */
function modifyIamMemberPlan({ config, planned }: PlanModification<IamMemberState, IamMemberConfig>): Diagnostic[] {
  const [keyId, role, member] = FORCE_NEW.map((name) => str(config[name]));
  planned.id = keyId !== undefined && role !== undefined && member !== undefined ? memberId(keyId, role, member) : UNKNOWN;
  return [];
}

function target(object: IamMemberConfig | IamMemberState): { keyId: string; role: string; member: string; subject: AccessBinding['subject'] } | undefined {
  const [keyId, role, member] = FORCE_NEW.map((name) => str(object[name]));
  const subject = member === undefined ? undefined : memberSubject(member);
  return keyId !== undefined && role !== undefined && member !== undefined && subject !== undefined ? { keyId, role, member, subject } : undefined;
}

const INCOMPLETE = errorDiag('Incomplete binding', 'symmetric_key_id, role and member must be known and valid at apply time.');

async function grantMember({ planned }: { planned: IamMemberConfig }, ctx: ConfiguredContext): Promise<Result<IamMemberState | null>> {
  const t = target(planned);
  if (!t) return withDiags(null, INCOMPLETE);
  try {
    await ctx.client.updateKeyAccessBindings(t.keyId, [{ action: 'ADD', accessBinding: { roleId: t.role, subject: t.subject } }]);
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.INVALID_ARGUMENT ? attrPath('member') : undefined;
    return withDiags(null, failureDiag(`Cannot grant ${t.role} on key ${t.keyId} to ${t.member}`, err, path));
  }
  return ok({ symmetric_key_id: t.keyId, role: t.role, member: t.member, id: memberId(t.keyId, t.role, t.member) });
}

async function revokeMember(prior: IamMemberState, ctx: ConfiguredContext): Promise<Diagnostic[]> {
  const t = target(prior);
  if (!t) return [INCOMPLETE];
  try {
    await ctx.client.updateKeyAccessBindings(t.keyId, [{ action: 'REMOVE', accessBinding: { roleId: t.role, subject: t.subject } }]);
  } catch (err) {
    if (isNotFound(err)) return [];
    return [failureDiag(`Cannot remove ${t.member} from ${t.role} on key ${t.keyId}`, err)];
  }
  return [];
}

async function readIamMember(current: IamMemberState, ctx: ConfiguredContext): Promise<Result<IamMemberState | null>> {
  const { symmetric_key_id: keyId, role, member } = current;
  if (keyId === null || role === null || member === null) return ok(null);
  try {
    const holders = membersOfRole(await ctx.client.listKeyAccessBindings(keyId), role);
    // Revoked outside Terraform (or the key is gone): null state makes core plan a create.
    if (!holders.includes(member)) return ok(null);
    return ok({ ...current, id: memberId(keyId, role, member) });
  } catch (err) {
    if (isNotFound(err)) return ok(null);
    return withDiags(current, failureDiag(`Cannot read the bindings of key ${keyId}`, err));
  }
}

/** ImportResourceState: `"<symmetric_key_id>,<role>,<member>"`. */
export function importIamMember(id: string): Result<IamMemberState | null> {
  const parsed = parseImportId(IAM_MEMBER_TYPE, id, ['symmetric_key_id', 'role', 'member']);
  if ('diagnostic' in parsed) return withDiags(null, parsed.diagnostic);
  const { symmetric_key_id: keyId = '', role = '', member = '' } = parsed.parts;
  return ok({ id: memberId(keyId, role, member), symmetric_key_id: keyId, role, member });
}

/** The resource: additive, and every input identifies the binding, so there is no update. */
export const iamMemberResource = defineResource<IamMemberState, IamMemberConfig>({
  typeName: IAM_MEMBER_TYPE,
  requiresReplace: FORCE_NEW,
  identity: FORCE_NEW,
  validate: validateIamMemberConfig,
  modifyPlan: modifyIamMemberPlan,
  create: grantMember,
  read: readIamMember,
  delete: revokeMember,
  importState: importIamMember,
});

/** PlanResourceChange of this resource. */
export function planIamMember(request: PlanRequest): PlanResult {
  return planResource(resourceTypeOf(iamMemberResource), request, { client: undefined, folderId: undefined });
}
