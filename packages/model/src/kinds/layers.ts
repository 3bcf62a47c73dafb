// Layer kinds: what one layer computes, selected per layer by `layer_kinds` in the config. A kind
// names its tensors (relative to `model.layers.{i}.`, in PyTorch's state_dict order, with their
// initialisers), the rotary frequency scale of its attention, how its weights are prepared for a
// forward call and the forward itself. Adding a kind is a module plus an entry in LAYER_KINDS
// (docs/architecture.md sections 6.2 and 6.3; thin layers are the worked example). Kind modules import only
// types from config.ts, so config.ts can read the registry.
//
// Shape legend: N rows (batch x time), D dim_model, A dim_attn, F the layer's dim_ff, K dim_head.
import * as tf from '@tensorflow/tfjs-core';
import type { RotaryEmbedding } from '@baka/rope';
import type { AttentionContext } from '../attention';
import { bakaLayer } from '../baka-net';
import type { FusedLayerWeights, LayerOutput, LayerStateIn } from '../baka-net';
import type { BakaConfig } from '../config';
import type { Initialiser } from '../parameters';
import type { MambaDims } from './mamba';
import { megaLayer, megaTensors, prepareMega } from './mega';
import type { MegaDims } from './mega';
import { persistentMemoryTensors } from './memory-tokens';
import type { NormKind } from './norms';
import type { QkNormKind, QkNormShape } from './qk-norms';

/** The upstream init factor of a thin layer's attention weights. */
export const THIN_ATTENTION_INIT_SCALE = 1e-4;

/** What a kind needs to know about its layer besides the config. */
export interface LayerShape {
  /** The layer's index. */
  layer: number;
  /** The layer's MLP width F (layer_dim_ff, else dim_ff). */
  dimFf: number;
  dimHead: number;
  /** The config's norm kind (norm_in, or attn.norm_in and mlp.norm_in with split_norm). */
  norm: NormKind;
  /** split_norm: attention and MLP normalise the input with norms of their own (upstream 00x_split_ln). */
  splitNorm: boolean;
  /** The config's qk_norm kind and its fields (kinds/qk-norms.ts). */
  qkNorm: QkNormKind;
  qkNormShape: QkNormShape;
  /** The layer's Mamba block sizes (kinds/mamba.ts), when it has one. */
  mamba?: MambaDims;
  /** A Mega layer's sizes (kinds/mega.ts). */
  mega?: MegaDims;
  /** A recurrent layer's state gate (kinds/block-recurrent.ts), when it is one. */
  recurrent?: BakaConfig['state_gate'];
  /** Whether attention has persistent memory k/v (n_mem_kv > 0, kinds/memory-tokens.ts). */
  persistentMemory?: boolean;
}

/** One tensor of a layer: `model.layers.{i}.{suffix}`. */
export interface LayerTensor {
  suffix: string;
  shape: number[];
  init: Initialiser;
  trainable: boolean;
}

/** What a prepared layer computes on one chunk (or generation step). */
export type LayerForward = (
  x: tf.Tensor2D,
  weights: FusedLayerWeights,
  state: LayerStateIn,
  batch: number,
  length: number,
  context: AttentionContext,
) => LayerOutput;

export interface LayerKind {
  readonly description: string;
  /** Settings a model with layers of this kind needs besides the defaults (config checks them). */
  readonly requires?: Partial<BakaConfig>;
  /** The layer's tensors in state_dict order. */
  tensors(config: BakaConfig, shape: LayerShape): LayerTensor[];
  /** Scale of the layer's rotary frequencies (upstream's init scaled a thin layer's too). */
  rotaryScale(config: BakaConfig): number;
  /** The weights of one forward call: `get(suffix)` reads a tensor of the layer. */
  prepare(
    get: (suffix: string) => tf.Tensor,
    shape: LayerShape,
    rotary: RotaryEmbedding,
  ): FusedLayerWeights;
  forward: LayerForward;
}

