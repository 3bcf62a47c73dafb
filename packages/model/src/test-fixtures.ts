// Test-only helpers: paths and loaders for the committed PyTorch fixtures (see __fixtures__/README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import {
  loadCheckpoint,
  readCheckpointConfig,
  readCheckpointTensors,
  saveCheckpoint,
} from './checkpoint';
import type { BakaConfig } from './config';
import { IncrementalDecoder } from './generation';
import { parameterSpecs } from './parameters';
import { readSafetensors } from './safetensors';
import { argmax } from './sampling';
import type { SequenceState } from './sequence-state';

export const FIXTURES = fileURLToPath(new URL('../__fixtures__/', import.meta.url));

export const COMBOS = [
  {
    name: 'xl-previous-layer-reset',
    memory: 'xl',
    memory_source: 'previous-layer',
    position_policy: 'reset',
  },
  {
    name: 'xl-previous-layer-absolute',
    memory: 'xl',
    memory_source: 'previous-layer',
    position_policy: 'absolute',
  },
  {
    name: 'xl-same-layer-reset',
    memory: 'xl',
    memory_source: 'same-layer',
    position_policy: 'reset',
  },
  {
    name: 'xl-same-layer-absolute',
    memory: 'xl',
    memory_source: 'same-layer',
    position_policy: 'absolute',
  },
  { name: 'none-reset', memory: 'none', memory_source: 'previous-layer', position_policy: 'reset' },
  {
    name: 'none-absolute',
    memory: 'none',
    memory_source: 'previous-layer',
    position_policy: 'absolute',
  },
] as const satisfies readonly (Pick<BakaConfig, 'memory' | 'memory_source' | 'position_policy'> & {
  name: string;
})[];

/** The tiny PyTorch-written model, with option fields overridden. */
export function loadTinyTorch(options: Partial<BakaConfig> = {}): BakaCausalLM {
  const dir = `${FIXTURES}tiny-torch`;
  const config = { ...readCheckpointConfig(dir), ...options };
  return BakaCausalLM.fromTensors(config, readCheckpointTensors(dir), dir);
}

export interface ParityInputs {
  inputIds: number[][];
  labels: number[][];
}

export function parityInputs(): ParityInputs {
  const json = JSON.parse(readFileSync(`${FIXTURES}parity/inputs.json`, 'utf8'));
  return { inputIds: json.input_ids, labels: json.labels };
}

/** Reads a fixture safetensors file as float32 arrays by name. */
export function fixtureTensors(
  relativePath: string,
): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, tensor] of readSafetensors(`${FIXTURES}${relativePath}`)) {
    out.set(name, { shape: tensor.shape, data: tensor.data as Float32Array });
  }
  return out;
}

