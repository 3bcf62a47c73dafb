// The attention core softmax(q k^T + mask) v as one op with a hand-written gradient.
//
// Through plain ops the tape keeps the masked scores (tfjs's Add saves both inputs) besides the
// softmax output, and the backward pass of tfjs keeps every intermediate gradient until the whole
// backward pass ends — for attention two more [B, H, T, P+T] tensors per layer and chunk, the
// largest tensors of a training window. Here only q, keys, values and the softmax output are
// saved, and the backward's [B, H, T, P+T] intermediates are freed as soon as dq, dk, dv exist.
//
// Shape legend: B batch, H heads, T queries, S = P+T keys, K dim_head, Kv value head dim.
import * as tf from '@tensorflow/tfjs-core';

/**
 * softmax(q k^T + mask) v: q [B, H, T, K] (already scaled), keys [B, H, S, K], values
 * [B, H, S, Kv], mask [T, S] additive (a constant: no gradient). Returns [B, H, T, Kv].
 */
export function attentionCore(
  q: tf.Tensor4D,
  keys: tf.Tensor4D,
  values: tf.Tensor4D,
  mask: tf.Tensor2D,
): tf.Tensor4D {
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [queries, k, v] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const save = args[3] as tf.GradSaveFunc;
    const weights = tf.softmax(tf.add(tf.matMul(queries, k, false, true), mask)) as tf.Tensor4D; // [B, H, T, S]
    save([queries, k, v, weights]);
    return {
      value: tf.matMul(weights, v) as tf.Tensor4D, // [B, H, T, Kv]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sq, sk, sv, w] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
          const dWeights = tf.matMul(dy as tf.Tensor4D, sv, false, true); // [B, H, T, S]
          // softmax gradient as tfjs's own: y * dy - sum(y * dy) * y
          const product = tf.mul(dWeights, w);
          const dScores = tf.sub(product, tf.mul(tf.sum(product, -1, true), w)); // [B, H, T, S]
          return [
            tf.matMul(dScores, sk), // dq [B, H, T, K]
            tf.matMul(dScores, sq, true, false), // dk [B, H, S, K]
            tf.matMul(w, dy as tf.Tensor4D, true, false), // dv [B, H, S, Kv]
          ];
        }),
    };
  });
  return compute(q, keys, values) as tf.Tensor4D;
}
