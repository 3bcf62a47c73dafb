// Incremental generation: a KV cache inside the current chunk and XL memory beyond it
// (the sequence-state kind's IncrementalState; for xl @baka/cache's KVCache), so each new token costs one position per layer while the numbers
// equal a full recomputation (BakaCausalLM.forward over the whole sequence). The layers are the
// full pass's (layerStack): each layer gets the cache's view [memory ; chunk so far] as its
// state in and hands back the new tokens' k/v joined behind it, which the cache keeps.
//
// Shape legend: D dim_model, V vocab, n new tokens.
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionContext } from './attention';
import type { QueryGroup } from './attention-mask';
import { layerStack } from './baka-net';
import type { PreparedLayer, RecurrentState } from './baka-net';
import type { BakaCausalLM } from './causal-lm';
import { ModelError } from './errors';
import { carriesLayerStates } from './kinds/layer-states';
import { hasMamba } from './kinds/mamba';
import {
  MEMORY_TOKENS_PARAMETER,
  slotGroups,
  slotLayout,
  slotSources,
  withGroups,
  xlSlots,
} from './kinds/memory-tokens';
import { sequenceStateKind } from './kinds/sequence-states';
import type { IncrementalState } from './sequence-state';
import { mulberry32 } from '@baka/common';
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
 * Generation state for one sequence (batch 1) around the sequence-state kind's IncrementalState
 * (for xl @baka/cache's KVCache), which keeps the current chunk's k/v and hands a finished chunk
 * to the next as a full pass does. Chunks hold n_ctx tokens; with pauses, a chunk's layout
 * depends on its length (kinds/pauses.ts), so when a new token brings a pause in front of tokens
 * already fed, those are dropped from the cache and fed again behind it. Memory-token groups
 * (kinds/memory-tokens.ts) only ever join a chunk at its end, in front of the token they precede;
 * a chunk keeps them out of the XL memory when it ends (unless memory_tokens_in_xl). RMT chunks get the
 * kind's read block first and, once full, its write block last. Owns its tensors: call dispose().
 * `append(ids)` feeds tokens and returns the logits [V] after the last one.
 */
export class IncrementalDecoder {
  readonly #model: BakaCausalLM;
  readonly #layers: PreparedLayer[];
  /** Tensors the prepared layers made (stacked matrices), kept until dispose(). */
  readonly #prepared: tf.Tensor[];
  readonly #context: AttentionContext;
  readonly #state: IncrementalState;
  #position = 0; // tokens consumed
  #chunk: number[] = []; // the current chunk's token ids
  #fed: number[] = []; // pauseLayout of the chunk as fed (token index or -1 per slot)
  #prefixFed = false;
  /**
   * Per layer: its recurrent state (a Mamba block's) after the last step, null for a zero state;
   * undefined for a layer without one.
   */
  readonly #recurrent: (RecurrentState | null | undefined)[];
  /** Per layer: the state the current chunk started from (the previous chunk's end when carried). */
  readonly #chunkStart: (RecurrentState | null | undefined)[];
  /** Whether a chunk starts from the previous chunk's recurrent state (mamba_carry_state). */
  readonly #carry: boolean;

  constructor(model: BakaCausalLM) {
    const config = model.config;
    if (config.is_pause_pos_random && config.n_pauses > 0) {
      throw new ModelError(
        'is_pause_pos_random: generation needs the fixed pause layout; generate with --set is_pause_pos_random=false',
      );
    }
    this.#model = model;
    const variables = new Set<tf.Tensor>(model.parameters.values());
    this.#prepared = [];
    this.#layers = Array.from({ length: config.n_layers }, (_, index) => {
      const layer = model.prepareLayer(index);
      // what the kind's prepare made (stacked matrices), as opposed to the model's own variables
      for (const tensor of tensorsIn(layer.weights)) {
        if (!variables.has(tensor)) this.#prepared.push(tf.keep(tensor));
      }
      return layer;
    });
    this.#context = { ...model.attentionContext(), keyBucket: KEY_BUCKET };
    this.#state = sequenceStateKind(config).incremental(config, model.parameters);
    this.#recurrent = Array.from({ length: config.n_layers }, (_, layer) =>
      hasMamba(config, layer) ? null : undefined,
    );
    this.#chunkStart = [...this.#recurrent];
    this.#carry = carriesLayerStates(config);
  }

  // Layer `layer`'s running state becomes `state` (owned; null: zero).
  #setRecurrent(layer: number, state: RecurrentState | null): void {
    const previous = this.#recurrent[layer];
    if (previous && previous !== this.#chunkStart[layer]) tf.dispose(Object.values(previous));
    this.#recurrent[layer] = state;
  }

  // The chunk runs again from its start: every layer back to the state the chunk started from.
  #restartRecurrent(): void {
    this.#chunkStart.forEach((state, layer) => {
      if (state !== undefined) this.#setRecurrent(layer, state);
    });
  }

  // The chunk ended: the next one starts from zero, as the full pass does, or with
  // mamba_carry_state from the state this one ended with.
  #endChunkRecurrent(): void {
    this.#recurrent.forEach((state, layer) => {
      if (state === undefined) return;
      if (!this.#carry) {
        this.#setRecurrent(layer, null);
        return;
      }
      const start = this.#chunkStart[layer];
      if (start && start !== state) tf.dispose(Object.values(start));
      this.#chunkStart[layer] = state;
    });
  }

  /** Number of tokens consumed so far. */
  get position(): number {
    return this.#position;
  }

  /** Feeds token ids; returns the next-token logits after the last one ([V], float32). */
  append(ids: readonly number[]): Float32Array {
    const { n_vocab: vocab, n_ctx: chunkLength } = this.#model.config;
    if (ids.length === 0) throw new ModelError('IncrementalDecoder.append: no tokens given');
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ModelError(`token id ${id} is outside the vocabulary 0..${vocab - 1}`);
      }
    }
    let logits: Float32Array | null = null;
    let offset = 0;
    while (offset < ids.length) {
      const piece = ids.slice(offset, offset + chunkLength - this.#chunk.length); // within the chunk
      offset += piece.length;
      logits = this.#feedTokens(piece, offset === ids.length);
    }
    return logits as Float32Array;
  }

  // Adds `ids` (fitting in the current chunk) to it; logits of the last one if asked.
  #feedTokens(ids: readonly number[], wantLogits: boolean): Float32Array | null {
    const model = this.#model;
    const state = this.#state;
    if (!this.#prefixFed) {
      const prefix = state.chunkPrefix?.() ?? null;
      if (prefix !== null) this.#run(() => prefix, 'prefix').dispose();
      this.#prefixFed = true;
    }
    const tokens = [...this.#chunk, ...ids];
    const layout = slotLayout(model.config, tokens.length);
    let common = 0;
    while (common < this.#fed.length && this.#fed[common] === layout[common]) common++;
    if (common < this.#fed.length && this.#recurrent.some((entry) => entry !== undefined)) {
      // a recurrent state cannot be rewound: the chunk runs again from its start
      state.rewind(state.chunkSlots);
      this.#restartRecurrent();
      const prefix = state.chunkPrefix?.() ?? null;
      if (prefix !== null) this.#run(() => prefix, 'prefix').dispose();
      common = 0;
    } else {
      state.rewind(this.#fed.length - common);
    }
    const slots = layout.slice(common);
    const y = this.#run(
      () => {
        const embedded = tf.reshape(
          model.embed(tf.tensor2d([tokens], [1, tokens.length], 'int32')),
          [tokens.length, model.config.dim_model],
        ); // [n, D]
        const pause = model.parameters.get('model.pause.pause_emb');
        const memory = model.parameters.get(MEMORY_TOKENS_PARAMETER); // [M, D]
        const rows = tf.concat(
          [
            embedded,
            ...(pause === undefined ? [] : [tf.reshape(pause, [1, -1])]),
            ...(memory === undefined ? [] : [memory]),
          ],
          0,
        ); // [n (+ 1) (+ M), D]
        const indices = slotSources(slots, tokens.length, pause !== undefined);
        return tf.gather(rows, tf.tensor1d(indices, 'int32')) as tf.Tensor2D; // [slots, D]
      },
      'tokens',
      slotGroups(slots),
    );
    this.#chunk = tokens;
    this.#fed = layout;
    this.#position += ids.length;
    const logits = wantLogits
      ? tf.tidy(() => model.head(tf.slice(y, [y.shape[0] - 1, 0], [1, model.config.dim_model]))) // [1, V]
      : null;
    y.dispose();
    if (tokens.length === model.config.n_ctx) this.#endChunk();
    if (logits === null) return null;
    const values = logits.dataSync() as Float32Array;
    logits.dispose();
    return values;
  }

  // The chunk is full: the kind's write block (RMT) runs behind it, then the chunk ends.
  #endChunk(): void {
    const state = this.#state;
    const suffix = state.chunkSuffix?.() ?? null;
    if (suffix !== null) {
      const y = this.#run(() => suffix, 'suffix');
      state.takeSuffixOutput?.(y);
      y.dispose();
    }
    state.endChunk(xlSlots(this.#model.config, this.#fed) ?? undefined);
    this.#endChunkRecurrent();
    this.#chunk = [];
    this.#fed = [];
    this.#prefixFed = false;
  }

  // Runs the slots `input()` gives [n, D] through the layers; the last layer's outputs [n, D].
  // `groups`: the memory-token groups among them.
  #run(
    input: () => tf.Tensor2D,
    block: 'prefix' | 'tokens' | 'suffix',
    groups: readonly QueryGroup[] = [],
  ): tf.Tensor2D {
    const state = this.#state;
    const config = this.#model.config;
    return tf.tidy(() => {
      const x = input();
      const count = x.shape[0];
      const open =
        config.rmt_mask !== 'upstream' || block === 'tokens'
          ? undefined
          : block === 'prefix'
            ? { read: count, write: 0 }
            : { read: 0, write: count };
      // state in: every view is taken before the first append (they stay valid until then)
      const states = withGroups(state.views(open), groups).map((view, layer) => {
        const recurrent = this.#recurrent[layer];
        return recurrent === undefined ? view : { ...view, recurrent };
      });
      const { y, states: out } = layerStack(x, this.#layers, states, 1, count, this.#context);
      out.forEach((layerState, index) => {
        state.append(index, layerState);
        const { recurrent } = layerState;
        if (recurrent) {
          const kept = Object.fromEntries(
            Object.entries(recurrent).map(([name, tensor]) => [name, tf.keep(tensor)]),
          );
          this.#setRecurrent(index, kept);
        }
      });
      return y;
    });
  }

  dispose(): void {
    const states = new Set([...this.#recurrent, ...this.#chunkStart]);
    for (const state of states) if (state) tf.dispose(Object.values(state));
    this.#state.dispose();
    tf.dispose(this.#prepared);
  }
}

/**
 * Every tensor in a prepared layer's weights, looking through plain objects and arrays only
 * (class instances such as the rotary tables belong to the model and are not entered).
 */
export function tensorsIn(value: unknown, found = new Set<tf.Tensor>()): Set<tf.Tensor> {
  if (value instanceof tf.Tensor) {
    found.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) tensorsIn(item, found);
  } else if (typeof value === 'object' && value !== null) {
    if (Object.getPrototypeOf(value) === Object.prototype) {
      for (const item of Object.values(value)) tensorsIn(item, found);
    }
  }
  return found;
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
