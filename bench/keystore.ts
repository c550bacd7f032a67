// Micro benchmark of the keystores, in process: encrypt/decrypt ops/s for 64 B and 4 KiB payloads,
// wrapped versions (AES_256) and AES_256_HSM on SoftHSM2, plus the software keystore for scale.
//   npx tsc -p tsconfig.json && node dist/bench/keystore.js
// Uses a throwaway SoftHSM2 configuration under the OS temp dir (set before C_Initialize).
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Algorithm } from '../daemon/domain/model.js';
import type { Keystore } from '../daemon/domain/ports.js';
import { openSoftHsmKeystore } from '../daemon/keystore/softhsm.js';
import { openSoftwareKeystore } from '../daemon/keystore/software.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 1000);

function opsPerSecond(fn: () => void): number {
  for (let i = 0; i < 200; i++) fn(); // warm up (and fill the unwrapped-key cache)
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(DURATION_MS) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = process.hrtime.bigint();
  }
  return Math.round(n / (Number(now - start) / 1e9));
}

function bench(label: string, ks: Keystore, algorithm: Algorithm): void {
  const ref = ks.createVersionMaterial(`bench-${algorithm}-${randomBytes(4).toString('hex')}`, algorithm);
  const aad = Buffer.from('{"keyId":"bench","aadContext":"abc"}');
  for (const size of [64, 4096]) {
    const plaintext = randomBytes(size);
    const sealed = ks.seal(ref, algorithm, plaintext, aad);
    const enc = opsPerSecond(() => ks.seal(ref, algorithm, plaintext, aad));
    const dec = opsPerSecond(() => ks.open(ref, algorithm, sealed, aad));
    console.log(`${label.padEnd(9)} ${algorithm.padEnd(12)} ${String(size).padStart(5)} B  encrypt ${String(enc).padStart(7)} ops/s  decrypt ${String(dec).padStart(7)} ops/s`);
  }
  ks.destroyVersionMaterial(ref);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'kms-bench-'));
try {
  delete process.env.SOFTHSM2_CONF;
  const hsm = openSoftHsmKeystore(path.join(dir, 'hsm'));
  bench('pkcs11', hsm, 'AES_256');
  bench('pkcs11', hsm, 'AES_128');
  bench('pkcs11', hsm, 'AES_256_HSM');
  hsm.close();
  const software = openSoftwareKeystore({ dataDir: dir });
  bench('software', software, 'AES_256');
  software.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
