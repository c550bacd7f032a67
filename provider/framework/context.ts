/**
 * What every resource, data source and ephemeral resource call receives: the client that
 * ConfigureProvider built (undefined until then) and the provider's default folder.
 */
import type { KmsClient } from '../client/kms-client.js';
import type { UnknownValue } from '../codec/values.js';

/** What ConfigureProvider established; handed to every resource call. */
export interface ProviderContext {
  /** Undefined until ConfigureProvider succeeded (or when its config was not yet known). */
  client: KmsClient | undefined;
  /** Default folder for resources that do not set folder_id; unknown while the provider config is. */
  folderId: string | UnknownValue | undefined;
}

/** A context whose client is there: what create/read/update/delete/open get. */
export interface ConfiguredContext extends ProviderContext {
  client: KmsClient;
}

/** What the CLI told us it can do (tfplugin6 ClientCapabilities; absent fields are false). */
export interface ClientCapabilities {
  /** Terraform >= 1.11 / OpenTofu >= 1.11: write-only attributes are kept out of plan and state. */
  writeOnlyAttributesAllowed: boolean;
  deferralAllowed: boolean;
}

/** Capabilities of a client that sent none (Terraform < 1.11, OpenTofu < 1.11). */
export const NO_CAPABILITIES: ClientCapabilities = { writeOnlyAttributesAllowed: false, deferralAllowed: false };
