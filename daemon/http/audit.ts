/**
 * The audit query API for `kms.auditor` (and every role above it): events filtered by folder,
 * key, subject, operation and time range, oldest first, paginated. An auditor sees the events
 * of the folder (or key) the role is bound on; only the bootstrap admin can query everything.
 */
import type { AuditLog, AuditQuery } from '../domain/ports.js';
import { intQuery, type RouteDef } from './router.js';

/** What a walk of the whole trail found (daemon/audit/verify.ts). */
export interface TrailVerificationReport {
  ok: boolean;
  findings: { segment?: string; line?: number; reason: string }[];
  notes: string[];
  events: number;
  segments: number;
  headSeq: number;
}

/**
 * `verify` walks the whole trail under the audit key (what `kmsd audit verify` does, from inside
 * the daemon): one walk at a time, concurrent callers share it, so callers cannot pile up scans.
 */
export function auditRoutes(audit: AuditLog, verify?: () => Promise<TrailVerificationReport>): RouteDef[] {
  let running: Promise<TrailVerificationReport & { verifiedAt: string }> | undefined;
  const verifyOnce = (now: () => Date) =>
    (running ??= (async () => {
      try {
        await audit.flush();
        return { ...(await (verify as () => Promise<TrailVerificationReport>)()), verifiedAt: now().toISOString() };
      } finally {
        running = undefined;
      }
    })());
  const routes: RouteDef[] = [
    {
      method: 'GET',
      path: '/kms/v1/auditEvents',
      operationId: 'AuditEvents.List',
      response: 'AuditEventsPage',
      summary: 'Queries the audit trail (filters: folderId, keyId, subject, operation, from, to; paginated).',
      permission: 'kms.audit.read',
      query: ['folderId', 'keyId', 'subject', 'operation', 'from', 'to', 'pageSize', 'pageToken'],
      target: (ctx) => (ctx.query.keyId ? { keyId: ctx.query.keyId } : ctx.query.folderId ? { folderId: ctx.query.folderId } : {}),
      handler: async (ctx) => {
        // The log validates the time bounds, page size and token; this only maps the parameters.
        const query: AuditQuery = {};
        for (const name of ['folderId', 'keyId', 'subject', 'operation', 'from', 'to', 'pageToken'] as const) {
          const value = ctx.query[name];
          if (value !== undefined && value !== '') query[name] = value;
        }
        const pageSize = intQuery(ctx.query, 'pageSize');
        if (pageSize !== undefined) query.pageSize = pageSize;
        const page = await audit.query(query);
        return { body: page.nextPageToken === undefined ? { events: page.events } : { events: page.events, nextPageToken: page.nextPageToken } };
      },
    },
  ];
  if (verify !== undefined) {
    routes.push({
      method: 'GET',
      path: '/kms/v1/auditEvents:verify',
      operationId: 'AuditEvents.Verify',
      response: 'AuditVerification',
      summary: 'Verifies the whole trail (every MAC under the audit key, the chain, indexes, start and head anchor); daemon-wide, so only for a caller who may read every event.',
      permission: 'kms.audit.read',
      target: () => ({}),
      handler: async () => ({ body: await verifyOnce(() => new Date()) }),
    });
  }
  return routes;
}
