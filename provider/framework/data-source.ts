/**
 * Data sources: a definition with validation and a read of a wholly known configuration. The
 * RPC layer decodes, refuses unknowns (core reads a data source only once its config is known)
 * and encodes; the definition only looks the object up.
 */
import type { TfObject } from '../codec/values.js';
import type { Diagnostic } from '../diagnostics.js';
import type { ConfiguredContext, ProviderContext } from './context.js';
import type { Result } from './result.js';

/** One data source type. */
export interface DataSourceDefinition<S extends TfObject = TfObject, C extends TfObject = TfObject> {
  readonly typeName: string;
  /** Checks without the daemon; unknown values are skipped. */
  validate?(config: C): Diagnostic[];
  /** The state for a wholly known config, or null with error diagnostics. */
  read(config: S, ctx: ConfiguredContext & ProviderContext): Promise<Result<S | null>>;
}

/** Type a data source definition against its generated models, then erase them for the registry. */
export function defineDataSource<S extends TfObject, C extends TfObject>(definition: DataSourceDefinition<S, C>): DataSourceDefinition {
  return definition;
}
