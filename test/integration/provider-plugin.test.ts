/**
 * The plugin process as core sees it: spawned with core's environment, handshake on stdout,
 * tfplugin6 over mutual TLS, GRPCController.Shutdown ends it.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, type ChannelCredentials } from '@grpc/grpc-js';
import { decodeMessage, encodeMessage, methodTypes, type ProtoMessage } from '../../provider/protocol/definitions.js';
import { MAGIC_COOKIE_VALUE } from '../../provider/protocol/handshake.js';
import { generateServerCertificate } from '../../provider/protocol/tls.js';

const PLUGIN_MAIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'provider/main.js');

interface Started {
  child: ChildProcess;
  handshake: string;
  stderr: () => string;
  exited: Promise<number | null>;
  ms: number;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startPlugin(env: Record<string, string>): Promise<Started> {
  const started = performance.now();
  const child = spawn(process.execPath, [PLUGIN_MAIN], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const handshake = await new Promise<string>((resolveLine, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolveLine(out.slice(0, nl));
    });
    void exited.then(() => resolveLine(out));
    setTimeout(() => reject(new Error(`no handshake; stderr: ${err}`)), 20_000).unref();
  });
  return { child, handshake, stderr: () => err, exited, ms: performance.now() - started };
}

function pemOf(derBase64NoPad: string): string {
  const b64 = Buffer.from(derBase64NoPad, 'base64').toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END CERTIFICATE-----\n`;
}

function call(client: Client, service: string, method: string, request: ProtoMessage): Promise<ProtoMessage> {
  const { request: reqType, response: resType } = methodTypes(service, method);
  return new Promise((resolveCall, reject) => {
    client.makeUnaryRequest(
      `/${service}/${method}`,
      (v: ProtoMessage) => encodeMessage(reqType, v),
      (b: Buffer) => decodeMessage(resType, b),
      request,
      new Metadata(),
      (err, value) => (err ? reject(err) : resolveCall(value!)),
    );
  });
}

function connect(handshake: string, creds: ChannelCredentials): Client {
  const [, , network, address] = handshake.split('|');
  expect(network).toBe('tcp');
  return new Client(address!, creds, { 'grpc.ssl_target_name_override': 'localhost' });
}

const BASE_ENV = { TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: '5,6', PLUGIN_MIN_PORT: '10000', PLUGIN_MAX_PORT: '25000' };

describe('provider plugin process', () => {
  it('speaks tfplugin6 over mutual TLS and exits on GRPCController.Shutdown', async () => {
    const clientCert = generateServerCertificate();
    const plugin = await startPlugin({ ...BASE_ENV, PLUGIN_CLIENT_CERT: clientCert.certPem });
    const fields = plugin.handshake.split('|');
    expect(fields).toHaveLength(6);
    expect(fields.slice(0, 3)).toEqual(['1', '6', 'tcp']);
    expect(fields[3]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(fields[4]).toBe('grpc');
    expect(fields[5]).not.toMatch(/=/);
    expect(fields[5]!.length).toBeGreaterThan(100);
    process.stderr.write(`plugin start-to-handshake (unbundled, with TLS): ${Math.round(plugin.ms)} ms\n`);

    const client = connect(
      plugin.handshake,
      credentials.createSsl(Buffer.from(pemOf(fields[5]!)), Buffer.from(clientCert.keyPem), Buffer.from(clientCert.certPem)),
    );
    const schema = (await call(client, 'tfplugin6.Provider', 'GetProviderSchema', {})) as {
      provider: { block: { attributes: { name: string }[] } };
      resource_schemas: Record<string, unknown>;
      data_source_schemas: Record<string, unknown>;
    };
    expect(schema.provider.block.attributes.map((a) => a.name)).toEqual(['endpoint', 'folder_id', 'token']);
    expect(Object.keys(schema.resource_schemas).sort()).toEqual([
      'kms_secret_ciphertext',
      'kms_symmetric_key',
      'kms_symmetric_key_iam_binding',
      'kms_symmetric_key_iam_member',
    ]);
    expect(Object.keys(schema.data_source_schemas)).toEqual(['kms_symmetric_key']);
    expect(Object.keys((schema as unknown as { ephemeral_resource_schemas: object }).ephemeral_resource_schemas).sort()).toEqual(['kms_data_key', 'kms_secret_plaintext']);

    const identities = (await call(client, 'tfplugin6.Provider', 'GetResourceIdentitySchemas', {})) as {
      identity_schemas: Record<string, { identity_attributes: { name: string; required_for_import: boolean }[] }>;
    };
    expect(identities.identity_schemas['kms_symmetric_key']?.identity_attributes).toEqual([
      expect.objectContaining({ name: 'id', required_for_import: true }),
    ]);

    // An RPC the provider does not implement is UNIMPLEMENTED, not a crash.
    await expect(call(client, 'tfplugin6.Provider', 'CallFunction', {})).rejects.toMatchObject({ code: 12 });

    await expect(call(client, 'plugin.GRPCController', 'Shutdown', {})).resolves.toEqual({});
    client.close();
    expect(await plugin.exited).toBe(0);
  });

  it('refuses a client without the expected certificate', async () => {
    const plugin = await startPlugin({ ...BASE_ENV, PLUGIN_CLIENT_CERT: generateServerCertificate().certPem });
    const stranger = generateServerCertificate();
    const serverCert = pemOf(plugin.handshake.split('|')[5]!);
    const client = connect(plugin.handshake, credentials.createSsl(Buffer.from(serverCert), Buffer.from(stranger.keyPem), Buffer.from(stranger.certPem)));
    await expect(call(client, 'tfplugin6.Provider', 'GetProviderSchema', {})).rejects.toMatchObject({ code: 14 });
    client.close();
  });

  it('serves plaintext with an empty certificate field when TF_DISABLE_PLUGIN_TLS is set', async () => {
    const plugin = await startPlugin({ ...BASE_ENV, TF_DISABLE_PLUGIN_TLS: '1', PLUGIN_CLIENT_CERT: generateServerCertificate().certPem });
    expect(plugin.handshake).toMatch(/^1\|6\|tcp\|127\.0\.0\.1:\d+\|grpc\|$/);
    const client = connect(plugin.handshake, credentials.createInsecure());
    const response = await call(client, 'tfplugin6.Provider', 'ValidateProviderConfig', {});
    expect(response['diagnostics'] ?? []).toEqual([]);
    client.close();
  });

  it('ignores SIGINT (core stops it over gRPC)', async () => {
    const plugin = await startPlugin({ ...BASE_ENV });
    plugin.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    expect(plugin.child.exitCode).toBeNull();
    const client = connect(plugin.handshake, credentials.createInsecure());
    await call(client, 'plugin.GRPCController', 'Shutdown', {});
    client.close();
    expect(await plugin.exited).toBe(0);
  });

  it('exits when its parent dies (core killed)', async () => {
    const shell = spawn('sh', ['-c', `"${process.execPath}" "${PLUGIN_MAIN}" & echo $!; wait`], {
      env: { PATH: process.env['PATH'] ?? '', ...BASE_ENV },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    children.push(shell);
    // The shell prints the plugin's pid, then the plugin its handshake line (same stdout): kill the
    // parent once the plugin is serving, however long a loaded machine takes to get there.
    let out = '';
    const pid = await new Promise<number>((r) =>
      shell.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        if (lines.length >= 3) r(Number.parseInt(lines[0]!, 10));
      }),
    );
    shell.kill('SIGKILL');
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 5000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
  });

  it('tells a human who runs it directly what it is, and exits 1', async () => {
    const plugin = await startPlugin({});
    expect(plugin.handshake).toBe('');
    expect(await plugin.exited).toBe(1);
    expect(plugin.stderr()).toMatch(/plugin for Terraform and OpenTofu.*\n.*not meant to be executed directly/);
  });

  it('refuses a client that only speaks protocol 5', async () => {
    const plugin = await startPlugin({ ...BASE_ENV, PLUGIN_PROTOCOL_VERSIONS: '5' });
    expect(plugin.handshake).toBe('');
    expect(await plugin.exited).toBe(1);
    expect(plugin.stderr()).toMatch(/speaks plugin protocol 6/);
  });
});
