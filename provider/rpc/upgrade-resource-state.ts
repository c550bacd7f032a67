/** UpgradeResourceState and UpgradeResourceIdentity: JSON from the state file to msgpack. */
import { CodecError } from '../codec/cty.js';
import { decodeJsonValue } from '../codec/dynamic-value.js';
import { isObject, type TfValue } from '../codec/values.js';
import { errorDiag, type Diagnostic } from '../diagnostics.js';
import { withoutWriteOnly } from '../framework/resource.js';
import type { ProtoMessage } from '../protocol/definitions.js';
import { encodeObject, unknownTypeDiag, withDiagnostics } from './convert.js';
import type { ProviderServer } from './server.js';

/** Called on every plan for every instance; our schemas are all version 0, so it only converts. */
export function upgradeResourceState(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const typeName = String(req['type_name']);
  const found = server.resources.get(typeName);
  if (!found) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const version = typeof req['version'] === 'number' ? req['version'] : 0;
  if (version > found.type.schema.version) {
    return withDiagnostics({}, [
      errorDiag(
        'State written by a newer provider',
        `The state has schema version ${version}; this provider knows up to ${found.type.schema.version}. Upgrade the provider.`,
      ),
    ]);
  }
  const raw = req['raw_state'] as { json?: Uint8Array; flatmap?: Record<string, string> } | undefined;
  if (!raw?.json || raw.json.length === 0) {
    const detail = raw?.flatmap && Object.keys(raw.flatmap).length > 0 ? 'Legacy flatmap state is not supported.' : 'The stored state is empty.';
    return withDiagnostics({}, [errorDiag('Cannot upgrade the resource state', detail)]);
  }
  const diags: Diagnostic[] = [];
  let state: TfValue;
  try {
    state = decodeJsonValue(raw.json, found.cty);
  } catch (err) {
    const path = err instanceof CodecError && err.path.length > 0 ? err.path : undefined;
    return withDiagnostics({}, [errorDiag('Cannot decode the stored state', (err as Error).message, path)]);
  }
  const upgraded = encodeObject(withoutWriteOnly(found.type, isObject(state) ? state : null), found.cty, diags);
  return withDiagnostics({ upgraded_state: upgraded }, diags);
}

/** UpgradeResourceIdentity: every identity schema is version 0, so it only converts. */
export function upgradeResourceIdentity(server: ProviderServer, req: ProtoMessage): ProtoMessage {
  const found = server.resources.get(String(req['type_name']));
  if (!found?.identityCty) return withDiagnostics({}, [unknownTypeDiag('resource type', req['type_name'])]);
  const version = typeof req['version'] === 'number' ? req['version'] : 0;
  if (version > (found.type.identitySchema?.version ?? 0)) {
    return withDiagnostics({}, [errorDiag('Identity written by a newer provider', `The stored identity has version ${version}. Upgrade the provider.`)]);
  }
  const raw = req['raw_identity'] as Uint8Array | undefined;
  const diags: Diagnostic[] = [];
  let identity: TfValue;
  try {
    identity = decodeJsonValue(raw ?? Buffer.from('null'), found.identityCty);
  } catch (err) {
    return withDiagnostics({}, [errorDiag('Cannot decode the stored identity', (err as Error).message)]);
  }
  const data = encodeObject(isObject(identity) ? identity : null, found.identityCty, diags, 'the resource identity');
  return withDiagnostics({ upgraded_identity: { identity_data: data } }, diags);
}
