/**
 * A gRPC server for unary calls over our own HTTP/2 server side (h2.ts): what go-plugin and
 * tfplugin6 need, and nothing more. @grpc/grpc-js loaded and initialised in ≈50 ms of every plugin
 * start (its bundle was 670 KiB of the plugin's 1.1 MiB); node:http2 then cost ≈0.25 ms of CPU
 * per call, a quarter of a busy plugin process.
 *
 * gRPC over HTTP/2: a POST to /<service>/<method> with content-type application/grpc; the body is
 * length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length); the answer is
 * headers, one message, and trailers with grpc-status. Methods this server does not know
 * (GRPCBroker, GRPCStdio, health, CallFunction, …) get a trailers-only UNIMPLEMENTED at once, the
 * answer grpc-go expects, even for streams the client keeps open.
 */
import { X509Certificate } from 'node:crypto';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { H2Connection, type H2Stream } from './h2.js';
import { encodeHeaderBlock } from './hpack.js';

/** gRPC status codes used here. */
export const GrpcStatus = { OK: 0, INTERNAL: 13, UNIMPLEMENTED: 12, INVALID_ARGUMENT: 3 } as const;

/** One unary method: how to read its request, answer it, and write its response. */
export interface UnaryMethod {
  decode(bytes: Buffer): unknown;
  /** The response as one gRPC message frame: the 5-byte prefix and the message in one buffer. */
  encodeFrame(response: unknown): Buffer;
  /** Never rejects: failures are part of the response (diagnostics). */
  handle(request: unknown): Promise<unknown>;
  /** Runs once the response has been handed to the socket (GRPCController.Shutdown exits here). */
  afterResponse?: () => void;
}

/**
 * Finds the method for a `:path`: at once when the methods are loaded, through a promise only
 * while they load (the first calls of a process).
 */
export type MethodLookup = (path: string) => UnaryMethod | undefined | Promise<UnaryMethod | undefined>;

/** Mutual TLS material: our key and certificate, and the client certificate to require. */
export interface ServerTls {
  keyPem: string;
  certPem: string;
  clientCertPem: string;
}

/** Core's client allows 256 MiB messages; accept as much. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
/** grpc-message is for people; a longer one is cut (the whole block must stay a few frames). */
const MAX_STATUS_MESSAGE = 4096;
const H2_OPTIONS = { maxHeaderListSize: 64 * 1024, maxConcurrentStreams: 1000 };

/** Every answer's headers and trailers, encoded once. */
const RESPONSE_HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', 'application/grpc'],
]);
const OK_TRAILERS = encodeHeaderBlock([['grpc-status', '0']]);

function trailersOnly(stream: H2Stream, code: number, message: string): void {
  if (stream.answered) return;
  stream.respond(
    encodeHeaderBlock([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', String(code)],
      ['grpc-message', encodeURIComponent(message.slice(0, MAX_STATUS_MESSAGE))],
    ]),
  );
}

function respond(stream: H2Stream, method: UnaryMethod, response: unknown): void {
  let frame: Buffer;
  try {
    frame = method.encodeFrame(response);
  } catch (err) {
    trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message);
    return;
  }
  if (stream.answered) return;
  if (method.afterResponse) stream.onclose = method.afterResponse;
  stream.respond(RESPONSE_HEADERS, frame, OK_TRAILERS);
}

/** Decode the one message of `body` and answer it. */
function answer(stream: H2Stream, method: UnaryMethod, body: Buffer): void {
  if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) {
    trailersOnly(stream, GrpcStatus.INTERNAL, 'expected exactly one uncompressed message');
    return;
  }
  let request: unknown;
  try {
    request = method.decode(body.subarray(5));
  } catch (err) {
    trailersOnly(stream, GrpcStatus.INTERNAL, `cannot decode the request: ${(err as Error).message}`);
    return;
  }
  let pending: Promise<unknown>;
  try {
    pending = method.handle(request);
  } catch (err) {
    trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message);
    return;
  }
  pending.then(
    (response) => respond(stream, method, response),
    (err: unknown) => trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message),
  );
}

