/**
 * The REST client's transport on `fetch`, for the web console (a browser has no node:http). The
 * token travels only in the Authorization header the client sets; cookies are never sent, so the
 * console needs no CSRF protection, and nothing is cached.
 */
import type { Transport } from './kms-client.js';

export function fetchTransport(fetchImpl: typeof fetch = (input, init) => fetch(input, init)): Transport {
  return async (request) => {
    const response = await fetchImpl(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body ?? null,
      signal: request.signal,
      credentials: 'omit',
      redirect: 'error',
    });
    return { status: response.status, text: await response.text() };
  };
}
