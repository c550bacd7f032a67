/**
 * Everything the plugin needs after its handshake: the protocol descriptor and codecs, the RPC
 * handlers, the resources. scripts/install-provider.mjs bundles this module as a second file that
 * the plugin loads once it has printed its handshake, so start-up compiles only the small rest.
 */
export { CONTROLLER_SERVICE, PROVIDER_SERVICE, unaryMethods } from '../protocol/definitions.js';
export { createProviderHandlers } from './handlers.js';
