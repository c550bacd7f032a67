/**
 * What a kmsd node on PostgreSQL has besides the store and the lease: its instance id (kept in its
 * data dir), its row in `kms_nodes` with a heartbeat, and its audit chain's head anchored in
 * `kms_audit_anchors` under its instance id.
 *
 * Audit in the cluster: every node keeps its own keyed chain in its own data dir (segments, HMAC
 * by the shared HSM audit key), exactly as a single node does. The token's anchor object cannot
 * serve several chains, so on PostgreSQL each node's head is anchored in the database instead.
 * The anchor is written behind the trail (after the events are fsynced, asynchronously): it is a
 * lower bound of the head, so a trail cut back below it is detected at the next start.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { AuditAnchor, AuditAnchorStore, AuditKeyring, Keystore } from '../domain/ports.js';
import { writeSecretFile } from '../keystore/secret-file.js';
import { heartbeatNode, readAuditAnchor, registerNode, writeAuditAnchor } from '../store/pg-sql.js';
import { describePgError } from '../store/pg-store.js';

export const INSTANCE_ID_FILE = 'instance-id';

/** This data dir's node id: created once (random), then read on every start. */
export function instanceIdOf(dataDir: string, options: { create: boolean } = { create: true }): string {
  const path = join(dataDir, INSTANCE_ID_FILE);
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (!/^[a-z0-9-]{4,64}$/.test(id)) throw new Error(`${path} does not hold an instance id; refusing to start`);
    return id;
  }
  if (!options.create) throw new Error(`${path} is missing: ${dataDir} has never been a node of a PostgreSQL cluster`);
  const id = `node-${randomBytes(6).toString('hex')}`;
  writeSecretFile(path, `${id}\n`, { replace: false });
  return id;
}

export interface NodeLogger {
  warn(obj: object, msg: string): void;
}

/** Registers the node and keeps its heartbeat (every `intervalMs`). */
export async function startHeartbeat(
  pool: pg.Pool,
  node: { instanceId: string; url: string; version: string },
  intervalMs: number,
  logger: NodeLogger,
): Promise<() => void> {
  await registerNode(pool, node);
  const timer = setInterval(() => {
    heartbeatNode(pool, node.instanceId).catch((err: unknown) => logger.warn({ cause: describePgError(err) }, 'node heartbeat failed'));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The node's audit anchor in PostgreSQL. `read` answers from the value loaded at start; `write`
 * raises it in memory at once and in the database behind (one write in flight, the newest wins).
 */
export class PgAuditAnchorStore implements AuditAnchorStore {
  readonly description: string;
  private latest: AuditAnchor | null;
  private writing = false;
  private wanted: AuditAnchor | null = null;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly instanceId: string,
    initial: AuditAnchor | null,
    private readonly logger: NodeLogger,
  ) {
    this.description = `postgresql:kms_audit_anchors/${instanceId}`;
    this.latest = initial;
  }

  static async open(pool: pg.Pool, instanceId: string, logger: NodeLogger): Promise<PgAuditAnchorStore> {
    return new PgAuditAnchorStore(pool, instanceId, await readAuditAnchor(pool, instanceId), logger);
  }

  read(): AuditAnchor | null {
    return this.latest;
  }

  write(anchor: AuditAnchor): void {
    if (this.latest !== null && anchor.seq < this.latest.seq) return;
    this.latest = anchor;
    this.wanted = anchor;
    void this.drain();
  }

  /** Resolves once the newest anchor is in the database (shutdown). */
  async flush(): Promise<void> {
    while (this.writing || this.wanted !== null) {
      if (!this.writing) await this.drain();
      else await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async drain(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (this.wanted !== null) {
        const anchor = this.wanted;
        this.wanted = null;
        try {
          await writeAuditAnchor(this.pool, this.instanceId, anchor);
        } catch (err) {
          this.logger.warn({ cause: describePgError(err) }, 'the audit anchor could not be written to PostgreSQL; retrying with the next one');
          if (this.wanted === null) this.wanted = anchor;
          await new Promise((r) => setTimeout(r, 1000).unref());
        }
      }
    } finally {
      this.writing = false;
    }
  }
}

/** The keystore with its audit anchor replaced by the node's anchor in PostgreSQL. */
export function withAnchorStore(keystore: Keystore, anchors: AuditAnchorStore): Keystore {
  return {
    kind: keystore.kind,
    createVersionMaterial: (versionId, algorithm) => keystore.createVersionMaterial(versionId, algorithm),
    seal: (ref, algorithm, plaintext, aad) => keystore.seal(ref, algorithm, plaintext, aad),
    open: (ref, algorithm, sealed, aad) => keystore.open(ref, algorithm, sealed, aad),
    destroyVersionMaterial: (ref) => keystore.destroyVersionMaterial(ref),
    randomBytes: (length) => keystore.randomBytes(length),
    identity: () => keystore.identity(),
    checkMaterial: (ref, algorithm) => keystore.checkMaterial(ref, algorithm),
    auditKeyring: (options): AuditKeyring => keystore.auditKeyring(options),
    auditAnchorStore: () => anchors,
    close: () => keystore.close(),
  };
}
