/**
 * Named points in kmsd's first start where the provisioning tests kill the process, to prove that
 * a `kill -9` at any step leaves either the same token and root key or a clean first start.
 *
 * Armed only by the environment variable KMS_UNSAFE_TEST_CRASH_AT (test use only; never set in
 * production): at the named point the process sends itself SIGKILL, which no handler can catch,
 * exactly like `kill -9` from outside.
 */
export const CRASH_POINTS = [
  'softhsm-conf-written',
  'hsm-pins-written',
  'token-initialized',
  'user-pin-initialized',
  'root-key-created',
  'binding-recorded',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (process.env.KMS_UNSAFE_TEST_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}
