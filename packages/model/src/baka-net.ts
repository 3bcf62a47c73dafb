// BakaNet: the layer stack, run over the sequence in chunks of n_ctx with XL memory between
// chunks. The same layer code serves generation (generation.ts), which hands every layer a view
// of the KV cache instead of the memory.
//
// Shape legend: B batch, S sequence length, T chunk length (<= n_ctx) or new tokens of a
// generation step, N = B*T, D dim_model, H heads, K dim_head, Kv value head dim.
//
// Layer (kinds/layers.ts):  y = x + attention(norm(x), state) + mlp(norm(x))   (one norm feeds
// both branches, or one each with split_norm; an attention-only layer has no mlp term)
// A layer takes its chunk input and a state view (state in) and returns its output and what it
// wrote (state out); it keeps nothing. What the views hold and what becomes of the writes is the
// sequence-state kind's business (sequence-state.ts; with `xl`, chunk c's layer i views the
// memory entry of chunk c-1 and its unrotated k/v go into the memory for chunk c+1).
import * as tf from '@tensorflow/tfjs-core';
import { attention } from './attention';
import type { AttentionContext, AttentionState, JoinedKeyValues } from './attention';
import type { BakaConfig } from './config';
import type { LayerForward } from './kinds/layers';
import type { RecurrentWeights } from './kinds/block-recurrent';
import type { MambaWeights } from './kinds/mamba';
import type { MegaWeights } from './kinds/mega';
import type { NormKind } from './kinds/norms';
import {
  insertMemoryTokens,
  keptWrites,
  MEMORY_TOKENS_PARAMETER,
  withGroups,
} from './kinds/memory-tokens';
import type { QkNormalisation } from './kinds/qk-norms';
import { insertPauses, pauseRandom, removePauses } from './kinds/pauses';
import { sequenceStateKind } from './kinds/sequence-states';
import type { KeyValues } from './memory';
import { gatedMlp } from './mlp';
import type { SequenceState } from './sequence-state';
import type { RotaryEmbedding } from '@baka/rope';

/** One layer's weights for a forward call (PyTorch layout; q, k, v stacked for one matmul). */
export interface FusedLayerWeights {
  norm: NormKind;
  /** The attention input norm's tensors (norm_in, or attn.norm_in with split_norm) in the norm kind's order. */
  normParameters: tf.Tensor1D[];
  /** split_norm: the MLP's own input norm (mlp.norm_in); absent: the MLP reads normParameters' output. */
  mlpNormParameters?: tf.Tensor1D[];
  /** qk_norm's transformation of q and k (kinds/qk-norms.ts); absent: none. */
  qkNorm?: QkNormalisation;
  /** The stacked attention projections; null for a Mega layer (its own weights are `mega`). */
  qkv: tf.Tensor2D | null; // [2A + D, D]
  o: tf.Tensor2D | null; // [D, D]
  /** The layer's rotary frequencies (model.layers.{i}.attn.rot.freqs) as tables. */
  rotary: RotaryEmbedding;
  /** The gated MLP; null for an attention-only (thin) layer. F = the layer's dim_ff. */
  mlp: { gateUp: tf.Tensor2D; down: tf.Tensor2D } | null; // [2F, D], [D, F]
  /** The layer's Mamba block (kinds/mamba.ts), when it has one. */
  mamba?: MambaWeights;
  /** A Mega layer's EMA and gated-attention weights (kinds/mega.ts). */
  mega?: MegaWeights;
  /** A block-recurrent layer's state weights (kinds/block-recurrent.ts). */
  blockRecurrent?: RecurrentWeights;
  /** Persistent memory k [H, Nm, K], v [H, Nm, Kv] (n_mem_kv, kinds/memory-tokens.ts). */
  persistent?: { k: tf.Tensor3D; v: tf.Tensor3D };
}

/** A layer ready to run: its kind's forward and its weights. */
export interface PreparedLayer {
  forward: LayerForward;
  weights: FusedLayerWeights;
}

