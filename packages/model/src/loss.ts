// Causal-LM loss (docs/architecture.md §1.1): mean cross-entropy of logits at positions 0..S-2
// against labels 1..S-1, ignoring label -100 — torch.nn.functional.cross_entropy(ignore_index=-100)
// semantics (all labels ignored -> NaN, as in PyTorch).
//
// No one-hot: the forward pass gathers each row's target logit from the flat logits; the custom
// gradient is w * softmax with w * (p_target - 1) written at the target (w = 1 / count for
// counted rows, 0 for ignored ones).
// Shape legend: B batch, S sequence, V vocab, N = B*S rows.
import { IGNORE_INDEX } from '@baka/common';
import * as tf from '@tensorflow/tfjs-core';

export { IGNORE_INDEX };

/**
 * Mean cross-entropy of `logits` [N, V] against `targets` [N] (int32), ignoring -100.
 * Returns the loss and the number of counted targets.
 */
export function crossEntropy(
  logits: tf.Tensor2D,
  targets: tf.Tensor1D,
): { loss: tf.Scalar; count: tf.Scalar } {
  const [rows, vocab] = logits.shape;
  const prepared = tf.tidy(() => {
    const counted = tf.notEqual(targets, IGNORE_INDEX); // [N] bool
    const count = tf.sum(tf.cast(counted, 'float32')) as tf.Scalar; // []
    const integerTargets = tf.cast(targets, 'int32'); // [N]
    const safeTargets = tf.where(counted, integerTargets, tf.zerosLike(integerTargets)); // [N]
    const rowWeights = tf.div(tf.cast(counted, 'float32'), count); // [N]
    const rowIndex = tf.range(0, rows, 1, 'int32'); // [N]
    const flatIndex = tf.add(tf.mul(rowIndex, tf.scalar(vocab, 'int32')), safeTargets); // [N] into [N*V]
    const scatterIndex = tf.stack([rowIndex, safeTargets], 1); // [N, 2]
    return { count, rowWeights, flatIndex, scatterIndex };
  });
  const { count, rowWeights, flatIndex, scatterIndex } = prepared;
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    // One native softmax pass gives both the gradient's probabilities and the log-sum-exp: the
    // row maximum's probability is 1 / sum(exp(x - max)), so lse = max(x) - log(max(p)).
    const probabilities = tf.softmax(x); // [N, V]
    const logSumExp = tf.sub(tf.max(x, 1), tf.log(tf.max(probabilities, 1))); // [N]
    const picked = tf.gather(tf.reshape(x, [rows * vocab]), flatIndex); // [N]
    const pickedProbability = tf.gather(tf.reshape(probabilities, [rows * vocab]), flatIndex); // [N]
    const value = tf.sum(tf.mul(tf.sub(logSumExp, picked), rowWeights)); // []
    save([probabilities, pickedProbability, rowWeights, scatterIndex]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedProbabilities, savedPicked, savedWeights, savedIndex] = saved as [
          tf.Tensor2D,
          tf.Tensor1D,
          tf.Tensor1D,
          tf.Tensor2D,
        ];
        // d loss / d x = w * (softmax - onehot(target)): scale the probabilities, then overwrite
        // each row's target entry with w * (p_target - 1) (no one-hot, no dense scatter).
        const scale = tf.mul(savedWeights, dy); // [N]
        const spread = tf.mul(savedProbabilities, tf.reshape(scale, [rows, 1])); // [N, V]
        const atTargets = tf.mul(tf.sub(savedPicked, 1), scale); // [N]
        return tf.tensorScatterUpdate(spread, savedIndex, atTargets) as tf.Tensor;
      },
    };
  });
  const loss = compute(logits) as tf.Scalar;
  tf.dispose([rowWeights, flatIndex, scatterIndex]);
  return { loss, count };
}

/** Labels shifted left by one with -100 appended: target of position t is labels[t + 1]. */
export function shiftLabels(labels: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [batch, length] = labels.shape;
    const next = tf.slice(tf.cast(labels, 'int32'), [0, 1], [batch, length - 1]); // [B, S-1]
    return tf.concat([next, tf.fill([batch, 1], IGNORE_INDEX, 'int32')], 1) as tf.Tensor2D; // [B, S]
  });
}

/** Upstream's loss: logits [B, S, V] at 0..S-2 against labels [B, S] at 1..S-1, ignoring -100. */
export function causalLmLoss(logits: tf.Tensor3D, labels: tf.Tensor2D): tf.Scalar {
  return causalLmLossWithCount(logits, labels).loss;
}

/** causalLmLoss plus the number of counted targets (for token-weighted averages). */
export function causalLmLossWithCount(
  logits: tf.Tensor3D,
  labels: tf.Tensor2D,
): { loss: tf.Scalar; count: tf.Scalar } {
  const [batch, length, vocab] = logits.shape;
  if (labels.shape[0] !== batch || labels.shape[1] !== length) {
    throw new Error(
      `causalLmLoss: labels [${labels.shape.join(', ')}] do not match logits [${logits.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => {
    const targets = tf.reshape(shiftLabels(labels), [batch * length]) as tf.Tensor1D; // [B*S]
    return crossEntropy(tf.reshape(logits, [batch * length, vocab]), targets); // rows [B*S, V]
  });
}
