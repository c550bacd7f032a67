/**
 * grpc-js service definitions for tfplugin6.Provider and plugin.GRPCController, built straight
 * from the embedded protobufjs descriptor (no .proto parsing, no @grpc/proto-loader: together
 * they cost ≈110 ms of every plugin process start, and core starts several per command).
 *
 * Messages cross this boundary as plain objects with the proto's snake_case field names, int64 as
 * JS numbers, enums as numbers and bytes as Buffers.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs/light.js';
import { PROTOCOL_DESCRIPTOR } from './proto/descriptor.js';

/** A decoded protocol message. */
export type ProtoMessage = Record<string, unknown>;

const CONVERSION: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: Buffer, defaults: false, oneofs: false };

let root: protobuf.Root | undefined;

/** The resolved protobuf root (built once per process). */
export function protocolRoot(): protobuf.Root {
  if (!root) {
    root = protobuf.Root.fromJSON(PROTOCOL_DESCRIPTOR);
    root.resolveAll();
  }
  return root;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encode a plain object as the named message (what a grpc client or server sends). */
export function encodeMessage(type: protobuf.Type, value: ProtoMessage): Buffer {
  return toBuffer(type.encode(type.fromObject(value)).finish());
}

/** Decode bytes of the named message into a plain object. */
export function decodeMessage(type: protobuf.Type, bytes: Uint8Array): ProtoMessage {
  return type.toObject(type.decode(bytes), CONVERSION);
}

/** A grpc-js service definition for every method of a protobuf service. */
export function serviceDefinition(fullName: string): ServiceDefinition {
  const service = protocolRoot().lookupService(fullName);
  const definition: Record<string, MethodDefinition<ProtoMessage, ProtoMessage>> = {};
  for (const method of service.methodsArray) {
    const request = method.resolvedRequestType;
    const response = method.resolvedResponseType;
    if (!request || !response) throw new Error(`unresolved types in ${fullName}.${method.name}`);
    definition[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: (value) => encodeMessage(request, value),
      requestDeserialize: (bytes) => decodeMessage(request, bytes),
      responseSerialize: (value) => encodeMessage(response, value),
      responseDeserialize: (bytes) => decodeMessage(response, bytes),
    };
  }
  return definition;
}

/** Fully qualified service names. */
export const PROVIDER_SERVICE = 'tfplugin6.Provider';
export const CONTROLLER_SERVICE = 'plugin.GRPCController';
