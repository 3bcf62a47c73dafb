// Query/key norm kinds: what `qk_norm` in the config does to q and k inside attention, per head,
// right after the projection and before rotary (docs/architecture.md section 1.7). The XL memory
// and the KV cache keep the keys as they come out of here: normalised, unrotated. A kind is its
// tensors (suffixes of `model.layers.{i}.`, in state_dict order) and a prepared transformation;
// adding one is an entry in QK_NORM_KINDS. Kind modules import only types from config.ts.
//
//   none       identity, logits / sqrt(K)
//   layernorm  (x - mean) / sqrt(var + 1e-5) * weight + bias                  logits / sqrt(K)
//   rmsnorm    x / sqrt(mean(x^2) + 1e-6) * weight                            logits / sqrt(K)
//   l2         x / max(|x|, 1e-12) per head                logits * s (fixed, or attn.qk_scale [H])
//   negator    upstream 000_OLD: [x ; c - x] (c = attn.negator, one scalar per layer), then a
//              LayerNorm over the 2K features; rotary turns the first K        logits / sqrt(2K)
// Statistics over each head's features (qk_norm_scope 'head') or over all heads' together
// ('all'); weights [W] shared by the heads or [H, W] per head (qk_norm_weights), W = K or 2K.
//
// Shape legend: B batch, H heads, T positions, K dim_head, W normalised width (K, or 2K).
import * as tf from '@tensorflow/tfjs-core';
import type { BakaConfig } from '../config';
import type { LayerTensor } from './layers';

export const QK_LAYER_NORM_EPSILON = 1e-5;
export const QK_RMS_NORM_EPSILON = 1e-6;
export const QK_L2_EPSILON = 1e-12;

/** q and k of one layer, as prepared for a forward call. */
export interface QkNormalisation {
  /** q, k [B, H, T, K] as projected -> [B, H, T, W] (what rotary and the caches see). */
  normalise(q: tf.Tensor4D, k: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D];
  /** Rotated queries [B, H, T, W] times the softmax's logit scale. */
  scaleQueries(q: tf.Tensor4D): tf.Tensor4D;
}

/** qk_norm_scope: statistics over each head's features or over all heads' together. */
export const QK_NORM_SCOPES = ['head', 'all'] as const;
/** qk_norm_weights: one weight (and bias) vector for every head, or one per head. */
export const QK_NORM_WEIGHTS = ['shared', 'per-head'] as const;

/** The qk_norm fields a layer needs (from the config). */
export interface QkNormShape {
  heads: number;
  dimHead: number;
  scope: (typeof QK_NORM_SCOPES)[number];
  weights: (typeof QK_NORM_WEIGHTS)[number];
  /** l2's logit scale (qk_norm_scale, 0 resolved to sqrt(dim_head)). */
  scale: number;
  learnedScale: boolean;
}

export interface QkNormKind {
  readonly description: string;
  /** The kind's tensors in state_dict order (suffixes of `model.layers.{i}.`). */
  tensors(shape: QkNormShape): LayerTensor[];
  /** The transformation with the layer's tensors; null = attention as without qk_norm. */
  prepare(get: (suffix: string) => tf.Tensor, shape: QkNormShape): QkNormalisation | null;
}

/** The l2 logit scale: qk_norm_scale, or sqrt(dim_head) when it is 0. */
export function l2Scale(
  config: Pick<BakaConfig, 'qk_norm_scale' | 'dim_attn' | 'n_heads'>,
): number {
  return config.qk_norm_scale || Math.sqrt(config.dim_attn / config.n_heads);
}

/** attn.q_norm.* and attn.k_norm.*: weight (ones) and, for a LayerNorm, bias (zeros). */
function normTensors(shape: QkNormShape, width: number, withBias: boolean): LayerTensor[] {
  const dims = shape.weights === 'shared' ? [width] : [shape.heads, width];
  const parts: [string, LayerTensor['init']][] = [['weight', { kind: 'ones' }]];
  if (withBias) parts.push(['bias', { kind: 'zeros' }]);
  return ['q_norm', 'k_norm'].flatMap((norm) =>
    parts.map(([part, init]) => ({
      suffix: `attn.${norm}.${part}`,
      shape: dims,
      init,
      trainable: true,
    })),
  );
}

/**
 * LayerNorm (bias given) or RMSNorm of x [B, H, T, W] over each head's features or all heads';
 * weight/bias [W] or [H, W].
 */
export function headNorm(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  scope: QkNormShape['scope'],
): tf.Tensor4D {
  return tf.tidy(() => {
    const axes = scope === 'head' ? [3] : [1, 3];
    let normalised: tf.Tensor; // [B, H, T, W]
    if (bias === null) {
      const meanSquare = tf.mean(tf.square(x), axes, true); // [B, H|1, T, 1]
      normalised = tf.mul(x, tf.rsqrt(tf.add(meanSquare, QK_RMS_NORM_EPSILON)));
    } else {
      const centered = tf.sub(x, tf.mean(x, axes, true));
      const variance = tf.mean(tf.square(centered), axes, true); // [B, H|1, T, 1]
      normalised = tf.mul(centered, tf.rsqrt(tf.add(variance, QK_LAYER_NORM_EPSILON)));
    }
    const perHead = (t: tf.Tensor) =>
      t.rank === 1 ? t : tf.reshape(t, [1, t.shape[0] as number, 1, t.shape[1] as number]); // [1, H, 1, W]
    const scaled = tf.mul(normalised, perHead(weight));
    return (bias === null ? scaled : tf.add(scaled, perHead(bias))) as tf.Tensor4D;
  });
}

