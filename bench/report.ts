/** Renders bench/results.json as bench/results.md: a header with the machine, then one table per section. */
import type { ControlPlaneResult } from './control-plane.js';
import type { DataPlaneCase, DataPlaneResult } from './dataplane.js';
import type { MetricsSummary } from './metrics-scrape.js';
import type { KeystoreCase } from './keystore.js';
import type { ProviderResult } from './provider.js';
import { ratio, type Figure } from './stats.js';
import type { MachineInfo } from './system.js';
import { VAULT_AUDIT_TARGET, VAULT_TARGET } from './vault.js';

export interface BenchResults {
  schemaVersion: 1;
  quick: boolean;
  sections: string[];
  runs: number;
  machine: MachineInfo;
  pinning: { requested: boolean; available: boolean; detail: string };
  startedAt: string;
  durationSeconds: number;
  dataplane?: DataPlaneResult;
  controlplane?: ControlPlaneResult;
  provider?: ProviderResult;
  keystore?: KeystoreCase[];
  /** A section that failed, with its error; the others still ran. */
  errors: Record<string, string>;
}

function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return digits === 0 ? Math.round(value).toLocaleString('en-US') : value.toFixed(digits);
}

/** "median (min–max)", or just the value for a single run. */
function fig(f: Figure | undefined, digits = 0): string {
  if (!f || f.runs === 0) return '–';
  if (f.runs === 1 || f.min === f.max) return num(f.median, digits);
  return `${num(f.median, digits)} (${num(f.min, digits)}–${num(f.max, digits)})`;
}

