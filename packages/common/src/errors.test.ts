import { describe, expect, it } from 'vitest';
import { BakaError, isUserError, userErrorExitCode } from './index';

describe('BakaError', () => {
  it('carries the user-error marker and exit code 2 by default, 1 when given', () => {
    class SomeError extends BakaError {
      override name = 'SomeError';
    }
    const error = new SomeError('bad --x');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('SomeError');
    expect(error.message).toBe('bad --x');
    expect(isUserError(error)).toBe(true);
    expect(userErrorExitCode(error)).toBe(2);
    expect(userErrorExitCode(new BakaError('disk full', { exitCode: 1 }))).toBe(1);
    expect(new BakaError('x', { cause: 'y' }).cause).toBe('y');
  });

  it('the marker, not the class, decides: a plain Error is not a user error', () => {
    expect(isUserError(new Error('bug'))).toBe(false);
    expect(isUserError({ isUserError: true, message: 'not an Error' })).toBe(false);
    expect(isUserError(undefined)).toBe(false);
    // another copy of the package: same marker, another class
    const foreign = Object.assign(new Error('from another copy'), { isUserError: true as const });
    expect(isUserError(foreign)).toBe(true);
    expect(userErrorExitCode(foreign)).toBe(2);
  });
});
