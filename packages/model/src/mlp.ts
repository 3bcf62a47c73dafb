// Gated MLP with the elephant activation (DESIGN §1.1):
//   mlp(h) = down( up(h) * elephant(gate(h)) ),  elephant(x) = 1 / (1 + |x / a|^d), d = 8, a = 1.
// gate and up share one matmul with their weights stacked ([2F, D], PyTorch layout).
// Shape legend: N rows (batch x time), D dim_model, F dim_ff.
import * as tf from '@tensorflow/tfjs-core';

/** 1 / (1 + x^8): the elephant activation with d = 8, a = 1 (x^8 = |x|^8 as three squarings). */
export function elephant<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    const x2 = tf.square(x);
    const x8 = tf.square(tf.square(x2));
    return tf.reciprocal(tf.add(x8, 1)) as T;
  });
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