function serve(stream: H2Stream, lookup: MethodLookup): void {
  const { headers } = stream;
  const path = headers.get(':path') ?? '';
  if (headers.get(':method') !== 'POST' || !(headers.get('content-type') ?? '').startsWith('application/grpc')) {
    stream.respond(encodeHeaderBlock([[':status', '415']]));
    return;
  }
  // The body (one chunk, as a unary request nearly always comes, or several) and the method
  // arrive in either order; the call is answered once both are there.
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  let ended = false;
  let tooLarge = false;
  /** undefined: not looked up yet; null: no such method. */
  let method: UnaryMethod | null | undefined;
  const body = (): Buffer => (more ? Buffer.concat(more, size) : (first ?? Buffer.alloc(0)));
  stream.ondata = (chunk: Buffer) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES + 5) {
      tooLarge = true;
      first = more = undefined;
      trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, 'message too large');
    } else if (!first) first = chunk;
    else (more ??= [first]).push(chunk);
  };
  stream.onend = () => {
    ended = true;
    if (method && !tooLarge) answer(stream, method, body());
  };
  const found = (m: UnaryMethod | undefined): void => {
    method = m ?? null;
    if (!m) trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
    else if (ended && !tooLarge) answer(stream, m, body());
  };
  const looked = lookup(path);
  if (looked instanceof Promise) looked.then(found, (err: unknown) => trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message));
  else found(looked);
}

/** A listening server. */
export interface GrpcServer {
  port: number;
  /**
   * Set up TLS now rather than on the first connection. The socket listens before it exists, so
   * the handshake line need not wait for it: call this right after printing the line, while core
   * reads it and dials.
   */
  prepare(): void;
  /** Finish the open calls (GOAWAY), then resolve; gives up waiting after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

interface ConnectionSide {
  /** Take over an accepted socket (paused, unread). */
  accept: (socket: Socket) => void;
  connections: Set<H2Connection>;
}

async function createConnectionSide(lookup: MethodLookup, tls: ServerTls | undefined, onEvent?: (what: string) => void): Promise<ConnectionSide> {
  const connections = new Set<H2Connection>();
  const start = (socket: Socket | TLSSocket): void => {
    onEvent?.('HTTP/2 session');
    const connection = new H2Connection(socket, (stream) => serve(stream, lookup), H2_OPTIONS);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  };
  if (!tls) {
    onEvent?.('HTTP/2 server ready');
    return {
      accept: (socket) => {
        start(socket);
        socket.resume();
      },
      connections,
    };
  }
  const { createServer } = await import('node:tls');
  // The client certificate is pinned (compared byte for byte below) rather than trusted as a CA:
  // Node builds its whole bundled root store (≈140 certificates, 30–90 ms of every plugin start)
  // for a TLS context given a CA, and for one given none; an empty list makes it build nothing.
  // go-plugin's client certificate is self-signed, so pinning it is exact.
  const pinned = new X509Certificate(tls.clientCertPem).raw;
  const server: TlsServer = createServer({
    key: tls.keyPem,
    cert: tls.certPem,
    ca: [],
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    // grpc-go requires h2 by ALPN.
    ALPNProtocols: ['h2'],
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    onEvent?.('TLS connection');
    const presented = socket.getPeerCertificate().raw as Buffer | undefined;
    if (!presented || !presented.equals(pinned)) {
      socket.destroy();
      return;
    }
    start(socket);
  });
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  onEvent?.('HTTP/2 server ready');
  return { accept: (socket) => server.emit('connection', socket), connections };
}

/**
 * Listen on 127.0.0.1 on a free port, with mutual TLS when `tls` is given. The listening socket is
 * a plain node:net server whose connections (paused, unread) are handed to TLS, or straight to
 * HTTP/2 in cleartext, once that is set up (see GrpcServer.prepare).
 */
export function listenGrpc(lookup: MethodLookup, tls: ServerTls | undefined, onEvent?: (what: string) => void): Promise<GrpcServer> {
  let side: Promise<ConnectionSide> | undefined;
  const prepare = (): Promise<ConnectionSide> => (side ??= createConnectionSide(lookup, tls, onEvent));
  const listener: NetServer = createNetServer({ pauseOnConnect: true }, (socket: Socket) => {
    onEvent?.('TCP accepted');
    // Answers are small writes right after reads: Nagle would hold one until the peer's delayed
    // ACK (40 ms on Linux). grpc-go sets TCP_NODELAY on its side too.
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    prepare().then(
      (side) => side.accept(socket),
      () => socket.destroy(),
    );
  });
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => {
      const address = listener.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        port,
        prepare: () => void prepare(),
        close: (graceMs) =>
          new Promise<void>((done) => {
            const timer = setTimeout(done, graceMs);
            timer.unref();
            listener.close(() => {
              clearTimeout(timer);
              done();
            });
            void side?.then(({ connections }) => {
              for (const connection of connections) connection.close();
            });
          }),
      });
    });
  });
}
