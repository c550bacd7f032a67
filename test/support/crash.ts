/**
 * The crash test: a child kmsd acknowledges creates in a loop and is killed with SIGKILL at a
 * random moment; after restart every acknowledged key must be there and the file must parse.
 * Shared by the jest test (≥ 50 cycles in CI) and scripts/crash-test.ts (as many as you like).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { api, newTestToken, startDaemon } from './daemon.js';

export interface CrashReport {
  cycles: number;
  acknowledged: number;
  lost: string[];
  seconds: number;
}

export async function runCrashCycles(options: { cycles: number; tempDir: string; concurrency?: number }): Promise<CrashReport> {
  const started = Date.now();
  const token = newTestToken();
  const dataDir = join(options.tempDir, 'data');
  const acknowledged: string[] = [];
  const lost: string[] = [];
  for (let cycle = 0; cycle < options.cycles; cycle++) {
    const daemon = await startDaemon({ dataDir, testClock: false, env: { KMS_BOOTSTRAP_TOKEN: token } });
    // Everything acknowledged so far must have survived the previous kill.
    const state = JSON.parse(readFileSync(join(dataDir, 'kms.json'), 'utf8')) as { keys: Record<string, unknown> };
    for (const id of acknowledged) if (state.keys[id] === undefined) lost.push(id);
    let stop = false;
    // The kill comes at a random moment after the cycle's first acknowledgement, so that every
    // cycle kills a daemon with writes in flight however slow the machine is.
    let firstAck: () => void = () => undefined;
    const acked = new Promise<void>((resolve) => (firstAck = resolve));
    const writer = async () => {
      while (!stop) {
        try {
          const res = await api(daemon, 'POST', '/kms/v1/keys', { folderId: 'crash', name: `c${cycle}` });
          if (res.status === 200) {
            acknowledged.push((res.body as { metadata: { keyId: string } }).metadata.keyId);
            firstAck();
          }
        } catch {
          return; // connection reset by the kill: that write was never acknowledged
        }
      }
    };
    const writers = Array.from({ length: options.concurrency ?? 4 }, writer);
    await Promise.race([acked, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 120));
    await daemon.kill();
    stop = true;
    await Promise.all(writers);
  }
  // A last start proves the final file parses and holds everything.
  const last = await startDaemon({ dataDir, testClock: false, env: { KMS_BOOTSTRAP_TOKEN: token } });
  const state = JSON.parse(readFileSync(join(dataDir, 'kms.json'), 'utf8')) as { keys: Record<string, unknown> };
  for (const id of acknowledged) if (state.keys[id] === undefined && !lost.includes(id)) lost.push(id);
  await last.stop();
  return { cycles: options.cycles, acknowledged: acknowledged.length, lost, seconds: (Date.now() - started) / 1000 };
}
