// projectedCrossEntropy (output projection + loss in row blocks) equals the plain path — logits
// = h W^T, then crossEntropy — in value and in both gradients, for any block size, with ignored
// rows and with every row ignored (NaN, as PyTorch); it leaks no tensors; and BakaCausalLM.loss,
// which uses it, equals causalLmLoss over forward()'s logits.
//
// Shape legend: N rows, D dim_model, V vocab.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { makeConfig } from './config';
import {
  blockRows,
  logSumExpRows,
  projectedCrossEntropy,
  UNSHIFTED_LOGIT_BOUND,
} from './head-loss';
import { causalLmLoss, crossEntropy } from './loss';

const ROWS = 11;
const DIM = 6;
const VOCAB = 17;

function inputs(seed: number) {
  const hidden = tf.randomNormal([ROWS, DIM], 0, 1, 'float32', seed) as tf.Tensor2D; // [N, D]
  const weight = tf.randomNormal([VOCAB, DIM], 0, 1, 'float32', seed + 1) as tf.Tensor2D; // [V, D]
  const targets = tf.tensor1d(
    Array.from({ length: ROWS }, (_, row) => (row % 4 === 3 ? -100 : (row * 5 + seed) % VOCAB)),
    'int32',
  ); // [N], every 4th row ignored
  return { hidden, weight, targets };
}

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

/** Value and gradients (hidden, weight) of a loss function of (hidden, weight). */
function valueAndGrads(
  loss: (h: tf.Tensor2D, w: tf.Tensor2D) => tf.Scalar,
  h: tf.Tensor2D,
  w: tf.Tensor2D,
) {
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
    loss(a as tf.Tensor2D, b as tf.Tensor2D),
  )([h, w]);
  return { value, grads: grads as [tf.Tensor2D, tf.Tensor2D] };
}

