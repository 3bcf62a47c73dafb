// Small helpers every command shares: user errors without stack traces, paths relative to where
// the user typed the command, and a wrapper that turns thrown errors into exit codes.
import { join } from 'node:path';
import { BakaError, isUserError, userErrorExitCode } from '@baka/common';
import { findRepositoryRoot, resolveUserPath, userDirectory } from '@baka/common/user-paths';
import { describeSystemError } from '@baka/trainer/storage-errors';

/** A mistake of the user's (bad flag, missing file): printed as one message, exit code 2. */
export class UserError extends BakaError {
  override name = 'UserError';
}

/** A command that ran but failed (a NaN evaluation, a full disk): printed as one message, exit 1. */
export class CommandFailure extends BakaError {
  override name = 'CommandFailure';
  constructor(message: string) {
    super(message, { exitCode: 1 });
  }
}

// Paths the user typed resolve against the directory they typed the command in (INIT_CWD under
// pnpm); one implementation, shared with the metrics viewer (@baka/common/user-paths).
export { resolveUserPath };
/** The directory the user ran the command from. */
export const userCwd = userDirectory;
/** The repository root (the directory holding pnpm-workspace.yaml) above `from`, if any. */
export const findRepoRoot = findRepositoryRoot;

/** Default `./runs` directory: at the repository root when inside the repo, else the cwd. */
export function defaultRunsDir(): string {
  return join(findRepoRoot() ?? userCwd(), 'runs');
}

/**
 * Wraps a command action: an error with the user-error marker (`isUserError`: every BakaError,
 * this CLI's UserError and CommandFailure included) prints `baka: message` and exits with its
 * `exitCode` (2 for a user mistake, 1 for a failure such as a NaN evaluation); operating-system
 * errors such as a full disk or a read-only directory print one line naming the path and exit 1;
 * bugs keep their stack.
 */
export function action<Args extends unknown[]>(
  run: (...args: Args) => Promise<void> | void,
): (...args: Args) => Promise<void> {
  return async (...args: Args) => {
    try {
      await run(...args);
    } catch (error) {
      const exit = (message: string, code: number): never => {
        process.stderr.write(`baka: ${message}\n`);
        process.exit(code);
      };
      if (isUserError(error)) exit(error.message, userErrorExitCode(error));
      const system = describeSystemError(error);
      if (system !== null) exit(system, 1);
      throw error;
    }
  };
}

/** Parses a numeric flag `valid` accepts (and >= min); the error names the flag and `kind`. */
function parseNumericFlag(
  flag: string,
  value: string,
  min: number,
  kind: string,
  valid: (n: number) => boolean,
): number {
  const n = Number(value);
  if (!valid(n) || n < min) {
    throw new UserError(
      `${flag} expects ${kind}${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`,
    );
  }
  return n;
}

/** Parses an integer flag, naming the flag in the error. */
export function parseIntFlag(flag: string, value: string, { min = -Infinity } = {}): number {
  return parseNumericFlag(flag, value, min, 'an integer', Number.isInteger);
}

/** Parses a number flag, naming the flag in the error. */
export function parseNumberFlag(flag: string, value: string, { min = -Infinity } = {}): number {
  return parseNumericFlag(flag, value, min, 'a number', Number.isFinite);
}

/** Commander's argument parser for a repeatable flag (`--set a=1 --set b=2`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Rethrows a library's user error (it has `isUserError`) as a UserError prefixed with `where`. */
export function asUserError<T>(where: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (isUserError(error)) {
      throw new UserError(`${where}${(error as Error).message}`);
    }
    throw error;
  }
}

/** A default as help text shows it. */
export function formatDefault(value: unknown): string {
  if (value === null) return 'none';
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}
