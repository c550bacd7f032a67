/**
 * The gRPC listener's TLS material: the private CA and server certificate kmsd makes under
 * <data-dir>/tls/ (modes, names, reuse across restarts, reissue by the same CA), files given with
 * --tls-cert/--tls-key, and --grpc-listen off.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../daemon/config.js';
import { loadTlsMaterial } from '../../daemon/grpc/tls.js';
import { api, tempDir } from '../support/daemon.js';
import { startTestKmsd, type TestKmsd } from '../support/kmsd.js';

const running: TestKmsd[] = [];
afterEach(async () => {
  for (const k of running.splice(0)) await k.stop();
});

/** ApiEndpointService.List over TLS with `ca` as the only root: proves the chain and the name. */
function listEndpoints(address: string, ca: Buffer): Promise<{ code: number; bytes?: Buffer }> {
  const client = new grpc.Client(address, grpc.credentials.createSsl(ca));
  return new Promise((resolveCall) => {
    client.makeUnaryRequest(
      '/yandex.cloud.endpoint.ApiEndpointService/List',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + 10_000 },
      (err, value) => {
        client.close();
        resolveCall(err ? { code: err.code } : { code: 0, ...(value !== undefined ? { bytes: value } : {}) });
      },
    );
  });
}

describe('gRPC TLS material', () => {
  it('makes a CA and a server certificate under <data-dir>/tls/, keys 0600, and reuses them at the next start', async () => {
    const dataDir = tempDir();
    const first = await startTestKmsd({ dataDir, args: ['--keystore', 'software', '--grpc-listen', '127.0.0.1:0'] });
    running.push(first);
    const tls = join(dataDir, 'tls');
    expect(first.grpcCaPath).toBe(join(tls, 'ca.pem'));
    expect(statSync(tls).mode & 0o777).toBe(0o700);
    expect(statSync(join(tls, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(tls, 'server.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(tls, 'ca.pem')).mode & 0o777).toBe(0o644);
    const ca = new X509Certificate(readFileSync(join(tls, 'ca.pem')));
    const server = new X509Certificate(readFileSync(join(tls, 'server.pem')));
    expect(ca.ca).toBe(true);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(readFileSync(join(tls, 'server.key'), 'utf8')).not.toContain(readFileSync(join(tls, 'ca.key'), 'utf8'));
    // A client that trusts only ca.pem reaches it by the advertised name.
    expect((await listEndpoints(first.grpcAdvertise!, readFileSync(first.grpcCaPath!))).code).toBe(0);
    // …and one that trusts the system roots does not.
    const system = new grpc.Client(first.grpcAdvertise!, grpc.credentials.createSsl());
    const untrusted = await new Promise<number>((resolveCall) =>
      system.makeUnaryRequest('/yandex.cloud.endpoint.ApiEndpointService/List', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err) => resolveCall(err?.code ?? 0)),
    );
    system.close();
    expect(untrusted).toBe(grpc.status.UNAVAILABLE);
    const before = readFileSync(join(tls, 'server.pem'), 'utf8');
    await first.stop();
    running.splice(0);

    const second = await startTestKmsd({ dataDir, args: ['--keystore', 'software', '--grpc-listen', '127.0.0.1:0'] });
    running.push(second);
    expect(readFileSync(join(tls, 'server.pem'), 'utf8')).toBe(before);
    await second.stop();
    running.splice(0);

    // Advertising another name reissues the server certificate from the same CA.
    const third = await startTestKmsd({ dataDir, args: ['--keystore', 'software', '--grpc-listen', '127.0.0.1:0', '--grpc-advertise', 'kms.internal:8444'] });
    running.push(third);
    expect(third.grpcAdvertise).toBe('kms.internal:8444');
    const reissued = new X509Certificate(readFileSync(join(tls, 'server.pem')));
    expect(reissued.subjectAltName).toContain('DNS:kms.internal');
    expect(reissued.checkIssued(new X509Certificate(readFileSync(join(tls, 'ca.pem'))))).toBe(true);
    expect(reissued.serialNumber).not.toBe(server.serialNumber);
    const endpoints = await api(third, 'GET', '/endpoints');
    expect(endpoints.body.endpoints).toContainEqual({ id: 'kms', address: 'kms.internal:8444' });
  });

  it('reissues a server certificate that expires within 30 days, keeping the CA', async () => {
    const dataDir = tempDir();
    const old = await loadTlsMaterial({ dataDir, now: new Date(Date.now() - 380 * 24 * 3600_000) });
    expect(old.source).toBe('created');
    const caBefore = readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8');
    const renewed = await loadTlsMaterial({ dataDir });
    expect(renewed.source).toBe('reissued');
    expect(readFileSync(join(dataDir, 'tls', 'ca.pem'), 'utf8')).toBe(caBefore);
    expect((await loadTlsMaterial({ dataDir })).source).toBe('reused');
  });

  it('serves the files given with --tls-cert/--tls-key and makes no tls/ dir', async () => {
    const made = tempDir();
    const material = await loadTlsMaterial({ dataDir: made });
    const dataDir = tempDir();
    const kmsd = await startTestKmsd({
      dataDir,
      args: ['--keystore', 'software', '--grpc-listen', '127.0.0.1:0', '--tls-cert', join(made, 'tls', 'server.pem'), '--tls-key', join(made, 'tls', 'server.key')],
    });
    running.push(kmsd);
    expect(existsSync(join(dataDir, 'tls'))).toBe(false);
    expect(kmsd.grpcCaPath).toBeUndefined();
    expect((await listEndpoints(kmsd.grpcAdvertise!, readFileSync(material.caPath!))).code).toBe(0);
  });

  it('--grpc-listen off starts no listener and discovery lists nothing', async () => {
    const kmsd = await startTestKmsd({ args: ['--keystore', 'software', '--grpc-listen', 'off'] });
    running.push(kmsd);
    expect(kmsd.grpcAddress).toBeUndefined();
    expect(existsSync(join(kmsd.dataDir, 'tls'))).toBe(false);
    expect((await fetch(`${kmsd.url}/endpoints`)).status).toBe(200);
    expect(await (await fetch(`${kmsd.url}/endpoints`)).json()).toEqual({ endpoints: [] });
  });

  it('parses the gRPC flags and their environment variables', () => {
    expect(parseConfig([], {}).grpc).toEqual({ host: '127.0.0.1', port: 8444 });
    expect(parseConfig(['--grpc-listen', '[::1]:9444'], {}).grpc).toEqual({ host: '::1', port: 9444 });
    expect(parseConfig([], { KMS_GRPC_LISTEN: 'off' }).grpc).toBeNull();
    expect(parseConfig([], { KMS_GRPC_ADVERTISE: 'kms.example:443' }).grpcAdvertise).toBe('kms.example:443');
    expect(() => parseConfig(['--grpc-listen', 'nope'], {})).toThrow('--grpc-listen must be HOST:PORT, got "nope"');
    expect(() => parseConfig(['--tls-cert', 'a.pem'], {})).toThrow('--tls-cert and --tls-key must be given together');
  });
});
