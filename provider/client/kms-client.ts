/**
 * Typed REST client for the kmsd daemon (Yandex Cloud KMS-compatible REST API), on node:http(s)
 * with keep-alive connections (global fetch loads undici on first use, ≈20 ms of every plugin
 * process). Every failure is one of two errors: {@link KmsApiError} (the daemon answered with an
 * error) or {@link KmsUnreachableError} (no answer at all), so callers can tell users which it was.
 */
import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import type * as Wire from '../../api/wire.gen.js';
import type { Present } from '../../api/wire.js';

/** node:http(s), loaded on the first request: plugin processes that never call the daemon skip it. */
interface Transport {
  agent: HttpAgent;
  request: (url: URL, options: RequestOptions, callback: (res: IncomingMessage) => void) => ClientRequest;
}

/** gRPC status codes the daemon uses in `{code, message, details}` error bodies. */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAUTHENTICATED: 16,
} as const;

/** Key algorithms the daemon can create (the wire type also knows GOST_R_3412_2015_K, which kmsd refuses). */
export type SymmetricAlgorithm = Exclude<Wire.SymmetricAlgorithm, 'SYMMETRIC_ALGORITHM_UNSPECIFIED' | 'GOST_R_3412_2015_K'>;

/** A key version as returned inside a key: the generated wire type, with what kmsd always writes. */
export type SymmetricKeyVersion = Present<Wire.SymmetricKeyVersion, 'id' | 'keyId' | 'createdAt' | 'primary'> & {
  status: Exclude<Wire.SymmetricKeyVersion_Status, 'STATUS_UNSPECIFIED'>;
  algorithm: SymmetricAlgorithm;
};

/** SymmetricKey as the API returns it (api/wire.gen.ts, generated from the proto). */
export type SymmetricKey = Present<Wire.SymmetricKey, 'id' | 'folderId' | 'createdAt' | 'name' | 'description' | 'labels' | 'deletionProtection'> & {
  status: Exclude<Wire.SymmetricKey_Status, 'STATUS_UNSPECIFIED'>;
  primaryVersion?: SymmetricKeyVersion;
  defaultAlgorithm: SymmetricAlgorithm;
};

/** Body of `POST /kms/v1/keys`. */
export interface CreateSymmetricKeyRequest {
  folderId: string;
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  defaultAlgorithm?: SymmetricAlgorithm;
  rotationPeriod?: string;
  deletionProtection?: boolean;
}

/** Fields of `PATCH /kms/v1/keys/{keyId}`; only those named in the update mask are applied. */
export interface UpdateSymmetricKeyFields {
  name?: string;
  description?: string;
  labels?: Record<string, string>;
  status?: 'ACTIVE' | 'INACTIVE';
  defaultAlgorithm?: SymmetricAlgorithm;
  /** null clears the period (no automatic rotation). */
  rotationPeriod?: string | null;
  deletionProtection?: boolean;
}

/** A long-running operation; ours are always `done`. `response` is the unpacked result. */
export type Operation<R = unknown> = Present<Omit<Wire.Operation, 'response' | 'metadata' | 'error'>, 'id' | 'done'> & {
  metadata?: Record<string, unknown>;
  response?: R;
  error?: Present<Wire.Status, 'code' | 'message'>;
};

/** Subject kinds an access binding can name. */
export type SubjectType = 'serviceAccount' | 'userAccount';

/** One access binding: a role granted to a subject. */
export interface AccessBinding {
  roleId: string;
  /** `type` is a {@link SubjectType} for everything this daemon issues; kept open for reading. */
  subject: { id: string; type: string };
}

/** One change of `POST …:updateAccessBindings`. */
export interface AccessBindingDelta {
  action: 'ADD' | 'REMOVE';
  accessBinding: AccessBinding;
}

/** A service account of kmsd's administration API (`/admin/v1/serviceAccounts`). */
export interface ServiceAccount {
  id: string;
  name: string;
  description: string;
  createdAt: string;
}

/** An API token as listed (`GET /admin/v1/tokens`): never its value. */
export interface TokenInfo {
  id: string;
  subject: string;
  description: string;
  createdAt: string;
}

/** An issued API token (`POST /admin/v1/tokens`): the value is in this answer only. */
export interface IssuedToken extends TokenInfo {
  token: string;
}

