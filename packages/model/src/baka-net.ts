// BakaNet: the layer stack, run over the sequence in chunks of n_ctx with XL memory between
// chunks. The same layer code serves generation (generation.ts), which hands every layer a view
// of the KV cache instead of the memory.
//
// Shape legend: B batch, S sequence length, T chunk length (<= n_ctx) or new tokens of a
// generation step, N = B*T, D dim_model, H heads, K dim_head, Kv value head dim.
//
// Layer:  y = x + attention(LN(x), state) + mlp(LN(x))   (one LayerNorm feeds both branches;
// an attention-only layer has no mlp term)
// A layer takes its chunk input and a state view (state in) and returns its output and what it
// wrote (state out); it keeps nothing. In the full pass, chunk c's layer i views the memory entry
// of chunk c-1 chosen by the memory source ('previous-layer': layer i-1's; 'same-layer': its
// own) and writes its own unrotated k/v into the memory for chunk c+1.
import * as tf from '@tensorflow/tfjs-core';
import { attention } from './attention';
import type { AttentionContext, AttentionState } from './attention';
import type { BakaConfig, PositionPolicy } from './config';
import { layerNorm } from './layer-norm';
import { positions, XLMemory } from './memory';
import type { KeyValues } from './memory';
import { gatedMlp } from './mlp';
import type { RotaryEmbedding } from '@baka/rope';

/** One layer's weights (variables, PyTorch layout) and its rotary embedding. */
export interface LayerWeights {
  normWeight: tf.Tensor1D; // [D]
  normBias: tf.Tensor1D; // [D]
  q: tf.Tensor2D; // [A, D]
  k: tf.Tensor2D; // [A, D]
  v: tf.Tensor2D; // [D, D]
  o: tf.Tensor2D; // [D, D]
  /** The layer's rotary frequencies (model.layers.{i}.attn.rot.freqs) as tables. */
  rotary: RotaryEmbedding;
  /** The gated MLP; null for an attention-only (thin) layer. F = the layer's dim_ff. */
  mlp: { gate: tf.Tensor2D; up: tf.Tensor2D; down: tf.Tensor2D } | null; // [F, D], [F, D], [D, F]
}

/** Weights stacked for fewer, larger matmuls; built once per forward call. */
export interface FusedLayerWeights {
  normWeight: tf.Tensor1D;
  normBias: tf.Tensor1D;
  qkv: tf.Tensor2D; // [2A + D, D]
  o: tf.Tensor2D;
  rotary: RotaryEmbedding;
  mlp: { gateUp: tf.Tensor2D; down: tf.Tensor2D } | null; // [2F, D], [D, F]
}

export function fuseLayer(weights: LayerWeights): FusedLayerWeights {
  const { mlp } = weights;
  return {
    normWeight: weights.normWeight,
    normBias: weights.normBias,
    qkv: tf.concat([weights.q, weights.k, weights.v], 0), // [2A + D, D]
    o: weights.o,
    rotary: weights.rotary,
    mlp: mlp && { gateUp: tf.concat([mlp.gate, mlp.up], 0), down: mlp.down }, // [2F, D]
  };
}

/** State in: one layer's view of the sequence state for the chunk (or generation step). */
export interface LayerStateIn {
  /** What attention sees in front of the new tokens, and where their rotary positions start. */
  attention: AttentionState;
}

/** State out: what one layer hands back for the sequence state. */
export interface LayerStateOut {
  /** The new tokens' unrotated k [B, H, T, K] and v [B, H, T, Kv] (what the XL memory keeps). */
  written: KeyValues;
  /** [past ; written] as attention joined them, [B, H, P+T, *], when the state in asked for it. */
  attended: KeyValues | null;
}

export interface LayerOutput {
  y: tf.Tensor2D; // [N, D]
  state: LayerStateOut;
}

