/**
 * Zero-step SoftHSM2 for `kmsd`: on first start with defaults, the daemon gets its own SoftHSM2
 * configuration and token directory under the data dir, generated PINs in a 0600 file, and a
 * token that `openPkcs11Keystore` initializes by label. Later starts reuse all of it.
 *
 *   <dataDir>/softhsm2.conf    tokendir = <dataDir>/tokens
 *   <dataDir>/tokens/          SoftHSM2's token files
 *   <dataDir>/hsm-pins.json    {"tokenLabel", "userPin", "soPin"}, mode 0600
 *
 * SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, for the whole process. An already-set
 * SOFTHSM2_CONF wins (an operator's choice, or the shared configuration the jest globalSetup
 * creates for all test workers); the token label is generated per data dir, so several data dirs
 * can share one token directory without colliding.
 *
 * Durability: every file written here is fsynced with its directory before kmsd goes on, and
 * SoftHSM2 itself never fsyncs, so after every token write (initialization, root key, audit key,
 * an AES_256_HSM version) the token directory is synced too (`syncTokenDirectory`). A power cut
 * right after the first start therefore cannot leave an empty configuration or a half-written
 * token behind a store that depends on it. And nothing here ever starts over on its own: when the
 * store already holds wrapped material (`allowCreate: false`), a missing PIN file or token is a
 * refusal to start, not a fresh token.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { KmsError } from '../domain/errors.js';
import { crashPoint } from '../crash-points.js';
import { fsyncDirectory } from '../store/durable-file.js';
import type { KeystoreLogger } from './material.js';
import { writeSecretFile } from './secret-file.js';
import { openPkcs11Keystore, type Pkcs11Keystore } from './pkcs11.js';

/** Where Debian/Ubuntu (package softhsm2) and source builds put the module, in search order. */
export const SOFTHSM_MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
  '/opt/homebrew/lib/softhsm/libsofthsm2.so',
];

/** File names inside the data dir. */
export const SOFTHSM_FILES = {
  conf: 'softhsm2.conf',
  tokens: 'tokens',
  pins: 'hsm-pins.json',
} as const;

/** What `provisionSoftHsm` settled on; everything `openPkcs11Keystore` needs. */
export interface SoftHsmProvisioning {
  modulePath: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** The SoftHSM2 configuration this process uses (ours, or the one SOFTHSM2_CONF named before). */
  confPath: string;
  pinsPath: string;
}

/** Options of `provisionSoftHsm`; all optional. */
export interface SoftHsmProvisionOptions {
  /** Module path; default: the first of SOFTHSM_MODULE_CANDIDATES that exists. */
  modulePath?: string;
  /** Token label; default: the one generated into the PIN file on first start. */
  tokenLabel?: string;
  /** PINs from the environment or config; when both are given no PIN file is read or written. */
  pin?: string;
  soPin?: string;
  logger?: KeystoreLogger;
  /**
   * Whether a first start may happen: generate PINs, create the token and its root key. False when
   * the store already depends on this HSM; a missing piece is then a refusal to start.
   */
  allowCreate?: boolean;
  /** Write nothing (maintenance commands next to a live daemon): a missing file is an error. */
  readOnly?: boolean;
}

interface PinFile {
  tokenLabel: string;
  userPin: string;
  soPin: string;
}

/** The first SoftHSM2 module that exists, or the Debian path (so the error message names it). */
export function findSoftHsmModule(): string {
  return SOFTHSM_MODULE_CANDIDATES.find((p) => existsSync(p)) ?? (SOFTHSM_MODULE_CANDIDATES[0] as string);
}

function newSecret(): string {
  // 24 random bytes → 32 base64url characters; SoftHSM2 accepts PINs of 4-255 bytes.
  return randomBytes(24).toString('base64url');
}

