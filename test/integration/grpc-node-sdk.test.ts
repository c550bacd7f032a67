/**
 * The unmodified Yandex Cloud Node SDK (`@yandex-cloud/nodejs-sdk` from npm) against kmsd with
 * SoftHSM2 over TLS gRPC: the whole key lifecycle, the error codes, one audit event per gRPC call
 * with the fields of its REST twin, the permission matrix over both protocols, and keys that look
 * the same whichever protocol made or reads them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Session, waitForOperation } from '@yandex-cloud/nodejs-sdk';
import { operationService } from '@yandex-cloud/nodejs-sdk/operation';
import { symmetricCryptoService, symmetricKey, symmetricKeyService } from '@yandex-cloud/nodejs-sdk/kms-v1';
import { folderService } from '@yandex-cloud/nodejs-sdk/resourcemanager-v1';
import { iamTokenService } from '@yandex-cloud/nodejs-sdk/iam-v1';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { readTrailEvents } from '../support/audit.js';
import { api } from '../support/daemon.js';
import { startGrpcKmsd, type GrpcKmsd } from '../support/grpc.js';

const { SymmetricAlgorithm, SymmetricKey, SymmetricKeyVersion, SymmetricKey_Status, SymmetricKeyVersion_Status } = symmetricKey;
const { CreateSymmetricKeyRequest, UpdateSymmetricKeyRequest, ScheduleSymmetricKeyVersionDestructionRequest } = symmetricKeyService;
const { SymmetricEncryptRequest, SymmetricDecryptRequest, SymmetricReEncryptRequest, GenerateDataKeyRequest } = symmetricCryptoService;

const FOLDER = 'node-sdk';
let kmsd: GrpcKmsd;

function session(token: string): Session {
  return new Session({ iamToken: token, ssl: { rootCerts: kmsd.ca } });
}

function clients(token: string) {
  const s = session(token);
  return {
    session: s,
    keys: s.client(symmetricKeyService.SymmetricKeyServiceClient, kmsd.endpoint),
    crypto: s.client(symmetricCryptoService.SymmetricCryptoServiceClient, kmsd.endpoint),
    operations: s.client(operationService.OperationServiceClient, kmsd.endpoint),
    folders: s.client(folderService.FolderServiceClient, kmsd.endpoint),
  };
}

type Clients = ReturnType<typeof clients>;
let admin: Clients;

/** The gRPC status of a failed call. */
async function failure(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    return { code: e.code ?? -1, details: e.details ?? String(err) };
  }
  throw new Error('the call succeeded');
}

async function newServiceAccount(name: string): Promise<{ id: string; token: string }> {
  const sa = await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name });
  const token = await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
  return { id: sa.body.id as string, token: token.body.token as string };
}

async function createKey(c: Clients, fields: Partial<symmetricKeyService.CreateSymmetricKeyRequest> = {}): Promise<symmetricKey.SymmetricKey> {
  const op = await c.keys.create(CreateSymmetricKeyRequest.fromPartial({ folderId: FOLDER, ...fields }));
  const done = await waitForOperation(op, c.session, 10_000, kmsd.endpoint);
  return SymmetricKey.decode(done.response!.value);
}

beforeAll(async () => {
  kmsd = await startGrpcKmsd();
  admin = clients(kmsd.token);
}, 60_000);

afterAll(async () => {
  await kmsd?.stop();
});

