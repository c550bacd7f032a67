// Bad configuration fails at validate and plan, before anything is created, and the error
// points at the attribute.
import { expect, it } from '@jest/globals';
import { describeEachCli } from '../support/cli.js';
import type { HclValue } from './fixtures.js';
import { E2E_TIMEOUT, config, keyResource, useKms, uniqueFolder, workspaceFor } from './fixtures.js';

interface JsonDiagnostic {
  severity: string;
  summary: string;
  detail: string;
  address?: string;
  range?: { start: { line: number } };
  snippet?: { code: string };
}

/**
 * Each bad configuration and the source line its error must point at (core turns the
 * diagnostic's attribute path into that line: the attribute, or the offending map element).
 */
const BAD_CONFIGS: { case: string; line: string; attrs: Record<string, HclValue> }[] = [
  { case: 'rotation_period "5x"', line: 'rotation_period = "5x"', attrs: { rotation_period: '5x' } },
  { case: 'rotation_period shorter than 1h', line: 'rotation_period = "30m"', attrs: { rotation_period: '30m' } },
  { case: 'unknown default_algorithm', line: 'default_algorithm = "AES_512"', attrs: { default_algorithm: 'AES_512' } },
  { case: 'unknown status', line: 'status = "DISABLED"', attrs: { status: 'DISABLED' } },
  { case: 'label key with capitals', line: '"Env" = "prod"', attrs: { labels: { Env: 'prod' } } },
  { case: 'label value with capitals', line: '"env" = "Prod"', attrs: { labels: { env: 'Prod' } } },
];

describeEachCli('configuration validation', (cli) => {
  const kms = useKms();

  it.each(BAD_CONFIGS)(
    'rejects $case at validate and plan, pointing at the attribute',
    async ({ line, attrs }) => {
      const folderId = uniqueFolder('bad');
      const ws = workspaceFor(cli, kms, folderId, 'bad');
      try {
        const mainTf = config(keyResource('bad', { name: 'bad', ...attrs }));
        ws.write(mainTf);
        const lineNumber = mainTf.split('\n').findIndex((l) => l.includes(line)) + 1;
        expect(lineNumber).toBeGreaterThan(0);
        await ws.init();

        const validate = await ws.run(['validate', '-no-color', '-json'], { expect: 1 });
        const report = JSON.parse(validate.stdout) as { valid: boolean; diagnostics: JsonDiagnostic[] };
        expect(report.valid).toBe(false);
        const errors = report.diagnostics.filter((d) => d.severity === 'error');
        expect(errors).toEqual([
          expect.objectContaining({ address: 'kms_symmetric_key.bad', range: expect.objectContaining({ start: expect.objectContaining({ line: lineNumber }) }) }),
        ]);
        expect(errors[0]!.snippet?.code).toContain(line);
        expect(errors[0]!.detail.length).toBeGreaterThan(0);

        const plan = await ws.run(['plan', '-no-color', '-input=false'], { expect: 1 });
        expect(plan.stderr).toContain(`Error: ${errors[0]!.summary}`);
        expect(plan.stderr).toContain('with kms_symmetric_key.bad');
        expect(plan.stderr).toContain(`on main.tf line ${lineNumber}`);
        expect(await kms.rest.listKeys(folderId)).toEqual([]);
      } finally {
        ws.remove();
      }
    },
    E2E_TIMEOUT,
  );
});