/** Result of `POST /kms/v1/keys/{keyId}:encrypt`; ciphertext is base64. */
export interface EncryptResult {
  keyId: string;
  versionId: string;
  ciphertext: string;
}

/** Result of `POST /kms/v1/keys/{keyId}:decrypt`; plaintext is base64. */
export interface DecryptResult {
  keyId: string;
  versionId: string;
  plaintext: string;
}

/** Result of `POST /kms/v1/keys/{keyId}:generateDataKey`; both keys base64. */
export interface DataKeyResult {
  keyId: string;
  versionId: string;
  dataKeyPlaintext?: string;
  dataKeyCiphertext: string;
}

/** The daemon answered with an error (non-2xx, or an operation that finished with an error). */
export class KmsApiError extends Error {
  constructor(
    /** gRPC code number from the body (13 when the body was not the documented shape). */
    readonly code: number,
    message: string,
    /** HTTP status, or 200 for an operation error. */
    readonly httpStatus: number,
    readonly details: unknown[] = [],
  ) {
    super(message);
    this.name = 'KmsApiError';
  }
}

/** The daemon could not be reached (connection refused, DNS, timeout, aborted). */
export class KmsUnreachableError extends Error {
  constructor(
    readonly endpoint: string,
    readonly reason: string,
  ) {
    super(`cannot reach the KMS daemon at ${endpoint}: ${reason}`);
    this.name = 'KmsUnreachableError';
  }
}

/** How to reach the daemon. */
export interface KmsClientOptions {
  endpoint: string;
  token: string;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** Aborts every in-flight request (StopProvider). */
  signal?: AbortSignal;
}

function describeFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'TimeoutError') return 'timed out';
  if (e.name === 'AbortError') return 'request cancelled';
  return e.code ?? e.message ?? String(err);
}

/**
 * The extra CA certificates for an https endpoint. The plugin's launcher moves
 * NODE_EXTRA_CA_CERTS aside into KMS_NODE_EXTRA_CA_CERTS (Node would parse the whole file at every
 * plugin start, ≈80 ms here); they are read only when an https endpoint needs them.
 */
async function extraCertificateAuthorities(): Promise<string[] | undefined> {
  const file = process.env['KMS_NODE_EXTRA_CA_CERTS'] ?? process.env['NODE_EXTRA_CA_CERTS'];
  if (!file) return undefined;
  try {
    const { rootCertificates } = await import('node:tls');
    return [...rootCertificates, readFileSync(file, 'utf8')];
  } catch {
    return undefined;
  }
}

async function openTransport(url: URL): Promise<Transport> {
  if (url.protocol === 'https:') {
    const https = await import('node:https');
    const ca = await extraCertificateAuthorities();
    // Core sends many calls per process (one per resource): reuse connections.
    return { agent: new https.Agent({ keepAlive: true, ...(ca && { ca }) }), request: https.request };
  }
  const http = await import('node:http');
  return { agent: new http.Agent({ keepAlive: true }), request: http.request };
}

/** The typed client. One instance per configured provider. */
export class KmsClient {
  private readonly base: string;
  private transport: Promise<Transport> | undefined;

  constructor(private readonly options: KmsClientOptions) {
    this.base = options.endpoint.replace(/\/+$/, '');
  }

  /** `GET /healthz` (no auth). */
  async health(): Promise<{ status: string }> {
    return this.request('GET', '/healthz', undefined, false);
  }

  /** `GET /kms/v1/keys/{keyId}`. */
  async getKey(keyId: string): Promise<SymmetricKey> {
    return this.request('GET', `/kms/v1/keys/${encodeURIComponent(keyId)}`);
  }

  /** `GET /kms/v1/keys?folderId=…` (one page). */
  async listKeys(folderId: string, pageSize?: number, pageToken?: string): Promise<{ keys: SymmetricKey[]; nextPageToken?: string }> {
    const q = new URLSearchParams({ folderId });
    if (pageSize !== undefined) q.set('pageSize', String(pageSize));
    if (pageToken) q.set('pageToken', pageToken);
    const page = await this.request<{ keys?: SymmetricKey[]; nextPageToken?: string }>('GET', `/kms/v1/keys?${q.toString()}`);
    return { keys: page.keys ?? [], ...(page.nextPageToken && { nextPageToken: page.nextPageToken }) };
  }

