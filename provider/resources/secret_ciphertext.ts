/**
 * `kms_secret_ciphertext`: encrypts a plaintext once, at create, and keeps the ciphertext. Every
 * input change is a new ciphertext (replacement); delete has nothing to remove on the daemon.
 *
 * The plaintext comes from `plaintext` (kept in state, for CLIs without write-only attributes)
 * or from the write-only `plaintext_wo` (Terraform/OpenTofu >= 1.11: read from the config at
 * apply, never in plan or state), whose changes are signalled by `plaintext_wo_version`. Neither
 * is ever logged or put into a diagnostic.
 */
import { createHash } from 'node:crypto';
import { GrpcCode, KmsApiError } from '../client/kms-client.js';
import { isUnknown, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ClientCapabilities, ConfiguredContext } from '../framework/context.js';
import { NO_CAPABILITIES } from '../framework/context.js';
import { defineResource, planResource, resourceTypeOf, type PlanRequest, type PlanResult } from '../framework/resource.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SecretCiphertextConfig, SecretCiphertextState } from '../models.gen.js';

/** Terraform type name. */
export const SECRET_CIPHERTEXT_TYPE = 'kms_secret_ciphertext';

/** Byte limits of the daemon's encrypt call. */
export const MAX_PLAINTEXT_BYTES = 32768;
export const MAX_AAD_BYTES = 8192;

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function given(value: TfValue | undefined): boolean {
  return value !== null && value !== undefined;
}

/** Why this CLI cannot take `plaintext_wo`. */
export const WRITE_ONLY_UNSUPPORTED =
  'plaintext_wo is a write-only attribute, which needs Terraform >= 1.11 or OpenTofu >= 1.11; this CLI would store it in the state. ' +
  'Use plaintext instead (it is stored in the state as a sensitive value), or upgrade the CLI.';

/** Config validation: one plaintext source, sizes in UTF-8 bytes as the daemon counts them. Unknown values are skipped. */
export function validateSecretCiphertextConfig(config: SecretCiphertextConfig, capabilities: ClientCapabilities = NO_CAPABILITIES): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const keyId = str(config.key_id);
  if (keyId !== undefined && keyId.trim() === '') diags.push(errorDiag('Invalid key_id', 'key_id must not be empty.', attrPath('key_id')));
  if (given(config.plaintext_wo) && !capabilities.writeOnlyAttributesAllowed) {
    diags.push(errorDiag('Write-only attribute not supported', WRITE_ONLY_UNSUPPORTED, attrPath('plaintext_wo')));
  }
  if (given(config.plaintext) && given(config.plaintext_wo)) {
    diags.push(errorDiag('Conflicting plaintext sources', 'Set either plaintext or plaintext_wo, not both.', attrPath('plaintext_wo')));
  } else if (!given(config.plaintext) && !given(config.plaintext_wo)) {
    diags.push(errorDiag('Missing plaintext', 'Set plaintext_wo (write-only, Terraform/OpenTofu >= 1.11) or plaintext.', attrPath('plaintext')));
  }
  if (given(config.plaintext_wo_version) && !given(config.plaintext_wo) && !isUnknown(config.plaintext_wo_version)) {
    diags.push(errorDiag('plaintext_wo_version without plaintext_wo', 'plaintext_wo_version only versions plaintext_wo; remove it or set plaintext_wo.', attrPath('plaintext_wo_version')));
  }
  for (const name of ['plaintext', 'plaintext_wo'] as const) {
    const text = str(config[name]);
    if (text !== undefined && Buffer.byteLength(text, 'utf8') > MAX_PLAINTEXT_BYTES) {
      // The size only: the value itself is sensitive.
      diags.push(
        errorDiag(`Invalid ${name}`, `${name} must be at most ${MAX_PLAINTEXT_BYTES} bytes of UTF-8; got ${Buffer.byteLength(text, 'utf8')}.`, attrPath(name)),
      );
    }
  }
  const aad = str(config.aad_context);
  if (aad !== undefined && Buffer.byteLength(aad, 'utf8') > MAX_AAD_BYTES) {
    diags.push(
      errorDiag('Invalid aad_context', `aad_context must be at most ${MAX_AAD_BYTES} bytes of UTF-8; got ${Buffer.byteLength(aad, 'utf8')}.`, attrPath('aad_context')),
    );
  }
  return diags;
}

/** The state id: key, version and a digest of the ciphertext (the ciphertext itself is long). */
export function ciphertextId(keyId: string, versionId: string, ciphertext: string): string {
  return `${keyId}/${versionId}/${createHash('sha256').update(ciphertext).digest('hex').slice(0, 16)}`;
}

async function encryptSecret(
  { planned, config }: { planned: SecretCiphertextConfig; config: SecretCiphertextConfig },
  ctx: ConfiguredContext,
): Promise<Result<SecretCiphertextState | null>> {
  const keyId = str(planned.key_id);
  // The write-only value is only in the configuration (the plan holds null for it).
  const plaintext = str(planned.plaintext) ?? str(config.plaintext_wo);
  if (keyId === undefined || plaintext === undefined) {
    return withDiags(null, errorDiag('Missing key_id or plaintext', 'key_id and plaintext (or plaintext_wo) must be known at apply time.'));
  }
  const aad = str(planned.aad_context);
  const plainBytes = Buffer.from(plaintext, 'utf8');
  try {
    const result = await ctx.client.encrypt(keyId, plainBytes, aad === undefined || aad === '' ? undefined : Buffer.from(aad, 'utf8'));
    return ok({
      key_id: keyId,
      aad_context: aad ?? null,
      plaintext: str(planned.plaintext) ?? null,
      plaintext_wo: null,
      plaintext_wo_version: typeof planned.plaintext_wo_version === 'number' ? planned.plaintext_wo_version : null,
      id: ciphertextId(result.keyId, result.versionId, result.ciphertext),
      ciphertext: result.ciphertext,
    });
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND ? attrPath('key_id') : undefined;
    return withDiags(null, failureDiag(`Cannot encrypt with key ${keyId}`, err, path));
  } finally {
    plainBytes.fill(0);
  }
}

async function readSecret(current: SecretCiphertextState, ctx: ConfiguredContext): Promise<Result<SecretCiphertextState | null>> {
  if (current.key_id === null) return ok(null);
  try {
    await ctx.client.getKey(current.key_id);
  } catch (err) {
    // Without its key the ciphertext can never be decrypted: plan a new one.
    if (err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND) return ok(null);
    return withDiags(current, failureDiag(`Cannot read key ${current.key_id}`, err));
  }
  return ok(current);
}

function importSecret(): Result<SecretCiphertextState | null> {
  return withDiags(
    null,
    errorDiag(
      'Import not supported',
      'kms_secret_ciphertext cannot be imported: the plaintext is only in the Terraform configuration. Declare the resource and apply to create a new ciphertext.',
    ),
  );
}

/** The resource: every input forces a new ciphertext, so there is no update and nothing to delete. */
export const secretCiphertextResource = defineResource<SecretCiphertextState, SecretCiphertextConfig>({
  typeName: SECRET_CIPHERTEXT_TYPE,
  requiresReplace: ['key_id', 'aad_context', 'plaintext', 'plaintext_wo_version'],
  validate: validateSecretCiphertextConfig,
  create: encryptSecret,
  read: readSecret,
  delete: () => Promise.resolve([]),
  importState: importSecret,
});

/** PlanResourceChange of this resource. */
export function planSecretCiphertext(request: PlanRequest): PlanResult {
  return planResource(resourceTypeOf(secretCiphertextResource), request, { client: undefined, folderId: undefined });
}
