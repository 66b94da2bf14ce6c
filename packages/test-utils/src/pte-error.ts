import { PteError } from '@pte/core';

/** The PteError that `fn` throws (fails the test if it throws nothing or something else). Shared by the packages' tests. */
export function thrownBy(fn: () => unknown): PteError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PteError);
    return e as PteError;
  }
  throw new Error('expected a PteError, nothing was thrown');
}
