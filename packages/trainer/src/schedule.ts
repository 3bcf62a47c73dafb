// Learning-rate schedules: pure functions of the step index (0-based: the step about to be taken).

export type ScheduleName = 'constant' | 'cosine';

export interface ScheduleOptions {
  /** 'constant' (upstream's choice) or 'cosine' (linear warmup, then cosine decay). */
  name: ScheduleName;
  /** Peak learning rate. */
  learningRate: number;
  /** Linear warmup steps (both schedules; default 0). */
  warmupSteps?: number;
  /** Total steps, for the cosine decay's horizon (required for 'cosine'). */
  totalSteps?: number;
  /** Floor the cosine decays to (default learningRate / 10). */
  minLearningRate?: number;
}

/**
 * The learning rate for `step` (0-based). Warmup ramps linearly from lr/warmup to lr over the first
 * `warmupSteps` steps; 'cosine' then follows minLr + (lr - minLr) * (1 + cos(pi * progress)) / 2
 * with progress going 0 -> 1 from the end of warmup to `totalSteps`, and stays at minLr after.
 */
export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { name, learningRate } = options;
  const warmup = options.warmupSteps ?? 0;
  if (step < warmup) return (learningRate * (step + 1)) / warmup;
  if (name === 'constant') return learningRate;
  const total = options.totalSteps;
  if (total === undefined) throw new Error("the 'cosine' schedule needs totalSteps");
  const floor = options.minLearningRate ?? learningRate / 10;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return floor + ((learningRate - floor) * (1 + Math.cos(Math.PI * progress))) / 2;
}

/** Validates schedule options (names the field on error). */
export function checkSchedule(options: ScheduleOptions): void {
  if (options.name !== 'constant' && options.name !== 'cosine') {
    throw new Error(`schedule must be 'constant' or 'cosine', got '${options.name}'`);
  }
  if (!(options.learningRate > 0))
    throw new Error(`learning rate must be > 0, got ${options.learningRate}`);
  const warmup = options.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0)
    throw new Error(`warmup must be an integer >= 0, got ${warmup}`);
  if (options.name === 'cosine' && !(options.totalSteps !== undefined && options.totalSteps > 0)) {
    throw new Error("the 'cosine' schedule needs a positive number of total steps");
  }
}
