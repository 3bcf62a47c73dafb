// attentionCore and elephant carry hand-written gradients (to keep fewer activations); both must
// equal the values and gradients of the plain op chains they replace, and leak nothing.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { attentionCore } from './attention-core';
import { elephant } from './mlp';

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('attentionCore', () => {
  it('equals softmax(q k^T + mask) v in value and in the gradients of q, keys and values', () => {
    const q = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 1) as tf.Tensor4D; // [B, H, T, K]
    const keys = tf.randomNormal([2, 3, 6, 5], 0, 1, 'float32', 2) as tf.Tensor4D; // [B, H, S, K]
    const values = tf.randomNormal([2, 3, 6, 7], 0, 1, 'float32', 3) as tf.Tensor4D; // [B, H, S, Kv]
    const mask = tf.tensor2d(
      Array.from({ length: 4 }, (_, i) =>
        Array.from({ length: 6 }, (_, j) => (j <= 2 + i ? 0 : -1e9)),
      ),
    ); // [T, S]: 2 memory positions, then causal
    const upstream = tf.randomNormal([2, 3, 4, 7], 0, 1, 'float32', 4);
    const plain = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(
        tf.mul(tf.matMul(tf.softmax(tf.add(tf.matMul(a, b, false, true), mask)), c), upstream),
      ),
    );
    const ours = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(
        tf.mul(attentionCore(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask), upstream),
      ),
    );
    const expected = plain([q, keys, values]);
    const actual = ours([q, keys, values]);
    expect(Math.abs(actual.value.dataSync()[0]! - expected.value.dataSync()[0]!)).toBeLessThan(
      1e-5,
    );
    actual.grads.forEach((grad, index) => {
      expect(maxAbs(grad, expected.grads[index]!)).toBeLessThan(1e-5);
    });
    const before = tf.memory().numTensors;
    const again = ours([q, keys, values]);
    tf.dispose([again.value, ...again.grads]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([
      q,
      keys,
      values,
      mask,
      upstream,
      expected.value,
      ...expected.grads,
      actual.value,
      ...actual.grads,
    ]);
  });
});

describe('elephant', () => {
  it('has the gradient of 1 / (1 + x^8) through plain ops, also far from 0', () => {
    const x = tf.tensor1d([-40, -3, -1.2, -1, -0.5, 0, 0.3, 0.9, 1, 1.1, 2, 7, 300]);
    const plain = tf.grad((input: tf.Tensor) => tf.sum(tf.reciprocal(tf.add(tf.pow(input, 8), 1))));
    const ours = tf.grad((input: tf.Tensor) => tf.sum(elephant(input)));
    const expected = plain(x);
    const actual = ours(x);
    expect(maxAbs(actual, expected)).toBeLessThan(1e-6);
    expect(actual.dataSync().every(Number.isFinite)).toBe(true);
    const values = elephant(x);
    const reference = tf.reciprocal(tf.add(tf.pow(x, 8), 1));
    expect(maxAbs(values, reference)).toBeLessThan(1e-7);
    tf.dispose([x, expected, actual, values, reference]);
  });
});