function readPinFile(file: string, logger?: KeystoreLogger): PinFile {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger?.warn(`${file} is readable by others (mode ${mode.toString(8)}); it holds the HSM PINs: chmod 600 it`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new KmsError('FAILED_PRECONDITION', `${file} is not valid JSON; restore it from backup (it holds the HSM PINs)`);
  }
  const p = parsed as Partial<PinFile> | null;
  if (typeof p?.tokenLabel !== 'string' || typeof p.userPin !== 'string' || typeof p.soPin !== 'string') {
    throw new KmsError('FAILED_PRECONDITION', `${file} lacks tokenLabel, userPin or soPin; restore it from backup`);
  }
  return { tokenLabel: p.tokenLabel, userPin: p.userPin, soPin: p.soPin };
}

/**
 * Prepares SoftHSM2 for the data dir: configuration, token directory, PIN file (created once,
 * before any token exists, so a token is never initialized with PINs that were not saved) and
 * SOFTHSM2_CONF if unset. Idempotent; never overwrites an existing file.
 */
export function provisionSoftHsm(dataDir: string, options: SoftHsmProvisionOptions = {}): SoftHsmProvisioning {
  const dir = path.resolve(dataDir);
  const tokensDir = path.join(dir, SOFTHSM_FILES.tokens);
  const ourConf = path.join(dir, SOFTHSM_FILES.conf);
  const pinsPath = path.join(dir, SOFTHSM_FILES.pins);
  const allowCreate = options.allowCreate ?? true;
  const readOnly = options.readOnly === true;
  if (!existsSync(tokensDir)) {
    if (!allowCreate || readOnly) throw missingPiece(dir, `the SoftHSM2 token directory ${tokensDir} is missing`);
    mkdirSync(tokensDir, { recursive: true, mode: 0o700 });
    fsyncDirectory(dir);
  }
  const confText = softHsmConf(tokensDir);
  if (!readOnly && readText(ourConf) !== confText) {
    // Missing, or cut short by a power loss before the first start made it durable: its content is
    // determined by the data dir, so writing it again changes nothing SoftHSM2 depends on.
    if (existsSync(ourConf)) options.logger?.warn(`${ourConf} did not hold the expected configuration; rewrote it (tokendir ${tokensDir})`);
    writeSecretFile(ourConf, confText, { replace: true });
    crashPoint('softhsm-conf-written');
  }

  let pins: PinFile;
  if (options.pin !== undefined && options.soPin !== undefined) {
    pins = { tokenLabel: options.tokenLabel ?? 'kmsd', userPin: options.pin, soPin: options.soPin };
  } else {
    if (!existsSync(pinsPath)) {
      if (!allowCreate || readOnly) throw missingPiece(dir, `the HSM PIN file ${pinsPath} is missing`);
      // Random label: data dirs sharing one SoftHSM2 token directory (tests) get distinct tokens.
      const generated: PinFile = { tokenLabel: `kmsd-${randomBytes(4).toString('hex')}`, userPin: newSecret(), soPin: newSecret() };
      writeSecretFile(pinsPath, `${JSON.stringify(generated, null, 2)}\n`);
      crashPoint('hsm-pins-written');
      options.logger?.info(`generated HSM PINs in ${pinsPath} (mode 0600); back it up together with ${tokensDir}`);
    }
    pins = readPinFile(pinsPath, options.logger);
  }

  const preset = process.env.SOFTHSM2_CONF;
  if (preset === undefined || preset === '') {
    // Takes effect because C_Initialize has not run yet in this process; see the file comment.
    process.env.SOFTHSM2_CONF = ourConf;
  } else if (path.resolve(preset) !== ourConf) {
    options.logger?.info(`SOFTHSM2_CONF is set to ${preset}; using it instead of ${ourConf}`);
  }

  return {
    modulePath: options.modulePath ?? findSoftHsmModule(),
    tokenLabel: options.tokenLabel ?? pins.tokenLabel,
    pin: options.pin ?? pins.userPin,
    soPin: options.soPin ?? pins.soPin,
    confPath: process.env.SOFTHSM2_CONF ?? ourConf,
    pinsPath,
  };
}

/**
 * The default keystore of `kmsd`: provisions SoftHSM2 under `dataDir` and opens the token,
 * initializing it and its root wrapping key on first start.
 */