/** A norm module's tensors: `{prefix}.weight` (and `.bias`), [D]. */
function normTensors(shape: LayerShape, prefix: string, dimModel: number): LayerTensor[] {
  return shape.norm.parameters.map(({ suffix, init }) => ({
    suffix: `${prefix}.${suffix}`,
    shape: [dimModel],
    init: { kind: init } as Initialiser,
    trainable: true,
  }));
}

/**
 * norm_in (attn.norm_in with split_norm), the persistent memory k/v (n_mem_kv,
 * kinds/memory-tokens.ts; attn's own parameters come first in its state_dict), the four attention
 * projections, the rotary frequencies and the qk_norm tensors; `scale` x the Linear init.
 */
function attentionTensors(config: BakaConfig, shape: LayerShape, scale?: number): LayerTensor[] {
  const { dim_model: D, dim_attn: A } = config;
  const linear: Initialiser = {
    kind: 'linear',
    fanIn: D,
    ...(scale === undefined ? {} : { scale }),
  };
  const rotaryScale = scale === undefined ? undefined : config.thin_rotary_scale;
  return [
    ...(shape.splitNorm ? [] : normTensors(shape, 'norm_in', D)),
    ...persistentMemoryTensors(config, shape),
    { suffix: 'attn.q.weight', shape: [A, D], init: linear, trainable: true },
    { suffix: 'attn.k.weight', shape: [A, D], init: linear, trainable: true },
    { suffix: 'attn.v.weight', shape: [D, D], init: linear, trainable: true },
    { suffix: 'attn.o.weight', shape: [D, D], init: linear, trainable: true },
    {
      suffix: 'attn.rot.freqs',
      shape: [shape.dimHead / 2],
      init: { kind: 'rotary', ...(rotaryScale === undefined ? {} : { scale: rotaryScale }) },
      trainable: false,
    },
    ...(shape.splitNorm ? normTensors(shape, 'attn.norm_in', D) : []),
    ...shape.qkNorm.tensors(shape.qkNormShape),
  ];
}

/** The norm's tensors under `prefix`, in the norm kind's order. */
function normParameters(get: (suffix: string) => tf.Tensor, shape: LayerShape, prefix: string) {
  return shape.norm.parameters.map(({ suffix }) => get(`${prefix}.${suffix}`) as tf.Tensor1D);
}

/** The stacked attention weights [q ; k ; v], the input norm(s) and qk_norm (tensors of the caller's scope). */
function prepareAttention(
  get: (suffix: string) => tf.Tensor,
  shape: LayerShape,
  rotary: RotaryEmbedding,
): Omit<FusedLayerWeights, 'mlp'> {
  const qkNorm = shape.qkNorm.prepare(get, shape.qkNormShape);
  return {
    norm: shape.norm,
    normParameters: normParameters(get, shape, shape.splitNorm ? 'attn.norm_in' : 'norm_in'),
    qkv: tf.concat(
      [get('attn.q.weight'), get('attn.k.weight'), get('attn.v.weight')],
      0,
    ) as tf.Tensor2D, // [2A + D, D]
    o: get('attn.o.weight') as tf.Tensor2D,
    rotary,
    ...(shape.persistentMemory
      ? {
          persistent: {
            k: get('attn.mem_k') as tf.Tensor3D, // [H, Nm, K]
            v: get('attn.mem_v') as tf.Tensor3D, // [H, Nm, Kv]
          },
        }
      : {}),
    ...(qkNorm === null ? {} : { qkNorm }),
  };
}

/**
 * Upstream's layer: y = x + attention(norm(x)) + mlp(norm(x)); with split_norm each branch has
 * its own norm, y = x + attention(attn.norm_in(x)) + mlp(mlp.norm_in(x)).
 */
