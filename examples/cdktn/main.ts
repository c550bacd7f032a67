// A cdktn app (cdktn is the community continuation of CDKTF) with the generated cdktn bindings
// (provider/gen-cdktn/), which, unlike CDKTF's, know ephemeral resources and write-only
// attributes. It declares a key, asks for a fresh data key as an ephemeral resource, and keeps
// only the data key's ciphertext: the plaintext goes to the write-only `plaintext_wo` of a
// kms_secret_ciphertext, so it is in neither the synthesized JSON, the plan nor the state.
// Needs Terraform >= 1.11 or OpenTofu >= 1.11. Synthesize with plain node — no CLI of cdktn needed:
//
//   npx tsc -p examples/cdktn && node dist/examples/cdktn/main.js
//   cd cdktn.out/stacks/kms-envelope && terraform init && terraform apply
import { App, TerraformOutput, TerraformStack } from 'cdktn';
import type { Construct } from 'constructs';
import { EphemeralKmsDataKey } from '../../provider/gen-cdktn/providers/kms/ephemeral-kms-data-key/index.js';
import { KmsProvider } from '../../provider/gen-cdktn/providers/kms/provider/index.js';
import { SecretCiphertext } from '../../provider/gen-cdktn/providers/kms/secret-ciphertext/index.js';
import { SymmetricKey } from '../../provider/gen-cdktn/providers/kms/symmetric-key/index.js';

/** Envelope encryption set up as code: a key and one data key wrapped by it. */
export class EnvelopeStack extends TerraformStack {
  constructor(scope: Construct, id: string, folderId: string) {
    super(scope, id);
    // endpoint and token fall back to KMS_ENDPOINT and KMS_TOKEN, so the JSON never holds the token.
    new KmsProvider(this, 'kms', { folderId });

    const key = new SymmetricKey(this, 'envelope', {
      name: 'envelope',
      description: 'Wraps the data keys of the application',
      defaultAlgorithm: 'AES_256',
      rotationPeriod: '720h',
    });

    // Opened at apply time, never stored.
    const dataKey = new EphemeralKmsDataKey(this, 'data_key', { keyId: key.id, aadContext: 'app-data-key' });

    // The data key's plaintext encrypted under the key; bump plaintextWoVersion to replace it.
    const wrapped = new SecretCiphertext(this, 'wrapped_data_key', {
      keyId: key.id,
      aadContext: 'wrapped-data-key',
      plaintextWo: dataKey.plaintext,
      plaintextWoVersion: 1,
    });

    new TerraformOutput(this, 'key_id', { value: key.id });
    new TerraformOutput(this, 'wrapped_data_key_ciphertext', { value: wrapped.ciphertext });
  }
}

/** Stack name; the synthesized configuration is cdktn.out/stacks/<name>/cdk.tf.json. */
export const STACK_NAME = 'kms-envelope';

// cdktn checks features against the CLIs a project targets: declare what this stack needs.
const app = new App({
  outdir: process.env.CDKTN_OUTDIR ?? 'cdktn.out',
  context: { targetVersions: { terraform: '>=1.11.0', opentofu: '>=1.11.0' } },
});
new EnvelopeStack(app, STACK_NAME, process.env.KMS_FOLDER_ID ?? 'default');
app.synth();
