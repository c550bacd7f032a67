// The REST client over https: it trusts the certificates of NODE_EXTRA_CA_CERTS (as the plugin's
// launcher hands them over, in KMS_NODE_EXTRA_CA_CERTS) and refuses an unknown certificate.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KmsClient, KmsUnreachableError } from '../../provider/client/kms-client.js';
import { generateServerCertificate } from '../../provider/protocol/tls.js';
import { tempDir } from '../support/daemon.js';

describe('KmsClient over https', () => {
  const cert = generateServerCertificate();
  const dir = tempDir('kms-https-');
  const caFile = join(dir, 'ca.pem');
  let server: Server;
  let url: string;

  beforeAll(async () => {
    writeFileSync(caFile, cert.certPem);
    server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/healthz' ? '{"status":"ok"}' : '{"code":5,"message":"nope"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('trusts the certificates of KMS_NODE_EXTRA_CA_CERTS', async () => {
    process.env['KMS_NODE_EXTRA_CA_CERTS'] = caFile;
    try {
      await expect(new KmsClient({ endpoint: url, token: 't' }).health()).resolves.toEqual({ status: 'ok' });
    } finally {
      delete process.env['KMS_NODE_EXTRA_CA_CERTS'];
    }
  });

  it('refuses a certificate nobody vouches for, as an unreachable daemon with the reason', async () => {
    const saved = process.env['NODE_EXTRA_CA_CERTS'];
    delete process.env['NODE_EXTRA_CA_CERTS'];
    try {
      const failure = new KmsClient({ endpoint: url, token: 't' }).health();
      await expect(failure).rejects.toBeInstanceOf(KmsUnreachableError);
      await expect(failure).rejects.toThrow(/SELF_SIGNED|self.signed|unable to verify/i);
    } finally {
      if (saved !== undefined) process.env['NODE_EXTRA_CA_CERTS'] = saved;
    }
  });
});
