// The plugin's own protobuf codec against protobufjs (the reference the descriptor comes from):
// the same bytes decode to the same objects both ways, for real responses of every kind.
import { describe, expect, it } from '@jest/globals';
import protobuf from 'protobufjs/light.js';
import { decodeMessage, encodeMessage, methodTypes } from '../../provider/protocol/definitions.js';
import { PROTOCOL_DESCRIPTOR } from '../../provider/protocol/proto/descriptor.js';
import { createProviderHandlers } from '../../provider/server.js';

const root = protobuf.Root.fromJSON(PROTOCOL_DESCRIPTOR);
root.resolveAll();
const CONVERSION = { longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: false };
const reference = (name: string) => root.lookupType(name);
const roundTrip = (type: protobuf.Type, bytes: Uint8Array): unknown => JSON.parse(JSON.stringify(type.toObject(type.decode(bytes), CONVERSION)));
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

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
});
