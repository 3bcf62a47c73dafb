// Gated MLP with the elephant activation (docs/architecture.md §1.1):
//   mlp(h) = down( up(h) * elephant(gate(h)) ),  elephant(x) = 1 / (1 + |x / a|^d), d = 8, a = 1.
// gate and up share one matmul with their weights stacked ([2F, D], PyTorch layout).
// Shape legend: N rows (batch x time), D dim_model, F dim_ff.
import * as tf from '@tensorflow/tfjs-core';

/**
 * 1 / (1 + x^8): the elephant activation with d = 8, a = 1 (x^8 = |x|^8 as three squarings).
 * Its gradient -8 x^7 f(x)^2 is written out, so training keeps only x and f(x) per call instead
 * of every intermediate power (five [N, F] tensors per layer and chunk through plain ops).
 */
export function elephant<T extends tf.Tensor>(x: T): T {
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const x2 = tf.square(input);
    const x8 = tf.square(tf.square(x2));
    const value = tf.reciprocal(tf.add(x8, 1));
    save([input, value]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, f] = saved as [tf.Tensor, tf.Tensor];
          const squared = tf.square(xs);
          // x^7 f^2 multiplied in an order that stays finite while x^4 does: x f ~ x^-7 first
          const x7f2 = tf.mul(tf.mul(tf.mul(tf.mul(xs, f), squared), tf.square(squared)), f);
          return tf.mul(dy, tf.mul(x7f2, -8));
        }),
    };
  });
  return compute(x) as T;
}

/** h [N, D]; gateUp [2F, D] = [fc_gate.weight ; fc_up.weight]; down [D, F]. Returns [N, D]. */
export function gatedMlp(h: tf.Tensor2D, gateUp: tf.Tensor2D, down: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const dimFf = down.shape[1];
    const projected = tf.matMul(h, gateUp, false, true); // [N, 2F]
    const [gate, up] = tf.split(projected, [dimFf, dimFf], 1) as [tf.Tensor2D, tf.Tensor2D]; // [N, F] each
    return tf.matMul(tf.mul(up, elephant(gate)), down, false, true); // [N, D]
  });
}
