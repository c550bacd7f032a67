/** Builds the OpenAPI 3.1 document from the route table and the request JSON Schemas. */
import { COMMON_SCHEMA, REQUEST_SCHEMAS } from './validation.js';
import type { RouteDef } from './router.js';

export function openApiDocument(routes: RouteDef[], version: string): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
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
        '200': { description: 'Success' },
        default: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (route.permission !== 'public') operation.security = [{ bearer: [] }];
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

/** `common.json#/definitions/x` → `#/components/schemas/common/definitions/x`, and drop `$id`. */
function rewriteRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rewriteRefs);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id') continue;
    if (key === '$ref' && typeof value === 'string') {
      out.$ref = value.startsWith('common.json#')
        ? value.replace('common.json#', '#/components/schemas/common')
        : value.replace(/^#\//, '#/components/schemas/common/');
    } else {
      out[key] = rewriteRefs(value);
    }
  }
  return out;
}
