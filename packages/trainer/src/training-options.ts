// The training options of a run (saved as training.json in every checkpoint). Defaults follow
// upstream: article batches of 5, windows of 2048, AdamW defaults, clip 1.0, constant learning
// rate, no memory across windows. `trainingOptionsShape` is the only place an option, its default
// and its description are written; the CLI's flags, help text and `--set` read it.
import { describeFields, type FieldInfo, parseFieldValue, splitSetting } from '@baka/model';
import { z } from 'zod';
import { describeFirstIssue, TrainerError } from './trainer-state';

const nullableInt = (min: number) => z.number().int().min(min).nullable();

export const trainingOptionsShape = {
  runName: z.string().min(1).describe('Run name: the directory under the runs directory.'),
  mode: z
    .enum(['upstream', 'packed'])
    .default('upstream')
    .describe('upstream (article batches, windows, two passes) or packed (random blocks).'),
  window: z
    .number()
    .int()
    .min(3)
    .default(2048)
    .describe('Window length in tokens, one optimizer step per window (packed: block length).'),
  batchSize: z
    .number()
    .int()
    .min(1)
    .default(5)
    .describe('Articles per batch (packed: rows per block batch).'),
  epochs: z.number().int().min(1).default(1).describe('Epochs over the training split.'),
  seed: z.number().int().default(0).describe('Seed for the weights and the data order.'),
  maxSteps: nullableInt(1)
    .default(null)
    .describe('Stop after this many optimizer steps in total (null: run all epochs).'),
  maxTokens: nullableInt(1)
    .default(null)
    .describe('Stop once this many tokens have been trained on in total (null: no limit).'),
  maxMinutes: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('Stop each session after this many minutes (null: no limit).'),
  learningRate: z.number().positive().default(1e-3).describe('Peak learning rate.'),
  schedule: z
    .enum(['constant', 'cosine'])
    .default('constant')
    .describe('Learning rate schedule: constant (upstream) or cosine (with warmup).'),
  warmupSteps: z.number().int().min(0).default(0).describe('Linear warmup steps.'),
  minLearningRate: z
    .number()
    .min(0)
    .nullable()
    .default(null)
    .describe('Floor of the cosine schedule (null: learningRate / 10).'),
  betas: z
    .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
    .default([0.9, 0.999])
    .describe('AdamW betas.'),
  epsilon: z.number().min(0).default(1e-8).describe('AdamW epsilon.'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay.'),
  clipNorm: z
    .number()
    .positive()
    .nullable()
    .default(1)
    .describe('Clip the global gradient norm (null: no clipping).'),
  accumulate: z
    .number()
    .int()
    .min(1)
    .default(1)
    .describe('Windows averaged into one optimizer step (gradient accumulation).'),
  carryMemory: z
    .boolean()
    .default(false)
    .describe('Carry detached XL memory from window to window (upstream: off).'),
  maxBadSteps: z
    .number()
    .int()
    .min(1)
    .default(10)
    .describe('Non-finite steps in a row that stop the run.'),
  saveEvery: z
    .number()
    .int()
    .min(0)
    .default(50)
    .describe('Checkpoint every N steps (0: only at the end).'),
  keep: z.number().int().min(1).default(3).describe('Checkpoints kept (oldest deleted first).'),
  optimizerInLatestOnly: z
    .boolean()
    .default(false)
    .describe(
      'Keep optimizer.safetensors only in the newest checkpoint (older ones load and --init, but do not resume exactly).',
    ),
  evalEvery: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('Evaluate on the validation split every N steps (0: never during training).'),
  evalDocuments: nullableInt(1)
    .default(null)
    .describe('Articles scored per evaluation (null: the whole split).'),
  evalSplit: z
    .enum(['valid', 'test'])
    .default('valid')
    .describe('The split evaluations score (valid or test).'),
  evalAtEnd: z
    .boolean()
    .default(true)
    .describe('Evaluate once more at the end of the run (when there is a validation split).'),
  corpus: z
    .string()
    .nullable()
    .default('tinyshakespeare')
    .describe('Corpus: tinyshakespeare, wikitext-2, wikitext-103 or a path (null: given batches).'),
  tokenizer: z
    .string()
    .nullable()
    .default(null)
    .describe('tokenizer.json the corpus was tokenized with (null: the bundled GPT-NeoX-20B one).'),
  preset: z.string().nullable().default(null).describe('Model preset the run started from.'),
};

export const trainingOptionsSchema = z.object(trainingOptionsShape);

export type TrainingOptions = z.infer<typeof trainingOptionsSchema>;
export type TrainingOptionsInput = z.input<typeof trainingOptionsSchema>;
export type TrainingOptionKey = keyof TrainingOptions;

/** The option names, in training.json order. */
export const TRAINING_OPTION_KEYS = Object.keys(trainingOptionsShape) as TrainingOptionKey[];

/**
 * Options a resumed run may change: how long it runs, how fast it learns, how often it saves and
 * evaluates. Every other option would change the model, the data or their order, and is fixed by
 * the checkpoint. (`maxSteps` on a cosine schedule also moves the decay horizon; the caller decides.)
 */
export const RESUMABLE_OPTIONS: ReadonlySet<TrainingOptionKey> = new Set([
  'maxSteps',
  'maxTokens',
  'maxMinutes',
  'epochs',
  'learningRate',
  'clipNorm',
  'maxBadSteps',
  'saveEvery',
  'keep',
  'optimizerInLatestOnly',
  'evalEvery',
  'evalDocuments',
  'evalSplit',
  'evalAtEnd',
]);

/** Description, default and expected type of every option (for help text). */
export function trainingOptionFields(): FieldInfo[] {
  return describeFields(trainingOptionsShape);
}

/** True when `key` is a training option. */
export function isTrainingOptionKey(key: string): key is TrainingOptionKey {
  return key in trainingOptionsShape;
}

/** Parses the text of one option's value (`--set` or a flag); the error says what was expected. */
export function parseTrainingOptionValue(key: TrainingOptionKey, text: string): unknown {
  try {
    return parseFieldValue(trainingOptionsShape[key], text);
  } catch (error) {
    throw new TrainerError((error as Error).message);
  }
}

/**
 * `--set key=value` settings of training options, typed by the schema; an unknown key is an
 * error listing the valid keys.
 */
export function parseTrainingSettings(
  settings: readonly string[],
  flag = '--set',
): Partial<TrainingOptions> {
  const result: Record<string, unknown> = {};
  for (const setting of settings) {
    const [key, text] = splitSetting(setting, flag);
    if (!isTrainingOptionKey(key)) {
      throw new TrainerError(
        `${flag}: unknown key '${key}'; valid keys: ${TRAINING_OPTION_KEYS.join(', ')}`,
      );
    }
    try {
      result[key] = parseTrainingOptionValue(key, text);
    } catch (error) {
      throw new TrainerError(`${flag} ${key}=${text}: ${(error as Error).message}`);
    }
  }
  return result as Partial<TrainingOptions>;
}

/** Validates options (defaults applied); the error names the field. */
export function makeTrainingOptions(input: unknown, where = 'training options'): TrainingOptions {
  const parsed = trainingOptionsSchema.safeParse(input);
  if (!parsed.success) throw new TrainerError(`${where}: ${describeFirstIssue(parsed.error)}`);
  return parsed.data;
}
