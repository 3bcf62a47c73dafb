// Runs on disk: `<runs-dir>/<run>/checkpoints/step-NNNNNNNN/`. Resolves what a user types for a
// checkpoint (a checkpoint, a run directory or a run name) and tells whether a run is in use.
// `train --resume` still has its own lookup (findResumeCheckpoint in commands/train.ts); it can
// move here once that file is free to change.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE } from '@baka/model';
import { latestCheckpoint } from '@baka/trainer';
import { UserError, defaultRunsDir, resolveUserPath } from './cli-kit';

/** Run names: what `train --run` accepts. */
export const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The file a training process holds in its run directory; it contains the process id. */
export const LOCK_FILE = '.lock';

/** A run counts as being trained when its database heartbeat is younger than this. */
export const HEARTBEAT_BUSY_MS = 5 * 60_000;

/** `--runs-dir` as given, or the default `<repo root>/runs`. */
export function runsDirectory(flag: string | undefined): string {
  return flag === undefined ? defaultRunsDir() : resolveUserPath(flag);
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/**
 * The checkpoint directory `value` names: a checkpoint (config.json), a run directory or its
 * checkpoints/ directory (the newest complete checkpoint), or a run name in `runsDir`.
 */
export function resolveCheckpointArgument(
  value: string,
  runsDir: string,
  flag = '--checkpoint',
): string {
  const path = resolveUserPath(value);
  if (existsSync(join(path, CONFIG_FILE))) return path;
  const candidates = [join(path, 'checkpoints'), path];
  if (RUN_NAME.test(value)) candidates.push(join(runsDir, value, 'checkpoints'));
  for (const candidate of candidates) {
    if (!isDirectory(candidate)) continue;
    const latest = latestCheckpoint(candidate);
    if (latest) return latest;
    if (candidate.endsWith('checkpoints')) {
      throw new UserError(`${flag}: ${candidate} holds no complete checkpoint yet`);
    }
  }
  if (existsSync(path) && !isDirectory(path)) {
    throw new UserError(`${flag}: ${value} is a file, not a checkpoint directory`);
  }
  if (isDirectory(path)) {
    throw new UserError(
      `${flag}: ${value} is neither a checkpoint (no config.json) nor a run directory (no checkpoints/)`,
    );
  }
  throw new UserError(
    `${flag}: directory not found: ${value}${RUN_NAME.test(value) ? ` (nor a run of that name in ${runsDir})` : ''}`,
  );
}

/** Whether process `pid` exists (a process of another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live process id in `<runDir>/.lock` (plain or JSON `{ "pid": N }`), or null. */
export function lockHolder(runDir: string): number | null {
  const path = join(runDir, LOCK_FILE);
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8');
  let pid: number;
  try {
    const parsed = JSON.parse(text) as unknown;
    pid = typeof parsed === 'number' ? parsed : Number((parsed as { pid?: unknown })?.pid);
  } catch {
    pid = Number(/\d+/.exec(text)?.[0]);
  }
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) ? pid : null;
}