function times(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : '–';
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function dataPlaneSection(dp: DataPlaneResult): string {
  const find = (prefix: string, c: DataPlaneCase) => dp.cases.find((o) => o.target.startsWith(prefix) && o.operation === c.operation && o.size === c.size);
  const rows = dp.cases.map((c) => {
    const ours = c.target.startsWith('kmsd');
    return [
      c.target,
      c.operation,
      c.size >= 1024 ? `${c.size / 1024} KiB` : `${c.size} B`,
      fig(c.peakOpsPerSecond),
      fig(c.cpuUsPerCallAtPeak),
      fig(c.p50MsAtPeak),
      fig(c.p99MsAtPeak),
      `${num(c.halfRate)}/s → ${fig(c.p50MsAtHalfRate, 2)} / ${fig(c.p99MsAtHalfRate, 2)}`,
      ours ? times(ratio(c.peakOpsPerSecond, find('node:http', c)?.peakOpsPerSecond)) : '',
      ours ? times(ratio(find('node:http', c)?.cpuUsPerCallAtPeak, c.cpuUsPerCallAtPeak)) : '',
      ours ? times(ratio(c.peakOpsPerSecond, find('local-kms', c)?.peakOpsPerSecond)) : '',
      c.failures ? String(c.failures) : '0',
    ];
  });
  const lines = [
    '## Data plane over HTTP',
    '',
    `Peak runs: autocannon, ${dp.connections} connections, ${dp.seconds} s each; fixed-rate runs ${dp.rateSeconds} s each; ` +
      `servers ${dp.pinned ? 'pinned to CPU 0, load to CPU 1' : 'not pinned (shared cores)'}. ` +
      'Latencies in ms. At peak, autocannon (closed loop: each connection sends its next request when the last one is answered) records whole milliseconds, so 0 means under 1 ms. ' +
      '"p50 / p99 @ 50% rate" is an open-loop run at a fixed rate of half the median peak (bench/paced.ts, in a fresh load process per case' +
      (dp.rateWarmupSeconds ? `, each run after ${dp.rateWarmupSeconds} s at the same rate that is not timed` : '') +
      '): arrivals evenly spaced (1 ms timer granularity) over at most ' +
      `${dp.connections} keep-alive connections, each request timed with sub-millisecond resolution from when it was due, so waiting for a busy connection counts (no coordinated omission). ` +
      '"CPU µs / call" is the server process\'s CPU time (user + system, all threads, /proc) per answered call over its peak runs: alone on its core, that is what bounds a server\'s peak, and unlike ops/s it does not move with the VM\'s CPU steal. ' +
      '"ours / ceiling" compares medians of peak ops/s; "ours / ceiling by CPU" is the ceiling\'s CPU per call over ours (the peak ratio a dedicated core would give).',
    '',
    table(['target', 'op', 'plaintext', 'peak ops/s', 'CPU µs / call', 'p50 @ peak', 'p99 @ peak', 'p50 / p99 @ 50% rate', 'ours / ceiling', 'ours / ceiling by CPU', 'ours / local-kms', 'failed requests'], rows),
    '',
    `local-kms: ${dp.localKms.available ? `used, ${dp.localKms.detail}` : `**not available** — \`${dp.localKms.detail.replace(/\s+/g, ' ').replace(/`/g, "'")}\``}`,
    ...loadLines(dp),
  ];
  lines.push('', ...vaultLines(dp));
  if (dp.kmsdMetrics !== undefined) lines.push('', ...metricsLines(dp.kmsdMetrics));
  const own = new Set(['local-kms', VAULT_TARGET, VAULT_AUDIT_TARGET]);
  for (const [target, reason] of Object.entries(dp.skipped)) if (!own.has(target)) lines.push(`${target}: skipped — ${reason}`);
  return lines.join('\n');
}

/** How trustworthy the latencies are: the load's own lateness and the VM's CPU steal. */
function loadLines(dp: DataPlaneResult): string[] {
  const loads = dp.cases.flatMap((c) => (c.halfRateLoad ? [c.halfRateLoad] : []));
  const lines: string[] = [];
  if (loads.length > 0) {
    const requests = loads.reduce((sum, l) => sum + l.requests, 0);
    const late = loads.reduce((sum, l) => sum + l.lateSends, 0);
    const worst = Math.max(...loads.map((l) => l.maxSendLagMs));
    lines.push(
      `Load-side lag in the fixed-rate runs: ${num(late)} of ${num(requests)} requests (${((100 * late) / Math.max(1, requests)).toFixed(2)} %) ` +
        `left the load process more than 1 ms after they were due, the worst ${worst.toFixed(1)} ms late; that wait counts against the server.`,
    );
  }
  if (dp.cpuStealPercent !== undefined) {
    lines.push(`CPU steal over the section (/proc/stat, time the hypervisor gave to other guests): ${dp.cpuStealPercent.toFixed(1)} %.`);
  }
  return lines.flatMap((line) => ['', line]);
}

/** What kmsd's own /metrics counted over its data-plane runs (scraped at the end; on throughout). */
function metricsLines(m: MetricsSummary | { error: string }): string[] {
  if ('error' in m) return [`kmsd /metrics: **scrape failed** — \`${oneLine(m.error)}\``];
  const calls = m.calls.filter((c) => c.count >= 100);
  return [
    '### kmsd /metrics after its runs',
    '',
    'Scraped from the daemon at the end of its runs (metrics are on while it is loaded, so the ratios above include their cost). ' +
      `Every documented series present: ${m.missingSeries.length === 0 ? 'yes' : `**no**, missing ${m.missingSeries.join(', ')}`}. ` +
      `Audit: ${num(m.auditBatches)} durable batches, ${m.meanEventsPerBatch.toFixed(1)} events per batch on average (group commit), ` +
      `${m.meanAuditFlushMs.toFixed(2)} ms mean write + fdatasync per batch. HSM errors: ${num(m.hsmErrors)}.`,
    '',
    table(
      ['operation', 'result', 'calls', 'mean ms (read → answer)'],
      calls.map((c) => [c.operation, c.result, num(c.count), c.meanMs.toFixed(2)]),
    ),
    '',
    table(
      ['keystore call', 'algorithm', 'calls', 'mean µs'],
      m.keystore.filter((k) => k.count >= 100).map((k) => [k.operation, k.algorithm || '–', num(k.count), k.meanUs.toFixed(1)]),
    ),
  ];
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').replace(/`/g, "'");

