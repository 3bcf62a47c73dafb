// Incremental generation: a KV cache inside the current chunk and XL memory beyond it
// (@baka/cache's KVCache), so each new token costs one position per layer while the numbers
// equal a full recomputation (BakaCausalLM.forward over the whole sequence).
//
// Shape legend: H heads, K dim_head, Kv value head dim, D dim_model, V vocab, n new tokens,
// t tokens already in the current chunk, P memory length, W padded key width.
import * as tf from '@tensorflow/tfjs-core';
import { fromHeads, toHeads } from './attention';
import type { AttentionContext } from './attention';
import { fuseLayer } from './baka-net';
import type { FusedLayerWeights } from './baka-net';
import type { BakaCausalLM } from './causal-lm';
import { ModelError } from './errors';
import { layerNorm } from './layer-norm';
import { KVCache } from './memory';
import { gatedMlp } from './mlp';
import { mulberry32 } from './random';
import { checkSamplingOptions, sampleToken } from './sampling';
import type { SamplingOptions } from './sampling';

/** Attention widths during generation are rounded up to a multiple of this many positions. */
export const KEY_BUCKET = 64;

/** Additive mask value of a padded key position (exp underflows to exactly 0). */
const BLOCKED = -1e9;

function paddedWidth(width: number): number {
  return Math.ceil(width / KEY_BUCKET) * KEY_BUCKET;
}

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to generate. */
  maxNewTokens: number;
  /** Seed of the sampling PRNG (default 0); the same seed gives the same tokens. */
  seed?: number;
  /** Called with each new token as soon as it is chosen (streaming). */
  onToken?: (id: number) => void;
  /** Stop after generating any of these ids (it is included in the result). */
  stopTokens?: readonly number[];
  /** Asked after each token (after `onToken`): true stops (e.g. a stop string was decoded). */
  shouldStop?: () => boolean;
}

/**
 * Generation state for one sequence (batch 1) around @baka/cache's KVCache, which keeps the
 * current chunk's k/v and rolls a full chunk into the XL memory exactly as a full pass chunks.
 * Owns its tensors: call dispose(). `append(ids)` feeds tokens and returns the logits [V] after
 * the last one.
 */
export class IncrementalDecoder {
  readonly #model: BakaCausalLM;
  readonly #layers: FusedLayerWeights[];
  readonly #context: AttentionContext;
  readonly #cache: KVCache;

  constructor(model: BakaCausalLM) {
    const config = model.config;
    this.#model = model;
    this.#layers = Array.from({ length: config.n_layers }, (_, index) => {
      const fused = fuseLayer(model.layerWeights(index));
      tf.keep(fused.qkv);
      tf.keep(fused.gateUp);
      return fused;
    });
    this.#context = model.attentionContext();
    this.#cache = new KVCache({
      nLayers: config.n_layers,
      chunkLength: config.n_ctx,
      memory: config.memory,
      source: config.memory_source,
      policy: config.position_policy,
    });
  }

  /** Number of tokens consumed so far. */
  get position(): number {
    return this.#cache.position;
  }

  /** Feeds token ids; returns the next-token logits after the last one ([V], float32). */
  append(ids: readonly number[]): Float32Array {
    const vocab = this.#model.config.n_vocab;
    if (ids.length === 0) throw new ModelError('IncrementalDecoder.append: no tokens given');
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ModelError(`token id ${id} is outside the vocabulary 0..${vocab - 1}`);
      }
    }
    let logits: Float32Array | null = null;
    let offset = 0;
    while (offset < ids.length) {
      const piece = ids.slice(offset, offset + this.#cache.room); // never crosses a chunk boundary
      offset += piece.length;
      logits = this.#step(piece, offset === ids.length);
    }
    return logits as Float32Array;
  }

  // Runs `ids` (fitting in the current chunk) through the layers; logits of the last one if asked.
  #step(ids: readonly number[], wantLogits: boolean): Float32Array | null {
    const model = this.#model;
    const { dim_model: dimModel } = model.config;
    const count = ids.length;
    const logits = tf.tidy(() => {
      const idTensor = tf.tensor2d([Array.from(ids)], [1, count], 'int32');
      let x = tf.reshape(model.embed(idTensor), [count, dimModel]) as tf.Tensor2D; // [n, D]
      this.#layers.forEach((weights, index) => {
        const h = layerNorm(x, weights.normWeight, weights.normBias); // [n, D]
        const output = this.#attend(h, weights, index, count);
        x = tf.add(tf.add(x, output), gatedMlp(h, weights.gateUp, weights.down)) as tf.Tensor2D; // [n, D]
      });
      return wantLogits ? [model.head(tf.slice(x, [count - 1, 0], [1, dimModel]))] : []; // [1, V]
    })[0];
    if (logits === undefined) return null;
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return values;
  }

  // Attention of n new queries over [memory ; chunk so far ; new] as the cache hands them out.
  #attend(h: tf.Tensor2D, weights: FusedLayerWeights, index: number, count: number): tf.Tensor2D {
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
    const k = toHeads(kFlat as tf.Tensor2D, 1, count, heads); // [1, H, n, K]
    const v = toHeads(vFlat as tf.Tensor2D, 1, count, heads); // [1, H, n, Kv]
    const inputs = this.#cache.attend(index, k, v); // keys/values [1, H, P+F+n, *]
    const rotatedQueries = context.rotary.rotate(q, { offset: inputs.queryOffset }); // [1, H, n, K]
    const rotatedKeys = context.rotary.rotate(inputs.keys, { offset: inputs.keyOffset }); // [1, H, P+F+n, K]
    const scaled = tf.mul(rotatedQueries, 1 / Math.sqrt(dimAttn / heads));
    // Keys, values and mask padded to a multiple of KEY_BUCKET positions (padding masked out):
    // the attention matmuls then see a new shape only every KEY_BUCKET tokens. Native
    // TensorFlow's oneDNN kernels compile and cache code per shape, which at one new shape per
    // token made each token slower and the process grow by ~0.7 MB per token.
    const width = inputs.keys.shape[2];
    const padding = paddedWidth(width) - width;
    const keys =
      padding === 0
        ? rotatedKeys
        : tf.pad(rotatedKeys, [
            [0, 0],
            [0, 0],
            [0, padding],
            [0, 0],
          ]); // [1, H, W, K]
    const values =
      padding === 0
        ? inputs.values
        : tf.pad(inputs.values, [
            [0, 0],
            [0, 0],
            [0, padding],
            [0, 0],
          ]); // [1, H, W, Kv]
    const causal = context.masks.get(count, inputs.diagonal); // [n, P+F+n]
    const mask =
      padding === 0
        ? causal
        : tf.pad(
            causal,
            [
              [0, 0],
              [0, padding],
            ],
            BLOCKED,
          ); // [n, W]
    const scores = tf.add(tf.matMul(scaled, keys, false, true), mask); // [1, H, n, W]
    const mixed = tf.matMul(tf.softmax(scores), values) as tf.Tensor4D; // [1, H, n, Kv]
    return tf.matMul(fromHeads(mixed), weights.o, false, true) as tf.Tensor2D; // [n, D]
  }

  dispose(): void {
    this.#cache.dispose();
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
      if (generated.length >= maxNewTokens || stop.has(next) || options.shouldStop?.()) break;
      logits = decoder.append([next]);
    }
    return generated;
  } finally {
    decoder.dispose();
  }
}
