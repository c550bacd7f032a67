// The plugin's own protobuf codec against protobufjs (the reference the descriptor comes from):
// the same bytes decode to the same objects both ways, for real responses of every kind.
import { describe, expect, it } from '@jest/globals';
import protobuf from 'protobufjs/light.js';
import { decodeMessage, encodeMessage, encodeMessageFrame, methodTypes } from '../../provider/protocol/definitions.js';
import { PROTOCOL_DESCRIPTOR } from '../../provider/protocol/proto/descriptor.js';
import { createProviderHandlers } from '../../provider/server.js';

const root = protobuf.Root.fromJSON(PROTOCOL_DESCRIPTOR);
root.resolveAll();
const CONVERSION = { longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: false };
const reference = (name: string) => root.lookupType(name);
const roundTrip = (type: protobuf.Type, bytes: Uint8Array): unknown => JSON.parse(JSON.stringify(type.toObject(type.decode(bytes), CONVERSION)));
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
type ProtoObject = Record<string, unknown>;

describe('protobuf codec', () => {
  const handlers = createProviderHandlers({});
  it.each(['GetProviderSchema', 'GetResourceIdentitySchemas', 'GetMetadata', 'GetFunctions'])('%s response: same message as protobufjs', async (method) => {
    const response = await handlers[method]!({});
    const { response: type } = methodTypes('tfplugin6.Provider', method);
    const ref = reference(`tfplugin6.${method}.Response`);
    const ours = encodeMessage(type, response);
    const theirs = ref.encode(ref.fromObject(response)).finish();
    expect(roundTrip(ref, ours)).toEqual(roundTrip(ref, theirs));
    expect(plain(decodeMessage(type, theirs))).toEqual(roundTrip(ref, theirs));
  });

  it('diagnostics with every path step kind, large and negative integers, optional fields and maps', () => {
    const message = {
      diagnostics: [
        { severity: 2, summary: 'sum', detail: 'ж', attribute: { steps: [{ attribute_name: 'labels' }, { element_key_string: 'k' }, { element_key_int: 2 ** 40 }] } },
      ],
      renew_at: { seconds: -5, nanos: 7 },
      private: Buffer.from([0, 1, 2]),
      result: { msgpack: Buffer.from([0xc0]) },
    };
    const { response: type } = methodTypes('tfplugin6.Provider', 'OpenEphemeralResource');
    const ref = reference('tfplugin6.OpenEphemeralResource.Response');
    expect(roundTrip(ref, encodeMessage(type, message))).toEqual(plain(message));
    expect(plain(decodeMessage(type, ref.encode(ref.fromObject(message)).finish()))).toEqual(plain(message));
    const schemas = methodTypes('tfplugin6.Provider', 'GetProviderSchema').response;
    const withMap = { resource_schemas: { a: { version: 3, block: { attributes: [{ name: 'x', type: Buffer.from('"string"'), required: true }] } } } };
    expect(roundTrip(reference('tfplugin6.GetProviderSchema.Response'), encodeMessage(schemas, withMap))).toEqual(plain(withMap));
  });

  it('skips unknown fields and refuses truncated input', () => {
    const { request } = methodTypes('tfplugin6.Provider', 'ReadResource');
    // Field 99 (varint 1) is unknown to ReadResource.Request; type_name "k" follows.
    expect(decodeMessage(request, Buffer.from([0x98, 0x06, 0x01, 0x0a, 0x01, 0x6b]))).toEqual({ type_name: 'k' });
    expect(() => decodeMessage(request, Buffer.from([0x0a, 0x05, 0x6b]))).toThrow(/truncated/);
  });

  it('nested messages, strings and packed numbers whose lengths take 1, 2 and 3 bytes', () => {
    const { response: type } = methodTypes('tfplugin6.Provider', 'ReadResource');
    const ref = reference('tfplugin6.ReadResource.Response');
    for (const size of [0, 1, 127, 128, 300, 16383, 16384, 70000]) {
      const message = {
        new_state: { msgpack: Buffer.alloc(size, 0xa5) },
        diagnostics: [
          { severity: 1, summary: 's'.repeat(size), detail: `ж${'é'.repeat(size % 1000)}😀`, attribute: { steps: Array.from({ length: Math.min(size, 300) }, (_, i) => ({ element_key_int: i })) } },
        ],
        private: Buffer.alloc(size % 500, 1),
        new_identity: { identity_data: { msgpack: Buffer.alloc(size % 200, 2) } },
      };
      const ours = encodeMessage(type, message);
      expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(ref.encode(ref.fromObject(message)).finish()).toString('hex'));
      const frame = encodeMessageFrame(type, message);
      expect(frame.subarray(0, 5).toString('hex')).toBe(`00${ours.length.toString(16).padStart(8, '0')}`);
      expect(frame.subarray(5).equals(ours)).toBe(true);
    }
    // A lone surrogate is written as U+FFFD (Buffer's UTF-8), whatever the string's length.
    for (const text of ['a\uD800', `${'b'.repeat(60)}\uDC00`]) {
      const decoded = decodeMessage(type, encodeMessage(type, { diagnostics: [{ severity: 1, summary: text }] }));
      expect((decoded['diagnostics'] as { summary: string }[])[0]?.summary).toBe(Buffer.from(text, 'utf8').toString('utf8'));
    }
    const schemas = methodTypes('tfplugin6.Provider', 'GetProviderSchema').response;
    const withMap = { resource_schemas: { a: { version: 3, block: { description: 'd'.repeat(200), attributes: [{ name: 'x'.repeat(140), type: Buffer.from('"string"'), required: true }] } } } };
    const schemaRef = reference('tfplugin6.GetProviderSchema.Response');
    expect(Buffer.from(encodeMessage(schemas, withMap)).toString('hex')).toBe(Buffer.from(schemaRef.encode(schemaRef.fromObject(withMap)).finish()).toString('hex'));
  });

  it('requests of every kind decode as protobufjs decodes them, nested unknown fields skipped', () => {
    const dv = (n: number) => ({ msgpack: Buffer.alloc(n, 0x90) });
    const requests: [string, ProtoObject][] = [
      ['PlanResourceChange', { type_name: 'kms_symmetric_key', prior_state: dv(3), proposed_new_state: dv(200), config: dv(130), prior_private: Buffer.from('p'), provider_meta: dv(1), client_capabilities: { deferral_allowed: true, write_only_attributes_allowed: true }, prior_identity: { identity_data: dv(20) } }],
      ['ApplyResourceChange', { type_name: 'k', prior_state: dv(0), planned_state: dv(20000), config: dv(5), planned_private: Buffer.alloc(0), planned_identity: { identity_data: dv(2) } }],
      ['ReadResource', { type_name: 'k', current_state: dv(300), private: Buffer.from([1, 2]), client_capabilities: { deferral_allowed: false } }],
      ['UpgradeResourceState', { type_name: 'k', version: 3, raw_state: { json: Buffer.from('{"a":1}'), flatmap: { a: '1', 'b.%': '2' } } }],
      ['ConfigureProvider', { terraform_version: '1.11.4', config: dv(40), client_capabilities: { deferral_allowed: true } }],
      ['ValidateResourceConfig', { type_name: 'k', config: dv(140), client_capabilities: { write_only_attributes_allowed: true } }],
    ];
    for (const [method, message] of requests) {
      const { request: type } = methodTypes('tfplugin6.Provider', method);
      const ref = reference(`tfplugin6.${method}.Request`);
      const bytes = ref.encode(ref.fromObject(message)).finish();
      expect(plain(decodeMessage(type, bytes))).toEqual(roundTrip(ref, bytes));
    }
    // ReadResource.Request: current_state {msgpack "ab", unknown fixed32 #10, unknown fixed64 #9 cut
    // short by the end of current_state}, then type_name "k" (read after current_state's end).
    const { request } = methodTypes('tfplugin6.Provider', 'ReadResource');
    const nested = Buffer.concat([Buffer.from([0x0a, 0x02, 0x61, 0x62, 0x55]), Buffer.alloc(4, 7), Buffer.from([0x49, 7, 7])]);
    const bytes = Buffer.concat([Buffer.from([0x12, nested.length]), nested, Buffer.from([0x0a, 0x01, 0x6b])]);
    expect(plain(decodeMessage(request, bytes))).toEqual(plain({ current_state: { msgpack: Buffer.from('ab') }, type_name: 'k' }));
  });

  it('map keys from the wire land in a null-prototype table: __proto__ and constructor are plain entries', () => {
    const { request: type } = methodTypes('tfplugin6.Provider', 'UpgradeResourceState');
    const ref = reference('tfplugin6.UpgradeResourceState.Request');
    const flatmap = JSON.parse('{"__proto__":"x","constructor":"y","toString":"z"}') as Record<string, string>;
    const bytes = ref.encode(ref.fromObject({ type_name: 'k', raw_state: { flatmap } })).finish();
    const decoded = decodeMessage(type, bytes) as { raw_state: { flatmap: Record<string, string> } };
    const map = decoded.raw_state.flatmap;
    expect(Object.getPrototypeOf(map)).toBeNull();
    expect(Object.keys(map).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(map, '__proto__')?.value).toBe('x');
    expect(map['constructor']).toBe('y');
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });
});
