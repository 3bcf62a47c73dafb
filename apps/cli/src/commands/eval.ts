// `baka eval`: upstream's loss of a checkpoint on a batch of token ids.
//   baka eval --checkpoint DIR --input-ids FILE [--json] [--backend NAME]
// FILE is a JSON array of equal-length rows of token ids (one batch); labels = input ids. With
// --json the last stdout line is one JSON object: { loss, perplexity, tokens, rows, length, ... }.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_FORMATS, readInputIds } from '@baka/data';
import {
  BakaCausalLM,
  evaluateLoss,
  loadCheckpoint,
  makeConfig,
  parseConfigSettings,
  readCheckpointConfig,
  readCheckpointTensors,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from '@baka/model';
import { defaultTokenizerPath } from '@baka/tokenizer';
import {
  CHECKPOINT_FILES,
  type EvaluationResult,
  evaluate,
  MetricsStore,
  openCorpusDocuments,
  parseTrainerState,
  resultRow,
} from '@baka/trainer';
import type { Command } from 'commander';
import { backendOption, describeBackend, initBackend, type BackendChoice } from '../backend';
import {
  CommandFailure,
  UserError,
  action,
  asUserError,
  collect,
  defaultRunsDir,
  resolveUserPath,
} from '../cli-kit';
import { resolveCheckpointArgument, runsDirectory } from '../run-directory';
import { readerOptions } from './data';
import { answerLine } from './train';

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
  rows: number;
  length: number;
  seconds: number;
}

/**
 * Loads DIR as a model, its config changed by `--set key=value` settings (keys that do not change
 * the weights' shapes: n_ctx, memory, position_policy, ...); errors name the flag.
 */
export async function loadCheckpointFlag(
  checkpoint: string | undefined,
  settings: readonly string[] = [],
): Promise<BakaCausalLM> {
  if (checkpoint === undefined) throw new UserError('--checkpoint DIR is required');
  const dir = resolveUserPath(checkpoint);
  if (!existsSync(dir)) throw new UserError(`--checkpoint: directory not found: ${checkpoint}`);
  if (settings.length === 0) return loadCheckpoint(dir);
  const overrides = asUserError('', () => parseConfigSettings(settings));
  const config = asUserError('', () =>
    makeConfig({ ...readCheckpointConfig(dir), ...overrides }, '--set'),
  );
  return asUserError('--set: ', () =>
    BakaCausalLM.fromTensors(config, readCheckpointTensors(dir), join(dir, WEIGHTS_FILE)),
  );
}

/** The `--set` flag of eval and generate. */
export const SET_FLAG_HELP =
  'change a model config key of the checkpoint (e.g. n_ctx=64, memory=none); repeatable';

