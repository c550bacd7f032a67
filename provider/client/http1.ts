/**
 * HTTP/1.1 on the wire for the REST client: the request serialiser and the answer parser
 * (node-transport.ts puts them on sockets). Node only (Buffer); the web console's client uses
 * fetch instead.
 *
 * Why not node:http: the plugin is a short-lived process (core starts 3–5 per command, each
 * making up to a few hundred calls), so the client's code runs cold; node:http's ClientRequest,
 * Agent and IncomingMessage streams cost ≈ 0.3–0.4 ms of CPU per exchange there (plugin
 * profiles of a 100-key destroy). The client needs much less: one request with an optional
 * JSON body (its Content-Length written here), and one answer framed by Content-Length,
 * chunked coding or the connection's end.
 *
 * Bounded: an answer's head may be at most 64 KiB and its body at most 64 MiB; more is an error
 * (the connection is dropped), so a misbehaving server cannot make the client grow without end.
 */

export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_CHUNK_LINE = 1024;

/** A malformed or oversized answer, or a request that cannot be written. */
export class HttpWireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpWireError';
  }
}

/** RFC 9110 token characters (method and header names). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header values we send: visible ASCII, space and tab (no CR, LF, NUL or non-ASCII). */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * The request's bytes as one string (ASCII head, then the body, written as UTF-8). The head is
 * checked so a value can never end a header line early (no request splitting); the error names
 * the header, never its value (it may be the token).
 */
export function serializeRequest(method: string, url: URL, headers: Record<string, string>, body: string | undefined, close: boolean): string {
  if (!TOKEN.test(method)) throw new HttpWireError('invalid HTTP method');
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  let hasLength = false;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new HttpWireError('invalid HTTP header name');
    if (!FIELD_VALUE.test(value)) throw new HttpWireError(`invalid character in the ${name} header`);
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection' || lower === 'transfer-encoding') throw new HttpWireError(`the ${name} header is set by the transport`);
    if (lower === 'content-length') hasLength = true;
    head += `${name}: ${value}\r\n`;
  }
  if (body !== undefined && !hasLength) head += `Content-Length: ${Buffer.byteLength(body, 'utf8')}\r\n`;
  if (close) head += 'Connection: close\r\n';
  return `${head}\r\n${body ?? ''}`;
}

/** One complete answer. */
export interface HttpAnswer {
  status: number;
  body: Buffer;
  /** The connection cannot carry another exchange (Connection: close, HTTP/1.0, read to end, …). */
  close: boolean;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailers' | 'to-end' | 'done';

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: |$)/;

/**
 * Parses one answer from the bytes a connection receives, fed in any split. `push` returns the
 * answer once it is complete (and stays done); `end` is called when the peer closes, and either
 * completes an answer read to the connection's end or throws.
 */
export class AnswerParser {
  private state: State = 'head';
  /** Bytes received and not yet consumed. (No Buffer at module load: the web console's bundle
   * includes this module through the client, and a browser has no Buffer.) */
  private pending: Buffer | undefined;
  private readonly chunks: Buffer[] = [];
  private bodyBytes = 0;
  private remaining = 0;
  private trailerBytes = 0;
  private status = 0;
  private close = false;
  private answer: HttpAnswer | undefined;
  /** Whether any byte of an answer arrived (a reused connection closed before that is retried). */
  received = false;

  constructor(private readonly noBody: boolean) {}

  push(bytes: Buffer): HttpAnswer | undefined {
    if (this.state === 'done') {
      // Bytes after the answer: nothing may follow it on this connection.
      if (bytes.length > 0 && this.answer) this.answer.close = true;
      return this.answer;
    }
    if (bytes.length > 0) this.received = true;
    this.pending = this.pending === undefined || this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    for (;;) {
      const progressed = this.step();
      const answer = this.answer;
      if (answer) {
        if (this.pending !== undefined && this.pending.length > 0) answer.close = true;
        this.pending = undefined;
        return answer;
      }
      if (!progressed) return undefined;
    }
  }

  /** The peer closed the connection. */
  end(): HttpAnswer {
    if (this.state === 'done' && this.answer) return this.answer;
    if (this.state === 'to-end') return this.finish(true);
    throw new HttpWireError(this.received ? 'the connection closed before the answer ended' : 'the connection closed before an answer');
  }

