/** Table-driven unit tests of the pure domain pieces: durations, ciphertext framing, config. */
import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseConfig, parseGoDuration } from '../../daemon/config.js';
import { decodeCiphertext, encodeCiphertext } from '../../daemon/domain/crypto.js';
import { describeSeconds, parseDurationSeconds } from '../../daemon/domain/durations.js';
import { ERROR_CODES, KmsError } from '../../daemon/domain/errors.js';
import { HTTP_STATUS, toHttpError } from '../../daemon/http/errors.js';
import { decodeBase64 } from '../../daemon/http/validation.js';

describe('parseDurationSeconds', () => {
  it.each([
    ['86400s', 86400],
    ['3600.000s', 3600],
    ['0s', 0],
    ['31536000s', 31536000],
    // every proto3 JSON form; the domain keeps whole seconds (a fraction is dropped, never rounded up)
    ['3600.5s', 3600],
    ['3599.999999999s', 3599],
    ['1.5s', 1],
  ])('%s → %i', (text, seconds) => {
    expect(parseDurationSeconds('rotationPeriod', text)).toBe(seconds);
  });

  it.each([
    ['24h', /expected seconds with an "s" suffix/],
    ['86400', /expected seconds/],
    ['-5s', /must not be negative/],
    ['1.5.0s', /expected seconds/],
    ['', /expected seconds/],
  ])('%j is refused', (text, message) => {
    expect(() => parseDurationSeconds('rotationPeriod', text)).toThrow(message);
  });

  it.each([
    [3600, '1h'],
    [5400, '90m'],
    [61, '61s'],
  ])('describeSeconds(%i) = %s', (seconds, text) => {
    expect(describeSeconds(seconds)).toBe(text);
  });
});

describe('ciphertext framing', () => {
  it('round-trips the version id, nonce and sealed bytes', () => {
    const nonce = Buffer.alloc(12, 9);
    const sealed = Buffer.alloc(40, 3);
    const framed = encodeCiphertext('abjversion1', nonce, sealed);
    expect(framed[0]).toBe(1);
    const parsed = decodeCiphertext(framed);
    expect(parsed.versionId).toBe('abjversion1');
    expect(parsed.nonce.equals(nonce)).toBe(true);
    expect(parsed.sealed.equals(sealed)).toBe(true);
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['unknown format', Buffer.from([2, 3, 97, 98, 99])],
    ['zero-length id', Buffer.concat([Buffer.from([1, 0]), Buffer.alloc(40)])],
    ['id longer than 50', Buffer.concat([Buffer.from([1, 51]), Buffer.alloc(100, 97)])],
    ['too short for nonce and tag', Buffer.concat([Buffer.from([1, 3]), Buffer.from('abc'), Buffer.alloc(27)])],
    ['id with bad characters', Buffer.concat([Buffer.from([1, 3]), Buffer.from('A/c'), Buffer.alloc(40)])],
  ])('%s is malformed', (_name, bytes) => {
    expect(() => decodeCiphertext(bytes)).toThrow(/ciphertext: is malformed or truncated/);
  });
});

describe('config', () => {
  it('uses embedded defaults', () => {
    const config = parseConfig([], {});
    expect(config).toMatchObject({ listenHost: '127.0.0.1', listenPort: 8443, dataDir: './kms-data', keystore: 'pkcs11', unsafeTestClock: false, restoreWindowSeconds: 72 * 3600 });
  });

  it('flags win over environment variables', () => {
    const config = parseConfig(['--listen', '0.0.0.0:9000'], { KMS_LISTEN: '127.0.0.1:1', KMS_DATA_DIR: '/var/lib/kms' });
    expect(config.listenPort).toBe(9000);
    expect(config.dataDir).toBe('/var/lib/kms');
  });

  it('accepts IPv6 listen addresses', () => {
    expect(parseConfig(['--listen', '[::1]:8443'], {}).listenHost).toBe('::1');
  });

  it.each([
    [['--listen', 'nohost'], /--listen must be HOST:PORT/],
    [['--listen', '127.0.0.1:70000'], /--listen must be HOST:PORT/],
    [['--keystore', 'tpm'], /--keystore must be pkcs11 or software/],
    [['--restore-window', '3d'], /--restore-window must be a duration/],
    [['--bogus'], /Unknown option '--bogus'/],
  ])('%j is refused', (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(ConfigError);
    expect(() => parseConfig(argv, {})).toThrow(message);
  });

  it.each([
    ['72h', 259200],
    ['1h30m', 5400],
    ['45s', 45],
  ])('parseGoDuration(%s) = %i', (text, seconds) => {
    expect(parseGoDuration('x', text)).toBe(seconds);
  });
});

describe('error mapping', () => {
  it('maps every domain code to exactly one HTTP status', () => {
    expect(Object.keys(HTTP_STATUS).sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('never leaks the message of an internal error', () => {
    const mapped = toHttpError(new Error('ENOSPC: /secret/path/kms.json'), 'req-1');
    expect(mapped.status).toBe(500);
    expect(mapped.body.message).toBe('internal error; quote request id req-1 to the operator');
    expect(JSON.stringify(mapped.body)).not.toContain('/secret/path');
    const internal = toHttpError(new KmsError('INTERNAL', 'primary version missing'), 'req-2');
    expect(internal.body.message).not.toContain('primary');
  });
});

describe('decodeBase64', () => {
  it('accepts standard and URL-safe alphabets, padded or not', () => {
    expect(decodeBase64('f', 'aGk=', 10).toString()).toBe('hi');
    expect(decodeBase64('f', 'aGk', 10).toString()).toBe('hi');
    expect(decodeBase64('f', '-_8=', 10)).toEqual(Buffer.from([0xfb, 0xff]));
  });
  it.each([['abc=d'], ['a'], ['ab=c']])('refuses non-canonical %j', (text) => {
    expect(() => decodeBase64('plaintext', text, 10)).toThrow(/plaintext: is not valid base64/);
  });
  it('enforces the byte limit after decoding', () => {
    expect(() => decodeBase64('aadContext', Buffer.alloc(11).toString('base64'), 10)).toThrow(/at most 10 bytes, got 11/);
  });
});
