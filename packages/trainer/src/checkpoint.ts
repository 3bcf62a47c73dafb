// Training checkpoints (docs/architecture.md §5): the model (config.json + model.safetensors,
// written by @baka/model), optimizer.safetensors (AdamW moments named after the parameters),
// trainer_state.json, tokenizer.json and training.json (the resolved training options).
//
// Writing is atomic (the model package's saveCheckpoint fills a hidden temporary sibling directory
// with every file, then renames it into place), so a run killed mid-save leaves the previous
// checkpoint intact; leftovers of killed saves are ignored and removed by pruneCheckpoints.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BakaCausalLM,
  checkCheckpointTarget,
  loadCheckpoint,
  readSafetensors,
  saveCheckpoint,
  serializeSafetensors,
  TOKENIZER_FILE,
} from '@baka/model';
import type { SequenceState } from '@baka/model';
import type { AdamW, AdamWState } from './adamw';
import { MEMORY_FILE, readMemory, serializeMemory } from './memory-state';
import { isProcessAlive } from './run-lock';
import { CheckpointError, parseTrainerState, type TrainerState } from './trainer-state';

const OPTIMIZER_FILE = 'optimizer.safetensors';
const TRAINER_STATE_FILE = 'trainer_state.json';
const TRAINING_CONFIG_FILE = 'training.json';

/** The files of a training checkpoint directory besides the model's config.json + model.safetensors. */
export const CHECKPOINT_FILES = {
  optimizer: OPTIMIZER_FILE,
  trainerState: TRAINER_STATE_FILE,
  training: TRAINING_CONFIG_FILE,
  tokenizer: TOKENIZER_FILE,
} as const;

/** Every file a training checkpoint may hold, the model's own included. */
const TRAINING_CHECKPOINT_FILES = [...Object.values(CHECKPOINT_FILES), MEMORY_FILE];

/**
 * Throws (one line naming DIR) unless a training checkpoint may be written to DIR: it is new,
 * empty, or a checkpoint of ours. Lets a command refuse a bad output directory before training.
 */
export function checkTrainingCheckpointTarget(dir: string): void {
  checkCheckpointTarget(dir, TRAINING_CHECKPOINT_FILES);
}

const EXP_AVG = 'exp_avg';
const EXP_AVG_SQ = 'exp_avg_sq';

/** Tensor name of an AdamW moment in optimizer.safetensors: `<parameter name>.exp_avg[_sq]`. */
export function optimizerTensorName(parameter: string, moment: 'exp_avg' | 'exp_avg_sq'): string {
  return `${parameter}.${moment}`;
}

/** The optimizer's moments and step as safetensors bytes (F32, names per parameter). */
export function serializeOptimizerState(optimizer: AdamW): Uint8Array {
  const state = optimizer.state();
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const slot of optimizer.layout.slots) {
    tensors.set(optimizerTensorName(slot.name, EXP_AVG), {
      dtype: 'F32',
      shape: slot.shape,
      data: state.expAvg.get(slot.name)!,
    });
    tensors.set(optimizerTensorName(slot.name, EXP_AVG_SQ), {
      dtype: 'F32',
      shape: slot.shape,
      data: state.expAvgSq.get(slot.name)!,
    });
  }
  return serializeSafetensors(tensors, {
    format: 'baka-adamw',
    step: String(state.step),
    lr: String(optimizer.learningRate),
    betas: JSON.stringify(optimizer.betas),
    eps: String(optimizer.epsilon),
    weight_decay: String(optimizer.weightDecay),
  });
}

/** Reads optimizer.safetensors back into an AdamW state (the step comes from trainer_state). */
export function readOptimizerState(path: string, step: number): AdamWState {
  if (!existsSync(path)) throw new CheckpointError(`optimizer state not found: ${path}`);
  const tensors = readSafetensors(path);
  const expAvg = new Map<string, Float32Array>();
  const expAvgSq = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) {
    const moment = name.endsWith(`.${EXP_AVG_SQ}`)
      ? EXP_AVG_SQ
      : name.endsWith(`.${EXP_AVG}`)
        ? EXP_AVG
        : null;
    if (moment === null) throw new CheckpointError(`${path}: unexpected tensor '${name}'`);
    if (tensor.dtype !== 'F32' || !(tensor.data instanceof Float32Array)) {
      throw new CheckpointError(
        `${path}: tensor '${name}' has dtype ${tensor.dtype}, expected F32`,
      );
    }
    const parameter = name.slice(0, -(moment.length + 1));
    (moment === EXP_AVG ? expAvg : expAvgSq).set(parameter, tensor.data);
  }
  return { step, expAvg, expAvgSq };
}

export interface TrainingCheckpoint {
  model: BakaCausalLM;
  state: TrainerState;
  /** The resolved training options saved with the run (training.json). */
  training: unknown;
  tokenizerJson: string | null;
  dir: string;
}

/**
 * Saves a full training checkpoint to `dir` atomically (temporary directory + rename); an
 * existing `dir` is replaced only when it is a checkpoint of ours, and only once the new one is
 * complete. A directory holding anything else is refused (checkTrainingCheckpointTarget).
 */
