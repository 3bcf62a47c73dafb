import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pruneCheckpoints } from './checkpoint';
import { LOCK_FILE, RunLock } from './run-lock';

const sleepers: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of sleepers.splice(0)) child.kill('SIGKILL');
});

/** A real live process that is not this one. */
function liveProcess(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  sleepers.push(child);
  return child.pid!;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  }).stdout as unknown as number;
}

function lockOf(pid: number): string {
  return JSON.stringify({ pid: Number(pid), host: hostname(), startedAt: '2026-01-01T00:00:00Z' });
}

describe('RunLock', () => {
  it('holds the pid; a live holder is an error naming it; released on release()', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'baka-lock-'));
    const lock = RunLock.acquire(runDir, 'r');
    expect(JSON.parse(readFileSync(join(runDir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    expect(lock.tookOverFrom).toBeNull();
    lock.release();
    expect(existsSync(join(runDir, LOCK_FILE))).toBe(false);

    const other = liveProcess();
    writeFileSync(join(runDir, LOCK_FILE), lockOf(other));
    expect(() => RunLock.acquire(runDir, 'r')).toThrow(
      new RegExp(
        `^run 'r' is being trained by process ${other} on .* \\(lock .*train\\.lock\\); wait for it to finish or stop it$`,
      ),
    );
    expect(JSON.parse(readFileSync(join(runDir, LOCK_FILE), 'utf8')).pid).toBe(other);
  });

  it('a stale lock of a process that is gone is taken over', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'baka-lock-'));
    const dead = Number(deadPid());
    writeFileSync(join(runDir, LOCK_FILE), lockOf(dead));
    const lock = RunLock.acquire(runDir, 'r');
    expect(lock.tookOverFrom).toBe(dead);
    expect(JSON.parse(readFileSync(join(runDir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    lock.release();
  });
});

describe('pruneCheckpoints', () => {
  it("never removes a live process's staging directories, only those of processes that are gone", () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-prune-'));
    const live = liveProcess();
    const dead = Number(deadPid());
    const mine = join(dir, `.step-00000007.tmp-${live}-1-abc`);
    const stale = join(dir, `.step-00000007.tmp-${dead}-1-abc`);
    const own = join(dir, `.step-00000008.tmp-${process.pid}-1-abc`);
    for (const path of [mine, stale, own]) mkdirSync(path);
    pruneCheckpoints(dir, 3);
    expect(existsSync(mine)).toBe(true);
    expect(existsSync(own)).toBe(true);
    expect(existsSync(stale)).toBe(false);
  });
});