/** kmsd's encrypt/decrypt as ratios to Vault transit without and with its file audit device, same run. */
function vaultLines(dp: DataPlaneResult): string[] {
  if (!dp.vault) return ['Vault transit: not part of this run (no `vault` entry in the results).'];
  const skippedBoth = [VAULT_TARGET, VAULT_AUDIT_TARGET].every((t) => dp.skipped[t] !== undefined);
  if (!dp.vault.available || skippedBoth) {
    return [
      `Vault transit: **not available in this run** — \`${oneLine(dp.vault.detail)}\`; no kmsd / Vault ratios.`,
    ];
  }
  const exact = (target: string, c: DataPlaneCase) => dp.cases.find((o) => o.target === target && o.operation === c.operation && o.size === c.size);
  const rows = dp.cases
    .filter((c) => c.target.startsWith('kmsd'))
    .map((c) => {
      const plain = exact(VAULT_TARGET, c);
      const audited = exact(VAULT_AUDIT_TARGET, c);
      return [
        c.target,
        c.operation,
        c.size >= 1024 ? `${c.size / 1024} KiB` : `${c.size} B`,
        fig(c.peakOpsPerSecond),
        fig(plain?.peakOpsPerSecond),
        times(ratio(c.peakOpsPerSecond, plain?.peakOpsPerSecond)),
        fig(audited?.peakOpsPerSecond),
        times(ratio(c.peakOpsPerSecond, audited?.peakOpsPerSecond)),
        `${fig(c.p99MsAtPeak)} / ${fig(plain?.p99MsAtPeak)}`,
        `${fig(c.p99MsAtHalfRate, 2)} / ${fig(plain?.p99MsAtHalfRate, 2)}`,
      ];
    });
  const lines = [
    '### kmsd / Vault transit (same run)',
    '',
    `HashiCorp Vault ${dp.vault.detail}, \`vault server -dev\` (in-memory storage, no TLS), transit key of type aes256-gcm96, ` +
      'POST /v1/transit/encrypt|decrypt/bench with X-Vault-Token; "+ file audit" adds `vault audit enable file` (it appends request and response entries ' +
      'without fsync, while kmsd waits for the fsync of each audit event). Ratios compare medians of peak ops/s, same connections, sizes and pinning; the p99 columns are in ms, each at its own server\'s peak and half of it.',
    '',
    table(['kmsd target', 'op', 'plaintext', 'kmsd ops/s', 'vault ops/s', 'kmsd / vault', 'vault + audit ops/s', 'kmsd / vault + audit', 'p99 @ peak: kmsd / vault', 'p99 @ 50%: kmsd / vault'], rows),
  ];
  for (const t of [VAULT_TARGET, VAULT_AUDIT_TARGET]) if (dp.skipped[t] !== undefined) lines.push('', `${t}: **not run** — \`${oneLine(dp.skipped[t])}\``);
  return lines;
}

function controlPlaneSection(cp: ControlPlaneResult): string {
  const first = cp.steps[0];
  const rows = cp.steps.map((s) => [
    num(s.existing),
    fig(s.opsPerSecond),
    fig(s.p50Ms, 1),
    fig(s.p99Ms, 1),
    first ? times(ratio(s.opsPerSecond, first.opsPerSecond)) : '–',
    fig(s.startMs),
    s.fillKeysPerSecond !== undefined ? num(s.fillKeysPerSecond) : '',
  ]);
  return [
    '## Control plane growth',
    '',
    `POST /kms/v1/keys, ${cp.concurrency} concurrent clients, ${cp.seconds} s per run; each run starts a daemon on a fresh copy of a store holding exactly that many keys.`,
    '',
    table(['existing keys', 'creates/s', 'p50 ms', 'p99 ms', `vs ${first ? num(first.existing) : '0'} keys`, 'daemon start ms', 'fill keys/s (32 clients)'], rows),
    '',
    `Daemon start (spawn → first healthy /healthz) with ${num(cp.restart.keys)} keys: **${fig(cp.restart.startMs)} ms**.`,
  ].join('\n');
}

