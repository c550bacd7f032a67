// The REST client's deadlines and cancellation against a real node:http server that answers some
// paths at once and never answers others: an exchange past its timeout fails as "timed out", the
// caller's signal (StopProvider) cancels every exchange in flight and refuses new ones, and
// exchanges that are answered are not disturbed by the ones timing out around them.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KmsClient } from '../../provider/client/kms-client.js';
import { unreachableReason } from '../support/client.js';

describe('KmsClient deadlines and cancellation', () => {
  let server: Server;
  let url: string;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith('/kms/v1/keys/hang')) {
        held.push(res);
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/healthz' ? '{"status":"ok"}' : '{"id":"k1","name":"n"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const res of held.splice(0)) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('times out every exchange that gets no answer, and only those', async () => {
    const client = new KmsClient({ endpoint: url, token: 't', timeoutMs: 300 });
    const hanging = [client.getKey('hang-1'), client.getKey('hang-2')];
    // Answered calls started before, between and after the hanging ones all succeed.
    await expect(client.health()).resolves.toEqual({ status: 'ok' });
    const answered = await Promise.all([client.getKey('k1'), client.health()]);
    expect(answered[0]).toEqual({ id: 'k1', name: 'n' });
    hanging.push(client.getKey('hang-3'));
    for (const call of hanging) await expect(unreachableReason(call)).resolves.toBe('timed out');
    // The client is still usable afterwards, and a later hang times out as well.
    await expect(client.getKey('k1')).resolves.toEqual({ id: 'k1', name: 'n' });
    await expect(unreachableReason(client.getKey('hang-4'))).resolves.toBe('timed out');
  });

  it("cancels every exchange in flight when the caller's signal aborts, and refuses new ones", async () => {
    const stop = new AbortController();
    const client = new KmsClient({ endpoint: url, token: 't', timeoutMs: 60_000, signal: stop.signal });
    await expect(client.health()).resolves.toEqual({ status: 'ok' });
    const before = held.length;
    const hanging = [client.getKey('hang-5'), client.getKey('hang-6')];
    // Both requests reach the server before the stop.
    while (held.length < before + 2) await new Promise((resolve) => setTimeout(resolve, 10));
    stop.abort();
    for (const call of hanging) await expect(unreachableReason(call)).resolves.toBe('request cancelled');
    await expect(unreachableReason(client.health())).resolves.toBe('request cancelled');
  });
});
