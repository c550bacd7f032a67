/**
 * The member syntax of access bindings (`type:id`), as users write it in Terraform, kmsctl and the
 * console, and the API subject it stands for: `serviceAccount:<id>`, `userAccount:<id>`,
 * `federatedUser:<id>`, `group:<id>` with the id syntax the daemon enforces, or
 * `system:allAuthenticatedUsers` / `system:allUsers` (the Yandex Cloud subject types kmsd accepts).
 */
import type { AccessBinding } from './kms-client.js';

const MEMBER = /^(serviceAccount|userAccount|federatedUser|group):([a-z0-9][a-z0-9_-]{0,49})$|^(system):(allAuthenticatedUsers|allUsers)$/;

/** What a member must look like, for messages. */
export const MEMBER_SYNTAX =
  'serviceAccount:<id>, userAccount:<id>, federatedUser:<id> or group:<id>, where <id> is 1 to 50 characters of [a-z0-9_-] starting with a letter or digit, or system:allAuthenticatedUsers or system:allUsers';

/** A member string as the API's binding subject, or undefined when malformed. */
export function memberSubject(member: string): AccessBinding['subject'] | undefined {
  const m = MEMBER.exec(member);
  if (m === null) return undefined;
  const type = m[1] ?? m[3];
  const id = m[2] ?? m[4];
  return type !== undefined && id !== undefined ? { type, id } : undefined;
}

/** A binding subject as the member string users write. */
export function subjectMember(binding: AccessBinding): string {
  return `${binding.subject.type}:${binding.subject.id}`;
}
