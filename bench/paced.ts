/**
 * An open-loop load at a fixed rate with evenly spaced arrivals (what wrk2 does, in process):
 * request i is due at start + i / rate and is sent as soon as it is due, over at most
 * `connections` keep-alive sockets (a request that finds them all busy waits for the first to be
 * free). Each latency is measured from when the request was due, not from when a socket took it,
 * so a server that falls behind is charged for the wait (no coordinated omission), and with
 * sub-millisecond resolution (autocannon records whole milliseconds).
 *
 * Node's timers fire at 1 ms granularity, so arrivals come in groups each millisecond and a request
 * may leave up to about a millisecond after it was due; that lag is counted against the server,
 * and the run reports how many requests left more than 1 ms late. (Polling the schedule with
 * setImmediate instead was tried: in three tries on a pinned core of a busy 2-core VM the load fell
 * behind by hundreds of milliseconds, so it was dropped.)
 *
 * The sockets are node:net with the REST client's own HTTP/1.1 serialiser and answer parser
 * (provider/client/http1.ts: Content-Length, chunked and read-to-end answers), the request's
 * bytes built once. Measured against the ceiling at 5,000/s (256 B, the load on its own core),
 * node:http's ClientRequest, Agent and IncomingMessage streams cost the load 133–144 µs of CPU per
 * request against 75–81 µs here (its main thread busy ≈ 13 µs; the rest kernel time), its worst send lag was
 * 12.6–17.6 ms against 5.4–5.8, and the ceiling's p99 read 13–19 ms against 4.7–5.9: those p99s
 * were the load's own.
 */
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { AnswerParser, serializeRequest, type HttpAnswer } from '../provider/client/http1.js';
import { percentile } from './stats.js';

