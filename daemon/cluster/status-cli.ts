/**
 * `kmsd cluster status --store postgres://… [--json]`: the nodes registered on the database (with
 * the seconds since their last heartbeat), the lease holder, its epoch and how long the lease
 * still runs, the schema version and the cluster-wide revision. Read-only.
 */
import pg from 'pg';
import { parseArgs } from 'node:util';
import { listAuditAnchors, listNodes, readClusterMeta, readLease } from '../store/pg-sql.js';
import { describePgError, pgConnectionConfig } from '../store/pg-store.js';

export const CLUSTER_USAGE = `Usage: kmsd cluster status --store postgres://… [--json]   (or KMS_STORE)
`;

/** A node silent for longer than this is shown as "down" (heartbeats are every 5 s). */
const DOWN_AFTER_SECONDS = 15;

export async function runClusterCommand(argv: string[], env: NodeJS.ProcessEnv, out = process.stdout, err = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'status') {
    err.write(`kmsd cluster: ${command === undefined ? 'missing subcommand' : `unknown subcommand "${command.slice(0, 64)}"`}\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: { store: { type: 'string' }, json: { type: 'boolean' } } }));
  } catch (e) {
    err.write(`kmsd cluster status: ${(e as Error).message}\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  const url = values.store ?? env.KMS_STORE;
  if (url === undefined || !/^postgres(ql)?:\/\//.test(url)) {
    err.write(`kmsd cluster status: needs --store postgres://… (or KMS_STORE)\n\n${CLUSTER_USAGE}`);
    return 2;
  }
  const client = new pg.Client(pgConnectionConfig(url, 'kmsd:cluster-status'));
  try {
    await client.connect();
    // One connection answers one query at a time.
    const meta = await readClusterMeta(client);
    const lease = await readLease(client);
    const nodes = await listNodes(client);
    const anchors = await listAuditAnchors(client);
    const anchorOf = new Map(anchors.map((a) => [a.instanceId, a.seq]));
    const report = {
      schemaVersion: meta.schemaVersion,
      revision: meta.rev,
      lease: { holder: lease.remainingMs > 0 ? lease.holder : null, lastHolder: lease.holder, epoch: lease.epoch, remainingMs: Math.max(0, lease.remainingMs) },
      nodes: nodes.map((n) => ({
        instanceId: n.instanceId,
        url: n.url,
        version: n.version,
        startedAt: n.startedAt,
        lastSeenSecondsAgo: Math.round(n.silentSeconds * 10) / 10,
        state: n.silentSeconds > DOWN_AFTER_SECONDS ? 'down' : 'up',
        leader: lease.remainingMs > 0 && lease.holder === n.instanceId,
        auditHeadSeq: anchorOf.get(n.instanceId) ?? null,
      })),
    };
    if (values.json === true) {
      out.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    out.write(`schema version ${report.schemaVersion}, revision ${report.revision}\n`);
    out.write(
      report.lease.holder === null
        ? `lease: free (epoch ${report.lease.epoch}, last held by ${report.lease.lastHolder ?? 'nobody'})\n`
        : `lease: held by ${report.lease.holder}, epoch ${report.lease.epoch}, ${(report.lease.remainingMs / 1000).toFixed(1)} s left\n`,
    );
    out.write('nodes:\n');
    for (const n of report.nodes) {
      out.write(
        `  ${n.instanceId}  ${n.state.padEnd(4)}  ${n.leader ? 'leader  ' : 'follower'}  ${n.url}  v${n.version}  seen ${n.lastSeenSecondsAgo} s ago  audit head ${n.auditHeadSeq ?? '-'}\n`,
      );
    }
    return 0;
  } catch (e) {
    err.write(`kmsd cluster status: ${describePgError(e)}\n`);
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}
