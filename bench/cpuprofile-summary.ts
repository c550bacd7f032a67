/**
 * Top self-time functions of a V8 .cpuprofile (what `node --cpu-prof` writes), e.g. of kmsd
 * profiled by `node dist/bench/run.js --only dataplane --profile DIR`.
 *
 *   node dist/bench/cpuprofile-summary.js FILE.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  ms: number;
  percent: number;
}

/** Self time per function (summed over every node with the same frame), largest first. */
export function selfTimes(profile: Profile): SelfTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, SelfTime>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)?.callFrame;
    if (!frame) return;
    all += us;
    const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName}@${where}`;
    const entry = totals.get(key) ?? { name: frame.functionName || '(anonymous)', where, ms: 0, percent: 0 };
    entry.ms += us / 1000;
    totals.set(key, entry);
  });
  return [...totals.values()].map((e) => ({ ...e, percent: (e.ms * 100000) / all })).sort((a, b) => b.ms - a.ms);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  for (const file of positionals) {
    const rows = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile).slice(0, Number(values.top));
    console.log(`# ${file}`);
    for (const r of rows) console.log(`${r.percent.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}  ${r.where}`);
  }
}
