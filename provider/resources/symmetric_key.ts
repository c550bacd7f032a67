/**
 * `kms_symmetric_key`: a symmetric key of the daemon, with automatic rotation.
 *
 * The plan rules here follow what core checks (see PROTOCOL.md "What core checks"): planned
 * values equal config, or the prior value when semantically equal, and computed values become
 * unknown only when the change really alters them. Apply must reproduce every known planned value.
 */
import {
  GrpcCode,
  KmsApiError,
  type SymmetricAlgorithm,
  type SymmetricKey,
  type UpdateSymmetricKeyFields,
} from '../client/kms-client.js';
import { formatGoDuration, goDurationSeconds, parseApiDuration, sameGoDuration, toApiDuration } from '../codec/duration.js';
import { isObject, isUnknown, valuesEqual, type TfValue } from '../codec/values.js';
import { attrPath, errorDiag, failureDiag, type Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext, ProviderContext } from '../framework/context.js';
import { defineResource, planResource, resourceTypeOf, type PlanModification, type PlanRequest, type PlanResult } from '../framework/resource.js';
import { ok, withDiags, type Result } from '../framework/result.js';
import type { SymmetricKeyConfig, SymmetricKeyState } from '../models.gen.js';

/** Terraform type name. */
export const SYMMETRIC_KEY_TYPE = 'kms_symmetric_key';

/** Algorithms accepted in default_algorithm. */
export const ALGORITHMS: readonly SymmetricAlgorithm[] = ['AES_128', 'AES_192', 'AES_256', 'AES_256_HSM'];
/** Statuses a user may set. */
export const SETTABLE_STATUSES = ['ACTIVE', 'INACTIVE'] as const;
/** default_algorithm when not configured (what the daemon uses too). */
export const DEFAULT_ALGORITHM: SymmetricAlgorithm = 'AES_128';
/** Shortest rotation period the daemon accepts. */
export const MIN_ROTATION_SECONDS = 3600;

const LABEL_KEY = /^[a-z][-_0-9a-z]*$/;
const LABEL_VALUE = /^[-_0-9a-z]*$/;
const MAX_LABELS = 64;
const MAX_LABEL_LENGTH = 63;
const MAX_NAME = 100;
const MAX_DESCRIPTION = 1024;

