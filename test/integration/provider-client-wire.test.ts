// The REST client's own HTTP/1.1 transport against real servers: node:http (keep-alive reuse,
// idle connections the server closes, Connection: close for one-shot CLIs) and raw TCP servers
// that answer in odd but valid ways (byte by byte, chunked, read to close) or misbehave (reset a
// reused connection, malformed answers). Every failure is an unreachable daemon with the reason.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KmsClient } from '../../provider/client/kms-client.js';
import { nodeTransport } from '../../provider/client/node-transport.js';
import { unreachableReason } from '../support/client.js';

const urlOf = (server: HttpServer | TcpServer): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

describe('the REST transport against node:http', () => {
  let server: HttpServer;
  const connections: Socket[] = [];
  const seen: { method: string; url: string; connection: string | undefined; body: string }[] = [];

  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', connection: req.headers.connection, body });
        res.setHeader('content-type', 'application/json');
        if (req.url === '/kms/v1/keys/chunked') {
          res.write('{"id":"chunked",');
          setTimeout(() => res.end('"name":"ключ"}'), 5);
          return;
        }
        if (req.url === '/kms/v1/keys/missing') {
          res.statusCode = 404;
          res.end('{"code":5,"message":"key missing not found"}');
          return;
        }
        res.end(JSON.stringify(req.method === 'POST' ? { done: true, response: { id: 'new', echo: JSON.parse(body) } } : { id: 'k1', name: 'n' }));
      });
    });
    server.on('connection', (socket) => connections.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(() => {
    seen.length = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps connections open between calls and reuses them', async () => {
    const before = connections.length;
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    for (let i = 0; i < 20; i++) await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'n' });
    expect(connections.length - before).toBe(1);
    // Ten at once need ten connections; the next ten reuse them.
    await Promise.all(Array.from({ length: 10 }, () => client.getKey('k1')));
    const afterBurst = connections.length;
    expect(afterBurst - before).toBeLessThanOrEqual(10);
    await Promise.all(Array.from({ length: 10 }, () => client.getKey('k1')));
    expect(connections.length).toBe(afterBurst);
  });

  it('sends bodies and reads chunked answers and error bodies', async () => {
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    const created = await client.createKey({ folderId: 'f', name: 'ключ', labels: { a: 'б' } });
    expect(created).toMatchObject({ id: 'new' });
    expect(JSON.parse(seen[0]?.body ?? '')).toMatchObject({ folderId: 'f', name: 'ключ', labels: { a: 'б' } });
    await expect(client.getKey('chunked')).resolves.toEqual({ id: 'chunked', name: 'ключ' });
    await expect(client.getKey('missing')).rejects.toMatchObject({ code: 5, httpStatus: 404, message: 'key missing not found' });
    // Still one healthy connection after an error answer.
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'n' });
  });

  it('opens a new connection when the server closed an idle one', async () => {
    const before = connections.length;
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    await client.getKey('k1');
    // The server ends the idle connection (as its keep-alive timeout would) and the client notices.
    const idle = connections.at(-1);
    await new Promise<void>((resolve) => idle?.end(() => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'n' });
    expect(connections.length - before).toBe(2);
  });

  it('asks for Connection: close and opens a connection per call without keep-alive', async () => {
    const before = connections.length;
    const client = new KmsClient({ endpoint: urlOf(server), token: 't', transport: nodeTransport({ keepAlive: false }) });
    await client.getKey('k1');
    await client.getKey('k1');
    expect(connections.length - before).toBe(2);
    expect(seen.map((s) => s.connection)).toEqual(['close', 'close']);
  });

  it('refuses a token that would split the request, before connecting and without echoing it', async () => {
    const before = connections.length;
    const client = new KmsClient({ endpoint: urlOf(server), token: 'secret\r\nX-Evil: 1' });
    const reason = await unreachableReason(client.getKey('k1'));
    expect(reason).toBe('invalid character in the authorization header');
    expect(reason).not.toContain('secret');
    expect(connections.length).toBe(before);
  });

  it('does not keep a process alive with idle connections', async () => {
    const saved = server.keepAliveTimeout;
    const clientModule = join(fileURLToPath(new URL('.', import.meta.url)), '../../provider/client/kms-client.js');
    const script = `const { KmsClient } = await import(${JSON.stringify(clientModule)});
const c = new KmsClient({ endpoint: process.argv[1], token: 't' });
const k = await c.getKey('k1');
process.stdout.write(k.id);`;
    // The server would keep the idle connection for longer than the child may live.
    server.keepAliveTimeout = 120_000;
    // Asynchronously: the server runs in this process and must answer the child meanwhile.
    const child = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const proc = execFile(process.execPath, ['--input-type=module', '-e', script, urlOf(server)], { encoding: 'utf8', timeout: 20_000 }, (_err, stdout, stderr) =>
        resolve({ code: proc.exitCode, stdout, stderr }),
      );
    });
    // It printed the answer and exited by itself with its connection still open (no timeout kill).
    server.keepAliveTimeout = saved;
    expect(child).toEqual({ code: 0, stdout: 'k1', stderr: '' });
  });
});

