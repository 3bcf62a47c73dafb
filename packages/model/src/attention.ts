// Attention over [past ; new tokens] with rotary positions: one function for the full pass (past
// = the previous chunk's XL memory) and for generation (past = that memory plus the current
// chunk's earlier tokens, from the KV cache).
//
// Shape legend: B batch, T new tokens (the chunk, or a generation step), N = B*T rows,
// D dim_model, A dim_attn, H heads, K dim_head (A / H), Kv value head dim (D / H), P past length,
// W key width P+T rounded up to the context's key bucket, K' q/k width after qk_norm (K, or 2K
// with the negator).
//
//   q, k: N x D -> A, v: N x D -> D (one matmul with [q ; k ; v] stacked, PyTorch layout)
//   keys/values = [past ; new] (past unrotated, as cached), then rotated: keys at
//   keyOffset..keyOffset+P+T-1, queries at keyOffset+P..keyOffset+P+T-1 (the state says where
//   the keys start: 0 with the 'reset' policy, the document position with 'absolute')
//   softmax(q k^T / sqrt(K) + mask) v, mask: every past key plus the causal part of the new ones.
// With qk_norm (kinds/qk-norms.ts) q and k are normalised per head right after the projection,
// before rotary and before they are handed back as `written` (so caches keep them normalised and
// unrotated); the kind also sets the logit scale, and the negator doubles their width to 2K.
//   Persistent memory (n_mem_kv N, kinds/memory-tokens.ts): the layer's learned k/v [H, N, *] go
//   in front of the rotated keys and the values, unrotated and never masked (the mask treats
//   them as N more past keys). Memory-token groups open the mask inside each group.
import * as tf from '@tensorflow/tfjs-core';
import type { RotaryEmbedding } from '@baka/rope';
import type { KeyValues } from './memory';
import type { PositionPolicy } from './config';
import type { AttentionMasks, QueryGroup } from './attention-mask';
import { attentionCore } from './attention-core';
import type { QkNormalisation } from './kinds/qk-norms';

export interface AttentionContext {
  nHeads: number;
  positionPolicy: PositionPolicy;
  rotary: RotaryEmbedding;
  masks: AttentionMasks;
  /**
   * Key widths are padded (masked out) to a multiple of this many positions; 1 = no padding.
   * Generation uses a bucket so native kernels see few shapes (see generation.ts).
   */
  keyBucket: number;
}

/** State in: what the new tokens attend to in front of their own keys. */
export interface AttentionState {
  /** Unrotated keys/values before the new tokens: k [B, H, P, K], v [B, H, P, Kv]; null: none. */
  past: KeyValues | null;
  /** Rotary position of the first key (the first past key, else the first new token). */
  keyOffset: number;
  /**
   * Also hand back [past ; new] as joined here (the KV cache keeps it instead of copying again;
   * the full pass leaves it false so the joined keys are freed with the layer's scope).
   */
  returnJoined: boolean;
  /**
   * Upstream 005's hand-built RMT mask (rmt_mask 'upstream'): besides the causal mask, the last
   * `write` queries see every key and the first `read` queries see each other.
   */
  open?: { read: number; write: number };
  /** Memory-token groups among the new tokens (kinds/memory-tokens.ts): each sees itself whole. */
  groups?: readonly QueryGroup[];
  /**
   * `past.k` already rotated at keyOffset.. (a generation step's `attended.rotatedK`, kept by the
   * KV cache): then only the new keys are rotated. Rotation works position by position, so the
   * numbers are those of rotating [past ; new] again. Ignored with bfloat16 rotary tables, whose
   * rows depend on the call's offset as well as the position.
   */
  rotatedPast?: tf.Tensor4D;
}

/** [past ; new] unrotated as attention joined them, and rotated ([B, H, P+T, K']) when it could reuse them. */
export interface JoinedKeyValues extends KeyValues {
  rotatedK?: tf.Tensor4D;
}

export interface AttentionResult {
  output: tf.Tensor2D; // [N, D]
  /** The new tokens' unrotated keys [B, H, T, K] and values [B, H, T, Kv]. */
  written: KeyValues;
  /**
   * With state.returnJoined, [past ; written] unrotated: [B, H, P+T, K], [B, H, P+T, Kv], and the
   * keys rotated (`rotatedK`) unless the rotary tables are bfloat16.
   */
  attended: JoinedKeyValues | null;
}

/** Splits [N, H*X] into heads [B, H, T, X]. */
export function toHeads(x: tf.Tensor2D, batch: number, length: number, heads: number): tf.Tensor4D {
  const width = x.shape[1] / heads;
  // one position (a generation step): [B, 1, H, X] and [B, H, 1, X] hold the same order
  if (length === 1) return tf.reshape(x, [batch, heads, 1, width]); // [B, H, 1, X]
  return tf.transpose(tf.reshape(x, [batch, length, heads, width]), [0, 2, 1, 3]); // [B, H, T, X]
}

