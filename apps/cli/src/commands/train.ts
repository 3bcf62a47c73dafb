// `baka train`: trains a BakaLLM model with upstream's procedure, resumable, with a progress bar,
// metrics in <runs-dir>/metrics.sqlite and checkpoints in <runs-dir>/<run>/. Every option and its
// default comes from the training options schema (@baka/trainer) and the model config schema
// (@baka/model); with no length flags the run is QUICK_RUN: the `tiny` preset on bundled Tiny
// Shakespeare, sized to finish in a few minutes on two CPU cores.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CORPUS_FORMATS,
  type ReadOptions,
  type TokenDocuments,
  tokenDocumentsFromArrays,
} from '@baka/data';
import {
  BakaCausalLM,
  type BakaConfig,
  CONFIG_KEYS,
  CONFIG_FILE,
  countParameters,
  DEFAULT_PRESET,
  isConfigKey,
  legacyCarryMemory,
  loadCheckpoint,
  makeConfig,
  ModelError,
  parseConfigSettings,
  PRESETS,
  presetConfig,
  TOKENIZER_FILE,
} from '@baka/model';
import { defaultTokenizerPath, Tokenizer } from '@baka/tokenizer';
import {
  CHECKPOINT_FILES,
  checkTrainingCheckpointTarget,
  type EvaluationResult,
  isTrainingOptionKey,
  latestCheckpoint,
  loadTrainingCheckpoint,
  MetricsStore,
  makeTrainingOptions,
  openCorpusDocuments,
  parseTrainingOptionValue,
  parseTrainingSettings,
  plannedUnits,
  RESUMABLE_OPTIONS,
  readTrainingBatch,
  type SessionHooks,
  type SessionSummary,
  saveTrainingCheckpoint,
  TRAINING_OPTION_KEYS,
  type TrainingCheckpoint,
  type TrainingOptionKey,
  type TrainingOptions,
  TrainingSession,
  trainingOptionFields,
} from '@baka/trainer';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { backendOption, describeBackend, initBackend } from '../backend';
import {
  action,
  asUserError,
  collect,
  defaultRunsDir,
  formatDefault,
  resolveUserPath,
  UserError,
} from '../cli-kit';
import { defaultTokenizerFor } from '../default-tokenizer';
import { formatCount, ProgressBar } from '../progress';
import { readerOptions } from './data';

/**
 * The quick run (none of --steps, --epochs, --max-minutes): its documented overrides of the
 * schema's defaults, sized to finish within ~8 minutes on 2 CPU cores.
 */
export const QUICK_RUN = {
  preset: DEFAULT_PRESET,
  options: {
    corpus: 'tinyshakespeare',
    maxSteps: 300,
    maxMinutes: 8,
    epochs: 100,
    window: 256,
    learningRate: 3e-3,
    schedule: 'cosine',
    warmupSteps: 20,
    evalDocuments: 8,
  },
} as const satisfies { preset: string; options: Partial<TrainingOptions> };

/** `--input-ids FILE` trains on one batch: no corpus, no evaluation, one checkpoint at the end. */
const INPUT_IDS_RUN = {
  corpus: null,
  saveEvery: 0,
  evalEvery: 0,
  evalAtEnd: false,
} as const satisfies Partial<TrainingOptions>;

/** Exit code of a run stopped by a signal (Ctrl-C, SIGTERM, SIGHUP, the wrapper dying); 0 when done. */
export const INTERRUPTED_EXIT_CODE = 130;

/** Tokens generated for the end-of-run sample. */
const SAMPLE_TOKENS = 48;