export function openSoftHsmKeystore(dataDir: string, options: SoftHsmProvisionOptions = {}): Pkcs11Keystore {
  const hsm = provisionSoftHsm(dataDir, options);
  const tokensRoot = tokenDirectoryOf(hsm.confPath);
  const syncer = tokensRoot === undefined ? undefined : new TokenDirectorySync(tokensRoot, hsm.tokenLabel);
  const sync = syncer === undefined ? undefined : () => syncer.sync();
  const keystore = openPkcs11Keystore({
    modulePath: hsm.modulePath,
    tokenLabel: hsm.tokenLabel,
    pin: hsm.pin,
    soPin: hsm.soPin,
    allowCreate: (options.allowCreate ?? true) && options.readOnly !== true,
    ...(sync !== undefined ? { afterTokenWrite: sync } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  // Whatever this start created (token, PIN, root key) is on disk before kmsd says it is ready.
  if (sync !== undefined && options.readOnly !== true) sync();
  return keystore;
}

/** The configuration kmsd writes for its own token directory. */
function softHsmConf(tokensDir: string): string {
  return [
    '# Written by kmsd on first start. SoftHSM2 reads it via SOFTHSM2_CONF.',
    `directories.tokendir = ${tokensDir}`,
    'objectstore.backend = file',
    'log.level = ERROR',
    'slots.removable = false',
    '',
  ].join('\n');
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `directories.tokendir` of a SoftHSM2 configuration file, if it names one. */
export function tokenDirectoryOf(confPath: string): string | undefined {
  const text = readText(confPath);
  const match = text === undefined ? null : /^\s*directories\.tokendir\s*=\s*(.+?)\s*$/m.exec(text);
  return match?.[1];
}

/**
 * Makes SoftHSM2's writes to one token durable. SoftHSM2 writes its object files without fsync;
 * an object the store refers to (root key, an AES_256_HSM version) must survive a power cut like
 * the store does. Each sync fsyncs the files of this token that changed since the last one (by
 * size and mtime), then the token's directory and the tokens directory.
 */
export class TokenDirectorySync {
  /** size:mtime of every file as last synced. */
  private readonly synced = new Map<string, string>();
  private tokenDir: string | undefined;

  constructor(
    private readonly tokensRoot: string,
    private readonly label: string,
  ) {}

  sync(): void {
    const dir = (this.tokenDir ??= this.findTokenDir());
    if (dir === undefined) {
      // Not created yet, or not recognisable: sync everything under the root (a first start).
      this.syncTree(this.tokensRoot, new Set());
      return;
    }
    const seen = new Set<string>();
    this.syncTree(dir, seen);
    fsyncDirectory(this.tokensRoot);
    // Destroyed objects' files are gone: forget them, so the map stays the size of the token.
    for (const file of this.synced.keys()) if (!seen.has(file)) this.synced.delete(file);
  }

  /** The directory SoftHSM2 keeps this token in: the one whose token.object carries the label. */
  private findTokenDir(): string | undefined {
    const padded = Buffer.from(this.label.padEnd(32, ' '), 'utf8');
    for (const entry of readdirSync(this.tokensRoot, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(this.tokensRoot, entry.name);
      try {
        if (readFileSync(path.join(dir, 'token.object')).includes(padded)) return dir;
      } catch {
        // a directory without a token.object is not a token (yet)
      }
    }
    return undefined;
  }

  private syncTree(dir: string, seen: Set<string>): void {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) this.syncTree(full, seen);
      else if (entry.isFile()) {
        seen.add(full);
        const stat = statSync(full);
        const version = `${stat.size}:${stat.mtimeMs}`;
        if (this.synced.get(full) === version) continue;
        const fd = openSync(full, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        this.synced.set(full, version);
      }
    }
    fsyncDirectory(dir);
  }
}

/** A refusal to start because something the store depends on is gone. */
function missingPiece(dataDir: string, what: string): KmsError {
  return new KmsError(
    'FAILED_PRECONDITION',
    `${what}, but the store in ${dataDir} holds key material that depends on it. ` +
      'Restore the data directory from a backup (README: "Backup and restore"); kmsd never creates new HSM PINs or a new token for a store that has keys.',
  );
}
