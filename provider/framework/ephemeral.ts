/**
 * Ephemeral resources (Terraform >= 1.10, OpenTofu >= 1.11): opened in every phase that needs
 * them, their result is never persisted in a plan or state. A definition validates and opens;
 * the RPC layer decodes, encodes and skips opening while the config is not wholly known.
 */
import type { TfObject } from '../codec/values.js';
import type { Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext } from './context.js';
import type { Result } from './result.js';

/** One ephemeral resource type. */
export interface EphemeralResourceDefinition<S extends TfObject = TfObject, C extends TfObject = TfObject> {
  readonly typeName: string;
  /** Checks without the daemon; unknown values are skipped. */
  validate?(config: C): Diagnostic[];
  /** The result object for a wholly known config (config values plus computed ones). */
  open(config: S, ctx: ConfiguredContext): Promise<Result<S | null>>;
}

/** Type an ephemeral resource definition against its generated models, then erase them. */
export function defineEphemeralResource<S extends TfObject, C extends TfObject>(definition: EphemeralResourceDefinition<S, C>): EphemeralResourceDefinition {
  return definition;
}
