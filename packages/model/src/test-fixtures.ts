// Test-only helpers: paths and loaders for the committed PyTorch fixtures (see __fixtures__/README.md).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { readCheckpointConfig, readCheckpointTensors } from './checkpoint';
import type { BakaConfig } from './config';
import { readSafetensors } from './safetensors';

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
