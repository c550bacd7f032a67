/**
 * Start-up timing of one plugin process, for profiling only: with KMS_PLUGIN_TIMING=1 in core's
 * environment (core passes it on to the plugin) the plugin writes one JSON line to stderr when it
 * exits, `{"@message":"plugin timing","marks":[[name, wall_ms, cpu_ms], …]}` (a log line): wall milliseconds
 * since the process started (performance.now()) and CPU milliseconds (user + system, all threads)
 * at each mark. Off, a mark costs one property read.
 */

import { log } from './log.js';

type Mark = [name: string, wallMs: number, cpuMs: number];

let marks: Mark[] | undefined;
let firstRpc = true;

/** Called first thing: the process' own boot (Node, the entry bundle) is the first mark. */
export function startTiming(env: NodeJS.ProcessEnv): void {
  if (env['KMS_PLUGIN_TIMING'] !== '1' || marks) return;
  marks = [];
  mark('entry');
  process.once('exit', () => {
    mark('exit');
    const rounded = marks?.map(([name, wall, cpu]) => [name, Math.round(wall * 10) / 10, Math.round(cpu * 10) / 10]);
    log('info', 'plugin timing', { marks: rounded });
  });
}

/** Whether this process records timing marks (KMS_PLUGIN_TIMING=1). */
export function timing(): boolean {
  return marks !== undefined;
}

export function mark(name: string): void {
  if (!marks) return;
  const cpu = process.cpuUsage();
  marks.push([name, performance.now(), (cpu.user + cpu.system) / 1000]);
}

/** Marks the end of the first RPC answered by this process (named after it). */
export function markRpc(name: string): void {
  if (!marks || !firstRpc) return;
  firstRpc = false;
  mark(`first RPC answered (${name})`);
}
