/** Routes about the daemon itself: health, the API description, and the test-only clock. */
import type { AdjustableClock } from '../domain/clock.js';
import type { ReadinessReport } from '../domain/health.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { RouteDef } from './router.js';

/**
 * Liveness and readiness for load balancers: 200 `{status: "ok", ready: true, …}` while every
 * component can write, 503 `{status: "unavailable", ready: false, checks: {store: "<reason>"}}`
 * while one cannot (disk full, read-only, I/O errors, PostgreSQL unreachable). `leader` says
 * whether this node runs the scheduler (a single file-store node always does; on PostgreSQL, the
 * holder of the lease). `?leader` is the probe for "route to the leader": 200 on the leader, 429
 * elsewhere. Needs no token and is not audited.
 */
export function healthRoute(info: () => Record<string, unknown>, ready: () => ReadinessReport, leader: () => boolean = () => true): RouteDef {
  return {
    method: 'GET',
    path: '/healthz',
    operationId: 'Health.Get',
    response: 'Health',
    summary: 'Liveness, readiness (503 with the reasons while writes fail), leadership (?leader: 200 on the leader, 429 elsewhere) and basic facts; needs no token.',
    permission: 'public',
    query: ['leader'],
    handler: (ctx) => {
      const report = ready();
      const isLeader = leader();
      const body = { status: report.ready ? 'ok' : 'unavailable', ready: report.ready, leader: isLeader, checks: report.checks, ...info() };
      if (ctx.query.leader !== undefined) return { status: isLeader && report.ready ? 200 : 429, body };
      return { status: report.ready ? 200 : 503, body };
    },
  };
}

export function openApiRoute(document: () => object): RouteDef {
  return {
    method: 'GET',
    path: '/openapi.json',
    operationId: 'Api.Describe',
      response: 'ApiDescription',
    summary: 'The OpenAPI 3.1 description of this API, built from the JSON Schemas in schemas/api.',
    permission: 'authenticated',
    handler: () => ({ body: document() }),
  };
}

/**
 * Prometheus metrics (text exposition format). Needs permission `metrics.read`: the bootstrap
 * admin, or a token issued for the subject `system:metrics` (what Prometheus is given).
 */
export function metricsRoute(render: () => Promise<{ contentType: string; text: string }>): RouteDef {
  return {
    method: 'GET',
    path: '/metrics',
    operationId: 'Metrics.Get',
    response: 'text',
    summary: 'Prometheus metrics: calls and latency by operation and result, audit, keystore, store, scheduler, process.',
    permission: 'metrics.read',
    handler: async () => {
      const { contentType, text } = await render();
      return { body: text, contentType };
    },
  };
}

/** Exists only under `kmsd --unsafe-test-clock`. */
export function testClockRoute(clock: AdjustableClock, scheduler: Scheduler): RouteDef {
  return {
    method: 'POST',
    path: '/test/v1/clock:advance',
    operationId: 'TestClock.Advance',
      response: 'ClockAdvance',
    summary: 'Moves the daemon clock forward and runs the due work (rotation, destruction). Test only.',
    permission: 'iam.admin',
    body: 'clock-advance',
    handler: async (ctx) => {
      const now = clock.advance((ctx.body as { seconds: number }).seconds);
      const report = await scheduler.runOnce();
      return { body: { now: now.toISOString(), ...report } };
    },
  };
}
