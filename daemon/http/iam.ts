/**
 * Access administration routes: access bindings on keys (Yandex SymmetricKey paths) and on
 * folders (Yandex resource-manager paths), and our own service-account and token admin API
 * (under /admin/v1, see api/admin-paths.ts).
 */
import type { AccessBinding } from '../domain/model.js';
import type { AccessBindingDelta, BindingResource, IamService } from '../domain/iam.js';
import { KmsError, invalidArgument } from '../domain/errors.js';
import { ADMIN_ROUTES } from '../../api/admin-paths.js';
import { intQuery, pathParam, type RequestContext, type RouteDef } from './router.js';


function bindingRoutes(iam: IamService, base: string, idParam: string, type: BindingResource['type'], label: string): RouteDef[] {
  const resource = (ctx: RequestContext): BindingResource => ({ type, id: pathParam(ctx, idParam) });
  const target = (ctx: RequestContext) => (type === 'key' ? { keyId: pathParam(ctx, idParam) } : { folderId: pathParam(ctx, idParam) });
  return [
    {
      method: 'GET',
      path: `${base}:listAccessBindings`,
      operationId: `${label}.ListAccessBindings`,
      summary: `Lists the access bindings of a ${type}.`,
      permission: 'kms.keys.listAccessBindings',
      query: ['pageSize', 'pageToken'],
      target,
      handler: (ctx) => {
        intQuery(ctx.query, 'pageSize');
        return { body: { accessBindings: iam.listAccessBindings(resource(ctx)) } };
      },
    },
    {
      method: 'POST',
      path: `${base}:setAccessBindings`,
      operationId: `${label}.SetAccessBindings`,
      summary: `Replaces every access binding of a ${type}.`,
      permission: 'kms.keys.setAccessBindings',
      body: 'set-access-bindings',
      target,
      handler: async (ctx) => ({
        body: await iam.setAccessBindings(ctx.caller, resource(ctx), (ctx.body as { accessBindings?: AccessBinding[] }).accessBindings ?? []),
      }),
    },
    {
      method: 'POST',
      path: `${base}:updateAccessBindings`,
      operationId: `${label}.UpdateAccessBindings`,
      summary: `Adds and removes access bindings of a ${type}.`,
      permission: 'kms.keys.updateAccessBindings',
      body: 'update-access-bindings',
      target,
      handler: async (ctx) => ({
        body: await iam.updateAccessBindings(ctx.caller, resource(ctx), (ctx.body as { accessBindingDeltas: AccessBindingDelta[] }).accessBindingDeltas),
      }),
    },
  ];
}

export function iamRoutes(iam: IamService): RouteDef[] {
  return [
    ...bindingRoutes(iam, '/kms/v1/keys/{keyId}', 'keyId', 'key', 'SymmetricKey'),
    ...bindingRoutes(iam, '/resource-manager/v1/folders/{folderId}', 'folderId', 'folder', 'Folder'),
    {
      method: 'POST',
      path: '/iam/v1/tokens',
      operationId: 'IamToken.Create',
      summary:
        'Yandex IamTokenService.Create: exchanges a kmsd API token (yandexPassportOauthToken) for a 12-hour IAM token of the same subject. jwt (service-account keys) is not supported.',
      // The credential is in the body; the event names the subject it belongs to.
      permission: 'public',
      auditPublic: true,
      body: 'create-iam-token',
      handler: async (ctx) => {
        const body = ctx.body as { yandexPassportOauthToken?: string; jwt?: string };
        if (body.jwt !== undefined && body.yandexPassportOauthToken !== undefined) {
          throw invalidArgument('identity', 'give exactly one of yandexPassportOauthToken and jwt');
        }
        if (body.jwt !== undefined) {
          throw new KmsError(
            'UNIMPLEMENTED',
            'jwt: kmsd has no service-account keys to sign JWTs with; exchange a kmsd API token as yandexPassportOauthToken, or send the API token itself as the bearer token',
          );
        }
        if (body.yandexPassportOauthToken === undefined || body.yandexPassportOauthToken === '') {
          throw invalidArgument('yandexPassportOauthToken', 'is required (a kmsd API token)');
        }
        const token = await iam.createIamToken(body.yandexPassportOauthToken);
        ctx.audit.subject = token.subject;
        return { body: { iamToken: token.iamToken, expiresAt: token.expiresAt } };
      },
    },
    {
      method: 'POST',
      path: ADMIN_ROUTES.serviceAccounts,
      operationId: 'ServiceAccount.Create',
      response: 'ServiceAccount',
      summary: 'Creates a service account (subject serviceAccount:<id>).',
      permission: 'iam.admin',
      body: 'create-service-account',
      handler: async (ctx) => {
        const body = ctx.body as { name: string; description?: string };
        return { body: await iam.createServiceAccount(body.name, body.description ?? '') };
      },
    },
    {
      method: 'GET',
      path: ADMIN_ROUTES.serviceAccounts,
      operationId: 'ServiceAccount.List',
      response: 'ServiceAccountList',
      summary: 'Lists service accounts.',
      permission: 'iam.admin',
      handler: () => ({ body: { serviceAccounts: iam.listServiceAccounts() } }),
    },
    {
      method: 'DELETE',
      path: ADMIN_ROUTES.serviceAccount,
      operationId: 'ServiceAccount.Delete',
      response: 'Empty',
      summary: 'Deletes a service account, revoking its tokens and removing its bindings.',
      permission: 'iam.admin',
      handler: async (ctx) => {
        await iam.deleteServiceAccount(pathParam(ctx, 'serviceAccountId'));
        return { body: {} };
      },
    },
    {
      method: 'POST',
      path: ADMIN_ROUTES.tokens,
      operationId: 'Token.Create',
      response: 'IssuedToken',
      summary: 'Issues a token for a subject; the value is in this response only.',
      permission: 'iam.admin',
      body: 'create-token',
      handler: async (ctx) => {
        const body = ctx.body as { subject: string; description?: string };
        return { body: await iam.issueToken(body.subject, body.description ?? '') };
      },
    },
    {
      method: 'GET',
      path: ADMIN_ROUTES.tokens,
      operationId: 'Token.List',
      response: 'TokenList',
      summary: 'Lists tokens (ids and subjects, never values).',
      permission: 'iam.admin',
      handler: () => ({ body: { tokens: iam.listTokens() } }),
    },
    {
      method: 'DELETE',
      path: ADMIN_ROUTES.token,
      operationId: 'Token.Revoke',
      response: 'Empty',
      summary: 'Revokes a token at once.',
      permission: 'iam.admin',
      handler: async (ctx) => {
        await iam.revokeToken(pathParam(ctx, 'tokenId'));
        return { body: {} };
      },
    },
  ];
}
