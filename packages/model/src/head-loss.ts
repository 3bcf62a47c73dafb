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
 * Log-sum-exps whose magnitude stays below this are taken without the max shift: then no exp
 * overflowed (an overflow makes the sum infinite) and the row maximum is above -60 - log V, so
 * its exp is a normal float (V < e^27) and the unshifted sum is as exact as the shifted one.
 */
export const UNSHIFTED_LOGIT_BOUND = 60;

/**
 * log(sum(exp(x))) over the rows of x [R, V] -> [R]: first without the max shift (one exp and
 * one sum pass over the block, where a max-shifted form or a softmax make several); when a row's
 * result is beyond +-UNSHIFTED_LOGIT_BOUND (or infinite), again in the usual max-shifted form.
 */
export function logSumExpRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const unshifted = tf.log(tf.sum(tf.exp(x), 1)) as tf.Tensor1D; // [R]
    const largest = tf.max(tf.abs(unshifted)).dataSync()[0]!;
    if (largest < UNSHIFTED_LOGIT_BOUND) return unshifted;
    const rowMax = tf.max(x, 1, true); // [R, 1]
    const shifted = tf.sub(x, rowMax); // [R, V]
    return tf.add(tf.reshape(rowMax, [-1]), tf.log(tf.sum(tf.exp(shifted), 1))) as tf.Tensor1D; // [R]
  });
}

/**
 * The mean loss without a gradient (evaluation): -log p(target) = log-sum-exp(h W^T) - h . W[target],
 * the target logits as row dot products for all rows at once, the log-sum-exps block by block;
 * per block only the logits [R, V] and their exp exist. Arguments as projectedCrossEntropy's
 * after the ignored rows are resolved (`rowWeights` [N]: 1 / count, 0 for ignored rows).
 */
function evaluationCrossEntropy(
  h: tf.Tensor2D,
  w: tf.Tensor2D,
  safeTargets: tf.Tensor1D,
  rowWeights: tf.Tensor1D,
  rowsPerBlock: number,
): tf.Scalar {
  const [rows, dimModel] = h.shape;
  const targetLogits = tf.sum(tf.mul(h, tf.gather(w, safeTargets)), 1); // [N]
  const logSumExps: tf.Tensor1D[] = [];
  for (let start = 0; start < rows; start += rowsPerBlock) {
    const size = Math.min(rowsPerBlock, rows - start);
    logSumExps.push(
      tf.tidy(() => {
        const hb = rows === size ? h : tf.slice(h, [start, 0], [size, dimModel]); // [R, D]
        return logSumExpRows(tf.matMul(hb, w, false, true)); // [R]
      }),
    );
  }
  const logSumExp = logSumExps.length === 1 ? logSumExps[0]! : tf.concat(logSumExps); // [N]
  return tf.sum(tf.mul(tf.sub(logSumExp, targetLogits), rowWeights)) as tf.Scalar;
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
  const resolved = () => {
    const counted = tf.notEqual(targets, IGNORE_INDEX); // [N] bool
    const count = tf.sum(tf.cast(counted, 'float32')); // []
    const rowWeights = tf.div(tf.cast(counted, 'float32'), count) as tf.Tensor1D; // [N]
    const safeTargets = tf.where(counted, tf.cast(targets, 'int32'), tf.zeros([rows], 'int32')); // [N]
    return { rowWeights, safeTargets: safeTargets as tf.Tensor1D };
  };
  // no gradient wanted (evaluation): no softmax, no customGrad
  if (tf.engine().state.gradientDepth === 0) {
    return tf.tidy(() => {
      const { rowWeights, safeTargets } = resolved();
      return evaluationCrossEntropy(hidden, weight, safeTargets, rowWeights, rowsPerBlock);
    });
  }
  const compute = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const h = args[0] as tf.Tensor2D;
    const w = args[1] as tf.Tensor2D;
    const save = args[2] as tf.GradSaveFunc;
    const { rowWeights, safeTargets } = resolved();
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
    if (weightGradient !== null) {
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
