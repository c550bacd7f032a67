/**
 * The server side of HTTP/2 (RFC 9113) for gRPC unary calls: framing, flow control, SETTINGS,
 * PING, RST_STREAM and GOAWAY over one socket (TLS or cleartext with prior knowledge). It replaces
 * node:http2 in the plugin, whose per-stream cost (a ServerHttp2Stream, header objects checked
 * field by field, several events and native round trips per call) was ≈0.25 ms of CPU per call,
 * a quarter of a busy plugin process; core makes one call per resource per phase.
 *
 * A stream's request is handed over as it arrives (`ondata`, `onend`); its answer is written in
 * one piece (headers, the body as DATA within the peer's windows, trailers) by `respond`. No
 * server push, no priorities (ignored, as RFC 9113 allows), no request trailers other than an
 * END_STREAM HEADERS.
 */
import type { Duplex } from 'node:stream';
import { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

/** Error codes (RFC 9113 §7). */
export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** The largest frame we accept: the protocol's default, which we do not raise. */
const MAX_FRAME_SIZE = 16_384;
const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 0x7fffffff;
/** Each stream may send this much before we open its window further. */
const STREAM_WINDOW = 1 << 20;
/** The connection may have this much in flight; we top it up by what was read. */
const CONNECTION_WINDOW = 16 << 20;

export interface H2Options {
  /** Bound on a request's decoded header list; a larger one is answered 431. */
  maxHeaderListSize: number;
  /** Streams open at once; more are refused (REFUSED_STREAM: the client may retry them). */
  maxConcurrentStreams: number;
}

/** One request/response exchange. */
export interface H2Stream {
  readonly id: number;
  /** The request's header fields, in order (names lowercase, as HTTP/2 requires). */
  readonly headers: ReadonlyMap<string, string>;
  /** Each DATA payload of the request, as it arrives. */
  ondata: ((chunk: Buffer) => void) | undefined;
  /** The request is complete (END_STREAM). */
  onend: (() => void) | undefined;
  /** The exchange is over: answered and flushed to the socket, reset, or its connection gone. */
  onclose: (() => void) | undefined;
  /** True once `respond` ran or the stream was reset: nothing more may be sent. */
  readonly answered: boolean;
  /**
   * Answer: `headerBlock` (HPACK, see encodeHeaderBlock), then `body` if any, then
   * `trailerBlock` if any. Without a body or trailers the header block ends the stream.
   */
  respond(headerBlock: Buffer, body?: Buffer, trailerBlock?: Buffer): void;
}

interface StreamState extends H2Stream {
  remoteEnded: boolean;
  answered: boolean;
  /** What the peer still lets us send on this stream. */
  sendWindow: number;
  /** Read since we last opened the window. */
  unacknowledged: number;
  /** Bytes of the answer still to send (flow control), then the trailers. */
  pendingBody: Buffer | undefined;
  pendingTrailers: Buffer | undefined;
}

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const header = Buffer.allocUnsafe(9);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return header;
}

function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(9 + length);
  out.writeUIntBE(length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(streamId, 5);
  if (payload) payload.copy(out, 9);
  return out;
}

function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/** A connection-level protocol violation: GOAWAY with `code`, then the socket closes. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Serve HTTP/2 on `socket` (already through TLS if any). `onStream` is called for every new
 * request once its headers are decoded; it sets the stream's callbacks.
 */
export class H2Connection {
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, StreamState>();
  /** Streams whose answer waits for window. */
  private readonly blocked = new Set<StreamState>();
  private input: Buffer | undefined;
  private prefaceSeen = false;
  private lastStreamId = 0;
  private sendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME_SIZE;
  private received = 0;
  /** A header block spread over HEADERS and CONTINUATION frames. */
  private partial: { streamId: number; endStream: boolean; chunks: Buffer[]; size: number } | undefined;
  private goingAway = false;
  private closed = false;
  /** Out frames of the current turn, written in one piece. */
  private out: Buffer[] = [];
  private outFlushes: (() => void)[] = [];
  private flushScheduled = false;

