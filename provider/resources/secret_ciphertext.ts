/**
 * `kms_secret_ciphertext`: encrypts a plaintext once, at create, and keeps the ciphertext. Every
 * input change is a new ciphertext (replacement); delete has nothing to remove on the daemon.
 *
 * The plaintext is sensitive: it is never logged and never put into a diagnostic.
 */
import { createHash } from 'node:crypto';
import { GrpcCode, KmsApiError } from '../client/kms-client.js';
import type { PathStep } from '../codec/cty.js';
import { UNKNOWN, valuesEqual, type TfObject, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import type { ApplyRequest, ManagedResource, PlanRequest, PlanResult, ProviderContext, StateResult } from './resource.js';

/** Terraform type name. */
export const SECRET_CIPHERTEXT_TYPE = 'kms_secret_ciphertext';

/** Byte limits of the daemon's encrypt call. */
export const MAX_PLAINTEXT_BYTES = 32768;
export const MAX_AAD_BYTES = 8192;

const INPUTS = ['key_id', 'aad_context', 'plaintext'] as const;
const COMPUTED = ['id', 'ciphertext'] as const;

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Config validation: sizes in UTF-8 bytes, as the daemon counts them. Unknown values are skipped. */
export function validateSecretCiphertextConfig(config: TfObject): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const keyId = str(config['key_id']);
  if (keyId !== undefined && keyId.trim() === '') diags.push(errorDiag('Invalid key_id', 'key_id must not be empty.', attrPath('key_id')));
  const plaintext = str(config['plaintext']);
  if (plaintext !== undefined && Buffer.byteLength(plaintext, 'utf8') > MAX_PLAINTEXT_BYTES) {
    // The size only: the value itself is sensitive.
    diags.push(
      errorDiag(
        'Invalid plaintext',
        `plaintext must be at most ${MAX_PLAINTEXT_BYTES} bytes of UTF-8; got ${Buffer.byteLength(plaintext, 'utf8')}.`,
        attrPath('plaintext'),
      ),
    );
  }
  const aad = str(config['aad_context']);
  if (aad !== undefined && Buffer.byteLength(aad, 'utf8') > MAX_AAD_BYTES) {
    diags.push(
      errorDiag('Invalid aad_context', `aad_context must be at most ${MAX_AAD_BYTES} bytes of UTF-8; got ${Buffer.byteLength(aad, 'utf8')}.`, attrPath('aad_context')),
    );
  }
  return diags;
}

/** PlanResourceChange: any input change is a replacement, with a new id and ciphertext. */
export function planSecretCiphertext(request: PlanRequest): PlanResult {
  const { prior, proposed, config } = request;
  const requiresReplace: PathStep[][] = [];
  if (proposed === null || config === null) return { planned: null, requiresReplace, diagnostics: [] };
  const planned: TfObject = { ...proposed };
  if (prior !== null) {
    for (const name of INPUTS) if (!valuesEqual(config[name] ?? null, prior[name] ?? null)) requiresReplace.push(attrPath(name));
  }
  if (prior === null || requiresReplace.length > 0) for (const name of COMPUTED) planned[name] = UNKNOWN;
  else for (const name of COMPUTED) planned[name] = prior[name] ?? null;
  return { planned, requiresReplace, diagnostics: [] };
}

/** The state id: key, version and a digest of the ciphertext (the ciphertext itself is long). */
export function ciphertextId(keyId: string, versionId: string, ciphertext: string): string {
  return `${keyId}/${versionId}/${createHash('sha256').update(ciphertext).digest('hex').slice(0, 16)}`;
}

async function applySecretCiphertext(request: ApplyRequest, ctx: ProviderContext): Promise<StateResult> {
  const { prior, planned } = request;
  if (planned === null) return { state: null, diagnostics: [] };
  // Every input forces replacement, so an update is never planned with a real change.
  if (prior !== null) return { state: { ...planned, id: prior['id'] ?? null, ciphertext: prior['ciphertext'] ?? null }, diagnostics: [] };
  const client = ctx.client;
  if (!client) return { state: null, diagnostics: [notConfiguredDiag()] };
  const keyId = str(planned['key_id']);
  const plaintext = str(planned['plaintext']);
  if (keyId === undefined || plaintext === undefined) {
    return { state: null, diagnostics: [errorDiag('Missing key_id or plaintext', 'key_id and plaintext must be known at apply time.')] };
  }
  const aad = str(planned['aad_context']);
  const plainBytes = Buffer.from(plaintext, 'utf8');
  try {
    const result = await client.encrypt(keyId, plainBytes, aad === undefined || aad === '' ? undefined : Buffer.from(aad, 'utf8'));
    return { state: { ...planned, id: ciphertextId(result.keyId, result.versionId, result.ciphertext), ciphertext: result.ciphertext }, diagnostics: [] };
  } catch (err) {
    const path = err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND ? attrPath('key_id') : undefined;
    return { state: null, diagnostics: [failureDiag(`Cannot encrypt with key ${keyId}`, err, path)] };
  } finally {
    plainBytes.fill(0);
  }
}

async function readSecretCiphertext(current: TfObject, ctx: ProviderContext): Promise<StateResult> {
  if (!ctx.client) return { state: current, diagnostics: [notConfiguredDiag()] };
  const keyId = str(current['key_id']);
  if (keyId === undefined) return { state: null, diagnostics: [] };
  try {
    await ctx.client.getKey(keyId);
  } catch (err) {
    // Without its key the ciphertext can never be decrypted: plan a new one.
    if (err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND) return { state: null, diagnostics: [] };
    return { state: current, diagnostics: [failureDiag(`Cannot read key ${keyId}`, err)] };
  }
  return { state: current, diagnostics: [] };
}

function importSecretCiphertext(): StateResult {
  return {
    state: null,
    diagnostics: [
      errorDiag(
        'Import not supported',
        'kms_secret_ciphertext cannot be imported: the plaintext is only in the Terraform configuration. Declare the resource and apply to create a new ciphertext.',
      ),
    ],
  };
}

/** The resource as the RPC layer sees it. */
export const secretCiphertextResource: ManagedResource = {
  typeName: SECRET_CIPHERTEXT_TYPE,
  validate: validateSecretCiphertextConfig,
  plan: planSecretCiphertext,
  apply: applySecretCiphertext,
  read: readSecretCiphertext,
  importState: importSecretCiphertext,
};
