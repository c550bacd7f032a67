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
  encode(response: unknown): Buffer;
  /** Never rejects: failures are part of the response (diagnostics). */
  handle(request: unknown): Promise<unknown>;
  /** Runs once the response has been handed to the connection (GRPCController.Shutdown exits here). */
  afterResponse?: () => void;
}

/** Finds the method for a `:path`; may load code on first use. */
export type MethodLookup = (path: string) => Promise<UnaryMethod | undefined>;

/** Mutual TLS material: our key and certificate, and the client certificate to require. */
export interface ServerTls {
  keyPem: string;
  certPem: string;
  clientCertPem: string;
}

/** Core's client allows 256 MiB messages; accept as much. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, lookup: MethodLookup): void {
  stream.on('error', () => stream.destroy());
  const path = headers[':path'] ?? '';
  if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith('application/grpc')) {
    if (!stream.headersSent) stream.respond({ ':status': 415 }, { endStream: true });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_MESSAGE_BYTES + 5) trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, 'message too large');
    else chunks.push(chunk);
  });
  const body = new Promise<Buffer>((resolve) =>
    stream.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    }),
  );
  void lookup(path).then(async (method) => {
    if (!method) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`);
      if (!ended) stream.close();
      return;
    }
    const bytes = await body;
    if (bytes.length < 5 || bytes[0] !== 0 || bytes.readUInt32BE(1) !== bytes.length - 5) {
      trailersOnly(stream, GrpcStatus.INTERNAL, 'expected exactly one uncompressed message');
      return;
    }
    let request: unknown;
    try {
      request = method.decode(bytes.subarray(5));
    } catch (err) {
      trailersOnly(stream, GrpcStatus.INTERNAL, `cannot decode the request: ${(err as Error).message}`);
      return;
    }
    let payload: Buffer;
    try {
      payload = method.encode(await method.handle(request));
    } catch (err) {
      trailersOnly(stream, GrpcStatus.INTERNAL, (err as Error).message);
      return;
    }
    if (stream.destroyed) return;
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(payload.length, 1);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    if (method.afterResponse) stream.once('close', method.afterResponse);
    stream.end(Buffer.concat([prefix, payload]));
  });
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
