/** The `kmsd` command line: start the daemon (default) or run a maintenance subcommand. */
import { pino } from 'pino';
import { runAuditCommand } from './audit/cli.js';
import { ConfigError, USAGE, parseConfig } from './config.js';
import { runHsmCommand } from './keystore/status-cli.js';
import { runClusterCommand } from './cluster/status-cli.js';
import { startKmsd } from './kmsd.js';

export async function runMain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'audit') return runAuditCommand(argv.slice(1));
  if (argv[0] === 'hsm') return runHsmCommand(argv.slice(1));
  if (argv[0] === 'cluster') return runClusterCommand(argv.slice(1), env);
  let config;
  try {
    config = parseConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError && err.message === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    process.stderr.write(`kmsd: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const logger = pino({ level: config.logLevel, base: { service: 'kmsd' } });
  let running;
  try {
    running = await startKmsd(config, { logger });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ err: { name: (err as Error).name, message } }, 'kmsd could not start');
    process.stderr.write(`kmsd: ${message}\n`);
    return 1;
  }
  logger.info(
    {
      url: running.url,
      ...(running.grpcAddress !== undefined ? { grpc: running.grpcAddress, grpcAdvertise: running.grpcAdvertise } : {}),
      dataDir: running.dataDir,
      keystore: config.keystore,
      ...(running.cluster !== null ? { store: 'postgresql', instanceId: running.cluster.instanceId, leader: running.cluster.lease.isLeader() } : {}),
      unsafeTestClock: config.unsafeTestClock,
      restoreWindowSeconds: config.restoreWindowSeconds,
    },
    'kmsd listening',
  );
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down: finishing in-flight requests');
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  await running.stop();
  logger.info({}, 'kmsd stopped');
  return 0;
}
