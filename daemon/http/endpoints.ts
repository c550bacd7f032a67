/**
 * Yandex Cloud endpoint discovery (`yandex.cloud.endpoint.ApiEndpointService`, REST `/endpoints`):
 * every service id an SDK may ask for points at kmsd's gRPC listener. The Python SDK calls List
 * before anything else. Needs no token and is not audited, like /healthz: it says only where the
 * API is.
 */
import { notFound } from '../domain/errors.js';
import { pathParam, type RouteDef } from './router.js';

/** The ids answered (the Python SDK needs kms, kms-crypto, operation and iam). */
export const ENDPOINT_IDS = ['kms', 'kms-crypto', 'operation', 'iam', 'resource-manager', 'endpoint'] as const;

/** `advertise()`: the gRPC HOST:PORT clients should dial, or undefined while gRPC is off. */
export function endpointRoutes(advertise: () => string | undefined): RouteDef[] {
  const endpoints = () => {
    const address = advertise();
    return address === undefined ? [] : ENDPOINT_IDS.map((id) => ({ id, address }));
  };
  return [
    {
      method: 'GET',
      path: '/endpoints',
      operationId: 'ApiEndpoint.List',
      summary: 'Lists the gRPC endpoints of the services kmsd serves (all at its gRPC listener; empty while gRPC is off).',
      permission: 'public',
      query: ['pageSize', 'pageToken'],
      handler: () => ({ body: { endpoints: endpoints() } }),
    },
    {
      method: 'GET',
      path: '/endpoints/{apiEndpointId}',
      operationId: 'ApiEndpoint.Get',
      summary: 'Returns the gRPC endpoint of one service id.',
      permission: 'public',
      handler: (ctx) => {
        const id = pathParam(ctx, 'apiEndpointId');
        const found = endpoints().find((e) => e.id === id);
        if (found === undefined) throw notFound('API endpoint', id);
        return { body: found };
      },
    },
  ];
}
