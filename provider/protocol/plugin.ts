/**
 * The plugin process: go-plugin handshake, (mutual) TLS, the gRPC server and the lifecycle rules
 * core relies on (PROTOCOL.md "Start-up and handshake").
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { createProviderHandlers, type UnaryHandler } from '../server.js';
import { CONTROLLER_SERVICE, PROVIDER_SERVICE, serviceDefinition, type ProtoMessage } from './definitions.js';
import { checkMagicCookie, formatHandshakeLine, negotiateProtocolVersion } from './handshake.js';
import { log } from './log.js';
import { generateServerCertificate } from './tls.js';

/** Core's client allows 256 MiB messages; match it so large plans are not refused here. */
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;
const PARENT_POLL_MS = 1000;

function unaryImplementation(handlers: Record<string, UnaryHandler>): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers)) {
    impl[name] = (call: ServerUnaryCall<ProtoMessage, ProtoMessage>, callback: sendUnaryData<ProtoMessage>) => {
      handler(call.request).then(
        (response) => callback(null, response),
        // Handlers never reject (they turn failures into diagnostics); this is the last resort.
        (err: unknown) => callback({ code: status.INTERNAL, details: String(err) }),
      );
    };
  }
  return impl;
}

function exitNow(code: number): never {
  process.exit(code);
}

/**
 * Run the plugin until core shuts it down. Returns the exit code when the plugin refuses to
 * start (run by a human, or no common protocol version); otherwise the process ends via exit.
 */
export async function runPlugin(env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  const cookieProblem = checkMagicCookie(env);
  if (cookieProblem) {
    process.stderr.write(cookieProblem);
    return 1;
  }
  const negotiated = negotiateProtocolVersion(env);
  if ('error' in negotiated) {
    log('error', negotiated.error);
    process.stderr.write(`${negotiated.error}\n`);
    return 1;
  }

  // Ctrl-C reaches the whole process group; core then calls StopProvider and Shutdown itself.
  process.on('SIGINT', () => log('debug', 'SIGINT ignored; waiting for core to stop the provider'));

  const server = new Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
  server.addService(serviceDefinition(PROVIDER_SERVICE), unaryImplementation(createProviderHandlers(env)));

  let shuttingDown = false;
  const shutdown = (reason: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log('debug', `shutting down: ${reason}`);
    setTimeout(() => {
      server.forceShutdown();
      exitNow(0);
    }, 1000);
    server.tryShutdown(() => exitNow(0));
  };
  server.addService(
    serviceDefinition(CONTROLLER_SERVICE),
    unaryImplementation({
      Shutdown: () => {
        // Reply first, then stop: core waits for the reply, then up to 2 s for the exit.
        setImmediate(() => shutdown('GRPCController.Shutdown'));
        return Promise.resolve({});
      },
    }),
  );

  const clientCert = env['PLUGIN_CLIENT_CERT'];
  const tls = clientCert !== undefined && clientCert !== '' && !env['TF_DISABLE_PLUGIN_TLS'];
  const cert = tls ? generateServerCertificate() : undefined;
  const credentials = cert
    ? ServerCredentials.createSsl(Buffer.from(clientCert ?? ''), [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }], true)
    : ServerCredentials.createInsecure();

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
  });

  // Core's go-plugin client reads exactly this first line; nothing may precede it on stdout.
  process.stdout.write(formatHandshakeLine({ network: 'tcp', host: '127.0.0.1', port }, cert?.der, negotiated.version));
  log('debug', 'plugin listening', { port, tls, startup_ms: Math.round(performance.now()) });

  // Core kills plugins with SIGKILL to their pid; if core itself dies we are reparented: leave.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown('parent process exited');
  }, PARENT_POLL_MS).unref();
  return undefined;
}
