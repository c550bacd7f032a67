/**
 * The ceiling for this runtime: a bare `node:http` server doing what kmsd's data plane does at its
 * core — parse the JSON body, base64-decode, one AES-256-GCM call with node:crypto (random 96-bit
 * nonce, the key id as AAD), base64-encode, answer JSON — and nothing else (no routing framework,
 * no auth store, no validation, no audit, no log line).
 *
 *   node dist/bench/raw-server.js [--port 0]     prints {"url": "http://127.0.0.1:PORT"} when listening
 *
 * POST /encrypt {plaintext} → {keyId, versionId, ciphertext};  POST /decrypt {ciphertext} → {keyId, versionId, plaintext}
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

const KEY_ID = 'rawceilingkey0000000';
const VERSION_ID = 'rawceilingversion000';
const AAD = Buffer.from(KEY_ID);

export function encryptRaw(key: Buffer, plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(AAD);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

export function decryptRaw(key: Buffer, ciphertext: Buffer): Buffer {
  if (ciphertext.length < 28) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, ciphertext.subarray(0, 12));
  decipher.setAAD(AAD);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  return Buffer.concat([decipher.update(ciphertext.subarray(12, ciphertext.length - 16)), decipher.final()]);
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(key: Buffer, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { plaintext?: string; ciphertext?: string };
      if (req.url === '/encrypt' && typeof body.plaintext === 'string') {
        const ciphertext = encryptRaw(key, Buffer.from(body.plaintext, 'base64'));
        answer(res, 200, { keyId: KEY_ID, versionId: VERSION_ID, ciphertext: ciphertext.toString('base64') });
      } else if (req.url === '/decrypt' && typeof body.ciphertext === 'string') {
        const plaintext = decryptRaw(key, Buffer.from(body.ciphertext, 'base64'));
        answer(res, 200, { keyId: KEY_ID, versionId: VERSION_ID, plaintext: plaintext.toString('base64') });
      } else answer(res, 404, { code: 5, message: 'not found' });
    } catch (error) {
      answer(res, 400, { code: 3, message: (error as Error).message });
    }
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const key = randomBytes(32);
  const server = createServer((req, res) => handle(key, req, res));
  server.keepAliveTimeout = 60000;
  server.listen(Number(values.port), '127.0.0.1', () => {
    const address = server.address();
    if (typeof address === 'object' && address) console.log(JSON.stringify({ url: `http://127.0.0.1:${address.port}` }));
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