export function maxAbsDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length)
    throw new Error(`length ${actual.length} vs ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const difference = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(difference <= worst))
      worst = Number.isNaN(difference) ? Number.POSITIVE_INFINITY : difference;
  }
  return worst;
}

export function maxAbs(values: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] as number));
  return worst;
}

export function int2d(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0]?.length ?? 0], 'int32');
}

/**
 * Asserts that every trainable parameter's gradient of `model.loss` on the parity inputs matches
 * the fixture's `grad.<name>` within 1e-4 relative to the largest entry, and that the fixture has
 * exactly one gradient per trainable parameter. Returns the worst relative error.
 */
export function expectGradientParity(
  model: BakaCausalLM,
  expected: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
): number {
  const inputs = parityInputs();
  const ids = int2d(inputs.inputIds);
  const labels = int2d(inputs.labels);
  const trainable = model.trainableParameters();
  const { value, grads } = tf.variableGrads(
    () => model.loss(ids, labels).loss,
    [...trainable.values()],
  );
  const names = [...expected.keys()].filter((name) => name.startsWith('grad.'));
  expect(names.length).toBe(trainable.size);
  let worst = 0;
  for (const [name, variable] of trainable) {
    const reference = expected.get(`grad.${name}`);
    expect(reference, name).toBeDefined();
    const gradient = grads[variable.name];
    expect(gradient, name).toBeDefined();
    const relative =
      maxAbsDifference(gradient!.dataSync(), reference!.data) /
      Math.max(maxAbs(reference!.data), 1e-12);
    worst = Math.max(worst, relative);
    expect(relative, name).toBeLessThan(1e-4);
  }
  tf.dispose([ids, labels, value, ...Object.values(grads)]);
  return worst;
}

type FixtureTensors = ReadonlyMap<string, { shape: number[]; data: Float32Array }>;

/** A fixture's split point: carry.safetensors' second call starts at this token. */
export const CARRY_SPLIT = 11;

/**
 * Flattened logits and the loss of one call of `model` over `rows` (default: the parity inputs)
 * with `labels`, continuing `memory` (null: a fresh sequence).
 */
export function logitsAndLoss(
  model: BakaCausalLM,
  rows: number[][] = parityInputs().inputIds,
  labels: number[][] = parityInputs().labels,
  memory: SequenceState | null = null,
): { logits: Float32Array; loss: number } {
  const ids = int2d(rows);
  const targets = int2d(labels);
  const { logits } = model.forward(ids, { memory });
  const { loss } = model.loss(ids, targets, { memory });
  const result = { logits: logits.dataSync() as Float32Array, loss: loss.dataSync()[0] as number };
  tf.dispose([ids, targets, logits, loss]);
  return result;
}

/**
 * Asserts that logits and loss on the parity inputs match a fixture's `expected.safetensors`
 * within 1e-4 and logs the errors as `label`.
 */
export function expectLogitParity(
  model: BakaCausalLM,
  expected: FixtureTensors,
  label: string,
): void {
  const { logits, loss } = logitsAndLoss(model);
  const logitError = maxAbsDifference(logits, expected.get('logits')!.data);
  const lossError = Math.abs(loss - expected.get('loss')!.data[0]!);
  console.log(
    `${label}: logits max-abs error ${logitError.toExponential(2)}, loss error ${lossError.toExponential(2)}`,
  );
  expect(logitError).toBeLessThan(1e-4);
  expect(lossError).toBeLessThan(1e-4);
}

/** The detached state after one call over `rows` (the call's other tensors freed). */
export function stateAfterCall(model: BakaCausalLM, rows: number[][]): SequenceState {
  const ids = int2d(rows);
  let state: SequenceState | null = null;
  tf.tidy(() => {
    state = (model.forward(ids).memory as SequenceState).detach();
  });
  ids.dispose();
  return state as unknown as SequenceState;
}

/** The detached state after one call over the parity inputs' first `split` tokens. */
export function stateAfterFirstCall(model: BakaCausalLM, split = CARRY_SPLIT): SequenceState {
  return stateAfterCall(
    model,
    parityInputs().inputIds.map((row) => row.slice(0, split)),
  );
}

/**
 * Asserts that a second call over the parity inputs from token `split`, continuing `memory`,
 * matches a fixture's `carry.safetensors` within 1e-4; returns its logits and loss.
 */
export function expectCarryParity(
  model: BakaCausalLM,
  memory: SequenceState | null,
  carried: FixtureTensors,
  split = CARRY_SPLIT,
): { logits: Float32Array; loss: number } {
  const inputs = parityInputs();
  const second = logitsAndLoss(
    model,
    inputs.inputIds.map((row) => row.slice(split)),
    inputs.labels.map((row) => row.slice(split)),
    memory,
  );
  expect(maxAbsDifference(second.logits, carried.get('logits')!.data)).toBeLessThan(1e-4);
  expect(Math.abs(second.loss - carried.get('loss')!.data[0]!)).toBeLessThan(1e-4);
  return second;
}

/**
 * Asserts that greedy generation of `maxNewTokens` tokens after `prompt` picks, at every step,
 * the argmax of a full forward pass over the sequence so far. Returns the new tokens and the
 * whole sequence.
 */
export function expectGreedyEqualsRecomputation(
  model: BakaCausalLM,
  prompt: readonly number[] = [3, 14, 15, 9, 2, 6],
  maxNewTokens = 9,
): { generated: number[]; sequence: number[] } {
  const generated = model.generate(prompt, { maxNewTokens, temperature: 0 });
  const sequence = [...prompt];
  for (const token of generated) {
    const last = tf.tidy(() =>
      tf.slice(model.forward(int2d([sequence])).logits, [0, sequence.length - 1, 0], [1, 1, -1]),
    );
    expect(token).toBe(argmax(last.dataSync()));
    last.dispose();
    sequence.push(token);
  }
  return { generated, sequence };
}

/**
 * Saves `model` to `dir` and loads it back, asserting every parameter is bit-identical after the
 * round trip. Returns the config.json written and the names of the stored tensors, sorted.
 */
export async function expectCheckpointRoundTrip(
  model: BakaCausalLM,
  dir: string,
): Promise<{ json: Record<string, unknown>; stored: string[] }> {
  await saveCheckpoint(dir, model);
  const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const stored = [...readSafetensors(join(dir, 'model.safetensors')).keys()].sort();
  const loaded = await loadCheckpoint(dir);
  for (const [name, variable] of model.parameters) {
    expect(Array.from(loaded.parameters.get(name)!.dataSync()), name).toEqual(
      Array.from(variable.dataSync()),
    );
  }
  loaded.dispose();
  return { json, stored };
}

/** The parameter names a config gives (what its checkpoint stores), sorted. */
export function parameterNames(config: BakaConfig): string[] {
  return parameterSpecs(config)
    .map((spec) => spec.name)
    .sort();
}

/** Asserts that the reference's own checkpoint in `dir` (torch's state_dict) has exactly our names. */
export function expectReferenceNames(dir: string): void {
  expect([...readSafetensors(join(dir, 'model.safetensors')).keys()].sort()).toEqual(
    parameterNames(readCheckpointConfig(dir)),
  );
}

/**
 * Feeds `ids` to an IncrementalDecoder, a piece of 3 and then one token at a time, and asserts
 * that every step's logits equal the full pass's within 1e-5 and that the decoder leaves no
 * tensors behind (after a warm-up decoder: the model caches masks per key width). Logs the worst
 * difference as `label` when given; returns it with the full pass's logits (flattened [1, S, V]).
 */
export function expectIncrementalEqualsFull(
  model: BakaCausalLM,
  ids: readonly number[],
  label?: string,
): { worst: number; full: Float32Array } {
  const full = tf.tidy(() => model.forward(int2d([[...ids]])).logits).dataSync() as Float32Array;
  const warm = new IncrementalDecoder(model);
  warm.append(ids.slice(0, 3));
  for (const id of ids.slice(3)) warm.append([id]);
  warm.dispose();
  const before = tf.memory().numTensors;
  const decoder = new IncrementalDecoder(model);
  const vocab = model.config.n_vocab;
  let worst = maxAbsDifference(decoder.append(ids.slice(0, 3)), full.slice(2 * vocab, 3 * vocab));
  for (let t = 3; t < ids.length; t++) {
    const step = decoder.append([ids[t]!]);
    worst = Math.max(worst, maxAbsDifference(step, full.slice(t * vocab, (t + 1) * vocab)));
  }
  if (label !== undefined) {
    console.log(
      `${label}: incremental vs full logits max-abs difference ${worst.toExponential(2)}`,
    );
  }
  expect(worst).toBeLessThan(1e-5);
  decoder.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return { worst, full };
}
