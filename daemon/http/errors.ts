/**
 * The one place where domain error codes become HTTP statuses and `{code, message, details}`
 * bodies (gRPC status JSON, as Yandex Cloud returns it). 5xx bodies never carry internals: the
 * caller gets a request id to quote, the log gets the real error.
 */
import { ERROR_CODES, KmsError, type ErrorCode } from '../domain/errors.js';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

export interface ErrorBody {
  code: number;
  message: string;
  details: unknown[];
}

/** Transport-level failures that happen before the domain sees the request. */
export type TransportFailure = 'malformed-json' | 'body-too-large' | 'unsupported-media-type';

const TRANSPORT: Record<TransportFailure, { status: number; error: (limit: number) => KmsError }> = {
  'malformed-json': { status: 400, error: () => new KmsError('INVALID_ARGUMENT', 'request body is not valid JSON') },
  'body-too-large': {
    status: 413,
    error: (limit) => new KmsError('INVALID_ARGUMENT', `request body is larger than ${limit} bytes`),
  },
  'unsupported-media-type': {
    status: 415,
    error: () => new KmsError('INVALID_ARGUMENT', 'request body must be JSON (Content-Type: application/json)'),
  },
};

export function transportError(failure: TransportFailure, limit: number): { status: number; body: ErrorBody } {
  const entry = TRANSPORT[failure];
  return { status: entry.status, body: errorBody(entry.error(limit)) };
}

/** Maps any thrown value; unknown errors become an opaque INTERNAL with the request id. */
export function toHttpError(err: unknown, requestId: string): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof KmsError && err.code !== 'INTERNAL') {
    return { status: HTTP_STATUS[err.code], body: errorBody(err), internal: false };
  }
  return {
    status: 500,
    body: { code: ERROR_CODES.INTERNAL, message: `internal error; quote request id ${requestId} to the operator`, details: [] },
    internal: true,
  };
}

function errorBody(err: KmsError): ErrorBody {
  const details: unknown[] = [];
  if (err.violations.length > 0) {
    details.push({ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: err.violations });
  }
  return { code: ERROR_CODES[err.code], message: err.message, details };
}
