/**
 * The REST client's transport on node:net / node:tls: HTTP/1.1 (./http1.ts) with keep-alive
 * connections. Not node:http: in a plugin process the client runs cold, and node:http's request
 * and agent machinery was ≈ 0.4 ms of CPU per exchange there; not global fetch either (it loads
 * undici on first use, ≈ 20 ms of every plugin process). node:net, node:tls and node:fs are
 * loaded on the first request, so a process that never calls the daemon skips them, and the
 * client itself stays free of Node imports (the web console bundles it with a fetch transport,
 * ./fetch-transport.ts).
 *
 * Connections: one per exchange in flight, kept open between exchanges (keep-alive) and reused
 * most-recently-used first; idle ones do not keep the process alive, and at most
 * {@link MAX_IDLE_PER_ORIGIN} are kept. A connection the server closed while idle is noticed
 * when it closes; one it closes just as it is reused (no byte of an answer came back) is retried
 * once on a fresh connection, since the server never read that request.
 */
import type { Socket } from 'node:net';
import type { Transport, TransportRequest, TransportResponse } from './kms-client.js';
import { AnswerParser, serializeRequest, type HttpAnswer } from './http1.js';

export const MAX_IDLE_PER_ORIGIN = 16;

interface Dialer {
  dial(url: URL): Socket;
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

/** URL.hostname keeps an IPv6 literal's brackets; sockets want the bare address. */
function hostOf(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

async function openDialer(url: URL): Promise<Dialer> {
  if (url.protocol === 'https:') {
    const [tls, net, ca] = await Promise.all([import('node:tls'), import('node:net'), extraCertificateAuthorities()]);
    return {
      dial: (target) => {
        const host = hostOf(target);
        const socket = tls.connect({
          host,
          port: Number(target.port || 443),
          // SNI only for names (RFC 6066); an IP address is checked against the certificate's IP SANs.
          ...(net.isIP(host) === 0 && { servername: host }),
          ALPNProtocols: ['http/1.1'],
          ...(ca && { ca }),
        });
        socket.setNoDelay(true);
        return socket;
      },
    };
  }
  if (url.protocol !== 'http:') throw new Error(`unsupported scheme ${url.protocol}`);
  const net = await import('node:net');
  return {
    dial: (target) => net.connect({ host: hostOf(target), port: Number(target.port || 80), noDelay: true }),
  };
}

/** The exchange a connection is carrying. */
interface Exchange {
  parser: AnswerParser;
  settle: (outcome: { answer: HttpAnswer } | { error: Error; retry: boolean }) => void;
}

/** One socket and the exchange on it, if any. */
class Connection {
  exchange: Exchange | undefined;
  /** Whether an exchange has completed on it (a failure before any answer is then retryable). */
  reused = false;
  closed = false;

  constructor(
    readonly socket: Socket,
    private readonly onDestroy: (connection: Connection) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: Error) => this.fail(err));
    socket.on('close', () => this.fail(new Error('socket closed')));
  }

  start(exchange: Exchange, bytes: string): void {
    this.exchange = exchange;
    this.socket.ref();
    this.socket.write(bytes, 'utf8');
  }

  private onData(chunk: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) {
      // Nothing may arrive on an idle connection.
      this.destroy();
      return;
    }
    let answer: HttpAnswer | undefined;
    try {
      answer = exchange.parser.push(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (answer) this.complete(answer);
  }

  private onEnd(): void {
    const exchange = this.exchange;
    if (!exchange) {
      this.destroy();
      return;
    }
    let answer: HttpAnswer;
    try {
      answer = exchange.parser.end();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    answer.close = true;
    this.complete(answer);
  }

  private complete(answer: HttpAnswer): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    this.reused = true;
    if (answer.close) this.destroy();
    exchange?.settle({ answer });
  }

  /** Fails the exchange in flight (if any) and drops the connection. */
  fail(error: Error): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    this.destroy();
    exchange?.settle({ error, retry: this.reused && !exchange.parser.received });
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onDestroy(this);
  }

  idle(): void {
    this.socket.unref();
  }
}

/**
 * A transport on node:net / node:tls. `keepAlive` (default true: core sends many calls per plugin
 * process) reuses connections; a one-shot CLI passes false (each exchange asks for
 * `Connection: close`), so its process exits at once.
 */
export function nodeTransport(options: { keepAlive?: boolean } = {}): Transport {
  const keepAlive = options.keepAlive ?? true;
  let dialer: Promise<Dialer> | undefined;
  /** Idle connections by origin, most recently used last. */
  const idle = new Map<string, Connection[]>();

  const forget = (origin: string, connection: Connection): void => {
    const list = idle.get(origin);
    if (!list) return;
    const at = list.indexOf(connection);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) idle.delete(origin);
  };

  const take = async (url: URL): Promise<Connection> => {
    const origin = url.origin;
    // Only open connections are listed: a connection leaves the list as it is destroyed (forget).
    const reusable = idle.get(origin)?.pop();
    if (reusable) return reusable;
    dialer ??= openDialer(url);
    const socket = (await dialer).dial(url);
    return new Connection(socket, (connection) => forget(origin, connection));
  };

  const release = (origin: string, connection: Connection): void => {
    if (connection.closed) return;
    if (!keepAlive) {
      connection.destroy();
      return;
    }
    let list = idle.get(origin);
    if (!list) idle.set(origin, (list = []));
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      connection.destroy();
      return;
    }
    list.push(connection);
    connection.idle();
  };

  const send = async (request: TransportRequest, retried: boolean): Promise<TransportResponse> => {
    const { signal, url } = request;
    if (signal.aborted) throw signal.reason as Error;
    // Before any socket: a header that would split the request is refused here.
    const bytes = serializeRequest(request.method, url, request.headers, request.body, !keepAlive);
    const connection = await take(url);
    if (signal.aborted) {
      release(url.origin, connection);
      throw signal.reason as Error;
    }
    const outcome = await new Promise<{ answer: HttpAnswer } | { error: Error; retry: boolean }>((resolve) => {
      const onAbort = (): void => connection.fail(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      connection.start({ parser: new AnswerParser(request.method === 'HEAD'), settle: (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      } }, bytes);
    });
    if ('answer' in outcome) {
      release(url.origin, connection);
      return { status: outcome.answer.status, text: outcome.answer.body.toString('utf8') };
    }
    if (signal.aborted) throw signal.reason as Error;
    // The server closed a kept-alive connection just as we reused it: it never read the request.
    if (outcome.retry && !retried) return send(request, true);
    throw outcome.error;
  };
  return (request) => send(request, false);
}
