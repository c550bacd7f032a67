/**
 * The lean path for the hot data-plane calls (`:encrypt`, `:decrypt`, `:reEncrypt`,
 * `:generateDataKey`): read by node:http directly instead of through Express's middleware stack,
 * which a CPU profile showed costing as much per call as the HSM. It only reads the request (body
 * size limit, media type, JSON) and writes the answer; routing, validation, authentication, the
 * permission check, the audit event and the error bodies are the same `Dispatcher` Express uses,
 * so there is one route table and one set of rules. Anything unusual (a compressed body, a method
 * or path that is not hot) is left to Express.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { transportError } from './errors.js';
import { hasRequestBody, type CallInput, type CallOutput, type Dispatcher } from './router.js';

/** Logs one call (see daemon/app.ts callLogger). */
export type CallLog = (input: CallInput, output: CallOutput, started: bigint) => void;

export interface FastPathOptions {
  bodyLimit: number;
  log: CallLog;
}

/** `application/json`, `application/*+json`, optionally with `charset=utf-8` (what Express accepts). */
function jsonMediaType(header: string | undefined): 'json' | 'other' | 'bad-charset' {
  if (header === undefined) return 'other';
  if (header === 'application/json') return 'json';
  const [type = '', ...params] = header.split(';');
  const media = type.trim().toLowerCase();
  if (media !== 'application/json' && !(media.startsWith('application/') && media.endsWith('+json'))) return 'other';
  for (const param of params) {
    const [name = '', value = ''] = param.split('=');
    if (name.trim().toLowerCase() === 'charset' && !/^"?utf-8"?$/i.test(value.trim())) return 'bad-charset';
  }
  return 'json';
}

/**
 * Returns a handler that serves a request when it is a hot data-plane call and returns true, or
 * returns false (having touched nothing) so that the caller hands it to Express.
 */
export function fastPath(dispatcher: Dispatcher, options: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url === undefined) return false;
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    const queryAt = req.url.indexOf('?');
    const path = queryAt < 0 ? req.url : req.url.slice(0, queryAt);
    const route = dispatcher.hotRoute(req.method, path);
    if (route === undefined) return false;
    const started = process.hrtime.bigint();
    const input: CallInput = {
      method: req.method,
      path,
      query: queryAt < 0 ? (Object.create(null) as Record<string, string>) : parseQuery(req.url.slice(queryAt + 1)),
      authorization: req.headers.authorization,
      body: undefined,
      hasBody: hasRequestBody(req.headers),
      requestId: randomUUID(),
      remoteAddress: req.socket.remoteAddress,
    };
    const finish = (output: CallOutput) => {
      send(res, input.requestId, output);
      options.log(input, output, started);
    };
    const refuse = (err: unknown) => finish(dispatcher.refuse(input, err, () => undefined));
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > options.bodyLimit) {
      refuse(transportError('body-too-large', options.bodyLimit));
      return true;
    }
    const media = jsonMediaType(req.headers['content-type']);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > options.bodyLimit) {
        tooLarge = true;
        refuse(transportError('body-too-large', options.bodyLimit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) return;
      if (input.hasBody && media === 'bad-charset') {
        refuse(transportError('unsupported-media-type', options.bodyLimit));
        return;
      }
      if (media === 'json' && size > 0) {
        try {
          input.body = JSON.parse(Buffer.concat(chunks, size).toString('utf8')) as unknown;
        } catch {
          refuse(transportError('malformed-json', options.bodyLimit));
          return;
        }
      }
      void dispatcher.handle(input, route).then(finish);
    });
    return true;
  };
}

function send(res: ServerResponse, requestId: string, output: CallOutput): void {
  if (res.headersSent) return;
  const json = JSON.stringify(output.body);
  res.statusCode = output.status;
  res.setHeader('x-request-id', requestId);
  // Responses carry key material or plaintext: never cacheable.
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-content-type-options', 'nosniff');
  for (const [name, value] of Object.entries(output.headers)) res.setHeader(name, value);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(json));
  res.end(json);
}
