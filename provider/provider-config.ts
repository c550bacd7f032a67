/**
 * The provider block: `endpoint`, `token`, `folder_id`, each falling back to its environment
 * variable. ConfigureProvider checks the daemon is reachable and the token accepted, so a wrong
 * endpoint or token is reported once, on the provider block, instead of on every resource.
 */
import { GrpcCode, KmsApiError, KmsClient, KmsUnreachableError } from './client/kms-client.js';
import { isUnknown, UNKNOWN, type TfObject, type TfValue } from './codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from './diagnostics.js';
import type { ProviderContext } from './framework/context.js';

/** Environment variables the provider block falls back to. */
export const ENV = { endpoint: 'KMS_ENDPOINT', token: 'KMS_TOKEN', folderId: 'KMS_FOLDER_ID' } as const;

function checkEndpoint(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `${JSON.stringify(endpoint)} is not a URL; expected e.g. http://127.0.0.1:8443`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(endpoint)} must use http or https`;
  return undefined;
}

/** ValidateProviderConfig: syntax only, unknown values skipped. */
export function validateProviderConfig(config: TfObject): Diagnostic[] {
  const endpoint = config['endpoint'];
  if (typeof endpoint === 'string') {
    const problem = checkEndpoint(endpoint);
    if (problem) return [errorDiag('Invalid endpoint', problem, attrPath('endpoint'))];
  }
  return [];
}

function pick(value: TfValue | undefined, env: string | undefined): string | typeof UNKNOWN | undefined {
  if (isUnknown(value)) return UNKNOWN;
  if (typeof value === 'string' && value !== '') return value;
  return env === undefined || env === '' ? undefined : env;
}

/**
 * ConfigureProvider. Resolves the settings, then probes the daemon: `GET /healthz` for
 * reachability, and an authenticated call to see whether the token is accepted.
 */
export async function configureProvider(
  config: TfObject,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<{ context: ProviderContext; diagnostics: Diagnostic[] }> {
  const endpoint = pick(config['endpoint'], env[ENV.endpoint]);
  const token = pick(config['token'], env[ENV.token]);
  const folderId = pick(config['folder_id'], env[ENV.folderId]);
  const context: ProviderContext = { client: undefined, folderId };
  // A provider config that depends on resources not yet created: plan what we can, configure later.
  if (isUnknown(endpoint) || isUnknown(token)) return { context, diagnostics: [] };

  const diagnostics: Diagnostic[] = [];
  if (endpoint === undefined) {
    diagnostics.push(errorDiag('Missing endpoint', `Set endpoint in the provider block or the ${ENV.endpoint} environment variable.`, attrPath('endpoint')));
  } else {
    const problem = checkEndpoint(endpoint);
    if (problem) diagnostics.push(errorDiag('Invalid endpoint', problem, attrPath('endpoint')));
  }
  if (token === undefined) {
    diagnostics.push(errorDiag('Missing token', `Set token in the provider block or the ${ENV.token} environment variable.`, attrPath('token')));
  }
  if (diagnostics.length > 0 || endpoint === undefined || token === undefined) return { context, diagnostics };

  const client = new KmsClient({ endpoint, token, ...(signal && { signal }) });
  try {
    await client.health();
  } catch (err) {
    const detail =
      err instanceof KmsUnreachableError
        ? `${err.message}. Is kmsd running, and is endpoint (or ${ENV.endpoint}) right?`
        : `GET ${endpoint}/healthz failed: ${(err as Error).message}`;
    return { context, diagnostics: [errorDiag('KMS daemon unreachable', detail, attrPath('endpoint'))] };
  }
  try {
    if (typeof folderId === 'string') await client.listKeys(folderId, 1);
    // Without a folder, any authenticated call tells a refused token (401) from an accepted one.
    else await client.getKey('terraform-provider-token-probe');
  } catch (err) {
    if (err instanceof KmsApiError && err.code === GrpcCode.UNAUTHENTICATED) {
      return {
        context,
        diagnostics: [errorDiag('KMS token refused', `The daemon refused the token: ${err.message}. Check token (or ${ENV.token}).`, attrPath('token'))],
      };
    }
    // NOT_FOUND / PERMISSION_DENIED mean the token itself was accepted (roles may be per key).
    if (!(err instanceof KmsApiError) || (err.code !== GrpcCode.NOT_FOUND && err.code !== GrpcCode.PERMISSION_DENIED && err.code !== GrpcCode.INVALID_ARGUMENT)) {
      return { context, diagnostics: [failureDiag('Cannot check the KMS token', err, attrPath('token'))] };
    }
  }
  return { context: { client, folderId }, diagnostics: [] };
}
