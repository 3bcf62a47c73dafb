#!/usr/bin/env node
// Runs the CLI from source: TypeScript through tsx, workspace packages through their
// `@baka/source` export condition, so no build step is needed. `pnpm baka` and
// `pnpm --filter cli baka|train` run this file too.
//
// The CLI runs as a child whose stderr passes through native-log-filter.js, which drops the two
// lines TensorFlow 2.21 prints when its native library loads at any log level (absl's pre-init
// warning, "oneDNN custom operations are on") and passes everything else on as it arrives. With
// --verbose nothing is filtered (stderr is inherited as is). stdin and stdout are inherited.
//
// Signals are forwarded so that Ctrl-C, SIGTERM and SIGHUP reach the training loop (which saves a
// checkpoint before exiting); the exit code or signal of the child is this process's own.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNativeLogFilter } from './native-log-filter.js';

/** How often a wrapper under a package-manager script checks that its parent is alive. */
const PARENT_POLL_MS = 250;

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');
const args = process.argv.slice(2);
const filter = args.includes('--verbose') ? null : createNativeLogFilter();
const env = { ...process.env };
// The child's stderr is a pipe: tell it that the user's stderr is a terminal (progress.ts then
// redraws its bar in place) and how wide it is.
if (filter !== null && process.stderr.isTTY) {
  env.BAKA_STDERR_TTY_COLUMNS = String(process.stderr.columns ?? 80);
}
const child = spawn(
  process.execPath,
  ['--conditions=@baka/source', '--import', tsx, main, ...args],
  { stdio: ['inherit', 'inherit', filter === null ? 'inherit' : 'pipe'], env },
);

// A closed stderr (the terminal or the package manager gone) must not end this process before
// the child has saved and exited.
process.stderr.on('error', () => {});
if (filter !== null) {
  child.stderr.setEncoding('latin1');
  child.stderr.on('data', (chunk) => {
    const out = filter.write(chunk);
    if (out !== '') process.stderr.write(out, 'latin1');
  });
}

let signalled = false;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    signalled = true;
    // A terminal's Ctrl-C already reached the child through the process group; forward the rest.
    if (signal !== 'SIGINT' || !process.stdin.isTTY) child.kill(signal);
  });
}

// pnpm does not pass SIGTERM on to its script and exits at once: when the parent that started
// this wrapper goes, the child is asked to stop (unless a signal already did), like a SIGTERM.
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    if (!signalled) child.kill('SIGTERM');
  }, PARENT_POLL_MS);
  watch.unref();
}

child.on('error', (error) => {
  process.stderr.write(`baka: cannot start the CLI: ${error.message}\n`);
  process.exit(1);
});

let result = null;
const finish = () => {
  if (result === null) return;
  const [code, signal] = result;
  result = null;
  if (filter !== null) {
    const rest = filter.end();
    if (rest !== '') process.stderr.write(rest, 'latin1');
  }
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
};
child.on('exit', (code, signal) => {
  result = [code, signal];
  // 'close' follows once the child's stderr is drained; a process the child left behind holding
  // the pipe open must not keep this one waiting.
  if (filter === null) finish();
  else setTimeout(finish, 1000);
});
child.on('close', finish);
