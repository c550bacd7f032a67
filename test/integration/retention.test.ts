/**
 * Operations retention: operations older than --operation-retention (default 30 days) are pruned
 * by the scheduler, so the store does not grow with history alone.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { api } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

let kmsd: TestKmsd;
const call = (method: string, path: string, body?: unknown) => api(kmsd, method, path, body);

beforeAll(async () => {
  kmsd = await startTestKmsd({ args: ['--operation-retention', '2h'] });
});

afterAll(async () => {
  await kmsd.stop();
});

describe('operations retention', () => {
  it('keeps operations younger than the retention and prunes older ones', async () => {
    const created = await call('POST', '/kms/v1/keys', { folderId: 'retention' });
    const keyId = created.body.response.id as string;
    const old = created.body.id as string;
    const advanced = await call('POST', '/test/v1/clock:advance', { seconds: 3600 });
    expect(advanced.body.prunedOperations).toBe(0);
    const rotated = await call('POST', `/kms/v1/keys/${keyId}:rotate`, {});
    expect((await call('GET', `/operations/${old}`)).status).toBe(200);
    const later = await call('POST', '/test/v1/clock:advance', { seconds: 3601 });
    expect(later.body.prunedOperations).toBe(1);
    expect((await call('GET', `/operations/${old}`)).status).toBe(404);
    const listed = await call('GET', `/kms/v1/keys/${keyId}/operations`);
    expect(listed.body.operations.map((op: { id: string }) => op.id)).toEqual([rotated.body.id]);
    // The key itself is untouched by the pruning of its history.
    expect((await call('GET', `/kms/v1/keys/${keyId}`)).status).toBe(200);
  });

  it('refuses a malformed retention', () => {
    return expect(startTestKmsd({ args: ['--operation-retention', 'forever'] })).rejects.toThrow(
      '--operation-retention must be a duration such as "72h" or "90m", got "forever"',
    );
  });
});