describe('the Yandex Cloud Node SDK against kmsd', () => {
  it('runs the whole key lifecycle', async () => {
    const { keys, crypto, session: s } = admin;
    // create with labels and a rotation period → wait for the operation (OperationService.Get)
    const op = await keys.create(
      CreateSymmetricKeyRequest.fromPartial({
        folderId: FOLDER,
        name: 'node-lifecycle',
        labels: { env: 'test', team: 'payments' },
        defaultAlgorithm: SymmetricAlgorithm.AES_256,
        rotationPeriod: { seconds: 7 * 24 * 3600 },
      }),
    );
    expect(op.metadata?.typeUrl).toBe('type.googleapis.com/yandex.cloud.kms.v1.CreateSymmetricKeyMetadata');
    const created = await waitForOperation(op, s, 10_000, kmsd.endpoint);
    expect(created.done).toBe(true);
    expect(created.response?.typeUrl).toBe('type.googleapis.com/yandex.cloud.kms.v1.SymmetricKey');
    const key = SymmetricKey.decode(created.response!.value);
    expect(symmetricKeyService.CreateSymmetricKeyMetadata.decode(created.metadata!.value)).toEqual({ keyId: key.id, primaryVersionId: key.primaryVersion!.id });
    expect(key).toMatchObject({ folderId: FOLDER, name: 'node-lifecycle', labels: { env: 'test', team: 'payments' }, status: SymmetricKey_Status.ACTIVE });
    expect(key.defaultAlgorithm).toBe(SymmetricAlgorithm.AES_256);
    expect(Number(key.rotationPeriod?.seconds)).toBe(7 * 24 * 3600);
    const first = key.primaryVersion!.id;

    // get, list, list versions
    expect(await keys.get({ keyId: key.id })).toEqual(key);
    const listed = await keys.list(symmetricKeyService.ListSymmetricKeysRequest.fromPartial({ folderId: FOLDER, pageSize: 1000 }));
    expect(listed.keys.map((k) => k.id)).toContain(key.id);
    const versions = await keys.listVersions(symmetricKeyService.ListSymmetricKeyVersionsRequest.fromPartial({ keyId: key.id }));
    expect(versions.keyVersions.map((v) => v.id)).toEqual([first]);

    // update with a field mask: only the masked fields change
    const updatedOp = await keys.update(
      UpdateSymmetricKeyRequest.fromPartial({
        keyId: key.id,
        updateMask: { paths: ['description', 'deletion_protection'] },
        description: 'updated by the Node SDK',
        name: 'not in the mask',
        deletionProtection: true,
      }),
    );
    const updated = SymmetricKey.decode((await waitForOperation(updatedOp, s, 10_000, kmsd.endpoint)).response!.value);
    expect(updated).toMatchObject({ description: 'updated by the Node SDK', name: 'node-lifecycle', deletionProtection: true });

    // encrypt / decrypt with AAD
    const aad = Buffer.from('order-1');
    const enc = await crypto.encrypt(SymmetricEncryptRequest.fromPartial({ keyId: key.id, plaintext: Buffer.from('card 4111'), aadContext: aad }));
    expect(enc.versionId).toBe(first);
    const dec = await crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: key.id, ciphertext: enc.ciphertext, aadContext: aad }));
    expect(Buffer.from(dec.plaintext).toString()).toBe('card 4111');
    const wrongAad = await failure(crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: key.id, ciphertext: enc.ciphertext, aadContext: Buffer.from('x') })));
    expect(wrongAad.code).toBe(3);

    // rotate: the response is a SymmetricKey (the annotation's type) with the new primary version
    const rotateOp = await keys.rotate({ keyId: key.id });
    expect(rotateOp.response?.typeUrl).toBe('type.googleapis.com/yandex.cloud.kms.v1.SymmetricKey');
    const rotated = SymmetricKey.decode((await waitForOperation(rotateOp, s, 10_000, kmsd.endpoint)).response!.value);
    const second = rotated.primaryVersion!.id;
    expect(second).not.toBe(first);
    expect(symmetricKeyService.RotateSymmetricKeyMetadata.decode(rotateOp.metadata!.value)).toEqual({ keyId: key.id, newPrimaryVersionId: second });
    expect(rotated.rotatedAt).toEqual(rotated.primaryVersion!.createdAt);

    // the old ciphertext still decrypts; reEncrypt moves it to the new version
    expect((await crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: key.id, ciphertext: enc.ciphertext, aadContext: aad }))).versionId).toBe(first);
    const re = await crypto.reEncrypt(
      SymmetricReEncryptRequest.fromPartial({ keyId: key.id, aadContext: aad, sourceKeyId: key.id, sourceAadContext: aad, ciphertext: enc.ciphertext }),
    );
    expect({ versionId: re.versionId, sourceVersionId: re.sourceVersionId }).toEqual({ versionId: second, sourceVersionId: first });

    // generateDataKey
    const dk = await crypto.generateDataKey(GenerateDataKeyRequest.fromPartial({ keyId: key.id, dataKeySpec: SymmetricAlgorithm.AES_256, aadContext: aad }));
    expect(dk.dataKeyPlaintext).toHaveLength(32);
    const unwrapped = await crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: key.id, ciphertext: dk.dataKeyCiphertext, aadContext: aad }));
    expect(Buffer.from(unwrapped.plaintext)).toEqual(Buffer.from(dk.dataKeyPlaintext));

    // access bindings: add, list, remove (the access messages as plain objects: the SDK does not export them)
    const sa = await newServiceAccount('node-sdk-binding');
    const binding = { roleId: 'kms.keys.encrypter', subject: { id: sa.id, type: 'serviceAccount' } };
    const add = await keys.updateAccessBindings({ resourceId: key.id, accessBindingDeltas: [{ action: 1, accessBinding: binding }] });
    expect((await waitForOperation(add, s, 10_000, kmsd.endpoint)).response?.typeUrl).toBe('type.googleapis.com/google.protobuf.Empty');
    expect((await keys.listAccessBindings({ resourceId: key.id, pageSize: 0, pageToken: '' })).accessBindings).toEqual([binding]);
    await keys.updateAccessBindings({ resourceId: key.id, accessBindingDeltas: [{ action: 2, accessBinding: binding }] });
    expect((await keys.listAccessBindings({ resourceId: key.id, pageSize: 0, pageToken: '' })).accessBindings).toEqual([]);

    // schedule and cancel the destruction of the old version
    const scheduleOp = await keys.scheduleVersionDestruction(
      ScheduleSymmetricKeyVersionDestructionRequest.fromPartial({ keyId: key.id, versionId: first, pendingPeriod: { seconds: 3 * 24 * 3600 } }),
    );
    expect(scheduleOp.response?.typeUrl).toBe('type.googleapis.com/yandex.cloud.kms.v1.SymmetricKeyVersion');
    expect(SymmetricKeyVersion.decode(scheduleOp.response!.value).status).toBe(SymmetricKeyVersion_Status.SCHEDULED_FOR_DESTRUCTION);
    const cancelOp = await keys.cancelVersionDestruction({ keyId: key.id, versionId: first });
    expect(SymmetricKeyVersion.decode(cancelOp.response!.value).status).toBe(SymmetricKeyVersion_Status.ACTIVE);

    // deletion protection refuses the delete with FAILED_PRECONDITION; lifted, the delete works
    const refused = await failure(keys.delete({ keyId: key.id }));
    expect(refused.code).toBe(9);
    expect(refused.details).toMatch(/deletion protection/);
    await keys.update(UpdateSymmetricKeyRequest.fromPartial({ keyId: key.id, updateMask: { paths: ['deletion_protection'] }, deletionProtection: false }));
    const deleteOp = await keys.delete({ keyId: key.id });
    expect(deleteOp.metadata?.typeUrl).toBe('type.googleapis.com/yandex.cloud.kms.v1.DeleteSymmetricKeyMetadata');
    expect((await failure(keys.get({ keyId: key.id }))).code).toBe(5);

    // OperationService: Get returns the operation; Cancel refuses (it is done)
    expect((await admin.operations.get({ operationId: deleteOp.id })).id).toBe(deleteOp.id);
    expect((await failure(admin.operations.cancel({ operationId: deleteOp.id }))).code).toBe(9);
  });

  it('answers UNAUTHENTICATED, NOT_FOUND and PERMISSION_DENIED with the REST messages', async () => {
    const wrong = clients('kms_not-a-real-token');
    expect(await failure(wrong.keys.list(symmetricKeyService.ListSymmetricKeysRequest.fromPartial({ folderId: FOLDER })))).toEqual({ code: 16, details: 'the token is not valid' });
    expect(await failure(admin.keys.get({ keyId: 'abjnosuchkey' }))).toEqual({ code: 5, details: 'key abjnosuchkey not found' });
    const key = await createKey(admin);
    const outsider = clients((await newServiceAccount('node-sdk-outsider')).token);
    const denied = await failure(outsider.crypto.encrypt(SymmetricEncryptRequest.fromPartial({ keyId: key.id, plaintext: Buffer.from('x') })));
    expect(denied.code).toBe(7);
    expect(denied.details).toMatch(new RegExp(`lacks permission kms.keys.encrypt on key ${key.id}`));
    const invalid = await failure(admin.keys.create(CreateSymmetricKeyRequest.fromPartial({ folderId: FOLDER, labels: { Env: 'x' } })));
    expect(invalid).toEqual({ code: 3, details: 'labels.Env: key "Env" must match ^[a-z][-_0-9a-z]*$' });
  });

  it('exchanges an API token for an IAM token (IamTokenService.Create) that then authenticates', async () => {
    const iam = session(kmsd.token).client(iamTokenService.IamTokenServiceClient, kmsd.endpoint);
    const issued = await iam.create(iamTokenService.CreateIamTokenRequest.fromPartial({ yandexPassportOauthToken: kmsd.token }));
    expect(issued.iamToken).toMatch(/^kms_/);
    expect(issued.expiresAt!.getTime() - Date.now()).toBeGreaterThan(11 * 3600_000);
    const viaIam = clients(issued.iamToken);
    expect((await viaIam.keys.list(symmetricKeyService.ListSymmetricKeysRequest.fromPartial({ folderId: FOLDER }))).keys.length).toBeGreaterThan(0);
    const jwt = await failure(iam.create(iamTokenService.CreateIamTokenRequest.fromPartial({ jwt: 'eyJ.x.y' })));
    expect(jwt.code).toBe(12);
    expect((await failure(iam.create(iamTokenService.CreateIamTokenRequest.fromPartial({ yandexPassportOauthToken: 'kms_wrong' })))).code).toBe(16);
    // The REST twin, on the path Yandex gives it.
    const rest = await fetch(`${kmsd.url}/iam/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ yandexPassportOauthToken: kmsd.token }) });
    expect(rest.status).toBe(200);
    expect(Object.keys((await rest.json()) as object).sort()).toEqual(['expiresAt', 'iamToken']);
  });

  it('manages folder access bindings (FolderService) with AccessBindingsOperationResult', async () => {
    const sa = await newServiceAccount('node-sdk-folder');
    const binding = { roleId: 'kms.viewer', subject: { id: sa.id, type: 'serviceAccount' } };
    const op = await admin.folders.updateAccessBindings({ resourceId: 'node-sdk-folder', accessBindingDeltas: [{ action: 1, accessBinding: binding }] });
    expect(op.response?.typeUrl).toBe('type.googleapis.com/yandex.cloud.access.AccessBindingsOperationResult');
    expect((await admin.folders.listAccessBindings({ resourceId: 'node-sdk-folder', pageSize: 0, pageToken: '' })).accessBindings).toEqual([binding]);
    const cleared = await admin.folders.setAccessBindings({ resourceId: 'node-sdk-folder', accessBindings: [] });
    expect(cleared.done).toBe(true);
    expect((await admin.folders.listAccessBindings({ resourceId: 'node-sdk-folder', pageSize: 0, pageToken: '' })).accessBindings).toEqual([]);
  });
});

/** REST JSON of a key, as the gRPC message would be written in proto3 JSON. */
function asRestJson(key: symmetricKey.SymmetricKey): Record<string, unknown> {
  const version = key.primaryVersion!;
  const json: Record<string, unknown> = {
    id: key.id,
    folderId: key.folderId,
    createdAt: key.createdAt!.toISOString(),
    name: key.name,
    description: key.description,
    labels: key.labels,
    status: symmetricKey.symmetricKey_StatusToJSON(key.status),
    primaryVersion: {
      id: version.id,
      keyId: version.keyId,
      status: symmetricKey.symmetricKeyVersion_StatusToJSON(version.status),
      algorithm: symmetricKey.symmetricAlgorithmToJSON(version.algorithm),
      createdAt: version.createdAt!.toISOString(),
      primary: version.primary,
      hostedByHsm: version.hostedByHsm,
    },
    defaultAlgorithm: symmetricKey.symmetricAlgorithmToJSON(key.defaultAlgorithm),
    deletionProtection: key.deletionProtection,
  };
  if (key.rotatedAt !== undefined) json.rotatedAt = key.rotatedAt.toISOString();
  if (key.rotationPeriod !== undefined) json.rotationPeriod = `${Number(key.rotationPeriod.seconds)}s`;
  return json;
}

describe('one key, two protocols', () => {
  it('a key made over gRPC is the same key over REST, and the reverse', async () => {
    const viaGrpc = await createKey(admin, { name: 'made-over-grpc', labels: { via: 'grpc' }, rotationPeriod: { seconds: 86400, nanos: 0 }, defaultAlgorithm: SymmetricAlgorithm.AES_192 });
    const overRest = await api(kmsd, 'GET', `/kms/v1/keys/${viaGrpc.id}`);
    expect(overRest.body).toEqual(asRestJson(viaGrpc));

    const madeOverRest = await api(kmsd, 'POST', '/kms/v1/keys', { folderId: FOLDER, name: 'made-over-rest', labels: { via: 'rest' }, rotationPeriod: '7200s' });
    const rotated = await api(kmsd, 'POST', `/kms/v1/keys/${madeOverRest.body.response.id}:rotate`);
    expect(rotated.status).toBe(200);
    const overGrpc = await admin.keys.get({ keyId: madeOverRest.body.response.id as string });
    expect(asRestJson(overGrpc)).toEqual((await api(kmsd, 'GET', `/kms/v1/keys/${overGrpc.id}`)).body);
    // A ciphertext made over one protocol decrypts over the other.
    const enc = await api(kmsd, 'POST', `/kms/v1/keys/${overGrpc.id}:encrypt`, { plaintext: Buffer.from('both ways').toString('base64') });
    const dec = await admin.crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: overGrpc.id, ciphertext: Buffer.from(enc.body.ciphertext as string, 'base64') }));
    expect(Buffer.from(dec.plaintext).toString()).toBe('both ways');
  });
});

/** One RPC and its REST twin, for the audit and permission comparisons. */
interface TwinCase {
  operation: string;
  grpc(c: Clients, f: { keyId: string; versionId: string; ciphertext: Uint8Array; operationId: string }): Promise<unknown>;
  rest(f: { keyId: string; versionId: string; ciphertext: Uint8Array; operationId: string }): { method: string; path: string; body?: unknown };
}

const TWINS: TwinCase[] = [
  { operation: 'SymmetricKey.Get', grpc: (c, f) => c.keys.get({ keyId: f.keyId }), rest: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}` }) },
  {
    operation: 'SymmetricKey.List',
    grpc: (c) => c.keys.list(symmetricKeyService.ListSymmetricKeysRequest.fromPartial({ folderId: 'twins', pageSize: 10 })),
    rest: () => ({ method: 'GET', path: '/kms/v1/keys?folderId=twins&pageSize=10' }),
  },
  {
    operation: 'SymmetricKey.ListVersions',
    grpc: (c, f) => c.keys.listVersions(symmetricKeyService.ListSymmetricKeyVersionsRequest.fromPartial({ keyId: f.keyId })),
    rest: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}/versions` }),
  },
  {
    operation: 'SymmetricKey.ListOperations',
    grpc: (c, f) => c.keys.listOperations(symmetricKeyService.ListSymmetricKeyOperationsRequest.fromPartial({ keyId: f.keyId })),
    rest: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}/operations` }),
  },
  {
    operation: 'SymmetricKey.Update',
    grpc: (c, f) => c.keys.update(UpdateSymmetricKeyRequest.fromPartial({ keyId: f.keyId, updateMask: { paths: ['description'] }, description: 'd' })),
    rest: (f) => ({ method: 'PATCH', path: `/kms/v1/keys/${f.keyId}`, body: { updateMask: 'description', description: 'd' } }),
  },
  { operation: 'SymmetricKey.Rotate', grpc: (c, f) => c.keys.rotate({ keyId: f.keyId }), rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:rotate` }) },
  {
    operation: 'SymmetricKey.SetPrimaryVersion',
    grpc: (c, f) => c.keys.setPrimaryVersion({ keyId: f.keyId, versionId: f.versionId }),
    rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:setPrimaryVersion`, body: { versionId: f.versionId } }),
  },
  {
    operation: 'SymmetricKey.ListAccessBindings',
    grpc: (c, f) => c.keys.listAccessBindings({ resourceId: f.keyId, pageSize: 0, pageToken: '' }),
    rest: (f) => ({ method: 'GET', path: `/kms/v1/keys/${f.keyId}:listAccessBindings` }),
  },
  {
    operation: 'SymmetricKey.SetAccessBindings',
    grpc: (c, f) => c.keys.setAccessBindings({ resourceId: f.keyId, accessBindings: [] }),
    rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:setAccessBindings`, body: {} }),
  },
  {
    operation: 'SymmetricCrypto.Encrypt',
    grpc: (c, f) => c.crypto.encrypt(SymmetricEncryptRequest.fromPartial({ keyId: f.keyId, plaintext: Buffer.from('x') })),
    rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:encrypt`, body: { plaintext: Buffer.from('x').toString('base64') } }),
  },
  {
    operation: 'SymmetricCrypto.Decrypt',
    grpc: (c, f) => c.crypto.decrypt(SymmetricDecryptRequest.fromPartial({ keyId: f.keyId, ciphertext: Buffer.from(f.ciphertext) })),
    rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:decrypt`, body: { ciphertext: Buffer.from(f.ciphertext).toString('base64') } }),
  },
  {
    operation: 'SymmetricCrypto.GenerateDataKey',
    grpc: (c, f) => c.crypto.generateDataKey(GenerateDataKeyRequest.fromPartial({ keyId: f.keyId, dataKeySpec: SymmetricAlgorithm.AES_128 })),
    rest: (f) => ({ method: 'POST', path: `/kms/v1/keys/${f.keyId}:generateDataKey`, body: { dataKeySpec: 'AES_128' } }),
  },
  { operation: 'Operation.Get', grpc: (c, f) => c.operations.get({ operationId: f.operationId }), rest: (f) => ({ method: 'GET', path: `/operations/${f.operationId}` }) },
  {
    operation: 'Folder.ListAccessBindings',
    grpc: (c) => c.folders.listAccessBindings({ resourceId: 'twins', pageSize: 0, pageToken: '' }),
    rest: () => ({ method: 'GET', path: '/resource-manager/v1/folders/twins:listAccessBindings' }),
  },
  { operation: 'SymmetricKey.Delete', grpc: (c, f) => c.keys.delete({ keyId: f.keyId }), rest: (f) => ({ method: 'DELETE', path: `/kms/v1/keys/${f.keyId}` }) },
];

async function twinFixture(): Promise<{ keyId: string; versionId: string; ciphertext: Uint8Array; operationId: string }> {
  const created = await api(kmsd, 'POST', '/kms/v1/keys', { folderId: 'twins' });
  const keyId = created.body.response.id as string;
  const enc = await api(kmsd, 'POST', `/kms/v1/keys/${keyId}:encrypt`, { plaintext: Buffer.from('p').toString('base64') });
  return { keyId, versionId: created.body.response.primaryVersion.id, ciphertext: Buffer.from(enc.body.ciphertext as string, 'base64'), operationId: created.body.id };
}

/** An audit event without what differs between any two calls (time, ids, chain, peer port). */
function comparable(event: Record<string, unknown>, f: { keyId: string; versionId: string; operationId: string }): Record<string, unknown> {
  const { time: _t, requestId: _r, seq: _s, prev: _p, mac: _m, ...rest } = event;
  // Ids of the fixture become placeholders, so events about two fixtures compare.
  return JSON.parse(JSON.stringify(rest).split(f.keyId).join('KEY').split(f.versionId).join('VERSION').split(f.operationId).join('OP')) as Record<string, unknown>;
}

describe('audit and permissions are the same over gRPC and REST', () => {
  it('every gRPC call leaves exactly one audit event, with the fields of its REST twin', async () => {
    for (const twin of TWINS) {
      const g = await twinFixture();
      const r = await twinFixture();
      const before = readTrailEvents(kmsd.dataDir).length;
      await (twin.grpc(admin, g));
      const afterGrpc = readTrailEvents(kmsd.dataDir);
      const grpcEvents = afterGrpc.slice(before);
      expect(grpcEvents.map((e) => e.operation)).toEqual([twin.operation]);
      const { method, path, body } = twin.rest(r);
      const res = await api(kmsd, method, path, body);
      expect(res.status).toBe(200);
      const restEvents = readTrailEvents(kmsd.dataDir).slice(afterGrpc.length);
      expect(restEvents.map((e) => e.requestId)).toEqual([res.requestId]);
      expect(comparable(grpcEvents[0] as unknown as Record<string, unknown>, g)).toEqual(comparable(restEvents[0] as unknown as Record<string, unknown>, r));
    }
  });

  it('a refused gRPC call is audited once too, with its code', async () => {
    const before = readTrailEvents(kmsd.dataDir).length;
    await failure(clients('kms_wrong').keys.get({ keyId: 'abjnosuchkey' }));
    await failure(admin.keys.get({ keyId: 'abjnosuchkey' }));
    const events = readTrailEvents(kmsd.dataDir).slice(before);
    expect(events.map((e) => [e.operation, e.subject, e.result, e.keyId])).toEqual([
      ['SymmetricKey.Get', 'anonymous', 'UNAUTHENTICATED', 'abjnosuchkey'],
      ['SymmetricKey.Get', 'userAccount:admin', 'NOT_FOUND', 'abjnosuchkey'],
    ]);
  });

  it.each(['kms.auditor', 'kms.viewer', 'kms.editor', 'kms.admin', 'kms.keys.encrypter', 'kms.keys.decrypter', 'kms.keys.encrypterDecrypter'])(
    'with %s on the folder, every RPC is allowed or denied exactly as its REST twin',
    async (role) => {
      const sa = await newServiceAccount(`twins-${role.replace(/\./g, '-').toLowerCase()}`);
      await api(kmsd, 'POST', '/resource-manager/v1/folders/twins:updateAccessBindings', {
        accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: role, subject: { type: 'serviceAccount', id: sa.id } } }],
      });
      const caller = clients(sa.token);
      const denied: string[] = [];
      for (const twin of TWINS) {
        const g = await twinFixture();
        const r = await twinFixture();
        const grpcOutcome = await (twin.grpc(caller, g)).then(
          () => 0,
          (err: { code?: number }) => err.code ?? -1,
        );
        const { method, path, body } = twin.rest(r);
        const res = await api({ url: kmsd.url, token: sa.token }, method, path, body);
        const restOutcome = res.status < 400 ? 0 : (res.body.code as number);
        expect({ operation: twin.operation, role, code: grpcOutcome }).toEqual({ operation: twin.operation, role, code: restOutcome });
        expect([0, 7]).toContain(grpcOutcome);
        if (grpcOutcome === 7) denied.push(twin.operation);
      }
      // Every role lacks something (administrators cannot decrypt, users cannot manage keys).
      expect(denied.length).toBeGreaterThan(0);
      expect(denied.length).toBeLessThan(TWINS.length);
    },
  );

  it('without a token every RPC is UNAUTHENTICATED', async () => {
    const anonymous = new Session({ ssl: { rootCerts: kmsd.ca }, iamToken: '' });
    const keys = anonymous.client(symmetricKeyService.SymmetricKeyServiceClient, kmsd.endpoint);
    expect((await failure(keys.get({ keyId: 'abjanykey' }))).code).toBe(16);
  });
});