function str(value: TfValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function charCount(s: string): number {
  return [...s].length;
}

/** Config validation: everything checkable without the daemon. Unknown values are skipped. */
export function validateSymmetricKeyConfig(config: SymmetricKeyConfig): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const name = str(config.name);
  if (name !== undefined && charCount(name) > MAX_NAME) {
    diags.push(errorDiag('Invalid name', `The key name must be at most ${MAX_NAME} characters; got ${charCount(name)}.`, attrPath('name')));
  }
  const description = str(config.description);
  if (description !== undefined && charCount(description) > MAX_DESCRIPTION) {
    diags.push(
      errorDiag(
        'Invalid description',
        `The description must be at most ${MAX_DESCRIPTION} characters; got ${charCount(description)}.`,
        attrPath('description'),
      ),
    );
  }
  const folderId = str(config.folder_id);
  if (folderId !== undefined && (folderId === '' || folderId.length > 50)) {
    diags.push(errorDiag('Invalid folder_id', 'folder_id must be 1 to 50 characters long.', attrPath('folder_id')));
  }
  const labels = config.labels;
  if (isObject(labels)) {
    const keys = Object.keys(labels);
    if (keys.length > MAX_LABELS) {
      diags.push(errorDiag('Too many labels', `A key can have at most ${MAX_LABELS} labels; got ${keys.length}.`, attrPath('labels')));
    }
    for (const key of keys) {
      const path = attrPath('labels', { key });
      if (!LABEL_KEY.test(key) || key.length > MAX_LABEL_LENGTH) {
        diags.push(
          errorDiag(
            'Invalid label key',
            `Label key ${JSON.stringify(key)} must match [a-z][-_0-9a-z]* and be at most ${MAX_LABEL_LENGTH} characters.`,
            path,
          ),
        );
      }
      const value = str(labels[key]);
      if (value !== undefined && (!LABEL_VALUE.test(value) || value.length > MAX_LABEL_LENGTH)) {
        diags.push(
          errorDiag(
            'Invalid label value',
            `Label value ${JSON.stringify(value)} must match [-_0-9a-z]* and be at most ${MAX_LABEL_LENGTH} characters.`,
            path,
          ),
        );
      }
    }
  }
  const algorithm = str(config.default_algorithm);
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm as SymmetricAlgorithm)) {
    diags.push(
      errorDiag(
        'Invalid default_algorithm',
        `default_algorithm must be one of ${ALGORITHMS.join(', ')}; got ${JSON.stringify(algorithm)}.`,
        attrPath('default_algorithm'),
      ),
    );
  }
  const status = str(config.status);
  if (status !== undefined && !(SETTABLE_STATUSES as readonly string[]).includes(status)) {
    diags.push(
      errorDiag('Invalid status', `status must be ACTIVE or INACTIVE; got ${JSON.stringify(status)}.`, attrPath('status')),
    );
  }
  const period = str(config.rotation_period);
  if (period !== undefined) {
    const parsed = goDurationSeconds(period);
    if ('error' in parsed) {
      diags.push(
        errorDiag(
          'Invalid rotation_period',
          `${parsed.error}. Use a Go-style duration such as "24h", "8760h", "1h30m" or "86400s".`,
          attrPath('rotation_period'),
        ),
      );
    } else if (parsed.seconds < MIN_ROTATION_SECONDS) {
      diags.push(
        errorDiag(
          'Invalid rotation_period',
          `rotation_period must be at least 1h; got ${JSON.stringify(period)}.`,
          attrPath('rotation_period'),
        ),
      );
    }
  }
  return diags;
}

/**
 * The resource's own planning, after the framework's (defaults, unknown computed values,
 * RequiresReplace of folder_id, semantic equality of rotation_period): a key created without
 * folder_id goes to the provider's folder.
 */
function modifySymmetricKeyPlan({ prior, config, planned }: PlanModification<SymmetricKeyState, SymmetricKeyConfig>, ctx: ProviderContext): Diagnostic[] {
  if (prior !== null || config.folder_id !== null) return [];
  if (ctx.folderId === undefined) {
    return [
      errorDiag(
        'Missing folder_id',
        'Set folder_id on the resource, or folder_id in the provider block (or the KMS_FOLDER_ID environment variable).',
        attrPath('folder_id'),
      ),
    ];
  }
  planned.folder_id = ctx.folderId;
  return [];
}

function isEmptyMap(value: Record<string, string> | undefined): boolean {
  return value === undefined || Object.keys(value).length === 0;
}

/**
 * State from an API key. `reference` (prior state in Read, planned state in Apply) decides the
 * spellings the API cannot carry: null versus "" / {} (the API has no null name, description or
 * labels), and how a rotation period of N seconds is written.
 */
