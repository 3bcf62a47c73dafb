// A training run from start (or resume) to its final checkpoint: builds the optimizer, runs the
// loop with hooks for the metrics store, periodic checkpoints and evaluations, and ends the run
// with a checkpoint. `requestStop()` (Ctrl-C) ends it cleanly at the next step boundary.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { SequenceState } from '@baka/model';
import type { ArticleBatch, TokenDocuments } from '@baka/data';
import { type BakaCausalLM, countParameters } from '@baka/model';
import { AdamW } from './adamw';
import {
  checkpointName,
  dropOlderOptimizerStates,
  listCheckpoints,
  pruneCheckpoints,
  restoreMemory,
  restoreOptimizer,
  saveTrainingCheckpoint,
} from './checkpoint';
import { type EvaluationResult, evaluate } from './evaluate';
import type { MetricsStore } from './metrics-store';
import { RunLock } from './run-lock';
import { describeSystemError, StorageError } from './storage-errors';
import {
  type LoopContext,
  type LoopHooks,
  type SkipReport,
  type StepReport,
  type StopReason,
  trainLoop,
} from './train-loop';
import { Trainable } from './train-step';
import { TRAINER_STATE_FORMAT, TrainerError, type TrainerState } from './trainer-state';
import type { TrainingOptions } from './training-options';
import { checkTrainingData, startPosition, type UnitOptions } from './training-units';

export interface SessionSetup {
  model: BakaCausalLM;
  documents: TokenDocuments;
  options: TrainingOptions;
  /** The run's directory; checkpoints go to `<runDir>/checkpoints/step-NNNNNNNN`. */
  runDir: string;
  tokenizerJson?: string | null;
  /** Metrics store to log into (null: no logging). */
  store?: MetricsStore | null;
  backend?: string | null;
  /** Resume: the checkpoint the model was loaded from, and its trainer state. */
  resume?: { dir: string; state: TrainerState } | null;
  /** Train on this one batch each epoch instead of the documents (`--input-ids`). */
  batch?: ArticleBatch | null;
}

export interface SessionHooks {
  onStep?: (report: StepReport) => void | Promise<void>;
  onSkip?: (report: SkipReport) => void | Promise<void>;
  onEvaluate?: (result: EvaluationResult, step: number) => void | Promise<void>;
  onCheckpoint?: (dir: string, step: number) => void | Promise<void>;
  /** One-line notes for the user (e.g. a stale lock taken over). */
  onNote?: (message: string) => void;
}

export interface SessionSummary {
  reason: StopReason;
  /** Steps taken in this session / in the whole run. */
  sessionSteps: number;
  steps: number;
  sessionTokens: number;
  tokens: number;
  /** Wall seconds of this session (including checkpoints and evaluations). */
  seconds: number;
  firstLoss: number | null;
  finalLoss: number | null;
  bestLoss: number | null;
  skippedSteps: number;
  checkpoint: string | null;
  evaluations: { step: number; result: EvaluationResult }[];
  /** Losses of this session's steps, in order. */
  losses: number[];
}

/** Raised when the run stops on too many NaN/Inf steps (after saving the last good checkpoint). */
export class NonFiniteTrainingError extends TrainerError {
  override name = 'NonFiniteTrainingError';
}

/** What one session collects while it runs (for its summary). */
interface SessionRecord {
  startStep: number;
  startTokens: number;
  losses: number[];
  evaluations: SessionSummary['evaluations'];
  /** The step of the last evaluation (-1: none yet). */
  lastEvaluated: number;
}

export class TrainingSession {
  readonly model: BakaCausalLM;
  readonly optimizer: AdamW;
  readonly trainable: Trainable;
  readonly state: TrainerState;
  readonly options: TrainingOptions;
  readonly checkpointsDir: string;
  lastCheckpoint: string | null = null;
  runId: number | null = null;
  private stopRequested = false;
  /** Carried memory restored from a checkpoint (before the loop runs). */
  private memory: SequenceState | null = null;
  /** The loop's context while/after running; its `memory` is the live carried memory. */
  private loop: LoopContext | null = null;
  private readonly started = performance.now();