/** The flags that set one training option: flag name (camelCase, as commander gives it) -> option. */
const OPTION_FLAGS = {
  steps: { key: 'maxSteps', value: '<n>' },
  maxTokens: { key: 'maxTokens', value: '<n>' },
  epochs: { key: 'epochs', value: '<n>' },
  lr: { key: 'learningRate', value: '<x>' },
  window: { key: 'window', value: '<n>' },
  batchSize: { key: 'batchSize', value: '<n>' },
  seed: { key: 'seed', value: '<n>' },
  evalEvery: { key: 'evalEvery', value: '<n>' },
  evalDocuments: { key: 'evalDocuments', value: '<n>' },
  evalSplit: { key: 'evalSplit', value: '<split>' },
  saveEvery: { key: 'saveEvery', value: '<n>' },
  keep: { key: 'keep', value: '<n>' },
  optimizerInLatestOnly: { key: 'optimizerInLatestOnly', value: '' },
  schedule: { key: 'schedule', value: '<name>' },
  warmup: { key: 'warmupSteps', value: '<n>' },
  mode: { key: 'mode', value: '<mode>' },
  carryMemory: { key: 'carryMemory', value: '' },
  accumulate: { key: 'accumulate', value: '<n>' },
  clip: { key: 'clipNorm', value: '<x>', note: '0 disables' },
  maxMinutes: { key: 'maxMinutes', value: '<x>' },
} satisfies Record<string, { key: TrainingOptionKey; value: string; note?: string }>;
type OptionFlag = keyof typeof OPTION_FLAGS;

/** Flags that would change the model or the data; a resume refuses them. */
const MODEL_FLAGS = ['tokenizer', 'preset', 'config'] as const;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The flag a training option is set with (`--steps` for maxSteps), or `--set KEY`. */
function flagOf(key: TrainingOptionKey): string {
  const entry = Object.entries(OPTION_FLAGS).find(([, flag]) => flag.key === key);
  return entry ? `--${kebab(entry[0])}` : `--set ${key}`;
}

/** Flags that are not training options or model config keys. */
const flagsSchema = z.object({
  preset: z.string().optional(),
  config: z.string().optional(),
  corpus: z.string().optional(),
  format: z.string().optional(),
  textField: z.string().optional(),
  separator: z.string().optional(),
  tokenizer: z.string().optional(),
  run: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .optional(),
  runsDir: z.string().optional(),
  resume: z.union([z.boolean(), z.string()]).optional(),
  init: z.string().optional(),
  inputIds: z.string().optional(),
  out: z.string().optional(),
  backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']),
  sample: z.boolean(),
  sampleTokens: z.coerce.number().int().min(0).optional(),
  extendSchedule: z.boolean().optional(),
  set: z.array(z.string()).optional(),
});

export type Flags = z.infer<typeof flagsSchema> & {
  /** Each option flag given, by its flag name (`steps: 12`), typed by the schema. */
  [flag in OptionFlag]?: unknown;
} & {
  /** Training options given by their own flags or by `--set`, typed by the schema. */
  options: Partial<TrainingOptions>;
  /** The flag each of `options` came from (for messages). */
  optionFlags: Partial<Record<TrainingOptionKey, string>>;
  /** Model config keys given with `--set`. */
  model: Partial<BakaConfig>;
};

/** One option flag's value, typed by the schema; the error names the flag and the value. */
function optionFlagValue(name: OptionFlag, raw: unknown): unknown {
  const { key } = OPTION_FLAGS[name];
  if (typeof raw !== 'string') return parseTrainingOptionValue(key, JSON.stringify(raw));
  // --clip 0 disables clipping (the option's null)
  const text = name === 'clip' && Number(raw) === 0 ? 'null' : raw;
  try {
    return parseTrainingOptionValue(key, text);
  } catch (error) {
    throw new UserError(`--${kebab(name)}: ${(error as Error).message} (got '${raw}')`);
  }
}

/** Where `--set`-style settings go: model config keys and training options. */
export interface Settings {
  options: Partial<TrainingOptions>;
  optionFlags: Partial<Record<TrainingOptionKey, string>>;
  model: Partial<BakaConfig>;
}

/**
 * `--set key=value`: model config keys and training options, each typed by its schema; `flag`
 * names where the settings came from in errors (an experiment file's field).
 */
export function parseSettings(settings: readonly string[], into: Settings, flag = '--set'): void {
  for (const setting of settings) {
    const key = setting.slice(0, Math.max(setting.indexOf('='), 0)).trim();
    if (isConfigKey(key)) {
      Object.assign(
        into.model,
        asUserError('', () => parseConfigSettings([setting], flag)),
      );
    } else if (isTrainingOptionKey(key)) {
      Object.assign(
        into.options,
        asUserError('', () => parseTrainingSettings([setting], flag)),
      );
      into.optionFlags[key] = `${flag} ${key}`;
    } else if (key === '') {
      throw new UserError(`${flag}: expected key=value, got '${setting}'`);
    } else {
      throw new UserError(
        `${flag}: unknown key '${key}'; valid keys: model ${CONFIG_KEYS.join(', ')}; training ${TRAINING_OPTION_KEYS.join(', ')}`,
      );
    }
  }
}