  /** `POST /kms/v1/keys`; resolves to the created key. */
  async createKey(body: CreateSymmetricKeyRequest): Promise<SymmetricKey> {
    return this.operationResult(await this.request<Operation<SymmetricKey>>('POST', '/kms/v1/keys', body));
  }

  /** `PATCH /kms/v1/keys/{keyId}` with an update mask of the given field names. */
  async updateKey(keyId: string, fields: UpdateSymmetricKeyFields): Promise<SymmetricKey> {
    const updateMask = Object.keys(fields).join(',');
    return this.operationResult(
      await this.request<Operation<SymmetricKey>>('PATCH', `/kms/v1/keys/${encodeURIComponent(keyId)}`, { updateMask, ...fields }),
    );
  }

  /** `DELETE /kms/v1/keys/{keyId}`. */
  async deleteKey(keyId: string): Promise<void> {
    const op = await this.request<Operation>('DELETE', `/kms/v1/keys/${encodeURIComponent(keyId)}`);
    if (op.error) throw new KmsApiError(op.error.code, op.error.message, 200, op.error.details);
  }

  /** `POST /kms/v1/keys/{keyId}:rotate`; resolves to the new primary version id. */
  async rotateKey(keyId: string): Promise<string | undefined> {
    const op = await this.request<Operation>('POST', `/kms/v1/keys/${encodeURIComponent(keyId)}:rotate`, {});
    if (op.error) throw new KmsApiError(op.error.code, op.error.message, 200, op.error.details);
    const id = op.metadata?.['newPrimaryVersionId'];
    return typeof id === 'string' ? id : undefined;
  }