/** One request of a load: where to POST it, with which headers and body. */
export interface RequestShape {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface PacedOptions {
  /** Requests per second, spread evenly. */
  rate: number;
  seconds: number;
  connections: number;
  /** A request that has no answer after this long counts as failed. */
  timeoutMs: number;
  /**
   * Seconds of load at the same rate before the measured part, sent but not timed (wrk2 calibrates
   * the same way): the sockets connect and both sides' code is compiled before anything counts.
   * Failures in it still count.
   */
  warmupSeconds?: number;
}

export interface PacedRun {
  /** 2xx answers per second over the run (first due time to last answer). */
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, socket errors and timeouts. */
  failures: number;
  requests: number;
  /**
   * Requests this process handed to a connection more than 1 ms after they were due (its own timer
   * or event loop was late), and the worst lag: load-side delays, charged to the server anyway.
   */
  lateSends: number;
  maxSendLagMs: number;
}

/** One keep-alive connection of the load and the request it carries, if any. */
interface Connection {
  socket: Socket;
  /** Index of the request it carries (also while it connects), -1 when idle. */
  request: number;
  parser: AnswerParser | undefined;
  sentAt: number;
}

export async function pacedLoad(shape: RequestShape, options: PacedOptions): Promise<PacedRun> {
  const measured = Math.max(1, Math.round(options.rate * options.seconds));
  const warmup = Math.round(options.rate * (options.warmupSeconds ?? 0));
  const total = warmup + measured;
  const intervalMs = 1000 / options.rate;
  const url = new URL(shape.url);
  // The same bytes for every request, serialised once (Content-Length added there).
  const wire = Buffer.from(serializeRequest('POST', url, shape.headers, shape.body, false), 'utf8');
  const port = Number(url.port || 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // One latency per measured request, bounded by the run (rate × seconds), in a typed array.
  const latencies = new Float64Array(measured);
  // Requests due while every connection is busy, oldest first; each index enters once, so a
  // ring of `total` slots never overflows.
  const waiting = new Int32Array(total);
  let waitHead = 0;
  let waitTail = 0;
  const connections = new Set<Connection>();
  const idle: Connection[] = [];
  let answered = 0;
  let ok = 0;
  let failures = 0;
  let lastAnswer = 0;
  let lateSends = 0;
  let maxSendLagMs = 0;
  const start = performance.now() + 5;
  // When the measured part is due to begin.
  const measuredStart = start + warmup * intervalMs;
  const dueOf = (index: number) => start + index * intervalMs;

  return new Promise<PacedRun>((resolve) => {
    const settle = (index: number, success: boolean) => {
      const now = performance.now();
      const timed = index >= warmup;
      if (!success) failures++;
      else if (timed) latencies[ok++] = now - dueOf(index);
      if (timed) lastAnswer = now;
      if (++answered < total) return;
      clearInterval(watchdog);
      for (const connection of connections) connection.socket.destroy();
      connections.clear();
      const sorted = latencies.subarray(0, ok).sort();
      const seconds = Math.max(lastAnswer - measuredStart, intervalMs) / 1000;
      resolve({ opsPerSecond: ok / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), failures, requests: measured, lateSends, maxSendLagMs });
    };
    const carry = (connection: Connection, index: number) => {
      connection.request = index;
      connection.parser = new AnswerParser(false);
      connection.sentAt = performance.now();
      connection.socket.write(wire);
    };
    // A connection is free: it takes the oldest waiting request or goes idle.
    const free = (connection: Connection) => {
      connection.request = -1;
      connection.parser = undefined;
      if (waitHead < waitTail) carry(connection, waiting[waitHead++] ?? 0);
      else idle.push(connection);
    };
    const fail = (connection: Connection) => {
      if (!connections.delete(connection)) return;
      const index = connection.request;
      connection.request = -1;
      const at = idle.indexOf(connection);
      if (at >= 0) idle.splice(at, 1);
      connection.socket.destroy();
      if (index >= 0) settle(index, false);
      // Waiting requests get a new connection in its place.
      if (waitHead < waitTail) open(waiting[waitHead++] ?? 0);
    };
    const open = (index: number) => {
      const socket = connect({ host, port, noDelay: true });
      // A connection holds its first request while it connects.
      const connection: Connection = { socket, request: index, parser: undefined, sentAt: 0 };
      connections.add(connection);
      socket.on('connect', () => carry(connection, index));
      socket.on('data', (bytes: Buffer) => {
        const parser = connection.parser;
        if (parser === undefined) return fail(connection);
        let answer: HttpAnswer | undefined;
        try {
          answer = parser.push(bytes);
        } catch {
          return fail(connection);
        }
        if (answer === undefined) return;
        const done = connection.request;
        if (answer.close) {
          connection.request = -1;
          fail(connection);
        } else {
          free(connection);
        }
        settle(done, answer.status >= 200 && answer.status < 300);
      });
      socket.on('error', () => fail(connection));
      socket.on('close', () => fail(connection));
    };
    const dispatch = (index: number) => {
      const connection = idle.pop();
      if (connection !== undefined) carry(connection, index);
      else if (connections.size < options.connections) open(index);
      else waiting[waitTail++] = index;
    };
    // A request without an answer after timeoutMs fails and its connection is dropped.
    const watchdog = setInterval(() => {
      const now = performance.now();
      for (const connection of connections) {
        if (connection.request >= 0 && now - Math.max(connection.sentAt, dueOf(connection.request)) > options.timeoutMs) fail(connection);
      }
    }, 100);
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total) {
        const due = dueOf(sent);
        if (due > now) break;
        const lag = now - due;
        if (sent >= warmup) {
          if (lag > 1) lateSends++;
          if (lag > maxSendLagMs) maxSendLagMs = lag;
        }
        dispatch(sent++);
      }
      if (sent < total) setTimeout(tick, Math.max(0, dueOf(sent) - performance.now()));
    };
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
}

/** What a child load process is asked to do: `runs` paced runs of one request shape. */
export interface PacedJob {
  shape: RequestShape;
  options: PacedOptions;
  runs: number;
}

/**
 * Runs the job in a fresh Node process (inheriting this one's CPU affinity), so the load's own
 * heap and compiled code are not the leftovers of the closed-loop load that ran before it in the
 * bench process: its garbage collections and deoptimisations would be charged to the server.
 */
export function pacedLoadInChild(job: PacedJob): Promise<PacedRun[]> {
  const script = fileURLToPath(import.meta.url);
  const budgetMs = job.runs * ((job.options.seconds + (job.options.warmupSeconds ?? 0)) * 1000 + job.options.timeoutMs) + 30000;
  return new Promise((resolveRuns, reject) => {
    const child = execFile(process.execPath, [script], { timeout: budgetMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`paced load failed: ${error.message}\n${stderr}`));
      else resolveRuns(JSON.parse(stdout) as PacedRun[]);
    });
    child.stdin?.end(JSON.stringify(job));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const job = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PacedJob;
  const runs: PacedRun[] = [];
  for (let run = 0; run < job.runs; run++) runs.push(await pacedLoad(job.shape, job.options));
  process.stdout.write(JSON.stringify(runs));
}
