/**
 * Several real `kmsd` processes on one PostgreSQL database (the run's cluster, a fresh database
 * per cluster), sharing one SoftHSM2 token: the first node creates the token in the run's shared
 * token directory (SOFTHSM2_CONF from jest.global-setup.js), the others get a copy of its
 * hsm-pins.json, as an operator would give every node the same token and PIN.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { newTestToken, startDaemon, tempDir, type DaemonProcess } from './daemon.js';
import { freshDatabase, sql } from './postgres.js';

/** Short lease for tests: failover within about TTL + renew. */
export const TEST_LEASE = { ttl: '2s', renew: '500ms' };
export const LEASE_ARGS = ['--lease-ttl', TEST_LEASE.ttl, '--lease-renew', TEST_LEASE.renew, '--replica-poll', '500ms'];

export interface ClusterNode {
  name: string;
  dataDir: string;
  daemon: DaemonProcess;
  /** Seconds its --unsafe-test-clock was advanced (kept across restarts by `restart`). */
  clock: number;
}

export class TestCluster {
  readonly nodes: ClusterNode[] = [];

  private constructor(
    readonly db: string,
    readonly token: string,
    readonly extraArgs: string[],
  ) {}

  static async start(count: number, extraArgs: string[] = []): Promise<TestCluster> {
    const cluster = new TestCluster(await freshDatabase('kms_c'), newTestToken(), extraArgs);
    const first = await cluster.startNode('n0');
    cluster.nodes.push(first);
    // A node that fails to start must not leave the others running.
    const others = await Promise.allSettled(
      Array.from({ length: count - 1 }, (_, i) => {
        const dataDir = tempDir('kms-node-');
        copyFileSync(join(first.dataDir, 'hsm-pins.json'), join(dataDir, 'hsm-pins.json'));
        return cluster.startNode(`n${i + 1}`, dataDir);
      }),
    );
    for (const started of others) if (started.status === 'fulfilled') cluster.nodes.push(started.value);
    const failed = others.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await cluster.stop();
      throw failed.reason;
    }
    return cluster;
  }

  async startNode(name: string, dataDir: string = tempDir('kms-node-')): Promise<ClusterNode> {
    const daemon = await startDaemon({ dataDir, args: ['--store', this.db, ...LEASE_ARGS, ...this.extraArgs], env: { KMS_BOOTSTRAP_TOKEN: this.token } });
    return { name, dataDir, daemon, clock: 0 };
  }

  /** Moves a node's test clock forward (and runs its due work when it leads). */
  async advance(node: ClusterNode, seconds: number): Promise<{ status: number; body: any }> {
    node.clock += seconds;
    return request({ url: node.daemon.url, token: this.token }, 'POST', '/test/v1/clock:advance', { seconds }, 30_000);
  }

  /** Moves a node's clock to `clock` seconds ahead of real time (no-op when it is there already). */
  async advanceTo(node: ClusterNode, clock: number): Promise<{ status: number; body: any } | null> {
    return clock > node.clock ? this.advance(node, clock - node.clock) : null;
  }

  /** The furthest any node's clock was moved. */
  maxClock(): number {
    return Math.max(0, ...this.nodes.map((n) => n.clock));
  }

  /** Restarts a (killed or stopped) node on its data dir, in place in `nodes`, with its clock. */
  async restart(node: ClusterNode): Promise<ClusterNode> {
    const again = await this.startNode(node.name, node.dataDir);
    await this.advanceTo(again, node.clock);
    const index = this.nodes.indexOf(node);
    if (index >= 0) this.nodes[index] = again;
    return again;
  }

  alive(): ClusterNode[] {
    return this.nodes.filter((n) => n.daemon.child.exitCode === null && n.daemon.child.signalCode === null);
  }

  /** The lease row, on the database clock. */
  async lease(): Promise<{ holder: string | null; epoch: number; remainingMs: number }> {
    const [row] = await sql(this.db, `SELECT holder, epoch, (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8 AS remaining FROM kms_lease WHERE name = 'scheduler'`);
    return { holder: row.holder, epoch: Number(row.epoch), remainingMs: Number(row.remaining ?? 0) };
  }

  /** The node that answers 200 to `/healthz?leader` (polled every 25 ms), and when it did. */
  async waitForLeader(among: ClusterNode[] = this.alive(), timeoutMs = 20_000): Promise<{ node: ClusterNode; at: number; epoch: number }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const node of among) {
        const probe = await get(node.daemon.url, '/healthz?leader').catch(() => null);
        if (probe?.status === 200) return { node, at: performance.now(), epoch: Number(probe.body.cluster.epoch) };
      }
      await sleep(25);
    }
    throw new Error(`no leader among ${among.map((n) => n.name).join(', ')} within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.daemon.kill()));
  }
}

/** One request on its own connection (no keep-alive: a killed node must not hold a socket). */
export function request(
  base: { url: string; token?: string },
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent: false,
        timeout: timeoutMs,
        headers: {
          ...(base.token !== undefined ? { authorization: `Bearer ${base.token}` } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // text body
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export function get(url: string, path: string): Promise<{ status: number; body: any }> {
  return request({ url }, 'GET', path, undefined, 2000);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true (or throws its last failure after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await sleep(20);
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
