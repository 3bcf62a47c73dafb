// Parameter names, shapes and initialisation, in upstream's PyTorch state_dict order and layout
// (Linear weight = [out, in]). Shape legend: D dim_model, A dim_attn, F dim_ff, V n_vocab,
// K dim_head.
import type { BakaConfig } from './config';
import { dimHead, layerDimFf, layerKind } from './config';
import { LAYER_KINDS } from './kinds/layers';
import type { LayerKind, LayerShape } from './kinds/layers';
import { isRecurrent, withRecurrence } from './kinds/block-recurrent';
import { hasMamba, mambaDims, withMamba } from './kinds/mamba';
import { MEMORY_TOKENS_PARAMETER } from './kinds/memory-tokens';
import { megaDims } from './kinds/mega';
import { NORM_KINDS } from './kinds/norms';
import { QK_NORM_KINDS, qkNormShape } from './kinds/qk-norms';
import { deriveSeed, fillNormal, fillUniform } from './random';
import { inverseFrequencies } from '@baka/rope';

export type Initialiser =
  // torch nn.Linear: U(-1/sqrt(fanIn), 1/sqrt(fanIn)), times `scale` (thin layers: 1e-4)
  | { kind: 'linear'; fanIn: number; scale?: number }
  // torch nn.Embedding: N(0, 1); Mega's EMA and q/k affine: N(mean, std^2)
  | { kind: 'normal'; std?: number; mean?: number }
  // Mega's EMA beta [D, N]: N(0, 0.02^2) plus +1, -1, +1, ... along the EMA dimensions
  | { kind: 'mega-ema-beta' }
  | { kind: 'ones' }
  | { kind: 'zeros' }
  | { kind: 'constant'; value: number } // every entry the same (qk_norm l2's learned scale)
  | { kind: 'rotary'; scale?: number } // the rotary inverse frequencies x scale (not trained)
  // Mamba's A_log [Di, S]: every row log(1..S) (S4D-real)
  | { kind: 'mamba-a-log' }
  // Mamba's dt_proj.bias: softplus^-1(dt), dt log-uniform in [min, max], at least floor
  | { kind: 'mamba-dt-bias'; min: number; max: number; floor: number };

export interface ParameterSpec {
  name: string;
  shape: number[];
  init: Initialiser;
  trainable: boolean;
}

/** Layer i's shape facts for its kind (kinds/layers.ts). */
export function layerShape(config: BakaConfig, layer: number): LayerShape {
  return {
    layer,
    dimFf: layerDimFf(config, layer),
    dimHead: dimHead(config),
    norm: NORM_KINDS[config.norm],
    splitNorm: config.split_norm,
    qkNorm: QK_NORM_KINDS[config.qk_norm],
    qkNormShape: qkNormShape(config),
    ...(hasMamba(config, layer) ? { mamba: mambaDims(config) } : {}),
    ...(layerKind(config, layer) === 'mega' ? { mega: megaDims(config) } : {}),
    ...(isRecurrent(config, layer) ? { recurrent: config.state_gate } : {}),
    ...(config.n_mem_kv > 0 ? { persistentMemory: true } : {}),
  };
}

const WITH_MAMBA = new Map<LayerKind, LayerKind>();
const WITH_RECURRENCE = new Map<LayerKind, LayerKind>();

/** `compose(kind)`, made once per kind. */
function composed(
  cache: Map<LayerKind, LayerKind>,
  kind: LayerKind,
  compose: (kind: LayerKind) => LayerKind,
): LayerKind {
  let result = cache.get(kind);
  if (result === undefined) {
    result = compose(kind);
    cache.set(kind, result);
  }
  return result;
}

/**
 * Layer i's kind: `layer_kinds`' entry, with a recurrent state where recurrent_layers says
 * (its cross term joins the parallel sum), then a Mamba block where mamba_each_nth_layer says.
 */
export function layerKindOf(config: BakaConfig, layer: number): LayerKind {
  let kind: LayerKind = LAYER_KINDS[layerKind(config, layer)];
  if (isRecurrent(config, layer)) kind = composed(WITH_RECURRENCE, kind, withRecurrence);
  if (hasMamba(config, layer)) kind = composed(WITH_MAMBA, kind, withMamba);
  return kind;
}

/** Every tensor of the state_dict, in PyTorch's order. */
export function parameterSpecs(config: BakaConfig): ParameterSpec[] {
  const { dim_model: D, n_vocab: V } = config;
  const specs: ParameterSpec[] = [];
  const add = (name: string, shape: number[], init: Initialiser, trainable = true) =>
    specs.push({ name, shape, init, trainable });
  for (let i = 0; i < config.n_layers; i++) {
    const kind = layerKindOf(config, i);
    for (const tensor of kind.tensors(config, layerShape(config, i))) {
      add(`model.layers.${i}.${tensor.suffix}`, tensor.shape, tensor.init, tensor.trainable);
    }
  }
  // upstream's BakaNet modules after the layers: the pause vector (004) and the RMT tokens (005)
  if (config.n_pauses > 0) add('model.pause.pause_emb', [D], { kind: 'normal' });
  if (config.n_rmt_tokens > 0)
    add('model.rmt.rmt_tokens', [config.n_rmt_tokens, D], { kind: 'normal' });
  // the Memory Transformer's tokens (kinds/memory-tokens.ts)
  if (config.n_memory_tokens > 0)
    add(MEMORY_TOKENS_PARAMETER, [config.n_memory_tokens, D], { kind: 'normal' });
  add('vocab_in.weight', [V, D], { kind: 'normal' });
  for (const { suffix, init } of NORM_KINDS[config.norm].parameters) {
    add(`norm_out.${suffix}`, [D], { kind: init });
  }
  add('vocab_out.weight', [V, D], { kind: 'linear', fanIn: D });
  return specs;
}

/** Initial values for one parameter; `index` is its position in the state_dict (seed stream). */
export function initialValues(
  config: BakaConfig,
  spec: ParameterSpec,
  seed: number,
  index: number,
): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  switch (spec.init.kind) {
    case 'linear': {
      const bound = 1 / Math.sqrt(spec.init.fanIn);
      fillUniform(out, -bound, bound, deriveSeed(seed, index));
      const scale = spec.init.scale;
      return scale === undefined ? out : out.map((value) => value * scale);
    }
    case 'normal': {
      const { std = 1, mean = 0 } = spec.init;
      fillNormal(out, std, deriveSeed(seed, index));
      return mean === 0 ? out : out.map((value) => value + mean);
    }
    case 'mega-ema-beta': {
      const dims = spec.shape[1] as number;
      fillNormal(out, 0.02, deriveSeed(seed, index));
      return out.map((value, i) => value + ((i % dims) % 2 === 0 ? 1 : -1));
    }
    case 'ones':
      return out.fill(1);
    case 'zeros':
      return out;
    case 'constant':
      return out.fill(spec.init.value);
    case 'rotary':
      return inverseFrequencies(dimHead(config), config.rope_theta, spec.init.scale ?? 1);
    case 'mamba-a-log': {
      const states = spec.shape[1] as number;
      return out.map((_, i) => Math.log((i % states) + 1));
    }
    case 'mamba-dt-bias': {
      const { min, max, floor } = spec.init;
      fillUniform(out, 0, 1, deriveSeed(seed, index));
      return out.map((u) => {
        const dt = Math.max(Math.exp(u * (Math.log(max) - Math.log(min)) + Math.log(min)), floor);
        return dt + Math.log(-Math.expm1(-dt)); // softplus^-1
      });
    }
  }
}
