// Norm kinds: what `norm` in the config selects for every layer's input norm (norm_in) and the
// final norm (norm_out). A kind is its parameters (suffixes of the module's state_dict prefix, in
// PyTorch's order) and its function; adding one is an entry in NORM_KINDS (docs/architecture.md
// section 6.2). Kind modules import only types from config.ts, so config.ts can read the registry.
//
// Shape legend: N rows (batch x time), D dim_model.
import * as tf from '@tensorflow/tfjs-core';
import { layerNorm } from '../layer-norm';

/** One tensor of a norm module: `{prefix}.{suffix}` of shape [D]. */
export interface NormParameter {
  suffix: string;
  init: 'ones' | 'zeros';
}

export interface NormKind {
  readonly description: string;
  /** The module's tensors, in state_dict order. */
  readonly parameters: readonly NormParameter[];
  /** x [N, D] and the parameters in `parameters` order -> [N, D]. */
  apply(x: tf.Tensor2D, parameters: readonly tf.Tensor1D[]): tf.Tensor2D;
}

/** T5-style RMSNorm's epsilon (upstream 004). */
export const RMS_NORM_EPSILON = 1e-6;

/** x / sqrt(mean(x^2) + eps) * weight, no mean subtraction and no bias; x [N, D]. */
export function rmsNorm(x: tf.Tensor2D, weight: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const meanSquare = tf.mean(tf.square(x), -1, true); // [N, 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, RMS_NORM_EPSILON))), weight) as tf.Tensor2D;
  });
}

export const NORM_KINDS = {
  layernorm: {
    description: 'LayerNorm (eps 1e-5, weight and bias), upstream 003',
    parameters: [
      { suffix: 'weight', init: 'ones' },
      { suffix: 'bias', init: 'zeros' },
    ],
    apply: (x, [weight, bias]) => layerNorm(x, weight as tf.Tensor1D, bias as tf.Tensor1D),
  },
  rmsnorm: {
    description: 'T5-style RMSNorm (eps 1e-6, weight only), upstream 004',
    parameters: [{ suffix: 'weight', init: 'ones' }],
    apply: (x, [weight]) => rmsNorm(x, weight as tf.Tensor1D),
  },
} as const satisfies Record<string, NormKind>;

export type NormName = keyof typeof NORM_KINDS;

export const NORM_NAMES = Object.keys(NORM_KINDS) as [NormName, ...NormName[]];

export function normKind(name: NormName): NormKind {
  return NORM_KINDS[name];
}
