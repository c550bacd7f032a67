/**
 * The REST client's transport on node:http(s) with keep-alive connections (global fetch loads
 * undici on first use, ≈20 ms of every plugin process). node:http(s) and node:fs are loaded on the
 * first request, so a process that never calls the daemon skips them, and the client itself stays
 * free of Node imports (the web console bundles it with a fetch transport, ./fetch-transport.ts).
 */
import type { Agent as HttpAgent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import type { Transport, TransportRequest, TransportResponse } from './kms-client.js';

interface NodeHttp {
  agent: HttpAgent;
  request: (url: URL, options: RequestOptions, callback: (res: IncomingMessage) => void) => ClientRequest;
}

/**
 * The extra CA certificates for an https endpoint. The plugin's launcher moves
 * NODE_EXTRA_CA_CERTS aside into KMS_NODE_EXTRA_CA_CERTS (Node would parse the whole file at every
 * plugin start, ≈80 ms here); they are read only when an https endpoint needs them.
 */
async function extraCertificateAuthorities(): Promise<string[] | undefined> {
  const file = process.env['KMS_NODE_EXTRA_CA_CERTS'] ?? process.env['NODE_EXTRA_CA_CERTS'];
  if (!file) return undefined;
  try {
    const [{ rootCertificates }, { readFileSync }] = await Promise.all([import('node:tls'), import('node:fs')]);
    return [...rootCertificates, readFileSync(file, 'utf8')];
  } catch {
    return undefined;
  }
}

async function openHttp(url: URL, keepAlive: boolean): Promise<NodeHttp> {
  if (url.protocol === 'https:') {
    const https = await import('node:https');
    const ca = await extraCertificateAuthorities();
    return { agent: new https.Agent({ keepAlive, ...(ca && { ca }) }), request: https.request };
  }
  const http = await import('node:http');
  return { agent: new http.Agent({ keepAlive }), request: http.request };
}

/**
 * A transport on node:http(s). `keepAlive` (default true: core sends many calls per plugin
 * process) reuses connections; a one-shot CLI passes false so its process exits at once.
 */
export function nodeTransport(options: { keepAlive?: boolean } = {}): Transport {
  const keepAlive = options.keepAlive ?? true;
  let opened: Promise<NodeHttp> | undefined;
  const send = async (request: TransportRequest, retried: boolean): Promise<TransportResponse> => {
    opened ??= openHttp(request.url, keepAlive);
    const http = await opened;
    const { signal } = request;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason as Error);
      // One abort listener, removed when the exchange settles (http.request's own `signal` option
      // would also watch the request stream's end, finish, error and close for it).
      const onAbort = (): void => void req.destroy(signal.reason as Error);
      const done = (): void => signal.removeEventListener('abort', onAbort);
      const req = http.request(request.url, { method: request.method, headers: request.headers, agent: http.agent }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => {
          done();
          reject(err);
        });
        res.on('end', () => {
          done();
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: Error & { code?: string }) => {
        done();
        // The daemon may close an idle kept-alive connection just as we reuse it: the request
        // never reached it, so sending it once more on a fresh connection is safe.
        if (!retried && !signal.aborted && req.reusedSocket && err.code === 'ECONNRESET') {
          send(request, true).then(resolve, reject);
          return;
        }
        reject(signal.aborted ? (signal.reason as Error) : err);
      });
      req.end(request.body);
    });
  };
  return (request) => send(request, false);
}