/** A raw TCP server: `serve(socket, request number on that socket, request head)`. */
type RawServer = TcpServer & { accepted: number; sockets: Set<Socket> };

function rawServer(serve: (socket: Socket, n: number, head: string) => void): Promise<RawServer> {
  const server = createTcpServer((socket) => {
    state.accepted++;
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
    let buffered = '';
    let n = 0;
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.slice(end + 4 + length);
        serve(socket, n++, head);
      }
    });
  });
  const state = Object.assign(server, { accepted: 0, sockets: new Set<Socket>() });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(state)));
}

/** Closes the server and the connections the client keeps open to it. */
const closeServer = (server: RawServer): Promise<unknown> =>
  new Promise((resolve) => {
    server.close(resolve);
    for (const socket of server.sockets) socket.destroy();
  });

describe('the REST transport against raw servers', () => {
  const servers: RawServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map(closeServer));
  });
  const start = async (serve: (socket: Socket, n: number, head: string) => void): Promise<RawServer> => {
    const server = await rawServer(serve);
    servers.push(server);
    return server;
  };

  it('reads an answer sent byte by byte, and one read to the end of the connection', async () => {
    const body = '{"id":"k1","name":"ключ"}';
    const server = await start((socket, n) => {
      if (n === 0) {
        const bytes = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        let i = 0;
        const drip = (): void => {
          if (i < bytes.length) socket.write(bytes.subarray(i, ++i), () => setImmediate(drip));
        };
        drip();
        return;
      }
      socket.end(`HTTP/1.1 200 OK\r\n\r\n${body}`);
    });
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'ключ' });
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'ключ' });
    // The read-to-end answer used the connection up: the next call opens a new one.
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'ключ' });
    expect(server.accepted).toBe(2);
  });

  it('retries once on a fresh connection when a reused one is reset before any answer', async () => {
    const server = await start((socket, n) => {
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"id":"k1"}\r\n');
      else socket.resetAndDestroy();
    });
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1' });
    // The second request lands on the reused connection, is reset, and is sent again on a new
    // connection, where it is that connection's first request and is answered.
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1' });
    expect(server.accepted).toBe(2);
  });

  it('does not retry a connection reset on its first request, nor after part of an answer', async () => {
    const reset = await start((socket) => socket.resetAndDestroy());
    expect(await unreachableReason(new KmsClient({ endpoint: urlOf(reset), token: 't' }).getKey('k1'))).toBe('ECONNRESET');
    expect(reset.accepted).toBe(1);
    const cut = await start((socket, n) => {
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
      else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"id"');
    });
    const client = new KmsClient({ endpoint: urlOf(cut), token: 't' });
    await client.health();
    expect(await unreachableReason(client.getKey('k1'))).toBe('the connection closed before the answer ended');
    expect(cut.accepted).toBe(1);
  });

  it('fails malformed and oversized answers as unreachable with the reason, and drops the connection', async () => {
    const answers = [
      'SSH-2.0-OpenSSH_9.6\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}',
      'HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n',
      `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
    ];
    let sent = 0;
    const server = await start((socket) => socket.write(answers[sent++] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
    const reasons: string[] = [];
    const client = new KmsClient({ endpoint: urlOf(server), token: 't' });
    for (let i = 0; i < answers.length; i++) {
      reasons.push(await unreachableReason(client.getKey('k1')));
    }
    expect(reasons).toEqual([
      'the answer does not start with an HTTP/1.x status line',
      'conflicting Content-Length headers in the answer',
      'the answer body is larger than 64 MiB',
      'the answer head is larger than 64 KiB',
    ]);
    // Each bad answer dropped its connection, and the client still works on a new one.
    expect(server.accepted).toBe(answers.length);
    await expect(client.health()).resolves.toEqual({});
    expect(server.accepted).toBe(answers.length + 1);
  });

  it('reports a refused connection by its code', async () => {
    const server = await start(() => undefined);
    const url = urlOf(server);
    await closeServer(server);
    servers.splice(servers.indexOf(server), 1);
    expect(await unreachableReason(new KmsClient({ endpoint: url, token: 't' }).health())).toBe('ECONNREFUSED');
  });
});
