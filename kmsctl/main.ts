#!/usr/bin/env node
/** The `kmsctl` binary: runs the command line on this process's streams and exits with its code. */
import process from 'node:process';
import { runKmsctl } from './program.js';

const code = await runKmsctl(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });
// Let stdout drain (a pipe may still hold a large ciphertext), then exit.
process.stdout.write('', () => process.exit(code));
