// trainer_state.json: everything besides weights and optimizer moments that a resumed run needs
// to continue exactly where it stopped. Validated with zod when read back (the file is input).
import { BakaError } from '@baka/common';
import { z } from 'zod';

export const TRAINER_STATE_FORMAT = 'baka-trainer-state';

const cursorSchema = z.object({
  epoch: z.number().int().min(0),
  position: z.number().int().min(0),
  seed: z.number().int(),
});

/**
 * Where training stands in the data. Upstream mode: `batch` is the cursor of the article batch in
 * progress (the one `articleBatches` yields first when resuming), `pass` 0 (from token 0) or 1
 * (from window/2), and `window` the index of the next window to train in that pass. Packed mode:
 * `batch` is the cursor of the next packed batch, pass and window stay 0.
 */
export const positionSchema = z.object({
  batch: cursorSchema,
  pass: z.number().int().min(0).max(1),
  window: z.number().int().min(0),
});
export type TrainingPosition = z.infer<typeof positionSchema>;

export const trainerStateSchema = z.object({
  format: z.literal(TRAINER_STATE_FORMAT),
  version: z.literal(1),
  runName: z.string().min(1),
  /** Optimizer steps taken. */
  step: z.number().int().min(0),
  /** Non-padding tokens trained on. */
  tokens: z.number().int().min(0),
  /** Training seconds so far (over every resumed segment). */
  elapsedSeconds: z.number().min(0),
  position: positionSchema,
  /**
   * Random state. Every random choice of the trainer is a pure function of (seed, position):
   * the document order per epoch and packed offsets per batch are drawn from generators seeded
   * with (seed, epoch[, batch]), so the seed plus `position` is the whole RNG state.
   */
  rng: z.object({ seed: z.number().int(), algorithm: z.string() }),
  schedule: z.object({
    name: z.enum(['constant', 'cosine']),
    learningRate: z.number().positive(),
    warmupSteps: z.number().int().min(0),
    totalSteps: z.number().int().min(0).optional(),
    minLearningRate: z.number().min(0).optional(),
  }),
  firstLoss: z.number().nullable(),
  lastLoss: z.number().nullable(),
  bestLoss: z.number().nullable(),
  /** Steps skipped because the loss or the gradients were not finite. */
  skippedSteps: z.number().int().min(0),
  savedAt: z.string(),
});
export type TrainerState = z.infer<typeof trainerStateSchema>;

/** Parses trainer_state.json text; `where` (the path) prefixes errors, which name the field. */
export function parseTrainerState(text: string, where: string): TrainerState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${where}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = trainerStateSchema.safeParse(value);
  if (!parsed.success) throw new CheckpointError(`${where}: ${describeFirstIssue(parsed.error)}`);
  return parsed.data;
}

/** `field 'a.b': message` for the first problem zod found, so errors name the field. */
export function describeFirstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  return `field '${issue.path.join('.') || '(root)'}': ${issue.message}`;
}

/** A user-facing trainer error (bad option, unusable input); the CLI prints it without a stack. */
export class TrainerError extends BakaError {
  override name = 'TrainerError';
}

/** A problem with a checkpoint on disk. */
export class CheckpointError extends TrainerError {
  override name = 'CheckpointError';
}
