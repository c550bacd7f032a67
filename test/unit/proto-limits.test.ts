/**
 * The REST request limits are the proto annotations' (`(length)`, `(size)`, `(pattern)`,
 * `(map_key)` in schemas/proto): read from the loaded descriptors and compared with the JSON
 * Schemas and byte limits kmsd enforces, so neither can drift from the other.
 */
import { describe, expect, it } from '@jest/globals';
import type protobuf from 'protobufjs';
import { MAX_AAD_BYTES, MAX_PLAINTEXT_BYTES } from '../../daemon/domain/crypto.js';
import { messageType } from '../../daemon/grpc/descriptors.js';
import { COMMON_SCHEMA, REQUEST_SCHEMAS } from '../../daemon/http/validation.js';

const setAccessBindings = REQUEST_SCHEMAS['set-access-bindings'] as any;

const defs = (COMMON_SCHEMA as any).definitions;

/** A field's validation options as protobufjs parsed them (`(length)`, `(map_key).pattern`, …). */
function option(type: string, field: string, name: string): string | undefined {
  const f: protobuf.Field | undefined = messageType(type).fields[field];
  if (f === undefined) throw new Error(`${type} has no field ${field}`);
  const value = (f.options ?? {})[name] as unknown;
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** "<=50" → 50 */
const max = (text: string | undefined): number => Number(/^<=(\d+)$/.exec(text ?? '')?.[1] ?? NaN);

/** The longest id the id pattern allows ("^[a-z0-9][a-z0-9_-]{0,49}$" → 50). */
const patternMax = (pattern: string): number => 1 + Number(/\{0,(\d+)\}\$$/.exec(pattern)?.[1] ?? NaN);

describe('REST limits follow the proto annotations', () => {
  const CREATE = 'yandex.cloud.kms.v1.CreateSymmetricKeyRequest';

  it('ids, names and descriptions', () => {
    expect(patternMax(defs.folderId.pattern)).toBe(max(option(CREATE, 'folderId', '(length)')));
    expect(patternMax(defs.id.pattern)).toBe(max(option('yandex.cloud.kms.v1.GetSymmetricKeyRequest', 'keyId', '(length)')));
    expect(defs.name.maxLength).toBe(max(option(CREATE, 'name', '(length)')));
    expect(defs.description.maxLength).toBe(max(option(CREATE, 'description', '(length)')));
  });

  it('labels: count, key and value length and pattern', () => {
    expect(defs.labels.maxProperties).toBe(max(option(CREATE, 'labels', '(size)')));
    expect(defs.labels.propertyNames.maxLength).toBe(max(option(CREATE, 'labels', '(map_key).length')));
    expect(defs.labels.propertyNames.pattern).toBe(`^${option(CREATE, 'labels', '(map_key).pattern')}$`);
    expect(defs.labels.additionalProperties.maxLength).toBe(max(option(CREATE, 'labels', '(length)')));
    expect(defs.labels.additionalProperties.pattern).toBe(`^${option(CREATE, 'labels', '(pattern)')}$`);
  });

  it('plaintext and AAD byte limits', () => {
    expect(MAX_PLAINTEXT_BYTES).toBe(max(option('yandex.cloud.kms.v1.SymmetricEncryptRequest', 'plaintext', '(length)')));
    for (const [type, field] of [
      ['yandex.cloud.kms.v1.SymmetricEncryptRequest', 'aadContext'],
      ['yandex.cloud.kms.v1.SymmetricDecryptRequest', 'aadContext'],
      ['yandex.cloud.kms.v1.SymmetricReEncryptRequest', 'aadContext'],
      ['yandex.cloud.kms.v1.SymmetricReEncryptRequest', 'sourceAadContext'],
      ['yandex.cloud.kms.v1.GenerateDataKeyRequest', 'aadContext'],
    ] as const) {
      expect({ type, field, max: MAX_AAD_BYTES }).toEqual({ type, field, max: max(option(type, field, '(length)')) });
    }
    // base64 of the byte limits is what the JSON Schemas allow
    expect(defs.plaintext.maxLength).toBe(Math.ceil(MAX_PLAINTEXT_BYTES / 3) * 4);
    expect(defs.aadContext.maxLength).toBe(Math.ceil(MAX_AAD_BYTES / 3) * 4);
  });

  it('access bindings: role and subject lengths, at most 1000 per set', () => {
    const binding = defs.accessBinding.properties;
    expect(binding.roleId.maxLength).toBe(max(option('yandex.cloud.access.AccessBinding', 'roleId', '(length)')));
    expect(binding.subject.properties.id.maxLength).toBe(max(option('yandex.cloud.access.Subject', 'id', '(length)')));
    const set = setAccessBindings.properties.accessBindings.maxItems;
    expect(set).toBe(max(option('yandex.cloud.access.SetAccessBindingsRequest', 'accessBindings', '(size)')));
  });
});
