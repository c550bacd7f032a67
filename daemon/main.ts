#!/usr/bin/env node
import { runMain } from './cli.js';

process.exitCode = await runMain(process.argv.slice(2), process.env);
