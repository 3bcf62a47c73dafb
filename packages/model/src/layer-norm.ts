// LayerNorm over the last axis (torch.nn.LayerNorm, biased variance, eps 1e-5).
// Shape legend: N rows (batch x time), D dim_model.
import * as tf from '@tensorflow/tfjs-core';

export const LAYER_NORM_EPSILON = 1e-5;

/** (x - mean) / sqrt(var + eps) * weight + bias; x [N, D], weight/bias [D]. */
export function layerNorm(x: tf.Tensor2D, weight: tf.Tensor1D, bias: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true); // [N, 1]
    const centered = tf.sub(x, mean); // [N, D]
    const variance = tf.mean(tf.square(centered), -1, true); // [N, 1]
    const normalised = tf.mul(centered, tf.rsqrt(tf.add(variance, LAYER_NORM_EPSILON))); // [N, D]
    return tf.add(tf.mul(normalised, weight), bias) as tf.Tensor2D;
  });
}
