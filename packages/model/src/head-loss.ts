// Output projection + causal-LM cross-entropy in row blocks, without the full logits.
//
// The [N, V] logits (V = 50277) dominate memory: the plain path keeps the logits, their softmax
// and, in the backward pass, two more [N, V] tensors alive at once. Here the rows are processed in
// blocks of R rows: logits_b = h_b W^T, p_b = softmax(logits_b), loss terms -log p_b(target);
// only [R, V] tensors exist at a time. When a gradient is being recorded the gradients are
// computed in the same pass (the loss is a scalar, so they are the gradient for dy = 1 and the
// backward pass only scales them by dy):
//   d loss / d logits = w * (p - onehot(target))     (w = 1 / count, 0 for ignored rows)
//   dh_b = w_b * (p_b W - W[target_b]),   dW = sum_b p_b^T (w_b * h_b) - onehot^T (w * h)
// so no [R, V] tensor beyond the logits and their softmax is ever made. Without a gradient
// (evaluation) no softmax is made: -log p(target) = log-sum-exp(logits) - logit(target), the
// log-sum-exp as one exp and one sum pass over the block (logSumExpRows).
//
// Shape legend: N rows (B*S), R rows per block, D dim_model, V vocab.
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX } from './loss';

/** Rows per block so that one [R, V] float32 block stays under 32 MiB (malloc reuses it). */
export function blockRows(vocab: number): number {
  return Math.max(1, Math.floor((7 * 1024 * 1024) / vocab));
}

/**
 * Row maxima whose magnitude stays below this: exp(x) neither overflows (a row sums to at most
 * V e^60, V up to e^28) nor leaves the normal range at the row maximum, so log(sum(exp(x))) is
 * as exact without the max subtraction as with it.
 */
export const UNSHIFTED_LOGIT_BOUND = 60;

/**
 * log(sum(exp(x))) over the rows of x [R, V] -> [R]: without the [R, V] subtraction of the row
 * maxima when every row maximum is within +-UNSHIFTED_LOGIT_BOUND (one exp and one sum pass over
 * the block, where a softmax makes several), else the usual max-shifted form.
 */
export function logSumExpRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const rowMax = tf.max(x, 1); // [R]
    const [low, high] = tf.stack([tf.min(rowMax), tf.max(rowMax)]).dataSync() as Float32Array;
    if (low! > -UNSHIFTED_LOGIT_BOUND && high! < UNSHIFTED_LOGIT_BOUND) {
      return tf.log(tf.sum(tf.exp(x), 1)) as tf.Tensor1D; // [R]
    }
    const shifted = tf.sub(x, tf.reshape(rowMax, [x.shape[0], 1])); // [R, V]
    return tf.add(rowMax, tf.log(tf.sum(tf.exp(shifted), 1))) as tf.Tensor1D; // [R]
  });
}

/**
 * Mean cross-entropy of (hidden W^T) [N, V] against `targets` [N] (int32, -100 = ignored):
 * torch cross_entropy(ignore_index=-100) semantics (all ignored -> NaN). `hidden` [N, D] is the
 * final-normalised hidden state, `weight` [V, D] the output projection (PyTorch layout).
 */
