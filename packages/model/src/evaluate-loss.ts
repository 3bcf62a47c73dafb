// Upstream's loss over a long batch without materialising [B, S, V] logits: the sequence runs in
// segments (a multiple of n_ctx, so the chunking is the one a single call would do) with the XL
// memory handed from segment to segment, and the per-token losses are summed. Equal to
// `model.loss(ids, labels)` up to float summation order.
//
// Shape legend: B batch rows, S sequence length, L segment length, V vocab.
import * as tf from '@tensorflow/tfjs-core';
import type { BakaCausalLM } from './causal-lm';
import { ModelError } from './errors';
import { crossEntropy, IGNORE_INDEX } from './loss';
import type { SequenceState } from './sequence-state';

export interface EvaluateLossOptions {
  /** Segment length in tokens, rounded up to a multiple of n_ctx (default: about 8M logits). */
  segmentLength?: number;
}

/**
 * Mean cross-entropy (labels shifted by one, -100 ignored) of row-major ids/labels [B, S].
 * Returns the loss (NaN when nothing is counted, as PyTorch) and the counted tokens.
 */
export function evaluateLoss(
  model: BakaCausalLM,
  batch: { ids: ArrayLike<number>; labels?: ArrayLike<number>; rows: number; length: number },
  options: EvaluateLossOptions = {},
): { loss: number; tokens: number } {
  const { rows, length } = batch;
  const labels = batch.labels ?? batch.ids;
  const { n_ctx: chunk, n_vocab: vocab } = model.config;
  if (batch.ids.length !== rows * length || labels.length !== rows * length) {
    throw new ModelError(`evaluateLoss: expected ${rows} x ${length} ids and labels`);
  }
  for (let i = 0; i < batch.ids.length; i++) {
    const id = batch.ids[i] as number;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new ModelError(
        `token id ${id} (row ${Math.floor(i / length)}, position ${i % length}) is outside the model's vocabulary 0..${vocab - 1}`,
      );
    }
  }
  const budget = options.segmentLength ?? Math.max(1, Math.floor(8_000_000 / (rows * vocab)));
  const segment = Math.max(chunk, Math.ceil(budget / chunk) * chunk);
  let memory: SequenceState | null = null;
  let sum = 0;
  let tokens = 0;
  try {
    for (let start = 0; start < length; start += segment) {
      const end = Math.min(length, start + segment);
      const width = end - start;
      const ids = new Int32Array(rows * width);
      const targets = new Int32Array(rows * width);
      for (let row = 0; row < rows; row++) {
        for (let t = 0; t < width; t++) {
          const position = start + t;
          ids[row * width + t] = batch.ids[row * length + position] as number;
          targets[row * width + t] =
            position + 1 < length ? (labels[row * length + position + 1] as number) : IGNORE_INDEX;
        }
      }
      const previous: SequenceState | null = memory;
      let carried: SequenceState | null = null;
      const values = tf.tidy(() => {
        const input = tf.tensor2d(ids, [rows, width], 'int32');
        const forward = model.forward(input, { memory: previous });
        const flat = tf.reshape(forward.logits, [rows * width, vocab]) as tf.Tensor2D; // [B*L, V]
        const { loss, count } = crossEntropy(flat, tf.tensor1d(targets, 'int32'));
        // owning copy (tf.keep'd), outlives this scope; freed after the next segment
        carried = forward.memory === null || end === length ? null : forward.memory.detach();
        return tf.stack([loss, count]);
      });
      (previous as SequenceState | null)?.dispose();
      memory = carried as SequenceState | null;
      const [loss, count] = values.dataSync() as Float32Array;
      values.dispose();
      if ((count as number) > 0) {
        sum += (loss as number) * (count as number);
        tokens += count as number;
      }
    }
  } finally {
    const last = memory as SequenceState | null;
    last?.dispose();
  }
  return { loss: tokens > 0 ? sum / tokens : Number.NaN, tokens };
}
