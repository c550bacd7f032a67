/**
 * DynamicValue encoding: msgpack with the unknown sentinel as a msgpack extension, plus the JSON
 * form core uses for stored state (UpgradeResourceState's `raw_state.json`).
 */
import { decode, encode, ExtData, type ExtensionCodecType } from '@msgpack/msgpack';
import { CodecError, conformValue, type CtyType } from './cty.js';
import { fastDecode, fastEncode } from './msgpack-fast.js';
import { isUnknown, UNKNOWN, type TfValue } from './values.js';

/**
 * Unknown is written as extension type 0 with one zero byte (`d4 00 00`), the canonical form
 * core's cty msgpack writes. Newer cores send refined unknowns (extension type 12 with a payload),
 * so every extension type is read as unknown.
 */
const unknownExtension: ExtensionCodecType<undefined> = {
  tryToEncode(object: unknown): ExtData | null {
    return isUnknown(object) ? new ExtData(0, new Uint8Array([0])) : null;
  },
  decode(): unknown {
    return UNKNOWN;
  },
};

/** The wire shape of tfplugin6.DynamicValue as grpc-js hands it to us. */
export interface DynamicValueMessage {
  msgpack?: Uint8Array | null;
  json?: Uint8Array | null;
}

/** Decode raw msgpack bytes without any type check. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  return decode(bytes, { extensionCodec: unknownExtension });
}

/** Encode a value as msgpack, unknowns as `d4 00 00`. */
export function encodeMsgpack(value: TfValue): Buffer {
  const bytes = encode(value, { extensionCodec: unknownExtension, ignoreUndefined: false });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decode a DynamicValue against its schema type. An absent DynamicValue is null (core sends none
 * for a null prior state); anything that does not match the type throws a {@link CodecError}.
 */
export function decodeDynamicValue(message: DynamicValueMessage | null | undefined, type: CtyType): TfValue {
  if (!message) return null;
  if (message.msgpack && message.msgpack.length > 0) {
    // The type-directed reader (msgpack-fast.ts) has the answer unless something is off; then
    // the general path below finds the result or the precise error.
    const fast = fastDecode(message.msgpack, type);
    if (fast !== undefined) return fast;
    let raw: unknown;
    try {
      raw = decodeMsgpack(message.msgpack);
    } catch (err) {
      throw new CodecError(`invalid msgpack: ${(err as Error).message}`);
    }
    return conformValue(raw, type);
  }
  if (message.json && message.json.length > 0) {
    return decodeJsonValue(message.json, type, { allowUnknown: false });
  }
  return null;
}

/** Encode a value as a DynamicValue, checking it against the schema type first. */
export function encodeDynamicValue(value: TfValue, type: CtyType): { msgpack: Buffer } {
  return { msgpack: fastEncode(value, type) ?? encodeMsgpack(conformValue(value, type)) };
}

/**
 * Decode JSON (stored state) against a type. Attributes the schema no longer has are dropped, as
 * an upgrade from an older schema must; JSON cannot carry unknowns.
 */
export function decodeJsonValue(
  json: Uint8Array | string,
  type: CtyType,
  options: { allowUnknown?: boolean; ignoreUnknownAttributes?: boolean } = {},
): TfValue {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof json === 'string' ? json : Buffer.from(json).toString('utf8'));
  } catch (err) {
    throw new CodecError(`invalid JSON: ${(err as Error).message}`);
  }
  return conformValue(raw, type, { allowUnknown: false, ignoreUnknownAttributes: true, ...options });
}
