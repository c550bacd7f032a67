/**
 * Typed REST client for the kmsd daemon (Yandex Cloud KMS-compatible REST API): the one client of
 * the codebase, used by the Terraform provider, `kmsctl` and the web console. It has no Node
 * imports: the HTTP exchange is a pluggable {@link Transport} (node:http(s) by default,
 * ./node-transport.ts; `fetch` in the browser, ./fetch-transport.ts). Every failure is one of two
 * errors: {@link KmsApiError} (the daemon answered with an error) or {@link KmsUnreachableError}
 * (no answer at all), so callers can tell users which it was.
 */
import type { AuditQuery as AuditEventQuery, ChainedAuditEvent as AuditEvent } from '../../daemon/domain/ports.js';
import { ADMIN_PATHS } from '../../api/admin-paths.js';
import type * as Wire from '../../api/wire.gen.js';
import type { Present } from '../../api/wire.js';
import { nodeTransport } from './node-transport.js';

/** One HTTP exchange as the client asks a transport for it. */
export interface TransportRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: string | undefined;
  /** Aborts the exchange (timeout or the caller's signal). */
  signal: AbortSignal;
}

/** Status and body text of an answer. */
export interface TransportResponse {
  status: number;
  text: string;
}

/** Sends one exchange; rejects only when no answer came (the client turns that into KmsUnreachableError). */
export type Transport = (request: TransportRequest) => Promise<TransportResponse>;

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

/** Result of `POST /kms/v1/keys/{keyId}:reEncrypt`. */
export interface ReEncryptResult {
  keyId: string;
  versionId: string;
  sourceKeyId: string;
  sourceVersionId: string;
  ciphertext: string;
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

/**
 * One event of the audit trail as the query API returns it (with its chain fields), and the
 * filters of `GET /kms/v1/auditEvents` (time bounds RFC 3339, inclusive): the daemon's own
 * definitions (types only; nothing of the daemon is loaded).
 */
export type { AuditEvent, AuditEventQuery };

/** Result of `GET /kms/v1/auditEvents:verify`: the daemon's walk of the whole trail. */
export interface AuditVerification {
  ok: boolean;
  events: number;
  segments: number;
  headSeq: number;
  findings: { segment?: string; line?: number; reason: string }[];
  notes: string[];
  verifiedAt: string;
}

/** One page of a list call. */
export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

/** How to reach the daemon. */
export interface KmsClientOptions {
  endpoint: string;
  token: string;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** Aborts every in-flight request (StopProvider). */
  signal?: AbortSignal;
  /** How requests travel; default node:http(s) with keep-alive (./node-transport.ts). */
  transport?: Transport;
}

function describeFailure(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'TimeoutError') return 'timed out';
  if (e.name === 'AbortError') return 'request cancelled';
  return e.code ?? e.message ?? String(err);
}

/** Bytes to base64 without Buffer (the client also runs in the browser). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** base64 to bytes without Buffer. */
export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const enc = encodeURIComponent;

/** One exchange in flight: what aborts it, and when it times out. */
interface InFlight {
  controller: AbortController;
  deadline: number;
}