/** State in: one layer's view of the sequence state for the chunk (or generation step). */
export interface LayerStateIn {
  /** What attention sees in front of the new tokens, and where their rotary positions start. */
  attention: AttentionState;
  /**
   * The layer's own recurrent state (a Mamba block's conv window and scan state) to continue
   * from: absent where the layer starts every chunk from zero and hands nothing on (upstream
   * 007's full pass); null to start from zero and hand the state after the chunk back; else the
   * state to continue (the previous generation step's, or with mamba_carry_state the previous
   * chunk's).
   */
  recurrent?: RecurrentState | null;
  /**
   * A block-recurrent layer's state [B, S, D] written at the previous chunk, and whether this
   * call computes the next one (the full pass: always; generation: the step that ends the chunk).
   */
  blockState?: { state: tf.Tensor3D; update: boolean };
}

/** A layer's recurrent state: named tensors with the batch rows first. */
export type RecurrentState = Readonly<Record<string, tf.Tensor>>;

/** State out: what one layer hands back for the sequence state. */
export interface LayerStateOut {
  /** The new tokens' unrotated k [B, H, T, K] and v [B, H, T, Kv] (what the XL memory keeps). */
  written: KeyValues;
  /**
   * [past ; written] as attention joined them, [B, H, P+T, *], when the state in asked for it
   * (with the keys rotated as well, when attention could hand them on).
   */
  attended: JoinedKeyValues | null;
  /** The layer's recurrent state after the step, when the state in had a `recurrent` entry. */
  recurrent?: RecurrentState;
  /** A block-recurrent layer's next state [B, S, D], when the state in asked for the update. */
  blockState?: tf.Tensor3D;
}

export interface LayerOutput {
  y: tf.Tensor2D; // [N, D]
  state: LayerStateOut;
}

/** The standard / attention-only layer on one chunk: x [N, D] and its state view -> y [N, D] and its state out. */
export function bakaLayer(
  x: tf.Tensor2D,
  weights: FusedLayerWeights,
  state: LayerStateIn,
  batch: number,
  length: number,
  context: AttentionContext,
): LayerOutput {
  // Each layer rotates with its own frequencies (a thin layer's are scaled).
  const layerContext =
    weights.rotary === context.rotary ? context : { ...context, rotary: weights.rotary };
  const { qkv, o } = weights;
  if (qkv === null || o === null) throw new Error('bakaLayer: the layer has no attention weights');
  const [y, k, v, keys, values, rotatedK] = tf.tidy((): tf.Tensor[] => {
    const h = weights.norm.apply(x, weights.normParameters); // [N, D]
    const { output, written, attended } = attention(
      h,
      qkv,
      o,
      state.attention,
      batch,
      length,
      layerContext,
      weights.qkNorm,
      weights.persistent,
    );
    const withAttention = tf.add(x, output); // [N, D]
    const { mlp, mlpNormParameters } = weights;
    // split_norm: the MLP normalises x with its own norm
    const hMlp = mlp && mlpNormParameters ? weights.norm.apply(x, mlpNormParameters) : h; // [N, D]
    const sum = mlp ? tf.add(withAttention, gatedMlp(hMlp, mlp.gateUp, mlp.down)) : withAttention;
    const joined = attended === null ? [] : [attended.k, attended.v];
    const rotated = attended?.rotatedK === undefined ? [] : [attended.rotatedK];
    return [sum, written.k, written.v, ...joined, ...rotated];
  }) as [tf.Tensor2D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D?, tf.Tensor4D?, tf.Tensor4D?];
  const attended =
    keys === undefined || values === undefined
      ? null
      : { k: keys, v: values, ...(rotatedK === undefined ? {} : { rotatedK }) };
  return { y, state: { written: { k, v }, attended } };
}

export interface StackOutput {
  y: tf.Tensor2D; // [N, D]
  /** Each layer's state out, layer by layer. */
  states: LayerStateOut[];
}

/**
 * Every layer in order on one chunk (or generation step) x [N, D], layer i seeing states[i].
 * The full pass and generation both run through here.
 */
export function layerStack(
  x: tf.Tensor2D,
  layers: readonly PreparedLayer[],
  states: readonly LayerStateIn[],
  batch: number,
  length: number,
  context: AttentionContext,
): StackOutput {
  if (states.length !== layers.length) {
    throw new Error(`layerStack: ${layers.length} layers but ${states.length} state views`);
  }
  let y = x;
  const out = layers.map(({ forward, weights }, index) => {
    const output = forward(y, weights, states[index] as LayerStateIn, batch, length, context);
    y = output.y;
    return output.state;
  });
  return { y, states: out };
}