export function projectedCrossEntropy(
  hidden: tf.Tensor2D,
  weight: tf.Tensor2D,
  targets: tf.Tensor1D,
  rowsPerBlock = blockRows(weight.shape[0]),
): tf.Scalar {
  const [rows, dimModel] = hidden.shape;
  const vocab = weight.shape[0];
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const w = args[1] as tf.Tensor2D;
    const save = args[2] as tf.GradSaveFunc;
    // inside customGrad the tape is paused; gradientDepth says whether a gradient is wanted
    const recording = tf.engine().state.gradientDepth > 0;
    const counted = tf.notEqual(targets, IGNORE_INDEX); // [N] bool
    const count = tf.sum(tf.cast(counted, 'float32')); // []
    const rowWeights = tf.div(tf.cast(counted, 'float32'), count); // [N]
    const safeTargets = tf.where(counted, tf.cast(targets, 'int32'), tf.zeros([rows], 'int32')); // [N]
    let total: tf.Scalar = tf.scalar(0);
    let weightGradient: tf.Tensor2D | null = null; // [V, D], the softmax part summed over blocks
    const hiddenGradients: tf.Tensor2D[] = [];
    for (let start = 0; start < rows; start += rowsPerBlock) {
      const size = Math.min(rowsPerBlock, rows - start);
      const block = tf.tidy(() => {
        const hb = tf.slice(h, [start, 0], [size, dimModel]); // [R, D]
        const targetsBlock = tf.slice(safeTargets, [start], [size]); // [R]
        const weightsBlock = tf.reshape(tf.slice(rowWeights, [start], [size]), [size, 1]); // [R, 1]
        const logits = tf.matMul(hb, w, false, true); // [R, V]
        const rowIndex = tf.range(0, size, 1, 'int32'); // [R]
        const flatIndex = tf.add(tf.mul(rowIndex, tf.scalar(vocab, 'int32')), targetsBlock); // [R]
        if (!recording) {
          // evaluation: -log p(target) = log-sum-exp - logit(target), without the softmax
          const losses = tf.sub(
            logSumExpRows(logits),
            tf.gather(tf.reshape(logits, [size * vocab]), flatIndex),
          ); // [R]
          return { part: tf.sum(tf.mul(losses, tf.reshape(weightsBlock, [size]))) as tf.Scalar };
        }
        const probabilities = tf.softmax(logits); // [R, V]
        const picked = tf.gather(tf.reshape(probabilities, [size * vocab]), flatIndex); // [R]
        // -log p(target); a probability that underflowed (loss above ~69) is recomputed exactly
        // as log-sum-exp - logit, with the log-sum-exp taken from the softmax: the row maximum's
        // probability is 1 / sum(exp(x - max)).
        let losses = tf.neg(tf.log(picked)); // [R]
        if (tf.min(picked).dataSync()[0]! < 1e-30) {
          const logSumExp = tf.sub(tf.max(logits, 1), tf.log(tf.max(probabilities, 1))); // [R]
          const targetLogits = tf.gather(tf.reshape(logits, [size * vocab]), flatIndex); // [R]
          losses = tf.sub(logSumExp, targetLogits);
        }
        const part = tf.sum(tf.mul(losses, tf.reshape(weightsBlock, [size]))) as tf.Scalar; // []
        // d loss / d logits = w * (p - onehot(target)), never formed: with the row weights moved
        // onto the [R, D] sides of the two products,
        //   dh = w * (p W - W[target]),   dW = p^T (w * h) - (the one-hot part, added once below)
        const hiddenGradient = tf.mul(
          tf.sub(tf.matMul(probabilities, w), tf.gather(w, targetsBlock)),
          weightsBlock,
        ); // [R, D]
        const weightPart = tf.matMul(probabilities, tf.mul(hb, weightsBlock), true, false); // [V, D]
        return { part, hiddenGradient, weightPart };
      });
      const sum = tf.add(total, block.part) as tf.Scalar;
      tf.dispose([total, block.part]);
      total = sum;
      if (block.hiddenGradient && block.weightPart) {
        hiddenGradients.push(block.hiddenGradient as tf.Tensor2D);
        if (weightGradient === null) weightGradient = block.weightPart as tf.Tensor2D;
        else {
          const next = tf.add(weightGradient, block.weightPart) as tf.Tensor2D;
          tf.dispose([weightGradient, block.weightPart]);
          weightGradient = next;
        }
      }
    }
    if (recording && weightGradient !== null) {
      // the one-hot part of dW: row `target` loses w * h for every counted row
      const oneHotPart = tf.unsortedSegmentSum(
        tf.mul(h, tf.reshape(rowWeights, [rows, 1])),
        safeTargets,
        vocab,
      ); // [V, D]
      const hiddenGradient =
        hiddenGradients.length === 1 ? hiddenGradients[0]! : tf.concat(hiddenGradients, 0); // [N, D]
      save([hiddenGradient, tf.sub(weightGradient, oneHotPart)]);
    }
    return {
      value: total,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hiddenGradient, weightGradient] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.mul(hiddenGradient, dy), tf.mul(weightGradient, dy)];
      },
    };
  });
  return compute(hidden, weight) as tf.Scalar;
}
