/**
 * 50 failovers in a row on three real kmsd nodes and a real PostgreSQL, with a client writing all
 * the time: in every round the leader is killed with SIGKILL just as a rotation falls due (it may
 * or may not have rotated before dying), another node takes the lease, the killed node comes back.
 * At the end: 0 acknowledged writes lost, exactly one rotation per round (0 double rotations),
 * and the failover times (kill → a node answers 200 to /healthz?leader), median and max.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { TestCluster, eventually, median, request, sleep, type ClusterNode } from '../support/cluster.js';

const ROUNDS = 50;
const HOUR = 3600;
const FOLDER = 'failover-loop';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await TestCluster.start(3);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

async function versionCount(node: ClusterNode, keyId: string): Promise<number> {
  const res = await request({ url: node.daemon.url, token: cluster.token }, 'GET', `/kms/v1/keys/${keyId}/versions?pageSize=1000`);
  return res.status === 200 ? (res.body.keyVersions as unknown[]).length : -1;
}

it(
  `${ROUNDS} failovers with a continuous writer: no acknowledged write lost, no rotation twice`,
  async () => {
    const first = cluster.nodes[0]!;
    const created = await request({ url: first.daemon.url, token: cluster.token }, 'POST', '/kms/v1/keys', { folderId: FOLDER, name: 'rotating', rotationPeriod: `${HOUR}s` });
    expect(created.status).toBe(200);
    const keyId = created.body.response.id as string;

    const acked: string[] = [];
    let refused = 0;
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const alive = cluster.alive();
        const node = alive[i % alive.length];
        if (node === undefined) {
          await sleep(10);
          continue;
        }
        const res = await request({ url: node.daemon.url, token: cluster.token }, 'POST', '/kms/v1/keys', { folderId: FOLDER, name: `w-${i}` }, 5000).catch(() => null);
        if (res?.status === 200) acked.push(res.body.response.id as string);
        else refused++;
      }
    })();

    const failoverMs: number[] = [];
    let doubleRotations = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const leader = await cluster.waitForLeader();
      const others = cluster.alive().filter((n) => n !== leader.node);
      expect(others).toHaveLength(2);
      // The rotation falls due on every clock; the followers do nothing with it.
      const target = cluster.maxClock() + HOUR + 60;
      for (const node of others) await cluster.advanceTo(node, target);
      // The leader starts its due work and is killed somewhere around it.
      const leaderRun = cluster.advanceTo(leader.node, target)?.catch(() => null);
      await sleep(round % 10);
      const killedAt = performance.now();
      await leader.node.daemon.kill();
      await leaderRun;
      const next = await cluster.waitForLeader(others);
      failoverMs.push(next.at - killedAt);
      expect(next.epoch).toBeGreaterThan(leader.epoch);
      // Exactly one more version this round, whoever rotated; the dead node comes back meanwhile.
      const restarted = cluster.restart(leader.node);
      await eventually(async () => (await versionCount(next.node, keyId)) >= round + 2, 15_000, `round ${round}: the rotation`);
      await restarted;
      const count = await versionCount(next.node, keyId);
      if (count !== round + 2) doubleRotations++;
      expect(count).toBe(round + 2);
    }
    writing = false;
    await writer;

    // Every acknowledged write, on every node (after the replicas caught up).
    for (const node of cluster.alive()) {
      await eventually(
        async () => {
          const list = await request({ url: node.daemon.url, token: cluster.token }, 'GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000`);
          if (list.status !== 200) return false;
          let ids = new Set((list.body.keys as { id: string }[]).map((k) => k.id));
          let token = list.body.nextPageToken as string | undefined;
          while (token !== undefined) {
            const page = await request({ url: node.daemon.url, token: cluster.token }, 'GET', `/kms/v1/keys?folderId=${FOLDER}&pageSize=1000&pageToken=${token}`);
            ids = new Set([...ids, ...(page.body.keys as { id: string }[]).map((k) => k.id)]);
            token = page.body.nextPageToken as string | undefined;
          }
          return acked.every((id) => ids.has(id));
        },
        10_000,
        `every acknowledged write on ${node.name}`,
      );
      expect(await versionCount(node, keyId)).toBe(ROUNDS + 1);
    }
    expect(doubleRotations).toBe(0);
    expect(acked.length).toBeGreaterThan(ROUNDS);
    const sorted = [...failoverMs].sort((a, b) => a - b);
    console.log(
      `${ROUNDS} failovers (lease TTL 2 s, renew 500 ms): median ${median(failoverMs).toFixed(0)} ms, ` +
        `min ${sorted[0]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms; ${acked.length} writes acknowledged, 0 lost; ` +
        `${refused} refused or cut by a kill; ${ROUNDS} rotations, 0 double`,
    );
  },
  900_000,
);
