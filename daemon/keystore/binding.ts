/**
 * The pairing of a store with the HSM custody its wrapped material depends on.
 *
 * On the first start of an empty store, kmsd records which token (label, serial) and which root
 * wrapping key (label, CKA_ID, key check value) it uses. Every later start compares the keystore
 * it opened with that record and samples stored versions (one wrapped blob is unwrapped, one
 * token object is looked up): a store with keys is never paired with another token or root key,
 * whatever the configuration says. A store from before this record existed is adopted only when
 * the sample proves the keystore is the right one.
 */
import { KmsError } from '../domain/errors.js';
import { HSM_BINDING_ID, type HsmBindingRecord, type StateView } from '../domain/model.js';
import type { Keystore, KeystoreIdentity, Store } from '../domain/ports.js';

/** What the store depends on, in words for messages. */
export function describeCustody(binding: Pick<HsmBindingRecord, 'kind' | 'token' | 'rootKey'>): string {
  const details = [
    binding.rootKey.id !== '' ? `CKA_ID ${binding.rootKey.id}` : '',
    binding.rootKey.checkValue !== '' ? `check value ${binding.rootKey.checkValue}` : '',
  ].filter((d) => d !== '');
  const key = `root key '${binding.rootKey.label}'${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
  if (binding.kind === 'software') return `the software keystore's ${key}`;
  return `${key} in PKCS#11 token '${binding.token?.label ?? '?'}' (serial ${binding.token?.serial ?? '?'})`;
}

/** How much key material a store holds, for messages: "12 keys, 30 versions". */
export function describeHoldings(state: StateView): string {
  return `${state.keys.size} keys, ${state.versions.size} versions`;
}

/** True when the store holds nothing that depends on an HSM: a first start may create one. */
export function storeIsUnbound(state: StateView): boolean {
  return state.keys.size === 0 && state.versions.size === 0 && !state.hsm.has(HSM_BINDING_ID);
}

/** A refusal to start with `problem`, naming the store, what to restore and from where. */
export function refuseStart(dataDir: string, state: StateView, problem: string): KmsError {
  const recorded = state.hsm.get(HSM_BINDING_ID);
  if (recorded !== undefined && !problem.includes(recorded.rootKey.label)) problem = `${problem} (the store depends on ${describeCustody(recorded)})`;
  return refuse(dataDir, state, problem);
}

function refuse(dataDir: string, state: StateView, problem: string): KmsError {
  return new KmsError(
    'FAILED_PRECONDITION',
    `refusing to start: ${problem}. The store in ${dataDir} (${describeHoldings(state)}) cannot be used with it. ` +
      'Start kmsd with the HSM configuration this data directory was created with, or restore the data directory ' +
      '(kms.json, kms.journal, tokens/, hsm-pins.json, softhsm2.conf) from one backup (README: "Backup and restore"). ' +
      'kmsd never pairs a store that has keys with a new token or root key.',
  );
}

/** The differences between what the store recorded and what the keystore is, in words. */
function differences(recorded: HsmBindingRecord, actual: KeystoreIdentity): string[] {
  const found: string[] = [];
  if (recorded.kind !== actual.kind) found.push(`keystore kind is ${actual.kind}, the store was made with ${recorded.kind}`);
  if (recorded.token !== null && actual.token !== null) {
    if (recorded.token.label !== actual.token.label) found.push(`token label is '${actual.token.label}', expected '${recorded.token.label}'`);
    if (recorded.token.serial !== actual.token.serial) found.push(`token serial is ${actual.token.serial}, expected ${recorded.token.serial}`);
  }
  if (recorded.rootKey.label !== actual.rootKey.label) found.push(`root key label is '${actual.rootKey.label}', expected '${recorded.rootKey.label}'`);
  if (recorded.rootKey.id !== actual.rootKey.id) found.push(`root key CKA_ID is ${actual.rootKey.id || 'empty'}, expected ${recorded.rootKey.id || 'empty'}`);
  if (recorded.rootKey.checkValue !== '' && actual.rootKey.checkValue !== '' && recorded.rootKey.checkValue !== actual.rootKey.checkValue) {
    found.push(`root key check value is ${actual.rootKey.checkValue}, expected ${recorded.rootKey.checkValue}`);
  }
  return found;
}

/** Unwraps one stored wrapped version and finds one token-object version, if the store has them. */
function sampleMaterial(state: StateView, keystore: Keystore): void {
  let wrapped = false;
  let token = false;
  for (const version of state.versions.values()) {
    const material = version.material;
    if (material === undefined) continue;
    if (material.kind === 'wrapped' && !wrapped) {
      keystore.checkMaterial(material, version.algorithm);
      wrapped = true;
    } else if (material.kind === 'token' && !token) {
      keystore.checkMaterial(material, version.algorithm);
      token = true;
    }
    if (wrapped && token) return;
  }
}

/**
 * Checks the keystore against the store's record (when there is one) and samples stored
 * material. Throws a refusal naming the missing or different piece.
 */
export function verifyBinding(state: StateView, keystore: Keystore, dataDir: string): HsmBindingRecord | undefined {
  const identity = keystore.identity();
  const recorded = state.hsm.get(HSM_BINDING_ID);
  if (recorded !== undefined) {
    const diff = differences(recorded, identity);
    if (diff.length > 0) throw refuse(dataDir, state, `the HSM kmsd opened is not ${describeCustody(recorded)}: ${diff.join('; ')}`);
  }
  try {
    sampleMaterial(state, keystore);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw refuse(dataDir, state, recorded !== undefined ? `${reason} (the store depends on ${describeCustody(recorded)})` : reason);
  }
  return recorded;
}

/**
 * Verifies the keystore (`verifyBinding`) and records it when the store has no record yet.
 * Resolves once the record is durable.
 */
export async function bindKeystore(store: Store, keystore: Keystore, dataDir: string, now: () => Date): Promise<'recorded' | 'matched' | 'adopted'> {
  const state = store.read((s) => s);
  const recorded = verifyBinding(state, keystore, dataDir);
  if (recorded !== undefined) return 'matched';
  const adopted = !storeIsUnbound(state);
  const identity = keystore.identity();
  let raced = false;
  await store.update((tx) => {
    // Another node of a PostgreSQL cluster may have recorded its custody meanwhile: never overwrite it.
    raced = tx.hsm.has(HSM_BINDING_ID);
    if (!raced) tx.hsm.set(HSM_BINDING_ID, { id: HSM_BINDING_ID, ...identity, recordedAt: now().toISOString() });
  });
  if (raced) {
    verifyBinding(store.read((s) => s), keystore, dataDir);
    return 'matched';
  }
  return adopted ? 'adopted' : 'recorded';
}
