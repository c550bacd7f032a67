/**
 * go-plugin's handshake: the magic cookie, protocol version negotiation and the single stdout
 * line that tells core where and how to connect.
 */

/** Terraform's go-plugin handshake cookie (plugin.HandshakeConfig in core). */
export const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
export const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';
/** The only plugin protocol this provider speaks. */
export const PROTOCOL_VERSION = 6;
/** go-plugin's own (core) protocol version, the first handshake field. */
export const CORE_PROTOCOL_VERSION = 1;

/** Message for humans who run the plugin binary directly. */
export const NOT_A_COMMAND_MESSAGE = `This binary is a plugin for Terraform and OpenTofu (terraform-provider-kms).
It is not meant to be executed directly: Terraform or OpenTofu starts it when a
configuration uses source = "terraform.local/local/kms". Install it with the
project's install command, or point dev_overrides at its directory.
`;

/** Why the plugin cannot start under these environment variables, or undefined when it can. */
export function checkMagicCookie(env: NodeJS.ProcessEnv): string | undefined {
  return env[MAGIC_COOKIE_KEY] === MAGIC_COOKIE_VALUE ? undefined : NOT_A_COMMAND_MESSAGE;
}

/**
 * Choose the protocol version from PLUGIN_PROTOCOL_VERSIONS (e.g. "5,6", any order). Absent means
 * core did not negotiate (very old cores), so we offer ours.
 */
export function negotiateProtocolVersion(env: NodeJS.ProcessEnv): { version: number } | { error: string } {
  const offered = env['PLUGIN_PROTOCOL_VERSIONS'];
  if (offered === undefined || offered.trim() === '') return { version: PROTOCOL_VERSION };
  const versions = offered.split(',').map((v) => Number.parseInt(v.trim(), 10));
  if (versions.includes(PROTOCOL_VERSION)) return { version: PROTOCOL_VERSION };
  return {
    error: `This provider speaks plugin protocol ${PROTOCOL_VERSION} (Terraform >= 1.0, OpenTofu >= 1.6); the client offered ${offered}.`,
  };
}

/** Address the server listens on. */
export type ListenAddress = { network: 'tcp'; host: string; port: number } | { network: 'unix'; path: string };

/**
 * The handshake line: `1|6|tcp|127.0.0.1:PORT|grpc|CERT`. CERT is the DER certificate in base64
 * WITHOUT `=` padding (core decodes with RawStdEncoding), or empty when TLS is off. Exactly six
 * fields: older cores would glue a seventh onto the certificate.
 */
export function formatHandshakeLine(address: ListenAddress, certDer: Buffer | undefined, version = PROTOCOL_VERSION): string {
  const addr = address.network === 'tcp' ? `${address.host}:${address.port}` : address.path;
  const cert = certDer ? certDer.toString('base64').replace(/=+$/, '') : '';
  return `${CORE_PROTOCOL_VERSION}|${version}|${address.network}|${addr}|grpc|${cert}\n`;
}
