/**
 * Where the RPC layer comes from. Run from the TypeScript build it is a plain import; in the
 * installed plugin, scripts/install-provider.mjs defines KMS_RPC_BUNDLE as the file name of the
 * second bundle beside the entry, which is then loaded through V8's code cache (code-cache.ts).
 */
import { fileURLToPath } from 'node:url';
import { requireBundle } from './code-cache.js';
import type * as Lazy from '../rpc/lazy.js';

declare const KMS_RPC_BUNDLE: string | undefined;

export type RpcLayer = typeof Lazy;

export async function loadRpcLayer(env: NodeJS.ProcessEnv): Promise<RpcLayer> {
  if (typeof KMS_RPC_BUNDLE === 'string') return requireBundle(fileURLToPath(new URL(KMS_RPC_BUNDLE, import.meta.url)), env) as RpcLayer;
  return import('../rpc/lazy.js');
}
