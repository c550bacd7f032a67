/**
 * An open-loop load at a fixed rate with evenly spaced arrivals (what wrk2 does, in process):
 * request i is due at start + i / rate and is sent as soon as it is due, over at most
 * `connections` keep-alive sockets (a request that finds them all busy waits in the agent's
 * queue). Each latency is measured from when the request was due, not from when a socket took it,
 * so a server that falls behind is charged for the wait (no coordinated omission), and with
 * sub-millisecond resolution (autocannon records whole milliseconds).
 *
 * Node's timers fire at 1 ms granularity, so arrivals come in groups each millisecond and a request
 * may leave up to about a millisecond after it was due; that lag is counted against the server,
 * and the run reports how many requests left more than 1 ms late. (Polling the schedule with
 * setImmediate instead was tried: in three tries on a pinned core of a busy 2-core VM the load fell
 * behind by hundreds of milliseconds, so it was dropped.)
 */
import { execFile } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
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
   * Requests this process handed to node:http more than 1 ms after they were due (its own timer
   * or event loop was late), and the worst lag: load-side delays, charged to the server anyway.
   */
  lateSends: number;
  maxSendLagMs: number;
}

export async function pacedLoad(shape: RequestShape, options: PacedOptions): Promise<PacedRun> {
  const measured = Math.max(1, Math.round(options.rate * options.seconds));
  const warmup = Math.round(options.rate * (options.warmupSeconds ?? 0));
  const total = warmup + measured;
  const intervalMs = 1000 / options.rate;
  const url = new URL(shape.url);
  const body = Buffer.from(shape.body);
  const headers = { ...shape.headers, 'content-length': String(body.length) };
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  // One latency per measured request, bounded by the run (rate × seconds), in a typed array.
  const latencies = new Float64Array(measured);
  let answered = 0;
  let ok = 0;
  let failures = 0;
  let lastAnswer = 0;
  let lateSends = 0;
  let maxSendLagMs = 0;
  const start = performance.now() + 5;
  // When the measured part is due to begin.
  const measuredStart = start + warmup * intervalMs;

  return new Promise<PacedRun>((resolve) => {
    const settle = (due: number, timed: boolean, success: boolean) => {
      const now = performance.now();
      if (!success) failures++;
      else if (timed) latencies[ok++] = now - due;
      if (timed) lastAnswer = now;
      if (++answered === total) {
        agent.destroy();
        const sorted = latencies.subarray(0, ok).sort();
        const seconds = Math.max(lastAnswer - measuredStart, intervalMs) / 1000;
        resolve({
          opsPerSecond: ok / seconds,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          failures,
          requests: measured,
          lateSends,
          maxSendLagMs,
        });
      }
    };
    const send = (due: number, timed: boolean) => {
      let done = false;
      const finish = (success: boolean) => {
        if (done) return;
        done = true;
        settle(due, timed, success);
      };
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers, agent },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => finish(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300));
          res.on('error', () => finish(false));
        },
      );
      req.setTimeout(options.timeoutMs, () => {
        finish(false);
        req.destroy();
      });
      req.on('error', () => finish(false));
      req.end(body);
    };
    let sent = 0;
    const tick = () => {
      const now = performance.now();
      while (sent < total) {
        const due = start + sent * intervalMs;
        if (due > now) break;
        const timed = sent >= warmup;
        const lag = now - due;
        if (timed && lag > 1) lateSends++;
        if (timed && lag > maxSendLagMs) maxSendLagMs = lag;
        sent++;
        send(due, timed);
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
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
