// Helpers of the CLI's end-to-end tests: the CLI as a real process run from source, a small
// corpus + tokenizer + model config that trains in seconds, and the metrics a run logged.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainBpe } from '@baka/tokenizer';
import { MetricsStore } from '@baka/trainer';
import { afterEach } from 'vitest';

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
