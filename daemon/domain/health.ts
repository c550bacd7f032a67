/**
 * Readiness: whether this daemon can serve writes right now. Each component that makes writes
 * durable (store, audit trail) reports its own `ComponentHealth`; the daemon is ready when all
 * are. `/healthz` answers 503 with the reasons while it is not, and recovers on its own, because
 * each component heals by itself once its writes succeed again.
 */
import type { ComponentHealth } from './ports.js';

export interface ReadinessReport {
  ready: boolean;
  /** `ok`, or the reason, per component. */
  checks: Record<string, string>;
}

export type HealthSource = () => ComponentHealth;

export function readiness(sources: ReadonlyMap<string, HealthSource>): ReadinessReport {
  const checks = Object.create(null) as Record<string, string>;
  let ready = true;
  for (const [name, source] of sources) {
    const health = source();
    checks[name] = health.ok ? 'ok' : health.reason;
    if (!health.ok) ready = false;
  }
  return { ready, checks };
}