function providerSection(p: ProviderResult): string {
  const peer = p.cases.some((c) => c.peerSeconds !== undefined);
  const rows = p.cases.map((c) => [
    c.cli,
    String(c.count),
    c.operation === 'plan' ? 'plan (no-op)' : c.operation,
    fig(c.kmsSymmetricKeySeconds, 2),
    fig(c.terraformDataSeconds, 2),
    times(c.ratio),
    ...(peer ? [c.peerSeconds ? fig(c.peerSeconds, 2) : '–', c.ratioVsPeer !== undefined ? times(c.ratioVsPeer) : '–'] : []),
    String(Math.min(c.kmsSymmetricKeySeconds.runs, c.terraformDataSeconds.runs)),
  ]);
  const h = p.handshake;
  const shake = h
    ? [
        `Start to handshake (spawn of the installed executable with core's environment and mutual TLS, until the first stdout line), median ms (min–max):`,
        '',
        table(
          ['executable', 'without NODE_EXTRA_CA_CERTS', 'with NODE_EXTRA_CA_CERTS'],
          [
            ['kms plugin (sh launcher → node)', fig(h.kms, 1), fig(h.kmsWithExtraCa, 1)],
            ...(h.peer ? [['Go peer (terraform-plugin-framework)', fig(h.peer, 1), '–']] : []),
            ['`node -e` printing one line (runtime floor)', fig(h.node, 1), fig(h.nodeWithExtraCa, 1)],
          ],
        ),
        '',
        `NODE_EXTRA_CA_CERTS = ${h.extraCaFile || '(no CA file found)'}.`,
      ]
    : [`Plugin start to handshake: ${fig(p.handshakeMs)} ms.`];
  return [
    '## Provider',
    '',
    ...shake,
    '',
    `Wall time in seconds of N \`kms_symmetric_key\` (\`count = N\`) next to N \`terraform_data\` on the same CLI` +
      (peer ? ' and N `kmspeer_symmetric_key` of the Go peer (bench/peer, same REST calls, same daemon)' : '') +
      `, default parallelism (10). Every plan after apply was ${p.plansWereNoOps ? 'a no-op (exit 0)' : '**not** always a no-op'}.`,
    '',
    table(['CLI', 'N', 'command', 'kms_symmetric_key s', 'terraform_data s', 'ratio', ...(peer ? ['Go peer s', 'vs peer'] : []), 'runs'], rows),
    ...(p.peer && !p.peer.available ? ['', `Go peer: ${p.peer.detail}`] : []),
    ...(p.notes.length ? ['', ...p.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
}

function keystoreSection(cases: KeystoreCase[]): string {
  const rows = cases.map((c) => [c.keystore, c.algorithm, `${c.size} B`, fig(c.encryptOpsPerSecond), fig(c.decryptOpsPerSecond)]);
  return ['## Keystore (in process)', '', 'seal/open calls per second on one thread; pkcs11 = SoftHSM2.', '', table(['keystore', 'algorithm', 'plaintext', 'encrypt ops/s', 'decrypt ops/s'], rows)].join('\n');
}

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const parts = [
    `# kms bench results${r.quick ? ' (QUICK mode: tiny counts, not meaningful)' : ''}`,
    '',
    `${m.date} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB · ${m.os}, kernel ${m.kernel} · host ${m.host}`,
    '',
    `Node ${m.node} · kms ${m.kms} (${m.gitCommit}) · ${m.softhsm2.startsWith('not') ? 'SoftHSM2 not found' : `SoftHSM2 ${m.softhsm2}`} · autocannon ${m.autocannon} · ${m.go}` +
      (r.provider?.clis.length ? ` · ${r.provider.clis.map((c) => `${c.name} ${c.version}`).join(', ')}` : ''),
    '',
    `CPU pinning: ${r.pinning.available && r.pinning.requested ? `yes (${r.pinning.detail})` : `no (${r.pinning.requested ? r.pinning.detail : 'disabled'})`} · ` +
      `each figure is the median of ${r.runs} runs with (min–max) unless a row says otherwise · loopback only · total ${Math.round(r.durationSeconds)} s`,
  ];
  if (r.dataplane) parts.push('', dataPlaneSection(r.dataplane));
  if (r.controlplane) parts.push('', controlPlaneSection(r.controlplane));
  if (r.provider) parts.push('', providerSection(r.provider));
  if (r.keystore) parts.push('', keystoreSection(r.keystore));
  const errors = Object.entries(r.errors);
  if (errors.length) parts.push('', '## Sections that failed', '', ...errors.map(([s, e]) => `- ${s}: \`${e.split('\n')[0]}\``));
  return `${parts.join('\n')}\n`;
}
