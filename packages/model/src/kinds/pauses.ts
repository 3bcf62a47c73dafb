// Pause tokens (upstream 004): `n_pauses` copies of one learned vector `model.pause.pause_emb`
// [D] inserted into every chunk. Upstream inserts them one after another into the growing
// sequence at the points step*i (step = n_ctx // n_pauses, every i < n_pauses with step*i <= the
// chunk's token count). A pause never ends a chunk, but the layout depends on the chunk's length:
// a chunk that grows by a token can gain a pause in front of tokens it already had (generation
// recomputes those). Pauses take rotary positions and enter the XL memory like tokens; their
// outputs are removed before the head. docs/architecture.md section 1.4.
//
// Shape legend: B batch rows, T the chunk's tokens, W = T + its pauses, D dim_model.
import * as tf from '@tensorflow/tfjs-core';
import { mulberry32 } from '@baka/common';
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import { deriveSeed } from '../random';

/**
 * Per position of a chunk of `tokens` tokens with pauses: the token's index in the chunk, or -1
 * for a pause. With `is_pause_pos_random` (upstream's random layout) `random` (uniform in [0, 1))
 * places them: the first at 0, pause i at a uniform point 1..tokens+i of the growing chunk.
 */
export function pauseLayout(config: BakaConfig, tokens: number, random?: () => number): number[] {
  const slots = Array.from({ length: tokens }, (_, index) => index);
  if (config.n_pauses === 0) return slots;
  if (config.is_pause_pos_random) {
    if (random === undefined) {
      throw new ModelError('pauseLayout: the random pause layout needs a random source');
    }
    slots.splice(0, 0, -1);
    for (let i = 1; i < config.n_pauses; i++) {
      const length = tokens + i; // the growing chunk
      slots.splice(1 + Math.floor(random() * length), 0, -1); // 1..length
    }
    return slots;
  }
  const step = Math.floor(config.n_ctx / config.n_pauses);
  for (let i = 0; i < config.n_pauses && step * i <= tokens; i++) slots.splice(step * i, 0, -1);
  return slots;
}

/** The random source of a forward call's pause layouts: `pause_seed` and the call's layout seed. */
export function pauseRandom(config: BakaConfig, layoutSeed = 0): (() => number) | undefined {
  if (!config.is_pause_pos_random || config.n_pauses === 0) return undefined;
  return mulberry32(deriveSeed(config.pause_seed, layoutSeed));
}

/** Positions of a full chunk (n_ctx tokens and their pauses). */
export function chunkSlots(config: BakaConfig): number {
  return pauseLayout(config, config.n_ctx).length;
}

/**
 * The chunk x [B, T, D] with the pauses inserted -> [B, W, D], and the positions of the tokens
 * (to take the outputs back out). Without pauses x itself.
 */
export function insertPauses(
  x: tf.Tensor3D,
  pause: tf.Tensor1D | null,
  config: BakaConfig,
  random?: () => number,
): { x: tf.Tensor3D; tokens: number[] | null } {
  const [batch, length, dimModel] = x.shape;
  if (pause === null || config.n_pauses === 0) return { x, tokens: null };
  const layout = pauseLayout(config, length, random);
  const rows = tf.broadcastTo(tf.reshape(pause, [1, 1, dimModel]), [batch, 1, dimModel]); // [B, 1, D]
  const withPause = tf.concat([x, rows], 1); // [B, T + 1, D]; index T is the pause
  const indices = tf.tensor1d(
    layout.map((token) => (token < 0 ? length : token)),
    'int32',
  );
  const tokens = layout.flatMap((token, slot) => (token < 0 ? [] : [slot]));
  return { x: tf.gather(withPause, indices, 1) as tf.Tensor3D, tokens }; // [B, W, D]
}

/** The outputs at the token positions: y [B, W, D] -> [B, T, D]. */
export function removePauses(y: tf.Tensor3D, tokens: number[] | null): tf.Tensor3D {
  if (tokens === null) return y;
  return tf.gather(y, tf.tensor1d(tokens, 'int32'), 1) as tf.Tensor3D;
}
