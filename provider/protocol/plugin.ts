/**
 * The plugin process: go-plugin handshake, (mutual) TLS, the gRPC server and the lifecycle rules
 * core relies on (PROTOCOL.md "Start-up and handshake").
 *
 * Core starts a plugin process per phase (plan ≈3, apply ≈4, destroy ≈5), so start-up is paid
 * many times: only what the handshake needs (cookie, certificate, listening socket) runs before
 * the handshake line; the protocol descriptor, the codecs and the resources load right after it,
 * while core connects, and the first call waits for them if it comes sooner.
 */
import { writeSync } from 'node:fs';
import type { ProtoMessage } from './definitions.js';
import { listenGrpc, type UnaryMethod } from './grpc-server.js';
import { checkMagicCookie, formatHandshakeLine, negotiateProtocolVersion } from './handshake.js';
import { codeCacheStatuses, noteServed } from './code-cache.js';
import { log, logs } from './log.js';
import { loadRpcLayer } from './rpc-layer.js';
import { generateServerCertificate } from './tls.js';
import { mark, markRpc, startTiming, timing } from './timing.js';

const PARENT_POLL_MS = 1000;

function exitNow(code: number): never {
  process.exit(code);
}

/** Every method this plugin serves, by `:path`, with the codecs of its messages. */
async function loadMethods(env: NodeJS.ProcessEnv, onShutdown: () => void): Promise<Map<string, UnaryMethod>> {
  const timed = timing();
  const started = performance.now();
  mark('RPC layer loading');
  const { unaryMethods, PROVIDER_SERVICE, CONTROLLER_SERVICE, createProviderHandlers } = await loadRpcLayer(env);
  if (logs('debug')) log('debug', 'RPC layer loaded', { load_ms: Math.round(performance.now() - started), at_ms: Math.round(performance.now()) });
  if (timed) mark(`RPC layer loaded (code cache: ${codeCacheStatuses().join(', ') || 'not used'})`);
  const handlers = createProviderHandlers(env);
  const methods = new Map<string, UnaryMethod>();
  const add = (
    service: string,
    implementations: Record<string, (request: ProtoMessage) => Promise<ProtoMessage>>,
    after: Record<string, () => void> = {},
  ): void => {
    for (const definition of unaryMethods(service)) {
      const { name, decode, encodeFrame } = definition;
      const implementation = implementations[name];
      if (!implementation) continue;
      let served = false;
      const handle = (request: unknown): Promise<ProtoMessage> => {
        if (!served) {
          served = true;
          noteServed(name);
        }
        return implementation(request as ProtoMessage);
      };
      methods.set(definition.path, {
        decode,
        encodeFrame: (response) => encodeFrame(response as ProtoMessage),
        // The first-RPC timing mark only when timing is on: no extra promise per call otherwise.
        handle: timed ? (request) => handle(request).finally(() => markRpc(name)) : handle,
        ...(after[name] && { afterResponse: after[name] }),
      });
    }
  };
  add(PROVIDER_SERVICE, handlers);
  // Reply first, then exit at once: core waits for the reply, then up to 2 s for the process to
  // end, and keeps its connection open meanwhile (so waiting for it to close would cost that much).
  add(CONTROLLER_SERVICE, { Shutdown: () => Promise.resolve({}) }, { Shutdown: onShutdown });
  return methods;
}

/**
 * Run the plugin until core shuts it down. Returns the exit code when the plugin refuses to
 * start (run by a human, or no common protocol version); otherwise the process ends via exit.
 */
export async function runPlugin(env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  // Read before anything slow: a core that dies while we start must not become "the parent".
  const parent = process.ppid;
  startTiming(env);
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

  const shutdown = (reason: string): void => {
    log('debug', `shutting down: ${reason}`);
    exitNow(0);
  };
  // While the methods load, calls wait for them; after that a call finds its method at once.
  let loading: Promise<Map<string, UnaryMethod>> | undefined;
  let methods: Map<string, UnaryMethod> | undefined;
  const lookup = (path: string): UnaryMethod | undefined | Promise<UnaryMethod | undefined> => {
    if (methods) return methods.get(path);
    loading ??= loadMethods(env, () => shutdown('GRPCController.Shutdown')).then((table) => (methods = table));
    return loading.then((table) => table.get(path));
  };

  const clientCert = env['PLUGIN_CLIENT_CERT'];
  const tls = clientCert !== undefined && clientCert !== '' && !env['TF_DISABLE_PLUGIN_TLS'];
  const cert = tls ? generateServerCertificate() : undefined;
  mark('certificate');
  const server = await listenGrpc(lookup, cert ? { keyPem: cert.keyPem, certPem: cert.certPem, clientCertPem: clientCert ?? '' } : undefined, (what) => {
    mark(what);
    if (logs('trace')) log('trace', what, { at_ms: Math.round(performance.now()) });
  });

  mark('listening');
  // Core's go-plugin client reads exactly this first line; nothing may precede it on stdout.
  // Written straight to fd 1: nothing else ever goes to stdout, and process.stdout on a pipe
  // would first build a stream for it (≈1–2 ms).
  writeSync(1, formatHandshakeLine({ network: 'tcp', host: '127.0.0.1', port: server.port }, cert?.der, negotiated.version));
  mark('handshake written');
  if (logs('debug')) log('debug', 'plugin listening', { port: server.port, tls, startup_ms: Math.round(performance.now()) });
  // Set up TLS and load the rest while core reads the line and connects.
  setImmediate(() => {
    server.prepare();
    void lookup('');
  });

  // Core kills plugins with SIGKILL to their pid; if core itself dies we are reparented: leave.
  if (process.ppid !== parent) shutdown('parent process exited');
  setInterval(() => {
    if (process.ppid !== parent) shutdown('parent process exited');
  }, PARENT_POLL_MS).unref();
  return undefined;
}
