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
import { hasMega } from './kinds/mega';
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
  #position = 0; // tokens consumed (per row)
  #rows = 1; // sequences decoded side by side (expandRows)
  #chunk: number[][] = [[]]; // per row: the current chunk's token ids
  #fed: number[] = []; // slotLayout of the chunk as fed (token index, -1 pause, <= -2 memory token)
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
      hasMamba(config, layer) || hasMega(config, layer) ? null : undefined,
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

  /** Number of tokens consumed so far (by each row). */
  get position(): number {
    return this.#position;
  }

  /** Sequences decoded side by side: 1, until expandRows. */
  get rows(): number {
    return this.#rows;
  }

  /** Feeds token ids (one sequence); returns the next-token logits after the last one ([V], float32). */
  append(ids: readonly number[]): Float32Array {
    if (this.#rows !== 1) {
      throw new ModelError(`IncrementalDecoder.append: ${this.#rows} rows; use appendRows`);
    }
    return this.#append([ids]);
  }

  /**
   * Keeps the rows `rows` of the sequences decoded so far, in that order, between steps: a row
   * may repeat, so `selectRows([0, 0, 0])` makes three copies of one prompt to sample side by
   * side (the prompt runs once), and leaving a row out drops a finished sample.
   */
  selectRows(rows: readonly number[]): void {
    if (
      rows.length === 0 ||
      rows.some((row) => !Number.isInteger(row) || row < 0 || row >= this.#rows)
    ) {
      throw new ModelError(
        `IncrementalDecoder.selectRows: expected one or more rows in 0..${this.#rows - 1}, got [${rows.join(', ')}]`,
      );
    }
    this.#state.selectRows(rows);
    // every recurrent state (running, and the chunk's start) gathered once each
    const copies = new Map<RecurrentState, RecurrentState>();
    const copy = (state: RecurrentState | null | undefined) => {
      if (!state) return state;
      let copied = copies.get(state);
      if (copied === undefined) {
        copied = tf.tidy(() => {
          const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
          return Object.fromEntries(
            Object.entries(state).map(([name, tensor]) => [
              name,
              tf.keep(tf.gather(tensor, indices)),
            ]),
          );
        });
        copies.set(state, copied);
      }
      return copied;
    };
    const running = this.#recurrent.map(copy);
    const starts = this.#chunkStart.map(copy);
    for (const state of copies.keys()) tf.dispose(Object.values(state));
    running.forEach((state, layer) => {
      this.#recurrent[layer] = state;
      this.#chunkStart[layer] = starts[layer];
    });
    this.#chunk = rows.map((row) => [...(this.#chunk[row] as number[])]);
    this.#rows = rows.length;
  }

  /**
   * Feeds one token to every row (`ids[r]` to row r); returns the next-token logits of every row,
   * [rows x V] row by row (float32).
   */
  appendRows(ids: readonly number[]): Float32Array {
    if (ids.length !== this.#rows) {
      throw new ModelError(
        `IncrementalDecoder.appendRows: expected one token for each of ${this.#rows} rows, got ${ids.length}`,
      );
    }
    return this.#append(ids.map((id) => [id]));
  }

  // Feeds each row its ids (equally many); logits [rows x V] after the last ones.
  #append(ids: readonly (readonly number[])[]): Float32Array {
    const { n_vocab: vocab, n_ctx: chunkLength } = this.#model.config;
    const length = ids[0]?.length ?? 0;
    if (length === 0) throw new ModelError('IncrementalDecoder.append: no tokens given');
    for (const id of ids.flat()) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) {
        throw new ModelError(`token id ${id} is outside the vocabulary 0..${vocab - 1}`);
      }
    }
    let logits: Float32Array | null = null;
    let offset = 0;
    while (offset < length) {
      const room = chunkLength - (this.#chunk[0] as number[]).length; // within the chunk
      const pieces = ids.map((row) => row.slice(offset, offset + room));
      offset += (pieces[0] as number[]).length;
      logits = this.#feedTokens(pieces, offset === length);
    }
    return logits as Float32Array;
  }

  // Adds each row's ids (fitting in the current chunk) to it; logits of the last ones if asked.
  #feedTokens(ids: readonly (readonly number[])[], wantLogits: boolean): Float32Array | null {
    const model = this.#model;
    const rows = this.#rows;
    const state = this.#state;
    if (!this.#prefixFed) {
      const prefix = state.chunkPrefix?.() ?? null;
      if (prefix !== null) this.#run(() => prefix, 'prefix').dispose();
      this.#prefixFed = true;
    }
    const tokens = this.#chunk.map((chunk, row) => [...chunk, ...(ids[row] as number[])]);
    const length = (tokens[0] as number[]).length;
    const layout = slotLayout(model.config, length); // the same for every row
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
    const dimModel = model.config.dim_model;
    // the chunk's last slot is in this step unless a suffix block (RMT's write block) follows
    const endsChunk = length === model.config.n_ctx && (state.chunkSuffix?.() ?? null) === null;
    const pause = model.parameters.get('model.pause.pause_emb'); // [D]
    const sources = slotSources(slots, length, pause !== undefined); // into [tokens ; pause ; memory]
    const y = this.#run(
      () => {
        if (sources.every((source) => source < length)) {
          // only tokens: embed just the slots' ids
          const ids = tokens.map((row) => sources.map((source) => row[source] as number));
          const embedded = model.embed(tf.tensor2d(ids, [rows, slots.length], 'int32')); // [R, slots, D]
          return tf.reshape(embedded, [rows * slots.length, dimModel]) as tf.Tensor2D; // [R*slots, D]
        }
        const embedded = model.embed(tf.tensor2d(tokens, [rows, length], 'int32')); // [R, n, D]
        const memory = model.parameters.get(MEMORY_TOKENS_PARAMETER); // [M, D]
        const extra = (vectors: tf.Tensor) =>
          tf.broadcastTo(tf.reshape(vectors, [1, -1, dimModel]), [
            rows,
            vectors.size / dimModel,
            dimModel,
          ]);
        const source = tf.concat(
          [embedded, ...(pause ? [extra(pause)] : []), ...(memory ? [extra(memory)] : [])],
          1,
        ); // [R, n (+ 1) (+ M), D]
        const picked = tf.gather(source, tf.tensor1d(sources, 'int32'), 1); // [R, slots, D]
        return tf.reshape(picked, [rows * slots.length, dimModel]) as tf.Tensor2D; // [R*slots, D]
      },
      'tokens',
      endsChunk,
      slotGroups(slots),
    );
    this.#chunk = tokens;
    this.#fed = layout;
    this.#position += (ids[0] as number[]).length;
    const logits = wantLogits
      ? tf.tidy(() => {
          // one slot per row: y is already each row's last output
          if (slots.length === 1) return model.head(y); // [R, V]
          const last = tf.slice(
            tf.reshape(y, [rows, slots.length, dimModel]),
            [0, slots.length - 1, 0],
            [rows, 1, dimModel],
          ); // [R, 1, D]
          return model.head(tf.reshape(last, [rows, dimModel])); // [R, V]
        })
      : null;
    y.dispose();
    if (length === model.config.n_ctx) this.#endChunk();
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
      const y = this.#run(() => suffix, 'suffix', true);
      state.takeSuffixOutput?.(y);
      y.dispose();
    }
    state.endChunk(xlSlots(this.#model.config, this.#fed) ?? undefined);
    this.#endChunkRecurrent();
    this.#chunk = this.#chunk.map(() => []);
    this.#fed = [];
    this.#prefixFed = false;
  }

  // Runs the slots `input()` gives [R*n, D] (rows in (row, slot) order) through the layers; the
  // last layer's outputs [R*n, D]. `endsChunk`: the step holds the chunk's last slot (a
  // block-recurrent state updates then); `groups`: the memory-token groups among a row's slots.
  #run(
    input: () => tf.Tensor2D,
    block: 'prefix' | 'tokens' | 'suffix',
    endsChunk = false,
    groups: readonly QueryGroup[] = [],
  ): tf.Tensor2D {
    const state = this.#state;
    const config = this.#model.config;
    const rows = this.#rows;
    return tf.tidy(() => {
      const x = input();
      const count = x.shape[0] / rows; // slots per row
      const open =
        config.rmt_mask !== 'upstream' || block === 'tokens'
          ? undefined
          : block === 'prefix'
            ? { read: count, write: 0 }
            : { read: 0, write: count };
      // state in: every view is taken before the first append (they stay valid until then)
      const states = withGroups(state.views(open, endsChunk), groups).map((view, layer) => {
        const recurrent = this.#recurrent[layer];
        return recurrent === undefined ? view : { ...view, recurrent };
      });
      const { y, states: out } = layerStack(x, this.#layers, states, rows, count, this.#context);
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
  const { onToken, shouldStop, ...rest } = options;
  const [generated] = generateSamples(model, prompt, {
    ...rest,
    numSamples: 1,
    ...(onToken ? { onToken: (id: number) => onToken(id) } : {}),
    ...(shouldStop ? { shouldStop: () => shouldStop() } : {}),
  });
  return generated as number[];
}

export interface GenerateSamplesOptions extends Omit<GenerateOptions, 'onToken' | 'shouldStop'> {
  /** How many continuations of the prompt to sample side by side (one batch). */
  numSamples: number;
  /** Called with each new token of sample `sample` as soon as it is chosen. */
  onToken?: (id: number, sample: number) => void;
  /** Asked after each token of sample `sample` (after `onToken`): true ends that sample. */
  shouldStop?: (sample: number) => boolean;
}

/**
 * Samples `numSamples` continuations of `prompt` as one batch: the prompt runs once, its state is
 * copied into every row, then each step feeds every unfinished row its last token at once
 * (finished rows leave the batch). Sample r draws from the PRNG seeded `seed + r`, so it is the
 * continuation `generate` gives with that seed. Returns each sample's new ids.
 */
export function generateSamples(
  model: BakaCausalLM,
  prompt: readonly number[],
  options: GenerateSamplesOptions,
): number[][] {
  const { maxNewTokens, numSamples } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new ModelError(`maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  }
  if (!Number.isInteger(numSamples) || numSamples < 1) {
    throw new ModelError(`numSamples must be an integer >= 1, got ${numSamples}`);
  }
  if (prompt.length === 0)
    throw new ModelError('generate: the prompt must contain at least one token');
  checkSamplingOptions(options);
  const seed = options.seed ?? 0;
  const randoms = Array.from({ length: numSamples }, (_, sample) => mulberry32(seed + sample));
  const stop = new Set(options.stopTokens ?? []);
  const vocab = model.config.n_vocab;
  const samples: number[][] = Array.from({ length: numSamples }, () => []);
  if (maxNewTokens === 0) return samples;
  const decoder = new IncrementalDecoder(model);
  try {
    const first = decoder.append(prompt);
    let active = samples.map((_, sample) => sample); // the decoder's rows, by sample
    let logits = active.map(() => first);
    if (numSamples > 1) decoder.selectRows(active.map(() => 0));
    for (;;) {
      const next = active.map((sample, row) =>
        sampleToken(logits[row] as Float32Array, options, randoms[sample] as () => number),
      );
      const going: number[] = [];
      next.forEach((id, row) => {
        const sample = active[row] as number;
        const ids = samples[sample] as number[];
        ids.push(id);
        options.onToken?.(id, sample);
        const done =
          ids.length >= maxNewTokens || stop.has(id) || options.shouldStop?.(sample) === true;
        if (!done) going.push(row);
      });
      if (going.length === 0) return samples;
      if (going.length < active.length) decoder.selectRows(going);
      const values = decoder.appendRows(going.map((row) => next[row] as number));
      active = going.map((row) => active[row] as number);
      logits = active.map((_, row) => values.subarray(row * vocab, (row + 1) * vocab));
    }
  } finally {
    decoder.dispose();
  }
}