/** One layer on one chunk: x [N, D] and its state view -> y [N, D] and its state out. */
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
  const [y, k, v, keys, values] = tf.tidy((): tf.Tensor[] => {
    const h = layerNorm(x, weights.normWeight, weights.normBias); // [N, D]
    const { output, written, attended } = attention(
      h,
      weights.qkv,
      weights.o,
      state.attention,
      batch,
      length,
      layerContext,
    );
    const withAttention = tf.add(x, output); // [N, D]
    const { mlp } = weights;
    const sum = mlp ? tf.add(withAttention, gatedMlp(h, mlp.gateUp, mlp.down)) : withAttention;
    const joined = attended === null ? [] : [attended.k, attended.v];
    return [sum, written.k, written.v, ...joined];
  }) as [tf.Tensor2D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D?, tf.Tensor4D?];
  const attended = keys === undefined || values === undefined ? null : { k: keys, v: values };
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
  layers: readonly FusedLayerWeights[],
  states: readonly LayerStateIn[],
  batch: number,
  length: number,
  context: AttentionContext,
): StackOutput {
  if (states.length !== layers.length) {
    throw new Error(`layerStack: ${layers.length} layers but ${states.length} state views`);
  }
  let y = x;
  const out = layers.map((weights, index) => {
    const output = bakaLayer(y, weights, states[index] as LayerStateIn, batch, length, context);
    y = output.y;
    return output.state;
  });
  return { y, states: out };
}

/**
 * Layer `layer`'s view of an XL memory for a chunk of the full pass starting at document
 * position `start` (an empty or absent memory: no past).
 */
export function memoryState(
  memory: XLMemory | null,
  layer: number,
  start: number,
  policy: PositionPolicy,
): LayerStateIn {
  const entry = memory === null || memory.isEmpty ? null : memory.pastFor(layer);
  const pastLength = entry === null ? 0 : entry.k.shape[2];
  const { keyOffset } = positions(policy, pastLength, 0, start);
  const past = entry === null ? null : { k: entry.k, v: entry.v };
  return { attention: { past, keyOffset, returnJoined: false } };
}

export interface NetResult {
  hidden: tf.Tensor3D; // [B, S, D]
  memory: XLMemory | null;
}

/**
 * Runs x [B, S, D] through the layers chunk by chunk. `memory` (from an earlier call, may be
 * null) is read, never modified; the returned memory holds the last chunk's k/v (tensors owned
 * by the caller's scope, like `hidden`). With config.memory 'none' every chunk is independent
 * and the returned memory is null.
 */
export function bakaNet(
  x: tf.Tensor3D,
  layers: readonly FusedLayerWeights[],
  config: BakaConfig,
  context: AttentionContext,
  memory: XLMemory | null,
): NetResult {
  const [batch, total, dimModel] = x.shape;
  const useMemory = config.memory === 'xl';
  const start = useMemory && memory !== null ? memory.end : 0;
  const source = useMemory ? memory : null;
  if (source !== null && !source.isEmpty && source.batchSize !== batch) {
    throw new Error(`bakaNet: memory has ${source.batchSize} rows but the input has ${batch}`);
  }
  let current: XLMemory | null = null;
  const outputs: tf.Tensor2D[] = [];
  for (let position = 0; position < total; position += config.n_ctx) {
    const length = Math.min(config.n_ctx, total - position);
    const chunk = length === total ? x : tf.slice(x, [0, position, 0], [batch, length, dimModel]); // [B, T, D]
    const input = tf.reshape(chunk, [batch * length, dimModel]) as tf.Tensor2D; // [N, D]
    const reading = current ?? source;
    const writing: XLMemory | null = useMemory
      ? (current ?? new XLMemory({ nLayers: config.n_layers, source: config.memory_source }))
      : null;
    const states = layers.map((_, index) =>
      memoryState(reading, index, start + position, config.position_policy),
    );
    const { y, states: out } = layerStack(input, layers, states, batch, length, context);
    out.forEach(({ written }, index) => {
      writing?.update(index, written.k, written.v, start + position);
    });
    current = writing;
    outputs.push(y);
  }
  const joined =
    outputs.length === 1 ? (outputs[0] as tf.Tensor2D) : concatChunks(outputs, batch, dimModel);
  return { hidden: tf.reshape(joined, [batch, total, dimModel]), memory: current };
}

/** Chunk outputs [B*T_c, D] -> [B, S, D] rows in (batch, time) order. */
function concatChunks(outputs: tf.Tensor2D[], batch: number, dimModel: number): tf.Tensor3D {
  const parts = outputs.map((output) =>
    tf.reshape(output, [batch, output.shape[0] / batch, dimModel]),
  ); // [B, T_c, D]
  return tf.concat(parts, 1) as tf.Tensor3D; // [B, S, D]
}