  /** `GET /kms/v1/keys/{keyId}:listAccessBindings`, every page. */
  async listKeyAccessBindings(keyId: string): Promise<AccessBinding[]> {
    const bindings: AccessBinding[] = [];
    let pageToken: string | undefined;
    do {
      const q = new URLSearchParams({ pageSize: '1000' });
      if (pageToken) q.set('pageToken', pageToken);
      const page = await this.request<{ accessBindings?: AccessBinding[]; nextPageToken?: string }>(
        'GET',
        `/kms/v1/keys/${encodeURIComponent(keyId)}:listAccessBindings?${q.toString()}`,
      );
      bindings.push(...(page.accessBindings ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return bindings;
  }

  /** `POST /kms/v1/keys/{keyId}:updateAccessBindings`; resolves when the operation is done. */
  async updateKeyAccessBindings(keyId: string, accessBindingDeltas: AccessBindingDelta[]): Promise<void> {
    const op = await this.request<Operation>('POST', `/kms/v1/keys/${encodeURIComponent(keyId)}:updateAccessBindings`, { accessBindingDeltas });
    if (op.error) throw new KmsApiError(op.error.code, op.error.message, 200, op.error.details);
  }

  /** `POST /kms/v1/keys/{keyId}:encrypt` with the primary version. Inputs are raw bytes. */
  async encrypt(keyId: string, plaintext: Uint8Array, aadContext?: Uint8Array): Promise<EncryptResult> {
    return this.request('POST', `/kms/v1/keys/${encodeURIComponent(keyId)}:encrypt`, {
      plaintext: Buffer.from(plaintext).toString('base64'),
      ...(aadContext !== undefined && { aadContext: Buffer.from(aadContext).toString('base64') }),
    });
  }

  /** `POST /kms/v1/keys/{keyId}:decrypt`; `ciphertext` is the base64 the daemon returned. */
  async decrypt(keyId: string, ciphertext: string, aadContext?: Uint8Array): Promise<DecryptResult> {
    return this.request('POST', `/kms/v1/keys/${encodeURIComponent(keyId)}:decrypt`, {
      ciphertext,
      ...(aadContext !== undefined && { aadContext: Buffer.from(aadContext).toString('base64') }),
    });
  }

  /** `POST /kms/v1/keys/{keyId}:generateDataKey` with the primary version. */
  async generateDataKey(keyId: string, dataKeySpec: SymmetricAlgorithm, aadContext?: Uint8Array): Promise<DataKeyResult> {
    return this.request('POST', `/kms/v1/keys/${encodeURIComponent(keyId)}:generateDataKey`, {
      dataKeySpec,
      ...(aadContext !== undefined && { aadContext: Buffer.from(aadContext).toString('base64') }),
    });
  }

  /** `POST /admin/v1/serviceAccounts` (bootstrap admin only). */
  async createServiceAccount(name: string, description?: string): Promise<ServiceAccount> {
    return this.request('POST', ADMIN_PATHS.serviceAccounts, { name, ...(description !== undefined && { description }) });
  }

  /** `GET /admin/v1/serviceAccounts`. */
  async listServiceAccounts(): Promise<ServiceAccount[]> {
    return (await this.request<{ serviceAccounts?: ServiceAccount[] }>('GET', ADMIN_PATHS.serviceAccounts)).serviceAccounts ?? [];
  }

  /** `DELETE /admin/v1/serviceAccounts/{id}`: revokes its tokens and removes its bindings. */
  async deleteServiceAccount(id: string): Promise<void> {
    await this.request('DELETE', ADMIN_PATHS.serviceAccount(id));
  }

  /** `POST /admin/v1/tokens` for `serviceAccount:<id>`, `userAccount:<id>` or `system:metrics`. */
  async issueToken(subject: string, description?: string): Promise<IssuedToken> {
    return this.request('POST', ADMIN_PATHS.tokens, { subject, ...(description !== undefined && { description }) });
  }

  /** `GET /admin/v1/tokens` (never values). */
  async listTokens(): Promise<TokenInfo[]> {
    return (await this.request<{ tokens?: TokenInfo[] }>('GET', ADMIN_PATHS.tokens)).tokens ?? [];
  }

  /** `DELETE /admin/v1/tokens/{id}`: revoked at once. */
  async revokeToken(id: string): Promise<void> {
    await this.request('DELETE', ADMIN_PATHS.token(id));
  }

  private operationResult<R>(op: Operation<R>): R {
    if (op.error) throw new KmsApiError(op.error.code, op.error.message, 200, op.error.details);
    if (op.response === undefined) throw new KmsApiError(GrpcCode.INTERNAL, `operation ${op.id} finished without a response`, 200);
    return op.response;
  }

  /** One HTTP exchange: status and body text, or a {@link KmsUnreachableError}. */
  private async exchange(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    retried = false,
  ): Promise<{ status: number; text: string }> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 30_000);
    const signal = this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
    let target: URL;
    try {
      target = new URL(this.base + path);
    } catch (err) {
      throw new KmsUnreachableError(this.base, describeFailure(err));
    }
    this.transport ??= openTransport(target);
    const transport = await this.transport;
    return new Promise((resolve, reject) => {
      const fail = (err: unknown): void => reject(new KmsUnreachableError(this.base, describeFailure(err)));
      if (signal.aborted) return fail(signal.reason);
      const req = transport.request(target, { method, headers, agent: transport.agent, signal }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', fail);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', (err: Error & { code?: string }) => {
        // The daemon may close an idle kept-alive connection just as we reuse it: the request
        // never reached it, so sending it once more on a fresh connection is safe.
        if (!retried && !signal.aborted && req.reusedSocket && err.code === 'ECONNRESET') {
          this.exchange(method, path, body, headers, true).then(resolve, reject);
          return;
        }
        fail(signal.aborted ? signal.reason : err);
      });
      req.end(body);
    });
  }

  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers['authorization'] = `Bearer ${this.options.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const { status, text } = await this.exchange(method, path, payload, headers);
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status >= 300) {
      const e = parsed as { code?: unknown; message?: unknown; details?: unknown } | undefined;
      const message = typeof e?.message === 'string' ? e.message : `HTTP ${status}`;
      throw new KmsApiError(typeof e?.code === 'number' ? e.code : GrpcCode.INTERNAL, message, status, Array.isArray(e?.details) ? e.details : []);
    }
    if (parsed === undefined || typeof parsed !== 'object' || parsed === null) {
      throw new KmsApiError(GrpcCode.INTERNAL, `${method} ${path}: the daemon answered with something that is not a JSON object`, status);
    }
    return parsed as T;
  }
}
