/**
 * What `kms_symmetric_key_iam_binding` and `kms_symmetric_key_iam_member` share: the roles and
 * member syntax the daemon accepts, the state ids (Yandex provider convention: `<key>/<role>` and
 * `<key>/<role>/<member>`), import-id parsing, and the config checks.
 */
import type { AccessBinding, AccessBindingDelta } from '../client/kms-client.js';
import { isUnknown, type TfObject, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, type Diagnostic } from '../diagnostics.js';
import { MEMBER_SYNTAX, memberSubject, subjectMember } from '../client/subjects.js';

/** Roles a key binding may grant (the daemon's role set; it refuses any other). */
export const KEY_ROLES = [
  'kms.auditor',
  'kms.viewer',
  'kms.editor',
  'kms.admin',
  'kms.keys.encrypter',
  'kms.keys.decrypter',
  'kms.keys.encrypterDecrypter',
] as const;

export { memberSubject, subjectMember };

/** Why `member` is not acceptable, or undefined when it is. */
export function memberProblem(member: string): string | undefined {
  if (memberSubject(member) !== undefined) return undefined;
  return `${JSON.stringify(member)} must be ${MEMBER_SYNTAX}.`;
}

/** Why `role` is not acceptable, or undefined when it is. */
export function roleProblem(role: string): string | undefined {
  if ((KEY_ROLES as readonly string[]).includes(role)) return undefined;
  return `Unknown role ${JSON.stringify(role)}; a key binding grants one of ${KEY_ROLES.join(', ')}.`;
}

/** State id of a binding resource. */
export function bindingId(keyId: string, role: string): string {
  return `${keyId}/${role}`;
}

/** State id of a member resource. */
export function memberId(keyId: string, role: string, member: string): string {
  return `${keyId}/${role}/${member}`;
}

/** The string value of an attribute, or undefined for null/unknown. */
export function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Checks of symmetric_key_id and role shared by both resources; unknown values are skipped. */
export function validateKeyAndRole(config: TfObject): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const keyId = str(config['symmetric_key_id']);
  if (keyId !== undefined && keyId.trim() === '') {
    diags.push(errorDiag('Invalid symmetric_key_id', 'symmetric_key_id must not be empty.', attrPath('symmetric_key_id')));
  }
  const role = str(config['role']);
  const problem = role === undefined ? undefined : roleProblem(role);
  if (problem) diags.push(errorDiag('Invalid role', problem, attrPath('role')));
  return diags;
}

/** Members of `role` among a key's bindings, sorted (a set has no order; sorting keeps reads stable). */
export function membersOfRole(bindings: readonly AccessBinding[], role: string): string[] {
  return [...new Set(bindings.filter((b) => b.roleId === role).map(subjectMember))].sort();
}

/**
 * The deltas that make `desired` exactly the holders of `role`: add the missing, remove the
 * extra. Bindings of other roles are never touched.
 */
export function roleDeltas(current: readonly AccessBinding[], role: string, desired: readonly string[]): AccessBindingDelta[] {
  const have = new Set(membersOfRole(current, role));
  const want = new Set(desired);
  const deltas: AccessBindingDelta[] = [];
  for (const member of [...want].sort()) {
    const subject = memberSubject(member);
    if (!have.has(member) && subject) deltas.push({ action: 'ADD', accessBinding: { roleId: role, subject } });
  }
  for (const member of [...have].sort()) {
    const subject = memberSubject(member);
    if (!want.has(member) && subject) deltas.push({ action: 'REMOVE', accessBinding: { roleId: role, subject } });
  }
  return deltas;
}

/**
 * Split an import id into exactly `names.length` comma-separated parts (whitespace-separated,
 * the older Yandex/Google form, is accepted too), checking the role and member parts.
 */
export function parseImportId(
  typeName: string,
  id: string,
  names: readonly ('symmetric_key_id' | 'role' | 'member')[],
): { parts: Record<string, string> } | { diagnostic: Diagnostic } {
  const example = names.map((n) => ({ symmetric_key_id: 'abc123', role: 'kms.keys.encrypter', member: 'serviceAccount:sa1' })[n]).join(',');
  const usage = `Import ${typeName} by "${names.map((n) => `<${n}>`).join(',')}", e.g. terraform import ${typeName}.x "${example}".`;
  const trimmed = id.trim();
  const raw = trimmed.includes(',') ? trimmed.split(',') : trimmed.split(/\s+/);
  const pieces = raw.map((p) => p.trim());
  if (pieces.length !== names.length || pieces.some((p) => p === '')) {
    return { diagnostic: errorDiag('Invalid import id', `${usage} Got ${JSON.stringify(id)}.`) };
  }
  const parts: Record<string, string> = {};
  names.forEach((name, i) => (parts[name] = pieces[i] ?? ''));
  const role = parts['role'];
  const badRole = role === undefined ? undefined : roleProblem(role);
  if (badRole) return { diagnostic: errorDiag('Invalid import id', `${badRole} ${usage}`) };
  const member = parts['member'];
  const badMember = member === undefined ? undefined : memberProblem(member);
  if (badMember) return { diagnostic: errorDiag('Invalid import id', `Member ${badMember} ${usage}`) };
  return { parts };
}

/** True when the value is null or unknown (nothing to check yet). */
export function unset(value: TfValue | undefined): boolean {
  return value === null || value === undefined || isUnknown(value);
}
