// Incremental generation: a KV cache inside the current chunk and XL memory beyond it, so each
// new token costs one position per layer while the numbers equal a full recomputation
// (BakaCausalLM.forward over the whole sequence).
//
// Shape legend: H heads, K dim_head, Kv value head dim, D dim_model, V vocab, n new tokens,
// t tokens already in the current chunk, P memory length.
import * as tf from '@tensorflow/tfjs-core';
import { fromHeads, toHeads } from './attention';
import type { AttentionContext } from './attention';
import { fuseLayer } from './baka-net';
import type { FusedLayerWeights } from './baka-net';
import type { BakaCausalLM } from './causal-lm';
import { ModelError } from './errors';
import { layerNorm } from './layer-norm';
import { positions, XLMemory } from './memory';
import { gatedMlp } from './mlp';
import { mulberry32 } from './random';
import { checkSamplingOptions, sampleToken } from './sampling';
import type { SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to generate. */
  maxNewTokens: number;
  /** Seed of the sampling PRNG (default 0); the same seed gives the same tokens. */
  seed?: number;
  /** Called with each new token as soon as it is chosen (streaming). */
  onToken?: (id: number) => void;
  /** Stop after generating any of these ids (it is included in the result). */
  stopTokens?: readonly number[];
}

/**
 * Generation state for one sequence (batch 1). Owns its tensors: call dispose().
 * `append(ids)` feeds tokens and returns the logits [V] after the last one.
 */
export class IncrementalDecoder {
  readonly #model: BakaCausalLM;
  readonly #layers: FusedLayerWeights[];
  readonly #context: AttentionContext;
  #memory: XLMemory | null = null;
  #chunkStart = 0;
  #chunkK: (tf.Tensor4D | null)[]; // per layer [1, H, t, K], unrotated
  #chunkV: (tf.Tensor4D | null)[]; // per layer [1, H, t, Kv]
  #chunkLength = 0;

