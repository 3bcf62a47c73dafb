// Attention over [memory ; current chunk] with rotary positions (DESIGN §1.2).
//
// Shape legend: B batch, T chunk length, N = B*T rows, D dim_model, A dim_attn, H heads,
// K dim_head (A / H), Kv value head dim (D / H), P past (memory) length.
//
//   q, k: N x D -> A, v: N x D -> D (one matmul with [q ; k ; v] stacked, PyTorch layout)
//   keys/values = [past ; now] (past unrotated, as cached), then rotated:
//     reset:    keys at 0..P+T-1, queries at P..P+T-1
//     absolute: keys at S-P..S+T-1, queries at S..S+T-1 (S = document position of the chunk)
//   softmax(q k^T / sqrt(K) + mask) v, mask: every past key plus the causal part of the chunk.
import * as tf from '@tensorflow/tfjs-core';
import type { RotaryEmbedding } from '@baka/rope';
import { positions } from './memory';
import type { PastMemory } from './memory';
import type { PositionPolicy } from './config';
import type { AttentionMasks } from './attention-mask';
import { attentionCore } from './attention-core';

export interface AttentionContext {
  nHeads: number;
  positionPolicy: PositionPolicy;
  rotary: RotaryEmbedding;
  masks: AttentionMasks;
}

export interface AttentionResult {
  output: tf.Tensor2D; // [N, D]
  k: tf.Tensor4D; // [B, H, T, K] unrotated, for the memory
  v: tf.Tensor4D; // [B, H, T, Kv]
}

/** Splits [N, H*X] into heads [B, H, T, X]. */
export function toHeads(x: tf.Tensor2D, batch: number, length: number, heads: number): tf.Tensor4D {
  const width = x.shape[1] / heads;
  return tf.transpose(tf.reshape(x, [batch, length, heads, width]), [0, 2, 1, 3]); // [B, H, T, X]
}

/** Merges heads [B, H, T, X] into [N, H*X]. */
export function fromHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [batch, heads, length, width] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch * length, heads * width]); // [N, H*X]
}

/**
 * h [N, D] (normalised chunk input, N = batch * length); qkv [2A + D, D]; o [D, D].
 * `start` is the document position of the chunk's first token.
 */
export function attention(
  h: tf.Tensor2D,
  qkv: tf.Tensor2D,
  o: tf.Tensor2D,
  past: PastMemory | null,
  batch: number,
  length: number,
  start: number,
  context: AttentionContext,
): AttentionResult {
  const dimModel = o.shape[0];
  const dimAttn = (qkv.shape[0] - dimModel) / 2;
  const heads = context.nHeads;
  const dimHead = dimAttn / heads;
  const projected = tf.matMul(h, qkv, false, true); // [N, 2A + D]
  const [qFlat, kFlat, vFlat] = tf.split(
    projected,
    [dimAttn, dimAttn, dimModel],
    1,
  ) as tf.Tensor2D[];
  const q = toHeads(qFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, K]
  const k = toHeads(kFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, K]
  const v = toHeads(vFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, Kv]
  const pastLength = past === null ? 0 : past.k.shape[2];
  const keys = past === null ? k : tf.concat([past.k, k], 2); // [B, H, P+T, K]
  const values = past === null ? v : tf.concat([past.v, v], 2); // [B, H, P+T, Kv]
  const { queryOffset, keyOffset } = positions(context.positionPolicy, pastLength, length, start);
  const rotatedQueries = context.rotary.rotate(q, { offset: queryOffset }); // [B, H, T, K]
  const rotatedKeys = context.rotary.rotate(keys, { offset: keyOffset }); // [B, H, P+T, K]
  const scaled = tf.mul(rotatedQueries, 1 / Math.sqrt(dimHead)); // [B, H, T, K]
  // softmax(q k^T + mask) v, with a gradient that keeps few [B, H, T, P+T] tensors
  const mixed = attentionCore(
    scaled as tf.Tensor4D,
    rotatedKeys as tf.Tensor4D,
    values,
    context.masks.get(length, pastLength),
  ); // [B, H, T, Kv]
  const output = tf.matMul(fromHeads(mixed), o, false, true) as tf.Tensor2D; // [N, D]
  return { output, k, v };
}
