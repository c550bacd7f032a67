// The bench's open-loop load (bench/paced.ts) on raw sockets: every request is answered or counted
// as failed, whatever the server does (2xx, non-2xx, chunked answers, Connection: close after each
// answer, a dropped connection, nothing listening, no answer at all), only the measured part is
// timed, and at most `connections` sockets are open at once. Counts only: no timing assertions.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pacedLoad, pacedLoadInChild, type PacedOptions, type RequestShape } from '../../bench/paced.js';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Seen {
  requests: number;
  sockets: Set<Socket>;
  bodies: Set<string>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<{ shape: RequestShape; seen: Seen }> {
  const seen: Seen = { requests: 0, sockets: new Set(), bodies: new Set() };
  const server = createServer((req, res) => {
    seen.requests++;
    seen.sockets.add(req.socket);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.bodies.add(`${req.method} ${req.url} ${req.headers['content-type']} ${Buffer.concat(chunks).toString('utf8')}`);
      handler(req, res, seen);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { shape: { url: `http://127.0.0.1:${port}/encrypt?x=1`, headers: { 'content-type': 'application/json' }, body: '{"plaintext":"aGk="}' }, seen };
}

const options = (extra: Partial<PacedOptions> = {}): PacedOptions => ({ rate: 400, seconds: 0.25, connections: 4, timeoutMs: 5000, ...extra });

describe('pacedLoad', () => {
  it('sends the same request rate × seconds times and times every 2xx answer', async () => {
    const { shape, seen } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    const run = await pacedLoad(shape, options());
    expect(run).toMatchObject({ requests: 100, failures: 0 });
    expect(seen.requests).toBe(100);
    expect([...seen.bodies]).toEqual(['POST /encrypt?x=1 application/json {"plaintext":"aGk="}']);
    expect(seen.sockets.size).toBeLessThanOrEqual(4);
    expect(run.opsPerSecond).toBeGreaterThan(0);
    expect(run.p99Ms).toBeGreaterThanOrEqual(run.p50Ms);
  });

  it('sends the warm-up too but times and counts only the measured part', async () => {
    const { shape, seen } = await serve((_req, res) => res.end('{}'));
    const run = await pacedLoad(shape, options({ warmupSeconds: 0.25 }));
    expect(run).toMatchObject({ requests: 100, failures: 0 });
    expect(seen.requests).toBe(200);
  });

  it('counts non-2xx answers as failures, and reads chunked answers', async () => {
    const { shape, seen } = await serve((_req, res, s) => {
      res.statusCode = s.requests % 2 === 0 ? 503 : 200;
      // Two writes without a Content-Length: node:http sends them chunked.
      res.write('{"part":');
      res.end('1}');
    });
    const run = await pacedLoad(shape, options());
    expect(seen.requests).toBe(100);
    expect(run).toMatchObject({ requests: 100, failures: 50 });
  });

  it('opens a new connection when the server closes one after each answer', async () => {
    const { shape, seen } = await serve((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('{}');
    });
    const run = await pacedLoad(shape, options({ rate: 200 }));
    expect(run).toMatchObject({ requests: 50, failures: 0 });
    expect(seen.sockets.size).toBe(50);
  });

  it('counts a connection dropped without an answer as a failure and goes on', async () => {
    const { shape } = await serve((req, res, s) => {
      if (s.requests % 5 === 0) req.socket.destroy();
      else res.end('{}');
    });
    const run = await pacedLoad(shape, options());
    expect(run).toMatchObject({ requests: 100, failures: 20 });
  });

  it('fails every request when nothing listens, and still ends', async () => {
    const { shape } = await serve((_req, res) => res.end('{}'));
    const server = servers.pop();
    await new Promise((resolve) => server?.close(resolve));
    const run = await pacedLoad(shape, options({ rate: 100 }));
    expect(run).toMatchObject({ requests: 25, failures: 25, opsPerSecond: 0 });
  });

  it('fails a request that gets no answer within timeoutMs', async () => {
    const { shape } = await serve((_req, res, s) => {
      if (s.requests !== 3) res.end('{}');
    });
    const run = await pacedLoad(shape, options({ rate: 100, timeoutMs: 1000 }));
    expect(run).toMatchObject({ requests: 25, failures: 1 });
  });

  it('runs a job in a fresh process (pacedLoadInChild)', async () => {
    const { shape, seen } = await serve((_req, res) => res.end('{}'));
    const runs = await pacedLoadInChild({ shape, options: options({ rate: 200 }), runs: 2 });
    expect(runs.map((r) => [r.requests, r.failures])).toEqual([
      [50, 0],
      [50, 0],
    ]);
    expect(seen.requests).toBe(100);
  });
});
