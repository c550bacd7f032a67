/**
 * Decorators that report to the `Metrics` port without the adapters knowing: every keystore call
 * is timed by operation and algorithm (and counted as an HSM error when it fails for a reason
 * that is not the caller's input), every store update by the time it took to become durable.
 */
import { KmsError } from '../domain/errors.js';
import type { Algorithm, MaterialRef } from '../domain/model.js';
import type { AuditAnchor, AuditAnchorStore, AuditKeyring, Keystore, KeystoreIdentity, Metrics, SealedBytes, Store } from '../domain/ports.js';

const seconds = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

export class MeteredKeystore implements Keystore {
  readonly kind: Keystore['kind'];

  constructor(
    private readonly inner: Keystore,
    private readonly metrics: Metrics,
  ) {
    this.kind = inner.kind;
  }

  private timed<T>(operation: string, algorithm: string, call: () => T): T {
    const started = process.hrtime.bigint();
    try {
      return call();
    } catch (err) {
      this.countHsmError(operation, err);
      throw err;
    } finally {
      this.metrics.keystoreCall(operation, algorithm, seconds(started));
    }
  }

  /** Authentication failures and destroyed material are the input's fault, not the HSM's. */
  private countHsmError(operation: string, err: unknown): void {
    const code = err instanceof KmsError ? err.code : 'INTERNAL';
    if (code === 'UNAVAILABLE' || code === 'INTERNAL') this.metrics.hsmError(operation, code);
  }

  createVersionMaterial(versionId: string, algorithm: Algorithm): MaterialRef {
    return this.timed('create', algorithm, () => this.inner.createVersionMaterial(versionId, algorithm));
  }

  seal(ref: MaterialRef, algorithm: Algorithm, plaintext: Buffer, aad: Buffer): SealedBytes {
    return this.timed('seal', algorithm, () => this.inner.seal(ref, algorithm, plaintext, aad));
  }

  open(ref: MaterialRef, algorithm: Algorithm, sealed: SealedBytes, aad: Buffer): Buffer {
    return this.timed('open', algorithm, () => this.inner.open(ref, algorithm, sealed, aad));
  }

  destroyVersionMaterial(ref: MaterialRef): void {
    this.timed('destroy', ref.kind, () => this.inner.destroyVersionMaterial(ref));
  }

  randomBytes(length: number): Buffer {
    return this.timed('random', 'RNG', () => this.inner.randomBytes(length));
  }

  identity(): KeystoreIdentity {
    return this.inner.identity();
  }

  checkMaterial(ref: MaterialRef, algorithm: Algorithm): void {
    this.timed('check', algorithm, () => this.inner.checkMaterial(ref, algorithm));
  }

  auditKeyring(options: { allowCreate: boolean }): AuditKeyring {
    const keyring = this.inner.auditKeyring(options);
    return { description: keyring.description, mac: (data) => this.timed('audit-mac', 'HMAC_SHA256', () => keyring.mac(data)) };
  }

  auditAnchorStore(options: { allowCreate: boolean }): AuditAnchorStore {
    const anchors = this.inner.auditAnchorStore(options);
    const behind = anchors.writeInBackground?.bind(anchors);
    const settle = anchors.settle?.bind(anchors);
    return {
      description: anchors.description,
      read: () => this.timed('anchor-read', 'DATA', () => anchors.read()),
      write: (anchor) => this.timed('anchor-write', 'DATA', () => anchors.write(anchor)),
      ...(behind !== undefined && settle !== undefined
        ? {
            writeInBackground: (anchor: AuditAnchor, done: (err?: Error) => void) => {
              const started = process.hrtime.bigint();
              behind(anchor, (err) => {
                this.metrics.keystoreCall('anchor-write', 'DATA', seconds(started));
                if (err !== undefined) this.countHsmError('anchor-write', err);
                done(err);
              });
            },
            settle,
          }
        : {}),
    };
  }

  close(): void {
    this.inner.close();
  }
}

/** The store, with each update timed from acceptance to durability. */
export function meteredStore(inner: Store, metrics: Metrics): Store {
  return {
    read: (query) => inner.read(query),
    update: (mutate) => {
      const started = process.hrtime.bigint();
      const done = inner.update(mutate);
      void done.then(
        () => metrics.storeCommitted(seconds(started)),
        () => undefined,
      );
      return done;
    },
    health: () => inner.health(),
    close: () => inner.close(),
  };
}
