/**
 * Ephemeral `kms_data_key`: a fresh data key from generateDataKey each time core opens it — its
 * plaintext for immediate use (never persisted) and its ciphertext to store next to the data.
 */
import { GrpcCode, KmsApiError, type SymmetricAlgorithm } from '../client/kms-client.js';
import type { TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext } from '../framework/context.js';
import { defineEphemeralResource } from '../framework/ephemeral.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { DataKeyEphemeralConfig, DataKeyEphemeralState } from '../models.gen.js';
import { MAX_AAD_BYTES } from './secret_ciphertext.js';

/** Terraform type name. */
export const DATA_KEY_TYPE = 'kms_data_key';

/** Data key algorithms (the HSM-hosted one cannot be handed out, by definition). */
export const DATA_KEY_SPECS: readonly SymmetricAlgorithm[] = ['AES_128', 'AES_192', 'AES_256'];
export const DEFAULT_DATA_KEY_SPEC: SymmetricAlgorithm = 'AES_256';

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Checks of key_id, data_key_spec and aad_context; unknown values are skipped. */
export function validateDataKeyConfig(config: DataKeyEphemeralConfig): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const keyId = str(config.key_id);
  if (keyId !== undefined && keyId.trim() === '') diags.push(errorDiag('Invalid key_id', 'key_id must not be empty.', attrPath('key_id')));
  const spec = str(config.data_key_spec);
  if (spec !== undefined && !DATA_KEY_SPECS.includes(spec as SymmetricAlgorithm)) {
    diags.push(errorDiag('Invalid data_key_spec', `data_key_spec must be one of ${DATA_KEY_SPECS.join(', ')}; got ${JSON.stringify(spec)}.`, attrPath('data_key_spec')));
  }
  const aad = str(config.aad_context);
  if (aad !== undefined && Buffer.byteLength(aad, 'utf8') > MAX_AAD_BYTES) {
    diags.push(errorDiag('Invalid aad_context', `aad_context must be at most ${MAX_AAD_BYTES} bytes of UTF-8; got ${Buffer.byteLength(aad, 'utf8')}.`, attrPath('aad_context')));
  }
  return diags;
}

async function generateDataKey(config: DataKeyEphemeralState, ctx: ConfiguredContext): Promise<Result<DataKeyEphemeralState | null>> {
  const diags = validateDataKeyConfig(config);
  if (diags.length > 0) return withDiags(null, ...diags);
  const { key_id: keyId, aad_context: aad } = config;
  if (keyId === null) return withDiags(null, errorDiag('Missing key_id', 'key_id is required.', attrPath('key_id')));
  const spec = (config.data_key_spec ?? DEFAULT_DATA_KEY_SPEC) as SymmetricAlgorithm;
  try {
    const result = await ctx.client.generateDataKey(keyId, spec, aad === null || aad === '' ? undefined : Buffer.from(aad, 'utf8'));
    if (result.dataKeyPlaintext === undefined) return withDiags(null, errorDiag('No data key plaintext', 'The daemon returned no plaintext data key.'));
    return ok({ ...config, data_key_spec: spec, version_id: result.versionId, plaintext: result.dataKeyPlaintext, ciphertext: result.dataKeyCiphertext });
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND ? attrPath('key_id') : undefined;
    return withDiags(null, failureDiag(`Cannot generate a data key with key ${keyId}`, err, path));
  }
}

/** The ephemeral resource. */
export const dataKeyEphemeral = defineEphemeralResource<DataKeyEphemeralState, DataKeyEphemeralConfig>({
  typeName: DATA_KEY_TYPE,
  validate: validateDataKeyConfig,
  open: generateDataKey,
});
