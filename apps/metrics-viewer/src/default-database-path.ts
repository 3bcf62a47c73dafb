// Where the viewer looks by default: `runs/metrics.sqlite` at the repository root (the directory
// holding pnpm-workspace.yaml above where the user typed the command), else under that directory.
import { join } from 'node:path';
import { findRepositoryRoot, resolveUserPath, userDirectory } from '@baka/common/user-paths';

export function defaultDatabasePath(): string {
  return join(findRepositoryRoot() ?? userDirectory(), 'runs', 'metrics.sqlite');
}

/** A path the user typed, resolved against the directory they typed it in. */
export function resolveDatabasePath(path: string | undefined): string {
  if (path === undefined) return defaultDatabasePath();
  return resolveUserPath(path);
}