  /** One step of the state machine; false when it needs more bytes. */
  private step(): boolean {
    const bytes = this.pending;
    if (bytes === undefined) return false;
    switch (this.state) {
      case 'head': {
        const end = bytes.indexOf('\r\n\r\n');
        if (end < 0) {
          if (bytes.length > MAX_HEAD_BYTES) throw new HttpWireError('the answer head is larger than 64 KiB');
          return false;
        }
        if (end > MAX_HEAD_BYTES) throw new HttpWireError('the answer head is larger than 64 KiB');
        this.pending = bytes.subarray(end + 4);
        this.parseHead(bytes.toString('latin1', 0, end));
        return true;
      }
      case 'length':
      case 'chunk-data': {
        if (bytes.length === 0) return false;
        const n = Math.min(this.remaining, bytes.length);
        this.addBody(bytes.subarray(0, n));
        this.pending = bytes.subarray(n);
        this.remaining -= n;
        if (this.remaining > 0) return false;
        if (this.state === 'length') this.finish(this.close);
        else this.state = 'chunk-end';
        return true;
      }
      case 'chunk-size': {
        const end = bytes.indexOf('\r\n');
        if (end < 0) {
          if (bytes.length > MAX_CHUNK_LINE) throw new HttpWireError('a chunk size line is too long');
          return false;
        }
        const line = bytes.toString('latin1', 0, end);
        const semicolon = line.indexOf(';');
        const digits = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
        if (!/^[0-9a-fA-F]{1,8}$/.test(digits)) throw new HttpWireError('invalid chunk size');
        const size = parseInt(digits, 16);
        this.pending = bytes.subarray(end + 2);
        if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
        return true;
      }
      case 'chunk-end': {
        if (bytes.length < 2) return false;
        if (bytes[0] !== 0x0d || bytes[1] !== 0x0a) throw new HttpWireError('a chunk does not end with CRLF');
        this.pending = bytes.subarray(2);
        this.state = 'chunk-size';
        return true;
      }
      case 'trailers': {
        const end = bytes.indexOf('\r\n');
        if (end < 0) {
          if (this.trailerBytes + bytes.length > MAX_HEAD_BYTES) throw new HttpWireError('the answer trailers are larger than 64 KiB');
          return false;
        }
        this.trailerBytes += end + 2;
        if (this.trailerBytes > MAX_HEAD_BYTES) throw new HttpWireError('the answer trailers are larger than 64 KiB');
        this.pending = bytes.subarray(end + 2);
        if (end === 0) this.finish(this.close);
        return true;
      }
      case 'to-end': {
        if (bytes.length === 0) return false;
        this.addBody(bytes);
        this.pending = undefined;
        return false;
      }
      case 'done':
        return false;
    }
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    const match = STATUS_LINE.exec(lines[0] ?? '');
    if (!match) throw new HttpWireError('the answer does not start with an HTTP/1.x status line');
    const status = Number(match[2]);
    let length: number | undefined;
    let chunked = false;
    let otherCoding = false;
    let closeToken = false;
    let keepAlive = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      if (colon <= 0) throw new HttpWireError('a malformed header line in the answer');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) throw new HttpWireError('invalid Content-Length in the answer');
        const n = Number(value);
        if (length !== undefined && length !== n) throw new HttpWireError('conflicting Content-Length headers in the answer');
        length = n;
      } else if (name === 'transfer-encoding') {
        const codings = value.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean);
        if (codings.at(-1) === 'chunked') chunked = true;
        else otherCoding = true;
      } else if (name === 'connection') {
        const tokens = value.toLowerCase().split(',').map((s) => s.trim());
        if (tokens.includes('close')) closeToken = true;
        if (tokens.includes('keep-alive')) keepAlive = true;
      }
    }
    // HTTP/1.0 closes after the answer unless it says keep-alive.
    const close = closeToken || (match[1] === '0' && !keepAlive);
    if (status < 200) {
      // 1xx (100 Continue, 103 Early Hints): informational, the real answer follows. 101 would
      // switch protocols, which this client never asks for.
      if (status === 101) throw new HttpWireError('the server switched protocols');
      return;
    }
    this.status = status;
    this.close = close;
    if (this.noBody || status === 204 || status === 304) {
      this.finish(close);
    } else if (chunked || otherCoding) {
      // With a transfer coding, Content-Length is ignored, and the connection is not reused
      // (RFC 9112 §6.3: such a message may be a smuggling attempt).
      if (length !== undefined) this.close = true;
      if (chunked && !otherCoding) this.state = 'chunk-size';
      else {
        this.close = true;
        this.state = 'to-end';
      }
    } else if (length !== undefined) {
      if (length > MAX_BODY_BYTES) throw new HttpWireError('the answer body is larger than 64 MiB');
      this.remaining = length;
      this.state = 'length';
      if (length === 0) this.finish(close);
    } else {
      this.close = true;
      this.state = 'to-end';
    }
  }

  private addBody(bytes: Buffer): void {
    this.bodyBytes += bytes.length;
    if (this.bodyBytes > MAX_BODY_BYTES) throw new HttpWireError('the answer body is larger than 64 MiB');
    this.chunks.push(bytes);
  }

  private finish(close: boolean): HttpAnswer {
    const body = this.chunks.length === 1 ? (this.chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(this.chunks, this.bodyBytes);
    this.state = 'done';
    this.answer = { status: this.status, body, close };
    return this.answer;
  }
}
