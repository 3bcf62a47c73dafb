// Parameter names, shapes and initialisation, in upstream's PyTorch state_dict order and layout
// (Linear weight = [out, in]). Shape legend: D dim_model, A dim_attn, F dim_ff, V n_vocab,
// K dim_head.
import type { BakaConfig } from './config';
import { dimHead, layerDimFf, layerKind, THIN_ATTENTION_INIT_SCALE } from './config';
import { deriveSeed, fillNormal, fillUniform } from './random';
import { inverseFrequencies } from '@baka/rope';

export type Initialiser =
  // torch nn.Linear: U(-1/sqrt(fanIn), 1/sqrt(fanIn)), times `scale` (thin layers: 1e-4)
  | { kind: 'linear'; fanIn: number; scale?: number }
  | { kind: 'normal' } // torch nn.Embedding: N(0, 1)
  | { kind: 'ones' }
  | { kind: 'zeros' }
  | { kind: 'rotary'; scale?: number }; // the rotary inverse frequencies x scale (not trained)

export interface ParameterSpec {
  name: string;
  shape: number[];
  init: Initialiser;
  trainable: boolean;
}

/** Every tensor of the state_dict, in PyTorch's order. */
export function parameterSpecs(config: BakaConfig): ParameterSpec[] {
  const { dim_model: D, dim_attn: A, n_vocab: V } = config;
  const specs: ParameterSpec[] = [];
  const add = (name: string, shape: number[], init: Initialiser, trainable = true) =>
    specs.push({ name, shape, init, trainable });
  for (let i = 0; i < config.n_layers; i++) {
    const prefix = `model.layers.${i}`;
    // A thin (attention-only) layer: upstream scales its attention parameters by 1e-4 at init,
    // the rotary frequencies included (config.thin_rotary_scale), and it has no MLP.
    const thin = layerKind(config, i) === 'attention-only';
    const attention = {
      kind: 'linear',
      fanIn: D,
      ...(thin ? { scale: THIN_ATTENTION_INIT_SCALE } : {}),
    } as const;
    add(`${prefix}.norm_in.weight`, [D], { kind: 'ones' });
    add(`${prefix}.norm_in.bias`, [D], { kind: 'zeros' });
    add(`${prefix}.attn.q.weight`, [A, D], attention);
    add(`${prefix}.attn.k.weight`, [A, D], attention);
    add(`${prefix}.attn.v.weight`, [D, D], attention);
    add(`${prefix}.attn.o.weight`, [D, D], attention);
    add(
      `${prefix}.attn.rot.freqs`,
      [dimHead(config) / 2],
      { kind: 'rotary', ...(thin ? { scale: config.thin_rotary_scale } : {}) },
      false,
    );
    if (thin) continue;
    const F = layerDimFf(config, i);
    add(`${prefix}.mlp.fc_gate.weight`, [F, D], { kind: 'linear', fanIn: D });
    add(`${prefix}.mlp.fc_up.weight`, [F, D], { kind: 'linear', fanIn: D });
    add(`${prefix}.mlp.fc_down.weight`, [D, F], { kind: 'linear', fanIn: F });
  }
  add('vocab_in.weight', [V, D], { kind: 'normal' });
  add('norm_out.weight', [D], { kind: 'ones' });
  add('norm_out.bias', [D], { kind: 'zeros' });
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
    case 'normal':
      return fillNormal(out, 1, deriveSeed(seed, index));
    case 'ones':
      return out.fill(1);
    case 'zeros':
      return out;
    case 'rotary':
      return inverseFrequencies(dimHead(config), config.rope_theta, spec.init.scale ?? 1);
  }
}
