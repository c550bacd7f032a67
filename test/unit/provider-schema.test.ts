// The schema document is the single source of the docs, the models and the bindings: every
// block and attribute must say what it is, and the framework's view of each resource must agree.
import { describe, expect, it } from '@jest/globals';
import { resourceTypeOf } from '../../provider/framework/resource.js';
import { RESOURCES } from '../../provider/resources/index.js';
import { providerSchemas, type SchemaBlock } from '../../provider/schema.js';

function undocumented(block: SchemaBlock, where: string): string[] {
  const missing = (block.description ?? '').trim() === '' ? [where] : [];
  for (const [name, attr] of Object.entries(block.attributes ?? {})) if ((attr.description ?? '').trim() === '') missing.push(`${where}.${name}`);
  return missing;
}

describe('provider schema document', () => {
  it('describes every block and attribute', () => {
    const missing = [
      ...undocumented(providerSchemas.provider.block, 'provider'),
      ...Object.entries(providerSchemas.resource_schemas ?? {}).flatMap(([n, s]) => undocumented(s.block, n)),
      ...Object.entries(providerSchemas.data_source_schemas ?? {}).flatMap(([n, s]) => undocumented(s.block, `data.${n}`)),
      ...Object.entries(providerSchemas.ephemeral_resource_schemas ?? {}).flatMap(([n, s]) => undocumented(s.block, `ephemeral.${n}`)),
      ...Object.entries(providerSchemas.resource_identity_schemas ?? {}).flatMap(([n, s]) =>
        Object.entries(s.attributes)
          .filter(([, a]) => (a.description ?? '').trim() === '')
          .map(([a]) => `identity.${n}.${a}`),
      ),
    ];
    expect(missing).toEqual([]);
  });

  it('marks plaintext_wo write-only and never computed (core refuses computed write-only attributes)', () => {
    const attr = providerSchemas.resource_schemas?.['kms_secret_ciphertext']?.block.attributes?.['plaintext_wo'];
    expect(attr).toMatchObject({ write_only: true, sensitive: true, optional: true });
    expect(attr?.computed).toBeUndefined();
  });

  it.each(RESOURCES.map((r) => [r.typeName, r] as const))('%s: identity attributes are state attributes, required for import', (_name, definition) => {
    const type = resourceTypeOf(definition);
    const identity = providerSchemas.resource_identity_schemas?.[definition.typeName];
    if (!definition.identity) {
      expect(identity).toBeUndefined();
      return;
    }
    expect(Object.keys(identity?.attributes ?? {}).sort()).toEqual([...definition.identity].sort());
    for (const name of definition.identity) expect(type.attributes).toContain(name);
    for (const attr of Object.values(identity?.attributes ?? {})) expect(attr.required_for_import).toBe(true);
  });
});