  constructor(private readonly setup: SessionSetup) {
    this.model = setup.model;
    this.options = setup.options;
    this.checkpointsDir = join(setup.runDir, 'checkpoints');
    this.trainable = new Trainable(setup.model.parameters);
    this.optimizer = new AdamW(this.trainable.entries(), {
      learningRate: this.options.learningRate,
      betas: this.options.betas,
      epsilon: this.options.epsilon,
      weightDecay: this.options.weightDecay,
    });
    if (setup.resume) {
      restoreOptimizer(setup.resume.dir, this.optimizer, setup.resume.state.step);
      if (this.options.carryMemory) this.memory = restoreMemory(setup.resume.dir);
      this.state = structuredClone(setup.resume.state);
      this.lastCheckpoint = setup.resume.dir;
    } else {
      this.state = {
        format: TRAINER_STATE_FORMAT,
        version: 1,
        runName: this.options.runName,
        step: 0,
        tokens: 0,
        elapsedSeconds: 0,
        position: startPosition(this.options.seed),
        rng: { seed: this.options.seed, algorithm: 'mulberry32 per (seed, epoch[, batch])' },
        schedule: {
          name: this.options.schedule,
          learningRate: this.options.learningRate,
          warmupSteps: this.options.warmupSteps,
          ...(this.options.maxSteps !== null ? { totalSteps: this.options.maxSteps } : {}),
          ...(this.options.minLearningRate !== null
            ? { minLearningRate: this.options.minLearningRate }
            : {}),
        },
        firstLoss: null,
        lastLoss: null,
        bestLoss: null,
        skippedSteps: 0,
        savedAt: new Date().toISOString(),
      };
    }
  }

  /** Asks the loop to stop at the next step boundary (then the run saves and ends). */
  requestStop(): void {
    this.stopRequested = true;
  }

  get stopping(): boolean {
    return this.stopRequested;
  }

  /** Writes a checkpoint of the current state and prunes old ones; returns its directory. */
  async saveCheckpoint(): Promise<string> {
    const dir = join(this.checkpointsDir, checkpointName(this.state.step));
    this.state.savedAt = new Date().toISOString();
    try {
      await saveTrainingCheckpoint(dir, {
        model: this.model,
        optimizer: this.optimizer,
        state: this.state,
        memory: this.loop?.memory ?? this.memory,
        training: this.options,
        tokenizerJson: this.setup.tokenizerJson ?? null,
      });
    } catch (error) {
      const problem = describeSystemError(error);
      if (problem === null) throw error;
      throw new StorageError(
        `cannot save checkpoint ${dir}: ${problem}; ${this.previousCheckpoint()}`,
      );
    }
    this.lastCheckpoint = dir;
    try {
      pruneCheckpoints(this.checkpointsDir, this.options.keep);
      if (this.options.optimizerInLatestOnly) dropOlderOptimizerStates(this.checkpointsDir, dir);
    } catch (error) {
      const problem = describeSystemError(error);
      if (problem === null) throw error;
      throw new StorageError(
        `checkpoint ${dir} is saved, but pruning older checkpoints failed: ${problem}`,
      );
    }
    return dir;
  }

  /** Where the run can be picked up after a failure, for error messages. */
  private previousCheckpoint(): string {
    return this.lastCheckpoint
      ? `the previous checkpoint ${this.lastCheckpoint} is intact`
      : 'the run has no earlier checkpoint';
  }

  /** A storage error (e.g. the database on a full disk) completed with where the run stands. */
  private namingCheckpoint(error: unknown): unknown {
    if (!(error instanceof StorageError) || error.message.includes('checkpoint')) return error;
    return new StorageError(`${error.message}; ${this.previousCheckpoint()}`);
  }

  /** Marks the run failed where the database can still be written (a failure is on its way). */
  private markFailed(): void {
    const store = this.setup.store;
    if (!store || this.runId === null) return;
    try {
      store.endRun(this.runId, 'failed', this.lastCheckpoint ?? undefined);
    } catch {
      // The database itself failed (full disk, removed file): the error being raised says so.
    }
  }

  /** What the loop trains on, in order. */
  private get unitOptions(): UnitOptions {
    return {
      mode: this.options.mode,
      window: this.options.window,
      batchSize: this.options.batchSize,
      epochs: this.options.epochs,
      seed: this.options.seed,
      batch: this.setup.batch ?? null,
    };
  }

