// The training loop: read a unit, get its loss and gradients, step (or skip), report. Everything
// else (logging, checkpoints, evaluation, progress bars) hangs off the hooks.
import type { SequenceState } from '@baka/model';
import type { TokenDocuments } from '@baka/data';
import type { BakaCausalLM } from '@baka/model';
import type { AdamW } from './adamw';
import { GradientAccumulator } from './flat-gradients';
import { learningRateAt, type ScheduleOptions } from './schedule';
import { clipAndStep, type Trainable, windowGradients } from './train-step';
import type { TrainerState } from './trainer-state';
import { type TrainingUnit, trainingUnits, type UnitOptions } from './training-units';

export interface LoopOptions {
  units: UnitOptions;
  schedule: ScheduleOptions;
  /** Stop once this many optimizer steps have been taken in total (null: run all epochs). */
  maxSteps: number | null;
  /** Stop once this many tokens have been trained on in total (null: no limit). */
  maxTokens: number | null;
  /** Stop after this many seconds of this session (null: no limit). */
  maxSeconds: number | null;
  /** Clip the global gradient norm to this (upstream: 1.0); null disables clipping. */
  clipNorm: number | null;
  /** Windows whose gradients are averaged into one optimizer step (1 = upstream). */
  accumulate: number;
  /** Carry detached XL memory from one window to the next of the same pass (upstream: false). */
  carryMemory: boolean;
  /** Stop after this many non-finite steps in a row. */
  maxBadSteps: number;
}

export interface StepReport {
  step: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  /** Tokens in this step / in the whole run so far. */
  stepTokens: number;
  tokens: number;
  /** Wall seconds of this step. */
  seconds: number;
  unit: TrainingUnit;
}

export interface SkipReport {
  step: number;
  loss: number;
  gradNorm: number;
  consecutive: number;
  unit: TrainingUnit;
}

export interface LoopHooks {
  /** After every optimizer step (the state is already updated). */
  onStep?: (report: StepReport) => void | Promise<void>;
  /** After a step skipped for a NaN/Inf loss or gradient. */
  onSkip?: (report: SkipReport) => void | Promise<void>;
  /** Checked before each step; true stops the loop ('interrupted'). */
  shouldStop?: () => boolean;
}

export type StopReason =
  | 'finished'
  | 'max-steps'
  | 'max-tokens'
  | 'time'
  | 'interrupted'
  | 'non-finite';

export interface LoopContext {
  model: BakaCausalLM;
  trainable: Trainable;
  optimizer: AdamW;
  documents: TokenDocuments;
  /** Mutated in place: step, tokens, position, losses, elapsed time. */
  state: TrainerState;
  /**
   * The detached memory of the last window when carrying memory (else null), kept here so a
   * checkpoint can save it; read at the start, updated after every window. The caller disposes it.
   */
  memory?: SequenceState | null;
}

/** The memory to feed the next window: the carried one restricted to the rows that continue. */
function carriedMemory(memory: SequenceState | null, unit: TrainingUnit): SequenceState | null {
  if (memory === null || unit.keptFromPrevious === null || unit.keptFromPrevious.length === 0)
    return null;
  return memory.selectRows(unit.keptFromPrevious);
}

export async function trainLoop(
  context: LoopContext,
  options: LoopOptions,
  hooks: LoopHooks = {},
): Promise<StopReason> {
  const { model, trainable, optimizer, state } = context;
  const accumulator = new GradientAccumulator(trainable.layout.size);
  const started = performance.now();
  let memory: SequenceState | null = context.memory ?? null;
  const setMemory = (next: SequenceState | null) => {
    if (memory !== next) memory?.dispose();
    memory = next;
    context.memory = next;
  };
  let losses: number[] = [];
  let stepTokens = 0;
  let stepStart = performance.now();
  let bad = 0;

  /** Ends a step: clip + AdamW on the accumulated gradients, or a skip when something was NaN/Inf. */
  const finishStep = async (unit: TrainingUnit, finite: boolean): Promise<boolean> => {
    const learningRate = learningRateAt(state.step, options.schedule);
    let result = { gradNorm: Number.NaN, applied: false };
    if (finite) {
      const gradients = accumulator.take();
      result = clipAndStep(optimizer, gradients, { learningRate, clipNorm: options.clipNorm });
      gradients.dispose();
    } else {
      accumulator.reset();
    }
    const loss = losses.reduce((a, b) => a + b, 0) / losses.length;
    const seconds = (performance.now() - stepStart) / 1000;
    const tokens = stepTokens;
    state.elapsedSeconds += seconds;
    losses = [];
    stepTokens = 0;
    if (!result.applied) {
      bad += 1;
      state.skippedSteps += 1;
      setMemory(null);
      await hooks.onSkip?.({
        step: state.step,
        loss,
        gradNorm: result.gradNorm,
        consecutive: bad,
        unit,
      });
      return bad < options.maxBadSteps;
    }
    bad = 0;
    state.step += 1;
    state.tokens += tokens;
    state.firstLoss ??= loss;
    state.lastLoss = loss;
    state.bestLoss = state.bestLoss === null ? loss : Math.min(state.bestLoss, loss);
    const report = {
      step: state.step,
      loss,
      learningRate,
      gradNorm: result.gradNorm,
      stepTokens: tokens,
    };
    await hooks.onStep?.({ ...report, tokens: state.tokens, seconds, unit });
    return true;
  };

  try {
    let last: TrainingUnit | null = null;
    for (const unit of trainingUnits(context.documents, state.position, options.units)) {
      if (losses.length === 0) {
        // Let signal handlers (Ctrl-C) and I/O callbacks run: awaiting hooks alone only drains
        // microtasks, and the training step itself is synchronous.
        await new Promise((resolve) => setImmediate(resolve));
        if (options.maxSteps !== null && state.step >= options.maxSteps) return 'max-steps';
        if (options.maxTokens !== null && state.tokens >= options.maxTokens) return 'max-tokens';
        if (
          options.maxSeconds !== null &&
          (performance.now() - started) / 1000 >= options.maxSeconds
        )
          return 'time';
        if (hooks.shouldStop?.()) return 'interrupted';
        stepStart = performance.now();
      }
      const input = carriedMemory(memory, unit);
      const window = windowGradients(model, trainable, unit, {
        memory: input,
        keepMemory: options.carryMemory,
        // the random pause layout (if any) draws per step and window, so resume is exact
        layoutSeed: state.step * 65536 + losses.length,
      });
      input?.dispose();
      setMemory(window.memory);
      state.position = unit.next;
      losses.push(window.loss);
      stepTokens += unit.tokens;
      last = unit;
      const finite = Number.isFinite(window.loss);
      if (finite) accumulator.add(window.gradients);
      window.gradients.dispose();
      if (finite && accumulator.micro < options.accumulate) continue;
      if (!(await finishStep(unit, finite))) return 'non-finite';
    }
    // The data ran out in the middle of an accumulation: step on what was accumulated.
    if (last !== null && accumulator.micro > 0 && !(await finishStep(last, true)))
      return 'non-finite';
    return 'finished';
  } finally {
    accumulator.dispose();
  }
}
