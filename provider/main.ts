#!/usr/bin/env node
// terraform-provider-kms: started by Terraform/OpenTofu as a go-plugin gRPC plugin.
import { runPlugin } from './protocol/plugin.js';

runPlugin().then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`terraform-provider-kms failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
