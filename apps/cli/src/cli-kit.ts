// Small helpers every command shares: user errors without stack traces, paths relative to where
// the user typed the command, and a wrapper that turns thrown errors into exit codes.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** A mistake of the user's (bad flag, missing file): printed as one message, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
}

/**
 * The directory the user ran the command from. pnpm runs package scripts inside the package
 * (`pnpm --filter cli train` runs in apps/cli) but records the caller's directory in INIT_CWD.
 */
export function userCwd(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

/** Resolves a path the user typed against the directory they typed it in. */
export function resolveUserPath(path: string): string {
  return isAbsolute(path) ? path : resolve(userCwd(), path);
}

/** The repository root (the directory holding pnpm-workspace.yaml) above `from`, if any. */
export function findRepoRoot(from: string = userCwd()): string | undefined {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Default `./runs` directory: at the repository root when inside the repo, else the cwd. */
export function defaultRunsDir(): string {
  return join(findRepoRoot() ?? userCwd(), 'runs');
}

/** Wraps a command action: user errors print `baka: message` and exit 2; bugs keep their stack. */
export function action<Args extends unknown[]>(
  run: (...args: Args) => Promise<void> | void,
): (...args: Args) => Promise<void> {
  return async (...args: Args) => {
    try {
      await run(...args);
    } catch (error) {
      if (error instanceof UserError || (error as { isUserError?: boolean })?.isUserError) {
        process.stderr.write(`baka: ${(error as Error).message}\n`);
        process.exit(2);
      }
      throw error;
    }
  };
}

/** Parses an integer flag, naming the flag in the error. */
export function parseIntFlag(flag: string, value: string, { min = -Infinity } = {}): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UserError(
      `${flag} expects an integer${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`,
    );
  }
  return n;
}

/** Parses a number flag, naming the flag in the error. */
export function parseNumberFlag(flag: string, value: string, { min = -Infinity } = {}): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new UserError(
      `${flag} expects a number${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`,
    );
  }
  return n;
}
