import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { evaluateLoss } from './evaluate-loss';
import { COMBOS, fixtureTensors, loadTinyTorch, parityInputs } from './test-fixtures';

describe('evaluateLoss (segmented, memory handed between segments)', () => {
  it.each(COMBOS)('gives the PyTorch loss for $name with segments of one chunk', (combo) => {
    const model = loadTinyTorch(combo);
    const { inputIds, labels } = parityInputs();
    const expected = fixtureTensors(`parity/${combo.name}.safetensors`).get('loss')!.data[0]!;
    const batch = { ids: inputIds.flat(), labels: labels.flat(), rows: 3, length: 22 };
    evaluateLoss(model, batch, { segmentLength: 8 }); // builds the cached masks and rotary tables
    const before = tf.memory().numTensors;
    const result = evaluateLoss(model, batch, { segmentLength: 8 });
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(result.loss - expected)).toBeLessThan(1e-4);
    expect(result.tokens).toBe(3 * 21 - 9);
    model.dispose();
  });

  it('rejects ids outside the vocabulary', () => {
    const model = loadTinyTorch();
    expect(() => evaluateLoss(model, { ids: [1, 2, 80], rows: 1, length: 3 })).toThrow(
      /token id 80 .* outside the model's vocabulary 0\.\.79/,
    );
    model.dispose();
  });
});
