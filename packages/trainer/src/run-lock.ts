// One trainer per run: `<runDir>/train.lock` holds the pid, host and start time of the process
// training it. It is created with O_EXCL, so of two trainers starting together one wins; a lock
// whose process is gone (killed, crashed) on this host is stale and taken over.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TrainerError } from './trainer-state';

export const LOCK_FILE = 'train.lock';

interface LockContents {
  pid: number;
  host: string;
  startedAt: string;
}

/** True while process `pid` exists on this host (EPERM: it exists but is not ours to signal). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

function readLock(path: string): LockContents | null {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContents>;
    return typeof value.pid === 'number' && typeof value.host === 'string'
      ? { pid: value.pid, host: value.host, startedAt: String(value.startedAt ?? '') }
      : null;
  } catch {
    return null; // unreadable or half-written: treated as stale
  }
}

export class RunLock {
  /** The pid of the stale lock this one replaced, if any. */
  readonly tookOverFrom: number | null;
  private released = false;
  private readonly onExit = () => this.release();

  private constructor(
    readonly path: string,
    tookOverFrom: number | null,
  ) {
    this.tookOverFrom = tookOverFrom;
    process.once('exit', this.onExit);
  }

  /**
   * Locks `runDir` for this process. A live trainer's lock is an error naming its pid; a lock
   * of a process that no longer exists on this host is taken over.
   */
  static acquire(runDir: string, runName: string): RunLock {
    mkdirSync(runDir, { recursive: true });
    const path = join(runDir, LOCK_FILE);
    let tookOverFrom: number | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx');
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST') throw error;
        const holder = readLock(path);
        if (holder && holder.pid === process.pid && holder.host === hostname()) {
          throw new TrainerError(`run '${runName}' is already locked by this process (${path})`);
        }
        if (holder && (holder.host !== hostname() || isProcessAlive(holder.pid))) {
          throw new TrainerError(
            `run '${runName}' is being trained by process ${holder.pid} on ${holder.host} since ${holder.startedAt} ` +
              `(lock ${path}); wait for it to finish or stop it` +
              (holder.host !== hostname()
                ? ', or delete the lock if that host no longer runs it'
                : ''),
          );
        }
        tookOverFrom = holder?.pid ?? -1;
        rmSync(path, { force: true });
        continue;
      }
      const contents: LockContents = {
        pid: process.pid,
        host: hostname(),
        startedAt: new Date().toISOString(),
      };
      try {
        writeSync(fd, `${JSON.stringify(contents)}\n`);
      } finally {
        closeSync(fd);
      }
      return new RunLock(path, tookOverFrom);
    }
    throw new TrainerError(
      `run '${runName}': could not take the lock ${path} (other trainers keep starting)`,
    );
  }

  /** Removes the lock if it is still this process's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    const holder = readLock(this.path);
    if (holder && holder.pid === process.pid && holder.host === hostname()) {
      rmSync(this.path, { force: true });
    }
  }
}
