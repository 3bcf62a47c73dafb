// The CLI decides "one line, no stack" by the user-error marker of @baka/common's BakaError, not
// by a list of classes: any library's subclass (or another copy's marked error) is reported the
// same way, with its exit code; anything else is a bug and is rethrown with its stack.
import { BakaError } from '@baka/common';
import { DataError } from '@baka/data';
import { ModelError } from '@baka/model';
import { StorageError } from '@baka/trainer';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { action, CommandFailure, UserError } from './cli-kit';

class Exit extends Error {
  constructor(readonly code: number | undefined) {
    super(`exit ${code}`);
  }
}

/** Runs `action(() => throw error)` and returns what it printed and its exit code. */
async function report(error: unknown): Promise<{ stderr: string; code: number | undefined }> {
  let stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Exit(code as number | undefined);
  });
  try {
    await action(() => {
      throw error;
    })();
  } catch (thrown) {
    if (thrown instanceof Exit) return { stderr, code: thrown.code };
    throw thrown;
  }
  throw new Error('action returned');
}

afterEach(() => vi.restoreAllMocks());

describe('action: user errors by their marker', () => {
  it('any BakaError is one line with its exit code: 2 for mistakes, 1 for failures', async () => {
    class SomeLibraryError extends BakaError {}
    expect(await report(new SomeLibraryError('bad thing'))).toEqual({
      stderr: 'baka: bad thing\n',
      code: 2,
    });
    expect(await report(new DataError('corpus x: empty'))).toEqual({
      stderr: 'baka: corpus x: empty\n',
      code: 2,
    });
    expect((await report(new ModelError('m'))).code).toBe(2);
    expect((await report(new UserError('--x expects'))).code).toBe(2);
    expect(await report(new StorageError('cannot write x: disk full'))).toEqual({
      stderr: 'baka: cannot write x: disk full\n',
      code: 1,
    });
    expect((await report(new CommandFailure('loss is NaN'))).code).toBe(1);
  });

  it('a marked error from another copy of @baka/common counts; an unmarked one is a bug', async () => {
    const foreign = Object.assign(new Error('from elsewhere'), { isUserError: true });
    expect(await report(foreign)).toEqual({ stderr: 'baka: from elsewhere\n', code: 2 });
    const bug = new TypeError('undefined is not a function');
    await expect(report(bug)).rejects.toBe(bug);
  });
});
