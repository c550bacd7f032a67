/**
 * /openapi.json: valid OpenAPI 3.1 (checked by an OpenAPI validator), a response schema for every
 * operation (the Yandex calls' from the protos), `security: []` on the calls that need no token,
 * and real 2xx answers of every kind of call validate against the schemas it documents.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { api } from '../support/daemon.js';
import { startGrpcKmsd, type GrpcKmsd } from '../support/grpc.js';

let kmsd: GrpcKmsd;
let doc: any;

beforeAll(async () => {
  kmsd = await startGrpcKmsd();
  doc = (await api(kmsd, 'GET', '/openapi.json')).body;
}, 60_000);

afterAll(async () => {
  await kmsd?.stop();
});

/** The documented 2xx schema of `METHOD path-template`, checked against `body`. */
function check(method: string, template: string, body: unknown): void {
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation).toBeDefined();
  const schema = operation.responses['200'].content['application/json'].schema;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components });
  const validate = ajv.compile({ $ref: `doc${schema.$ref as string}` });
  const valid = validate(body);
  expect({ template, method, errors: valid ? null : validate.errors }).toEqual({ template, method, errors: null });
}

describe('/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc);
    expect(result).toEqual({ valid: true });
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents a response body for every operation, and security: [] on the calls that take no token', () => {
    const publicOps: string[] = [];
    for (const methods of Object.values(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(methods)) {
        expect(Object.keys(op.responses['200'].content as object)).toHaveLength(1);
        if (Array.isArray(op.security) && op.security.length === 0) publicOps.push(op.operationId as string);
        else expect(op.security).toEqual([{ bearer: [] }]);
      }
    }
    expect(publicOps.sort()).toEqual(['ApiEndpoint.Get', 'ApiEndpoint.List', 'Health.Get', 'IamToken.Create']);
    expect(doc.paths['/kms/v1/keys/{keyId}'].get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/wire/definitions/SymmetricKey');
    expect(doc.components.schemas.wire.definitions.SymmetricKey.title).toBe('yandex.cloud.kms.v1.SymmetricKey');
  });

  it('real 2xx answers validate against their documented schemas', async () => {
    const created = await api(kmsd, 'POST', '/kms/v1/keys', { folderId: 'openapi', name: 'k', labels: { a: 'b' }, rotationPeriod: '86400s' });
    check('POST', '/kms/v1/keys', created.body);
    const keyId = created.body.response.id as string;
    const versionId = created.body.response.primaryVersion.id as string;
    const k = `/kms/v1/keys/${keyId}`;
    const calls: [string, string, string, unknown?][] = [
      ['GET', k, '/kms/v1/keys/{keyId}'],
      ['GET', '/kms/v1/keys?folderId=openapi', '/kms/v1/keys'],
      ['GET', `${k}/versions`, '/kms/v1/keys/{keyId}/versions'],
      ['PATCH', k, '/kms/v1/keys/{keyId}', { updateMask: 'description', description: 'd' }],
      ['POST', `${k}:rotate`, '/kms/v1/keys/{keyId}:rotate'],
      ['POST', `${k}:setPrimaryVersion`, '/kms/v1/keys/{keyId}:setPrimaryVersion', { versionId }],
      ['GET', `${k}/operations`, '/kms/v1/keys/{keyId}/operations'],
      ['GET', `/operations/${created.body.id as string}`, '/operations/{operationId}'],
      ['POST', `${k}:updateAccessBindings`, '/kms/v1/keys/{keyId}:updateAccessBindings', { accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'u' } } }] }],
      ['GET', `${k}:listAccessBindings`, '/kms/v1/keys/{keyId}:listAccessBindings'],
      ['POST', `${k}:setAccessBindings`, '/kms/v1/keys/{keyId}:setAccessBindings', {}],
      ['POST', '/resource-manager/v1/folders/openapi:updateAccessBindings', '/resource-manager/v1/folders/{folderId}:updateAccessBindings', { accessBindingDeltas: [{ action: 'ADD', accessBinding: { roleId: 'kms.viewer', subject: { type: 'userAccount', id: 'u' } } }] }],
      ['GET', '/resource-manager/v1/folders/openapi:listAccessBindings', '/resource-manager/v1/folders/{folderId}:listAccessBindings'],
      ['POST', `${k}:encrypt`, '/kms/v1/keys/{keyId}:encrypt', { plaintext: 'aGk=', aadContext: 'YQ==' }],
      ['POST', `${k}:generateDataKey`, '/kms/v1/keys/{keyId}:generateDataKey', {}],
      ['GET', '/endpoints', '/endpoints'],
      ['GET', '/endpoints/kms', '/endpoints/{apiEndpointId}'],
      ['POST', '/iam/v1/tokens', '/iam/v1/tokens', { yandexPassportOauthToken: kmsd.token }],
      ['GET', '/healthz', '/healthz'],
      ['POST', ADMIN_PATHS.serviceAccounts, '/admin/v1/serviceAccounts', { name: 'openapi-sa' }],
      ['GET', ADMIN_PATHS.serviceAccounts, '/admin/v1/serviceAccounts'],
      ['POST', ADMIN_PATHS.tokens, '/admin/v1/tokens', { subject: 'userAccount:openapi' }],
      ['GET', ADMIN_PATHS.tokens, '/admin/v1/tokens'],
      ['GET', '/kms/v1/auditEvents?folderId=openapi', '/kms/v1/auditEvents'],
      ['GET', '/kms/v1/auditEvents:verify', '/kms/v1/auditEvents:verify'],
      ['POST', '/test/v1/clock:advance', '/test/v1/clock:advance', { seconds: 0 }],
    ];
    for (const [method, path, template, body] of calls) {
      const res = await api(kmsd, method, path, body);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      check(method, template, res.body);
    }
    const enc = await api(kmsd, 'POST', `${k}:encrypt`, { plaintext: 'aGk=' });
    const dec = await api(kmsd, 'POST', `${k}:decrypt`, { ciphertext: enc.body.ciphertext });
    check('POST', '/kms/v1/keys/{keyId}:decrypt', dec.body);
    const re = await api(kmsd, 'POST', `${k}:reEncrypt`, { sourceKeyId: keyId, ciphertext: enc.body.ciphertext });
    check('POST', '/kms/v1/keys/{keyId}:reEncrypt', re.body);
    await api(kmsd, 'PATCH', k, { updateMask: 'deletionProtection', deletionProtection: false });
    const deleted = await api(kmsd, 'DELETE', k);
    check('DELETE', '/kms/v1/keys/{keyId}', deleted.body);
    const restored = await api(kmsd, 'POST', `${k}:restore`, {});
    check('POST', '/kms/v1/keys/{keyId}:restore', restored.body);
    // …and the check can fail: a wrong type, an unknown enum value, a field the proto lacks.
    expect(() => check('GET', '/kms/v1/keys/{keyId}', { id: 5 })).toThrow();
    expect(() => check('GET', '/kms/v1/keys/{keyId}', { status: 'MELTED' })).toThrow();
    expect(() => check('GET', '/kms/v1/keys/{keyId}', { id: 'x', secret: 'y' })).toThrow();
  });
});
