/**
 * The closed set of domain error codes. Every failure a caller can see is one of these; the HTTP
 * layer maps them to status codes in exactly one table (daemon/http/errors.ts) and nothing picks a
 * status by looking at message text.
 *
 * The numeric values are the gRPC status codes that Yandex Cloud returns in `{code, message, details}`.
 */
export const ERROR_CODES = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  /** A concurrent change on another node won the optimistic version check; retrying is safe. */
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One entry of `details`: which field was wrong and why (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** A failure with a code from the closed set. `message` is safe to show to the caller. */
export class KmsError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly violations: FieldViolation[] = [],
  ) {
    super(message);
    this.name = 'KmsError';
  }
}

/** The caller sent something malformed; `field` is the JSON path of the offending value. */
export function invalidArgument(field: string, description: string): KmsError {
  return new KmsError('INVALID_ARGUMENT', `${field}: ${description}`, [{ field, description }]);
}

export function notFound(what: string, id: string): KmsError {
  return new KmsError('NOT_FOUND', `${what} ${id} not found`);
}

export function failedPrecondition(message: string): KmsError {
  return new KmsError('FAILED_PRECONDITION', message);
}

export function isKmsError(err: unknown): err is KmsError {
  return err instanceof KmsError;
}
