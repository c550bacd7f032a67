/**
 * Micro benchmark of the keystores, in process: encrypt/decrypt ops/s for 256 B and 4 KiB
 * payloads, wrapped versions (AES_256, AES_128) and AES_256_HSM on SoftHSM2, plus the software
 * keystore for scale. Each figure is the median of `runs` timed loops of `ms` milliseconds.
 *
 *   node dist/bench/keystore.js [--ms 1000] [--runs 3] [--json]
 *
 * Uses a throwaway SoftHSM2 configuration under the OS temp dir (set before C_Initialize), which
 * is why bench/run.ts runs this file as its own process rather than importing it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Algorithm } from '../daemon/domain/model.js';
import type { Keystore } from '../daemon/domain/ports.js';
import { openSoftHsmKeystore } from '../daemon/keystore/softhsm.js';
import { openSoftwareKeystore } from '../daemon/keystore/software.js';
import { figure, type Figure } from './stats.js';

export interface KeystoreCase {
  keystore: 'pkcs11' | 'software';
  algorithm: Algorithm;
  size: number;
  encryptOpsPerSecond: Figure;
  decryptOpsPerSecond: Figure;
}

/** Calls per second of `fn` over a loop bounded by `durationMs`. */
function opsPerSecond(fn: () => void, durationMs: number): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(durationMs) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}

function benchAlgorithm(keystore: KeystoreCase['keystore'], ks: Keystore, algorithm: Algorithm, sizes: number[], durationMs: number, runs: number): KeystoreCase[] {
  const ref = ks.createVersionMaterial(`bench-${algorithm}-${randomBytes(4).toString('hex')}`, algorithm);
  const aad = Buffer.from('{"keyId":"bench","aadContext":"abc"}');
  const cases: KeystoreCase[] = [];
  try {
    for (const size of sizes) {
      const plaintext = randomBytes(size);
      const sealed = ks.seal(ref, algorithm, plaintext, aad);
      const encrypt = () => ks.seal(ref, algorithm, plaintext, aad);
      const decrypt = () => ks.open(ref, algorithm, sealed, aad);
      for (let i = 0; i < 200; i++) encrypt(); // warm up (and fill the unwrapped-key cache)
      const enc: number[] = [];
      const dec: number[] = [];
      for (let run = 0; run < runs; run++) {
        enc.push(opsPerSecond(encrypt, durationMs));
        dec.push(opsPerSecond(decrypt, durationMs));
      }
      cases.push({ keystore, algorithm, size, encryptOpsPerSecond: figure(enc), decryptOpsPerSecond: figure(dec) });
    }
  } finally {
    ks.destroyVersionMaterial(ref);
  }
  return cases;
}

export function benchKeystores(options: { durationMs: number; runs: number; sizes?: number[] }): KeystoreCase[] {
  const sizes = options.sizes ?? [256, 4096];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kms-bench-'));
  const cases: KeystoreCase[] = [];
  try {
    delete process.env.SOFTHSM2_CONF;
    const hsm = openSoftHsmKeystore(path.join(dir, 'hsm'));
    try {
      for (const algorithm of ['AES_256', 'AES_128', 'AES_256_HSM'] as const) cases.push(...benchAlgorithm('pkcs11', hsm, algorithm, sizes, options.durationMs, options.runs));
    } finally {
      hsm.close();
    }
    const software = openSoftwareKeystore({ dataDir: dir });
    try {
      cases.push(...benchAlgorithm('software', software, 'AES_256', sizes, options.durationMs, options.runs));
    } finally {
      software.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return cases;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { ms: { type: 'string', default: process.env.BENCH_MS ?? '1000' }, runs: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } },
  });
  const cases = benchKeystores({ durationMs: Number(values.ms), runs: Number(values.runs) });
  if (values.json) console.log(JSON.stringify(cases));
  else {
    for (const c of cases) {
      const ops = (f: Figure) => String(Math.round(f.median)).padStart(7);
      console.log(`${c.keystore.padEnd(9)} ${c.algorithm.padEnd(12)} ${String(c.size).padStart(5)} B  encrypt ${ops(c.encryptOpsPerSecond)} ops/s  decrypt ${ops(c.decryptOpsPerSecond)} ops/s`);
    }
  }
}