/** The typed client. One instance per configured provider (or CLI call, or console session). */
export class KmsClient {
  private readonly base: string;
  private readonly transport: Transport;
  private readonly timeoutMs: number;
  /**
   * Exchanges in flight, oldest first. They all have the same timeout, so this is also the order
   * of their deadlines: one timer, armed for the oldest, times them all out (instead of a timeout
   * signal and a combined signal per call), and the caller's signal aborts them all.
   */
  private readonly inFlight = new Set<InFlight>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: KmsClientOptions) {
    this.base = options.endpoint.replace(/\/+$/, '');
    this.transport = options.transport ?? nodeTransport();
    this.timeoutMs = options.timeoutMs ?? 30_000;
    const outer = options.signal;
    outer?.addEventListener(
      'abort',
      () => {
        for (const call of this.inFlight) call.controller.abort(outer.reason);
        this.inFlight.clear();
      },
      { once: true },
    );
  }

  /** `GET /healthz` (no auth). */
  async health(): Promise<{ status: string; [field: string]: unknown }> {
    return this.request('GET', '/healthz', undefined, false);
  }

  /** `GET /openapi.json`: the API description; open to every valid token (a cheap token check). */
  async describeApi(): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json');
  }

  /** `GET /kms/v1/keys/{keyId}`. */
  async getKey(keyId: string): Promise<SymmetricKey> {
    return this.request('GET', `/kms/v1/keys/${enc(keyId)}`);
  }

  /** `GET /kms/v1/keys?folderId=…` (one page). */
  async listKeys(folderId: string, pageSize?: number, pageToken?: string): Promise<{ keys: SymmetricKey[]; nextPageToken?: string }> {
    const q = new URLSearchParams({ folderId });
    if (pageSize !== undefined) q.set('pageSize', String(pageSize));
    if (pageToken) q.set('pageToken', pageToken);
    const page = await this.request<{ keys?: SymmetricKey[]; nextPageToken?: string }>('GET', `/kms/v1/keys?${q.toString()}`);
    return { keys: page.keys ?? [], ...(page.nextPageToken && { nextPageToken: page.nextPageToken }) };
  }

  /** Every key of a folder (all pages). */
  async listAllKeys(folderId: string): Promise<SymmetricKey[]> {
    const keys: SymmetricKey[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.listKeys(folderId, 1000, pageToken);
      keys.push(...page.keys);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return keys;
  }

  /** `POST /kms/v1/keys`; resolves to the created key. */
  async createKey(body: CreateSymmetricKeyRequest): Promise<SymmetricKey> {
    return this.operationResult(await this.request<Operation<SymmetricKey>>('POST', '/kms/v1/keys', body));
  }

  /** `PATCH /kms/v1/keys/{keyId}` with an update mask of the given field names. */
  async updateKey(keyId: string, fields: UpdateSymmetricKeyFields): Promise<SymmetricKey> {
    const updateMask = Object.keys(fields).join(',');
    return this.operationResult(await this.request<Operation<SymmetricKey>>('PATCH', `/kms/v1/keys/${enc(keyId)}`, { updateMask, ...fields }));
  }

  /** `DELETE /kms/v1/keys/{keyId}`. */
  async deleteKey(keyId: string): Promise<void> {
    await this.deleteKeyOperation(keyId);
  }

  /** `DELETE /kms/v1/keys/{keyId}`; resolves to the finished operation. */
  async deleteKeyOperation(keyId: string): Promise<Operation> {
    return this.done(await this.request<Operation>('DELETE', `/kms/v1/keys/${enc(keyId)}`));
  }

  /** `POST /kms/v1/keys/{keyId}:restore`; resolves to the restored key. */
  async restoreKey(keyId: string): Promise<SymmetricKey> {
    return this.operationResult(await this.request<Operation<SymmetricKey>>('POST', `/kms/v1/keys/${enc(keyId)}:restore`, {}));
  }

  /** `POST /kms/v1/keys/{keyId}:rotate`; resolves to the new primary version id. */
  async rotateKey(keyId: string): Promise<string | undefined> {
    const op = await this.rotateKeyOperation(keyId);
    const id = op.metadata?.['newPrimaryVersionId'];
    return typeof id === 'string' ? id : undefined;
  }

  /** `POST /kms/v1/keys/{keyId}:rotate`; resolves to the finished operation. */
  async rotateKeyOperation(keyId: string): Promise<Operation<SymmetricKey>> {
    return this.done(await this.request<Operation<SymmetricKey>>('POST', `/kms/v1/keys/${enc(keyId)}:rotate`, {}));
  }

  /** `GET /kms/v1/keys/{keyId}/versions` (one page). */
  async listVersions(keyId: string, pageSize?: number, pageToken?: string): Promise<Page<SymmetricKeyVersion>> {
    const page = await this.request<{ keyVersions?: SymmetricKeyVersion[]; nextPageToken?: string }>('GET', `/kms/v1/keys/${enc(keyId)}/versions${pageQuery(pageSize, pageToken)}`);
    return { items: page.keyVersions ?? [], ...(page.nextPageToken && { nextPageToken: page.nextPageToken }) };
  }

  /** `POST /kms/v1/keys/{keyId}:setPrimaryVersion`; resolves to the key. */
  async setPrimaryVersion(keyId: string, versionId: string): Promise<SymmetricKey> {
    return this.operationResult(await this.request<Operation<SymmetricKey>>('POST', `/kms/v1/keys/${enc(keyId)}:setPrimaryVersion`, { versionId }));
  }

  /** `POST /kms/v1/keys/{keyId}:scheduleVersionDestruction`; resolves to the version. */
  async scheduleVersionDestruction(keyId: string, versionId: string, pendingPeriod?: string): Promise<SymmetricKeyVersion> {
    return this.operationResult(
      await this.request<Operation<SymmetricKeyVersion>>('POST', `/kms/v1/keys/${enc(keyId)}:scheduleVersionDestruction`, {
        versionId,
        ...(pendingPeriod !== undefined && { pendingPeriod }),
      }),
    );
  }

  /** `POST /kms/v1/keys/{keyId}:cancelVersionDestruction`; resolves to the version. */
  async cancelVersionDestruction(keyId: string, versionId: string): Promise<SymmetricKeyVersion> {
    return this.operationResult(await this.request<Operation<SymmetricKeyVersion>>('POST', `/kms/v1/keys/${enc(keyId)}:cancelVersionDestruction`, { versionId }));
  }

  /** `GET /kms/v1/keys/{keyId}/operations` (one page, oldest first). */
  async listOperations(keyId: string, pageSize?: number, pageToken?: string): Promise<Page<Operation>> {
    const page = await this.request<{ operations?: Operation[]; nextPageToken?: string }>('GET', `/kms/v1/keys/${enc(keyId)}/operations${pageQuery(pageSize, pageToken)}`);
    return { items: page.operations ?? [], ...(page.nextPageToken && { nextPageToken: page.nextPageToken }) };
  }

  /** `GET /operations/{operationId}`. */
  async getOperation(operationId: string): Promise<Operation> {
    return this.request('GET', `/operations/${enc(operationId)}`);
  }

  /** `GET /kms/v1/keys/{keyId}:listAccessBindings`, every page. */
  async listKeyAccessBindings(keyId: string): Promise<AccessBinding[]> {
    return this.listBindings(`/kms/v1/keys/${enc(keyId)}`);
  }

  /** `POST /kms/v1/keys/{keyId}:setAccessBindings` (replaces every binding); resolves when done. */
  async setKeyAccessBindings(keyId: string, accessBindings: AccessBinding[]): Promise<Operation> {
    return this.done(await this.request<Operation>('POST', `/kms/v1/keys/${enc(keyId)}:setAccessBindings`, { accessBindings }));
  }

  /** `POST /kms/v1/keys/{keyId}:updateAccessBindings`; resolves when the operation is done. */
  async updateKeyAccessBindings(keyId: string, accessBindingDeltas: AccessBindingDelta[]): Promise<Operation> {
    return this.done(await this.request<Operation>('POST', `/kms/v1/keys/${enc(keyId)}:updateAccessBindings`, { accessBindingDeltas }));
  }

  /** `GET /resource-manager/v1/folders/{folderId}:listAccessBindings`, every page. */
  async listFolderAccessBindings(folderId: string): Promise<AccessBinding[]> {
    return this.listBindings(`/resource-manager/v1/folders/${enc(folderId)}`);
  }

  /** `POST /resource-manager/v1/folders/{folderId}:updateAccessBindings`. */
  async updateFolderAccessBindings(folderId: string, accessBindingDeltas: AccessBindingDelta[]): Promise<Operation> {
    return this.done(await this.request<Operation>('POST', `/resource-manager/v1/folders/${enc(folderId)}:updateAccessBindings`, { accessBindingDeltas }));
  }

  /** `POST /kms/v1/keys/{keyId}:encrypt` (primary version unless `versionId`). Inputs are raw bytes. */
  async encrypt(keyId: string, plaintext: Uint8Array, aadContext?: Uint8Array, versionId?: string): Promise<EncryptResult> {
    return this.request('POST', `/kms/v1/keys/${enc(keyId)}:encrypt`, {
      plaintext: bytesToBase64(plaintext),
      ...(aadContext !== undefined && { aadContext: bytesToBase64(aadContext) }),
      ...(versionId !== undefined && { versionId }),
    });
  }

  /** `POST /kms/v1/keys/{keyId}:decrypt`; `ciphertext` is the base64 the daemon returned. */
  async decrypt(keyId: string, ciphertext: string, aadContext?: Uint8Array): Promise<DecryptResult> {
    return this.request('POST', `/kms/v1/keys/${enc(keyId)}:decrypt`, {
      ciphertext,
      ...(aadContext !== undefined && { aadContext: bytesToBase64(aadContext) }),
    });
  }

  /** `POST /kms/v1/keys/{keyId}:reEncrypt`: decrypts under the source key and encrypts under this one. */
  async reEncrypt(
    keyId: string,
    request: { sourceKeyId: string; ciphertext: string; sourceAadContext?: Uint8Array; aadContext?: Uint8Array; versionId?: string },
  ): Promise<ReEncryptResult> {
    return this.request('POST', `/kms/v1/keys/${enc(keyId)}:reEncrypt`, {
      sourceKeyId: request.sourceKeyId,
      ciphertext: request.ciphertext,
      ...(request.sourceAadContext !== undefined && { sourceAadContext: bytesToBase64(request.sourceAadContext) }),
      ...(request.aadContext !== undefined && { aadContext: bytesToBase64(request.aadContext) }),
      ...(request.versionId !== undefined && { versionId: request.versionId }),
    });
  }

  /** `POST /kms/v1/keys/{keyId}:generateDataKey` with the primary version. */
  async generateDataKey(keyId: string, dataKeySpec: SymmetricAlgorithm, aadContext?: Uint8Array, skipPlaintext?: boolean): Promise<DataKeyResult> {
    return this.request('POST', `/kms/v1/keys/${enc(keyId)}:generateDataKey`, {
      dataKeySpec,
      ...(aadContext !== undefined && { aadContext: bytesToBase64(aadContext) }),
      ...(skipPlaintext === true && { skipPlaintext: true }),
    });
  }

  /** Creates a service account (`POST` on ADMIN_PATHS.serviceAccounts). */
  async createServiceAccount(name: string, description?: string): Promise<ServiceAccount> {
    return this.request('POST', ADMIN_PATHS.serviceAccounts, { name, ...(description !== undefined && { description }) });
  }

  /** Lists service accounts. */
  async listServiceAccounts(): Promise<ServiceAccount[]> {
    return (await this.request<{ serviceAccounts?: ServiceAccount[] }>('GET', ADMIN_PATHS.serviceAccounts)).serviceAccounts ?? [];
  }

  /** Deletes a service account (revokes its tokens and bindings). */
  async deleteServiceAccount(serviceAccountId: string): Promise<void> {
    await this.request('DELETE', ADMIN_PATHS.serviceAccount(serviceAccountId));
  }

  /** Issues a token: the value is in this answer only. */
  async issueToken(subject: string, description?: string): Promise<IssuedToken> {
    return this.request('POST', ADMIN_PATHS.tokens, { subject, ...(description !== undefined && { description }) });
  }

  /** Lists tokens (never values). */
  async listTokens(): Promise<TokenInfo[]> {
    return (await this.request<{ tokens?: TokenInfo[] }>('GET', ADMIN_PATHS.tokens)).tokens ?? [];
  }

  /** Revokes a token at once. */
  async revokeToken(tokenId: string): Promise<void> {
    await this.request('DELETE', ADMIN_PATHS.token(tokenId));
  }

  /** `GET /kms/v1/auditEvents` (one page, oldest first). */
  async listAuditEvents(query: AuditEventQuery = {}): Promise<Page<AuditEvent>> {
    const q = new URLSearchParams();
    for (const [name, value] of Object.entries(query) as [string, string | number | undefined][]) {
      if (value !== undefined && value !== '') q.set(name, String(value));
    }
    const text = q.toString();
    const page = await this.request<{ events?: AuditEvent[]; nextPageToken?: string }>('GET', `/kms/v1/auditEvents${text === '' ? '' : `?${text}`}`);
    return { items: page.events ?? [], ...(page.nextPageToken && { nextPageToken: page.nextPageToken }) };
  }

  /** `GET /kms/v1/auditEvents:verify`: the daemon verifies the whole trail under its audit key. */
  async verifyAudit(): Promise<AuditVerification> {
    return this.request('GET', '/kms/v1/auditEvents:verify');
  }

  private async listBindings(base: string): Promise<AccessBinding[]> {
    const bindings: AccessBinding[] = [];
    let pageToken: string | undefined;
    do {
      const q = new URLSearchParams({ pageSize: '1000' });
      if (pageToken) q.set('pageToken', pageToken);
      const page = await this.request<{ accessBindings?: AccessBinding[]; nextPageToken?: string }>('GET', `${base}:listAccessBindings?${q.toString()}`);
      bindings.push(...(page.accessBindings ?? []));
      pageToken = page.nextPageToken;
    } while (pageToken);
    return bindings;
  }

  private done<O extends Operation>(op: O): O {
    if (op.error) throw new KmsApiError(op.error.code, op.error.message, 200, op.error.details);
    return op;
  }

  private operationResult<R>(op: Operation<R>): R {
    this.done(op);
    if (op.response === undefined) throw new KmsApiError(GrpcCode.INTERNAL, `operation ${op.id} finished without a response`, 200);
    return op.response;
  }

  /** One HTTP exchange: status and body text, or a {@link KmsUnreachableError}. */
  private async exchange(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<TransportResponse> {
    let url: URL;
    try {
      url = new URL(this.base + path);
    } catch (err) {
      throw new KmsUnreachableError(this.base, describeFailure(err));
    }
    const outer = this.options.signal;
    if (outer?.aborted) throw new KmsUnreachableError(this.base, describeFailure(outer.reason));
    const call: InFlight = { controller: new AbortController(), deadline: performance.now() + this.timeoutMs };
    this.inFlight.add(call);
    this.timer ??= this.arm(this.timeoutMs);
    const { signal } = call.controller;
    try {
      return await this.transport({ method, url, headers, body, signal });
    } catch (err) {
      throw new KmsUnreachableError(this.base, describeFailure(signal.aborted ? signal.reason : err));
    } finally {
      this.inFlight.delete(call);
    }
  }

  /** The timeout timer; like AbortSignal.timeout's, it does not keep a Node process alive. */
  private arm(ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.expire(), ms);
    (timer as { unref?: () => void }).unref?.();
    return timer;
  }

  /** Times out every exchange past its deadline, then waits for the next one's. */
  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const call of this.inFlight) {
      if (call.deadline > now) {
        this.timer = this.arm(call.deadline - now);
        return;
      }
      this.inFlight.delete(call);
      call.controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }
  }

  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers['authorization'] = `Bearer ${this.options.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // The body's length is the transport's business (framing): node-transport writes it, fetch too.
    if (payload !== undefined) headers['content-type'] = 'application/json';
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

function pageQuery(pageSize: number | undefined, pageToken: string | undefined): string {
  const q = new URLSearchParams();
  if (pageSize !== undefined) q.set('pageSize', String(pageSize));
  if (pageToken) q.set('pageToken', pageToken);
  const text = q.toString();
  return text === '' ? '' : `?${text}`;
}