  constructor(
    private readonly socket: Duplex,
    private readonly onStream: (stream: H2Stream) => void,
    private readonly options: H2Options,
  ) {
    const settings = Buffer.allocUnsafe(18);
    settings.writeUInt16BE(0x3, 0); // MAX_CONCURRENT_STREAMS
    settings.writeUInt32BE(options.maxConcurrentStreams, 2);
    settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(STREAM_WINDOW, 8);
    settings.writeUInt16BE(0x6, 12); // MAX_HEADER_LIST_SIZE
    settings.writeUInt32BE(options.maxHeaderListSize, 14);
    this.queue(frame(SETTINGS, 0, 0, settings));
    this.queue(frame(WINDOW_UPDATE, 0, 0, u32(CONNECTION_WINDOW - DEFAULT_WINDOW)));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A client that ends its side is gone (grpc-go never half-closes): 'close' follows.
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  /** Streams not yet over. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Stop taking new streams (GOAWAY); the socket ends when the open ones are answered. */
  close(): void {
    if (this.closed || this.goingAway) return;
    this.goingAway = true;
    this.queue(frame(GOAWAY, 0, 0, Buffer.concat([u32(this.lastStreamId), u32(H2Error.NO_ERROR)])));
    this.endIfIdle();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let buf = this.input ? Buffer.concat([this.input, chunk]) : chunk;
    this.input = undefined;
    try {
      if (!this.prefaceSeen) {
        const n = Math.min(buf.length, PREFACE.length);
        if (!buf.subarray(0, n).equals(PREFACE.subarray(0, n))) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'not an HTTP/2 connection preface');
        if (buf.length < PREFACE.length) {
          this.input = buf;
          return;
        }
        this.prefaceSeen = true;
        buf = buf.subarray(PREFACE.length);
      }
      let pos = 0;
      while (buf.length - pos >= 9 && !this.closed) {
        const length = buf.readUIntBE(pos, 3);
        if (length > MAX_FRAME_SIZE) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        if (buf.length - pos < 9 + length) break;
        const type = buf[pos + 3]!;
        const flags = buf[pos + 4]!;
        const streamId = buf.readUInt32BE(pos + 5) & 0x7fffffff;
        const payload = buf.subarray(pos + 9, pos + 9 + length);
        pos += 9 + length;
        this.onFrame(type, flags, streamId, payload);
      }
      if (pos < buf.length && !this.closed) this.input = Buffer.from(buf.subarray(pos));
    } catch (err) {
      if (err instanceof ConnectionError) this.fail(err.code, err.message);
      else if (err instanceof HpackError) this.fail(H2Error.COMPRESSION_ERROR, err.message);
      else throw err;
    }
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.partial && type !== CONTINUATION) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'header block interrupted');
    switch (type) {
      case DATA:
        return this.onDataFrame(flags, streamId, payload);
      case HEADERS:
        return this.onHeaders(flags, streamId, payload);
      case CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case PRIORITY:
        if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) this.resetStream(streamId, H2Error.FRAME_SIZE_ERROR);
        return;
      case RST_STREAM:
        if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'RST_STREAM size');
        if (streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
        return this.finish(streamId);
      case SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case PUSH_PROMISE:
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case PING:
        if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PING size');
        if (!(flags & ACK)) this.queue(frame(PING, ACK, 0, payload));
        return;
      case GOAWAY:
        if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
        this.goingAway = true;
        return this.endIfIdle();
      case WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  /** Strip padding (PADDED flag) from a DATA or HEADERS payload. */
  private static unpad(flags: number, payload: Buffer): Buffer {
    if (!(flags & PADDED)) return payload;
    if (payload.length < 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padded frame without a pad length');
    const pad = payload[0]!;
    if (pad >= payload.length) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'padding exceeds the frame');
    return payload.subarray(1, payload.length - pad);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    // The whole frame, padding included, counts against the connection window.
    this.received += payload.length;
    if (this.received >= CONNECTION_WINDOW / 2) {
      this.queue(frame(WINDOW_UPDATE, 0, 0, u32(this.received)));
      this.received = 0;
    }
    const data = H2Connection.unpad(flags, payload);
    const stream = this.streams.get(streamId);
    if (!stream) {
      if (streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we answered or reset: the peer may still have had frames in flight.
      return;
    }
    if (stream.remoteEnded) return this.resetStream(streamId, H2Error.STREAM_CLOSED);
    stream.unacknowledged += payload.length;
    if (flags & END_STREAM) stream.remoteEnded = true;
    else if (stream.unacknowledged >= STREAM_WINDOW / 2) {
      this.queue(frame(WINDOW_UPDATE, 0, streamId, u32(stream.unacknowledged)));
      stream.unacknowledged = 0;
    }
    if (data.length > 0) stream.ondata?.(data);
    if (stream.remoteEnded) stream.onend?.();
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let block = H2Connection.unpad(flags, payload);
    if (flags & PRIORITY_FLAG) {
      if (block.length < 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'HEADERS priority fields missing');
      block = block.subarray(5);
    }
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.onHeaderBlock(streamId, endStream, block);
    else this.partial = { streamId, endStream, chunks: [Buffer.from(block)], size: block.length };
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const partial = this.partial;
    if (!partial || partial.streamId !== streamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    partial.size += payload.length;
    // The block is decoded whole (the HPACK state depends on it); bound what is buffered.
    if (partial.size > this.options.maxHeaderListSize + MAX_FRAME_SIZE) throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, 'header block too large');
    partial.chunks.push(Buffer.from(payload));
    if (flags & END_HEADERS) {
      this.partial = undefined;
      this.onHeaderBlock(streamId, partial.endStream, Buffer.concat(partial.chunks, partial.size));
    }
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    const { fields, oversized } = this.decoder.decode(block, this.options.maxHeaderListSize);
    const existing = this.streams.get(streamId);
    if (existing) {
      // Request trailers: they must end the stream; gRPC has no use for their fields.
      if (existing.remoteEnded || !endStream) return this.resetStream(streamId, H2Error.PROTOCOL_ERROR);
      existing.remoteEnded = true;
      existing.onend?.();
      return;
    }
    if (streamId % 2 === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, `HEADERS on even stream ${streamId}`);
    // A stream we answered early or reset: frames still in flight are ignored (RFC 9113 §5.1).
    if (streamId <= this.lastStreamId) return;
    this.lastStreamId = streamId;
    if (this.goingAway) return this.resetStream(streamId, H2Error.REFUSED_STREAM);
    if (this.streams.size >= this.options.maxConcurrentStreams) return this.resetStream(streamId, H2Error.REFUSED_STREAM);
    const headers = new Map<string, string>();
    for (const [name, value] of fields) if (!headers.has(name)) headers.set(name, value);
    const stream = this.openStream(streamId, headers, endStream);
    if (oversized) {
      stream.respond(encodeHeaderBlock([[':status', '431']]));
      return;
    }
    this.onStream(stream);
    if (endStream) stream.onend?.();
  }

  private openStream(id: number, headers: Map<string, string>, remoteEnded: boolean): StreamState {
    const stream: StreamState = {
      id,
      headers,
      ondata: undefined,
      onend: undefined,
      onclose: undefined,
      remoteEnded,
      answered: false,
      sendWindow: this.peerInitialWindow,
      unacknowledged: 0,
      pendingBody: undefined,
      pendingTrailers: undefined,
      respond: (headerBlock: Buffer, body?: Buffer, trailerBlock?: Buffer): void => this.respond(stream, headerBlock, body, trailerBlock),
    };
    this.streams.set(id, stream);
    return stream;
  }

  private respond(stream: StreamState, headerBlock: Buffer, body: Buffer | undefined, trailerBlock: Buffer | undefined): void {
    if (stream.answered || this.closed || this.streams.get(stream.id) !== stream) return;
    stream.answered = true;
    const ends = !body?.length && !trailerBlock;
    this.queueHeaderBlock(stream.id, headerBlock, ends);
    if (ends) return this.answeredAll(stream);
    stream.pendingBody = body?.length ? body : undefined;
    stream.pendingTrailers = trailerBlock ?? Buffer.alloc(0);
    this.sendPending(stream);
  }

  /** A header block as HEADERS and, past the peer's frame size, CONTINUATION frames. */
  private queueHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    let type = HEADERS;
    let flags = endStream ? END_STREAM : 0;
    let pos = 0;
    do {
      const piece = block.subarray(pos, pos + this.peerMaxFrame);
      pos += piece.length;
      this.queue(frameHeader(piece.length, type, flags | (pos >= block.length ? END_HEADERS : 0), streamId), piece);
      type = CONTINUATION;
      flags = 0;
    } while (pos < block.length);
  }

  /** Send what the windows allow of a stream's body, then its trailers. */
  private sendPending(stream: StreamState): void {
    let body = stream.pendingBody;
    while (body) {
      const size = Math.min(body.length, this.peerMaxFrame, this.sendWindow, stream.sendWindow);
      if (size <= 0) {
        this.blocked.add(stream);
        stream.pendingBody = body;
        return;
      }
      const last = size === body.length;
      // A body-only answer (no trailers) ends with its last DATA frame.
      const endsHere = last && stream.pendingTrailers?.length === 0;
      this.queue(frameHeader(size, DATA, endsHere ? END_STREAM : 0, stream.id), body.subarray(0, size));
      this.sendWindow -= size;
      stream.sendWindow -= size;
      body = last ? undefined : body.subarray(size);
    }
    stream.pendingBody = undefined;
    this.blocked.delete(stream);
    const trailers = stream.pendingTrailers;
    stream.pendingTrailers = undefined;
    if (trailers && trailers.length > 0) this.queueHeaderBlock(stream.id, trailers, true);
    this.answeredAll(stream);
  }

  /** The stream's answer is queued: it is over once flushed; a request still coming is cut short. */
  private answeredAll(stream: StreamState): void {
    if (!stream.remoteEnded) {
      // RFC 9113 §8.1: a complete answer before the whole request; NO_ERROR asks the client to stop.
      this.queue(frame(RST_STREAM, 0, stream.id, u32(H2Error.NO_ERROR)));
    }
    this.streams.delete(stream.id);
    const onclose = stream.onclose;
    if (onclose) this.outFlushes.push(onclose);
    this.endIfIdle();
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & ACK) {
      if (payload.length !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS size');
    for (let pos = 0; pos < payload.length; pos += 6) {
      const id = payload.readUInt16BE(pos);
      const value = payload.readUInt32BE(pos + 2);
      if (id === 0x2 && value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'ENABLE_PUSH must be 0 or 1');
      if (id === 0x4) {
        if (value > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'stream window overflow');
        }
      }
      if (id === 0x5) {
        if (value < MAX_FRAME_SIZE || value > 0xffffff) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
        this.peerMaxFrame = value;
      }
      // HEADER_TABLE_SIZE: our encoder keeps no table. MAX_CONCURRENT_STREAMS: we never push.
      // MAX_HEADER_LIST_SIZE: our answers are a few short fields. Unknown ids are ignored.
    }
    this.queue(frame(SETTINGS, ACK, 0));
    this.unblock();
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window overflow');
    } else {
      const stream = this.streams.get(streamId);
      if (!stream) {
        if (streamId > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
        return;
      }
      if (increment === 0) return this.resetStream(streamId, H2Error.PROTOCOL_ERROR);
      stream.sendWindow += increment;
      if (stream.sendWindow > MAX_WINDOW) return this.resetStream(streamId, H2Error.FLOW_CONTROL_ERROR);
    }
    this.unblock();
  }

  private unblock(): void {
    for (const stream of [...this.blocked]) this.sendPending(stream);
  }

  /** A stream error: RST_STREAM, and the stream is over. */
  private resetStream(streamId: number, code: number): void {
    this.queue(frame(RST_STREAM, 0, streamId, u32(code)));
    this.finish(streamId);
  }

  /** The stream is over without (more of) an answer. */
  private finish(streamId: number): void {
    const stream = this.streams.get(streamId);
    if (!stream) return;
    this.streams.delete(streamId);
    this.blocked.delete(stream);
    stream.answered = true;
    stream.pendingBody = undefined;
    stream.pendingTrailers = undefined;
    stream.onclose?.();
    this.endIfIdle();
  }

  private endIfIdle(): void {
    if (this.goingAway && this.streams.size === 0 && !this.closed) {
      this.flush();
      this.closed = true;
      this.socket.end();
    }
  }

  /** A connection error: GOAWAY with the code and the reason, then the socket ends. */
  private fail(code: number, reason: string): void {
    if (this.closed) return;
    this.queue(frame(GOAWAY, 0, 0, Buffer.concat([u32(this.lastStreamId), u32(code), Buffer.from(reason, 'latin1')])));
    this.flush();
    this.abandon();
    this.socket.end();
    // A peer that never closes its side does not keep the socket.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** The socket is gone: every stream is over. */
  private destroy(): void {
    this.abandon();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /** No more frames in or out; every stream, open or waiting for its answer's flush, is over. */
  private abandon(): void {
    this.closed = true;
    this.out = [];
    const flushes = this.outFlushes;
    this.outFlushes = [];
    const open = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const stream of open) {
      stream.answered = true;
      stream.onclose?.();
    }
    for (const f of flushes) f();
  }

  /** Frames go out together at the end of the current turn: one socket write for many. */
  private queue(...buffers: Buffer[]): void {
    if (this.closed) return;
    this.out.push(...buffers);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    const flushed = this.outFlushes;
    this.out = [];
    this.outFlushes = [];
    this.socket.write(data, flushed.length > 0 ? () => flushed.forEach((f) => f()) : undefined);
  }
}
