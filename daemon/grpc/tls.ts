/**
 * TLS material of the gRPC listener. With `--tls-cert`/`--tls-key` kmsd uses those files. Without
 * them it keeps a private CA and a server certificate under `<data-dir>/tls/`:
 *
 *   ca.pem        the CA certificate: give it to clients (`root_certificates=`, `ssl.rootCerts`)
 *   ca.key        its private key (0600): signs a new server certificate when one is needed
 *   server.pem    the server certificate (SAN localhost, 127.0.0.1, ::1 and the advertised host)
 *   server.key    its private key (0600)
 *
 * Made on first start; the server certificate is reissued by the same CA when it expires within
 * 30 days or lacks a name it must carry, so clients keep trusting ca.pem. Every file is written
 * to a temp file, fsynced, renamed and the directory fsynced before kmsd listens. The CA is
 * P-256/ECDSA, valid 10 years; server certificates 397 days.
 */
import { X509Certificate, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { writeSecretFile } from '../keystore/secret-file.js';
import { fsyncDirectory } from '../store/durable-file.js';

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  /** The CA certificate clients should trust, when kmsd made it (else undefined). */
  caPath?: string;
  /** What happened: `given` files, `created` a CA, `reissued` a server certificate, or `reused`. */
  source: 'given' | 'created' | 'reissued' | 'reused';
}

export const TLS_DIR = 'tls';
const DAY_MS = 24 * 3600_000;
const CA_VALIDITY_DAYS = 3650;
const SERVER_VALIDITY_DAYS = 397;
const RENEW_BEFORE_DAYS = 30;

/** Names every generated server certificate carries, plus the advertised host. */
export function serverNames(advertiseHost: string | undefined): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  if (advertiseHost !== undefined && advertiseHost !== '' && !names.includes(advertiseHost)) names.push(advertiseHost);
  return names;
}

export async function loadTlsMaterial(options: {
  dataDir: string;
  certFile?: string;
  keyFile?: string;
  advertiseHost?: string;
  now?: Date;
}): Promise<TlsMaterial> {
  if (options.certFile !== undefined || options.keyFile !== undefined) {
    if (options.certFile === undefined || options.keyFile === undefined) throw new Error('--tls-cert and --tls-key must be given together');
    return { certPem: readFileSync(options.certFile, 'utf8'), keyPem: readFileSync(options.keyFile, 'utf8'), source: 'given' };
  }
  const now = options.now ?? new Date();
  const dir = join(options.dataDir, TLS_DIR);
  const file = (name: string) => join(dir, name);
  if (!existsSync(dir)) {
    mkdirSync(dir, { mode: 0o700 });
    fsyncDirectory(dirname(dir));
  }
  const names = serverNames(options.advertiseHost);
  let created = false;
  if (!existsSync(file('ca.pem')) || !existsSync(file('ca.key'))) {
    const ca = await createCa(now);
    // The key first: a crash between the two leaves no CA certificate without its key.
    writeSecretFile(file('ca.key'), ca.keyPem, { replace: true });
    writeDurable(file('ca.pem'), ca.certPem);
    created = true;
  }
  const caPem = readFileSync(file('ca.pem'), 'utf8');
  if (!created && serverCertificateIsGood(file('server.pem'), file('server.key'), caPem, names, now)) {
    return { certPem: readFileSync(file('server.pem'), 'utf8'), keyPem: readFileSync(file('server.key'), 'utf8'), caPath: file('ca.pem'), source: 'reused' };
  }
  const issued = await issueServerCertificate(caPem, readFileSync(file('ca.key'), 'utf8'), names, now);
  writeSecretFile(file('server.key'), issued.keyPem, { replace: true });
  writeDurable(file('server.pem'), issued.certPem);
  return { certPem: issued.certPem, keyPem: issued.keyPem, caPath: file('ca.pem'), source: created ? 'created' : 'reissued' };
}

/** A certificate is public: 0644, but written as durably as a secret. */
function writeDurable(path: string, content: string): void {
  writeSecretFile(path, content, { replace: true });
  // writeSecretFile creates 0600; certificates may be read by others (clients need ca.pem).
  chmodSync(path, 0o644);
}

function serverCertificateIsGood(certPath: string, keyPath: string, caPem: string, names: string[], now: Date): boolean {
  if (!existsSync(certPath) || !existsSync(keyPath)) return false;
  try {
    const cert = new X509Certificate(readFileSync(certPath));
    const ca = new X509Certificate(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return false;
    return names.every((name) => (isIP(name) !== 0 ? cert.checkIP(name) !== undefined : cert.checkHost(name) !== undefined));
  } catch {
    return false;
  }
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function x509lib() {
  await import('reflect-metadata'); // @peculiar/x509's dependency injection needs it loaded first
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto);
  return x509;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function createCa(now: Date): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await x509lib();
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=kmsd local CA ${now.toISOString().slice(0, 10)}, O=kmsd`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

async function issueServerCertificate(caPem: string, caKeyPem: string, names: string[], now: Date): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await x509lib();
  const ca = new x509.X509Certificate(caPem);
  const der = Buffer.from(caKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const caKey = await webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=localhost, O=kmsd',
    issuer: ca.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + SERVER_VALIDITY_DAYS * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(names.map((name) => ({ type: isIP(name) !== 0 ? ('ip' as const) : ('dns' as const), value: name }))),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}
