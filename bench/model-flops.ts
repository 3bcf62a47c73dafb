// Model FLOPs of the BakaLLM forward pass, counted from the config (matmuls only: 2 FLOPs per
// multiply-add; elementwise work, softmax, norms and the Mamba/EMA scans are not counted, as in
// the usual MFU convention). Training = 3x forward (backward costs two forward passes).
//
// A chunk of t tokens runs as W slots: the tokens plus their pauses (n_pauses), memory-token
// groups (n_memory_tokens every memory_tokens_every) and RMT tokens (n_rmt_tokens written at the
// end, and read at the front from the second chunk on). Per slot and layer: q, k ([A, D] each),
// v, o ([D, D]) and the layer's MLP gate, up ([F_i, D]), down ([D, F_i]) with F_i its
// layer_dim_ff (an attention-only layer has no MLP); a Mamba block adds in_proj [2Di, D], x_proj
// [R + 2S, Di], dt_proj [Di, R], out_proj [D, Di]. A Mega layer instead has v_proj [E, D],
// mx_proj [2D + Z + E, D], h_proj [D, E] and the MLP, and one head whose scores run over Z and
// mixing over E. Attention per layer: W queries over the keys it reads (the previous chunk's
// stored slots when the layer attends to the past, the chunk's W slots, n_mem_kv persistent
// keys), scores 2*W*keys*A (2A with qk_norm negator) and mixing 2*W*keys*D, counted in full (the
// model computes the masked part too). A block-recurrent layer adds, per chunk, the tokens' read
// of its S state vectors (cross_q, cross_o, attention over S keys) and the state's update (k, v,
// q, state_cross_q, o and the LSTM gates on S rows; attention over S and over the layer's keys).
// The output projection [V, D] runs on the t tokens only; the embedding is a gather (0 FLOPs).
import { type BakaConfig, layerDimFf, sequenceStateKind } from '@baka/model';

/** The MAMBA_* shape constants of @baka/model's Mamba block (expand 2, d_state 16). */
const MAMBA_EXPAND = 2;
const MAMBA_D_STATE = 16;

/** Slots of a chunk of `tokens` tokens: the tokens, their pauses and memory-token groups. */
export function chunkSlots(config: BakaConfig, tokens: number): number {
  let slots = tokens;
  if (config.n_pauses > 0) {
    // the fixed layout: pause i at step * i for step * i <= tokens
    const step = Math.floor(config.n_ctx / config.n_pauses);
    slots += Math.min(config.n_pauses, Math.floor(tokens / step) + 1);
  }
  if (config.n_memory_tokens > 0) {
    const every = config.memory_tokens_every || config.n_ctx;
    slots += Math.ceil(tokens / every) * config.n_memory_tokens;
  }
  return slots;
}

/** Per-slot matmul FLOPs of layer `layer` (its projections, MLP and Mamba block). */
function layerSlotFlops(config: BakaConfig, layer: number): number {
  const { dim_model: d, dim_attn: a } = config;
  const f = layerDimFf(config, layer);
  const kind = config.layer_kinds[layer] ?? 'standard';
  const mlp = kind === 'attention-only' ? 0 : 3 * d * f;
  let weights: number;
  if (kind === 'mega') {
    const { mega_z_dim: z, mega_h_dim: e } = config;
    weights = e * d + (2 * d + z + e) * d + d * e + mlp;
  } else {
    weights = 2 * a * d + 2 * d * d + mlp;
  }
  const n = config.mamba_each_nth_layer;
  if (n > 0 && layer % n === 0) {
    const inner = MAMBA_EXPAND * d;
    const rank = Math.ceil(d / 16);
    weights += 2 * inner * d + (rank + 2 * MAMBA_D_STATE) * inner + inner * rank + d * inner;
  }
  return 2 * weights;
}

/** Forward FLOPs for one sequence of `length` tokens (batch row), chunked by n_ctx with XL memory. */
export function forwardFlops(config: BakaConfig, length: number): number {
  const { dim_model: d, dim_attn: a, n_layers: layers, n_vocab: v, n_ctx: chunk } = config;
  const scoreWidth = config.qk_norm === 'negator' ? 2 * a : a;
  const states = config.n_state_vectors;
  const rmt = config.n_rmt_tokens;
  const attends = sequenceStateKind(config);
  let total = 0;
  let stored = 0; // slots of the previous chunk in the XL memory
  for (let position = 0; position < length; position += chunk) {
    const t = Math.min(chunk, length - position);
    const own = chunkSlots(config, t);
    const slots = own + (rmt > 0 ? rmt + (position > 0 ? rmt : 0) : 0);
    total += 2 * d * v * t; // the output projection, tokens only
    for (let layer = 0; layer < layers; layer++) {
      total += slots * layerSlotFlops(config, layer);
      const past = position > 0 && attends.attendsToPast(config, layer) ? stored : 0;
      const keys = past + slots + config.n_mem_kv;
      if (config.layer_kinds[layer] === 'mega') {
        const { mega_z_dim: z, mega_h_dim: e } = config;
        total += 2 * slots * keys * z + 2 * slots * keys * e;
      } else {
        total += 2 * slots * keys * scoreWidth + 2 * slots * keys * d;
      }
      if (config.recurrent_layers.includes(layer)) {
        // tokens read the state: cross_q, attention over S, cross_o
        total += slots * (2 * a * d + 2 * states * a + 2 * states * d + 2 * d * d);
        // the state's update: k, v, q, state_cross_q on S rows, attention over S and over the
        // layer's keys, o [D, 2D], and the LSTM's two [D, 2D] gates
        const gates = config.state_gate === 'lstm' ? 2 : 0;
        const rows = 2 * (3 * a * d + d * d + (1 + gates) * 2 * d * d);
        const attention = 2 * states * (a + d) + 2 * (past + slots) * (a + d);
        total += states * (rows + attention);
      }
    }
    // the next chunk's XL memory: every slot, or the tokens' alone (memory tokens kept out)
    stored = config.n_memory_tokens > 0 && !config.memory_tokens_in_xl ? t : slots;
  }
  return total;
}

export function trainingFlops(config: BakaConfig, batch: number, window: number): number {
  return 3 * batch * forwardFlops(config, window);
}
