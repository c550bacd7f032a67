// The plugin's HTTP/2 server side (h2.ts) and HPACK (hpack.ts): RFC 7541's own examples, node's
// http2 client (nghttp2: Huffman, dynamic table, flow control) as an independent peer, and raw
// frames for what a well-behaved client never sends.
import { afterEach, describe, expect, it } from '@jest/globals';
import { connect as connectH2, constants as h2c, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { H2Connection, H2Error, type H2Options, type H2Stream } from '../../provider/protocol/h2.js';
import { encodeHeaderBlock, HpackDecoder, HpackError, huffmanDecode } from '../../provider/protocol/hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HPACK', () => {
  it('decodes the Huffman strings of RFC 7541 C.4', () => {
    expect(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'))).toBe('www.example.com');
    expect(huffmanDecode(hex('a8eb 1064 9cbf'))).toBe('no-cache');
    expect(huffmanDecode(hex('25a8 49e9 5ba9 7d7f'))).toBe('custom-key');
    expect(huffmanDecode(hex('25a8 49e9 5bb8 e8b4 bf'))).toBe('custom-value');
  });

  it('decodes the request sequence of RFC 7541 C.3 through the dynamic table', () => {
    const decoder = new HpackDecoder();
    const first = decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), 65536);
    expect(first.fields).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    const second = decoder.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'), 65536);
    expect(second.fields).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    const third = decoder.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'), 65536);
    expect(third.fields).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('evicts the oldest entries when a size update shrinks the table', () => {
    const decoder = new HpackDecoder();
    decoder.decode(hex('4003 6161 6101 31'), 65536); // aaa: 1 (38 octets)
    decoder.decode(hex('4003 6262 6201 32'), 65536); // bbb: 2, now index 62; aaa 63
    expect(decoder.decode(hex('bf be'), 65536).fields).toEqual([
      ['aaa', '1'],
      ['bbb', '2'],
    ]);
    // Room for one entry: aaa goes.
    expect(decoder.decode(hex('3f 0b be'), 65536).fields).toEqual([['bbb', '2']]);
    expect(() => decoder.decode(hex('bf'), 65536)).toThrow(/not in the table/);
  });

  it('refuses malformed blocks', () => {
    const bad: [string, RegExp][] = [
      ['80', /index 0/],
      ['ff00', /not in the table/],
      ['ffffffffff0f', /integer too large/],
      ['41', /truncated string/],
      ['4105 6162', /truncated string/],
      ['3fe21f', /table size 4097 exceeds 4096/],
      ['82 20', /table size update after a field/],
      // A string of EOS (30 one bits) and one with zero padding.
      ['0f 01 84 ffffffff', /EOS|padding/],
      ['0f 01 81 00', /padding/],
    ];
    for (const [block, message] of bad) expect(() => new HpackDecoder().decode(hex(block), 65536)).toThrow(message);
    expect(() => new HpackDecoder().decode(hex('80'), 65536)).toThrow(HpackError);
  });

  it('keeps decoding past the header list bound but keeps none of the excess', () => {
    const decoder = new HpackDecoder();
    // Two incrementally indexed fields; the second exceeds a 40-octet list bound.
    const { fields, oversized } = decoder.decode(hex('4003 6161 6101 31 4003 6262 6201 32'), 40);
    expect(oversized).toBe(true);
    expect(fields).toEqual([['aaa', '1']]);
    // The table still took both, so the next block decodes in step with the encoder.
    expect(decoder.decode(hex('be bf'), 65536).fields).toEqual([
      ['bbb', '2'],
      ['aaa', '1'],
    ]);
  });

  it('encodes literals our decoder and any decoder read back', () => {
    const fields: [string, string][] = [
      [':status', '200'],
      [':status', '431'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '13'],
      ['grpc-message', 'x'.repeat(300)],
    ];
    expect(new HpackDecoder().decode(encodeHeaderBlock(fields), 65536).fields).toEqual(fields);
    expect(encodeHeaderBlock([[':status', '200']])).toEqual(hex('88'));
  });
});

// ---------------------------------------------------------------------------------------------

const OPTIONS: H2Options = { maxHeaderListSize: 64 * 1024, maxConcurrentStreams: 100 };
const servers: Server[] = [];
const sessions: ClientHttp2Session[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

const OK_HEADERS = encodeHeaderBlock([
  [':status', '200'],
  ['content-type', 'application/octet-stream'],
]);
const trailers = (extra: [string, string][] = []): Buffer => encodeHeaderBlock([['x-status', 'done'], ...extra]);

/** A server whose every stream goes to `onStream`; resolves to its port and connections. */
async function serve(onStream: (stream: H2Stream) => void, options = OPTIONS): Promise<{ port: number; connections: H2Connection[] }> {
  const connections: H2Connection[] = [];
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    connections.push(new H2Connection(socket, onStream, options));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, connections };
}

/** Echo: the answer is the request's body, after OK headers, with trailers naming the path. */
function echo(stream: H2Stream): void {
  const chunks: Buffer[] = [];
  stream.ondata = (c) => chunks.push(c);
  stream.onend = () => stream.respond(OK_HEADERS, Buffer.concat(chunks), trailers([['x-path', stream.headers.get(':path') ?? '']]));
}

function client(port: number, settings: Record<string, number> = {}): ClientHttp2Session {
  const session = connectH2(`http://127.0.0.1:${port}`, { settings });
  session.on('error', () => undefined);
  sessions.push(session);
  return session;
}

interface Exchange {
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

function exchange(session: ClientHttp2Session, path: string, body: Buffer, extra: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, ...extra });
    let headers: IncomingHttpHeaders = {};
    let trailerFields: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailerFields = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers, body: Buffer.concat(chunks), trailers: trailerFields }));
    req.on('error', reject);
    req.end(body);
  });
}

