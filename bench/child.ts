// Runs one bench worker in its own process and reads its `RESULT <json>` line.
import { spawn } from 'node:child_process';

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Spawns `command args` in `cwd`, collecting output; `echo` streams stdout through. */
export function runChild(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutSeconds?: number; echo?: boolean },
): Promise<ChildRun> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (options.echo) process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer =
      options.timeoutSeconds === undefined
        ? null
        : setTimeout(() => {
            stderr += `\n(killed after ${options.timeoutSeconds} s)`;
            child.kill('SIGKILL');
          }, options.timeoutSeconds * 1000);
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - began) / 1000 });
    });
  });
}

/** The JSON of the last `RESULT ` line, or an error carrying the child's stderr tail. */
export function parseResult<T>(run: ChildRun, what: string): T {
  const line = run.stdout
    .split('\n')
    .reverse()
    .find((text) => text.startsWith('RESULT '));
  if (run.code !== 0 || line === undefined) {
    const tail = run.stderr.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${what} failed (exit ${run.code}):\n${tail}`);
  }
  return JSON.parse(line.slice('RESULT '.length)) as T;
}
