// The training options of a run (saved as training.json in every checkpoint). Defaults follow
// upstream (DESIGN §1.4): article batches of 5, windows of 2048, AdamW defaults, clip 1.0,
// constant learning rate, no memory across windows.
import { z } from 'zod';
import { describeFirstIssue, TrainerError } from './trainer-state';

export const trainingOptionsSchema = z.object({
  runName: z.string().min(1),
  mode: z.enum(['upstream', 'packed']).default('upstream'),
  /** Window length in tokens (packed: block length). */
  window: z.number().int().min(3).default(2048),
  /** Articles per batch (packed: rows per block batch). */
  batchSize: z.number().int().min(1).default(5),
  epochs: z.number().int().min(1).default(1),
  seed: z.number().int().default(0),
  /** Stop after this many optimizer steps in total (null: run all epochs). */
  maxSteps: z.number().int().min(1).nullable().default(null),
  /** Stop each session after this many minutes (null: no limit). */
  maxMinutes: z.number().positive().nullable().default(null),
  learningRate: z.number().positive().default(1e-3),
  schedule: z.enum(['constant', 'cosine']).default('constant'),
  warmupSteps: z.number().int().min(0).default(0),
  /** Floor of the cosine schedule (default learningRate / 10). */
  minLearningRate: z.number().min(0).nullable().default(null),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.999]),
  epsilon: z.number().min(0).default(1e-8),
  weightDecay: z.number().min(0).default(0.01),
  /** Global gradient-norm clip (null: none). */
  clipNorm: z.number().positive().nullable().default(1),
  /** Windows averaged into one optimizer step. */
  accumulate: z.number().int().min(1).default(1),
  carryMemory: z.boolean().default(false),
  /** Non-finite steps in a row that stop the run. */
  maxBadSteps: z.number().int().min(1).default(10),
  /** Checkpoint every N steps (0: only at the end). */
  saveEvery: z.number().int().min(0).default(0),
  /** Checkpoints kept (oldest deleted first). */
  keep: z.number().int().min(1).default(3),
  /**
   * Keep optimizer.safetensors (2x the weights) only in the newest checkpoint: older ones keep
   * the weights and state (loadable, `--init`-able) but cannot be resumed exactly.
   */
  optimizerInLatestOnly: z.boolean().default(false),
  /** Evaluate on the validation split every N steps (0: never during training). */
  evalEvery: z.number().int().min(0).default(0),
  /** Articles scored per evaluation (null: the whole split). */
  evalDocuments: z.number().int().min(1).nullable().default(null),
  /** Evaluate once more at the end of the run (when evalEvery > 0 or this is true). */
  evalAtEnd: z.boolean().default(false),
  /** Descriptive: where the data and tokenizer came from, the preset used. */
  corpus: z.string().nullable().default(null),
  tokenizer: z.string().nullable().default(null),
  preset: z.string().nullable().default(null),
});

export type TrainingOptions = z.infer<typeof trainingOptionsSchema>;
export type TrainingOptionsInput = z.input<typeof trainingOptionsSchema>;

/** Validates options (defaults applied); the error names the field. */
export function makeTrainingOptions(input: unknown, where = 'training options'): TrainingOptions {
  const parsed = trainingOptionsSchema.safeParse(input);
  if (!parsed.success) throw new TrainerError(`${where}: ${describeFirstIssue(parsed.error)}`);
  return parsed.data;
}