describe('H2Connection with an HTTP/2 client', () => {
  it('answers with headers, body and trailers, on many streams at once through a churning HPACK table', async () => {
    const { port } = await serve(echo);
    const session = client(port);
    // Distinct long header values make the client's encoder Huffman-code and index them, and
    // evict (its table is 4 KiB); the paths repeat, so later streams use the indexed entries.
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        exchange(session, `/svc/Method${i % 7}`, Buffer.from(`body ${i}`), { 'x-request': `request-${i}-${'v'.repeat(100 + i)}`, 'user-agent': 'grpc-go/1.7x' }),
      ),
    );
    results.forEach((r, i) => {
      expect(r.headers[':status']).toBe(200);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.body.toString()).toBe(`body ${i}`);
      expect(r.trailers).toMatchObject({ 'x-status': 'done', 'x-path': `/svc/Method${i % 7}` });
    });
  });

  it('hands the stream its request headers as decoded', async () => {
    let seen: ReadonlyMap<string, string> | undefined;
    const { port } = await serve((stream) => {
      seen = stream.headers;
      echo(stream);
    });
    await exchange(client(port), '/a/B', Buffer.alloc(0), { 'content-type': 'application/grpc', te: 'trailers' });
    expect(seen?.get(':method')).toBe('POST');
    expect(seen?.get(':path')).toBe('/a/B');
    expect(seen?.get('content-type')).toBe('application/grpc');
    expect(seen?.get('te')).toBe('trailers');
  });

  it('takes request bodies past every window (it opens them) and sends answers past the client window (it waits for it)', async () => {
    const { port } = await serve(echo);
    // The client's stream window stays at the default 64 KiB: a 3 MiB answer needs its updates.
    const session = client(port);
    const big = Buffer.alloc(3 * 1024 * 1024, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const [a, b] = await Promise.all([exchange(session, '/big/A', big), exchange(session, '/big/B', big.subarray(0, 200_000))]);
    expect(a.body.equals(big)).toBe(true);
    expect(b.body.equals(big.subarray(0, 200_000))).toBe(true);
    expect(a.trailers['x-status']).toBe('done');
  });

  it('uses a larger frame size when the client allows one', async () => {
    const { port } = await serve(echo);
    const session = client(port, { maxFrameSize: 1 << 20, initialWindowSize: 8 << 20 });
    const big = Buffer.alloc(2 << 20, 1);
    expect((await exchange(session, '/x/Y', big)).body.length).toBe(big.length);
  });

  it('answers before the request ends (trailers-only), and the client sees the answer', async () => {
    const { port } = await serve((stream) => {
      if (stream.headers.get(':path') === '/plugin.GRPCBroker/StartStream') stream.respond(encodeHeaderBlock([[':status', '200'], ['grpc-status', '12']]));
      else echo(stream);
    });
    const session = client(port);
    const req = session.request({ ':method': 'POST', ':path': '/plugin.GRPCBroker/StartStream' });
    const headers = await new Promise<IncomingHttpHeaders>((r) => req.on('response', r));
    expect(headers['grpc-status']).toBe('12');
    // The client never ended its side; the server asked it to stop (RST_STREAM NO_ERROR).
    await new Promise<void>((r) => req.on('close', () => r()));
    expect(req.rstCode).toBe(h2c.NGHTTP2_NO_ERROR);
    // The connection goes on.
    expect((await exchange(session, '/after/Early', Buffer.from('x'))).body.toString()).toBe('x');
  });

  it('tells the stream when the client resets it, and ignores its late answer', async () => {
    let closed = 0;
    let pending: H2Stream | undefined;
    const { port } = await serve((stream) => {
      stream.onclose = () => closed++;
      if (stream.headers.get(':path') === '/slow/Call') pending = stream;
      else echo(stream);
    });
    const session = client(port);
    const req = session.request({ ':method': 'POST', ':path': '/slow/Call' });
    req.on('error', () => undefined);
    req.end(Buffer.from('x'));
    await new Promise((r) => setTimeout(r, 50));
    req.close(h2c.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(1);
    expect(pending?.answered).toBe(true);
    pending?.respond(OK_HEADERS, Buffer.from('late'), trailers());
    expect((await exchange(session, '/after/Reset', Buffer.from('y'))).body.toString()).toBe('y');
  });

  it('closes gracefully: GOAWAY, the open stream is still answered, then the socket ends', async () => {
    let held: H2Stream | undefined;
    const { port, connections } = await serve((stream) => {
      held = stream;
    });
    const session = client(port);
    const goaway = new Promise<number>((r) => session.on('goaway', (code) => r(code)));
    const call = exchange(session, '/held/Call', Buffer.from('z'));
    await new Promise((r) => setTimeout(r, 50));
    connections[0]!.close();
    expect(await goaway).toBe(h2c.NGHTTP2_NO_ERROR);
    held!.respond(OK_HEADERS, Buffer.from('answered'), trailers());
    expect((await call).body.toString()).toBe('answered');
    await new Promise<void>((r) => session.on('close', () => r()));
    expect(connections[0]!.openStreams).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

const frameBytes = (type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
};
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const CLIENT_SETTINGS = frameBytes(0x4, 0, 0);
/** An HPACK string length (7-bit prefix integer, no Huffman). */
function length7(x: number): Buffer {
  if (x < 127) return Buffer.from([x]);
  const out = [127];
  let rest = x - 127;
  while (rest >= 128) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}
/** A literal field without indexing, new name. */
const literal = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x00]), length7(name.length), Buffer.from(name, 'latin1'), length7(value.length), Buffer.from(value, 'latin1')]);
const REQUEST_BLOCK = Buffer.concat([hex('83 86'), literal(':path', '/raw/Call'), literal(':authority', 'x')]);

