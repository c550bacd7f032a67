/**
 * The audit anchor's writer thread (daemon/keystore/pkcs11.ts starts it). Writing the anchor is a
 * token object write: SoftHSM2 writes and syncs object files and rescans the token directory,
 * 2–20 ms depending on the disk and the number of objects, which on the event loop stalled every
 * call once a second. Here it runs on its own thread, on its own session of the same logged-in
 * token: PKCS#11 login state is the application's, object handles are the process's, and the
 * module was initialized with CKF_OS_LOCKING_OK, so the library serializes what must be.
 *
 * Messages in: { id, value (the anchor's JSON bytes), destroy (handles of older anchor objects) };
 * out: { id, handle } or { id, error }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pkcs11js from 'pkcs11js';
import type { Template } from 'pkcs11js';

interface Job {
  id: number;
  value: Uint8Array;
  label: string;
  destroy: Uint8Array[];
}

const { modulePath, slot } = workerData as { modulePath: string; slot: Uint8Array };
const p11 = new pkcs11js.PKCS11();
p11.load(modulePath);
try {
  p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
} catch (err) {
  // Expected: the main thread initialized the module. (Never finalized here.)
  if ((err as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
}
let session: Buffer | undefined;

parentPort?.on('message', (job: Job) => {
  try {
    session ??= p11.C_OpenSession(Buffer.from(slot), pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    const template: Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_LABEL, value: job.label },
      { type: pkcs11js.CKA_APPLICATION, value: 'kmsd' },
      { type: pkcs11js.CKA_VALUE, value: Buffer.from(job.value) },
    ];
    const handle = p11.C_CreateObject(session, template);
    for (const old of job.destroy) {
      try {
        p11.C_DestroyObject(session, Buffer.from(old));
      } catch {
        // already gone (a synchronous write destroyed it meanwhile)
      }
    }
    parentPort?.postMessage({ id: job.id, handle });
  } catch (err) {
    if (session !== undefined) {
      const stale = session;
      session = undefined;
      try {
        p11.C_CloseSession(stale);
      } catch {
        // the next job opens a new one
      }
    }
    parentPort?.postMessage({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
});
