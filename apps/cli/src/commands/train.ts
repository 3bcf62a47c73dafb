// `baka train`: trains a BakaLLM model with upstream's procedure (DESIGN §1.4), resumable, with a
// progress bar, metrics in <runs-dir>/metrics.sqlite and checkpoints in <runs-dir>/<run>/.
// With no flags: the `tiny` preset on bundled Tiny Shakespeare with the bundled tokenizer, sized
// to finish in a few minutes on two CPU cores.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type TokenDocuments, tokenDocumentsFromArrays } from '@baka/data';
import {
  BakaCausalLM,
  type BakaConfig,
  countParameters,
  loadCheckpoint,
  makeConfig,
  PRESETS,
} from '@baka/model';
import { defaultTokenizerPath, Tokenizer } from '@baka/tokenizer';
import {
  latestCheckpoint,
  loadTrainingCheckpoint,
  MetricsStore,
  makeTrainingOptions,
  openCorpusDocuments,
  plannedUnits,
  readTrainingBatch,
  saveTrainingCheckpoint,
  type SessionSummary,
  type TrainingOptions,
  TrainingSession,
} from '@baka/trainer';
import type { Command } from 'commander';
import { z } from 'zod';
import { initBackend, describeBackend, backendOption } from '../backend';
import { action, defaultRunsDir, resolveUserPath, UserError } from '../cli-kit';
import { formatCount, ProgressBar } from '../progress';

/** The default run (no flags) is sized to finish within ~8 minutes on 2 CPU cores. */
export const DEFAULT_TRAIN = {
  preset: 'tiny',
  corpus: 'tinyshakespeare',
  steps: 300,
  maxMinutes: 8,
  window: 256,
  batchSize: 5,
  learningRate: 3e-3,
  schedule: 'cosine' as const,
  warmup: 20,
  evalDocuments: 8,
  sampleTokens: 48,
};

const integer = (min: number) => z.coerce.number().int().min(min);

/** Every flag, validated once here; an error names the flag and the value given. */
const flagsSchema = z.object({
  preset: z.string().optional(),
  config: z.string().optional(),
  corpus: z.string().optional(),
  tokenizer: z.string().optional(),
  run: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .optional(),
  runsDir: z.string().optional(),
  steps: integer(1).optional(),
  epochs: integer(1).optional(),
  lr: z.coerce.number().positive().optional(),
  window: integer(3).optional(),
  batchSize: integer(1).optional(),
  seed: z.coerce.number().int().optional(),
  resume: z.union([z.boolean(), z.string()]).optional(),
  init: z.string().optional(),
  inputIds: z.string().optional(),
  out: z.string().optional(),
  backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']),
  evalEvery: integer(0).optional(),
  evalDocuments: integer(1).optional(),
  saveEvery: integer(0).optional(),
  keep: integer(1).optional(),
  optimizerInLatestOnly: z.boolean().optional(),
  schedule: z.enum(['constant', 'cosine']).optional(),
  warmup: integer(0).optional(),
  mode: z.enum(['upstream', 'packed']).optional(),
  carryMemory: z.boolean().optional(),
  accumulate: integer(1).optional(),
  clip: z.coerce.number().min(0).optional(),
  maxMinutes: z.coerce.number().positive().optional(),
  sample: z.boolean(),
  sampleTokens: integer(0).optional(),
});
type Flags = z.infer<typeof flagsSchema>;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function parseTrainFlags(raw: Record<string, unknown>): Flags {
  const parsed = flagsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    throw new UserError(`--${kebab(key)}: ${issue.message} (got '${String(raw[key])}')`);
  }
  const flags = parsed.data;
  if (flags.preset !== undefined && !(flags.preset in PRESETS)) {
    throw new UserError(
      `--preset: expected one of ${Object.keys(PRESETS).join(', ')}, got '${flags.preset}'`,
    );
  }
  if (flags.resume !== undefined && flags.resume !== false && flags.init !== undefined) {
    throw new UserError(
      '--resume and --init cannot be used together (--init starts a new run from weights)',
    );
  }
  if (flags.inputIds !== undefined && flags.corpus !== undefined) {
    throw new UserError('--input-ids and --corpus cannot be used together');
  }
  return flags;
}