export interface NetResult {
  hidden: tf.Tensor3D; // [B, S, D]
  /** The sequence state after the last chunk (tensors in the caller's scope); null when none is carried. */
  memory: SequenceState | null;
}

/**
 * Runs x [B, S, D] through the layers chunk by chunk, the config's sequence-state kind carrying
 * state from chunk to chunk. `memory` (from an earlier call, may be null) is read, never
 * modified; the returned state is in the caller's scope, like `hidden`. `parameters` are the
 * model's tensors by name (the pause vector, a kind's own tensors); `layoutSeed` picks the draws
 * of the random pause layout (is_pause_pos_random), the same for the same seed.
 *
 * A chunk of T tokens becomes W slots with its pauses or memory-token groups, then whatever the
 * kind adds (RMT memory tokens); positions count every slot. The outputs come back at the token
 * positions.
 */
export function bakaNet(
  x: tf.Tensor3D,
  layers: readonly PreparedLayer[],
  config: BakaConfig,
  context: AttentionContext,
  memory: SequenceState | null,
  parameters?: ReadonlyMap<string, tf.Tensor>,
  layoutSeed?: number,
): NetResult {
  const [batch, total, dimModel] = x.shape;
  const random = pauseRandom(config, layoutSeed); // the random pause layout's draws, if any
  const pass = sequenceStateKind(config).pass(config, memory, batch, parameters);
  const pause = (parameters?.get('model.pause.pause_emb') as tf.Tensor1D | undefined) ?? null;
  if (config.n_pauses > 0 && pause === null) throw new Error('bakaNet: no model.pause.pause_emb');
  const memoryTokens = parameters?.get(MEMORY_TOKENS_PARAMETER) as tf.Tensor2D | undefined;
  const outputs: tf.Tensor2D[] = [];
  let chunkStart = pass.start;
  for (let position = 0; position < total; position += config.n_ctx) {
    const length = Math.min(config.n_ctx, total - position);
    const chunk = length === total ? x : tf.slice(x, [0, position, 0], [batch, length, dimModel]); // [B, T, D]
    const paused =
      config.n_memory_tokens > 0
        ? insertMemoryTokens(chunk as tf.Tensor3D, memoryTokens, config) // [B, W, D]
        : { ...insertPauses(chunk as tf.Tensor3D, pause, config, random), groups: [], xl: null };
    const entered = pass.enter ? pass.enter(paused.x) : paused.x; // [B, W', D]
    const width = entered.shape[1];
    const input = tf.reshape(entered, [batch * width, dimModel]) as tf.Tensor2D; // [N, D]
    const views = withGroups(pass.views(chunkStart), paused.groups);
    const { y, states } = layerStack(input, layers, views, batch, width, context);
    // memory tokens kept out of the XL memory: what it keeps ends where the chunk ends
    const kept = paused.xl === null ? width : paused.xl.length;
    pass.write(keptWrites(states, paused.xl), chunkStart + width - kept);
    chunkStart += width;
    let out = tf.reshape(y, [batch, width, dimModel]) as tf.Tensor3D;
    if (pass.leave) out = pass.leave(out); // [B, W, D]
    out = removePauses(out, paused.tokens); // [B, T, D]
    outputs.push(tf.reshape(out, [batch * length, dimModel]) as tf.Tensor2D);
  }
  const joined =
    outputs.length === 1 ? (outputs[0] as tf.Tensor2D) : concatChunks(outputs, batch, dimModel);
  return { hidden: tf.reshape(joined, [batch, total, dimModel]), memory: pass.result() };
}

/** Chunk outputs [B*T_c, D] -> [B, S, D] rows in (batch, time) order. */
function concatChunks(outputs: tf.Tensor2D[], batch: number, dimModel: number): tf.Tensor3D {
  const parts = outputs.map((output) =>
    tf.reshape(output, [batch, output.shape[0] / batch, dimModel]),
  ); // [B, T_c, D]
  return tf.concat(parts, 1) as tf.Tensor3D; // [B, S, D]
}
