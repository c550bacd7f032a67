/**
 * GET /metrics: the documented Prometheus series, fed by real calls through both HTTP paths
 * (the lean data-plane path and Express), and who may read them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';

let kmsd: TestKmsd;
let keyId = '';

/** The value of one sample line, e.g. `kms_calls_total{operation="X",result="OK"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(token = kmsd.token): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${kmsd.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

beforeAll(async () => {
  kmsd = await startTestKmsd();
  const created = await api(kmsd, 'POST', '/kms/v1/keys', { folderId: 'metrics', defaultAlgorithm: 'AES_256' });
  keyId = created.body.response.id;
  for (let i = 0; i < 5; i++) await api(kmsd, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: 'eA==' });
  await api(kmsd, 'POST', `/kms/v1/keys/${keyId}:decrypt`, { ciphertext: 'AAAA' });
  await api(kmsd, 'GET', '/kms/v1/no/such/route/with/a/secret-looking-path');
});

afterAll(async () => {
  await kmsd.stop();
});

describe('GET /metrics', () => {
  it('serves the documented series in the Prometheus text format', async () => {
    const { status, type, text } = await scrape();
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(text, 'kms_calls_total{operation="SymmetricCrypto.Encrypt",result="OK"}')).toBe(5);
    expect(sample(text, 'kms_calls_total{operation="SymmetricCrypto.Decrypt",result="INVALID_ARGUMENT"}')).toBe(1);
    expect(sample(text, 'kms_calls_total{operation="SymmetricKey.Create",result="OK"}')).toBe(1);
    expect(sample(text, 'kms_calls_total{operation="unrouted",result="NOT_FOUND"}')).toBe(1);
    expect(text).not.toContain('secret-looking-path');
    expect(sample(text, 'kms_call_duration_seconds_count{operation="SymmetricCrypto.Encrypt",result="OK"}')).toBe(5);
    expect(text).toMatch(/^kms_call_duration_seconds_bucket\{le="0\.005",operation="SymmetricCrypto\.Encrypt",result="OK"\} \d+$/m);
    expect(sample(text, 'kms_keystore_call_duration_seconds_count{operation="seal",algorithm="AES_256"}')).toBe(5);
    expect(sample(text, 'kms_keystore_call_duration_seconds_count{operation="create",algorithm="AES_256"}')).toBe(1);
    expect(sample(text, 'kms_store_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'kms_audit_flush_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'kms_audit_batch_events_sum')).toBeGreaterThanOrEqual(7);
    expect(text).toContain('# TYPE kms_hsm_errors_total counter');
    expect(text).toMatch(/^kms_scheduler_lag_seconds \d/m);
    expect(sample(text, 'kms_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^kms_nodejs_eventloop_lag_seconds /m);
  });

  it('is for the bootstrap admin and system:metrics tokens only', async () => {
    const metricsToken = await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: 'system:metrics', description: 'prometheus' });
    expect(metricsToken.status).toBe(200);
    expect((await scrape(metricsToken.body.token)).status).toBe(200);
    // The metrics token reads metrics and nothing else.
    expect((await api({ url: kmsd.url, token: metricsToken.body.token }, 'GET', `/kms/v1/keys/${keyId}`)).status).toBe(403);
    const sa = await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'not-prometheus' });
    const saToken = await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
    const denied = await scrape(saToken.body.token);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.text).message).toBe(`serviceAccount:${sa.body.id} lacks permission metrics.read`);
    expect((await scrape('kms_not_a_token')).status).toBe(401);
  });
});
