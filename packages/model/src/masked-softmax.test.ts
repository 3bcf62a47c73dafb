// maskedSoftmax and elephant carry hand-written gradients (to keep fewer activations); both must
// equal the gradients of the plain op chains they replace.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { maskedSoftmax } from './masked-softmax';
import { elephant } from './mlp';

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

describe('maskedSoftmax', () => {
  it('equals softmax(scores + mask) in value and gradient', () => {
    const scores = tf.randomNormal([2, 3, 4, 6], 0, 2, 'float32', 1) as tf.Tensor4D; // [B, H, T, P+T]
    const mask = tf.tensor2d(
      Array.from({ length: 4 }, (_, i) =>
        Array.from({ length: 6 }, (_, j) => (j <= 2 + i ? 0 : -1e9)),
      ),
    ); // [T, P+T], causal after 2 memory positions
    const upstream = tf.randomNormal([2, 3, 4, 6], 0, 1, 'float32', 2);
    const plain = tf.valueAndGrad((s: tf.Tensor) =>
      tf.sum(tf.mul(tf.softmax(tf.add(s, mask)), upstream)),
    );
    const ours = tf.valueAndGrad((s: tf.Tensor) =>
      tf.sum(tf.mul(maskedSoftmax(s as tf.Tensor4D, mask), upstream)),
    );
    const a = plain(scores);
    const b = ours(scores);
    expect(Math.abs(a.value.dataSync()[0]! - b.value.dataSync()[0]!)).toBeLessThan(1e-5);
    expect(maxAbs(a.grad, b.grad)).toBeLessThan(1e-6);
    const before = tf.memory().numTensors;
    const warm = ours(scores);
    tf.dispose([warm.value, warm.grad]);
    const again = ours(scores);
    tf.dispose([again.value, again.grad]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([scores, mask, upstream, a.value, a.grad, b.value, b.grad]);
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
    const values = elephant(x);
    const reference = tf.reciprocal(tf.add(tf.pow(x, 8), 1));
    expect(maxAbs(values, reference)).toBeLessThan(1e-7);
    tf.dispose([values, reference]);
    expect(actual.dataSync().every(Number.isFinite)).toBe(true);
    tf.dispose([x, expected, actual]);
  });
});