  /** True when the documents have the split evaluations score (`evalSplit`). */
  get canEvaluate(): boolean {
    const range = this.setup.documents.splits[this.options.evalSplit];
    return range !== undefined && range.end > range.start;
  }

  /** Scores the evaluation split now (upstream's bench), logging to the evals table. */
  evaluate(): EvaluationResult {
    const result = evaluate(this.model, this.setup.documents, {
      split: this.options.evalSplit,
      ...(this.options.evalDocuments !== null ? { maxDocuments: this.options.evalDocuments } : {}),
    });
    if (this.setup.store && this.runId !== null) {
      this.setup.store.logEval(this.runId, {
        step: this.state.step,
        tokens: this.state.tokens,
        elapsed: this.state.elapsedSeconds,
        split: result.split,
        loss: result.loss,
        tokenLoss: result.tokenLoss,
        ppl: result.ppl,
        nans: result.nans,
        answers: result.answers,
      });
    }
    return result;
  }

  private startRun(): void {
    const store = this.setup.store;
    if (!store) return;
    const resume = Boolean(this.setup.resume) || store.hasRun(this.options.runName);
    if (store.hasRun(this.options.runName) && !this.setup.resume) {
      throw new TrainerError(
        `a run named '${this.options.runName}' already exists in ${store.path}; pick another --run or --resume it`,
      );
    }
    this.runId = store.startRun(
      {
        name: this.options.runName,
        preset: this.options.preset,
        config: { model: this.model.config, training: this.options },
        nParams: countParameters(this.model).total,
        host: hostname(),
        backend: this.setup.backend ?? null,
        checkpointDir: this.checkpointsDir,
      },
      { resume },
    );
  }

  /** Trains until the steps, epochs or time run out, or a stop is requested. */
  async run(hooks: SessionHooks = {}): Promise<SessionSummary> {
    checkTrainingData(this.setup.documents, this.unitOptions, this.options.corpus);
    const lock = RunLock.acquire(this.setup.runDir, this.options.runName);
    try {
      if (lock.tookOverFrom !== null)
        hooks.onNote?.(`took over the stale lock of process ${lock.tookOverFrom} (${lock.path})`);
      return await this.runLocked(hooks);
    } finally {
      lock.release();
    }
  }

  /** Refuses to resume from a checkpoint older than the run's newest (it would prune them). */
  private checkResumeIsNewest(): void {
    if (!this.setup.resume) return;
    const newer = listCheckpoints(this.checkpointsDir).filter(
      (checkpoint) => checkpoint.step > this.state.step,
    );
    if (newer.length === 0) return;
    throw new TrainerError(
      `cannot resume run '${this.options.runName}' from ${this.setup.resume.dir} (step ${this.state.step}): ` +
        `the run has newer checkpoints (${newer.map((checkpoint) => checkpoint.dir).join(', ')}) that continuing would overwrite and prune; ` +
        `resume the newest (--resume ${this.options.runName}), or start a new run from this checkpoint with --init`,
    );
  }

  private async runLocked(hooks: SessionHooks): Promise<SessionSummary> {
    this.checkResumeIsNewest();
    this.startRun();
    const record: SessionRecord = {
      startStep: this.state.step,
      startTokens: this.state.tokens,
      losses: [],
      evaluations: [],
      lastEvaluated: -1,
    };
    const reason = await this.guarded(() => this.runLoop(this.loopHooks(hooks, record)));
    await this.guarded(() => this.finish(reason, hooks, record));
    if (reason === 'non-finite') {
      throw new NonFiniteTrainingError(
        `training stopped: ${this.options.maxBadSteps} steps in a row had a NaN/Inf loss or gradient ` +
          `(${this.state.skippedSteps} skipped in total); the last good weights are saved in ${this.lastCheckpoint}. ` +
          'Try a lower --lr or a warmup.',
      );
    }
    return this.summary(reason, record);
  }

