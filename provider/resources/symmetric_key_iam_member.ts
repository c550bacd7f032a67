/**
 * `kms_symmetric_key_iam_member`: additive — grants one role on one key to one member and leaves
 * every other binding alone. Every input identifies the binding, so every change replaces it.
 */
import { GrpcCode, KmsApiError } from '../client/kms-client.js';
import type { PathStep } from '../codec/cty.js';
import { UNKNOWN, valuesEqual, type TfObject } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import { memberId, memberProblem, memberSubject, membersOfRole, parseImportId, str, validateKeyAndRole } from './key_access.js';
import type { ApplyRequest, ManagedResource, PlanRequest, PlanResult, ProviderContext, StateResult } from './resource.js';

/** Terraform type name. */
export const IAM_MEMBER_TYPE = 'kms_symmetric_key_iam_member';

const FORCE_NEW = ['symmetric_key_id', 'role', 'member'] as const;

function isNotFound(err: unknown): boolean {
  return err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND;
}

/** Config validation; unknown values are skipped. */
export function validateIamMemberConfig(config: TfObject): Diagnostic[] {
  const diags = validateKeyAndRole(config);
  const member = str(config['member']);
  const problem = member === undefined ? undefined : memberProblem(member);
  if (problem) diags.push(errorDiag('Invalid member', problem, attrPath('member')));
  return diags;
}

/** PlanResourceChange: no in-place updates; the id is known as soon as the inputs are. */
export function planIamMember(request: PlanRequest): PlanResult {
  const { prior, proposed, config } = request;
  const requiresReplace: PathStep[][] = [];
  if (proposed === null || config === null) return { planned: null, requiresReplace, diagnostics: [] };
  const planned: TfObject = { ...proposed };
  const [keyId, role, member] = FORCE_NEW.map((name) => str(config[name]));
  planned['id'] = keyId !== undefined && role !== undefined && member !== undefined ? memberId(keyId, role, member) : UNKNOWN;
  if (prior !== null) {
    for (const name of FORCE_NEW) {
      if (!valuesEqual(config[name] ?? null, prior[name] ?? null)) requiresReplace.push(attrPath(name));
    }
  }
  return { planned, requiresReplace, diagnostics: [] };
}

async function applyIamMember(request: ApplyRequest, ctx: ProviderContext): Promise<StateResult> {
  const { prior, planned } = request;
  const client = ctx.client;
  if (!client) return { state: prior, diagnostics: [notConfiguredDiag()] };
  if (prior !== null && planned !== null) return { state: planned, diagnostics: [] };
  const target = planned ?? prior;
  const [keyId, role, member] = FORCE_NEW.map((name) => str(target?.[name]));
  const subject = member === undefined ? undefined : memberSubject(member);
  if (keyId === undefined || role === undefined || member === undefined || subject === undefined) {
    return { state: prior, diagnostics: [errorDiag('Incomplete binding', 'symmetric_key_id, role and member must be known and valid at apply time.')] };
  }
  const accessBinding = { roleId: role, subject };
  if (planned === null) {
    try {
      await client.updateKeyAccessBindings(keyId, [{ action: 'REMOVE', accessBinding }]);
    } catch (err) {
      if (isNotFound(err)) return { state: null, diagnostics: [] };
      return { state: prior, diagnostics: [failureDiag(`Cannot remove ${member} from ${role} on key ${keyId}`, err)] };
    }
    return { state: null, diagnostics: [] };
  }
  try {
    await client.updateKeyAccessBindings(keyId, [{ action: 'ADD', accessBinding }]);
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.INVALID_ARGUMENT ? attrPath('member') : undefined;
    return { state: null, diagnostics: [failureDiag(`Cannot grant ${role} on key ${keyId} to ${member}`, err, path)] };
  }
  return { state: { ...planned, id: memberId(keyId, role, member) }, diagnostics: [] };
}

async function readIamMember(current: TfObject, ctx: ProviderContext): Promise<StateResult> {
  if (!ctx.client) return { state: current, diagnostics: [notConfiguredDiag()] };
  const [keyId, role, member] = FORCE_NEW.map((name) => str(current[name]));
  if (keyId === undefined || role === undefined || member === undefined) return { state: null, diagnostics: [] };
  try {
    const holders = membersOfRole(await ctx.client.listKeyAccessBindings(keyId), role);
    // Revoked outside Terraform (or the key is gone): null state makes core plan a create.
    if (!holders.includes(member)) return { state: null, diagnostics: [] };
    return { state: { ...current, id: memberId(keyId, role, member) }, diagnostics: [] };
  } catch (err) {
    if (isNotFound(err)) return { state: null, diagnostics: [] };
    return { state: current, diagnostics: [failureDiag(`Cannot read the bindings of key ${keyId}`, err)] };
  }
}

/** ImportResourceState: `"<symmetric_key_id>,<role>,<member>"`. */
export function importIamMember(id: string): StateResult {
  const parsed = parseImportId(IAM_MEMBER_TYPE, id, ['symmetric_key_id', 'role', 'member']);
  if ('diagnostic' in parsed) return { state: null, diagnostics: [parsed.diagnostic] };
  const { symmetric_key_id: keyId = '', role = '', member = '' } = parsed.parts;
  return { state: { id: memberId(keyId, role, member), symmetric_key_id: keyId, role, member }, diagnostics: [] };
}

/** The resource as the RPC layer sees it. */
export const iamMemberResource: ManagedResource = {
  typeName: IAM_MEMBER_TYPE,
  validate: validateIamMemberConfig,
  plan: planIamMember,
  apply: applyIamMember,
  read: readIamMember,
  importState: importIamMember,
};
