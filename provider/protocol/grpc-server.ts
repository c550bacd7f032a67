/**
 * A gRPC server for unary calls on node:http2: what go-plugin and tfplugin6 need, and nothing
 * more. @grpc/grpc-js loaded and initialised in ≈50 ms of every plugin start (its bundle was
 * 670 KiB of the plugin's 1.1 MiB); core starts the plugin several times per command.
 *
 * gRPC over HTTP/2: a POST to /<service>/<method> with content-type application/grpc; the body is
 * length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length); the answer is
 * headers, one message, and trailers with grpc-status. Methods this server does not know
 * (GRPCBroker, GRPCStdio, health, CallFunction, …) get a trailers-only UNIMPLEMENTED at once, the
 * answer grpc-go expects, even for streams the client keeps open.
 */
import { X509Certificate } from 'node:crypto';
import type { Http2Server, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** gRPC status codes used here. */
export const GrpcStatus = { OK: 0, INTERNAL: 13, UNIMPLEMENTED: 12, INVALID_ARGUMENT: 3 } as const;

/** One unary method: how to read its request, answer it, and write its response. */
export interface UnaryMethod {
  decode(bytes: Buffer): unknown;
  /** The response as one gRPC message frame: the 5-byte prefix and the message in one buffer. */
  encodeFrame(response: unknown): Buffer;
  /** Never rejects: failures are part of the response (diagnostics). */
  handle(request: unknown): Promise<unknown>;
  /** Runs once the response has been handed to the connection (GRPCController.Shutdown exits here). */
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

/** Every answer's headers and trailers (http2 copies them; they are never changed). */
const RESPONSE_HEADERS = Object.freeze({ ':status': 200, 'content-type': 'application/grpc' });
const OK_TRAILERS = Object.freeze({ 'grpc-status': '0' });

function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

function destroyOnError(this: ServerHttp2Stream): void {
  this.destroy();
}

function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

function respond(stream: ServerHttp2Stream, method: UnaryMethod, response: unknown): void {
  let frame: Buffer;
  try {
    frame = method.encodeFrame(response);
  } catch (err) {
    trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message);
    return;
  }
  if (stream.destroyed) return;
  stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  stream.once('wantTrailers', sendOkTrailers);
  if (method.afterResponse) stream.once('close', method.afterResponse);
  stream.end(frame);
}

/** Decode the one message of `body` and answer it. */
function answer(stream: ServerHttp2Stream, method: UnaryMethod, body: Buffer): void {
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

function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, lookup: MethodLookup): void {
  stream.on('error', destroyOnError);
  const path = headers[':path'] ?? '';
  if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith('application/grpc')) {
    if (!stream.headersSent) stream.respond({ ':status': 415 }, { endStream: true });
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
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES + 5) {
      tooLarge = true;
      trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, 'message too large');
    } else if (!first) first = chunk;
    else (more ??= [first]).push(chunk);
  });
  stream.on('end', () => {
    ended = true;
    if (method && !tooLarge) answer(stream, method, body());
  });
  const found = (m: UnaryMethod | undefined): void => {
    method = m ?? null;
    if (!m) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
      if (!ended) stream.close();
    } else if (ended && !tooLarge) answer(stream, m, body());
  };
  const looked = lookup(path);
  if (looked instanceof Promise) looked.then(found, (err: unknown) => trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message));
  else found(looked);
}

/** A listening server. */
export interface GrpcServer {
  port: number;
  /**
   * Load node:http2 and set up TLS now rather than on the first connection. The socket listens
   * before either exists, so the handshake line need not wait for them (≈10 ms of every start):
   * call this right after printing it, while core reads the line and dials.
   */
  prepare(): void;
  /** Finish the open calls (GOAWAY), then resolve; gives up waiting after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

interface Http2Side {
  server: Http2Server;
  sessions: Set<Http2Session>;
}

async function createHttp2Side(lookup: MethodLookup, tls: ServerTls | undefined, onEvent?: (what: string) => void): Promise<Http2Side> {
  const { createSecureServer, createServer } = await import('node:http2');
  const settings = { maxHeaderListSize: 64 * 1024 };
  // The client certificate is pinned (compared byte for byte below) rather than trusted as a CA:
  // Node builds its whole bundled root store (≈140 certificates, 30–90 ms of every plugin start)
  // for a TLS context given a CA, and for one given none; an empty list makes it build nothing.
  // go-plugin's client certificate is self-signed, so pinning it is exact.
  const pinned = tls ? new X509Certificate(tls.clientCertPem).raw : undefined;
  const server: Http2Server = tls
    ? createSecureServer({
        key: tls.keyPem,
        cert: tls.certPem,
        ca: [],
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        maxSessionMemory: 512,
        settings,
      })
    : createServer({ maxSessionMemory: 512, settings });
  if (pinned) {
    server.on('secureConnection', (socket: TLSSocket) => {
      const presented = socket.getPeerCertificate().raw as Buffer | undefined;
      if (!presented || !presented.equals(pinned)) socket.destroy();
    });
  }
  const sessions = new Set<Http2Session>();
  server.on('secureConnection', () => onEvent?.('TLS connection'));
  server.on('session', (session: Http2Session) => {
    onEvent?.('HTTP/2 session');
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => session.destroy());
  });
  server.on('stream', (stream, headers) => serve(stream, headers, lookup));
  onEvent?.('HTTP/2 server ready');
  return { server, sessions };
}

/**
 * Listen on 127.0.0.1 on a free port, with mutual TLS when `tls` is given. The listening socket is
 * a plain node:net server whose connections (paused, unread) are handed to the HTTP/2 server —
 * TLS or cleartext — once that exists (see GrpcServer.prepare).
 */
export function listenGrpc(lookup: MethodLookup, tls: ServerTls | undefined, onEvent?: (what: string) => void): Promise<GrpcServer> {
  let side: Promise<Http2Side> | undefined;
  const prepare = (): Promise<Http2Side> => (side ??= createHttp2Side(lookup, tls, onEvent));
  const listener: NetServer = createNetServer({ pauseOnConnect: true }, (socket: Socket) => {
    onEvent?.('TCP accepted');
    socket.on('error', () => socket.destroy());
    prepare().then(
      ({ server }) => {
        server.emit('connection', socket);
        // A TLS socket reads its transport itself; a cleartext HTTP/2 session consumes the socket's
        // handle, which pauseOnConnect left unread.
        if (!tls) socket.resume();
      },
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
            void side?.then(({ sessions }) => {
              for (const session of sessions) session.close();
            });
          }),
      });
    });
  });
}