  constructor(model: BakaCausalLM) {
    this.#model = model;
    this.#layers = Array.from({ length: model.config.n_layers }, (_, index) => {
      const fused = fuseLayer(model.layerWeights(index));
      tf.keep(fused.qkv);
      tf.keep(fused.gateUp);
      return fused;
    });
    this.#context = model.attentionContext();
    this.#chunkK = new Array(model.config.n_layers).fill(null);
    this.#chunkV = new Array(model.config.n_layers).fill(null);
  }

  /** Number of tokens consumed so far. */
  get position(): number {
    return this.#chunkStart + this.#chunkLength;
  }

  /** Feeds token ids; returns the next-token logits after the last one ([V], float32). */
  append(ids: readonly number[]): Float32Array {
    const { n_ctx: chunkSize, n_vocab: vocab } = this.#model.config;
    if (ids.length === 0) throw new ModelError('IncrementalDecoder.append: no tokens given');
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ModelError(`token id ${id} is outside the vocabulary 0..${vocab - 1}`);
      }
    }
    let logits: Float32Array | null = null;
    let offset = 0;
    while (offset < ids.length) {
      const room = chunkSize - this.#chunkLength;
      const piece = ids.slice(offset, offset + room);
      offset += piece.length;
      const last = offset === ids.length;
      logits = this.#extend(piece, last);
      if (this.#chunkLength === chunkSize) this.#closeChunk();
    }
    return logits as Float32Array;
  }

  // Runs `ids` (fitting in the current chunk) through the layers; logits of the last one if asked.
  #extend(ids: readonly number[], wantLogits: boolean): Float32Array | null {
    const model = this.#model;
    const config = model.config;
    const count = ids.length;
    const useMemory = config.memory === 'xl' && this.#memory !== null;
    const result = tf.tidy(() => {
      const idTensor = tf.tensor2d([Array.from(ids)], [1, count], 'int32');
      let x = tf.reshape(model.embed(idTensor), [count, config.dim_model]) as tf.Tensor2D; // [n, D]
      const updates: tf.Tensor4D[] = [];
      this.#layers.forEach((weights, index) => {
        const past = useMemory ? (this.#memory as XLMemory).pastFor(index) : null;
        const h = layerNorm(x, weights.normWeight, weights.normBias); // [n, D]
        const { output, k, v } = this.#attend(h, weights, index, past, count);
        x = tf.add(tf.add(x, output), gatedMlp(h, weights.gateUp, weights.down)) as tf.Tensor2D; // [n, D]
        updates.push(k, v);
      });
      if (!wantLogits) return updates;
      return [...updates, model.head(tf.slice(x, [count - 1, 0], [1, config.dim_model]))]; // logits [1, V]
    });
    for (let index = 0; index < this.#layers.length; index++) {
      this.#chunkK[index]?.dispose();
      this.#chunkV[index]?.dispose();
      this.#chunkK[index] = result[2 * index] as tf.Tensor4D;
      this.#chunkV[index] = result[2 * index + 1] as tf.Tensor4D;
    }
    this.#chunkLength += count;
    const logits = result[2 * this.#layers.length];
    if (logits === undefined) return null;
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return values;
  }

  // Attention of n new queries over [memory ; chunk so far ; new]; returns the chunk's k/v so far.
  #attend(
    h: tf.Tensor2D,
    weights: FusedLayerWeights,
    index: number,
    past: { k: tf.Tensor4D; v: tf.Tensor4D } | null,
    count: number,
  ): { output: tf.Tensor2D; k: tf.Tensor4D; v: tf.Tensor4D } {
    const context = this.#context;
    const dimModel = weights.o.shape[0];
    const dimAttn = (weights.qkv.shape[0] - dimModel) / 2;
    const heads = context.nHeads;
    const projected = tf.matMul(h, weights.qkv, false, true); // [n, 2A + D]
    const [qFlat, kFlat, vFlat] = tf.split(
      projected,
      [dimAttn, dimAttn, dimModel],
      1,
    ) as tf.Tensor2D[];
    const q = toHeads(qFlat as tf.Tensor2D, 1, count, heads); // [1, H, n, K]
    const previousK = this.#chunkK[index];
    const previousV = this.#chunkV[index];
    const newK = toHeads(kFlat as tf.Tensor2D, 1, count, heads); // [1, H, n, K]
    const newV = toHeads(vFlat as tf.Tensor2D, 1, count, heads); // [1, H, n, Kv]
    const k =
      previousK === null || previousK === undefined ? newK : tf.concat([previousK, newK], 2); // [1, H, t+n, K]
    const v =
      previousV === null || previousV === undefined ? newV : tf.concat([previousV, newV], 2); // [1, H, t+n, Kv]
    const pastLength = past === null ? 0 : past.k.shape[2];
    const keys = past === null ? k : tf.concat([past.k, k], 2); // [1, H, P+t+n, K]
    const values = past === null ? v : tf.concat([past.v, v], 2); // [1, H, P+t+n, Kv]
    const chunkLength = this.#chunkLength + count;
    const { queryOffset, keyOffset } = positions(
      context.positionPolicy,
      pastLength,
      chunkLength,
      this.#chunkStart,
    );
    const rotatedQueries = context.rotary.rotate(q, { offset: queryOffset + this.#chunkLength }); // [1, H, n, K]
    const rotatedKeys = context.rotary.rotate(keys, { offset: keyOffset }); // [1, H, P+t+n, K]
    const dimHead = dimAttn / heads;
    const scaled = tf.mul(rotatedQueries, 1 / Math.sqrt(dimHead));
    const mask = context.masks.get(count, pastLength + this.#chunkLength); // [n, P+t+n]
    const scores = tf.add(tf.matMul(scaled, rotatedKeys, false, true), mask); // [1, H, n, P+t+n]
    const mixed = tf.matMul(tf.softmax(scores), values) as tf.Tensor4D; // [1, H, n, Kv]
    const output = tf.matMul(fromHeads(mixed), weights.o, false, true) as tf.Tensor2D; // [n, D]
    return { output, k, v };
  }

  // The full chunk becomes the memory; the next chunk starts empty.
  #closeChunk(): void {
    const config = this.#model.config;
    const layers = this.#chunkK.map((k, index) => ({
      k: k as tf.Tensor4D,
      v: this.#chunkV[index] as tf.Tensor4D,
      start: this.#chunkStart,
    }));
    this.#memory?.dispose();
    this.#memory =
      config.memory === 'xl'
        ? XLMemory.owning({ nLayers: config.n_layers, source: config.memory_source }, layers)
        : null;
    // XLMemory.owning kept its own references; release ours
    for (let index = 0; index < layers.length; index++) {
      if (this.#memory === null) {
        this.#chunkK[index]?.dispose();
        this.#chunkV[index]?.dispose();
      }
      this.#chunkK[index] = null;
      this.#chunkV[index] = null;
    }
    this.#chunkStart += this.#chunkLength;
    this.#chunkLength = 0;
  }

  dispose(): void {
    this.#memory?.dispose();
    this.#memory = null;
    for (const tensor of [...this.#chunkK, ...this.#chunkV]) tensor?.dispose();
    this.#chunkK.fill(null);
    this.#chunkV.fill(null);
    for (const layer of this.#layers) tf.dispose([layer.qkv, layer.gateUp]);
  }
}

/** Generates up to maxNewTokens after `prompt`; returns the new ids (the prompt not included). */
export function generate(
  model: BakaCausalLM,
  prompt: readonly number[],
  options: GenerateOptions,
): number[] {
  const { maxNewTokens } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new ModelError(`maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  }
  if (prompt.length === 0)
    throw new ModelError('generate: the prompt must contain at least one token');
  checkSamplingOptions(options);
  const random = mulberry32(options.seed ?? 0);
  const stop = new Set(options.stopTokens ?? []);
  const decoder = new IncrementalDecoder(model);
  const generated: number[] = [];
  try {
    if (maxNewTokens === 0) return generated;
    let logits = decoder.append(prompt);
    for (;;) {
      const next = sampleToken(logits, options, random);
      generated.push(next);
      options.onToken?.(next);
      if (generated.length >= maxNewTokens || stop.has(next)) break;
      logits = decoder.append([next]);
    }
    return generated;
  } finally {
    decoder.dispose();
  }
}
