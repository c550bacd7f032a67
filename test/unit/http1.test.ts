// The REST client's HTTP/1.1 wire code: the request serialiser refuses anything that could split
// a request, and the answer parser frames answers by Content-Length, chunked coding or the
// connection's end, in any split of the bytes, and refuses malformed or oversized answers.
import { describe, expect, it } from '@jest/globals';
import { AnswerParser, HttpWireError, MAX_BODY_BYTES, serializeRequest, type HttpAnswer } from '../../provider/client/http1.js';

/** Feeds the bytes in pieces of `size` bytes; returns the answer when it completes. */
function parse(text: string | Buffer, size = Infinity, noBody = false): { answer: HttpAnswer | undefined; parser: AnswerParser } {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const parser = new AnswerParser(noBody);
  let answer: HttpAnswer | undefined;
  const step = Number.isFinite(size) ? size : bytes.length;
  for (let i = 0; i < bytes.length; i += step) answer = parser.push(bytes.subarray(i, i + step)) ?? answer;
  return { answer, parser };
}

describe('serializeRequest', () => {
  const url = new URL('http://127.0.0.1:8080/kms/v1/keys/k1?view=FULL');

  it('writes the request line, Host, the headers and the body with its length', () => {
    const text = serializeRequest('POST', url, { authorization: 'Bearer t', 'content-type': 'application/json' }, '{"name":"ключ"}', false);
    expect(text).toBe(
      'POST /kms/v1/keys/k1?view=FULL HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nauthorization: Bearer t\r\ncontent-type: application/json\r\n' +
        'Content-Length: 19\r\n\r\n{"name":"ключ"}',
    );
    expect(Buffer.byteLength('{"name":"ключ"}')).toBe(19);
  });

  it("keeps the caller's Content-Length and asks for Connection: close when told", () => {
    const text = serializeRequest('DELETE', url, { 'content-length': '0' }, '', true);
    expect(text).toBe('DELETE /kms/v1/keys/k1?view=FULL HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ncontent-length: 0\r\nConnection: close\r\n\r\n');
  });

  it('refuses a header value that would end its line, naming the header but not the value', () => {
    for (const value of ['t\r\nX-Evil: 1', 't\nX', 't\0', 'ключ']) {
      let error: unknown;
      try {
        serializeRequest('GET', url, { authorization: `Bearer ${value}` }, undefined, false);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(HttpWireError);
      expect((error as Error).message).toBe('invalid character in the authorization header');
    }
  });

  it('refuses bad methods and header names, and headers the transport owns', () => {
    expect(() => serializeRequest('GET /x', url, {}, undefined, false)).toThrow('invalid HTTP method');
    expect(() => serializeRequest('GET', url, { 'x y': '1' }, undefined, false)).toThrow('invalid HTTP header name');
    expect(() => serializeRequest('GET', url, { 'a\r\nb': '1' }, undefined, false)).toThrow('invalid HTTP header name');
    for (const name of ['Host', 'connection', 'Transfer-Encoding']) {
      expect(() => serializeRequest('GET', url, { [name]: 'x' }, undefined, false)).toThrow(`the ${name} header is set by the transport`);
    }
  });
});

describe('AnswerParser', () => {
  const body = '{"id":"k1","name":"ключ"}';
  const length = Buffer.byteLength(body);

  it('frames an answer by Content-Length in every split of its bytes', () => {
    const text = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n${body}`;
    for (const size of [1, 2, 3, 7, 64, Infinity]) {
      const { answer } = parse(text, size);
      expect(answer?.status).toBe(200);
      expect(answer?.body.toString('utf8')).toBe(body);
      expect(answer?.close).toBe(false);
    }
  });

  it('decodes chunked coding with extensions and trailers in every split', () => {
    const a = Buffer.from(body).subarray(0, 10);
    const b = Buffer.from(body).subarray(10);
    const text = Buffer.concat([
      Buffer.from(`HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n${a.length.toString(16)};ext=1\r\n`),
      a,
      Buffer.from(`\r\n${b.length.toString(16).toUpperCase()}\r\n`),
      b,
      Buffer.from('\r\n0\r\nX-Trailer: yes\r\n\r\n'),
    ]);
    for (const size of [1, 5, Infinity]) {
      const { answer } = parse(text, size);
      expect(answer?.status).toBe(201);
      expect(answer?.body.toString('utf8')).toBe(body);
      expect(answer?.close).toBe(false);
    }
  });

  it('reads an answer with no length to the end of the connection, which cannot be reused', () => {
    const { answer, parser } = parse(`HTTP/1.1 200 OK\r\n\r\n${body}`);
    expect(answer).toBeUndefined();
    const done = parser.end();
    expect(done.body.toString('utf8')).toBe(body);
    expect(done.close).toBe(true);
  });

  it('skips informational answers and takes the final one', () => {
    const { answer } = parse(`HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}`, 3);
    expect(answer?.status).toBe(200);
    expect(answer?.body.toString()).toBe('{}');
  });

  it('has no body for 204, 304 and HEAD', () => {
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n').answer).toMatchObject({ status: 204, close: false });
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n').answer).toMatchObject({ status: 304 });
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', Infinity, true).answer).toMatchObject({ status: 200, close: false });
  });

  it('marks the connection as not reusable for Connection: close, HTTP/1.0 and bytes after the answer', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}').answer?.close).toBe(true);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}').answer?.close).toBe(true);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}').answer?.close).toBe(false);
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n').answer?.close).toBe(true);
    // Content-Length next to a transfer coding: the coding frames it, and the connection is dropped.
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n').answer).toMatchObject({ close: true });
  });

  it('refuses malformed answers', () => {
    const cases: [string, RegExp][] = [
      ['SSH-2.0-OpenSSH\r\n\r\n', /status line/],
      ['HTTP/2 200\r\n\r\n', /status line/],
      ['HTTP/1.1 099 X\r\n\r\n', /status line/],
      ['HTTP/1.1 200 OK\r\nno colon here\r\n\r\n', /malformed header/],
      ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /invalid Content-Length/],
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /conflicting Content-Length/],
      [`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`, /larger than 64 MiB/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /invalid chunk size/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX', /does not end with CRLF/],
      ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /switched protocols/],
    ];
    for (const [text, message] of cases) expect(() => parse(text, 4)).toThrow(message);
  });

  it('bounds the head and the chunk lines it buffers', () => {
    const parser = new AnswerParser(false);
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\n'));
    expect(() => parser.push(Buffer.alloc(64 * 1024, 'a'))).toThrow(/head is larger than 64 KiB/);
    const chunked = new AnswerParser(false);
    chunked.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'));
    expect(() => chunked.push(Buffer.alloc(2000, '1'))).toThrow(/chunk size line is too long/);
  });

  it('fails an answer cut short by the end of the connection', () => {
    const { parser } = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}');
    expect(() => parser.end()).toThrow('the connection closed before the answer ended');
    expect(parser.received).toBe(true);
    const empty = new AnswerParser(false);
    expect(() => empty.end()).toThrow('the connection closed before an answer');
    expect(empty.received).toBe(false);
  });
});
