import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as x509 from '@peculiar/x509';
import { checkMagicCookie, formatHandshakeLine, MAGIC_COOKIE_VALUE, negotiateProtocolVersion } from '../../provider/protocol/handshake.js';
import { log } from '../../provider/protocol/log.js';
import { generateServerCertificate } from '../../provider/protocol/tls.js';
import { createProviderHandlers } from '../../provider/server.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('embedded protocol definition', () => {
  it('descriptor.ts matches the .proto files (run node provider/protocol/proto/embed.mjs)', async () => {
    const embed = (await import(pathToFileURL(join(REPO, 'provider/protocol/proto/embed.mjs')).href)) as { renderDescriptorModule(): string };
    expect(readFileSync(join(REPO, 'provider/protocol/proto/descriptor.ts'), 'utf8')).toBe(embed.renderDescriptorModule());
  });

  it.each(['tfplugin6.proto', 'grpc_controller.proto'])('%s keeps its MPL-2.0 header', (file) => {
    const text = readFileSync(join(REPO, 'provider/protocol/proto', file), 'utf8');
    expect(text.startsWith('// Copyright (c) HashiCorp, Inc.\n// SPDX-License-Identifier: MPL-2.0\n')).toBe(true);
  });
});

describe('handshake', () => {
  it('refuses to run without the magic cookie, with a message for humans', () => {
    expect(checkMagicCookie({})).toMatch(/plugin for Terraform and OpenTofu/);
    expect(checkMagicCookie({ TF_PLUGIN_MAGIC_COOKIE: 'nope' })).toMatch(/not meant to be executed directly/);
    expect(checkMagicCookie({ TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE_VALUE })).toBeUndefined();
  });

  it.each<[string, string | undefined, number | undefined]>([
    ['5,6', '5,6', 6],
    ['6,5 (any order)', '6,5', 6],
    ['only 6', '6', 6],
    ['absent', undefined, 6],
    ['only 5', '5', undefined],
  ])('negotiates the protocol from %s', (_name, offered, expected) => {
    const result = negotiateProtocolVersion(offered === undefined ? {} : { PLUGIN_PROTOCOL_VERSIONS: offered });
    if (expected === undefined) expect('error' in result && result.error).toMatch(/speaks plugin protocol 6/);
    else expect(result).toEqual({ version: expected });
  });

  it('prints six fields with the certificate as unpadded base64 DER', () => {
    const der = Buffer.from([1, 2, 3, 4]); // base64 "AQIDBA==" when padded
    const line = formatHandshakeLine({ network: 'tcp', host: '127.0.0.1', port: 1234 }, der);
    expect(line).toBe('1|6|tcp|127.0.0.1:1234|grpc|AQIDBA\n');
    expect(line.trimEnd().split('|')).toHaveLength(6);
  });

  it('leaves the certificate field empty without TLS', () => {
    expect(formatHandshakeLine({ network: 'unix', path: '/tmp/p.sock' }, undefined)).toBe('1|6|unix|/tmp/p.sock|grpc|\n');
  });
});

describe('server certificate', () => {
  const cert = generateServerCertificate();

  it('is a valid self-signed P-256 certificate for localhost', () => {
    const parsed = new X509Certificate(cert.certPem);
    expect(parsed.raw.equals(cert.der)).toBe(true);
    expect(parsed.verify(parsed.publicKey)).toBe(true);
    expect(parsed.checkHost('localhost')).toBe('localhost');
    expect(parsed.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(parsed.ca).toBe(true);
    expect(parsed.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(parsed.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(new Date(parsed.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * 24 * 3600_000);
  });

  it('parses with a strict ASN.1 X.509 library too', async () => {
    const parsed = new x509.X509Certificate(cert.der);
    expect(parsed.subject).toBe('O=terraform-provider-kms, CN=localhost');
    expect(await parsed.verify({ signatureOnly: true })).toBe(true);
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.items.map((n) => n.value)).toEqual(['localhost', '127.0.0.1']);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyCertSign);
  });

  it('is new every time', () => {
    expect(generateServerCertificate().der.equals(cert.der)).toBe(false);
  });
});

describe('GetProviderSchema', () => {
  type Attr = { name: string; type: Buffer; optional?: boolean; computed?: boolean; required?: boolean; sensitive?: boolean; description?: string };
  type ProtoSchema = { version: number; block: { attributes: Attr[] } };
  type DocAttr = { type: unknown; optional?: boolean; computed?: boolean; required?: boolean; sensitive?: boolean; description?: string };
  type DocSchema = { version: number; block: { attributes: Record<string, DocAttr> } };

  const document = JSON.parse(readFileSync(join(REPO, 'schemas/provider.schema.json'), 'utf8')) as {
    provider_schemas: Record<string, { provider: DocSchema; resource_schemas: Record<string, DocSchema> }>;
  };
  const mine = document.provider_schemas['terraform.local/local/kms']!;

  function toDocument(schema: ProtoSchema): DocSchema {
    const attributes: Record<string, DocAttr> = {};
    for (const a of schema.block.attributes) {
      attributes[a.name] = {
        type: JSON.parse(a.type.toString()),
        ...(a.description && { description: a.description }),
        ...(a.required && { required: true }),
        ...(a.optional && { optional: true }),
        ...(a.computed && { computed: true }),
        ...(a.sensitive && { sensitive: true }),
      };
    }
    return { version: schema.version, block: { attributes } };
  }

  function strip(schema: DocSchema): DocSchema {
    const attributes: Record<string, DocAttr> = {};
    for (const [name, a] of Object.entries(schema.block.attributes)) {
      const { type, description, optional, computed, required, sensitive } = a;
      attributes[name] = { type, ...(description && { description }), ...(required && { required }), ...(optional && { optional }), ...(computed && { computed }), ...(sensitive && { sensitive }) };
    }
    return { version: schema.version, block: { attributes } };
  }

  it('serves exactly schemas/provider.schema.json', async () => {
    const response = (await createProviderHandlers({}).GetProviderSchema!({})) as unknown as {
      provider: ProtoSchema;
      resource_schemas: Record<string, ProtoSchema>;
      server_capabilities: Record<string, boolean>;
      diagnostics: unknown[];
    };
    expect(response.diagnostics).toEqual([]);
    expect(toDocument(response.provider)).toEqual(strip(mine.provider));
    expect(Object.keys(response.resource_schemas)).toEqual(Object.keys(mine.resource_schemas));
    for (const [name, schema] of Object.entries(response.resource_schemas)) {
      expect(toDocument(schema)).toEqual(strip(mine.resource_schemas[name]!));
    }
    expect(response.server_capabilities['get_provider_schema_optional']).toBe(true);
  });

  it('has the attributes the issue asks for', () => {
    const key = mine.resource_schemas['kms_symmetric_key']!.block.attributes;
    expect(Object.keys(key).sort()).toEqual(
      ['created_at', 'default_algorithm', 'deletion_protection', 'description', 'folder_id', 'id', 'labels', 'name', 'primary_version_id', 'rotated_at', 'rotation_period', 'status'].sort(),
    );
    expect(mine.provider.block.attributes['token']?.sensitive).toBe(true);
  });
});

describe('stderr log lines', () => {
  it('are JSON that go-plugin parses: @level, @message and a six-digit-fraction @timestamp', () => {
    const lines: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      lines.push(chunk);
      return true;
    });
    try {
      log('warn', 'hello', { rpc: 'X' });
    } finally {
      process.stderr.write = original;
    }
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as Record<string, string>;
    expect(entry).toMatchObject({ '@level': 'warn', '@message': 'hello', rpc: 'X' });
    expect(entry['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });
});
