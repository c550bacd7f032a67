/**
 * What the results header says about the machine: CPU, cores, OS, tool versions, and whether the
 * load generator and the server under test could be pinned to different cores (taskset).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

/** Output of a command, or undefined when it is missing or fails. */
export function commandOutput(bin: string, args: string[], timeoutMs = 15000): string | undefined {
  try {
    return execFileSync(bin, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
}

/** taskset (util-linux) when present and the machine has two or more cores to split. */
export function pinningAvailable(): { available: boolean; reason: string } {
  const cores = os.availableParallelism();
  if (cores < 2) return { available: false, reason: `only ${cores} core` };
  if (commandOutput('taskset', ['--version']) === undefined) return { available: false, reason: 'taskset (util-linux) not found' };
  return { available: true, reason: `taskset, ${cores} cores` };
}

/** Sets the CPU affinity of every thread of a running process; false if taskset failed. */
export function pinProcess(pid: number, cpus: string): boolean {
  return commandOutput('taskset', ['-a', '-p', '-c', cpus, String(pid)]) !== undefined;
}

export interface MachineInfo {
  date: string;
  host: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  kernel: string;
  node: string;
  kms: string;
  gitCommit: string;
  softhsm2: string;
  autocannon: string;
  go: string;
}

function osName(): string {
  try {
    const line = readFileSync('/etc/os-release', 'utf8').split('\n').find((l) => l.startsWith('PRETTY_NAME='));
    if (line) return line.slice('PRETTY_NAME='.length).replace(/^"|"$/g, '');
  } catch {
    // not Linux
  }
  return `${os.type()} ${os.release()}`;
}

function packageVersion(file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  const commit = commandOutput('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = (commandOutput('git', ['-C', REPO_ROOT, 'status', '--porcelain']) ?? '') !== '';
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    kernel: os.release(),
    node: process.version,
    kms: packageVersion(join(REPO_ROOT, 'package.json')),
    gitCommit: dirty ? `${commit} (with uncommitted changes)` : commit,
    softhsm2: commandOutput('softhsm2-util', ['--version']) ?? 'not found',
    autocannon: packageVersion(join(REPO_ROOT, 'node_modules', 'autocannon', 'package.json')),
    go: commandOutput('go', ['version']) ?? 'not found',
  };
}

/** The machine's CPU time so far (jiffies, summed over CPUs; /proc/stat), or undefined off Linux. */
export interface CpuTimes {
  total: number;
  steal: number;
}

export function cpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (fields.length < 8 || fields.some((v) => !Number.isFinite(v))) return undefined;
    return { total: fields.reduce((a, b) => a + b, 0), steal: fields[7]! };
  } catch {
    return undefined;
  }
}

/** Percent of CPU time the hypervisor gave to others between two readings (the "st" of top). */
export function stealPercent(from: CpuTimes | undefined, to: CpuTimes | undefined): number | undefined {
  if (from === undefined || to === undefined || to.total <= from.total) return undefined;
  return (100 * (to.steal - from.steal)) / (to.total - from.total);
}

let clockTicks: number | undefined;

/**
 * CPU milliseconds (user + system, all threads) a process has used so far (/proc/PID/stat), or
 * undefined when it cannot be read. Steal is not in it, so per-call CPU holds on a noisy VM.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start with the state (field 3);
    // utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (!Number.isFinite(ticks)) return undefined;
    clockTicks ??= Number(commandOutput('getconf', ['CLK_TCK']) ?? 100) || 100;
    return (ticks * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}
