// softmax(scores + mask) over the last axis with a gradient that keeps only the softmax output.
// Through plain ops the tape would also keep the masked scores (tfjs's Add saves both inputs for
// its gradient): a second [B, H, T, P+T] tensor per layer and chunk, the largest activations of
// a training window. The mask is a constant (no gradient).
//
// Shape legend: B batch, H heads, T queries, P+T keys.
import * as tf from '@tensorflow/tfjs-core';

/** softmax(scores + mask) along the last axis; scores [B, H, T, P+T], mask [T, P+T] (additive). */
export function maskedSoftmax(scores: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor4D {
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor4D;
    const save = args[1] as tf.GradSaveFunc;
    const weights = tf.softmax(tf.add(input, mask)) as tf.Tensor4D; // [B, H, T, P+T]
    save([weights]);
    return {
      value: weights,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // d softmax: y * dy - sum(y * dy) * y, as tfjs's own Softmax gradient
        const y = saved[0] as tf.Tensor4D;
        const dyTimesY = tf.mul(dy, y);
        return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, -1, true), y));
      },
    };
  });
  return compute(scores) as tf.Tensor4D;
}