export async function saveTrainingCheckpoint(
  dir: string,
  parts: {
    model: BakaCausalLM;
    optimizer: AdamW;
    state: TrainerState;
    training: unknown;
    tokenizerJson?: string | null;
    /** The memory carried into the next window (`carryMemory`), saved as memory.safetensors. */
    memory?: SequenceState | null;
  },
): Promise<void> {
  await saveCheckpoint(dir, parts.model, {
    knownFiles: TRAINING_CHECKPOINT_FILES,
    ...(parts.tokenizerJson ? { tokenizerJson: parts.tokenizerJson } : {}),
    files: {
      ...(parts.memory ? { [MEMORY_FILE]: serializeMemory(parts.memory) } : {}),
      [OPTIMIZER_FILE]: serializeOptimizerState(parts.optimizer),
      [TRAINING_CONFIG_FILE]: `${JSON.stringify(parts.training, null, 2)}\n`,
      [TRAINER_STATE_FILE]: `${JSON.stringify(parts.state, null, 2)}\n`,
    },
  });
}

/** Loads a training checkpoint: the model, trainer state, training options and tokenizer. */
export async function loadTrainingCheckpoint(dir: string): Promise<TrainingCheckpoint> {
  const statePath = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(statePath)) {
    throw new CheckpointError(`${dir} is not a training checkpoint (no ${TRAINER_STATE_FILE})`);
  }
  const state = parseTrainerState(readFileSync(statePath, 'utf8'), statePath);
  const trainingPath = join(dir, TRAINING_CONFIG_FILE);
  const training = existsSync(trainingPath) ? JSON.parse(readFileSync(trainingPath, 'utf8')) : null;
  const tokenizerPath = join(dir, TOKENIZER_FILE);
  const tokenizerJson = existsSync(tokenizerPath) ? readFileSync(tokenizerPath, 'utf8') : null;
  const model = await loadCheckpoint(dir);
  return { model, state, training, tokenizerJson, dir };
}

/** The carried memory saved with a checkpoint, or null when it has none (caller disposes). */
export function restoreMemory(dir: string): SequenceState | null {
  const path = join(dir, MEMORY_FILE);
  return existsSync(path) ? readMemory(path) : null;
}

/** Restores the optimizer's moments from a checkpoint directory (after the optimizer is built). */
export function restoreOptimizer(dir: string, optimizer: AdamW, step: number): void {
  optimizer.loadState(readOptimizerState(join(dir, OPTIMIZER_FILE), step));
}

const CHECKPOINT_NAME = /^step-(\d+)$/;

/** Directory name of the checkpoint at `step`: `step-00000042`. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

/** Complete checkpoints (with trainer_state.json) under `checkpointsDir`, oldest first. */
export function listCheckpoints(checkpointsDir: string): { dir: string; step: number }[] {
  if (!existsSync(checkpointsDir)) return [];
  return readdirSync(checkpointsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && CHECKPOINT_NAME.test(entry.name))
    .map((entry) => ({
      dir: join(checkpointsDir, entry.name),
      step: Number(CHECKPOINT_NAME.exec(entry.name)![1]),
    }))
    .filter((checkpoint) => existsSync(join(checkpoint.dir, TRAINER_STATE_FILE)))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint under `checkpointsDir`, if any. */
export function latestCheckpoint(checkpointsDir: string): string | undefined {
  return listCheckpoints(checkpointsDir).at(-1)?.dir;
}

/**
 * Deletes all but the newest `keep` checkpoints, and staging leftovers of processes that no
 * longer exist (never another live process's files, nor this process's own).
 */
export function pruneCheckpoints(checkpointsDir: string, keep: number): string[] {
  if (!existsSync(checkpointsDir)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(checkpointsDir, { withFileTypes: true })) {
    // The model package's temporaries: `.step-N.tmp-<pid>-...` and `.step-N.old-<pid>-...`.
    // Only those of processes that are gone: a live process may be writing its own right now.
    const leftover = /^\.step-\d+\.(tmp|old)-(\d+)-/.exec(entry.name);
    if (entry.isDirectory() && leftover && !isProcessAlive(Number(leftover[2]))) {
      rmSync(join(checkpointsDir, entry.name), { recursive: true, force: true });
    }
  }
  const all = listCheckpoints(checkpointsDir);
  for (const checkpoint of all.slice(0, Math.max(0, all.length - Math.max(1, keep)))) {
    rmSync(checkpoint.dir, { recursive: true, force: true });
    removed.push(checkpoint.dir);
  }
  return removed;
}

/**
 * Removes optimizer.safetensors from every checkpoint under `checkpointsDir` but `newest`
 * (`optimizerInLatestOnly`); returns the files removed.
 */
export function dropOlderOptimizerStates(checkpointsDir: string, newest: string): string[] {
  const removed: string[] = [];
  for (const checkpoint of listCheckpoints(checkpointsDir)) {
    const path = join(checkpoint.dir, OPTIMIZER_FILE);
    if (checkpoint.dir === newest || !existsSync(path)) continue;
    rmSync(path, { force: true });
    removed.push(path);
  }
  return removed;
}
