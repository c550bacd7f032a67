/**
 * The provider's RPC surface, for the plugin process and the tests: the handlers live in
 * provider/rpc/ (one file per RPC or concern), the plumbing in provider/framework/, the resources
 * in provider/resources/.
 */
export { createProviderHandlers, type UnaryHandler } from './rpc/handlers.js';
export { diagnosticToProto, pathToProto, schemaToProto } from './rpc/convert.js';
export { DATA_SOURCES, EPHEMERAL_RESOURCES, RESOURCES } from './resources/index.js';
