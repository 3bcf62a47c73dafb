// Operating-system and database failures as one line naming the path and the problem (a full
// disk, a read-only or missing directory, a file where a directory is needed and the reverse, a
// corrupt database). They are not the user's typing mistakes, so the CLI exits 1 for them.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { BakaError } from '@baka/common';

/** A storage failure: printed as one line by the CLI (`isUserError`), with exit code 1. */
export class StorageError extends BakaError {
  override name = 'StorageError';
  constructor(message: string) {
    super(message, { exitCode: 1 });
  }
}

const PROBLEMS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a path component is a file where a directory is needed',
  EISDIR: 'it is a directory where a file is needed',
  EEXIST: 'something is already there',
  ENOTEMPTY: 'the directory is not empty',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EBUSY: 'the resource is busy',
  EXDEV: 'it is on another device',
};

const VERBS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create directory',
  rmdir: 'remove directory',
  rm: 'remove',
  unlink: 'remove',
  rename: 'rename',
  scandir: 'list directory',
  stat: 'stat',
  lstat: 'stat',
  copyfile: 'copy',
  fsync: 'write',
  close: 'close',
};

interface SystemError extends Error {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
}

/** True for a Node.js system error (ENOSPC, EACCES, ...). */
export function isSystemError(error: unknown): error is SystemError {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/** The nearest existing ancestor of `path` (or `path` itself) when it is not a directory. */
function fileInTheWay(path: string): string | null {
  for (let current = path; ; current = dirname(current)) {
    try {
      return statSync(current).isDirectory() ? null : current;
    } catch {
      if (dirname(current) === current) return null;
    }
  }
}

/**
 * A system error as `cannot <verb> <path>: <problem>`, or null for anything else. A file in
 * the way of a directory is named itself (`/runs is a file where a directory is needed`).
 */
export function describeSystemError(error: unknown): string | null {
  if (!isSystemError(error)) return null;
  const path = error.path;
  if (path !== undefined && (error.code === 'ENOTDIR' || error.code === 'EEXIST')) {
    const file = fileInTheWay(error.code === 'EEXIST' ? path : dirname(path));
    if (file !== null) return `${file} is a file where a directory is needed`;
  }
  if (path !== undefined && error.code === 'ENOENT' && error.syscall === 'mkdir') {
    // A recursive mkdir under a read-only or unwritable directory reports ENOENT.
    let existing = dirname(path);
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    try {
      accessSync(existing, constants.W_OK);
    } catch (cause) {
      if (isSystemError(cause)) {
        return `cannot create directory ${path}: ${existing} is not writable: ${PROBLEMS[cause.code] ?? cause.code} (${cause.code})`;
      }
    }
  }
  const problem = PROBLEMS[error.code] ?? error.message.replace(/^E[A-Z0-9]+: /, '').split(',')[0];
  const verb = VERBS[error.syscall ?? ''] ?? error.syscall ?? 'use';
  const target = path === undefined ? '' : ` ${path}${error.dest ? ` -> ${error.dest}` : ''}`;
  return `cannot ${verb}${target}: ${problem} (${error.code})`;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** SQLite's result codes (better-sqlite3 `SqliteError.code`) as problems a user can act on. */
const DATABASE_PROBLEMS: Record<string, string> = {
  SQLITE_NOTADB:
    'not a SQLite database (corrupt, or another kind of file); move it aside to start a new one',
  SQLITE_CORRUPT: 'the database is corrupt; move it aside to start a new one',
  SQLITE_READONLY: 'the database is read-only (file permissions or a read-only file system)',
  SQLITE_CANTOPEN: 'cannot open the database file',
  SQLITE_FULL: 'no space left on the device',
  SQLITE_IOERR: 'input/output error',
  SQLITE_PERM: 'permission denied',
  SQLITE_BUSY: 'the database is locked by another process',
};

/** A SQLite (or system) error of the database at `path` as one StorageError naming it. */
export function databaseError(path: string, error: unknown): Error {
  if (!(error instanceof Error))
    return new StorageError(`metrics database ${path}: ${String(error)}`);
  if (error instanceof StorageError) return error;
  const system = describeSystemError(error);
  if (system !== null) return new StorageError(`metrics database ${path}: ${system}`);
  const code = (error as { code?: unknown }).code;
  if (/^Cannot open database because the directory does not exist/.test(error.message)) {
    const parent = fileInTheWay(dirname(path));
    return new StorageError(
      `metrics database ${path}: ${parent !== null ? `${parent} is a file where a directory is needed` : 'its directory does not exist'}`,
    );
  }
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  let problem = DATABASE_PROBLEMS[code] ?? DATABASE_PROBLEMS[code.replace(/_[A-Z]+$/, '')];
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_IOERR') ||
    code.startsWith('SQLITE_READONLY')
  ) {
    try {
      if (statSync(path).isDirectory()) {
        problem = 'it is a directory where the database file is needed';
      } else {
        const unwritable = [path, dirname(path)].find((where) => !writable(where));
        if (unwritable !== undefined) {
          problem = `${unwritable} is not writable (a read-only file system or permissions)`;
        }
      }
    } catch {
      const parent = fileInTheWay(dirname(path));
      problem =
        parent !== null
          ? `${parent} is a file where a directory is needed`
          : 'the file or its directory does not exist';
    }
  }
  return new StorageError(`metrics database ${path}: ${problem ?? error.message} (${code})`);
}