function readJsonFile(path: string, flag: string): unknown {
  if (!existsSync(path)) throw new UserError(`${flag}: file not found: ${path}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UserError(`${flag}: ${path} is not valid JSON (${(error as Error).message})`);
  }
}

/** `--resume [X]`: a checkpoint dir, a run dir, a run name, or (no value) --run / the newest run. */
function findResumeCheckpoint(
  value: string | true,
  runsDir: string,
  runName: string | undefined,
): string {
  const candidates: string[] = [];
  if (typeof value === 'string') {
    const path = resolveUserPath(value);
    candidates.push(path, join(path, 'checkpoints'), join(runsDir, value, 'checkpoints'));
  } else if (runName !== undefined) {
    candidates.push(join(runsDir, runName, 'checkpoints'));
  } else {
    throw new UserError('--resume needs a checkpoint directory or run name (or --run NAME)');
  }
  for (const candidate of candidates) {
    if (existsSync(join(candidate, 'trainer_state.json'))) return candidate;
    const latest =
      existsSync(candidate) && statSync(candidate).isDirectory()
        ? latestCheckpoint(candidate)
        : undefined;
    if (latest) return latest;
  }
  throw new UserError(`--resume: no checkpoint found at ${candidates.join(' or ')}`);
}

function defaultRunName(preset: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${preset}-${stamp}`;
}

/** Builds the model config from --preset and --config (file fields win), sized to the tokenizer. */
function modelConfig(
  flags: Flags,
  tokenizer: Tokenizer,
): { config: BakaConfig; preset: string | null } {
  const fromFile = flags.config
    ? (readJsonFile(resolveUserPath(flags.config), '--config') as object)
    : {};
  const preset = flags.preset ?? (flags.config ? null : DEFAULT_TRAIN.preset);
  const base = preset ? PRESETS[preset as keyof typeof PRESETS] : {};
  const input = { ...base, n_vocab: tokenizer.vocabSize, ...fromFile };
  try {
    const config = makeConfig(
      input,
      flags.config ? `--config ${flags.config}` : `--preset ${preset}`,
    );
    if (config.n_vocab < tokenizer.vocabSize) {
      throw new UserError(
        `n_vocab ${config.n_vocab} is smaller than the tokenizer's vocabulary (${tokenizer.vocabSize})`,
      );
    }
    return { config, preset };
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError((error as Error).message);
  }
}

/** A corpus name as given, or a path resolved against the directory the user typed it in. */
function corpusFlag(corpus: string | undefined): string | undefined {
  if (corpus === undefined) return undefined;
  const path = resolveUserPath(corpus);
  return existsSync(path) ? path : corpus;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatLoss(loss: number | null): string {
  return loss === null || !Number.isFinite(loss) ? '-' : loss.toFixed(4);
}

function formatSeconds(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${seconds.toFixed(1)}s`;
}

export function register(program: Command): void {
  program
    .command('train')
    .description(
      "Train a model with upstream's procedure. With none of --steps, --epochs, --max-minutes: a quick run " +
        `(tiny preset on bundled Tiny Shakespeare, window ${DEFAULT_TRAIN.window}, lr ${DEFAULT_TRAIN.learningRate} with warmup + cosine, ` +
        `${DEFAULT_TRAIN.steps} steps, at most ${DEFAULT_TRAIN.maxMinutes} minutes); otherwise upstream's defaults (window 2048, lr 1e-3 constant).`,
    )
    .option(
      '--preset <name>',
      `model preset: ${Object.keys(PRESETS).join(', ')} (default ${DEFAULT_TRAIN.preset})`,
    )
    .option('--config <file>', 'model config JSON (fields override the preset)')
    .option(
      '--corpus <name|path>',
      `corpus: tinyshakespeare, wikitext-2, wikitext-103 or a file (default ${DEFAULT_TRAIN.corpus})`,
    )
    .option('--tokenizer <file>', 'tokenizer.json (default: the bundled gpt-neox-20b tokenizer)')
    .option('--run <name>', 'run name (default: <preset>-<date>)')
    .option('--runs-dir <dir>', 'where runs and metrics.sqlite live (default: <repo root>/runs)')
    .option(
      '--steps <n>',
      `stop after n optimizer steps in total (default run: ${DEFAULT_TRAIN.steps})`,
    )
    .option('--epochs <n>', 'epochs over the training split (default 1)')
    .option('--lr <x>', 'peak learning rate (upstream 1e-3)')
    .option(
      '--window <n>',
      'training window in tokens, one optimizer step per window (upstream 2048)',
    )
    .option('--batch-size <n>', 'articles per batch (upstream 5)')
    .option('--seed <n>', 'seed for the weights and the data order (default 0)')
    .option(
      '--resume [checkpoint]',
      'continue a run: a checkpoint dir, a run dir or name (default: --run)',
    )
    .option('--init <dir>', 'start from the weights of this checkpoint (fresh optimizer)')
    .option(
      '--input-ids <file>',
      'train on this one batch (JSON rows of ids, or {input_ids, labels})',
    )
    .option(
      '--out <dir>',
      'also write the final checkpoint (model.safetensors, config.json, ...) here',
    )
    .addOption(backendOption())
    .option('--eval-every <n>', 'evaluate on the validation split every n steps (0: never)')
    .option('--eval-documents <n>', 'articles per evaluation (default: the whole split)')
    .option('--save-every <n>', 'checkpoint every n steps (0: only at the end)')
    .option('--keep <n>', 'checkpoints to keep (default 3)')
    .option('--optimizer-in-latest-only', 'keep optimizer state only in the newest checkpoint')
    .option(
      '--schedule <name>',
      'learning rate schedule: constant (upstream) or cosine (with warmup)',
    )
    .option('--warmup <n>', 'linear warmup steps')
    .option(
      '--mode <mode>',
      'upstream (article batches, windows, two passes) or packed (random blocks)',
    )
    .option(
      '--carry-memory',
      "carry detached XL memory from window to window (default: the config's carry_memory; upstream: off)",
    )
    .option('--accumulate <n>', 'windows per optimizer step (gradient accumulation, default 1)')
    .option('--clip <x>', 'clip the global gradient norm (upstream 1.0; 0 disables)')
    .option(
      '--max-minutes <x>',
      `stop after this many minutes (default run: ${DEFAULT_TRAIN.maxMinutes})`,
    )
    .option('--no-sample', 'do not print a generated sample at the end')
    .option(
      '--sample-tokens <n>',
      `tokens to generate for the sample (default ${DEFAULT_TRAIN.sampleTokens})`,
    )
    .action(
      action(async (raw: Record<string, unknown>, command: Command) => {
        await runTrain(parseTrainFlags(raw), command);
      }),
    );
}

async function runTrain(flags: Flags, command: Command): Promise<void> {
  const given = (name: string) => command.getOptionValueSource(name) === 'cli';
  const report = await initBackend(flags.backend);
  process.stderr.write(`${describeBackend(report)}\n`);
  const runsDir = flags.runsDir ? resolveUserPath(flags.runsDir) : defaultRunsDir();

  // Resume: the checkpoint's options, overridden by the flags given now.
  const resumeDir = flags.resume ? findResumeCheckpoint(flags.resume, runsDir, flags.run) : null;
  const resumed = resumeDir ? await loadTrainingCheckpoint(resumeDir) : null;
  const previous = (resumed?.training ?? {}) as Partial<TrainingOptions>;

  const tokenizerPath = flags.tokenizer
    ? resolveUserPath(flags.tokenizer)
    : (previous.tokenizer ?? defaultTokenizerPath());
  let tokenizer: Tokenizer;
  if (resumed?.tokenizerJson) tokenizer = Tokenizer.fromJSON(resumed.tokenizerJson);
  else if (!existsSync(tokenizerPath))
    throw new UserError(`--tokenizer: file not found: ${tokenizerPath}`);
  else tokenizer = Tokenizer.fromFile(tokenizerPath);

  let model: BakaCausalLM;
  let preset: string | null = previous.preset ?? null;
  if (resumed) model = resumed.model;
  else if (flags.init) {
    const dir = resolveUserPath(flags.init);
    if (!existsSync(join(dir, 'config.json')))
      throw new UserError(`--init: no config.json in ${dir}`);
    model = await loadCheckpoint(dir);
  } else {
    const built = modelConfig(flags, tokenizer);
    preset = built.preset;
    model = BakaCausalLM.create(built.config, { seed: flags.seed ?? 0 });
  }

  const isDefaultRun =
    !resumed && !flags.inputIds && !given('steps') && !given('epochs') && !given('maxMinutes');
  const inputBatch = flags.inputIds ? readTrainingBatch(resolveUserPath(flags.inputIds)) : null;
  const pick = <T>(flag: T | undefined, saved: T | undefined, fallback: T): T =>
    flag ?? saved ?? fallback;
  const options = makeTrainingOptions(
    {
      ...previous,
      runName: flags.run ?? previous.runName ?? defaultRunName(preset ?? 'model'),
      mode: pick(flags.mode, previous.mode, 'upstream'),
      window: pick(flags.window, previous.window, isDefaultRun ? DEFAULT_TRAIN.window : 2048),
      batchSize: inputBatch
        ? inputBatch.rows
        : pick(flags.batchSize, previous.batchSize, DEFAULT_TRAIN.batchSize),
      epochs: pick(flags.epochs, previous.epochs, inputBatch ? 1 : isDefaultRun ? 100 : 1),
      seed: pick(flags.seed, previous.seed, 0),
      maxSteps: flags.steps ?? previous.maxSteps ?? (isDefaultRun ? DEFAULT_TRAIN.steps : null),
      maxMinutes:
        flags.maxMinutes ??
        (isDefaultRun ? DEFAULT_TRAIN.maxMinutes : (previous.maxMinutes ?? null)),
      learningRate: pick(
        flags.lr,
        previous.learningRate,
        isDefaultRun ? DEFAULT_TRAIN.learningRate : 1e-3,
      ),
      schedule: pick(
        flags.schedule,
        previous.schedule,
        isDefaultRun ? DEFAULT_TRAIN.schedule : 'constant',
      ),
      warmupSteps: pick(
        flags.warmup,
        previous.warmupSteps,
        isDefaultRun ? DEFAULT_TRAIN.warmup : 0,
      ),
      clipNorm:
        flags.clip !== undefined
          ? flags.clip === 0
            ? null
            : flags.clip
          : (previous.clipNorm ?? 1),
      accumulate: pick(flags.accumulate, previous.accumulate, 1),
      carryMemory: pick(flags.carryMemory, previous.carryMemory, model.config.carry_memory),
      saveEvery: pick(flags.saveEvery, previous.saveEvery, inputBatch ? 0 : 50),
      keep: pick(flags.keep, previous.keep, 3),
      optimizerInLatestOnly: pick(
        flags.optimizerInLatestOnly,
        previous.optimizerInLatestOnly,
        false,
      ),
      evalEvery: inputBatch ? 0 : pick(flags.evalEvery, previous.evalEvery, 0),
      evalDocuments: pick(
        flags.evalDocuments,
        previous.evalDocuments ?? undefined,
        isDefaultRun ? DEFAULT_TRAIN.evalDocuments : null,
      ),
      evalAtEnd: !inputBatch,
      corpus: inputBatch
        ? null
        : (corpusFlag(flags.corpus) ?? previous.corpus ?? DEFAULT_TRAIN.corpus),
      tokenizer: tokenizerPath,
      preset,
    },
    'train options',
  );
  if (options.schedule === 'cosine' && options.maxSteps === null) {
    throw new UserError('--schedule cosine needs --steps (the decay horizon)');
  }

  // Data: the corpus tokenized once into cached shards, or the one --input-ids batch.
  let documents: TokenDocuments;
  if (inputBatch) {
    documents = tokenDocumentsFromArrays([]);
  } else {
    const started = performance.now();
    documents = await openCorpusDocuments({
      corpus: options.corpus!,
      tokenizerPath,
      cacheDir: join(runsDir, '.shards'),
      onProgress: (message) => process.stderr.write(`${message}\n`),
    });
    process.stderr.write(
      `data: ${options.corpus}: ${formatCount(documents.numTokens)} tokens in ${documents.numDocuments} documents (${formatSeconds((performance.now() - started) / 1000)})\n`,
    );
  }
  const units = plannedUnits(documents, {
    mode: options.mode,
    window: options.window,
    batchSize: options.batchSize,
    epochs: options.epochs,
    seed: options.seed,
    batch: inputBatch,
  });
  const plannedSteps = Math.min(
    Math.ceil(units / options.accumulate),
    options.maxSteps ?? Number.POSITIVE_INFINITY,
  );

  const store = new MetricsStore(join(runsDir, 'metrics.sqlite'));
  const runDir = join(runsDir, options.runName);
  const session = new TrainingSession({
    model,
    documents,
    options,
    runDir,
    tokenizerJson: tokenizer.toJSON(),
    store,
    backend: report.name,
    resume: resumed ? { dir: resumed.dir, state: resumed.state } : null,
    ...(inputBatch ? { batch: inputBatch } : {}),
  });
  if ((options.evalEvery > 0 || options.evalAtEnd) && !inputBatch && !session.canEvaluate) {
    process.stderr.write(
      `note: ${options.corpus} has no validation split, so there is no evaluation\n`,
    );
  }
  const parameters = countParameters(model);
  process.stderr.write(
    `run ${options.runName}: ${formatCount(parameters.total)} parameters, ${options.mode} mode, window ${options.window}, ` +
      `batch ${options.batchSize}, lr ${options.learningRate} (${options.schedule}), ${plannedSteps} steps planned` +
      `${options.maxMinutes !== null ? `, at most ${options.maxMinutes} min` : ''}${resumed ? `, resuming at step ${resumed.state.step}` : ''}\n`,
  );

  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts === 1) {
      process.stderr.write(
        '\ninterrupted: finishing this step, saving a checkpoint (Ctrl-C again to quit now)\n',
      );
      session.requestStop();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const bar = new ProgressBar({ label: 'train', total: plannedSteps, unit: 'steps' });
  const startStep = session.state.step;
  let tokensSeen = 0;
  let secondsSeen = 0;
  const jsonLog = inputBatch !== null;
  let summary: SessionSummary;
  try {
    summary = await session.run({
      onStep: (step) => {
        tokensSeen += step.stepTokens;
        secondsSeen += step.seconds;
        const where = step.unit.where;
        const position = inputBatch
          ? `pass ${where.pass + 1} window ${where.window + 1}/${where.windows}`
          : `batch ${where.batch + 1}/${where.batches} pass ${where.pass + 1} win ${where.window + 1}/${where.windows}`;
        bar.update(
          step.step - startStep,
          `loss ${step.loss.toFixed(4)} ${formatCount(tokensSeen / Math.max(secondsSeen, 1e-9))} tok/s ${position} [${step.unit.rows}x${step.unit.length}]`,
        );
        if (jsonLog) {
          process.stdout.write(
            `${JSON.stringify({ step: step.step, loss: step.loss, gradNorm: step.gradNorm, lr: step.learningRate })}\n`,
          );
        }
      },
      onSkip: (skip) => {
        process.stderr.write(
          `\nstep ${skip.step + 1} skipped: loss ${skip.loss}, grad norm ${skip.gradNorm} (${skip.consecutive} in a row)\n`,
        );
      },
      onNote: (message) => process.stderr.write(`note: ${message}\n`),
      onEvaluate: (result, step) => {
        process.stderr.write(
          `\neval @ step ${step}: valid loss ${formatLoss(result.loss)} (ppl ${result.ppl.toFixed(1)}, token-weighted ${formatLoss(result.tokenLoss)}, ${result.documents} articles, ${result.nans} NaN)\n`,
        );
      },
    });
  } finally {
    bar.finish();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    store.close();
  }

  let outDir: string | null = null;
  if (flags.out) {
    outDir = resolveUserPath(flags.out);
    await saveTrainingCheckpoint(outDir, {
      model,
      optimizer: session.optimizer,
      state: session.state,
      training: options,
      tokenizerJson: tokenizer.toJSON(),
    });
  }

  const lines = [
    `${summary.reason === 'interrupted' ? 'stopped (Ctrl-C)' : summary.reason === 'time' ? `stopped at the time limit (--max-minutes ${options.maxMinutes})` : 'done'}: ${plural(summary.sessionSteps, 'step')} this session (${summary.steps} in total), ${formatCount(summary.sessionTokens)} tokens in ${formatSeconds(summary.seconds)} (${formatCount(tokensSeen / Math.max(secondsSeen, 1e-9))} tokens/s while training)`,
    `loss: first ${formatLoss(summary.losses[0] ?? null)} -> final ${formatLoss(summary.finalLoss)} (best ${formatLoss(summary.bestLoss)}${summary.skippedSteps > 0 ? `, ${summary.skippedSteps} steps skipped for NaN/Inf` : ''})`,
  ];
  const lastEval = summary.evaluations.at(-1);
  if (lastEval) {
    lines.push(
      `valid: loss ${formatLoss(lastEval.result.loss)}, ppl ${lastEval.result.ppl.toFixed(1)} (${lastEval.result.documents} articles, step ${lastEval.step})`,
    );
  }
  lines.push(`checkpoint: ${summary.checkpoint}${outDir ? ` (and ${outDir})` : ''}`);
  lines.push(
    `metrics: ${join(runsDir, 'metrics.sqlite')} (run '${options.runName}'); view them with: pnpm --filter metrics-viewer start`,
  );
  lines.push(
    `resume with: pnpm baka train --resume ${options.runName}${flags.runsDir ? ` --runs-dir ${flags.runsDir}` : ''}`,
  );
  (jsonLog ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);

  if (flags.sample && !inputBatch && (flags.sampleTokens ?? DEFAULT_TRAIN.sampleTokens) > 0) {
    const prompt = samplePrompt(documents, tokenizer);
    const generated = model.generate(prompt, {
      maxNewTokens: flags.sampleTokens ?? DEFAULT_TRAIN.sampleTokens,
      temperature: 0.8,
      topK: 40,
      seed: options.seed,
    });
    process.stdout.write(
      `sample (prompt + ${generated.length} generated tokens):\n${tokenizer.decode([...prompt, ...generated])}\n`,
    );
  }
  session.dispose();
  model.dispose();
}

/** The sample's prompt: the first line of the first validation article (or of the corpus). */
function samplePrompt(documents: TokenDocuments, tokenizer: Tokenizer): number[] {
  const index = documents.splits.valid?.start ?? 0;
  if (documents.numDocuments === 0) return [tokenizer.specialTokens.bos ?? 0];
  const ids = Array.from(documents.document(index).subarray(0, 16));
  const text = tokenizer.decode(ids);
  const firstLine = text.split('\n').find((line) => line.trim().length > 0) ?? text;
  const prompt = Array.from(tokenizer.encode(`${firstLine.trim()}\n`));
  return prompt.length > 0 ? prompt : ids.slice(0, 4);
}
