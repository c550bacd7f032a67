/**
 * The unmodified Yandex Cloud Python SDK (`yandexcloud` from PyPI, in the venv .ci/run creates)
 * against kmsd with SoftHSM2: test/python/test_yandexcloud_sdk.py runs under pytest against the
 * daemon started here; every pytest test must pass (their names and results are printed).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import { api, REPO_ROOT } from '../support/daemon.js';
import { sdkPython, startGrpcKmsd, type GrpcKmsd } from '../support/grpc.js';

let kmsd: GrpcKmsd;

beforeAll(async () => {
  kmsd = await startGrpcKmsd();
}, 60_000);

afterAll(async () => {
  await kmsd?.stop();
});

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolveRun({ code, output }));
  });
}

describe('the Yandex Cloud Python SDK (yandexcloud) against kmsd', () => {
  it('runs the whole scenario of test/python/test_yandexcloud_sdk.py', async () => {
    const python = sdkPython();
    expect(existsSync(python) ? python : `${python} is missing: run .ci/run, or set KMS_PYTHON to a Python with yandexcloud and pytest`).toBe(python);
    const sa = await api(kmsd, 'POST', ADMIN_PATHS.serviceAccounts, { name: 'python-sdk-outsider' });
    const saToken = await api(kmsd, 'POST', ADMIN_PATHS.tokens, { subject: `serviceAccount:${sa.body.id}` });
    const version = await run(python, ['-c', 'import importlib.metadata as m; print("yandexcloud", m.version("yandexcloud"), "grpcio", m.version("grpcio"), "protobuf", m.version("protobuf"))'], process.env);
    console.log(version.output.trim());
    const { code, output } = await run(python, ['-m', 'pytest', '-v', '-p', 'no:cacheprovider', join('test', 'python', 'test_yandexcloud_sdk.py')], {
      ...process.env,
      KMS_GRPC_ENDPOINT: kmsd.endpoint,
      KMS_GRPC_CA: kmsd.caPath,
      KMS_TOKEN: kmsd.token,
      KMS_SA_ID: sa.body.id,
      KMS_SA_TOKEN: saToken.body.token,
      KMS_FOLDER: 'python-sdk',
      PYTHONDONTWRITEBYTECODE: '1',
    });
    console.log(output);
    expect(code).toBe(0);
    const summary = /(\d+) passed/.exec(output);
    expect(Number(summary?.[1] ?? 0)).toBe(7);
    expect(output).not.toMatch(/\d+ (failed|skipped|error)/);
  }, 120_000);
});
