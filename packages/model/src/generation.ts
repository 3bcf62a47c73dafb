// Incremental generation: a KV cache inside the current chunk and XL memory beyond it
// (the sequence-state kind's IncrementalState; for xl @baka/cache's KVCache), so each new token costs one position per layer while the numbers
// equal a full recomputation (BakaCausalLM.forward over the whole sequence). The layers are the
// full pass's (layerStack): each layer gets the cache's view [memory ; chunk so far] as its
// state in and hands back the new tokens' k/v joined behind it, which the cache keeps.
//
// Shape legend: D dim_model, V vocab, n new tokens.
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionContext } from './attention';
import { layerStack } from './baka-net';
import type { PreparedLayer } from './baka-net';
import type { BakaCausalLM } from './causal-lm';
import { ModelError } from './errors';
import type { MambaState } from './kinds/mamba';
import { hasMamba } from './kinds/mamba';
import { sequenceStateKind } from './kinds/sequence-states';
import type { IncrementalState } from './sequence-state';
import { mulberry32 } from './random';
import { checkSamplingOptions, sampleToken } from './sampling';
import type { SamplingOptions } from './sampling';

/**
 * Attention key widths during generation are rounded up to a multiple of this many positions
 * (the padding is masked out): the attention matmuls then see a new shape only every KEY_BUCKET
 * tokens. Native TensorFlow's oneDNN kernels compile and cache code per shape, which at one new
 * shape per token made each token slower and the process grow by ~0.7 MB per token.
 */
export const KEY_BUCKET = 64;

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
  readonly #layers: PreparedLayer[];
  /** Tensors the prepared layers made (stacked matrices), kept until dispose(). */
  readonly #prepared: tf.Tensor[];
  readonly #context: AttentionContext;
  readonly #cache: IncrementalState;
  /** Per layer: a Mamba layer's state within the current chunk (null at its start); undefined without Mamba. */
  readonly #mamba: (MambaState | null | undefined)[];

  constructor(model: BakaCausalLM) {
    const config = model.config;
    this.#model = model;
    const variables = new Set<tf.Tensor>(model.parameters.values());
    this.#prepared = [];
    this.#layers = Array.from({ length: config.n_layers }, (_, index) => {
      const layer = model.prepareLayer(index);
      const { weights } = layer;
      const made = [
        weights.qkv,
        weights.o,
        ...(weights.mlp ? [weights.mlp.gateUp, weights.mlp.down] : []),
      ];
      for (const tensor of made) {
        if (!variables.has(tensor)) this.#prepared.push(tf.keep(tensor));
      }
      return layer;
    });
    this.#context = { ...model.attentionContext(), keyBucket: KEY_BUCKET };
    this.#cache = sequenceStateKind(config).incremental(config);
    this.#mamba = Array.from({ length: config.n_layers }, (_, layer) =>
      hasMamba(config, layer) ? null : undefined,
    );
  }

  // A new chunk starts every Mamba block from zero, as the full pass does.
  #resetMamba(): void {
    this.#mamba.forEach((state, layer) => {
      if (state) {
        tf.dispose([state.conv, state.ssm]);
        this.#mamba[layer] = null;
      }
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
    const cache = this.#cache;
    if (cache.room === model.config.n_ctx) this.#resetMamba();
    const logits = tf.tidy(() => {
      const idTensor = tf.tensor2d([Array.from(ids)], [1, count], 'int32');
      const x = tf.reshape(model.embed(idTensor), [count, dimModel]) as tf.Tensor2D; // [n, D]
      // state in: every view is taken before the first append (they stay valid until then)
      const states = cache.views().map((view, layer) => {
        const mamba = this.#mamba[layer];
        return mamba === undefined ? view : { ...view, mamba };
      });
      const { y, states: out } = layerStack(x, this.#layers, states, 1, count, this.#context);
      out.forEach((state, index) => {
        cache.append(index, state);
        const previous = this.#mamba[index];
        if (state.mamba) {
          if (previous) tf.dispose([previous.conv, previous.ssm]);
          this.#mamba[index] = { conv: tf.keep(state.mamba.conv), ssm: tf.keep(state.mamba.ssm) };
        }
      });
      return wantLogits ? [model.head(tf.slice(y, [count - 1, 0], [1, dimModel]))] : []; // [1, V]
    })[0];
    if (logits === undefined) return null;
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return values;
  }

  dispose(): void {
    this.#resetMamba();
    this.#cache.dispose();
    tf.dispose(this.#prepared);
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
