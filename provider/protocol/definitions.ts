/**
 * Service definitions for tfplugin6.Provider and plugin.GRPCController, built straight from the
 * embedded descriptor (no .proto parsing, no @grpc/proto-loader, no protobufjs at run time:
 * together they cost ≈170 ms of every plugin process start, and core starts several per
 * command).
 *
 * Messages cross this boundary as plain objects with the proto's snake_case field names, int64 as
 * JS numbers, enums as numbers and bytes as Buffers.
 */
import { PROTOCOL_DESCRIPTOR } from './proto/descriptor.js';
import { decodeMessage as decode, encodeMessage as encode, encodeMessageFrame as encodeFrame, ProtoRegistry, type MessageType } from './protobuf.js';

/** A decoded protocol message. */
export type ProtoMessage = Record<string, unknown>;

let registry: ProtoRegistry | undefined;

/** The protocol's types (resolved lazily, once per process). */
export function protocolRegistry(): ProtoRegistry {
  registry ??= new ProtoRegistry(PROTOCOL_DESCRIPTOR);
  return registry;
}

/** Encode a plain object as a message of `type`. */
export function encodeMessage(type: MessageType, value: ProtoMessage): Buffer {
  return encode(type, value);
}

/** Encode a plain object as one gRPC message frame (5-byte prefix and message, one buffer). */
export function encodeMessageFrame(type: MessageType, value: ProtoMessage): Buffer {
  return encodeFrame(type, value);
}

/** Decode bytes of a message of `type` into a plain object. */
export function decodeMessage(type: MessageType, bytes: Uint8Array): ProtoMessage {
  return decode(type, bytes);
}

/** The request and response types of `service`'s `method`. */
export function methodTypes(service: string, method: string): { request: MessageType; response: MessageType } {
  const m = protocolRegistry().service(service)[method];
  if (!m) throw new Error(`no method ${service}.${method}`);
  return { request: protocolRegistry().resolve(service, m.requestType) as MessageType, response: protocolRegistry().resolve(service, m.responseType) as MessageType };
}

/** A unary method as the plugin's own server serves it. */
export interface UnaryMethodDefinition {
  name: string;
  /** The HTTP/2 `:path`: `/<service>/<method>`. */
  path: string;
  decode: (bytes: Uint8Array) => ProtoMessage;
  /** The response as one gRPC message frame (prefix and message in one buffer). */
  encodeFrame: (value: ProtoMessage) => Buffer;
}

/** The unary methods of a service (streaming ones are left out: the plugin serves none). */
export function unaryMethods(fullName: string): UnaryMethodDefinition[] {
  const out: UnaryMethodDefinition[] = [];
  for (const [name, method] of Object.entries(protocolRegistry().service(fullName))) {
    if (method.requestStream === true || method.responseStream === true) continue;
    const { request, response } = methodTypes(fullName, name);
    out.push({
      name,
      path: `/${fullName}/${name}`,
      decode: (bytes) => decode(request, bytes),
      encodeFrame: (value) => encodeFrame(response, value),
    });
  }
  return out;
}

/** Fully qualified service names. */
export const PROVIDER_SERVICE = 'tfplugin6.Provider';
export const CONTROLLER_SERVICE = 'plugin.GRPCController';