/** x [B, H, T, K] / max(|x|, eps) along the features. */
export function unitLength(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), 3, true)); // [B, H, T, 1]
    return tf.div(x, tf.maximum(norm, QK_L2_EPSILON)) as tf.Tensor4D;
  });
}

/** Queries times a fixed number. */
function fixedScale(scale: number): QkNormalisation['scaleQueries'] {
  return (q) => tf.mul(q, scale) as tf.Tensor4D;
}

/** A LayerNorm/RMSNorm kind over the K (or, after the negator, 2K) features of each head. */
function normalising(rms: boolean): QkNormKind {
  return {
    description: rms
      ? 'RMSNorm (eps 1e-6, weight) of q and k per head; logits / sqrt(dim_head)'
      : 'LayerNorm (eps 1e-5, weight and bias) of q and k per head; logits / sqrt(dim_head)',
    tensors: (shape) => normTensors(shape, shape.dimHead, !rms),
    prepare: (get, shape) => {
      const [qWeight, kWeight] = [get('attn.q_norm.weight'), get('attn.k_norm.weight')];
      const [qBias, kBias] = rms
        ? [null, null]
        : [get('attn.q_norm.bias'), get('attn.k_norm.bias')];
      return {
        normalise: (q, k) => [
          headNorm(q, qWeight, qBias, shape.scope),
          headNorm(k, kWeight, kBias, shape.scope),
        ],
        scaleQueries: fixedScale(1 / Math.sqrt(shape.dimHead)),
      };
    },
  };
}

export const QK_NORM_KINDS = {
  none: {
    description: 'no norm inside attention (upstream 003)',
    tensors: () => [],
    prepare: () => null,
  },
  layernorm: normalising(false),
  rmsnorm: normalising(true),
  l2: {
    description:
      'q and k scaled to unit length per head; logits times qk_norm_scale (learned per head as attn.qk_scale with qk_norm_learned_scale)',
    tensors: (shape) =>
      shape.learnedScale
        ? [
            {
              suffix: 'attn.qk_scale',
              shape: [shape.heads],
              init: { kind: 'constant', value: shape.scale },
              trainable: true,
            },
          ]
        : [],
    prepare: (get, shape) => {
      const learned = shape.learnedScale ? get('attn.qk_scale') : null; // [H]
      return {
        normalise: (q, k) => [unitLength(q), unitLength(k)],
        scaleQueries:
          learned === null
            ? fixedScale(shape.scale)
            : (q) => tf.mul(q, tf.reshape(learned, [1, shape.heads, 1, 1])) as tf.Tensor4D,
      };
    },
  },
  negator: {
    description:
      "upstream 000_OLD's anti-small-value-conspiracy: [x ; c - x] per head, LayerNorm over the 2 x dim_head features, rotary on the first half; logits / sqrt(2 x dim_head)",
    tensors: (shape) => [
      { suffix: 'attn.negator', shape: [], init: { kind: 'ones' }, trainable: true },
      ...normTensors(shape, 2 * shape.dimHead, true),
    ],
    prepare: (get, shape) => {
      const negator = get('attn.negator'); // []
      const norms = ['q_norm', 'k_norm'].map((norm) => ({
        weight: get(`attn.${norm}.weight`),
        bias: get(`attn.${norm}.bias`),
      })) as [{ weight: tf.Tensor; bias: tf.Tensor }, { weight: tf.Tensor; bias: tf.Tensor }];
      const doubled = (x: tf.Tensor4D, norm: { weight: tf.Tensor; bias: tf.Tensor }) =>
        tf.tidy(() => {
          const both = tf.concat([x, tf.sub(negator, x)], 3) as tf.Tensor4D; // [B, H, T, 2K]
          return headNorm(both, norm.weight, norm.bias, shape.scope);
        });
      return {
        normalise: (q, k) => [doubled(q, norms[0]), doubled(k, norms[1])],
        scaleQueries: fixedScale(1 / Math.sqrt(2 * shape.dimHead)),
      };
    },
  },
} as const satisfies Record<string, QkNormKind>;

export type QkNormName = keyof typeof QK_NORM_KINDS;

export const QK_NORM_NAMES = Object.keys(QK_NORM_KINDS) as [QkNormName, ...QkNormName[]];

/** The qk_norm fields of a config as a layer sees them. */
export function qkNormShape(config: BakaConfig): QkNormShape {
  return {
    heads: config.n_heads,
    dimHead: config.dim_attn / config.n_heads,
    scope: config.qk_norm_scope,
    weights: config.qk_norm_weights,
    scale: l2Scale(config),
    learnedScale: config.qk_norm_learned_scale,
  };
}
