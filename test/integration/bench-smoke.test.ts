// The bench end to end with tiny counts: it must stop by itself and write valid results.json and
// a markdown table. No timing assertions: the figures depend on the machine.
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from '../support/daemon.js';

const RUN = join(REPO_ROOT, 'dist', 'bench', 'run.js');

function runBench(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    // Vault is a bench peer, not part of CI: point the bench at a binary that is never there, so
    // this test checks the "not available" report whether or not a developer has it cached.
    const env = { ...process.env, KMS_VAULT_BIN: join(REPO_ROOT, 'bench', 'tmp', 'no-vault-here') };
    const child = spawn(process.execPath, [RUN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stderr });
    });
  });
}

describe('npm run bench --quick', () => {
  it('writes results.json and a results.md table for every section', async () => {
    const out = tempDir('kms-bench-smoke-');
    try {
      const run = await runBench(['--quick', '--out', out, '--sizes', '256', '--clis', 'terraform@1.11.4', '--provider-counts', '1', '--no-build-local-kms']);
      expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });

      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      expect(results).toMatchObject({ schemaVersion: 1, quick: true, errors: {} });
      expect(results.sections).toEqual(['keystore', 'dataplane', 'controlplane', 'provider']);
      expect(results.machine.node).toBe(process.version);
      expect(results.dataplane.cases.map((c: any) => `${c.target} ${c.operation}`)).toEqual(
        expect.arrayContaining(['kmsd AES_256 encrypt', 'kmsd AES_256_HSM decrypt', 'node:http + node:crypto (ceiling) encrypt']),
      );
      // local-kms is never built in quick mode; without a cached binary the results say why.
      if (!results.dataplane.localKms.available) expect(results.dataplane.localKms.detail).toMatch(/local-kms/);
      expect(results.dataplane.vault).toMatchObject({ available: false, detail: expect.stringMatching(/not built/) });
      // /metrics scraped from the loaded daemon: every series the README documents, and the calls it served.
      expect(results.dataplane.kmsdMetrics.missingSeries).toEqual([]);
      expect(results.dataplane.kmsdMetrics.calls).toEqual(
        expect.arrayContaining([expect.objectContaining({ operation: 'SymmetricCrypto.Encrypt', result: 'OK' })]),
      );
      expect(results.dataplane.kmsdMetrics.auditBatches).toBeGreaterThan(0);
      expect(results.controlplane.steps.length).toBeGreaterThan(0);
      expect(results.provider.handshakeMs.runs).toBe(1);
      expect(results.provider.handshake.node.runs).toBe(1);
      expect(results.provider.handshake.kmsWithExtraCa.runs).toBe(1);
      // CI builds the Go peer (.ci/install-go-tools.sh peer); elsewhere the results say why it is missing.
      if (results.provider.peer.available) expect(results.provider.cases[0].peerSeconds.runs).toBe(1);
      else expect(results.provider.peer.detail).toMatch(/peer/);
      expect(results.keystore.map((c: any) => c.algorithm)).toEqual(expect.arrayContaining(['AES_256', 'AES_256_HSM']));

      const markdown = readFileSync(join(out, 'results.md'), 'utf8');
      expect(markdown).toMatch(/^# kms bench results \(QUICK mode/);
      expect(markdown).toContain(`Node ${process.version}`);
      expect(markdown).toMatch(/CPU pinning: (yes|no) /);
      for (const heading of ['## Data plane over HTTP', '## Control plane growth', '## Provider', '## Keystore (in process)']) expect(markdown).toContain(heading);
      expect(markdown).toMatch(/^\| target \| op \|.*\n\|(---\|)+\n\| kmsd AES_256 \|/m);
      expect(markdown).toContain('Vault transit: **not available in this run**');
      expect(markdown).toContain('### kmsd /metrics after its runs');
      expect(markdown).toContain('Every documented series present: yes.');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300000);
});
