// One key, three clients: a key made with the official Yandex Cloud Node SDK over gRPC is the same
// key to Terraform (`import`, then a clean plan), and a key made by Terraform reads the same over
// gRPC as over REST.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Session, waitForOperation } from '@yandex-cloud/nodejs-sdk';
import { symmetricKey, symmetricKeyService } from '@yandex-cloud/nodejs-sdk/kms-v1';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeEachCli } from '../support/cli.js';
import { startDaemon, type DaemonProcess } from '../support/daemon.js';
import { E2E_TIMEOUT, KmsRest, config, keyResource, uniqueFolder, workspaceFor, type Kms } from './fixtures.js';

describeEachCli('a key over gRPC, REST and Terraform', (cli) => {
  let daemon: DaemonProcess;
  let kms: Kms;
  let keys: ReturnType<Session['client']> & { create: any; get: any };
  let session: Session;
  let endpoint: string;

  beforeAll(async () => {
    daemon = await startDaemon({ args: ['--grpc-listen', '127.0.0.1:0'] });
    const listening = daemon.output.map((line) => JSON.parse(line.startsWith('{') ? line : '{}') as { msg?: string; grpcAdvertise?: string }).find((l) => l.msg === 'kmsd listening');
    endpoint = listening!.grpcAdvertise!;
    session = new Session({ iamToken: daemon.token, ssl: { rootCerts: readFileSync(join(daemon.dataDir, 'tls', 'ca.pem')) } });
    keys = session.client(symmetricKeyService.SymmetricKeyServiceClient, endpoint);
    kms = { url: daemon.url, token: daemon.token, rest: new KmsRest(daemon.url, daemon.token), stop: () => daemon.stop() };
  }, E2E_TIMEOUT);

  afterAll(async () => {
    await daemon?.stop();
    if (daemon !== undefined) rmSync(daemon.dataDir, { recursive: true, force: true });
  });

  it(
    'a key made over gRPC imports into Terraform with a clean plan; one made by Terraform reads the same over gRPC',
    async () => {
      const folder = uniqueFolder('grpc-tf');
      const op = await keys.create(
        symmetricKeyService.CreateSymmetricKeyRequest.fromPartial({
          folderId: folder,
          name: 'from-grpc',
          description: 'made by the Node SDK',
          labels: { env: 'prod' },
          defaultAlgorithm: symmetricKey.SymmetricAlgorithm.AES_256,
          rotationPeriod: { seconds: 86400, nanos: 0 },
        }),
      );
      const made = symmetricKey.SymmetricKey.decode((await waitForOperation(op, session, 10_000, endpoint)).response!.value);
      const ws = workspaceFor(cli, kms, folder, 'grpc');
      try {
        ws.write(
          config(
            keyResource('imported', { name: 'from-grpc', description: 'made by the Node SDK', labels: { env: 'prod' }, default_algorithm: 'AES_256', rotation_period: '24h' }),
            keyResource('made', { name: 'from-terraform', labels: { team: 'payments' }, rotation_period: '720h' }),
          ),
        );
        await ws.init();
        await ws.run(['import', '-no-color', '-input=false', 'kms_symmetric_key.imported', made.id]);
        await ws.apply();
        expect(await ws.planExitCode()).toBe(0);
        const state = await ws.state();
        expect(state.get('kms_symmetric_key.imported')!.values).toMatchObject({ id: made.id, primary_version_id: made.primaryVersion!.id });

        const madeId = state.get('kms_symmetric_key.made')!.values.id as string;
        const overGrpc: symmetricKey.SymmetricKey = await keys.get({ keyId: madeId });
        const overRest = await kms.rest.getKey(madeId);
        expect(overGrpc).toMatchObject({ id: madeId, folderId: folder, name: overRest!.name, labels: overRest!.labels, deletionProtection: overRest!.deletionProtection });
        expect(symmetricKey.symmetricAlgorithmToJSON(overGrpc.defaultAlgorithm)).toBe(overRest!.defaultAlgorithm);
        expect(`${Number(overGrpc.rotationPeriod!.seconds)}s`).toBe(overRest!.rotationPeriod);
        expect(overGrpc.createdAt!.toISOString()).toBe(overRest!.createdAt);
        expect(overGrpc.primaryVersion!.id).toBe(state.get('kms_symmetric_key.made')!.values.primary_version_id);
      } finally {
        await ws.destroy().catch(() => undefined);
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
