// BakaNet: the layer stack, run over the sequence in chunks of n_ctx with XL memory between
// chunks (DESIGN §1.1-1.2).
//
// Shape legend: B batch, S sequence length, T chunk length (<= n_ctx), N = B*T, D dim_model,
// H heads, K dim_head.
//
// Layer:  y = x + attention(LN(x), memory) + mlp(LN(x))   (one LayerNorm feeds both branches)
// Chunk c, layer i reads the memory entry of the previous chunk chosen by the memory source
// ('previous-layer': layer i-1's; 'same-layer': its own) and records its own unrotated k/v.
import * as tf from '@tensorflow/tfjs-core';
import { attention } from './attention';
import type { AttentionContext } from './attention';
import type { BakaConfig } from './config';
import { layerNorm } from './layer-norm';
import { XLMemory } from './memory';
import type { PastMemory } from './memory';
import { gatedMlp } from './mlp';

/** One layer's weights (variables, PyTorch layout). */
export interface LayerWeights {
  normWeight: tf.Tensor1D; // [D]
  normBias: tf.Tensor1D; // [D]
  q: tf.Tensor2D; // [A, D]
  k: tf.Tensor2D; // [A, D]
  v: tf.Tensor2D; // [D, D]
  o: tf.Tensor2D; // [D, D]
  gate: tf.Tensor2D; // [F, D]
  up: tf.Tensor2D; // [F, D]
  down: tf.Tensor2D; // [D, F]
}

/** Weights stacked for fewer, larger matmuls; built once per forward call. */
export interface FusedLayerWeights {
  normWeight: tf.Tensor1D;
  normBias: tf.Tensor1D;
  qkv: tf.Tensor2D; // [2A + D, D]
  o: tf.Tensor2D;
  gateUp: tf.Tensor2D; // [2F, D]
  down: tf.Tensor2D;
}

export function fuseLayer(weights: LayerWeights): FusedLayerWeights {
  return {
    normWeight: weights.normWeight,
    normBias: weights.normBias,
    qkv: tf.concat([weights.q, weights.k, weights.v], 0), // [2A + D, D]
    o: weights.o,
    gateUp: tf.concat([weights.gate, weights.up], 0), // [2F, D]
    down: weights.down,
  };
}

export interface LayerOutput {
  y: tf.Tensor2D; // [N, D]
  k: tf.Tensor4D; // [B, H, T, K] unrotated
  v: tf.Tensor4D; // [B, H, T, Kv]
}

/** One layer on one chunk: x [N, D] -> y [N, D], plus the chunk's k/v for the memory. */
export function bakaLayer(
  x: tf.Tensor2D,
  weights: FusedLayerWeights,
  past: PastMemory | null,
  batch: number,
  length: number,
  start: number,
  context: AttentionContext,
): LayerOutput {
  return tf.tidy(() => {
    const h = layerNorm(x, weights.normWeight, weights.normBias); // [N, D]
    const attended = attention(h, weights.qkv, weights.o, past, batch, length, start, context);
    const y = tf.add(
      tf.add(x, attended.output),
      gatedMlp(h, weights.gateUp, weights.down),
    ) as tf.Tensor2D;
    return { y, k: attended.k, v: attended.v };
  });
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
    let y = tf.reshape(chunk, [batch * length, dimModel]) as tf.Tensor2D; // [N, D]
    const reading = current ?? source;
    const writing: XLMemory | null = useMemory
      ? (current ?? new XLMemory({ nLayers: config.n_layers, source: config.memory_source }))
      : null;
    layers.forEach((weights, index) => {
      const past = reading === null || reading.isEmpty ? null : reading.pastFor(index);
      const output = bakaLayer(y, weights, past, batch, length, start + position, context);
      y = output.y;
      writing?.update(index, output.k, output.v, start + position);
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
