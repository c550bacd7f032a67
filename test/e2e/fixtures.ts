// Shared pieces of the end-to-end scenarios: the daemon, its REST API (to act "outside
// Terraform"), and small HCL builders.
import { afterAll, beforeAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../support/daemon.js';
import type { Cli } from '../support/cli.js';
import { Workspace } from '../support/cli.js';
import type { SymmetricKey } from '../../api/wire.gen.js';
import type { Present } from '../../api/wire.js';

/** Generous per-test limit: every CLI command starts the plugin several times. */
export const E2E_TIMEOUT = 300_000;

/** The daemon's SymmetricKey as the REST API returns it: the generated wire type (api/wire.gen.ts). */
export type RestKey = Present<SymmetricKey, 'id' | 'folderId' | 'name' | 'description' | 'labels' | 'status' | 'defaultAlgorithm' | 'deletionProtection'>;

/** Minimal REST client used to change things behind Terraform's back. */
export class KmsRest {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(new URL(path, this.url), {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  }

  private async ok(method: string, path: string, body?: unknown): Promise<unknown> {
    const { status, json } = await this.call(method, path, body);
    if (status >= 300) throw new Error(`${method} ${path} → ${status}: ${JSON.stringify(json)}`);
    return json;
  }

  async createKey(body: Record<string, unknown>): Promise<RestKey> {
    const operation = (await this.ok('POST', '/kms/v1/keys', body)) as { done: boolean; response: RestKey };
    return operation.response;
  }

  /** The key, or undefined when the daemon answers 404. */
  async getKey(id: string): Promise<RestKey | undefined> {
    const { status, json } = await this.call('GET', `/kms/v1/keys/${id}`);
    if (status === 404) return undefined;
    if (status >= 300) throw new Error(`GET key ${id} → ${status}: ${JSON.stringify(json)}`);
    return json as RestKey;
  }

  async updateKey(id: string, fields: Record<string, unknown>): Promise<void> {
    await this.ok('PATCH', `/kms/v1/keys/${id}`, { updateMask: Object.keys(fields).join(','), ...fields });
  }

  async deleteKey(id: string): Promise<void> {
    await this.ok('DELETE', `/kms/v1/keys/${id}`);
  }

  /** `:encrypt` of UTF-8 text; returns the base64 ciphertext. */
  async encrypt(keyId: string, plaintext: string, aad?: string): Promise<string> {
    const json = (await this.ok('POST', `/kms/v1/keys/${keyId}:encrypt`, {
      plaintext: Buffer.from(plaintext).toString('base64'),
      ...(aad === undefined ? {} : { aadContext: Buffer.from(aad).toString('base64') }),
    })) as { ciphertext: string };
    return json.ciphertext;
  }

  /** `:decrypt` of a base64 ciphertext; returns the plaintext bytes. */
  async decrypt(keyId: string, ciphertext: string, aad?: string): Promise<Buffer> {
    const json = (await this.ok('POST', `/kms/v1/keys/${keyId}:decrypt`, {
      ciphertext,
      ...(aad === undefined ? {} : { aadContext: Buffer.from(aad).toString('base64') }),
    })) as { plaintext: string };
    return Buffer.from(json.plaintext, 'base64');
  }

  async listKeys(folderId: string): Promise<RestKey[]> {
    const json = (await this.ok('GET', `/kms/v1/keys?folderId=${folderId}&pageSize=1000`)) as { keys?: RestKey[] };
    return json.keys ?? [];
  }
}

/** A running daemon plus a REST client authenticated as its admin. */
export interface Kms {
  url: string;
  token: string;
  rest: KmsRest;
  stop(): Promise<void>;
}

export async function startKms(): Promise<Kms> {
  const daemon = await startDaemon();
  return {
    url: daemon.url,
    token: daemon.token,
    rest: new KmsRest(daemon.url, daemon.token),
    stop: async () => {
      await daemon.stop();
      rmSync(daemon.dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * One daemon for the enclosing describe block: started before its tests, stopped after. The
 * returned object reads through to the running daemon, so tests use it like a started `Kms`.
 */
export function useKms(): Kms {
  let started: Kms | undefined;
  beforeAll(async () => {
    started = await startKms();
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await started?.stop();
  });
  const running = (): Kms => {
    if (started === undefined) throw new Error('the daemon of this suite is not running');
    return started;
  };
  return {
    get url() {
      return running().url;
    },
    get token() {
      return running().token;
    },
    get rest() {
      return running().rest;
    },
    stop: () => running().stop(),
  };
}

/** A folder id no other test uses, so scenarios sharing a daemon never see each other's keys. */
export function uniqueFolder(prefix = 'e2e'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A workspace whose provider talks to `kms` in `folderId` (through the environment). */
export function workspaceFor(cli: Cli, kms: Kms, folderId: string, prefix?: string): Workspace {
  return new Workspace(
    cli,
    { KMS_ENDPOINT: kms.url, KMS_TOKEN: kms.token, KMS_FOLDER_ID: folderId },
    prefix ? { prefix: `${cli.name}-${prefix}` } : {},
  );
}

/** `terraform { required_providers }` and an empty provider block (settings come from env). */
export const PROVIDER_HCL = `terraform {
  required_providers {
    kms = {
      source = "terraform.local/local/kms"
    }
  }
}

provider "kms" {}
`;

export type HclValue = string | number | boolean | null | { [key: string]: string } | HclRaw;

/** An expression written into HCL verbatim (a reference such as `var.x`). */
export class HclRaw {
  constructor(readonly text: string) {}
}

function hclValue(value: HclValue): string {
  if (value instanceof HclRaw) return value.text;
  if (typeof value === 'string') return JSON.stringify(value).replace(/\$\{/g, '$${').replace(/%\{/g, '%%{');
  if (value === null || typeof value !== 'object') return String(value);
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `    ${JSON.stringify(k)} = ${hclValue(v)}`).join('\n')}\n  }`;
}

/** `resource "kms_symmetric_key" "NAME" { … }`; undefined attributes are left out. */
export function keyResource(name: string, attributes: Record<string, HclValue | undefined>): string {
  const lines = Object.entries(attributes)
    .filter((entry): entry is [string, HclValue] => entry[1] !== undefined)
    .map(([attr, value]) => `  ${attr} = ${hclValue(value)}`);
  return `resource "kms_symmetric_key" ${JSON.stringify(name)} {\n${lines.join('\n')}\n}\n`;
}

/** The raw files a run leaves that could hold values: the state file and its backup. */
export function stateFiles(ws: Workspace): string {
  return ['terraform.tfstate', 'terraform.tfstate.backup']
    .map((f) => join(ws.dir, f))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** A full main.tf: provider plus the given blocks. */
export function config(...blocks: string[]): string {
  return [PROVIDER_HCL, ...blocks].join('\n');
}