/** A raw client: sends bytes, collects the server's frames until the socket closes. */
async function raw(port: number): Promise<{ send: (b: Buffer) => void; frames: Frame[]; closed: Promise<void>; next: (pred: (f: Frame) => boolean) => Promise<Frame> }> {
  const socket = createConnection(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const frames: Frame[] = [];
  const waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const length = buf.readUIntBE(0, 3);
      const f = { type: buf[3]!, flags: buf[4]!, streamId: buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(buf.subarray(9, 9 + length)) };
      buf = buf.subarray(9 + length);
      frames.push(f);
      for (const w of [...waiters]) if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(f);
      }
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    send: (b) => socket.write(b),
    frames,
    closed,
    next: (pred) => {
      const found = frames.find(pred);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

const goawayCode = (f: Frame): number => f.payload.readUInt32BE(4);

describe('H2Connection with raw frames', () => {
  it('announces its settings and opens the connection window first, acknowledges settings and answers PING', async () => {
    const { port } = await serve(echo);
    const c = await raw(port);
    c.send(Buffer.concat([PREFACE, CLIENT_SETTINGS, frameBytes(0x6, 0, 0, Buffer.from('12345678'))]));
    const ping = await c.next((f) => f.type === 0x6);
    expect(ping.flags).toBe(1);
    expect(ping.payload.toString()).toBe('12345678');
    expect(c.frames[0]!.type).toBe(0x4);
    const settings = new Map<number, number>();
    for (let i = 0; i < c.frames[0]!.payload.length; i += 6) settings.set(c.frames[0]!.payload.readUInt16BE(i), c.frames[0]!.payload.readUInt32BE(i + 2));
    expect(settings.get(0x3)).toBe(100);
    expect(settings.get(0x6)).toBe(64 * 1024);
    expect(c.frames[1]!.type).toBe(0x8);
    expect(c.frames.some((f) => f.type === 0x4 && f.flags === 1)).toBe(true);
  });

  const connectionErrors: [string, Buffer, number][] = [
    ['a wrong preface', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), H2Error.PROTOCOL_ERROR],
    ['a frame larger than 16 KiB', Buffer.concat([PREFACE, frameBytes(0x0, 0, 1, Buffer.alloc(16_385))]), H2Error.FRAME_SIZE_ERROR],
    ['CONTINUATION without HEADERS', Buffer.concat([PREFACE, frameBytes(0x9, 0x4, 1, Buffer.from([0x82]))]), H2Error.PROTOCOL_ERROR],
    ['a frame inside a header block', Buffer.concat([PREFACE, frameBytes(0x1, 0, 1, hex('83')), frameBytes(0x6, 0, 0, Buffer.alloc(8))]), H2Error.PROTOCOL_ERROR],
    ['a broken HPACK block', Buffer.concat([PREFACE, frameBytes(0x1, 0x5, 1, hex('80'))]), H2Error.COMPRESSION_ERROR],
    ['HEADERS on an even stream', Buffer.concat([PREFACE, frameBytes(0x1, 0x5, 2, REQUEST_BLOCK)]), H2Error.PROTOCOL_ERROR],
    ['DATA on an idle stream', Buffer.concat([PREFACE, frameBytes(0x0, 0x1, 5, Buffer.from('x'))]), H2Error.PROTOCOL_ERROR],
    ['SETTINGS of a wrong size', Buffer.concat([PREFACE, frameBytes(0x4, 0, 0, Buffer.alloc(5))]), H2Error.FRAME_SIZE_ERROR],
    ['SETTINGS with a window past 2^31-1', Buffer.concat([PREFACE, frameBytes(0x4, 0, 0, hex('0004 80000000'))]), H2Error.FLOW_CONTROL_ERROR],
    ['a WINDOW_UPDATE of 0', Buffer.concat([PREFACE, frameBytes(0x8, 0, 0, Buffer.alloc(4))]), H2Error.PROTOCOL_ERROR],
    ['a connection window past 2^31-1', Buffer.concat([PREFACE, frameBytes(0x8, 0, 0, hex('7fffffff'))]), H2Error.FLOW_CONTROL_ERROR],
    ['PUSH_PROMISE', Buffer.concat([PREFACE, frameBytes(0x5, 0x4, 1, Buffer.alloc(4))]), H2Error.PROTOCOL_ERROR],
    ['a PING of 7 bytes', Buffer.concat([PREFACE, frameBytes(0x6, 0, 0, Buffer.alloc(7))]), H2Error.FRAME_SIZE_ERROR],
  ];
  for (const [what, bytes, code] of connectionErrors) {
    it(`ends the connection with GOAWAY on ${what}`, async () => {
      const { port } = await serve(echo);
      const c = await raw(port);
      c.send(bytes);
      const goaway = await c.next((f) => f.type === 0x7);
      expect(goawayCode(goaway)).toBe(code);
      await c.closed;
    });
  }

  it('answers 431 to a header list past its bound (sent over HEADERS and CONTINUATION) and goes on', async () => {
    const seen: string[] = [];
    const { port } = await serve((stream) => {
      seen.push(stream.headers.get(':path') ?? '');
      echo(stream);
    });
    const c = await raw(port);
    const block = Buffer.concat([REQUEST_BLOCK, literal('x-big', 'b'.repeat(70_000))]);
    const pieces = [];
    for (let i = 0; i < block.length; i += 16_000) pieces.push(block.subarray(i, i + 16_000));
    const frames = pieces.map((p, i) => frameBytes(i === 0 ? 0x1 : 0x9, (i === 0 ? 0x1 : 0) | (i === pieces.length - 1 ? 0x4 : 0), 1, p));
    c.send(Buffer.concat([PREFACE, CLIENT_SETTINGS, ...frames, frameBytes(0x1, 0x5, 3, REQUEST_BLOCK)]));
    const answer = await c.next((f) => f.type === 0x1 && f.streamId === 1);
    expect(new HpackDecoder().decode(answer.payload, 65536).fields).toEqual([[':status', '431']]);
    const second = await c.next((f) => f.type === 0x1 && f.streamId === 3 && (f.flags & 0x1) === 1);
    expect(second).toBeDefined();
    expect(seen).toEqual(['/raw/Call']);
  });

  it('refuses a stream past its concurrency limit (REFUSED_STREAM) and serves the others', async () => {
    const held: H2Stream[] = [];
    const { port } = await serve((stream) => void held.push(stream), { ...OPTIONS, maxConcurrentStreams: 3 });
    const c = await raw(port);
    c.send(Buffer.concat([PREFACE, CLIENT_SETTINGS, ...[1, 3, 5, 7].map((id) => frameBytes(0x1, 0x5, id, REQUEST_BLOCK))]));
    const refused = await c.next((f) => f.type === 0x3);
    expect(refused.streamId).toBe(7);
    expect(refused.payload.readUInt32BE(0)).toBe(H2Error.REFUSED_STREAM);
    expect(held.map((s) => s.id)).toEqual([1, 3, 5]);
    held[0]!.respond(OK_HEADERS, Buffer.from('ok'), trailers());
    await c.next((f) => f.type === 0x1 && f.streamId === 1 && (f.flags & 0x1) === 1);
    // A slot is free again.
    c.send(frameBytes(0x1, 0x5, 9, REQUEST_BLOCK));
    await new Promise((r) => setTimeout(r, 30));
    expect(held.map((s) => s.id)).toEqual([1, 3, 5, 9]);
  });

  it('takes padded DATA and HEADERS with priority fields', async () => {
    const { port } = await serve(echo);
    const c = await raw(port);
    const headers = Buffer.concat([Buffer.from([3]), Buffer.alloc(5), REQUEST_BLOCK, Buffer.alloc(3)]);
    const data = Buffer.concat([Buffer.from([2]), Buffer.from('hello'), Buffer.alloc(2)]);
    c.send(Buffer.concat([PREFACE, CLIENT_SETTINGS, frameBytes(0x1, 0x4 | 0x8 | 0x20, 1, headers), frameBytes(0x2, 0, 1, Buffer.alloc(5)), frameBytes(0x0, 0x1 | 0x8, 1, data)]));
    const body = await c.next((f) => f.type === 0x0 && f.streamId === 1);
    expect(body.payload.toString()).toBe('hello');
    const trailer = await c.next((f) => f.type === 0x1 && f.streamId === 1 && (f.flags & 0x1) === 1);
    expect(new HpackDecoder().decode(trailer.payload, 65536).fields).toContainEqual(['x-path', '/raw/Call']);
  });

  it('sends no more DATA than the stream window allows until WINDOW_UPDATE, then the rest', async () => {
    const { port } = await serve((stream) => {
      stream.onend = () => stream.respond(OK_HEADERS, Buffer.alloc(50_000, 7), trailers());
    });
    const c = await raw(port);
    // A 10 000-byte stream window.
    c.send(Buffer.concat([PREFACE, frameBytes(0x4, 0, 0, hex('0004 00002710')), frameBytes(0x1, 0x5, 1, REQUEST_BLOCK)]));
    await c.next((f) => f.type === 0x0);
    await new Promise((r) => setTimeout(r, 50));
    const sent = (): number => c.frames.filter((f) => f.type === 0x0).reduce((s, f) => s + f.payload.length, 0);
    expect(sent()).toBe(10_000);
    expect(c.frames.some((f) => f.type === 0x1 && (f.flags & 0x1) === 1)).toBe(false);
    c.send(frameBytes(0x8, 0, 1, hex('00009c40')));
    await c.next((f) => f.type === 0x1 && f.streamId === 1 && (f.flags & 0x1) === 1);
    expect(sent()).toBe(50_000);
    // Every DATA frame within the default 16 KiB frame size.
    expect(Math.max(...c.frames.filter((f) => f.type === 0x0).map((f) => f.payload.length))).toBeLessThanOrEqual(16_384);
  });

  it('ignores unknown frame types and frames on streams it already answered', async () => {
    const { port } = await serve(echo);
    const c = await raw(port);
    c.send(Buffer.concat([PREFACE, CLIENT_SETTINGS, frameBytes(0xfa, 0xff, 0, Buffer.from('?')), frameBytes(0x1, 0x5, 1, REQUEST_BLOCK)]));
    await c.next((f) => f.type === 0x1 && f.streamId === 1 && (f.flags & 0x1) === 1);
    c.send(Buffer.concat([frameBytes(0x0, 0x1, 1, Buffer.from('late')), frameBytes(0x3, 0, 1, Buffer.alloc(4)), frameBytes(0x1, 0x5, 3, REQUEST_BLOCK)]));
    await c.next((f) => f.type === 0x1 && f.streamId === 3 && (f.flags & 0x1) === 1);
    expect(c.frames.some((f) => f.type === 0x7)).toBe(false);
  });
});
