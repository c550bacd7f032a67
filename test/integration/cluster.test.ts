/**
 * Three real kmsd processes on one real PostgreSQL database: every node serves reads and writes,
 * concurrent updates of one key from two nodes are never lost, the scheduler runs exactly once
 * across failover (kill -9, pg_terminate_backend, SIGSTOP/SIGCONT), the epoch fences a stale
 * leader's writes inside the database, a node with another HSM or an older binary is refused,
 * and `kmsd cluster status` / `/healthz?leader` say who leads.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KMSD_MAIN, startDaemon, tempDir } from '../support/daemon.js';
import { freshDatabase, sql } from '../support/postgres.js';
import { LEASE_ARGS, TestCluster, eventually, get, request, sleep, type ClusterNode } from '../support/cluster.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { LeaderLease } from '../../daemon/cluster/lease.js';
import { openPgStore } from '../../daemon/store/pg-store.js';
import { LATEST_SCHEMA_VERSION, insertAuditEvents, lastCopiedAuditSeq, pruneAuditEvents } from '../../daemon/store/pg-sql.js';
import pg from 'pg';

const FOLDER = 'cluster-folder';
const HOUR = 3600;

let cluster: TestCluster;
const as = (node: ClusterNode) => ({ url: node.daemon.url, token: cluster.token });

async function createKey(node: ClusterNode, body: Record<string, unknown> = {}): Promise<string> {
  const res = await request(as(node), 'POST', '/kms/v1/keys', { folderId: FOLDER, ...body });
  expect(res.status).toBe(200);
  return res.body.response.id as string;
}

async function versionCount(node: ClusterNode, keyId: string): Promise<number> {
  const res = await request(as(node), 'GET', `/kms/v1/keys/${keyId}/versions?pageSize=1000`);
  expect(res.status).toBe(200);
  return (res.body.keyVersions as unknown[]).length;
}

const advance = (node: ClusterNode, seconds: number) => cluster.advance(node, seconds);

beforeAll(async () => {
  cluster = await TestCluster.start(3);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('three nodes on one PostgreSQL', () => {
  it('creates and updates spread across nodes are visible on every node', async () => {
    const ids: string[] = [];
    for (const [i, node] of cluster.nodes.entries()) {
      for (let j = 0; j < 3; j++) ids.push(await createKey(node, { name: `spread-${i}-${j}` }));
    }
    // Each key renamed on the node after the one that created it.
    for (const [k, id] of ids.entries()) {
      const node = cluster.nodes[(Math.floor(k / 3) + 1) % cluster.nodes.length]!;
      const res = await request(as(node), 'PATCH', `/kms/v1/keys/${id}`, { updateMask: 'name,labels', name: `renamed-${k}`, labels: { by: node.name } });
      expect(res.status).toBe(200);
    }
    for (const node of cluster.nodes) {
      await eventually(
        async () => {
          const list = await request(as(node), 'GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
          const names = new Map((list.body.keys as { id: string; name: string }[]).map((k) => [k.id, k.name]));
          return ids.every((id, k) => names.get(id) === `renamed-${k}`);
        },
        5000,
        `all renames visible on ${node.name}`,
      );
    }
    // Every node's health names the cluster store and the same revision once caught up.
    const revisions = await Promise.all(cluster.nodes.map(async (n) => (await get(n.daemon.url, '/healthz')).body.cluster.replicaRevision as number));
    expect(new Set(revisions).size).toBeLessThanOrEqual(2);
  });

  it('a key, token or binding made on one node is usable on another at once (a miss catches the replica up first)', async () => {
    const [a, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    for (let i = 0; i < 10; i++) {
      const keyId = await createKey(a, { name: `at-once-${i}` });
      expect((await request(as(b), 'GET', `/kms/v1/keys/${keyId}`)).status).toBe(200);
      const enc = await request(as(c), 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from(`p${i}`).toString('base64') });
      expect(enc.status).toBe(200);
      const upd = await request(as(b), 'PATCH', `/kms/v1/keys/${keyId}`, { updateMask: 'description', description: `d${i}` });
      expect(upd.status).toBe(200);
      const sa = await request(as(a), 'POST', ADMIN_PATHS.serviceAccounts, { name: `sa-at-once-${i}` });
      expect(sa.status).toBe(200);
      const token = await request(as(a), 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id as string}` });
      expect(token.status).toBe(200);
      // A token issued on A authenticates on C at once (denied for lack of a role, not unknown).
      const other = await request({ url: c.daemon.url, token: token.body.token as string }, 'GET', `/kms/v1/keys/${keyId}`);
      expect(other.status).toBe(403);
    }
  });

  it('concurrent updates of one key from two nodes never lose one (version check, retry or ABORTED)', async () => {
    const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    const keyId = await createKey(a, { name: 'contended', description: 'start' });
    let aborted = 0;
    const send = async (node: ClusterNode, body: Record<string, unknown>): Promise<void> => {
      for (;;) {
        const res = await request(as(node), 'PATCH', `/kms/v1/keys/${keyId}`, body);
        if (res.status === 409 && res.body.code === 10) {
          aborted++;
          continue; // ABORTED: safe to retry
        }
        expect(res.status).toBe(200);
        return;
      }
    };
    for (let round = 0; round < 25; round++) {
      // A read-modify-write of the same record on both nodes at once: a lost update would put
      // back the other field's old value.
      await Promise.all([send(a, { updateMask: 'description', description: `a-${round}` }), send(b, { updateMask: 'name', name: `b-${round}` })]);
      // Both changes, on both nodes (a node's replica may lag by the consistency window; a lost
      // update would never show up).
      for (const node of [a, b]) {
        await eventually(
          async () => {
            const key = (await request(as(node), 'GET', `/kms/v1/keys/${keyId}`)).body;
            return key.name === `b-${round}` && key.description === `a-${round}`;
          },
          3000,
          `round ${round} on ${node.name}`,
        );
      }
    }
    // Concurrent rotations: every acknowledged one is a version, none is lost.
    const rotations = await Promise.all(
      Array.from({ length: 20 }, (_, i) => request(as(cluster.nodes[i % 3]!), 'POST', `/kms/v1/keys/${keyId}:rotate`)),
    );
    const acked = rotations.filter((r) => r.status === 200).length;
    for (const r of rotations) expect([200, 409]).toContain(r.status);
    for (const node of cluster.nodes) {
      await eventually(async () => (await versionCount(node, keyId)) === acked + 1, 5000, `${acked + 1} versions on ${node.name}`);
    }
    const conflicts = await Promise.all(cluster.nodes.map(async (n) => (await get(n.daemon.url, '/healthz')).body.cluster.versionConflicts as number));
    console.log(`contended updates: ${conflicts.join('+')} version conflicts re-run inside the nodes, ${aborted} ABORTED answers retried by the client; ${acked}/20 concurrent rotations acknowledged`);
  });

  it('healthz says who leads; ?leader answers 200 on the leader and 429 elsewhere; kmsd cluster status agrees', async () => {
    const { node: leader } = await cluster.waitForLeader();
    const lease = await cluster.lease();
    for (const node of cluster.nodes) {
      const health = await get(node.daemon.url, '/healthz');
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ ready: true, leader: node === leader, cluster: { store: 'postgresql' } });
      const probe = await get(node.daemon.url, '/healthz?leader');
      expect(probe.status).toBe(node === leader ? 200 : 429);
      if (node === leader) expect(health.body.cluster).toMatchObject({ instanceId: lease.holder, epoch: lease.epoch });
    }
    const status = spawnSync(process.execPath, [KMSD_MAIN, 'cluster', 'status', '--store', cluster.db, '--json'], { encoding: 'utf8' });
    expect(status.status).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.lease).toMatchObject({ holder: lease.holder, epoch: lease.epoch });
    expect(report.nodes).toHaveLength(3);
    expect(report.nodes.filter((n: { leader: boolean }) => n.leader)).toHaveLength(1);
    expect(report.nodes.every((n: { state: string }) => n.state === 'up')).toBe(true);
    const text = spawnSync(process.execPath, [KMSD_MAIN, 'cluster', 'status', '--store', cluster.db], { encoding: 'utf8' });
    expect(text.stdout).toMatch(new RegExp(`lease: held by ${lease.holder}, epoch ${lease.epoch}`));
  });
});

describe('failover', () => {
  it('kill -9 of the leader while keys are due: another node leads within the TTL, each rotation happens exactly once, no acknowledged write is lost', async () => {
    const writer = cluster.nodes[0]!;
    const keys = await Promise.all(Array.from({ length: 12 }, (_, i) => createKey(writer, { name: `due-${i}`, rotationPeriod: `${HOUR}s` })));
    const { node: leader, epoch } = await cluster.waitForLeader();
    const others = cluster.nodes.filter((n) => n !== leader);
    // Every node's clock moves past the rotation period; the followers do no due work.
    for (const node of others) {
      const res = await advance(node, HOUR + 60);
      expect(res.body.rotated).toEqual([]);
    }
    for (const node of cluster.nodes) await eventually(async () => (await versionCount(node, keys[0]!)) === 1, 2000);
    // A continuous writer on the followers.
    const acked: string[] = [];
    let writing = true;
    const writerLoop = (async () => {
      for (let i = 0; writing; i++) {
        const node = others[i % others.length]!;
        const res = await request(as(node), 'POST', '/kms/v1/keys', { folderId: FOLDER, name: `w-${i}` }).catch(() => null);
        if (res?.status === 200) acked.push(res.body.response.id as string);
      }
    })();
    // The leader starts rotating and dies in the middle of it.
    const leaderRun = advance(leader, HOUR + 60).catch(() => null);
    await sleep(15);
    const killedAt = performance.now();
    await leader.daemon.kill();
    await leaderRun;
    const next = await cluster.waitForLeader(others);
    const failoverMs = next.at - killedAt;
    expect(next.epoch).toBeGreaterThan(epoch);
    for (const keyId of keys) await eventually(async () => (await versionCount(next.node, keyId)) === 2, 10_000, `key ${keyId} rotated`);
    await sleep(2500); // a few more scheduler ticks on the new leader: no second rotation
    writing = false;
    await writerLoop;
    for (const node of others) {
      for (const keyId of keys) expect(await versionCount(node, keyId)).toBe(2);
    }
    const list = await request(as(others[0]!), 'GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
    const present = new Set((list.body.keys as { id: string }[]).map((k) => k.id));
    await eventually(async () => {
      const again = await request(as(others[1]!), 'GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
      const ids = new Set((again.body.keys as { id: string }[]).map((k) => k.id));
      return acked.every((id) => ids.has(id));
    }, 5000, 'every acknowledged write on the other follower');
    expect(acked.filter((id) => !present.has(id))).toEqual([]);
    expect(acked.length).toBeGreaterThan(0);
    console.log(`kill -9 failover: ${failoverMs.toFixed(0)} ms to a new leader (epoch ${epoch} → ${next.epoch}); ${acked.length} writes acknowledged during it, all present`);
    await cluster.restart(leader);
  }, 120_000);

  it('pg_terminate_backend of the leader makes it step down at once; another epoch takes over', async () => {
    const { node: leader, epoch } = await cluster.waitForLeader();
    const instanceId = (await get(leader.daemon.url, '/healthz')).body.cluster.instanceId as string;
    const terminated = await sql(cluster.db, `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`, [`kmsd:${instanceId}`]);
    expect(terminated.length).toBeGreaterThan(0);
    const started = performance.now();
    // Stepped down before the lease could even expire on the database (TTL 2 s).
    await eventually(async () => (await get(leader.daemon.url, '/healthz?leader')).status === 429, 1500, 'the leader stepping down');
    const stepDownMs = performance.now() - started;
    await eventually(() => Promise.resolve(leader.daemon.output.some((l) => l.includes('stepped down from the scheduler lease'))), 2000, 'the step-down logged');
    const why = leader.daemon.output.filter((l) => l.includes('stepped down from the scheduler lease')).at(-1) ?? '';
    expect(why).toMatch(/connection|terminat/i);
    const next = await cluster.waitForLeader();
    expect(next.epoch).toBeGreaterThan(epoch);
    // The node heals: its store answers again (a new pooled connection) and it serves writes.
    await eventually(async () => (await get(leader.daemon.url, '/healthz')).body.ready === true, 5000, 'the old leader ready again');
    expect((await request(as(leader), 'POST', '/kms/v1/keys', { folderId: FOLDER, name: 'after-terminate' })).status).toBe(200);
    console.log(`pg_terminate_backend: stepped down after ${stepDownMs.toFixed(0)} ms; epoch ${epoch} → ${next.epoch}`);
  }, 60_000);

  it('a paused leader (SIGSTOP, then SIGCONT) cannot do due work with its old epoch', async () => {
    const { node: leader, epoch } = await cluster.waitForLeader();
    const keyId = await createKey(leader, { name: 'paused-due', rotationPeriod: `${HOUR}s` });
    for (const node of cluster.nodes) await eventually(async () => (await versionCount(node, keyId)) === 1, 3000);
    leader.daemon.child.kill('SIGSTOP');
    try {
      const others = cluster.nodes.filter((n) => n !== leader);
      const next = await cluster.waitForLeader(others);
      expect(next.epoch).toBeGreaterThan(epoch);
      // Every clock moves past the period (the key was created on the leader's clock); the paused
      // node's request waits in its socket until SIGCONT.
      const target = cluster.maxClock() + 2 * HOUR;
      const pausedAdvance = cluster.advanceTo(leader, target);
      for (const node of others) await cluster.advanceTo(node, target);
      await eventually(async () => (await versionCount(next.node, keyId)) === 2, 10_000, 'the new leader rotating');
      leader.daemon.child.kill('SIGCONT');
      const answer = await pausedAdvance;
      // Woken up, the old leader finds its lease lapsed before doing anything: no rotation.
      expect(answer?.status).toBe(200);
      expect(answer?.body.rotated).toEqual([]);
    } finally {
      leader.daemon.child.kill('SIGCONT');
    }
    await sleep(2000);
    for (const node of cluster.nodes) expect(await versionCount(node, keyId)).toBe(2);
    expect(leader.daemon.output.some((l) => l.includes('stepped down from the scheduler lease'))).toBe(true);
    expect((await get(leader.daemon.url, '/healthz?leader')).status).toBe(429);
  }, 60_000);

  it('the epoch fences inside the database: a write under a stale epoch is refused even if the node still believes it leads', async () => {
    const db = await freshDatabase('kms_f');
    const logger = { info: () => undefined, warn: () => undefined };
    const store = await openPgStore({ url: db, applicationName: 'kmsd:fence-test' });
    const a = new LeaderLease(db, 'kmsd:fence-a', 'node-a', 2000, 500, logger);
    const b = new LeaderLease(db, 'kmsd:fence-b', 'node-b', 2000, 500, logger);
    try {
      await a.start();
      const stale = a.fence();
      expect(stale).not.toBeNull();
      const fencedByStale = store.fenced(() => stale);
      await fencedByStale.update((tx) => tx.operations.set('op-1', operation('op-1')));
      // The lease expires on the database clock (as if node-a were partitioned) and node-b takes it.
      await sql(db, `UPDATE kms_lease SET expires_at = now() WHERE holder = 'node-a'`);
      await b.start();
      expect(b.fence()?.epoch).toBe((stale?.epoch ?? 0) + 1);
      await expect(fencedByStale.update((tx) => tx.operations.set('op-2', operation('op-2')))).rejects.toMatchObject({ code: 'ABORTED', message: expect.stringMatching(/fenced/) });
      await store.sync();
      expect(store.read((s) => s.operations.has('op-2'))).toBe(false);
      const fresh = b.fence();
      await store.fenced(() => fresh).update((tx) => tx.operations.set('op-3', operation('op-3')));
      expect(store.read((s) => s.operations.has('op-3'))).toBe(true);
    } finally {
      await a.stop();
      await b.stop();
      await store.close();
    }
  });
});

describe('joining the cluster', () => {
  it('a node whose root key does not match the binding recorded in the database refuses to start', async () => {
    // A data dir with its own, different SoftHSM2 token (created by a standalone start).
    const own = await startDaemon({ dataDir: tempDir('kms-other-hsm-') });
    await own.stop();
    const result = spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', own.dataDir, '--store', cluster.db, ...LEASE_ARGS], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, KMS_BOOTSTRAP_TOKEN: cluster.token },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/refusing to start: the HSM kmsd opened is not root key .* in PKCS#11 token '.*'.*token label is/);
  });

  it('a database with a newer schema than the binary is refused', async () => {
    const db = await freshDatabase('kms_s');
    const first = await startDaemon({ args: ['--store', db, ...LEASE_ARGS] });
    await first.stop();
    await sql(db, 'INSERT INTO kms_schema_migrations (version) VALUES (99)');
    const result = spawnSync(process.execPath, [KMSD_MAIN, '--listen', '127.0.0.1:0', '--data-dir', first.dataDir, '--store', db], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`the PostgreSQL database has schema version 99, this kmsd understands up to ${LATEST_SCHEMA_VERSION}; refusing to start`));
  });

  it('the audit query on any node returns every node’s events merged by time, paged and filtered, a killed node’s included', async () => {
    const [a, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const instanceOf = new Map<string, string>();
    for (const node of [a, b, c]) instanceOf.set(node.name, (await get(node.daemon.url, '/healthz')).body.cluster.instanceId as string);
    // One key, used on every node: its events live in three chains.
    const keyId = await createKey(a, { name: 'audit-merge' });
    for (const node of [b, c, a, b, c]) {
      const enc = await request(as(node), 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from('merge').toString('base64') });
      expect(enc.status).toBe(200);
    }
    type Event = { time: string; operation: string; seq: number; instanceId?: string; keyId?: string };
    const query = async (node: ClusterNode, params: string): Promise<{ status: number; body: any }> => request(as(node), 'GET', `/kms/v1/auditEvents?${params}`);
    const sortKey = (e: Event) => `${e.time}|${e.instanceId}|${String(e.seq).padStart(15, '0')}`;
    // Each node answers with all of them (its own at once, the others' once copied).
    for (const node of [a, b, c]) {
      await eventually(
        async () => {
          const res = await query(node, `keyId=${keyId}&operation=SymmetricCrypto.Encrypt`);
          return res.status === 200 && (res.body.events as Event[]).length === 5;
        },
        5000,
        `every node's encrypt events queried on ${node.name}`,
      );
      const all = (await query(node, `keyId=${keyId}&pageSize=1000`)).body.events as Event[];
      expect(new Set(all.map((e) => e.instanceId))).toEqual(new Set(instanceOf.values()));
      expect(all.map(sortKey)).toEqual(all.map(sortKey).sort());
      expect(all.filter((e) => e.operation === 'SymmetricCrypto.Encrypt').map((e) => e.instanceId)).toEqual([b, c, a, b, c].map((n) => instanceOf.get(n.name)));
    }
    // Paging ten at a time through the folder's events gives the one-page answer, no duplicates.
    const whole = (await query(c, `folderId=${FOLDER}&pageSize=1000`)).body.events as Event[];
    expect(whole.length).toBeGreaterThan(5);
    const paged: Event[] = [];
    let token: string | undefined;
    do {
      const res = await query(c, `folderId=${FOLDER}&pageSize=10${token === undefined ? '' : `&pageToken=${token}`}`);
      expect(res.status).toBe(200);
      expect((res.body.events as Event[]).length).toBeLessThanOrEqual(10);
      paged.push(...(res.body.events as Event[]));
      token = res.body.nextPageToken as string | undefined;
    } while (token !== undefined && paged.length < 10 * whole.length);
    // (events of later calls, such as these queries, may have joined the end meanwhile)
    expect(paged.slice(0, whole.length).map(sortKey)).toEqual(whole.map(sortKey));
    expect(new Set(paged.map(sortKey)).size).toBe(paged.length);
    // A single node's token, or garbage, is a 400 naming the parameter.
    for (const bad of [Buffer.from('after:5').toString('base64url'), 'xx', Buffer.from('at:2026-01-01T00:00:00Z|__proto__|1').toString('base64url')]) {
      const res = await query(a, `pageToken=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^pageToken: /);
    }
    // A node killed: what it had copied is still answered by the others.
    const bEvents = (await query(a, `keyId=${keyId}&pageSize=1000`)).body.events.filter((e: Event) => e.instanceId === instanceOf.get(b.name)).length;
    await b.daemon.kill();
    const after = (await query(c, `keyId=${keyId}&pageSize=1000`)).body.events as Event[];
    expect(after.filter((e) => e.instanceId === instanceOf.get(b.name))).toHaveLength(bEvents);
    await cluster.restart(b);
  });

  it('the audit copy keeps what the trails keep: a node’s pruned seqs and every node’s events past retention go', async () => {
    const pool = new pg.Pool({ connectionString: cluster.db, max: 1 });
    try {
      const at = (days: number) => new Date(Date.UTC(2020, 0, 1 + days)).toISOString();
      const row = (seq: number, time: string) => ({ seq, time, folderId: 'f', keyId: undefined, subject: 's', operation: 'Test.Op', event: JSON.stringify({ seq, time }) });
      await insertAuditEvents(pool, 'node-retention-a', [row(1, at(0)), row(2, at(1)), row(3, at(30))]);
      await insertAuditEvents(pool, 'node-retention-b', [row(1, at(0)), row(2, at(40))]);
      // Inserting again (a round retried after a lost answer) changes nothing.
      await insertAuditEvents(pool, 'node-retention-a', [row(3, at(31))]);
      expect(await lastCopiedAuditSeq(pool, 'node-retention-a')).toBe(3);
      // Node a's trail now starts at seq 2; retention: older than day 20.
      expect(await pruneAuditEvents(pool, 'node-retention-a', 2, at(20))).toBe(3);
      const left = await sql(cluster.db, `SELECT instance_id, seq, time FROM kms_audit_events WHERE instance_id LIKE 'node-retention-%' ORDER BY instance_id, seq`);
      expect(left.map((r) => [r.instance_id, Number(r.seq), (r.time as Date).toISOString()])).toEqual([
        ['node-retention-a', 3, at(30)],
        ['node-retention-b', 2, at(40)],
      ]);
    } finally {
      await sql(cluster.db, `DELETE FROM kms_audit_events WHERE instance_id LIKE 'node-retention-%'`);
      await pool.end();
    }
  });

  it('kmsd hsm status on a node reads the binding and the node’s anchor from the database', () => {
    const node = cluster.alive()[0]!;
    const ok = spawnSync(process.execPath, [KMSD_MAIN, 'hsm', 'status', '--data-dir', node.dataDir, '--store', cluster.db, '--json'], { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report).toMatchObject({ ok: true, store: { keys: expect.any(Number) }, auditAnchor: { seq: expect.any(Number), mac: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    expect(report.recorded).not.toBeNull();
    const down = spawnSync(process.execPath, [KMSD_MAIN, 'hsm', 'status', '--data-dir', node.dataDir, '--store', 'postgres://127.0.0.1:1/nothing'], { encoding: 'utf8' });
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/^kmsd hsm status: cannot read the store in PostgreSQL: /);
  });

  it('kmsd audit verify checks every node’s chain against its anchor in the database', () => {
    const live = cluster.alive();
    expect(live).toHaveLength(3);
    for (const node of live) expect(readdirSync(join(node.dataDir, 'audit')).some((f) => f.startsWith('seg-'))).toBe(true);
    const args = [KMSD_MAIN, 'audit', 'verify', '--store', cluster.db, ...live.flatMap((n) => ['--data-dir', n.dataDir])];
    const ok = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.stdout.match(/^audit trail OK: \d+ events in \d+ segments, head seq \d+ \(node node-[0-9a-f]+\)$/gm)).toHaveLength(3);
    expect(ok.status).toBe(0);
    // One node left out: its anchored chain is reported as not checked.
    const partial = spawnSync(process.execPath, args.slice(0, -2), { encoding: 'utf8' });
    expect(partial.status).toBe(1);
    expect(partial.stderr).toMatch(/audit trail NOT CHECKED: node node-[0-9a-f]+ has a chain anchored at seq \d+/);
  });
});

function operation(id: string) {
  const now = new Date().toISOString();
  return { id, description: 'fence test', createdAt: now, createdBy: 'system:test', modifiedAt: now, done: true, keyId: '', metadata: { '@type': 'type.googleapis.com/google.protobuf.Empty' } };
}