  /** Runs `work`; a failure marks the run failed and names the last checkpoint. */
  private async guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.markFailed();
      throw this.namingCheckpoint(error);
    }
  }

  /** Evaluates (when there is a validation split), records it and tells the hooks. */
  private async evaluateAndRecord(hooks: SessionHooks, record: SessionRecord): Promise<void> {
    if (!this.canEvaluate) return;
    const result = this.evaluate();
    record.lastEvaluated = this.state.step;
    record.evaluations.push({ step: this.state.step, result });
    await hooks.onEvaluate?.(result, this.state.step);
  }

  /** What happens after every step: the metrics row, the hooks, evaluation and checkpoint cadence. */
  private loopHooks(hooks: SessionHooks, record: SessionRecord): LoopHooks {
    const store = this.setup.store ?? null;
    return {
      shouldStop: () => this.stopRequested,
      onSkip: (report) => hooks.onSkip?.(report),
      onStep: async (report) => {
        record.losses.push(report.loss);
        if (store && this.runId !== null) {
          store.logMetrics(this.runId, {
            step: report.step,
            tokens: report.tokens,
            elapsed: this.state.elapsedSeconds,
            loss: report.loss,
            lr: report.learningRate,
            gradNorm: report.gradNorm,
            tokensPerSecond: report.seconds > 0 ? report.stepTokens / report.seconds : null,
          });
        }
        await hooks.onStep?.(report);
        if (this.options.evalEvery > 0 && report.step % this.options.evalEvery === 0)
          await this.evaluateAndRecord(hooks, record);
        if (this.options.saveEvery > 0 && report.step % this.options.saveEvery === 0) {
          const dir = await this.saveCheckpoint();
          await hooks.onCheckpoint?.(dir, report.step);
        }
      },
    };
  }

  /** The training loop over the session's data with the run's options. */
  private runLoop(loopHooks: LoopHooks): Promise<StopReason> {
    this.loop = {
      model: this.model,
      trainable: this.trainable,
      optimizer: this.optimizer,
      documents: this.setup.documents,
      state: this.state,
      memory: this.memory,
    };
    return trainLoop(
      this.loop,
      {
        units: this.unitOptions,
        schedule: this.state.schedule,
        maxSteps: this.options.maxSteps,
        maxTokens: this.options.maxTokens,
        maxSeconds: this.options.maxMinutes === null ? null : this.options.maxMinutes * 60,
        clipNorm: this.options.clipNorm,
        accumulate: this.options.accumulate,
        carryMemory: this.options.carryMemory,
        maxBadSteps: this.options.maxBadSteps,
      },
      loopHooks,
    );
  }

  /** After the loop: the final evaluation, the final checkpoint, the run's status. */
  private async finish(
    reason: StopReason,
    hooks: SessionHooks,
    record: SessionRecord,
  ): Promise<void> {
    const wantFinalEval = this.options.evalEvery > 0 || this.options.evalAtEnd;
    if (
      reason !== 'non-finite' &&
      reason !== 'interrupted' &&
      wantFinalEval &&
      record.lastEvaluated !== this.state.step &&
      this.state.step > 0
    ) {
      await this.evaluateAndRecord(hooks, record);
    }
    // The final checkpoint (also the "last good" one after a NaN stop: skipped steps change nothing).
    const lastSavedStep = this.lastCheckpoint?.endsWith(checkpointName(this.state.step));
    if (!lastSavedStep || this.state.step !== record.startStep) {
      const dir = await this.saveCheckpoint();
      await hooks.onCheckpoint?.(dir, this.state.step);
    }
    const store = this.setup.store ?? null;
    if (store && this.runId !== null) {
      const status =
        reason === 'non-finite' ? 'failed' : reason === 'interrupted' ? 'stopped' : 'finished';
      store.endRun(this.runId, status, this.lastCheckpoint ?? undefined);
    }
  }

  private summary(reason: StopReason, record: SessionRecord): SessionSummary {
    return {
      reason,
      sessionSteps: this.state.step - record.startStep,
      steps: this.state.step,
      sessionTokens: this.state.tokens - record.startTokens,
      tokens: this.state.tokens,
      seconds: (performance.now() - this.started) / 1000,
      firstLoss: this.state.firstLoss,
      finalLoss: this.state.lastLoss,
      bestLoss: this.state.bestLoss,
      skippedSteps: this.state.skippedSteps,
      checkpoint: this.lastCheckpoint,
      evaluations: record.evaluations,
      losses: record.losses,
    };
  }

  /** Frees the optimizer state (the model belongs to the caller). */
  dispose(): void {
    this.optimizer.dispose();
    const memory = this.loop?.memory ?? this.memory;
    memory?.dispose();
    this.memory = null;
    if (this.loop) this.loop.memory = null;
  }
}
