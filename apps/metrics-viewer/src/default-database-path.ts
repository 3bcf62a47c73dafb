// Where the viewer looks by default: `runs/metrics.sqlite` at the repository root (the directory
// holding pnpm-workspace.yaml above where the user typed the command), else under that directory.
// pnpm runs package scripts inside the package but records the caller's directory in INIT_CWD.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export function userDirectory(): string {
  return process.env.INIT_CWD ?? process.cwd();
}

export function findRepositoryRoot(from: string = userDirectory()): string | undefined {
  let directory = resolve(from);
  for (;;) {
    if (existsSync(join(directory, 'pnpm-workspace.yaml'))) return directory;
    const parent = dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}

export function defaultDatabasePath(): string {
  return join(findRepositoryRoot() ?? userDirectory(), 'runs', 'metrics.sqlite');
}

/** A path the user typed, resolved against the directory they typed it in. */
export function resolveDatabasePath(path: string | undefined): string {
  if (path === undefined) return defaultDatabasePath();
  return isAbsolute(path) ? path : resolve(userDirectory(), path);
}
