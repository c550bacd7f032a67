/** Runs the daemon in the test's own process on port 0, with a fresh data dir. */
import { parseConfig, type KmsdConfig } from '../../daemon/config.js';
import { startKmsd, type RunningKmsd, type StartOptions } from '../../daemon/kmsd.js';
import { newTestToken, tempDir } from './daemon.js';
import { storeArgs } from './postgres.js';

export const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface TestKmsd extends RunningKmsd {
  token: string;
  config: KmsdConfig;
}

export async function startTestKmsd(
  options: { dataDir?: string; args?: string[]; token?: string; start?: Partial<StartOptions> } = {},
): Promise<TestKmsd> {
  const token = options.token ?? newTestToken();
  const dataDir = options.dataDir ?? tempDir();
  const config = parseConfig(
    ['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--unsafe-test-clock', ...(await storeArgs(dataDir, options.args)), ...(options.args ?? [])],
    // gRPC off unless asked for (--grpc-listen 127.0.0.1:0): the default port is shared.
    { KMS_BOOTSTRAP_TOKEN: token, KMS_GRPC_LISTEN: 'off' },
  );
  const running = await startKmsd(config, { logger: silentLogger, ...options.start });
  return { ...running, token, config };
}
