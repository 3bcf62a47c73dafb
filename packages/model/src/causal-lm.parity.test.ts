// Parity with the PyTorch reference (tools/reference): logits, loss and every parameter
// gradient for each option combination, on the tiny fixture model.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { causalLmLossWithCount } from './loss';
import type { SequenceState } from './sequence-state';
import {
  COMBOS,
  expectGradientParity,
  fixtureTensors,
  int2d,
  loadTinyTorch,
  maxAbsDifference,
  parityInputs,
} from './test-fixtures';

const inputs = parityInputs();

describe.each(COMBOS)('parity with PyTorch: $name', (combo) => {
  const expected = fixtureTensors(`parity/${combo.name}.safetensors`);

  it('logits and loss match to 1e-4', () => {
    const model = loadTinyTorch(combo);
    const ids = int2d(inputs.inputIds);
    const labels = int2d(inputs.labels);
    const { logits, memory } = model.forward(ids);
    const { loss } = model.loss(ids, labels);
    const { count: tokens } = causalLmLossWithCount(logits, labels);
    const logitError = maxAbsDifference(logits.dataSync(), expected.get('logits')!.data);
    const lossError = Math.abs(loss.dataSync()[0]! - expected.get('loss')!.data[0]!);
    console.log(
      `${combo.name}: logits max-abs error ${logitError.toExponential(2)}, loss error ${lossError.toExponential(2)}`,
    );
    expect(logits.shape).toEqual(expected.get('logits')!.shape);
    expect(logitError).toBeLessThan(1e-4);
    expect(lossError).toBeLessThan(1e-4);
    // 3 rows x 21 predicted positions, minus row 2's padded targets (positions 13..21 -> 9)
    expect(tokens.dataSync()[0]).toBe(3 * 21 - 9);
    expect(memory === null).toBe(combo.memory === 'none');
    tf.dispose([ids, labels, logits, loss, tokens]);
    model.dispose();
  });

  it('every parameter gradient matches to 1e-4 (relative to the largest entry)', () => {
    const model = loadTinyTorch(combo);
    const worst = expectGradientParity(model, expected);
    console.log(`${combo.name}: gradients worst relative error ${worst.toExponential(2)}`);
    model.dispose();
  });
});

describe.each(['xl-previous-layer-absolute', 'xl-same-layer-reset'] as const)(
  'memory carried between calls: %s',
  (name) => {
    it('a second call fed the first call’s memory matches PyTorch', () => {
      const combo = COMBOS.find((candidate) => candidate.name === name)!;
      const expected = fixtureTensors(`parity/carry-${name}.safetensors`);
      const model = loadTinyTorch(combo);
      const split = 11;
      const first = int2d(inputs.inputIds.map((row) => row.slice(0, split)));
      const second = int2d(inputs.inputIds.map((row) => row.slice(split)));
      const secondLabels = int2d(inputs.labels.map((row) => row.slice(split)));
      const result = tf.tidy(() => {
        const { memory } = model.forward(first);
        const kept = (memory as SequenceState).detach();
        const out = model.loss(second, secondLabels, { memory: kept });
        const { logits } = model.forward(second, { memory: kept });
        kept.dispose();
        return { logits, loss: out.loss };
      });
      expect(maxAbsDifference(result.logits.dataSync(), expected.get('logits')!.data)).toBeLessThan(
        1e-4,
      );
      expect(Math.abs(result.loss.dataSync()[0]! - expected.get('loss')!.data[0]!)).toBeLessThan(
        1e-4,
      );
      tf.dispose([first, second, secondLabels, result.logits, result.loss]);
      model.dispose();
    });
  },
);