/** Merges heads [B, H, T, X] into [N, H*X]. */
export function fromHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [batch, heads, length, width] = x.shape;
  if (length === 1) return tf.reshape(x, [batch, heads * width]); // [N, H*X], N = B
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [batch * length, heads * width]); // [N, H*X]
}

/** x [B, H, L, X] padded with zeros to [B, H, W, X] along the key axis. */
export function padKeys(x: tf.Tensor4D, width: number): tf.Tensor4D {
  const padding = width - x.shape[2];
  if (padding === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [0, 0],
    [0, padding],
    [0, 0],
  ]); // [B, H, W, X]
}

/** [persistent ; x] along the key axis: persistent [H, N, X] for every row of x [B, H, L, X]. */
function withPersistent(persistent: tf.Tensor3D, x: tf.Tensor4D): tf.Tensor4D {
  const [heads, count, width] = persistent.shape;
  const rows = tf.broadcastTo(tf.reshape(persistent, [1, heads, count, width]), [
    x.shape[0],
    heads,
    count,
    width,
  ]); // [B, H, N, X]
  return tf.concat([rows, x], 2) as tf.Tensor4D; // [B, H, N+L, X]
}

/**
 * h [N, D] (normalised input of N = batch * length new tokens); qkv [2A + D, D]; o [D, D];
 * qkNorm: the layer's qk_norm, if any; `persistent`: the layer's persistent memory k [H, Nm, K],
 * v [H, Nm, Kv] (n_mem_kv), if any.
 */
export function attention(
  h: tf.Tensor2D,
  qkv: tf.Tensor2D,
  o: tf.Tensor2D,
  state: AttentionState,
  batch: number,
  length: number,
  context: AttentionContext,
  qkNorm?: QkNormalisation,
  persistent?: { k: tf.Tensor3D; v: tf.Tensor3D },
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
  const projectedQ = toHeads(qFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, K]
  const projectedK = toHeads(kFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, K]
  // with qk_norm [B, H, T, K'], K' = K or 2K (negator); rotary turns the first K features
  const [q, k] = qkNorm ? qkNorm.normalise(projectedQ, projectedK) : [projectedQ, projectedK];
  const v = toHeads(vFlat as tf.Tensor2D, batch, length, heads); // [B, H, T, Kv]
  const { past, keyOffset } = state;
  const pastLength = past === null ? 0 : past.k.shape[2];
  const keys = past === null ? k : (tf.concat([past.k, k], 2) as tf.Tensor4D); // [B, H, P+T, K']
  const values = past === null ? v : (tf.concat([past.v, v], 2) as tf.Tensor4D); // [B, H, P+T, Kv]
  const rotatedQueries = context.rotary.rotate(q, { offset: keyOffset + pastLength }); // [B, H, T, K']
  const reusable = context.rotary.precision === 'float32';
  if (state.rotatedPast !== undefined && state.rotatedPast.shape[2] !== pastLength) {
    throw new Error(
      `attention: rotatedPast [${state.rotatedPast.shape.join(', ')}] does not cover the ${pastLength} past keys`,
    );
  }
  const joinedKeys =
    reusable && state.rotatedPast !== undefined && past !== null
      ? (tf.concat(
          [state.rotatedPast, context.rotary.rotate(k, { offset: keyOffset + pastLength })],
          2,
        ) as tf.Tensor4D) // [B, H, P+T, K']
      : context.rotary.rotate(keys, { offset: keyOffset }); // [B, H, P+T, K']
  let rotatedKeys = joinedKeys;
  let attendedValues = values; // [B, H, P+T, Kv]
  let seen = pastLength; // keys every query sees in front of the new ones
  if (persistent !== undefined) {
    rotatedKeys = withPersistent(persistent.k, rotatedKeys); // [B, H, Nm+P+T, K]
    attendedValues = withPersistent(persistent.v, values); // [B, H, Nm+P+T, Kv]
    seen += persistent.k.shape[1];
  }
  const scaled = qkNorm
    ? qkNorm.scaleQueries(rotatedQueries)
    : (tf.mul(rotatedQueries, 1 / Math.sqrt(dimHead)) as tf.Tensor4D); // [B, H, T, K']
  // Padded key positions are masked out (their weights are exactly 0), so padding changes no value.
  const width = Math.ceil((seen + length) / context.keyBucket) * context.keyBucket; // W
  // softmax(q k^T + mask) v, with a gradient that keeps few [B, H, T, W] tensors
  const mixed = attentionCore(
    scaled,
    padKeys(rotatedKeys, width), // [B, H, W, K]
    padKeys(attendedValues, width), // [B, H, W, Kv]
    context.masks.get(length, seen, width, state.open, state.groups), // [T, W]
  ); // [B, H, T, Kv]
  const output = tf.matMul(fromHeads(mixed), o, false, true) as tf.Tensor2D; // [N, D]
  return {
    output,
    written: { k, v },
    attended: state.returnJoined
      ? { k: keys, v: values, ...(reusable ? { rotatedK: joinedKeys } : {}) }
      : null,
  };
}
