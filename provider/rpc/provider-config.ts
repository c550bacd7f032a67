/** ValidateProviderConfig, ConfigureProvider and StopProvider. */
import type { Diagnostic } from '../diagnostics.js';
import { configureProvider as configure, validateProviderConfig as validate } from '../provider-config.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, withDiagnostics } from './convert.js';
import type { ProviderServer } from './server.js';

export function validateProviderConfig(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], server.providerCty, 'the provider configuration', diags);
  if (config) diags.push(...validate(config));
  return withDiagnostics({}, diags);
}

export async function configureProvider(server: ProviderServer, req: ProtoMessage): Promise<ProtoMessage> {
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], server.providerCty, 'the provider configuration', diags);
  if (!config) return withDiagnostics({}, diags);
  const result = await configure(config, server.env, server.stop.signal);
  server.context.client = result.context.client;
  server.context.folderId = result.context.folderId;
  return withDiagnostics({}, result.diagnostics);
}

/** StopProvider: cancel in-flight daemon calls; core is interrupting (Ctrl-C). */
export function stopProvider(server: ProviderServer): ProtoMessage {
  server.stop.abort();
  return {};
}
