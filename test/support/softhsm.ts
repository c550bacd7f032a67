/**
 * Test helpers for the real SoftHSM2 token the keystore tests run against.
 *
 * - `testTokenOptions` hands each test file its own token (unique label) in the SoftHSM2
 *   directory that jest.global-setup.js creates for the whole run.
 * - `listSecretKeys` asks `pkcs11-tool` (OpenSC), a separate process, what the token holds: an
 *   outside witness of what the keystore stored.
 * - `withTokenInspector` opens its own pkcs11js session on the token to read attributes and to
 *   *attempt* extraction. This is test-only code and deliberately outside daemon/: the daemon has
 *   no path that reads key material out of the token.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type { PKCS11 } from 'pkcs11js';
import { findSoftHsmModule } from '../../daemon/keystore/softhsm.js';

/** The SoftHSM2 module the tests use. */
export const SOFTHSM_MODULE = findSoftHsmModule();

/** Fails with instructions when the jest globalSetup has not provided a SoftHSM2 configuration. */
export function sharedSoftHsmConf(): string {
  const conf = process.env.SOFTHSM2_CONF;
  if (conf === undefined || conf === '') {
    throw new Error(
      'SOFTHSM2_CONF is not set: the keystore tests need jest.global-setup.js as jest globalSetup ' +
        '(or run jest with --globalSetup ./jest.global-setup.js)',
    );
  }
  return conf;
}

/** Options for a fresh token of this test file: unique label, random PINs, SO PIN to create it. */
export function testTokenOptions(name: string): { modulePath: string; tokenLabel: string; pin: string; soPin: string } {
  sharedSoftHsmConf();
  const tokenLabel = `t-${name}-${randomBytes(4).toString('hex')}`.slice(0, 32);
  return { modulePath: SOFTHSM_MODULE, tokenLabel, pin: randomBytes(12).toString('hex'), soPin: randomBytes(12).toString('hex') };
}

/** One secret key as `pkcs11-tool --list-objects` prints it. */
export interface ListedSecretKey {
  label: string;
  /** e.g. "AES length 32". */
  type: string;
  usage: string[];
  access: string[];
}

/** Lists the token's secret keys with pkcs11-tool, logged in as user. */
export function listSecretKeys(token: { modulePath: string; tokenLabel: string; pin: string }): ListedSecretKey[] {
  const out = execFileSync(
    'pkcs11-tool',
    ['--module', token.modulePath, '--token-label', token.tokenLabel, '--login', '--pin', token.pin, '--list-objects', '--type', 'secrkey'],
    { encoding: 'utf8', env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keys: ListedSecretKey[] = [];
  for (const block of out.split(/^(?=Secret Key Object)/m)) {
    const type = /^Secret Key Object; (.*)$/m.exec(block)?.[1];
    if (type === undefined) continue;
    const field = (name: string): string => new RegExp(`^\\s+${name}:\\s+(.*)$`, 'm').exec(block)?.[1]?.trim() ?? '';
    const list = (name: string): string[] => field(name).split(',').map((s) => s.trim()).filter((s) => s !== '');
    keys.push({ label: field('label'), type: type.trim(), usage: list('Usage'), access: list('Access') });
  }
  return keys;
}

/** What the inspector can do inside one session on the token. */
export interface TokenInspector {
  readonly p11: PKCS11;
  readonly session: Buffer;
  /** The unique secret key with this label (throws otherwise). */
  key(label: string): Buffer;
  bool(handle: Buffer, attribute: number): boolean;
  /** Runs `fn` and returns the CKR_* name it failed with, or 'OK'. */
  failure(fn: () => unknown): string;
}

let inspectorModule: PKCS11 | undefined;

/**
 * Runs `fn` with a session on the token, logged in as user. Requires a keystore to be open on
 * that token in this process: the inspector must never be the one that initializes (and so
 * would later have to finalize) Cryptoki, nor log the keystore out.
 */
export function withTokenInspector<T>(token: { modulePath: string; tokenLabel: string; pin: string }, fn: (inspector: TokenInspector) => T): T {
  if (inspectorModule === undefined) {
    const p11 = new pkcs11js.PKCS11();
    p11.load(token.modulePath);
    inspectorModule = p11;
  }
  const p11 = inspectorModule;
  try {
    p11.C_Initialize();
    p11.C_Finalize();
    throw new Error('withTokenInspector needs a keystore open on the token first');
  } catch (err) {
    if ((err as { code?: number }).code !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.replace(/[\s\0]+$/u, '') === token.tokenLabel);
  if (slot === undefined) throw new Error(`token ${token.tokenLabel} not found`);
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      p11.C_Login(session, pkcs11js.CKU_USER, token.pin);
    } catch (err) {
      // The keystore's login is the application's login; ours is a no-op then. Never log out.
      if ((err as { code?: number }).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw err;
    }
    const inspector: TokenInspector = {
      p11,
      session,
      key(label) {
        p11.C_FindObjectsInit(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_LABEL, value: label },
        ]);
        const found = p11.C_FindObjects(session, 2);
        p11.C_FindObjectsFinal(session);
        if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one key labelled ${label}, found ${found.length}`);
        return found[0];
      },
      bool(handle, attribute) {
        const value = p11.C_GetAttributeValue(session, handle, [{ type: attribute }])[0]?.value;
        return value !== undefined && value[0] === 1;
      },
      failure(f) {
        try {
          f();
          return 'OK';
        } catch (err) {
          return err instanceof Error ? err.message : String(err);
        }
      },
    };
    return fn(inspector);
  } finally {
    p11.C_CloseSession(session);
  }
}
