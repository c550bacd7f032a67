/**
 * The tfplugin6.Provider handlers: one function per RPC (in the files beside this one), wrapped
 * so that nothing throws across gRPC — an unexpected exception is still an error diagnostic.
 */
import { errorDiag } from '../diagnostics.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { log, logs } from '../protocol/log.js';
import { DATA_SOURCES, EPHEMERAL_RESOURCES, RESOURCES } from '../resources/index.js';
import { applyResourceChange } from './apply-resource-change.js';
import { withDiagnostics } from './convert.js';
import { readDataSource, validateDataResourceConfig } from './data-source.js';
import { closeEphemeralResource, openEphemeralResource, renewEphemeralResource, validateEphemeralResourceConfig } from './ephemeral-resource.js';
import { importResourceState } from './import-resource-state.js';
import { planResourceChange } from './plan-resource-change.js';
import { configureProvider, stopProvider, validateProviderConfig } from './provider-config.js';
import { readResource } from './read-resource.js';
import { getFunctions, getMetadata, getProviderSchema, getResourceIdentitySchemas } from './schema.js';
import { ProviderServer } from './server.js';
import { upgradeResourceIdentity, upgradeResourceState } from './upgrade-resource-state.js';
import { validateResourceConfig } from './validate-resource-config.js';

/** A unary handler on plain protocol objects. */
export type UnaryHandler = (request: ProtoMessage) => Promise<ProtoMessage>;

type Rpc = (server: ProviderServer, request: ProtoMessage) => ProtoMessage | Promise<ProtoMessage>;

const RPCS: Record<string, Rpc> = {
  GetMetadata: getMetadata,
  GetProviderSchema: getProviderSchema,
  GetResourceIdentitySchemas: getResourceIdentitySchemas,
  GetFunctions: getFunctions,
  ValidateProviderConfig: validateProviderConfig,
  ConfigureProvider: configureProvider,
  StopProvider: stopProvider,
  ValidateResourceConfig: validateResourceConfig,
  UpgradeResourceState: upgradeResourceState,
  UpgradeResourceIdentity: upgradeResourceIdentity,
  ReadResource: readResource,
  PlanResourceChange: planResourceChange,
  ApplyResourceChange: applyResourceChange,
  ImportResourceState: importResourceState,
  ValidateDataResourceConfig: validateDataResourceConfig,
  ReadDataSource: readDataSource,
  ValidateEphemeralResourceConfig: validateEphemeralResourceConfig,
  OpenEphemeralResource: openEphemeralResource,
  RenewEphemeralResource: renewEphemeralResource,
  CloseEphemeralResource: closeEphemeralResource,
};

/** Build the handlers of one plugin process (one provider configuration). */
export function createProviderHandlers(env: NodeJS.ProcessEnv = process.env): Record<string, UnaryHandler> {
  const server = new ProviderServer(env, RESOURCES, DATA_SOURCES, EPHEMERAL_RESOURCES);
  const handlers: Record<string, UnaryHandler> = {};
  // The per-call debug line and its timing only when core logs at all.
  const debug = logs('debug');
  for (const [name, rpc] of Object.entries(RPCS)) {
    handlers[name] = async (request) => {
      const started = debug ? performance.now() : 0;
      try {
        const response = await rpc(server, request);
        if (debug) log('debug', `${name} done`, { rpc: name, ms: Math.round(performance.now() - started) });
        return response;
      } catch (err) {
        log('error', `${name} failed`, { rpc: name, error: (err as Error).stack ?? String(err) });
        if (name === 'StopProvider') return { Error: (err as Error).message };
        return withDiagnostics({}, [errorDiag('Internal provider error', `${name}: ${(err as Error).message}`)]);
      }
    };
  }
  return handlers;
}