export function keyToState(key: SymmetricKey, reference: SymmetricKeyState | SymmetricKeyConfig | null): SymmetricKeyState {
  const ref: Partial<Record<string, TfValue>> = reference ?? {};
  const nullable = (apiValue: string, name: string): string | null => (apiValue === '' && ref[name] === null ? null : apiValue);
  let rotationPeriod: string | null = null;
  if (key.rotationPeriod !== undefined && key.rotationPeriod !== null) {
    const seconds = parseApiDuration(key.rotationPeriod);
    const refPeriod = str(ref['rotation_period']);
    if (seconds === undefined) rotationPeriod = key.rotationPeriod;
    else if (refPeriod !== undefined && goDurationSecondsOrUndefined(refPeriod) === seconds) rotationPeriod = refPeriod;
    else rotationPeriod = formatGoDuration(seconds);
  }
  const labels = key.labels ?? {};
  return {
    id: key.id,
    folder_id: key.folderId,
    name: nullable(key.name ?? '', 'name'),
    description: nullable(key.description ?? '', 'description'),
    labels: isEmptyMap(labels) && ref['labels'] === null ? null : { ...labels },
    default_algorithm: key.defaultAlgorithm,
    rotation_period: rotationPeriod,
    deletion_protection: key.deletionProtection,
    status: key.status,
    created_at: key.createdAt,
    // The API's rotatedAt is the proto's "time the last version was created", the key's creation
    // time until the first rotation; this attribute stays "null until the key is first rotated".
    rotated_at: key.rotatedAt !== undefined && key.rotatedAt !== key.createdAt ? key.rotatedAt : null,
    primary_version_id: key.primaryVersion?.id ?? null,
  };
}

function goDurationSecondsOrUndefined(value: string): number | undefined {
  const parsed = goDurationSeconds(value);
  return 'seconds' in parsed ? parsed.seconds : undefined;
}

function periodSeconds(value: TfValue | undefined): number | null {
  const s = str(value);
  return s === undefined ? null : (goDurationSecondsOrUndefined(s) ?? null);
}

function labelsOf(value: TfValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(value)) for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The PATCH fields (update mask) that turn `prior` into `planned`. */
export function updateFields(prior: SymmetricKeyState, planned: SymmetricKeyConfig): UpdateSymmetricKeyFields {
  const fields: UpdateSymmetricKeyFields = {};
  if (planned.name !== prior.name) fields.name = str(planned.name) ?? '';
  if (planned.description !== prior.description) fields.description = str(planned.description) ?? '';
  if (!valuesEqual(planned.labels, prior.labels)) fields.labels = labelsOf(planned.labels);
  if (planned.status !== prior.status && (planned.status === 'ACTIVE' || planned.status === 'INACTIVE')) {
    fields.status = planned.status;
  }
  if (planned.default_algorithm !== prior.default_algorithm) {
    fields.defaultAlgorithm = str(planned.default_algorithm) as SymmetricAlgorithm;
  }
  const plannedPeriod = periodSeconds(planned.rotation_period);
  if (plannedPeriod !== periodSeconds(prior.rotation_period)) {
    fields.rotationPeriod = plannedPeriod === null ? null : toApiDuration(plannedPeriod);
  }
  if (planned.deletion_protection !== prior.deletion_protection) {
    fields.deletionProtection = planned.deletion_protection === true;
  }
  return fields;
}

async function createKey({ planned }: { planned: SymmetricKeyConfig }, ctx: ConfiguredContext): Promise<Result<SymmetricKeyState | null>> {
  const folderId = str(planned.folder_id);
  if (folderId === undefined) return withDiags(null, errorDiag('Missing folder_id', 'folder_id is not known at apply time.', attrPath('folder_id')));
  const period = periodSeconds(planned.rotation_period);
  let key: SymmetricKey;
  try {
    key = await ctx.client.createKey({
      folderId,
      ...(str(planned.name) !== undefined && { name: str(planned.name) }),
      ...(str(planned.description) !== undefined && { description: str(planned.description) }),
      ...(isObject(planned.labels) && { labels: labelsOf(planned.labels) }),
      defaultAlgorithm: (str(planned.default_algorithm) ?? DEFAULT_ALGORITHM) as SymmetricAlgorithm,
      ...(period !== null && { rotationPeriod: toApiDuration(period) }),
      deletionProtection: planned.deletion_protection === true,
    });
  } catch (err) {
    return withDiags(null, failureDiag('Cannot create key', err));
  }
  if (planned.status === 'INACTIVE' && key.status !== 'INACTIVE') {
    try {
      key = await ctx.client.updateKey(key.id, { status: 'INACTIVE' });
    } catch (err) {
      // The key exists: hand it to state so the next plan repairs the status instead of orphaning it.
      return withDiags(keyToState(key, planned), failureDiag(`Key ${key.id} was created but cannot be made INACTIVE`, err, attrPath('status')));
    }
  }
  return ok(keyToState(key, planned));
}

