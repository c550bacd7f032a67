/** ValidateDataResourceConfig and ReadDataSource. */
import { isWhollyKnown } from '../codec/values.js';
import { errorDiag, hasErrors, notConfiguredDiag, type Diagnostic } from '../diagnostics.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { decodeObject, encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import type { ProviderServer } from './server.js';

export function validateDataResourceConfig(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.dataSources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('data source', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], found.cty, 'the data source configuration', diags);
  if (config) diags.push(...(found.definition.validate?.(config) ?? []));
  return withDiagnostics({}, diags);
}

export async function readDataSource(server: ProviderServer, req: ProtoMessage): Promise<ProtoMessage> {
  const found = server.dataSources.get(String(req['type_name']));
  if (!found) return withDiagnostics({}, [unknownTypeDiag('data source', req['type_name'])]);
  const diags: Diagnostic[] = [];
  const config = decodeObject(req['config'], found.cty, 'the data source configuration', diags);
  if (!config) {
    if (config === null) diags.push(errorDiag('Cannot read the data source', 'The configuration is null.'));
    return withDiagnostics({}, diags);
  }
  // Core reads a data source only once its config is wholly known (otherwise it waits for
  // apply), so an unknown here is a core bug, not a user error; refuse rather than guess.
  if (!isWhollyKnown(config)) return withDiagnostics({}, [errorDiag('Cannot read the data source', 'Its configuration is not wholly known yet.')]);
  const client = server.context.client;
  if (!client) return withDiagnostics({}, [notConfiguredDiag()]);
  const result = await found.definition.read(config, { ...server.context, client });
  diags.push(...result.diagnostics);
  if (result.value === null || hasErrors(diags)) return withDiagnostics({}, diags);
  return withDiagnostics({ state: encodeObject(result.value, found.cty, diags) }, diags);
}
