// Helpers of the CLI's end-to-end tests: the CLI as a real process run from source, a small
// corpus + tokenizer + model config that trains in seconds, and the metrics a run logged.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainBpe } from '@baka/tokenizer';
import { latestCheckpoint, MetricsStore } from '@baka/trainer';
import { afterEach, expect } from 'vitest';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

/** Every CLI process a test started; any still running after the test (a failure) is killed. */
export const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** Starts the CLI's own process (no wrapper), so signals reach the training loop directly. */
export function startCli(args: string[], stdio: 'ignore' | 'pipe'): ChildProcess {
  const child = spawn(process.execPath, cliArgs(args), { stdio: ['ignore', stdio, stdio] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Node arguments that run the CLI from source. */
export function cliArgs(args: string[]): string[] {
  return ['--conditions=@baka/source', '--import', tsx, main, ...args];
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Collects a piped child's output until it closes. */
export function collect(child: ChildProcess): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs the CLI to completion without blocking this worker's event loop. */
export function runCli(args: string[]): Promise<CliResult> {
  return collect(startCli(args, 'pipe'));
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'baka-train-cli-'));
}

/**
 * Writes DIR/corpus.jsonl (40 short documents, one per line) and DIR/tokenizer.json (a 300-token
 * BPE trained on them); returns both paths.
 */
export function writeSmallCorpus(dir: string): { corpus: string; tokenizer: string } {
  const texts = Array.from({ length: 40 }, (_, i) =>
    Array.from(
      { length: 3 + (i % 4) },
      (_, j) =>
        `Speaker ${(i + j) % 5}: the ${['king', 'queen', 'fool', 'ghost'][(i + j) % 4]} walks at night and speaks of ${i * j} things.`,
    ).join('\n'),
  );
  const corpus = join(dir, 'corpus.jsonl');
  writeFileSync(corpus, texts.map((text) => JSON.stringify({ text })).join('\n'));
  const tokenizer = join(dir, 'tokenizer.json');
  writeFileSync(
    tokenizer,
    JSON.stringify(
      trainBpe(texts, { vocabSize: 300, specialTokens: ['<|endoftext|>', '<|padding|>'] }),
    ),
  );
  return { corpus, tokenizer };
}

/**
 * A small corpus (JSON Lines, one document per line), a 300-token BPE trained on it and a tiny
 * model config, so a CLI run takes seconds on the cpu backend.
 */
export function smallSetup(): { dir: string; common: string[] } {
  const dir = tempDir();
  const { corpus, tokenizer } = writeSmallCorpus(dir);
  const config = join(dir, 'model.json');
  writeFileSync(
    config,
    JSON.stringify({ dim_model: 16, dim_ff: 32, n_layers: 2, n_heads: 2, n_ctx: 8 }),
  );
  const common = [
    '--corpus',
    corpus,
    '--tokenizer',
    tokenizer,
    '--config',
    config,
    '--runs-dir',
    join(dir, 'runs'),
    '--backend',
    'cpu',
    '--window',
    '16',
  ];
  return { dir, common };
}

/** `--set key=value` flags, one pair per setting. */
export function setFlags(settings: readonly string[]): string[] {
  return settings.flatMap((setting) => ['--set', setting]);
}

/**
 * A variant's training arguments: smallSetup's `common`, the model `settings`, the state carried
 * from window to window (--carry-memory) and no sample at the end.
 */
export function carriedVariantArgs(
  common: readonly string[],
  settings: readonly string[],
): string[] {
  return [...common, '--carry-memory', ...setFlags(settings), '--no-sample'];
}

/** `train --resume RUN` in `runs` on the cpu backend without a sample, to `steps` when given. */
export function resumeArgs(run: string, runs: string, steps?: number): string[] {
  const until = steps === undefined ? [] : ['--steps', String(steps)];
  return [
    'train',
    '--resume',
    run,
    '--runs-dir',
    runs,
    '--backend',
    'cpu',
    ...until,
    '--no-sample',
  ];
}

/**
 * Asserts that a one-step training run with `settings` is refused: exit 2 and a single stderr
 * line (besides the backend line) matching `message`.
 */
export async function expectRefusedSettings(
  common: readonly string[],
  settings: readonly string[],
  message: RegExp,
): Promise<void> {
  const run = await runCli([
    'train',
    ...common,
    '--steps',
    '1',
    ...setFlags(settings),
    '--no-sample',
  ]);
  expect(run.status, settings.join(' ')).toBe(2);
  const lines = run.stderr
    .trim()
    .split('\n')
    .filter((line) => !line.startsWith('backend:'));
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
}

export function waitFor(
  check: () => boolean,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > timeoutMs || child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`condition not reached (exit code ${child.exitCode})`));
      }
    }, 100);
  });
}

