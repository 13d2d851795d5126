// Asserts that a decoder fed hostile input either returns or throws one of
// our typed errors — never a TypeError, RangeError or anything else.
import { expect } from 'vitest';
import { CryptoError, isDecodeError } from '../../services/core/errors.js';

export function expectOnlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (isDecodeError(e) || e instanceof CryptoError) return;
    expect.fail(`untyped error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
}
