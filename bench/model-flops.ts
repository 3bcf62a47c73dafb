// Model FLOPs of the BakaLLM forward pass, counted from the config (matmuls only: 2 FLOPs per
// multiply-add; elementwise work, softmax and LayerNorm are not counted, as in the usual MFU
// convention). Training = 3x forward (backward costs two forward passes).
//
// Per token: q, k ([A, D] each), v, o ([D, D]), gate, up ([F, D]), down ([D, F]) per layer, and
// the output projection [V, D]; the embedding is a gather (0 FLOPs). Per chunk of T queries over
// P memory + T current keys: scores 2*T*(P+T)*A and mixing 2*T*(P+T)*D per layer, counted in
// full (the model computes the masked half too). With qk_norm negator the scores run over 2A.
// A Mega layer instead has v_proj [E, D], mx_proj [2D + Z + E, D], h_proj [D, E] and the MLP, and
// one head whose scores run over Z and mixing over E (its EMA is elementwise: not counted).
import { type BakaConfig, sequenceStateKind } from '@baka/model';

/** Forward FLOPs for one sequence of `length` tokens (batch row), chunked by n_ctx with XL memory. */
export function forwardFlops(config: BakaConfig, length: number): number {
  const {
    dim_model: d,
    dim_ff: f,
    dim_attn: a,
    n_layers: layers,
    n_vocab: v,
    n_ctx: chunk,
  } = config;
  const isMega = (layer: number) => config.layer_kinds[layer] === 'mega';
  const { mega_z_dim: z, mega_h_dim: e } = config;
  const layerLinear = (layer: number) =>
    isMega(layer)
      ? e * d + (2 * d + z + e) * d + d * e + 3 * d * f
      : 2 * a * d + 2 * d * d + 3 * d * f;
  let perTokenLinear = 2 * d * v;
  for (let layer = 0; layer < layers; layer++) perTokenLinear += 2 * layerLinear(layer);
  // qk_norm negator: queries and keys are [x ; c - x], so scores run over 2A features
  const scoreWidth = config.qk_norm === 'negator' ? 2 * a : a;
  let attention = 0;
  let previous = 0; // length of the previous chunk (the memory)
  for (let position = 0; position < length; position += chunk) {
    const t = Math.min(chunk, length - position);
    for (let layer = 0; layer < layers; layer++) {
      const reads = previous > 0 && sequenceStateKind(config).attendsToPast(config, layer);
      const keys = (reads ? previous : 0) + t;
      attention += isMega(layer)
        ? 2 * t * keys * z + 2 * t * keys * e
        : 2 * t * keys * scoreWidth + 2 * t * keys * d;
    }
    previous = t;
  }
  return perTokenLinear * length + attention;
}

export function trainingFlops(config: BakaConfig, batch: number, window: number): number {
  return 3 * batch * forwardFlops(config, window);
}

/** Parameters without the embedding table and rotary frequencies (the ones matmuls touch). */
export function matmulParameters(config: BakaConfig): number {
  const { dim_model: d, dim_ff: f, dim_attn: a, n_layers: layers, n_vocab: v } = config;
  const { mega_z_dim: z, mega_h_dim: e } = config;
  let total = d * v;
  for (let layer = 0; layer < layers; layer++) {
    total +=
      config.layer_kinds[layer] === 'mega'
        ? e * d + (2 * d + z + e) * d + d * e + 3 * d * f
        : 2 * a * d + 2 * d * d + 3 * d * f;
  }
  return total;
}