export function runLosses(database: string, run: string): { step: number; loss: number }[] {
  const store = new MetricsStore(database, { readonly: true });
  const rows = store.db
    .prepare(
      'SELECT m.step, m.loss FROM metrics m JOIN runs ON runs.id = m.run_id WHERE runs.name = ? ORDER BY m.step',
    )
    .all(run) as { step: number; loss: number }[];
  store.close();
  return rows;
}

/**
 * The exact-resume check of a variant: trains run `straight` for `total` steps and run `split`
 * for `first` steps (both with `args`, which name the runs directory `runs`), hands split's
 * checkpoint to `afterFirst` (to look at what it saved), resumes split to `total` steps and
 * asserts that both runs logged the same losses, step for step. Returns split's final checkpoint.
 */
export async function expectExactResume(
  args: readonly string[],
  runs: string,
  options: { first?: number; total?: number; afterFirst?: (checkpoint: string) => void } = {},
): Promise<string> {
  const { first = 2, total = 4 } = options;
  // one after the other: both runs share the runs directory's shard cache and metrics database
  const straight = await runCli(['train', ...args, '--run', 'straight', '--steps', String(total)]);
  expect(straight.status, straight.stderr).toBe(0);
  const split = await runCli(['train', ...args, '--run', 'split', '--steps', String(first)]);
  expect(split.status, split.stderr).toBe(0);
  options.afterFirst?.(latestCheckpoint(join(runs, 'split', 'checkpoints'))!);
  const resumed = await runCli(resumeArgs('split', runs, total));
  expect(resumed.status, resumed.stderr).toBe(0);
  const database = join(runs, 'metrics.sqlite');
  const straightLosses = runLosses(database, 'straight');
  expect(straightLosses).toHaveLength(total);
  expect(runLosses(database, 'split')).toEqual(straightLosses);
  return latestCheckpoint(join(runs, 'split', 'checkpoints'))!;
}

/**
 * Uses a trained checkpoint as a user would: greedy `generate` of 12 tokens, `eval --input-ids`
 * on one row of 17 ids (written into `dir`) and `info`, each asserted to exit 0. Returns eval's
 * loss (asserted finite) and info's text.
 */
export async function useCheckpoint(
  checkpoint: string,
  dir: string,
): Promise<{ loss: number; info: string }> {
  const ids = join(dir, 'ids.json');
  writeFileSync(ids, JSON.stringify([[5, 17, 40, 2, 9, 11, 30, 8, 100, 7, 3, 4, 5, 6, 7, 8, 9]]));
  const [generated, evaluated, info] = await Promise.all([
    runCli([
      'generate',
      '--checkpoint',
      checkpoint,
      '--prompt',
      'the king walks at night and speaks',
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ]),
    runCli(['eval', '--checkpoint', checkpoint, '--input-ids', ids, '--json', '--backend', 'cpu']),
    runCli(['info', '--checkpoint', checkpoint]),
  ]);
  expect(generated.status, generated.stderr).toBe(0);
  expect(generated.stderr).toMatch(/12 tokens in/);
  expect(evaluated.status, evaluated.stderr).toBe(0);
  const { loss } = JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!) as { loss: number };
  expect(Number.isFinite(loss)).toBe(true);
  expect(info.status, info.stderr).toBe(0);
  return { loss, info: info.stdout };
}
