// Helpers for the REST client's tests.
import { expect } from '@jest/globals';
import { KmsUnreachableError } from '../../provider/client/kms-client.js';

/** The reason of a call that must fail as an unreachable daemon (timeouts, transport errors). */
export async function unreachableReason(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (err) {
    expect(err).toBeInstanceOf(KmsUnreachableError);
    return (err as KmsUnreachableError).reason;
  }
  throw new Error('expected the call to fail');
}
