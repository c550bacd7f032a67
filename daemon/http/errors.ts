/**
 * The one place where domain error codes become HTTP statuses and `{code, message, details}`
 * bodies (gRPC status JSON, as Yandex Cloud returns it). 5xx bodies never carry internals: the
 * caller gets a request id to quote, the log gets the real error. UNAVAILABLE (503) is the
 * exception by design: its messages are ours and say what is wrong ("data directory is not
 * writable: no space left on device (ENOSPC)") so an operator can act on them.
 */
import { ERROR_CODES, KmsError, type ErrorCode } from '../domain/errors.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  INTERNAL: 500,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
};

export interface ErrorBody {
  code: number;
  message: string;
  details: unknown[];
}

/** Transport-level failures that happen before (or instead of) the domain seeing the request. */
export type TransportFailure = 'malformed-json' | 'body-too-large' | 'unsupported-media-type' | 'method-not-allowed';

const TRANSPORT_STATUS: Readonly<Record<TransportFailure, number>> = {
  'malformed-json': 400,
  'body-too-large': 413,
  'unsupported-media-type': 415,
  'method-not-allowed': 405,
};

/** A transport failure: its own HTTP status (and headers) around a domain error code and message. */
export class TransportError extends Error {
  readonly status: number;
  constructor(
    readonly failure: TransportFailure,
    readonly error: KmsError,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error.message);
    this.name = 'TransportError';
    this.status = TRANSPORT_STATUS[failure];
  }
}

/** The request body is not JSON, too large, or of another media type. */
export function transportError(failure: Exclude<TransportFailure, 'method-not-allowed'>, limit: number): TransportError {
  switch (failure) {
    case 'malformed-json':
      return new TransportError(failure, new KmsError('INVALID_ARGUMENT', 'request body is not valid JSON'));
    case 'body-too-large':
      // The connection closes after the answer: the rest of an oversized body is never read.
      return new TransportError(failure, new KmsError('INVALID_ARGUMENT', `request body is larger than ${limit} bytes`), { connection: 'close' });
    case 'unsupported-media-type':
      return new TransportError(failure, new KmsError('INVALID_ARGUMENT', 'request body must be JSON (Content-Type: application/json)'));
  }
}

/** A known path called with a method it does not serve: 405 with `Allow`. */
export class MethodNotAllowedError extends TransportError {
  constructor(method: string, allowed: string[]) {
    super(
      'method-not-allowed',
      new KmsError('UNIMPLEMENTED', `method ${method} is not supported on this path (use ${allowed.join(', ')})`),
      { allow: allowed.join(', ') },
    );
  }
}

/** The code name an audit event records for any thrown value. */
export function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof TransportError) return err.error.code;
  if (err instanceof KmsError) return err.code;
  return 'INTERNAL';
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Readonly<Record<string, string>>;
  /** True for an unexpected error: log it, show only the request id. */
  internal: boolean;
}

/** Maps any thrown value; unknown errors become an opaque INTERNAL with the request id. */
export function toHttpError(err: unknown, requestId: string): HttpError {
  if (err instanceof TransportError) return { status: err.status, body: errorBody(err.error), headers: err.headers, internal: false };
  if (err instanceof KmsError && err.code !== 'INTERNAL') {
    return { status: HTTP_STATUS[err.code], body: errorBody(err), headers: {}, internal: false };
  }
  return {
    status: 500,
    body: { code: ERROR_CODES.INTERNAL, message: `internal error; quote request id ${requestId} to the operator`, details: [] },
    headers: {},
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
