/**
 * The audit query API for `kms.auditor` (and every role above it): events filtered by folder,
 * key, subject, operation and time range, oldest first, paginated. An auditor sees the events
 * of the folder (or key) the role is bound on; only the bootstrap admin can query everything.
 */
import { invalidArgument } from '../domain/errors.js';
import type { AuditLog, AuditQuery } from '../domain/ports.js';
import { intQuery, type RouteDef } from './router.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function auditRoutes(audit: AuditLog): RouteDef[] {
  return [
    {
      method: 'GET',
      path: '/kms/v1/auditEvents',
      operationId: 'AuditEvents.List',
      summary: 'Queries the audit trail (filters: folderId, keyId, subject, operation, from, to; paginated).',
      permission: 'kms.audit.read',
      query: ['folderId', 'keyId', 'subject', 'operation', 'from', 'to', 'pageSize', 'pageToken'],
      target: (ctx) => (ctx.query.keyId ? { keyId: ctx.query.keyId } : ctx.query.folderId ? { folderId: ctx.query.folderId } : {}),
      handler: (ctx) => {
        const query: AuditQuery = {};
        for (const name of ['folderId', 'keyId', 'subject', 'operation', 'pageToken'] as const) {
          const value = ctx.query[name];
          if (value !== undefined && value !== '') query[name] = value;
        }
        for (const name of ['from', 'to'] as const) {
          const value = ctx.query[name];
          if (value === undefined || value === '') continue;
          if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) throw invalidArgument(name, `must be an RFC 3339 timestamp, got "${value}"`);
          query[name] = new Date(value).toISOString();
        }
        const pageSize = intQuery(ctx.query, 'pageSize');
        if (pageSize !== undefined) {
          if (pageSize > 1000) throw invalidArgument('pageSize', 'must be an integer from 0 to 1000');
          query.pageSize = pageSize;
        }
        const page = audit.query(query);
        return { body: page.nextPageToken === undefined ? { events: page.events } : { events: page.events, nextPageToken: page.nextPageToken } };
      },
    },
  ];
}
