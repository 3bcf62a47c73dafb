// The one error base class of the BakaLLM packages. Every error a package throws on purpose (a bad
// option, an unusable file, a full disk) is a BakaError whose `isUserError` marker tells a CLI to
// print its message as one line without a stack trace and exit with its `exitCode`; anything
// else is a bug and keeps its stack. The marker is a plain property, so it also works across two
// copies of this package (instanceof would not).

export interface BakaErrorOptions {
  /** Exit code for a CLI: 2 (the default) for a user mistake, 1 for a failure that is not one. */
  exitCode?: number;
  cause?: unknown;
}

/** An error a CLI reports as one line (`isUserError`), exiting with `exitCode`. */
export class BakaError extends Error {
  override name = 'BakaError';
  /** The user-error marker: print the message only, no stack trace. */
  readonly isUserError = true;
  /** 2: the user's mistake (a bad flag, a missing file); 1: a failure (a full disk). */
  readonly exitCode: number;

  constructor(message: string, options: BakaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? 2;
  }
}

/** Whether `error` carries the user-error marker (a BakaError, from any copy of this package). */
export function isUserError(error: unknown): error is Error & {
  isUserError: true;
  exitCode?: number;
} {
  return error instanceof Error && (error as { isUserError?: unknown }).isUserError === true;
}

/** The exit code of a marked error: its `exitCode` when it has one, else 2. */
export function userErrorExitCode(error: Error & { exitCode?: unknown }): number {
  return typeof error.exitCode === 'number' ? error.exitCode : 2;
}