describe('projectedCrossEntropy', () => {
  it('equals logits + crossEntropy in value and gradients, for every block size', () => {
    const { hidden, weight, targets } = inputs(3);
    const plain = valueAndGrads(
      (h, w) => crossEntropy(tf.matMul(h, w, false, true), targets).loss,
      hidden,
      weight,
    );
    for (const rowsPerBlock of [1, 2, 4, 5, ROWS, 64]) {
      const blocked = valueAndGrads(
        (h, w) => projectedCrossEntropy(h, w, targets, rowsPerBlock),
        hidden,
        weight,
      );
      expect(Math.abs(blocked.value.dataSync()[0]! - plain.value.dataSync()[0]!)).toBeLessThan(
        1e-5,
      );
      expect(maxAbs(blocked.grads[0], plain.grads[0])).toBeLessThan(1e-6);
      expect(maxAbs(blocked.grads[1], plain.grads[1])).toBeLessThan(1e-6);
      tf.dispose([blocked.value, ...blocked.grads]);
    }
    tf.dispose([plain.value, ...plain.grads, hidden, weight, targets]);
  });

  it('without a gradient (evaluation) equals logits + crossEntropy, for every block size', () => {
    const { hidden, weight, targets } = inputs(13);
    const plain = crossEntropy(tf.matMul(hidden, weight, false, true), targets).loss;
    const expected = plain.dataSync()[0]!;
    for (const rowsPerBlock of [1, 2, 4, 5, ROWS, 64]) {
      const blocked = projectedCrossEntropy(hidden, weight, targets, rowsPerBlock);
      expect(Math.abs(blocked.dataSync()[0]! - expected)).toBeLessThan(1e-5);
      blocked.dispose();
    }
    tf.dispose([plain, hidden, weight, targets]);
  });

  it('scales its gradients by the incoming gradient', () => {
    const { hidden, weight, targets } = inputs(5);
    const once = valueAndGrads((h, w) => projectedCrossEntropy(h, w, targets, 3), hidden, weight);
    const thrice = valueAndGrads(
      (h, w) => tf.mul(projectedCrossEntropy(h, w, targets, 3), 3) as tf.Scalar,
      hidden,
      weight,
    );
    expect(maxAbs(thrice.grads[0], tf.mul(once.grads[0], 3))).toBeLessThan(1e-6);
    expect(maxAbs(thrice.grads[1], tf.mul(once.grads[1], 3))).toBeLessThan(1e-6);
    tf.dispose([once.value, ...once.grads, thrice.value, ...thrice.grads, hidden, weight, targets]);
  });

  it('stays exact when the target probability underflows (losses in the hundreds)', () => {
    const { hidden, weight, targets } = inputs(11);
    const sharp = tf.mul(hidden, 60) as tf.Tensor2D; // logits spread over hundreds
    const plain = crossEntropy(tf.matMul(sharp, weight, false, true), targets).loss;
    const blocked = projectedCrossEntropy(sharp, weight, targets, 4);
    const expected = plain.dataSync()[0]!;
    expect(expected).toBeGreaterThan(100);
    expect(Math.abs(blocked.dataSync()[0]! - expected)).toBeLessThan(1e-5 * expected);
    tf.dispose([sharp, plain, blocked, hidden, weight, targets]);
  });

  it('logSumExpRows skips the max shift only inside the bound, and equals the shifted form', () => {
    const shiftedForm = (x: tf.Tensor2D) =>
      tf.tidy(() => {
        const rowMax = tf.max(x, 1, true); // [R, 1]
        return tf.add(tf.reshape(rowMax, [-1]), tf.log(tf.sum(tf.exp(tf.sub(x, rowMax)), 1)));
      });
    const base = tf.randomNormal([5, VOCAB], 0, 3, 'float32', 21) as tf.Tensor2D; // [R, V]
    // row maxima near 0, just inside the bound, and far outside it on either side
    for (const offset of [0, UNSHIFTED_LOGIT_BOUND - 12, 200, -200]) {
      const x = tf.add(base, offset) as tf.Tensor2D;
      const got = logSumExpRows(x);
      const want = shiftedForm(x);
      expect(Number.isFinite(got.dataSync()[0]!)).toBe(true);
      expect(maxAbs(got, want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(offset)));
      tf.dispose([x, got, want]);
    }
    // negative control: without the shift, rows outside the bound overflow / underflow
    const outside = tf.add(base, 200) as tf.Tensor2D;
    const unshifted = tf.log(tf.sum(tf.exp(outside), 1));
    expect(unshifted.dataSync()[0]).toBe(Number.POSITIVE_INFINITY);
    const below = tf.sub(base, 200) as tf.Tensor2D;
    const unshiftedBelow = tf.log(tf.sum(tf.exp(below), 1));
    expect(unshiftedBelow.dataSync()[0]).toBe(Number.NEGATIVE_INFINITY);
    tf.dispose([base, outside, unshifted, below, unshiftedBelow]);
  });

  it('gives NaN when every target is ignored, as PyTorch', () => {
    const { hidden, weight } = inputs(7);
    const ignored = tf.fill([ROWS], -100, 'int32') as tf.Tensor1D;
    const loss = projectedCrossEntropy(hidden, weight, ignored, 4);
    expect(Number.isNaN(loss.dataSync()[0])).toBe(true);
    tf.dispose([loss, hidden, weight, ignored]);
  });

  it('keeps blocks under 32 MiB for the 20B vocabulary', () => {
    expect(blockRows(50277) * 50277 * 4).toBeLessThan(32 * 1024 * 1024);
    expect(blockRows(10)).toBeGreaterThan(1000);
  });

  it('leaks no tensors, with and without a gradient', () => {
    const { hidden, weight, targets } = inputs(9);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      const loss = projectedCrossEntropy(hidden, weight, targets, 4);
      loss.dispose();
      const { value, grads } = valueAndGrads(
        (h, w) => projectedCrossEntropy(h, w, targets, 4),
        hidden,
        weight,
      );
      tf.dispose([value, ...grads]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([hidden, weight, targets]);
  });
});

describe('BakaCausalLM.loss', () => {
  it('equals causalLmLoss over the logits of forward(), gradients included', () => {
    const config = makeConfig({
      dim_model: 8,
      dim_ff: 16,
      n_layers: 2,
      n_heads: 2,
      n_vocab: 23,
      n_ctx: 4,
    });
    const model = BakaCausalLM.create(config, { seed: 4 });
    const ids = tf.tensor2d(
      Array.from({ length: 2 }, (_, row) =>
        Array.from({ length: 10 }, (_, t) => (row * 7 + t * 3) % 23),
      ),
      [2, 10],
      'int32',
    ); // [B, S]
    const labels = tf.tensor2d(
      [
        [...Array.from({ length: 10 }, (_, t) => (t * 3) % 23)],
        [...Array.from({ length: 6 }, (_, t) => (7 + t * 3) % 23), -100, -100, -100, -100],
      ],
      [2, 10],
      'int32',
    ); // [B, S], row 1 padded
    const variables = [...model.trainableParameters().values()];
    const viaLoss = tf.variableGrads(() => model.loss(ids, labels).loss, variables);
    const viaLogits = tf.variableGrads(
      () => causalLmLoss(model.forward(ids).logits, labels),
      variables,
    );
    expect(Math.abs(viaLoss.value.dataSync()[0]! - viaLogits.value.dataSync()[0]!)).toBeLessThan(
      1e-5,
    );
    for (const name of Object.keys(viaLogits.grads)) {
      expect(maxAbs(viaLoss.grads[name]!, viaLogits.grads[name]!), name).toBeLessThan(1e-5);
    }
    tf.dispose([
      viaLoss.value,
      ...Object.values(viaLoss.grads),
      viaLogits.value,
      ...Object.values(viaLogits.grads),
    ]);
    tf.dispose([ids, labels]);
    model.dispose();
  });
});