async function updateKey({ prior, planned }: { prior: SymmetricKeyState; planned: SymmetricKeyConfig }, ctx: ConfiguredContext): Promise<Result<SymmetricKeyState>> {
  const id = prior.id;
  if (id === null) return withDiags(prior, errorDiag('Missing id', 'The prior state of the key has no id.'));
  const fields = updateFields(prior, planned);
  let key: SymmetricKey;
  try {
    key = Object.keys(fields).length === 0 ? await ctx.client.getKey(id) : await ctx.client.updateKey(id, fields);
  } catch (err) {
    return withDiags(prior, failureDiag(`Cannot update key ${id}`, err));
  }
  const state = keyToState(key, planned);
  // An automatic rotation by the daemon between plan and apply would otherwise surface as
  // "inconsistent result after apply"; these are computed-only and the next refresh reports them.
  if (!isUnknown(planned.rotated_at)) state.rotated_at = planned.rotated_at;
  if (!isUnknown(planned.primary_version_id)) state.primary_version_id = planned.primary_version_id;
  return ok(state);
}

async function deleteKey(prior: SymmetricKeyState, ctx: ConfiguredContext): Promise<Diagnostic[]> {
  if (prior.id === null) return [];
  try {
    await ctx.client.deleteKey(prior.id);
  } catch (err) {
    if (err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND) return [];
    return [failureDiag(`Cannot delete key ${prior.id}`, err)];
  }
  return [];
}

async function readKey(current: SymmetricKeyState, ctx: ConfiguredContext): Promise<Result<SymmetricKeyState | null>> {
  const id = current.id;
  if (id === null || id === '') return ok(null);
  try {
    return ok(keyToState(await ctx.client.getKey(id), current));
  } catch (err) {
    // Deleted outside Terraform: null state makes core drop it and plan a create.
    if (err instanceof KmsApiError && err.code === GrpcCode.NOT_FOUND) return ok(null);
    return withDiags(current, failureDiag(`Cannot read key ${id}`, err));
  }
}

function importKey(id: string): Result<SymmetricKeyState | null> {
  if (id.trim() === '') {
    return withDiags(null, errorDiag('Invalid import id', 'Import kms_symmetric_key by its key id, e.g. terraform import kms_symmetric_key.k abc123.'));
  }
  // Core calls ReadResource next, which fills in everything else.
  return ok({
    id,
    folder_id: null,
    name: null,
    description: null,
    labels: null,
    default_algorithm: null,
    rotation_period: null,
    deletion_protection: null,
    status: null,
    created_at: null,
    rotated_at: null,
    primary_version_id: null,
  });
}

/** The resource: its rules for the framework and its calls to the daemon. */
export const symmetricKeyResource = defineResource<SymmetricKeyState, SymmetricKeyConfig>({
  typeName: SYMMETRIC_KEY_TYPE,
  defaults: { default_algorithm: DEFAULT_ALGORITHM, deletion_protection: false },
  createDefaults: { status: 'ACTIVE' },
  // An unknown folder may turn out different at apply, and a key cannot move between folders.
  requiresReplace: ['folder_id'],
  semanticEquality: { rotation_period: sameGoDuration },
  identity: ['id'],
  validate: (config) => validateSymmetricKeyConfig(config),
  modifyPlan: modifySymmetricKeyPlan,
  create: createKey,
  read: readKey,
  update: updateKey,
  delete: deleteKey,
  importState: importKey,
});

/** PlanResourceChange of this resource (the framework's plan with its rules). */
export function planSymmetricKey(request: PlanRequest, ctx: ProviderContext): PlanResult {
  return planResource(resourceTypeOf(symmetricKeyResource), request, ctx);
}
