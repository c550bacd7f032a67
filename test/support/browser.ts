/**
 * A real headless Chromium (Debian's `chromium` package, installed by .ci/run) driven by
 * playwright-core, with a fresh profile per launch. Without the background-networking flags
 * Chromium tries to reach Google's services at start, which this machine refuses.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { REPO_ROOT } from './daemon.js';

export const CHROMIUM = process.env.KMS_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots go: $KMS_TEST_OUTPUT_DIR or test-output/ in the checkout. */
export function testOutputDir(name: string): string {
  const dir = join(process.env.KMS_TEST_OUTPUT_DIR ?? join(REPO_ROOT, 'test-output'), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(viewport = { width: 1280, height: 800 }): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (.ci/run does), or set KMS_CHROMIUM`);
  const profile = mkdtempSync(join(tmpdir(), 'kms-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
