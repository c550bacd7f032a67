/**
 * Builds the OpenAPI 3.1 document from the route table, the request JSON Schemas and the response
 * schemas: for a route that is a Yandex RPC, the RPC's response message (schemas/wire.schema.gen.json,
 * generated from the protos; the route found through the RPC's google.api.http rule); for kmsd's
 * own calls, the route's `response` (schemas/api/responses.json).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import responses from '../../schemas/api/responses.json' with { type: 'json' };
import wire from '../../schemas/wire.schema.gen.json' with { type: 'json' };
import { servedMethods } from '../grpc/server.js';
import { wireName } from '../grpc/descriptors.js';
import { COMMON_SCHEMA, REQUEST_SCHEMAS } from './validation.js';
import type { RouteDef } from './router.js';

/** `GET /kms/v1/keys/{}` → the wire name of the response message of the RPC at that route. */
function rpcResponses(): Map<string, string> {
  const byRoute = new Map<string, string>();
  for (const method of servedMethods()) {
    byRoute.set(`${method.rule.method} ${method.rule.path.replace(/\{[^}]+\}/g, '{}')}`, wireName(method.responseType.fullName));
  }
  return byRoute;
}

/** The schema reference of a route's 2xx body, or undefined for a text body. */
export function responseSchemaRef(route: RouteDef, rpcs: Map<string, string> = rpcResponses()): string | undefined {
  const rpc = rpcs.get(`${route.method} ${route.path.replace(/\{[^}]+\}/g, '{}')}`);
  if (rpc !== undefined) return `#/components/schemas/wire/definitions/${rpc}`;
  if (route.response === undefined) throw new Error(`route ${route.operationId} is no Yandex RPC and documents no response`);
  if (route.response === 'text') return undefined;
  if (route.response.startsWith('wire:')) return `#/components/schemas/wire/definitions/${route.response.slice(5)}`;
  return `#/components/schemas/responses/definitions/${route.response}`;
}

export function openApiDocument(routes: RouteDef[], version: string): object {
  const paths: Record<string, Record<string, unknown>> = {};
  const rpcs = rpcResponses();
  for (const route of routes) {
    const ref = responseSchemaRef(route, rpcs);
    const ok = ref === undefined ? { description: 'Success', content: { 'text/plain': { schema: { type: 'string' } } } } : { description: 'Success', content: { 'application/json': { schema: { $ref: ref } } } };
    const params = [...route.path.matchAll(/\{([a-zA-Z]+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { $ref: '#/components/schemas/common/definitions/id' },
    }));
    const query = (route.query ?? []).map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      'x-kms-permission': route.permission,
      parameters: [...params, ...query],
      responses: {
        '200': ok,
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    // Public routes (health, endpoint discovery, IamToken.Create) override the document's bearer default.
    operation.security = route.permission === 'public' ? [] : [{ bearer: [] }];
    if (route.body !== undefined) {
      operation.requestBody = {
        required: route.body !== 'empty',
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${route.body}` } } },
      };
    }
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  const schemas: Record<string, unknown> = {
    common: rewriteRefs(COMMON_SCHEMA),
    wire: rewriteRefs(wire, 'wire'),
    responses: rewriteRefs(responses, 'responses'),
    Error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: { code: { type: 'integer' }, message: { type: 'string' }, details: { type: 'array' } },
    },
  };
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) schemas[name] = rewriteRefs(schema);
  return {
    openapi: '3.1.0',
    info: { title: 'KMS (Yandex Cloud KMS compatible)', version },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}

/**
 * `common.json#/definitions/x` → `#/components/schemas/common/definitions/x`, a local `#/…` → the
 * same inside the component `home`; drops `$id` and `$comment`.
 */
function rewriteRefs(schema: unknown, home = 'common'): unknown {
  if (Array.isArray(schema)) return schema.map((item) => rewriteRefs(item, home));
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id' || key === '$comment') continue;
    if (key === '$ref' && typeof value === 'string') {
      out.$ref = value.startsWith('common.json#')
        ? value.replace('common.json#', '#/components/schemas/common')
        : value.replace(/^#\//, `#/components/schemas/${home}/`);
    } else {
      out[key] = rewriteRefs(value, home);
    }
  }
  return out;
}

/**
 * Checks 2xx answers against the schemas the document gives them (tests turn this on for every
 * daemon: KMS_TEST_CHECK_RESPONSES=1). Returns what is wrong, or null.
 */
export function responseChecker(routes: RouteDef[], version: string): (route: RouteDef, body: unknown) => string | null {
  const doc = openApiDocument(routes, version) as { components: object };
  const ajv = new Ajv2020({ strict: false, allErrors: false });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'kms-openapi', components: doc.components });
  const rpcs = rpcResponses();
  const compiled = new Map<string, ValidateFunction | null>();
  return (route, body) => {
    let validate = compiled.get(route.operationId);
    if (validate === undefined) {
      const ref = responseSchemaRef(route, rpcs);
      validate = ref === undefined ? null : ajv.compile({ $ref: `kms-openapi${ref}` });
      compiled.set(route.operationId, validate);
    }
    if (validate === null || validate(body)) return null;
    const error = validate.errors?.[0];
    return `${route.operationId} answered a body its documented schema refuses: ${error?.instancePath ?? ''} ${error?.message ?? ''}`.trim();
  };
}
