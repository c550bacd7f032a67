// The PKCS#11 keystore against a real SoftHSM2 token (no mocks): AEAD round trips, every way a
// ciphertext can fail to authenticate, destruction, persistence across close/open and across
// processes, what the token holds and that none of it can be extracted, and open-time errors.
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import { KmsError } from '../../daemon/domain/errors.js';
import type { Algorithm, MaterialRef } from '../../daemon/domain/model.js';
import type { SealedBytes } from '../../daemon/domain/ports.js';
import { DEFAULT_ROOT_KEY_LABEL, HSM_VERSION_LABEL_PREFIX, openPkcs11Keystore, type Pkcs11Keystore } from '../../daemon/keystore/pkcs11.js';
import { WRAP_FORMAT, encodeWrapped } from '../../daemon/keystore/material.js';
import { listSecretKeys, testTokenOptions, withTokenInspector } from '../support/softhsm.js';

const ALGORITHMS: Algorithm[] = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'];
const KEY_BYTES: Record<Algorithm, number> = { AES_128: 16, AES_192: 24, AES_256: 32, AES_256_HSM: 32 };

function kmsErrorOf(fn: () => unknown): KmsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof KmsError) return err;
    throw new Error(`expected a KmsError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a KmsError, nothing was thrown');
}

function expectAuthFailure(fn: () => unknown): void {
  const err = kmsErrorOf(fn);
  expect(err.code).toBe('INVALID_ARGUMENT');
  expect(err.message).toBe('ciphertext authentication failed');
}

function flipBit(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

function tryGcmOpen(key: Buffer, sealed: SealedBytes, aad: Buffer): Buffer | undefined {
  try {
    const d = createDecipheriv(`aes-${key.length * 8}-gcm` as CipherGCMTypes, key, sealed.nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(sealed.ciphertext.subarray(-16));
    return Buffer.concat([d.update(sealed.ciphertext.subarray(0, -16)), d.final()]);
  } catch {
    return undefined;
  }
}

describe('PKCS#11 keystore on SoftHSM2', () => {
  const token = testTokenOptions('pkcs11');
  let ks: Pkcs11Keystore;
  const refs = new Map<Algorithm, MaterialRef>();
  let versionCounter = 0;
  const newVersion = (alg: Algorithm): MaterialRef => ks.createVersionMaterial(`v${++versionCounter}-${randomBytes(3).toString('hex')}`, alg);

  beforeAll(() => {
    ks = openPkcs11Keystore(token);
    for (const alg of ALGORITHMS) refs.set(alg, newVersion(alg));
  });
  afterAll(() => ks.close());

  const ref = (alg: Algorithm): MaterialRef => refs.get(alg)!;

  describe('round trip', () => {
    const cases = ALGORITHMS.flatMap((alg) =>
      [
        { name: 'empty plaintext, no AAD', plaintext: Buffer.alloc(0), aad: Buffer.alloc(0) },
        { name: '64 B, no AAD', plaintext: randomBytes(64), aad: Buffer.alloc(0) },
        { name: '64 B with AAD', plaintext: randomBytes(64), aad: Buffer.from('{"keyId":"k1","ctx":"x"}') },
        { name: '32 KiB with 8 KiB AAD', plaintext: randomBytes(32768), aad: randomBytes(8192) },
      ].map((c) => ({ ...c, alg })),
    );
    it.each(cases)('$alg: $name', ({ alg, plaintext, aad }) => {
      const sealed = ks.seal(ref(alg), alg, plaintext, aad);
      expect(sealed.nonce).toHaveLength(12);
      expect(sealed.ciphertext).toHaveLength(plaintext.length + 16);
      expect(ks.open(ref(alg), alg, sealed, aad).equals(plaintext)).toBe(true);
    });

    it.each(ALGORITHMS)('%s: every seal uses a fresh nonce', (alg) => {
      const plaintext = Buffer.from('same input');
      const a = ks.seal(ref(alg), alg, plaintext, Buffer.alloc(0));
      const b = ks.seal(ref(alg), alg, plaintext, Buffer.alloc(0));
      expect(a.nonce.equals(b.nonce)).toBe(false);
      expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    });

    it('material refs: wrapped for AES_128/192/256, a token label for AES_256_HSM', () => {
      for (const alg of ['AES_128', 'AES_192', 'AES_256'] as const) {
        const r = ref(alg);
        expect(r.kind).toBe('wrapped');
        // format byte + RFC 5649 output (key + one 8-byte block)
        if (r.kind === 'wrapped') expect(Buffer.from(r.wrapped, 'base64')).toHaveLength(1 + KEY_BYTES[alg] + 8);
      }
      expect(ref('AES_256_HSM')).toEqual({ kind: 'token', label: expect.stringMatching(new RegExp(`^${HSM_VERSION_LABEL_PREFIX}v`)) as unknown });
    });
  });

  describe('authentication failures are INVALID_ARGUMENT "ciphertext authentication failed"', () => {
    const aad = Buffer.from('context-a');
    const cases = ALGORITHMS.flatMap((alg) =>
      [
        { name: 'wrong AAD', mutate: (s: SealedBytes) => ({ sealed: s, aad: Buffer.from('context-b') }) },
        { name: 'AAD missing', mutate: (s: SealedBytes) => ({ sealed: s, aad: Buffer.alloc(0) }) },
        { name: 'tampered ciphertext', mutate: (s: SealedBytes) => ({ sealed: { ...s, ciphertext: flipBit(s.ciphertext, 0) }, aad }) },
        { name: 'tampered tag', mutate: (s: SealedBytes) => ({ sealed: { ...s, ciphertext: flipBit(s.ciphertext, s.ciphertext.length - 1) }, aad }) },
        { name: 'tampered nonce', mutate: (s: SealedBytes) => ({ sealed: { ...s, nonce: flipBit(s.nonce, 5) }, aad }) },
        { name: 'truncated ciphertext', mutate: (s: SealedBytes) => ({ sealed: { ...s, ciphertext: s.ciphertext.subarray(0, 10) }, aad }) },
        { name: 'short nonce', mutate: (s: SealedBytes) => ({ sealed: { ...s, nonce: s.nonce.subarray(0, 8) }, aad }) },
      ].map((c) => ({ ...c, alg })),
    );
    it.each(cases)('$alg: $name', ({ alg, mutate }) => {
      const { sealed, aad: openAad } = mutate(ks.seal(ref(alg), alg, Buffer.from('secret payload'), aad));
      expectAuthFailure(() => ks.open(ref(alg), alg, sealed, openAad));
    });

    it.each(ALGORITHMS)('%s: another version of the same algorithm (wrong key)', (alg) => {
      const other = newVersion(alg);
      const sealed = ks.seal(ref(alg), alg, Buffer.from('secret payload'), aad);
      expectAuthFailure(() => ks.open(other, alg, sealed, aad));
    });
  });

  describe('destroyVersionMaterial', () => {
    it.each(ALGORITHMS)('%s: open and seal fail afterwards; destroying twice is harmless', (alg) => {
      const r = newVersion(alg);
      const sealed = ks.seal(r, alg, Buffer.from('bye'), Buffer.alloc(0));
      ks.destroyVersionMaterial(r);
      ks.destroyVersionMaterial(r);
      for (const err of [kmsErrorOf(() => ks.open(r, alg, sealed, Buffer.alloc(0))), kmsErrorOf(() => ks.seal(r, alg, Buffer.from('x'), Buffer.alloc(0)))]) {
        expect(err.code).toBe('FAILED_PRECONDITION');
        expect(err.message).toBe('key version material has been destroyed');
      }
    });

    it('AES_256_HSM: the token object is gone from the token', () => {
      const r = newVersion('AES_256_HSM');
      if (r.kind !== 'token') throw new Error('expected a token ref');
      expect(listSecretKeys(token).map((k) => k.label)).toContain(r.label);
      ks.destroyVersionMaterial(r);
      expect(listSecretKeys(token).map((k) => k.label)).not.toContain(r.label);
    });
  });

  describe('what the token holds', () => {
    it('only the root key and the AES_256_HSM objects, all sensitive and never extractable', () => {
      const keys = listSecretKeys(token);
      const root = keys.filter((k) => k.label === DEFAULT_ROOT_KEY_LABEL);
      expect(root).toHaveLength(1);
      expect(root[0]).toMatchObject({ type: 'AES length 32', usage: ['wrap', 'unwrap'] });
      const hsm = keys.filter((k) => k.label.startsWith(HSM_VERSION_LABEL_PREFIX));
      expect(hsm.map((k) => k.label)).toContain((ref('AES_256_HSM') as { label: string }).label);
      for (const k of hsm) expect(k).toMatchObject({ type: 'AES length 32', usage: ['encrypt', 'decrypt'] });
      // Wrapped versions leave nothing behind in the token.
      expect(keys).toHaveLength(root.length + hsm.length);
      for (const k of keys) {
        expect(k.access).toEqual(expect.arrayContaining(['sensitive', 'always sensitive', 'never extractable']));
        expect(k.access).not.toContain('extractable');
      }
    });

    it.each([
      { name: 'root wrapping key', label: () => DEFAULT_ROOT_KEY_LABEL },
      { name: 'AES_256_HSM version', label: () => (ref('AES_256_HSM') as { label: string }).label },
    ])('$name: C_GetAttributeValue(CKA_VALUE) and C_WrapKey are refused; not modifiable', ({ label }) => {
      withTokenInspector(token, (t) => {
        const key = t.key(label());
        const root = t.key(DEFAULT_ROOT_KEY_LABEL);
        expect(t.bool(key, pkcs11js.CKA_SENSITIVE)).toBe(true);
        expect(t.bool(key, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
        expect(t.bool(key, pkcs11js.CKA_NEVER_EXTRACTABLE)).toBe(true);
        expect(t.bool(key, pkcs11js.CKA_MODIFIABLE)).toBe(false);
        expect(t.bool(key, pkcs11js.CKA_TOKEN)).toBe(true);
        expect(t.failure(() => t.p11.C_GetAttributeValue(t.session, key, [{ type: pkcs11js.CKA_VALUE }]))).toBe('CKR_ATTRIBUTE_SENSITIVE');
        expect(
          t.failure(() => t.p11.C_WrapKey(t.session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, root, key, Buffer.alloc(64))),
        ).toBe('CKR_KEY_UNEXTRACTABLE');
        expect(t.failure(() => t.p11.C_SetAttributeValue(t.session, key, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]))).not.toBe('OK');
      });
    });

    it('root wrapping key cannot encrypt or decrypt, only wrap and unwrap', () => {
      withTokenInspector(token, (t) => {
        const root = t.key(DEFAULT_ROOT_KEY_LABEL);
        expect(t.bool(root, pkcs11js.CKA_ENCRYPT)).toBe(false);
        expect(t.bool(root, pkcs11js.CKA_DECRYPT)).toBe(false);
        expect(t.bool(root, pkcs11js.CKA_WRAP)).toBe(true);
        expect(t.bool(root, pkcs11js.CKA_UNWRAP)).toBe(true);
      });
    });
  });

  describe('the wrapped blob is not the key material', () => {
    it.each(['AES_128', 'AES_192', 'AES_256'] as const)('%s: no window of the blob decrypts what the version sealed', (alg) => {
      const r = ref(alg);
      if (r.kind !== 'wrapped') throw new Error('expected a wrapped ref');
      const aad = Buffer.from('aad');
      const plaintext = Buffer.from('known plaintext');
      const sealed = ks.seal(r, alg, plaintext, aad);
      const blob = Buffer.from(r.wrapped, 'base64');
      // If the material appeared anywhere in the stored blob, one of these keys would open it.
      for (let i = 0; i + KEY_BYTES[alg] <= blob.length; i++) {
        expect(tryGcmOpen(blob.subarray(i, i + KEY_BYTES[alg]), sealed, aad)).toBeUndefined();
      }
    });

    it('a key of known value, wrapped by the root key (RFC 5649), is what the keystore then encrypts with', () => {
      // Test-only: a throwaway, deliberately extractable key with a value we chose.
      const known = randomBytes(32);
      const wrapped = withTokenInspector(token, (t) => {
        const k = t.p11.C_CreateObject(t.session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: false },
          { type: pkcs11js.CKA_VALUE, value: known },
        ]);
        try {
          return Buffer.from(t.p11.C_WrapKey(t.session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, t.key(DEFAULT_ROOT_KEY_LABEL), k, Buffer.alloc(64)));
        } finally {
          t.p11.C_DestroyObject(t.session, k);
        }
      });
      expect(wrapped).toHaveLength(40);
      expect(wrapped.includes(known)).toBe(false);
      const r: MaterialRef = { kind: 'wrapped', wrapped: encodeWrapped(WRAP_FORMAT.AES_KEY_WRAP_PAD, wrapped) };
      const sealed = ks.seal(r, 'AES_256', Buffer.from('hello'), Buffer.from('aad'));
      expect(tryGcmOpen(known, sealed, Buffer.from('aad'))?.toString()).toBe('hello');
    });

    it('a blob that is not wrapped by this root key is an INTERNAL error, not an auth failure', () => {
      const r: MaterialRef = { kind: 'wrapped', wrapped: encodeWrapped(WRAP_FORMAT.AES_KEY_WRAP_PAD, randomBytes(24)) };
      const err = kmsErrorOf(() => ks.seal(r, 'AES_128', Buffer.from('x'), Buffer.alloc(0)));
      expect(err.code).toBe('INTERNAL');
      expect(err.message).toBe("key version material cannot be unwrapped by this token's root key");
    });

    it('a blob whose size does not fit the algorithm is refused', () => {
      const err = kmsErrorOf(() => ks.seal(ref('AES_128'), 'AES_256', Buffer.from('x'), Buffer.alloc(0)));
      expect(err.code).toBe('INTERNAL');
      expect(err.message).toBe('stored key version material does not match algorithm AES_256');
    });
  });

  describe('persistence', () => {
    it('a keystore closed and opened again (without SO PIN) opens old ciphertexts of every algorithm', () => {
      const other = testTokenOptions('persist');
      const first = openPkcs11Keystore(other);
      const sealed = ALGORITHMS.map((alg) => {
        const r = first.createVersionMaterial(`p-${alg}`, alg);
        return { alg, r, s: first.seal(r, alg, Buffer.from(`old ${alg}`), Buffer.from('ctx')) };
      });
      first.close();
      const again = openPkcs11Keystore({ modulePath: other.modulePath, tokenLabel: other.tokenLabel, pin: other.pin });
      try {
        for (const { alg, r, s } of sealed) expect(again.open(r, alg, s, Buffer.from('ctx')).toString()).toBe(`old ${alg}`);
        expect(listSecretKeys(other).filter((k) => k.label === DEFAULT_ROOT_KEY_LABEL)).toHaveLength(1);
      } finally {
        again.close();
      }
    });

    it('another process opens the same token and decrypts what this one sealed', () => {
      const pkcs11Module = fileURLToPath(new URL('../../daemon/keystore/pkcs11.js', import.meta.url));
      const sealed = ALGORITHMS.map((alg) => {
        const s = ks.seal(ref(alg), alg, Buffer.from(`cross-process ${alg}`), Buffer.from('ctx'));
        return { alg, ref: ref(alg), nonce: s.nonce.toString('base64'), ciphertext: s.ciphertext.toString('base64') };
      });
      const script = `
        import { openPkcs11Keystore } from ${JSON.stringify(pkcs11Module)};
        const { token, sealed } = JSON.parse(process.env.KS_INPUT);
        const ks = openPkcs11Keystore({ modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin });
        const out = sealed.map((x) => ks.open(x.ref, x.alg, { nonce: Buffer.from(x.nonce, 'base64'), ciphertext: Buffer.from(x.ciphertext, 'base64') }, Buffer.from('ctx')).toString());
        ks.close();
        process.stdout.write(JSON.stringify(out));`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, KS_INPUT: JSON.stringify({ token, sealed }) },
        encoding: 'utf8',
      });
      expect(child.stderr).toBe('');
      expect(JSON.parse(child.stdout)).toEqual(ALGORITHMS.map((alg) => `cross-process ${alg}`));
    });

    it('destruction of an AES_256_HSM object survives reopening', () => {
      const other = testTokenOptions('destroy');
      const first = openPkcs11Keystore(other);
      const r = first.createVersionMaterial('gone', 'AES_256_HSM');
      const sealed = first.seal(r, 'AES_256_HSM', Buffer.from('x'), Buffer.alloc(0));
      first.destroyVersionMaterial(r);
      first.close();
      const again = openPkcs11Keystore(other);
      try {
        expect(kmsErrorOf(() => again.open(r, 'AES_256_HSM', sealed, Buffer.alloc(0))).code).toBe('FAILED_PRECONDITION');
        expect(() => again.destroyVersionMaterial(r)).not.toThrow();
      } finally {
        again.close();
      }
    });
  });

  describe('other calls', () => {
    it('randomBytes comes from the token, in the asked length', () => {
      expect(ks.randomBytes(32)).toHaveLength(32);
      expect(ks.randomBytes(32).equals(ks.randomBytes(32))).toBe(false);
      expect(ks.randomBytes(0)).toHaveLength(0);
      expect(kmsErrorOf(() => ks.randomBytes(-1)).code).toBe('INVALID_ARGUMENT');
    });

    it('an AES_256_HSM version id used twice is ALREADY_EXISTS', () => {
      ks.createVersionMaterial('twice', 'AES_256_HSM');
      expect(kmsErrorOf(() => ks.createVersionMaterial('twice', 'AES_256_HSM')).code).toBe('ALREADY_EXISTS');
    });

    it('a closed keystore refuses work with UNAVAILABLE; a second keystore on the token keeps working', () => {
      const second = openPkcs11Keystore(token);
      second.close();
      second.close();
      expect(kmsErrorOf(() => second.randomBytes(4))).toMatchObject({ code: 'UNAVAILABLE', message: 'keystore is closed' });
      const sealed = ks.seal(ref('AES_256'), 'AES_256', Buffer.from('still here'), Buffer.alloc(0));
      expect(ks.open(ref('AES_256'), 'AES_256', sealed, Buffer.alloc(0)).toString()).toBe('still here');
    });
  });
});

describe('PKCS#11 keystore open-time errors', () => {
  it('missing module: FAILED_PRECONDITION naming the path and the fixes', () => {
    const err = kmsErrorOf(() => openPkcs11Keystore({ modulePath: '/nonexistent/libsofthsm2.so', tokenLabel: 'x', pin: '1234' }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toBe(
      'PKCS#11 module not found at /nonexistent/libsofthsm2.so: install SoftHSM2 (apt-get install softhsm2), ' +
        'configure the path of your HSM vendor module, or start with --keystore software (development only)',
    );
  });

  it('a file that is not a PKCS#11 module: FAILED_PRECONDITION', () => {
    const err = kmsErrorOf(() => openPkcs11Keystore({ modulePath: '/etc/hostname', tokenLabel: 'x', pin: '1234' }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(/^cannot load PKCS#11 module \/etc\/hostname: /);
  });

  it('wrong PIN: FAILED_PRECONDITION "wrong PIN", whether the token is logged in by this process or not', () => {
    const token = testTokenOptions('pin');
    openPkcs11Keystore(token).close();
    const wrong = { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: 'not-the-pin' };
    const cold = kmsErrorOf(() => openPkcs11Keystore(wrong));
    expect(cold).toMatchObject({ code: 'FAILED_PRECONDITION', message: `PKCS#11 login failed for token '${token.tokenLabel}': wrong PIN` });
    const open = openPkcs11Keystore(token);
    try {
      const warm = kmsErrorOf(() => openPkcs11Keystore(wrong));
      expect(warm).toMatchObject({ code: 'FAILED_PRECONDITION', message: `PKCS#11 login failed for token '${token.tokenLabel}': wrong PIN` });
    } finally {
      open.close();
    }
  });

  it('unknown token without SO PIN: FAILED_PRECONDITION listing the tokens present', () => {
    const token = testTokenOptions('absent');
    const err = kmsErrorOf(() => openPkcs11Keystore({ modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toMatch(new RegExp(`^no PKCS#11 token labelled '${token.tokenLabel}' in .* \\(tokens present: .*\\)$`));
  });

  it('a token label longer than 32 bytes is refused', () => {
    const err = kmsErrorOf(() => openPkcs11Keystore({ modulePath: '/nonexistent', tokenLabel: 'x'.repeat(33), pin: '1234' }));
    expect(err.code).toBe('FAILED_PRECONDITION');
  });

  it('an extractable object under the root key label is refused, not used', () => {
    const token = testTokenOptions('weakroot');
    const ks = openPkcs11Keystore(token);
    try {
      withTokenInspector(token, (t) => {
        t.p11.C_GenerateKey(t.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_UNWRAP, value: true },
          { type: pkcs11js.CKA_LABEL, value: 'weak-root' },
        ]);
      });
      // While open, the token's one login is tied to the default root key.
      expect(kmsErrorOf(() => openPkcs11Keystore({ ...token, rootKeyLabel: 'weak-root' })).message).toBe(
        `token '${token.tokenLabel}' is already open in this process with root key '${DEFAULT_ROOT_KEY_LABEL}', not 'weak-root'`,
      );
    } finally {
      ks.close();
    }
    const err = kmsErrorOf(() => openPkcs11Keystore({ ...token, rootKeyLabel: 'weak-root' }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toBe(
      `object 'weak-root' in token '${token.tokenLabel}' is not a sensitive, non-extractable AES-256 wrapping key; refusing to use it`,
    );
  });
});
