/**
 * Paths of kmsd's own administration API (service accounts and API tokens). They live under
 * `/admin/v1`, apart from the Yandex Cloud paths: `/iam/v1/tokens` is Yandex's
 * IamTokenService.Create and `/iam/v1/serviceAccounts` Yandex's ServiceAccountService, whose
 * shapes differ from ours. The one definition of these paths: the daemon's routes, the provider's
 * REST client, kmsctl and the tests all import them from here.
 */
export const ADMIN_API_PREFIX = '/admin/v1';

export const ADMIN_PATHS = {
  /** `POST {name, description}` creates, `GET` lists. */
  serviceAccounts: `${ADMIN_API_PREFIX}/serviceAccounts`,
  /** `DELETE` removes one (revoking its tokens and bindings). */
  serviceAccount: (id: string): string => `${ADMIN_API_PREFIX}/serviceAccounts/${encodeURIComponent(id)}`,
  /** `POST {subject, description}` issues (the value is shown once), `GET` lists (never values). */
  tokens: `${ADMIN_API_PREFIX}/tokens`,
  /** `DELETE` revokes one at once. */
  token: (id: string): string => `${ADMIN_API_PREFIX}/tokens/${encodeURIComponent(id)}`,
} as const;

/** Route templates of the same paths, as the daemon's route table declares them. */
export const ADMIN_ROUTES = {
  serviceAccounts: ADMIN_PATHS.serviceAccounts,
  serviceAccount: `${ADMIN_API_PREFIX}/serviceAccounts/{serviceAccountId}`,
  tokens: ADMIN_PATHS.tokens,
  token: `${ADMIN_API_PREFIX}/tokens/{tokenId}`,
} as const;