export function parseTrainFlags(raw: Record<string, unknown>): Flags {
  const rest = Object.fromEntries(Object.entries(raw).filter(([name]) => !(name in OPTION_FLAGS)));
  const parsed = flagsSchema.safeParse(rest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    throw new UserError(`--${kebab(key)}: ${issue.message} (got '${String(raw[key])}')`);
  }
  const flags: Flags = { ...parsed.data, options: {}, optionFlags: {}, model: {} };
  for (const name of Object.keys(OPTION_FLAGS) as OptionFlag[]) {
    if (raw[name] === undefined) continue;
    const { key } = OPTION_FLAGS[name];
    const value = optionFlagValue(name, raw[name]);
    flags[name] = value;
    (flags.options as Record<string, unknown>)[key] = value;
    flags.optionFlags[key] = `--${kebab(name)}`;
  }
  parseSettings(flags.set ?? [], flags);
  if (flags.preset !== undefined) asUserError('', () => presetConfig(flags.preset!));
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
    if (existsSync(join(candidate, CHECKPOINT_FILES.trainerState))) return candidate;
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

/** A corpus name as given, or a path resolved against the directory the user typed it in. */
function corpusFlag(corpus: string | undefined): string | undefined {
  if (corpus === undefined) return undefined;
  const path = resolveUserPath(corpus);
  return existsSync(path) ? path : corpus;
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function formatLoss(loss: number | null): string {
  return loss === null || !Number.isFinite(loss) ? '-' : loss.toFixed(4);
}

export function formatSeconds(seconds: number): string {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${seconds.toFixed(1)}s`;
}

/** Help text of an option flag: the schema's description and default (and the quick run's). */
function optionHelp(name: OptionFlag): string {
  const { key, ...rest } = OPTION_FLAGS[name];
  const field = trainingOptionFields().find((candidate) => candidate.key === key)!;
  const quick = (QUICK_RUN.options as Partial<Record<TrainingOptionKey, unknown>>)[key];
  const note = 'note' in rest ? `; ${rest.note}` : '';
  return `${field.description.replace(/\.$/, '')} (default ${formatDefault(field.default)}${quick !== undefined ? `, quick run ${formatDefault(quick)}` : ''}${note})`;
}

export function register(program: Command): void {
  const command = program
    .command('train')
    .description(
      "Train a model with upstream's procedure. With none of --steps, --epochs, --max-minutes: the quick run " +
        `(${QUICK_RUN.preset} preset on bundled Tiny Shakespeare, window ${QUICK_RUN.options.window}, lr ${QUICK_RUN.options.learningRate} with warmup + cosine, ` +
        `${QUICK_RUN.options.maxSteps} steps, at most ${QUICK_RUN.options.maxMinutes} minutes); otherwise the schema's defaults (window 2048, lr 1e-3 constant). ` +
        `Exit code 0 when done, ${INTERRUPTED_EXIT_CODE} when stopped by Ctrl-C, SIGTERM or SIGHUP (after saving).`,
    )
    .option(
      '--preset <name>',
      `model preset: ${Object.keys(PRESETS).join(', ')} (default ${DEFAULT_PRESET})`,
    )
    .option('--config <file>', 'model config JSON (fields override the preset)')
    .option(
      '--set <key=value>',
      'set a model config key (n_layers=2, memory=none) or a training option (weightDecay=0); repeatable',
      collect,
    )
    .option(
      '--corpus <name|path>',
      `corpus: tinyshakespeare, wikitext-2, wikitext-103, recall[:options] (generated associative recall), a file or folder, or a directory of shards from 'baka data prepare' (default ${QUICK_RUN.options.corpus})`,
    )
    .option('--tokenizer <file>', 'tokenizer.json (default: the bundled gpt-neox-20b tokenizer)')
    .option('--format <format>', `reader for a --corpus path: auto, ${CORPUS_FORMATS.join(', ')}`)
    .option('--text-field <name>', 'jsonl field / parquet column holding the text (default text)')
    .option(
      '--separator <text>',
      'text format: split files into documents at this string (\\n allowed)',
    )
    .option('--run <name>', 'run name (default: <preset>-<date>)')
    .option('--runs-dir <dir>', 'where runs and metrics.sqlite live (default: <repo root>/runs)')
    .option(
      '--resume [checkpoint]',
      'continue a run with its own tokenizer, model and data: a checkpoint dir, a run dir or name (default: --run)',
    )
    .option(
      '--extend-schedule',
      'with --resume and a cosine schedule: stretch the decay over the new --steps',
    )
    .option('--init <dir>', 'start from the weights of this checkpoint (fresh optimizer)')
    .option(
      '--input-ids <file>',
      'train on this one batch (JSON rows of ids, or {input_ids, labels})',
    )
    .option(
      '--out <dir>',
      'also write the final checkpoint here: a new or empty directory, or a checkpoint to replace',
    )
    .addOption(backendOption());
  for (const name of Object.keys(OPTION_FLAGS) as OptionFlag[]) {
    const { value } = OPTION_FLAGS[name];
    command.addOption(new Option(`--${kebab(name)}${value ? ` ${value}` : ''}`, optionHelp(name)));
  }
  command
    .option('--no-sample', 'do not print a generated sample at the end')
    .option('--sample-tokens <n>', `tokens to generate for the sample (default ${SAMPLE_TOKENS})`)
    .action(
      action(async (raw: Record<string, unknown>) => {
        await runTrain(parseTrainFlags(raw));
      }),
    );
}

/** `--out DIR`, checked before any work: new, empty, or one of our checkpoints (never replaced otherwise). */
function outputDirectory(out: string | undefined): string | null {
  if (out === undefined) return null;
  const dir = resolveUserPath(out);
  try {
    checkTrainingCheckpointTarget(dir);
  } catch (error) {
    if (error instanceof ModelError) throw new UserError(`--out: ${error.message}`);
    throw error;
  }
  return dir;
}

/** What a run starts from: a resumed checkpoint, --init weights, or a new model. */
interface RunStart {
  resumed: TrainingCheckpoint | null;
  tokenizer: Tokenizer;
  /** The tokenizer file the corpus is tokenized with (a resumed run: the checkpoint's own). */
  tokenizerPath: string;
  model: BakaCausalLM;
  preset: string | null;
  /** Training options that come with the model: `carry_memory` of an older config.json. */
  modelDefaults: Partial<TrainingOptions>;
}

/**
 * A resume keeps everything that makes the model and the data: the tokenizer, preset, config,
 * model keys, and every option outside RESUMABLE_OPTIONS. The first such flag is refused.
 */
function refuseResumeOverrides(flags: Flags, previous: TrainingOptions): void {
  for (const flag of MODEL_FLAGS) {
    if (flags[flag] !== undefined) {
      throw new UserError(
        `--${flag}: a resumed run keeps the model and tokenizer of its checkpoint; start a new run (--init from the checkpoint) to change it`,
      );
    }
  }
  const modelKey = Object.keys(flags.model)[0];
  if (modelKey !== undefined) {
    throw new UserError(
      `--set ${modelKey}: a resumed run keeps its model config; start a new run (--init from the checkpoint) to change it`,
    );
  }
  const given: Partial<TrainingOptions> = { ...flags.options };
  const corpus = corpusFlag(flags.corpus);
  if (corpus !== undefined) given.corpus = corpus;
  for (const [key, value] of Object.entries(given) as [TrainingOptionKey, unknown][]) {
    if (RESUMABLE_OPTIONS.has(key)) continue;
    if (JSON.stringify(value) === JSON.stringify(previous[key])) continue;
    const flag = key === 'corpus' ? '--corpus' : (flags.optionFlags[key] ?? flagOf(key));
    throw new UserError(
      `${flag}: a resumed run keeps its ${key} (${formatDefault(previous[key])}); it changes the model or the data`,
    );
  }
}

async function loadStart(flags: Flags, runsDir: string): Promise<RunStart> {
  if (flags.resume) {
    const dir = findResumeCheckpoint(flags.resume, runsDir, flags.run);
    const resumed = await loadTrainingCheckpoint(dir);
    // The checkpoint is self-contained: its own tokenizer.json tokenizes the corpus too.
    const saved = join(resumed.dir, TOKENIZER_FILE);
    const previousPath = (resumed.training as Partial<TrainingOptions>).tokenizer;
    const tokenizerPath = existsSync(saved)
      ? saved
      : previousPath && existsSync(previousPath)
        ? previousPath
        : defaultTokenizerPath();
    return {
      resumed,
      tokenizer: Tokenizer.fromFile(tokenizerPath),
      tokenizerPath,
      model: resumed.model,
      preset: (resumed.training as Partial<TrainingOptions>).preset ?? null,
      modelDefaults: {},
    };
  }
  const tokenizerPath = flags.tokenizer
    ? resolveUserPath(flags.tokenizer)
    : defaultTokenizerFor(flags.corpus);
  if (!existsSync(tokenizerPath))
    throw new UserError(`--tokenizer: file not found: ${tokenizerPath}`);
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  if (flags.init) {
    const dir = resolveUserPath(flags.init);
    if (!existsSync(join(dir, CONFIG_FILE)))
      throw new UserError(`--init: no config.json in ${dir}`);
    const modelKey = Object.keys(flags.model)[0];
    if (modelKey !== undefined) {
      throw new UserError(`--set ${modelKey}: --init keeps the model config of its checkpoint`);
    }
    const carryMemory = legacyCarryMemory(readJsonFile(join(dir, CONFIG_FILE), '--init'));
    return {
      resumed: null,
      tokenizer,
      tokenizerPath,
      model: await loadCheckpoint(dir),
      preset: null,
      modelDefaults: carryMemory === undefined ? {} : { carryMemory },
    };
  }
  const { config, preset, carryMemory } = modelConfig(flags, tokenizer);
  return {
    resumed: null,
    tokenizer,
    tokenizerPath,
    model: BakaCausalLM.create(config, { seed: flags.options.seed ?? 0 }),
    preset,
    modelDefaults: carryMemory === undefined ? {} : { carryMemory },
  };
}

/** The model config from --preset, --config (file fields win) and --set, sized to the tokenizer. */
function modelConfig(
  flags: Flags,
  tokenizer: Tokenizer,
): { config: BakaConfig; preset: string | null; carryMemory: boolean | undefined } {
  const fromFile = flags.config
    ? (readJsonFile(resolveUserPath(flags.config), '--config') as object)
    : {};
  const preset = flags.preset ?? (flags.config ? null : DEFAULT_PRESET);
  const base = preset ? presetConfig(preset) : {};
  const input = { ...base, n_vocab: tokenizer.vocabSize, ...fromFile, ...flags.model };
  const source = flags.config ? `--config ${flags.config}` : `--preset ${preset}`;
  const config = asUserError('', () => makeConfig(input, source));
  if (config.n_vocab < tokenizer.vocabSize) {
    throw new UserError(
      `n_vocab ${config.n_vocab} is smaller than the tokenizer's vocabulary (${tokenizer.vocabSize})`,
    );
  }
  return { config, preset, carryMemory: legacyCarryMemory(fromFile) };
}

/**
 * The run's options, lowest first: the schema's defaults, the quick run or the --input-ids
 * profile (a new run) or the checkpoint's training.json (a resume), then the flags and --set.
 */
function resolveOptions(flags: Flags, start: RunStart, inputRows: number | null): TrainingOptions {
  const given = flags.options;
  const lengthGiven = ['maxSteps', 'maxTokens', 'epochs', 'maxMinutes'].some((key) => key in given);
  const previous = start.resumed
    ? makeTrainingOptions(start.resumed.training, `${start.resumed.dir}/training.json`)
    : null;
  if (previous) refuseResumeOverrides(flags, previous);
  const profile = previous
    ? previous
    : inputRows !== null
      ? { ...INPUT_IDS_RUN, batchSize: inputRows }
      : lengthGiven
        ? {}
        : QUICK_RUN.options;
  const corpus = inputRows === null ? corpusFlag(flags.corpus) : undefined;
  return asUserError('', () =>
    makeTrainingOptions(
      {
        ...start.modelDefaults,
        ...profile,
        ...given,
        ...(corpus !== undefined ? { corpus } : {}),
        runName: flags.run ?? previous?.runName ?? defaultRunName(start.preset ?? 'model'),
        tokenizer: previous ? previous.tokenizer : start.tokenizerPath,
        preset: previous ? previous.preset : start.preset,
      },
      'train options',
    ),
  );
}

/**
 * A resume's schedule follows the options it may change: the new learning rate, and (cosine)
 * the decay horizon, which moves only with --extend-schedule.
 */
function resumeSchedule(
  flags: Flags,
  options: TrainingOptions,
  resumed: TrainingCheckpoint,
): string[] {
  const schedule = resumed.state.schedule;
  const changes: string[] = [];
  const previous = makeTrainingOptions(resumed.training, CHECKPOINT_FILES.training);
  for (const key of RESUMABLE_OPTIONS) {
    if (JSON.stringify(options[key]) !== JSON.stringify(previous[key])) {
      changes.push(`${key} ${formatDefault(previous[key])} -> ${formatDefault(options[key])}`);
    }
  }
  if (schedule.learningRate !== options.learningRate) schedule.learningRate = options.learningRate;
  if (schedule.name === 'cosine' && options.maxSteps !== (schedule.totalSteps ?? null)) {
    if (!flags.extendSchedule) {
      throw new UserError(
        `${flags.optionFlags.maxSteps ?? '--steps'}: the cosine schedule decays over ${schedule.totalSteps} steps; add --extend-schedule to stretch it over ${options.maxSteps} (or keep --steps ${schedule.totalSteps})`,
      );
    }
    if (options.maxSteps === null) throw new UserError('--extend-schedule needs --steps');
    schedule.totalSteps = options.maxSteps;
  }
  return changes;
}

/** The corpus tokenized once into cached shards (with the run's tokenizer), or no documents. */
export async function openData(
  options: TrainingOptions,
  tokenizerPath: string,
  runsDir: string,
  read: ReadOptions,
): Promise<TokenDocuments> {
  if (options.corpus === null) return tokenDocumentsFromArrays([]);
  const started = performance.now();
  const documents = await openCorpusDocuments({
    corpus: options.corpus,
    tokenizerPath,
    cacheDir: join(runsDir, '.shards'),
    read,
    onProgress: (message) => process.stderr.write(`${message}\n`),
  });
  process.stderr.write(
    `data: ${options.corpus}: ${formatCount(documents.numTokens)} tokens in ${documents.numDocuments} documents (${formatSeconds((performance.now() - started) / 1000)})\n`,
  );
  return documents;
}

/** `; answers at distance 0: 97.5%, 1: 41.0%` when the documents mark answers (recall corpus). */
export function answerLine(result: EvaluationResult): string {
  if (!result.answers || result.answers.length === 0) return '';
  const parts = result.answers.map(
    (answer) => `${answer.distance}: ${((100 * answer.correct) / answer.answers).toFixed(1)}%`,
  );
  return `; answer accuracy at distance ${parts.join(', ')}`;
}

/** Progress bar, JSON step lines (--input-ids) and messages for skips and evaluations. */
export function progressHooks(
  bar: ProgressBar,
  jsonLog: boolean,
): SessionHooks & { tokensPerSecond: () => number } {
  let tokensSeen = 0;
  let secondsSeen = 0;
  const tokensPerSecond = () => tokensSeen / Math.max(secondsSeen, 1e-9);
  return {
    tokensPerSecond,
    onStep: (step) => {
      tokensSeen += step.stepTokens;
      secondsSeen += step.seconds;
      const where = step.unit.where;
      const position = jsonLog
        ? `pass ${where.pass + 1} window ${where.window + 1}/${where.windows}`
        : `batch ${where.batch + 1}/${where.batches} pass ${where.pass + 1} win ${where.window + 1}/${where.windows}`;
      bar.update(
        step.step,
        `loss ${step.loss.toFixed(4)} ${formatCount(tokensPerSecond())} tok/s ${position} [${step.unit.rows}x${step.unit.length}]`,
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
        `\neval @ step ${step}: valid loss ${formatLoss(result.loss)} (ppl ${result.ppl.toFixed(1)}, token-weighted ${formatLoss(result.tokenLoss)}, ${result.documents} articles, ${result.nans} NaN)${answerLine(result)}\n`,
      );
    },
  };
}

/** How often the trainer checks that the package-manager wrapper it runs under is alive. */
const PARENT_POLL_MS = 250;

/**
 * Ctrl-C, SIGTERM and SIGHUP finish the step, save and exit; a second one exits at once. Under a
 * package-manager script (`pnpm baka train`), pnpm does not pass SIGTERM on: when the wrapper
 * exits, this process is re-parented, and that stops the run the same way. Returns the signal
 * that stopped the run (null: none) and a function that removes the handlers.
 */
export function stopOnSignals(session: { requestStop(): void }): {
  signal: () => string | null;
  remove: () => void;
} {
  let stoppedBy: string | null = null;
  let signals = 0;
  const stop = (why: string) => {
    if (stoppedBy !== null) return;
    stoppedBy = why;
    process.stderr.write(
      `\ninterrupted (${why}): finishing this step, saving a checkpoint (a second signal quits now)\n`,
    );
    session.requestStop();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(INTERRUPTED_EXIT_CODE);
    stop(signal);
  };
  const names: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const name of names) process.on(name, onSignal);
  const parent = process.ppid;
  const watch =
    process.env.npm_lifecycle_event !== undefined
      ? setInterval(() => {
          if (process.ppid === parent) return;
          // the wrapper held our stdout/stderr: a closed pipe must not end the run before it saves
          for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
          stop('the wrapper process exited');
        }, PARENT_POLL_MS)
      : null;
  watch?.unref();
  return {
    signal: () => stoppedBy,
    remove: () => {
      for (const name of names) process.off(name, onSignal);
      if (watch) clearInterval(watch);
    },
  };
}

