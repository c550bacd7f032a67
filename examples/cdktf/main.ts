// A CDKTF app declaring two keys with the generated bindings (provider/gen/, from
// schemas/provider.schema.json). Synthesize with plain node — no cdktf CLI needed:
//
//   npx tsc -p examples/cdktf && node dist/examples/cdktf/main.js
//   cd examples/cdktf/cdktf.out/stacks/kms-keys && terraform init && terraform apply
//
// The same file works with cdktn (the community continuation of CDKTF): generate the bindings
// with `node dist/scripts/gen-cdktf.js --lib cdktn --out DIR` and import App/TerraformStack from
// 'cdktn' instead of 'cdktf'.
import { App, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { KmsProvider } from '../../provider/gen/providers/kms/provider/index.js';
import { SymmetricKey } from '../../provider/gen/providers/kms/symmetric-key/index.js';

/** Settings of the stack; every one can come from the environment. */
export interface KeysStackConfig {
  /** Folder that holds the keys. */
  folderId: string;
  /** Prefix of key names, so that several stacks can share a folder. */
  namePrefix: string;
}

/** Application keys: one for secrets (daily rotation, protected) and one for backups. */
export class KeysStack extends TerraformStack {
  readonly secrets: SymmetricKey;
  readonly backups: SymmetricKey;

  constructor(scope: Construct, id: string, config: KeysStackConfig) {
    super(scope, id);

    // endpoint and token fall back to KMS_ENDPOINT and KMS_TOKEN at plan time, so the
    // synthesized JSON never contains the token.
    new KmsProvider(this, 'kms', { folderId: config.folderId });

    this.secrets = new SymmetricKey(this, 'secrets', {
      name: `${config.namePrefix}secrets`,
      description: 'Envelope key for application secrets',
      defaultAlgorithm: 'AES_256',
      rotationPeriod: '24h',
      deletionProtection: true,
      labels: { env: 'prod', owner: 'platform-team' },
    });

    this.backups = new SymmetricKey(this, 'backups', {
      name: `${config.namePrefix}backups`,
      description: 'Key for nightly database backups',
      rotationPeriod: '8760h',
      deletionProtection: false,
      labels: { env: 'prod', tier: '' },
    });

    new TerraformOutput(this, 'secrets_key_id', { value: this.secrets.id });
    new TerraformOutput(this, 'backups_primary_version_id', { value: this.backups.primaryVersionId });
  }
}

/** Stack name; the synthesized configuration is cdktf.out/stacks/<name>/cdk.tf.json. */
export const STACK_NAME = 'kms-keys';

// CDKTF_OUTDIR is also what the cdktf CLI sets when it runs the app.
const app = new App({ outdir: process.env.CDKTF_OUTDIR ?? 'cdktf.out' });
new KeysStack(app, STACK_NAME, {
  folderId: process.env.KMS_FOLDER_ID ?? 'default',
  namePrefix: process.env.KMS_EXAMPLE_NAME_PREFIX ?? '',
});
app.synth();