/** Upstream's loss (labels = input ids) of `model` on the batch in FILE. */
export function evaluateInputIds(model: BakaCausalLM, file: string): EvalResult {
  const path = resolveUserPath(file);
  const batch = readInputIds(path);
  const started = performance.now();
  const { loss, tokens } = evaluateLoss(model, batch);
  return {
    loss,
    perplexity: Math.exp(loss),
    tokens,
    rows: batch.rows,
    length: batch.length,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface CorpusEvalFlags {
  checkpoint: string;
  corpus: string;
  split: string;
  format?: string;
  textField?: string;
  separator?: string;
  tokenizer?: string;
  maxDocuments?: string;
  runsDir?: string;
  note?: string;
}

/**
 * `--corpus`: upstream's bench on a split of a corpus (one article at a time, the XL model seeing
 * the whole article), logged as a row of the results table in <runs-dir>/metrics.sqlite.
 */
export async function evaluateCorpus(
  model: BakaCausalLM,
  flags: CorpusEvalFlags,
): Promise<EvaluationResult & { resultId: number; database: string }> {
  if (!['train', 'valid', 'test'].includes(flags.split)) {
    throw new UserError(`--split: expected train, valid or test, got '${flags.split}'`);
  }
  const maxDocuments = flags.maxDocuments === undefined ? undefined : Number(flags.maxDocuments);
  if (maxDocuments !== undefined && !(Number.isInteger(maxDocuments) && maxDocuments >= 1)) {
    throw new UserError(`--max-documents: expected an integer >= 1, got '${flags.maxDocuments}'`);
  }
  const checkpoint = resolveUserPath(flags.checkpoint);
  // The checkpoint's own tokenizer unless one is given.
  const tokenizerPath = flags.tokenizer
    ? resolveUserPath(flags.tokenizer)
    : existsSync(join(checkpoint, TOKENIZER_FILE))
      ? join(checkpoint, TOKENIZER_FILE)
      : defaultTokenizerPath();
  if (!existsSync(tokenizerPath))
    throw new UserError(`--tokenizer: file not found: ${tokenizerPath}`);
  const runsDir = flags.runsDir ? resolveUserPath(flags.runsDir) : defaultRunsDir();
  const corpus = existsSync(resolveUserPath(flags.corpus))
    ? resolveUserPath(flags.corpus)
    : flags.corpus;
  const documents = await openCorpusDocuments({
    corpus,
    tokenizerPath,
    cacheDir: join(runsDir, '.shards'),
    vocabSize: model.config.n_vocab,
    read: readerOptions(flags),
    onProgress: (message) => process.stderr.write(`${message}\n`),
  });
  const result = evaluate(model, documents, {
    split: flags.split as 'train' | 'valid' | 'test',
    ...(maxDocuments !== undefined ? { maxDocuments } : {}),
  });
  const database = join(runsDir, 'metrics.sqlite');
  const store = new MetricsStore(database);
  try {
    const statePath = join(checkpoint, CHECKPOINT_FILES.trainerState);
    const runName = existsSync(statePath)
      ? parseTrainerState(readFileSync(statePath, 'utf8'), statePath).runName
      : null;
    const resultId = store.logResult(
      resultRow(model, result, {
        benchmark: flags.corpus,
        configId: runName ?? checkpoint,
        note: flags.note ?? null,
        runId: runName === null ? null : (store.runId(runName) ?? null),
      }),
    );
    return { ...result, resultId, database };
  } finally {
    store.close();
  }
}

/** A corpus evaluation with a NaN loss, or NaN windows left out of the mean, is a failure. */
function checkCorpusResult(checkpoint: string, what: string, result: EvaluationResult): void {
  const windows = result.windows + result.nans;
  if (!Number.isFinite(result.loss)) {
    throw new CommandFailure(
      windows === 0
        ? `the loss of ${checkpoint} on ${what} is NaN: the split has no article of 2 or more tokens`
        : `the loss of ${checkpoint} on ${what} is NaN: all ${windows} windows had a NaN/Inf loss`,
    );
  }
  if (result.nans > 0) {
    throw new CommandFailure(
      `${result.nans} of ${windows} windows of ${what} had a NaN/Inf loss (left out of the loss ${result.loss.toFixed(4)}); the weights of ${checkpoint} are not finite everywhere`,
    );
  }
}

export function register(program: Command): void {
  program
    .command('eval')
    .description("evaluate a checkpoint: upstream's loss (labels = input ids)")
    .requiredOption(
      '--checkpoint <dir|run>',
      'checkpoint directory, run directory or run name (its newest checkpoint)',
    )
    .option('--input-ids <file>', 'JSON array of equal-length rows of token ids (one batch)')
    .option(
      '--corpus <name|path>',
      "upstream's bench on a corpus split: tinyshakespeare, wikitext-103, recall[:options] (also answer accuracy per distance), ... or a path",
    )
    .option('--split <name>', 'split for --corpus: valid (default), test or train', 'valid')
    .option('--format <format>', `reader for a --corpus path: auto, ${CORPUS_FORMATS.join(', ')}`)
    .option('--text-field <name>', 'jsonl field / parquet column holding the text (default text)')
    .option(
      '--separator <text>',
      'text format: split files into documents at this string (\\n allowed)',
    )
    .option(
      '--tokenizer <file>',
      "tokenizer for --corpus (default: the checkpoint's tokenizer.json, else the bundled one)",
    )
    .option('--max-documents <n>', 'score only the first n articles of the split (--corpus)')
    .option(
      '--runs-dir <dir>',
      'where metrics.sqlite gets the result row (default: <repo root>/runs)',
    )
    .option('--note <text>', 'note stored with the result row (--corpus)')
    .option('--set <key=value>', SET_FLAG_HELP, collect)
    .option('--json', 'print the result as one JSON line (the last line of stdout)')
    .addOption(backendOption())
    .action(
      action(
        async (
          flags: {
            checkpoint: string;
            inputIds?: string;
            json?: boolean;
            set?: string[];
            backend: BackendChoice;
          } & Partial<CorpusEvalFlags>,
        ) => {
          if (flags.inputIds === undefined && flags.corpus === undefined) {
            throw new UserError('--input-ids FILE or --corpus NAME|PATH is required');
          }
          if (flags.inputIds !== undefined && flags.corpus !== undefined) {
            throw new UserError('--input-ids and --corpus cannot be used together');
          }
          flags.checkpoint = resolveCheckpointArgument(
            flags.checkpoint,
            runsDirectory(flags.runsDir),
          );
          const report = await initBackend(flags.backend);
          process.stderr.write(`${describeBackend(report)}\n`);
          const model = await loadCheckpointFlag(flags.checkpoint, flags.set ?? []);
          try {
            if (flags.corpus !== undefined) {
              const corpusFlags = { ...flags, corpus: flags.corpus, split: flags.split ?? 'valid' };
              const result = await evaluateCorpus(model, corpusFlags);
              const line = {
                benchmark: flags.corpus,
                split: result.split,
                loss: result.loss,
                ppl: result.ppl,
                tokenLoss: result.tokenLoss,
                nans: result.nans,
                documents: result.documents,
                tokens: result.tokens,
                seconds: result.seconds,
                resultId: result.resultId,
                checkpoint: flags.checkpoint,
                backend: report.name,
                ...(result.answers ? { answers: result.answers } : {}),
              };
              process.stdout.write(
                flags.json
                  ? `${JSON.stringify(line)}\n`
                  : `${flags.corpus} ${result.split}: loss ${result.loss.toFixed(4)}  ppl ${result.ppl.toFixed(2)}  token-weighted ${result.tokenLoss.toFixed(4)}  NaN ${result.nans}  (${result.documents} articles, ${result.tokens} tokens, ${result.seconds.toFixed(1)} s)${answerLine(result)}\nresult #${result.resultId} saved in ${result.database}\n`,
              );
              checkCorpusResult(flags.checkpoint, `${flags.corpus} ${result.split}`, result);
              return;
            }
            if (flags.inputIds === undefined) return;
            const result = evaluateInputIds(model, flags.inputIds);
            if (flags.json) {
              process.stdout.write(
                `${JSON.stringify({ ...result, checkpoint: flags.checkpoint, backend: report.name })}\n`,
              );
            } else {
              process.stdout.write(
                `loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(2)}  tokens ${result.tokens}  (${result.rows} x ${result.length}, ${result.seconds.toFixed(2)} s)\n`,
              );
            }
            if (!Number.isFinite(result.loss)) {
              throw new CommandFailure(
                `the loss of ${flags.checkpoint} on ${flags.inputIds} is ${result.loss}: its weights or logits are not finite`,
              );
            }
          } finally {
            model.dispose();
          }
        },
      ),
    );
}
