/**
 * Data source `kms_symmetric_key`: an existing key, by `symmetric_key_id` or by `name` within a
 * folder (the provider's folder_id unless set). A name must match exactly one key of the folder.
 *
 * The attributes are those of the resource; rotation_period is rendered as the compact Go-style
 * duration the resource shows after import ("24h", "1h30m"), not as the API's "86400s".
 */
import { GrpcCode, KmsApiError, type KmsClient, type SymmetricKey } from '../client/kms-client.js';
import { type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext, ProviderContext } from '../framework/context.js';
import { defineDataSource } from '../framework/data-source.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SymmetricKeyDataConfig, SymmetricKeyDataState } from '../models.gen.js';
import { keyToState } from './symmetric_key.js';

/** Terraform type name. */
export const SYMMETRIC_KEY_DATA_TYPE = 'kms_symmetric_key';

/** Largest page the daemon serves; names are matched over every page. */
const LIST_PAGE_SIZE = 1000;

function given(value: TfValue | undefined): boolean {
  return value !== null && value !== undefined;
}

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** ValidateDataResourceConfig: exactly one of symmetric_key_id and name (unknown counts as set). */
export function validateSymmetricKeyDataConfig(config: SymmetricKeyDataConfig): Diagnostic[] {
  const byId = given(config.symmetric_key_id);
  const byName = given(config.name);
  if (!byId && !byName) {
    return [
      errorDiag(
        'Missing key selector',
        'Set symmetric_key_id, or name (with folder_id, or the provider\'s folder_id), to choose the key to look up.',
        attrPath('symmetric_key_id'),
      ),
    ];
  }
  if (byId && byName) {
    return [errorDiag('Conflicting key selectors', 'Set either symmetric_key_id or name, not both.', attrPath('name'))];
  }
  const diags: Diagnostic[] = [];
  for (const name of ['symmetric_key_id', 'name', 'folder_id'] as const) {
    if (str(config[name]) === '') diags.push(errorDiag(`Invalid ${name}`, `${name} must not be empty.`, attrPath(name)));
  }
  return diags;
}

/** Every key of the folder, following nextPageToken. */
async function listAllKeys(client: KmsClient, folderId: string): Promise<SymmetricKey[]> {
  const keys: SymmetricKey[] = [];
  let pageToken: string | undefined;
  do {
    const page = await client.listKeys(folderId, LIST_PAGE_SIZE, pageToken);
    keys.push(...page.keys);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return keys;
}

/** The data source state of a key. */
export function keyToDataState(key: SymmetricKey): SymmetricKeyDataState {
  return { ...keyToState(key, null), symmetric_key_id: key.id };
}

async function findKey(config: SymmetricKeyDataState, ctx: ProviderContext, client: KmsClient): Promise<{ key: SymmetricKey } | { diagnostic: Diagnostic }> {
  const keyId = str(config.symmetric_key_id);
  const configFolder = str(config.folder_id);
  if (keyId !== undefined) {
    let key: SymmetricKey;
    try {
      key = await client.getKey(keyId);
    } catch (err) {
      if (err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND) {
        return { diagnostic: errorDiag('Key not found', `No key has id ${JSON.stringify(keyId)}.`, attrPath('symmetric_key_id')) };
      }
      return { diagnostic: failureDiag(`Cannot read key ${keyId}`, err, attrPath('symmetric_key_id')) };
    }
    // The result must agree with every configured value, or core rejects it.
    if (configFolder !== undefined && configFolder !== key.folderId) {
      return {
        diagnostic: errorDiag('Key in another folder', `Key ${keyId} is in folder ${JSON.stringify(key.folderId)}, not ${JSON.stringify(configFolder)}.`, attrPath('folder_id')),
      };
    }
    return { key };
  }
  const name = str(config.name) ?? '';
  const folderId = configFolder ?? (typeof ctx.folderId === 'string' ? ctx.folderId : undefined);
  if (folderId === undefined) {
    return {
      diagnostic: errorDiag(
        'Missing folder_id',
        `To look up a key by name, set folder_id on the data source, or folder_id in the provider block (or KMS_FOLDER_ID).`,
        attrPath('folder_id'),
      ),
    };
  }
  let keys: SymmetricKey[];
  try {
    keys = await listAllKeys(client, folderId);
  } catch (err) {
    return { diagnostic: failureDiag(`Cannot list the keys of folder ${folderId}`, err, attrPath('folder_id')) };
  }
  const matches = keys.filter((k) => k.name === name);
  const [only] = matches;
  if (only === undefined) {
    return { diagnostic: errorDiag('Key not found', `No key named ${JSON.stringify(name)} in folder ${JSON.stringify(folderId)}.`, attrPath('name')) };
  }
  if (matches.length > 1) {
    return {
      diagnostic: errorDiag(
        'Several keys match',
        `${matches.length} keys are named ${JSON.stringify(name)} in folder ${JSON.stringify(folderId)} (${matches.map((k) => k.id).join(', ')}); use symmetric_key_id to choose one.`,
        attrPath('name'),
      ),
    };
  }
  return { key: only };
}

async function readSymmetricKeyData(config: SymmetricKeyDataState, ctx: ConfiguredContext): Promise<Result<SymmetricKeyDataState | null>> {
  const diagnostics = validateSymmetricKeyDataConfig(config);
  if (diagnostics.length > 0) return withDiags(null, ...diagnostics);
  const found = await findKey(config, ctx, ctx.client);
  if ('diagnostic' in found) return withDiags(null, found.diagnostic);
  return ok(keyToDataState(found.key));
}

/** The data source. */
export const symmetricKeyDataSource = defineDataSource<SymmetricKeyDataState, SymmetricKeyDataConfig>({
  typeName: SYMMETRIC_KEY_DATA_TYPE,
  validate: validateSymmetricKeyDataConfig,
  read: readSymmetricKeyData,
});
