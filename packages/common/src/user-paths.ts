// Paths relative to where the user typed the command. pnpm runs package scripts inside the
// package (`pnpm --filter cli train` runs in apps/cli) but records the caller's directory in
// INIT_CWD. The CLI and the metrics viewer both import these from `@baka/common/user-paths`.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** The directory the user ran the command from. */
export function userDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

/** Resolves a path the user typed against the directory they typed it in. */
export function resolveUserPath(path: string): string {
  return isAbsolute(path) ? path : resolve(userDirectory(), path);
}

/** The repository root (the directory holding pnpm-workspace.yaml) above `from`, if any. */
export function findRepositoryRoot(from: string = userDirectory()): string | undefined {
  let directory = resolve(from);
  for (;;) {
    if (existsSync(join(directory, 'pnpm-workspace.yaml'))) return directory;
    const parent = dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}
