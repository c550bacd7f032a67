/** kmsctl's exit codes and the errors that lead to them. */
export const EXIT = {
  OK: 0,
  /** The daemon answered with an error (its message and code are printed). */
  API: 1,
  /** Bad flags, arguments, files or configuration; nothing was sent. */
  USAGE: 2,
  /** The daemon could not be reached. */
  CONNECTION: 3,
  /** `audit verify`: the daemon reports the trail as tampered. */
  VERIFY_FAILED: 4,
} as const;

/** A mistake of the caller's (exit 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A check that failed after a successful call (exit 4). */
export class VerificationFailed extends Error {}
