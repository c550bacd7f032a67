/** Every type this provider serves: the registry the RPC layer looks types up in. */
import type { DataSourceDefinition } from '../framework/data-source.js';
import type { EphemeralResourceDefinition } from '../framework/ephemeral.js';
import type { ResourceDefinition } from '../framework/resource.js';
import { symmetricKeyDataSource } from './data_source_symmetric_key.js';
import { dataKeyEphemeral } from './ephemeral_data_key.js';
import { secretPlaintextEphemeral } from './ephemeral_secret_plaintext.js';
import { secretCiphertextResource } from './secret_ciphertext.js';
import { symmetricKeyResource } from './symmetric_key.js';
import { iamBindingResource } from './symmetric_key_iam_binding.js';
import { iamMemberResource } from './symmetric_key_iam_member.js';

/** Managed resource types. */
export const RESOURCES: readonly ResourceDefinition[] = [symmetricKeyResource, iamBindingResource, iamMemberResource, secretCiphertextResource];
/** Data sources. */
export const DATA_SOURCES: readonly DataSourceDefinition[] = [symmetricKeyDataSource];
/** Ephemeral resources (Terraform >= 1.10, OpenTofu >= 1.11). */
export const EPHEMERAL_RESOURCES: readonly EphemeralResourceDefinition[] = [secretPlaintextEphemeral, dataKeyEphemeral];