const standard: LayerKind = {
  description: 'parallel attention + elephant-gated MLP on one shared input norm (upstream 003)',
  tensors: (config, shape) => [
    ...attentionTensors(config, shape),
    ...(shape.splitNorm ? normTensors(shape, 'mlp.norm_in', config.dim_model) : []),
    ...mlpTensors(config, shape),
  ],
  rotaryScale: () => 1,
  prepare: (get, shape, rotary) => ({
    ...prepareAttention(get, shape, rotary),
    ...(shape.splitNorm ? { mlpNormParameters: normParameters(get, shape, 'mlp.norm_in') } : {}),
    mlp: prepareMlp(get),
  }),
  forward: bakaLayer,
};

/** The gated MLP's three Linear weights (F = the layer's dim_ff). */
function mlpTensors(config: BakaConfig, shape: LayerShape): LayerTensor[] {
  const { dim_model: D } = config;
  const F = shape.dimFf;
  const mlp = (suffix: string, dims: number[], fanIn: number): LayerTensor => ({
    suffix: `mlp.${suffix}.weight`,
    shape: dims,
    init: { kind: 'linear', fanIn },
    trainable: true,
  });
  return [mlp('fc_gate', [F, D], D), mlp('fc_up', [F, D], D), mlp('fc_down', [D, F], F)];
}

/** The MLP's gate and up weights stacked for one matmul, and down. */
function prepareMlp(get: (suffix: string) => tf.Tensor): FusedLayerWeights['mlp'] {
  return {
    gateUp: tf.concat([get('mlp.fc_gate.weight'), get('mlp.fc_up.weight')], 0) as tf.Tensor2D, // [2F, D]
    down: get('mlp.fc_down.weight') as tf.Tensor2D,
  };
}

/**
 * A thin layer (upstream 00x_thin): attention only, no MLP tensors; its attention weights and
 * rotary frequencies start scaled (THIN_ATTENTION_INIT_SCALE, thin_rotary_scale).
 */
const attentionOnly: LayerKind = {
  description: 'attention only, no MLP (a thin layer, upstream 00x_thin)',
  tensors: (config, shape) => attentionTensors(config, shape, THIN_ATTENTION_INIT_SCALE),
  rotaryScale: (config) => config.thin_rotary_scale,
  prepare: (get, shape, rotary) => ({ ...prepareAttention(get, shape, rotary), mlp: null }),
  forward: bakaLayer,
};

/**
 * A Mega layer (Ma et al. 2022; kinds/mega.ts): Mega's EMA + single-head gated attention in the
 * attention branch's place, the elephant MLP beside it on the same norm. Its rotary frequencies
 * (`mega.rot.freqs`, the standard ones) turn the first dim_head features of its queries and keys.
 */
const mega: LayerKind = {
  description:
    "Mega's damped EMA + single-head gated attention in the attention branch's place, with the elephant MLP (Ma et al. 2022)",
  // its keys (one head of mega_z_dim features) are only read by itself; memory none works too
  requires: { memory_source: 'same-layer' },
  tensors: (config, shape) => [
    ...normTensors(shape, 'norm_in', config.dim_model),
    ...megaTensors(config),
    {
      suffix: 'mega.rot.freqs',
      shape: [shape.dimHead / 2],
      init: { kind: 'rotary' },
      trainable: false,
    },
    ...mlpTensors(config, shape),
  ],
  rotaryScale: () => 1,
  prepare: (get, shape, rotary) => {
    if (shape.mega === undefined) throw new Error('mega layer: no Mega sizes in its shape');
    return {
      norm: shape.norm,
      normParameters: normParameters(get, shape, 'norm_in'),
      qkv: null,
      o: null,
      rotary,
      mlp: prepareMlp(get),
      mega: prepareMega(get, shape.mega),
    };
  },
  forward: megaLayer,
};

export const LAYER_KINDS = {
  standard,
  'attention-only': attentionOnly,
  mega,
} as const satisfies Record<string, LayerKind>;

export type LayerKindName = keyof typeof LAYER_KINDS;

export const LAYER_KIND_NAMES = Object.keys(LAYER_KINDS) as [LayerKindName, ...LayerKindName[]];