function printSummary(
  summary: SessionSummary,
  context: {
    options: TrainingOptions;
    stoppedBy: string | null;
    tokensPerSecond: number;
    outDir: string | null;
    runsDir: string;
    runsDirFlag: string | undefined;
    toStderr: boolean;
  },
): void {
  const { options } = context;
  const how =
    summary.reason === 'interrupted'
      ? `stopped (${context.stoppedBy === 'SIGINT' ? 'Ctrl-C' : context.stoppedBy})`
      : summary.reason === 'time'
        ? `stopped at the time limit (--max-minutes ${options.maxMinutes})`
        : 'done';
  const lines = [
    `${how}: ${plural(summary.sessionSteps, 'step')} this session (${summary.steps} in total), ${formatCount(summary.sessionTokens)} tokens in ${formatSeconds(summary.seconds)} (${formatCount(context.tokensPerSecond)} tokens/s while training)`,
    `loss: first ${formatLoss(summary.losses[0] ?? null)} -> final ${formatLoss(summary.finalLoss)} (best ${formatLoss(summary.bestLoss)}${summary.skippedSteps > 0 ? `, ${summary.skippedSteps} steps skipped for NaN/Inf` : ''})`,
  ];
  const lastEval = summary.evaluations.at(-1);
  if (lastEval) {
    lines.push(
      `valid: loss ${formatLoss(lastEval.result.loss)}, ppl ${lastEval.result.ppl.toFixed(1)} (${lastEval.result.documents} articles, step ${lastEval.step})`,
    );
  }
  lines.push(
    `checkpoint: ${summary.checkpoint}${context.outDir ? ` (and ${context.outDir})` : ''}`,
    `metrics: ${join(context.runsDir, 'metrics.sqlite')} (run '${options.runName}'); view them with: pnpm --filter metrics-viewer start`,
    `resume with: pnpm baka train --resume ${options.runName}${context.runsDirFlag ? ` --runs-dir ${context.runsDirFlag}` : ''}`,
  );
  (context.toStderr ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
}

async function runTrain(flags: Flags): Promise<void> {
  const outDir = outputDirectory(flags.out);
  const report = await initBackend(flags.backend);
  process.stderr.write(`${describeBackend(report)}\n`);
  const runsDir = flags.runsDir ? resolveUserPath(flags.runsDir) : defaultRunsDir();
  const start = await loadStart(flags, runsDir);
  const { model, tokenizer, resumed } = start;
  const inputBatch = flags.inputIds ? readTrainingBatch(resolveUserPath(flags.inputIds)) : null;
  const options = resolveOptions(flags, start, inputBatch?.rows ?? null);
  if (options.schedule === 'cosine' && options.maxSteps === null) {
    throw new UserError('--schedule cosine needs --steps (the decay horizon)');
  }
  const changes = resumed ? resumeSchedule(flags, options, resumed) : [];
  const documents = await openData(options, start.tokenizerPath, runsDir, readerOptions(flags));
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
  const session = new TrainingSession({
    model,
    documents,
    options,
    runDir: join(runsDir, options.runName),
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
  process.stderr.write(
    `run ${options.runName}: ${formatCount(countParameters(model).total)} parameters, ${options.mode} mode, window ${options.window}, ` +
      `batch ${options.batchSize}, lr ${options.learningRate} (${options.schedule}), ${plannedSteps} steps planned` +
      `${options.maxMinutes !== null ? `, at most ${options.maxMinutes} min` : ''}${resumed ? `, resuming at step ${resumed.state.step}` : ''}\n`,
  );
  if (changes.length > 0) process.stderr.write(`resume overrides: ${changes.join(', ')}\n`);

  const stopper = stopOnSignals(session);
  const bar = new ProgressBar({
    label: 'train',
    total: plannedSteps,
    initial: session.state.step,
    unit: 'steps',
  });
  const hooks = progressHooks(bar, inputBatch !== null);
  let summary: SessionSummary;
  try {
    summary = await session.run(hooks);
  } finally {
    bar.finish();
    stopper.remove();
    store.close();
  }
  if (outDir) {
    await saveTrainingCheckpoint(outDir, {
      model,
      optimizer: session.optimizer,
      state: session.state,
      training: options,
      tokenizerJson: tokenizer.toJSON(),
    });
  }
  printSummary(summary, {
    options,
    stoppedBy: stopper.signal(),
    tokensPerSecond: hooks.tokensPerSecond(),
    outDir,
    runsDir,
    runsDirFlag: flags.runsDir,
    toStderr: inputBatch !== null,
  });
  const sampleTokens = flags.sampleTokens ?? SAMPLE_TOKENS;
  if (flags.sample && !inputBatch && sampleTokens > 0 && summary.reason !== 'interrupted') {
    printSample(model, documents, tokenizer, sampleTokens, options.seed);
  }
  session.dispose();
  model.dispose();
  if (summary.reason === 'interrupted') process.exitCode = INTERRUPTED_EXIT_CODE;
}

function printSample(
  model: BakaCausalLM,
  documents: TokenDocuments,
  tokenizer: Tokenizer,
  maxNewTokens: number,
  seed: number,
): void {
  const prompt = samplePrompt(documents, tokenizer);
  const generated = model.generate(prompt, { maxNewTokens, temperature: 0.8, topK: 40, seed });
  process.stdout.write(
    `sample (prompt + ${generated.length} generated tokens):\n${tokenizer.decode([...prompt, ...generated])}\n`,
  );
}

/** The sample's prompt: the first line of the first validation article (or of the corpus). */
function samplePrompt(documents: TokenDocuments, tokenizer: Tokenizer): number[] {
  const index = documents.splits.valid?.start ?? 0;
  if (documents.numDocuments === 0) return [tokenizer.specialTokens.bos ?? 0];
  const ids = Array.from(documents.document(index).subarray(0, 16));
  const text = tokenizer.decode(ids);
  const firstLine = text.split('\n').find((line) => line.trim().length > 0) ?? text;
  let prompt: number[];
  try {
    prompt = Array.from(tokenizer.encode(`${firstLine.trim()}\n`));
  } catch {
    return ids; // a vocabulary without a newline (the recall corpus's): the first ids as they are
  }
  return prompt.length > 0 ? prompt : ids.slice(0, 4);
}
