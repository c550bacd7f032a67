/**
 * Service definitions for tfplugin6.Provider and plugin.GRPCController, built straight from the
 * embedded descriptor (no .proto parsing, no @grpc/proto-loader, no protobufjs at run time:
 * together they cost ≈170 ms of every plugin process start, and core starts several per
 * command). The shape is grpc-js's MethodDefinition, which the tests' grpc-js client also uses.
 *
 * Messages cross this boundary as plain objects with the proto's snake_case field names, int64 as
 * JS numbers, enums as numbers and bytes as Buffers.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
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

/** A grpc-js-shaped service definition for every method of a service. */
export function serviceDefinition(fullName: string): ServiceDefinition {
  const definition: Record<string, MethodDefinition<ProtoMessage, ProtoMessage>> = {};
  for (const [name, method] of Object.entries(protocolRegistry().service(fullName))) {
    const { request, response } = methodTypes(fullName, name);
    definition[name] = {
      path: `/${fullName}/${name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: (value) => encode(request, value),
      requestDeserialize: (bytes) => decode(request, bytes),
      responseSerialize: (value) => encode(response, value),
      responseDeserialize: (bytes) => decode(response, bytes),
    };
  }
  return definition;
}

/** Fully qualified service names. */
export const PROVIDER_SERVICE = 'tfplugin6.Provider';
export const CONTROLLER_SERVICE = 'plugin.GRPCController';
