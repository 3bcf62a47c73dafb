// Incremental key/value cache for generation with XL memory, chunked exactly like a full pass.
//
// Shape legend: B batch rows, H heads, t new tokens in this step, F tokens of the current chunk
// before this step, P memory length, K key dim, V value dim.
//
// Semantics (a full pass defines them): a full pass over a sequence cuts it into chunks of
// `chunkLength` (n_ctx) tokens starting at position 0. Token s belongs to chunk
// c = floor(s / n_ctx). In layer i its query sees
//   - the memory: the unrotated k/v of chunk c-1 from layer i-1 ('previous-layer', upstream 003;
//     none for layer 0) or from layer i itself ('same-layer'), trimmed to `maxMemoryLength`;
//   - layer i's own k/v of chunk c for tokens c·n_ctx .. s (causal).
// Rotation offsets come from `positions(policy, P, F + t, chunkStart)`: with 'reset' keys sit at
// 0..P+F+t-1 and the new queries at P+F..P+F+t-1; with 'absolute' at document positions.
// The cache feeds tokens in steps that never cross a chunk boundary (`room` tells how many fit).
// When a step fills the chunk, the chunk's per-layer k/v become the memory and the next step
// starts an empty chunk, just as the next chunk of a full pass would. Feeding a prompt in steps
// of `room` tokens and then one token at a time reproduces the full pass's outputs for every
// position (tested in kv-cache.test.ts against an XLMemory chunked pass).
//
// Per layer the cache holds [memory ; current chunk so far] joined in one tensor pair, so a step
// costs one concatenation per layer. Two ways to run a step, for each layer i in order:
//   - `view(i)` -> the state view {past, keyOffset} the layer attends to in front of its new
//     tokens; the layer computes its new unrotated k, v; `append(i, k, v)` records them. All
//     views of a step may be taken before the first append (state in, then state out).
//   - `attend(i, k, v)`: both at once; returns the keys/values including the new ones plus the
//     rotary offsets and the causal diagonal.
// After the last layer the step is complete and `position` advances.
//
// Ownership: the cache owns what it stores (tf.keep'd) and frees replaced tensors immediately, so
// it is for inference only: do not use it inside a gradient scope. `append`/`attend` never keep
// or dispose their inputs. A view's tensors belong to the cache and stay valid until that layer's
// next `append` (or the cache's reset); `attend` returns new tensors that belong to the caller
// (normally the step's tf.tidy). `dispose()` frees everything the cache holds.
import * as tf from '@tensorflow/tfjs-core';
import { CacheError } from './cache-error';
import { type PositionPolicy, positions } from './positions';
import { type MemorySource, XLMemory } from './xl-memory';

export interface KVCacheOptions {
  nLayers: number;
  /** Chunk length n_ctx of the full pass being reproduced. */
  chunkLength: number;
  /** 'xl' attends to the previous chunk's memory; 'none' sees only the current chunk. Default 'xl'. */
  memory?: 'xl' | 'none';
  source?: MemorySource;
  policy?: PositionPolicy;
  /** Keep at most the last M tokens of the memory (default: the whole previous chunk). */
  maxMemoryLength?: number;
}

/** Keys and values of one layer, unrotated: k [B, H, L, K], v [B, H, L, V]. */
export interface KeyValues {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** What one layer attends to in front of the next step's new tokens. */
export interface LayerView {
  /** [memory ; current chunk so far] (L = P + F); null when both are empty. Owned by the cache. */
  past: KeyValues | null;
  /** Rotary position of the first key (the first past key, else the first new token). */
  keyOffset: number;
}

export interface AttentionInputs {
  /** Unrotated keys [memory ; current chunk so far ; new tokens]: [B, H, P+F+t, K]. */
  keys: tf.Tensor4D;
  /** Values in the same order: [B, H, P+F+t, V]. */
  values: tf.Tensor4D;
  /** Rotary position of the first new query. */
  queryOffset: number;
  /** Rotary position of the first key. */
  keyOffset: number;
  /** P, the number of memory keys in front. */
  pastLength: number;
  /** New query j may see keys 0..diagonal+j (= P+F+j): a causal mask `tril(diagonal)`. */
  diagonal: number;
}

export class KVCache {
  readonly nLayers: number;
  readonly chunkLength: number;
  readonly memoryMode: 'xl' | 'none';
  readonly source: MemorySource;
  readonly policy: PositionPolicy;
  readonly maxMemoryLength: number | undefined;

  #position = 0; // tokens completed so far = position of the next token
  #chunkStart = 0; // position of the current chunk's first token
  // per layer [memory ; current chunk so far] (owned); null while the chunk is empty
  #joined: (KeyValues | null)[];
  #memory: XLMemory;
  #stepLength = 0; // t of the step in progress (0 when none)
  #stepLayers = 0; // layers already appended in the step in progress

  constructor(options: KVCacheOptions) {
    const { nLayers, chunkLength } = options;
    if (!Number.isInteger(nLayers) || nLayers < 1) {
      throw new CacheError(`KVCache: nLayers must be a positive integer, got ${nLayers}`);
    }
    if (!Number.isInteger(chunkLength) || chunkLength < 1) {
      throw new CacheError(`KVCache: chunkLength must be a positive integer, got ${chunkLength}`);
    }
    const memoryMode = options.memory ?? 'xl';
    if (memoryMode !== 'xl' && memoryMode !== 'none') {
      throw new CacheError(
        `KVCache: memory must be 'xl' or 'none', got ${JSON.stringify(memoryMode)}`,
      );
    }
    const policy = options.policy ?? 'reset';
    if (policy !== 'reset' && policy !== 'absolute') {
      throw new CacheError(
        `KVCache: policy must be 'reset' or 'absolute', got ${JSON.stringify(policy)}`,
      );
    }
    this.nLayers = nLayers;
    this.chunkLength = chunkLength;
    this.memoryMode = memoryMode;
    this.policy = policy;
    this.maxMemoryLength = options.maxMemoryLength;
    this.#memory = new XLMemory({
      nLayers,
      ...(options.source === undefined ? {} : { source: options.source }),
      ...(options.maxMemoryLength === undefined ? {} : { maxLength: options.maxMemoryLength }),
    });
    this.source = this.#memory.source;
    this.#joined = new Array(nLayers).fill(null);
  }

  /** Tokens completed so far, i.e. the absolute position of the next token. */
  get position(): number {
    return this.#position;
  }

  /** Alias of `position`: number of tokens the cache has seen. */
  get length(): number {
    return this.#position;
  }

  /** Absolute position of the current chunk's first token. */
  get chunkStart(): number {
    return this.#chunkStart;
  }

  /** How many tokens the next step may hold without crossing a chunk boundary. */
  get room(): number {
    return this.chunkLength - (this.#position - this.#chunkStart);
  }

  /** The memory (previous chunk) the current chunk attends to. Owned by the cache. */
  get memory(): XLMemory {
    return this.#memory;
  }

  /**
   * The state view of `layer` for the step in progress (or the next one): the unrotated keys and
   * values in front of the step's new tokens and the rotary position of the first of them. Take
   * it before `append(layer, ...)` of the same step; its tensors stay valid until then.
   */
  view(layer: number): LayerView {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new CacheError(`KVCache.view: layer ${layer} is not in 0..${this.nLayers - 1}`);
    }
    if (layer < this.#stepLayers) {
      throw new CacheError(
        `KVCache.view: layer ${layer} was already appended in this step (take views before appending)`,
      );
    }
    const memory = this.#pastOf(layer);
    const pastLength = memory === null ? 0 : memory.k.shape[2];
    const chunkSoFar = this.#position - this.#chunkStart; // F
    const { keyOffset } = positions(this.policy, pastLength, chunkSoFar, this.chunkStart);
    return { past: this.#joined[layer] ?? memory, keyOffset };
  }

  /**
   * Records the new tokens' unrotated k, v [B, H, t, K] of `layer` (layers in order 0..n-1
   * within a step, each once, all with the same t <= room). `joined`, when given, is
   * [view(layer).past ; k] and [... ; v] as the caller already built them (attention does): the
   * cache keeps those tensors instead of concatenating again. Only their shapes are checked.
   */
  append(
    layer: number,
    k: tf.Tensor4D,
    v: tf.Tensor4D,
    options: { joined?: KeyValues } = {},
  ): void {
    this.#check('append', layer, k, v);
    this.#join(layer, k, v, options.joined);
    this.#layerDone();
  }

  /**
   * Adds the new tokens' unrotated k, v [B, H, t, K] for `layer` (layers in order 0..n-1 within a
   * step, each once, all with the same t <= room) and returns what that layer attends to.
   */
  attend(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): AttentionInputs {
    this.#check('attend', layer, k, v);
    const { keyOffset } = this.view(layer);
    const memory = this.#pastOf(layer);
    const pastLength = memory === null ? 0 : memory.k.shape[2];
    const joined = this.#join(layer, k, v);
    const diagonal = joined.k.shape[2] - k.shape[2]; // P + F
    const result: AttentionInputs = {
      keys: tf.clone(joined.k), // [B, H, P+F+t, K]
      values: tf.clone(joined.v), // [B, H, P+F+t, V]
      // queries follow the P + F keys in front of them
      queryOffset: keyOffset + diagonal,
      keyOffset,
      pastLength,
      diagonal,
    };
    this.#layerDone();
    return result;
  }

  /**
   * Drops the last `count` tokens of the current chunk (e.g. a pause token is inserted in front of
   * them and they are fed again). Between steps only; the memory is untouched.
   */
  rewind(count: number): void {
    this.#checkBetweenSteps('rewind');
    const chunkSoFar = this.#position - this.#chunkStart;
    if (!Number.isInteger(count) || count < 0 || count > chunkSoFar) {
      throw new CacheError(
        `KVCache.rewind: count must be an integer in 0..${chunkSoFar} (tokens of the current chunk), got ${count}`,
      );
    }
    if (count === 0) return;
    this.#joined = this.#joined.map((part) => {
      if (part === null) return null;
      const keep = part.k.shape[2] - count;
      if (keep === 0) {
        tf.dispose([part.k, part.v]);
        return null;
      }
      const kept = {
        k: tf.keep(tf.slice(part.k, [0, 0, 0, 0], [-1, -1, keep, -1])) as tf.Tensor4D,
        v: tf.keep(tf.slice(part.v, [0, 0, 0, 0], [-1, -1, keep, -1])) as tf.Tensor4D,
      };
      tf.dispose([part.k, part.v]);
      return kept;
    });
    this.#position -= count;
  }

  /**
   * Ends the current chunk now (before it holds chunkLength tokens): its k/v become the memory
   * the next chunk attends to, as when a chunk fills. For chunks whose length varies (pause and
   * memory tokens). `keep`: only these positions of the chunk (0-based, increasing) enter the
   * memory, which then ends where the chunk ends (memory tokens kept out of the XL memory).
   * Between steps only; an empty chunk is left as it is.
   */
  endChunk(keep?: readonly number[]): void {
    this.#checkBetweenSteps('endChunk');
    if (keep !== undefined) {
      const chunk = this.#position - this.#chunkStart;
      if (
        keep.some(
          (slot, i) =>
            !Number.isInteger(slot) ||
            slot < 0 ||
            slot >= chunk ||
            (i > 0 && slot <= (keep[i - 1] as number)),
        )
      ) {
        throw new CacheError(
          `KVCache.endChunk: keep must list increasing positions 0..${chunk - 1} of the chunk`,
        );
      }
    }
    if (this.#position > this.#chunkStart) this.#rollChunk(keep);
  }

  /** Keeps batch rows `rows` of everything cached (e.g. drop finished sequences). */
  selectRows(rows: readonly number[]): void {
    this.#checkBetweenSteps('selectRows');
    const memory = this.#memory.selectRows(rows);
    this.#memory.dispose();
    this.#memory = memory;
    const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
    this.#joined = this.#joined.map((part) => {
      if (part === null) return null;
      const selected = {
        k: tf.keep(tf.gather(part.k, indices, 0)) as tf.Tensor4D, // [rows, H, P+F, K]
        v: tf.keep(tf.gather(part.v, indices, 0)) as tf.Tensor4D, // [rows, H, P+F, V]
      };
      tf.dispose([part.k, part.v]);
      return selected;
    });
    indices.dispose();
  }

  /** Frees everything the cache holds and starts over at position 0. */
  reset(): void {
    for (const part of this.#joined) if (part !== null) tf.dispose([part.k, part.v]);
    this.#joined = new Array(this.nLayers).fill(null);
    this.#memory.dispose();
    this.#memory = this.#memory.next();
    this.#position = 0;
    this.#chunkStart = 0;
    this.#stepLayers = 0;
    this.#stepLength = 0;
  }

  /** Frees everything the cache holds. */
  dispose(): void {
    this.reset();
  }

  // The memory entry `layer` attends to (null without one or with memory 'none').
  #pastOf(layer: number): KeyValues | null {
    if (this.memoryMode !== 'xl') return null;
    const past = this.#memory.pastFor(layer);
    return past === null ? null : { k: past.k, v: past.v };
  }

  // Appends k, v to the layer's [memory ; chunk so far] (owned), freeing the replaced pair;
  // `given` is that concatenation already built by the caller.
  #join(layer: number, k: tf.Tensor4D, v: tf.Tensor4D, given?: KeyValues): KeyValues {
    const previous = this.#joined[layer] ?? null;
    const base = previous ?? this.#pastOf(layer);
    let joined: KeyValues;
    if (given !== undefined) {
      const expected = (base === null ? 0 : base.k.shape[2]) + k.shape[2];
      if (
        given.k.rank !== 4 ||
        given.v.rank !== 4 ||
        given.k.shape[2] !== expected ||
        given.v.shape[2] !== expected ||
        given.k.shape[0] !== k.shape[0] ||
        given.k.shape[3] !== k.shape[3] ||
        given.v.shape[3] !== v.shape[3]
      ) {
        throw new CacheError(
          `KVCache.append: joined k [${given.k.shape.join(', ')}], v [${given.v.shape.join(', ')}] are not [past ; new] (${expected} positions) for layer ${layer}`,
        );
      }
      joined = { k: tf.keep(given.k), v: tf.keep(given.v) };
    } else if (base === null) {
      joined = { k: tf.keep(tf.clone(k)), v: tf.keep(tf.clone(v)) };
    } else {
      joined = {
        k: tf.keep(tf.concat([base.k, k], 2)), // [B, H, P+F+t, K]
        v: tf.keep(tf.concat([base.v, v], 2)), // [B, H, P+F+t, V]
      };
    }
    if (previous !== null) tf.dispose([previous.k, previous.v]);
    this.#joined[layer] = joined;
    return joined;
  }

  #check(what: string, layer: number, k: tf.Tensor4D, v: tf.Tensor4D): void {
    if (layer !== this.#stepLayers) {
      throw new CacheError(
        `KVCache.${what}: expected layer ${this.#stepLayers} next in this step, got layer ${layer}`,
      );
    }
    if (k.rank !== 4 || v.rank !== 4 || k.shape[2] !== v.shape[2] || k.shape[0] !== v.shape[0]) {
      throw new CacheError(
        `KVCache.${what}: k and v must be [B, H, t, K] with the same B and t, got k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`,
      );
    }
    const newTokens = k.shape[2];
    if (layer === 0) {
      if (newTokens < 1 || newTokens > this.room) {
        throw new CacheError(
          `KVCache.${what}: a step holds 1..${this.room} tokens here (chunk of ${this.chunkLength} from position ${this.chunkStart}), got ${newTokens}`,
        );
      }
      this.#stepLength = newTokens;
    } else if (newTokens !== this.#stepLength) {
      throw new CacheError(
        `KVCache.${what}: layer ${layer} got ${newTokens} tokens, layer 0 had ${this.#stepLength}`,
      );
    }
  }

  #layerDone(): void {
    this.#stepLayers += 1;
    if (this.#stepLayers === this.nLayers) this.#finishStep();
  }

  #finishStep(): void {
    this.#position += this.#stepLength;
    this.#stepLayers = 0;
    this.#stepLength = 0;
    if (this.#position - this.#chunkStart === this.chunkLength) this.#rollChunk();
  }

  // The chunk ends: each layer's chunk k/v (its joined pair without the memory in front) become
  // the memory for the next chunk, trimmed to maxMemoryLength; the previous memory is freed.
  #rollChunk(keep?: readonly number[]): void {
    const start = this.#chunkStart;
    const layers = this.#joined.map((original, index) => {
      if (original === null) return { k: null, v: null, start };
      const memory = this.#pastOf(index);
      const pastLength = memory === null ? 0 : memory.k.shape[2];
      const part = keep === undefined ? original : this.#kept(original, pastLength, keep);
      // [memory ; chunk] -> [chunk at `keep`], ending where the chunk ends
      const offset = keep === undefined ? 0 : original.k.shape[2] - pastLength - keep.length;
      const total = part.k.shape[2];
      const chunk = total - (keep === undefined ? pastLength : 0);
      const length =
        this.maxMemoryLength === undefined ? chunk : Math.min(chunk, this.maxMemoryLength);
      if (length === total) return { k: part.k, v: part.v, start: start + offset };
      const drop = total - length;
      const trimmed = {
        k: tf.slice(part.k, [0, 0, drop, 0], [-1, -1, length, -1]) as tf.Tensor4D, // [B, H, M, K]
        v: tf.slice(part.v, [0, 0, drop, 0], [-1, -1, length, -1]) as tf.Tensor4D, // [B, H, M, V]
        start: start + offset + chunk - length,
      };
      tf.dispose([part.k, part.v]);
      return trimmed;
    });
    const memory = XLMemory.owning(
      {
        nLayers: this.nLayers,
        source: this.source,
        ...(this.maxMemoryLength === undefined ? {} : { maxLength: this.maxMemoryLength }),
      },
      layers,
    );
    this.#memory.dispose();
    this.#memory = memory;
    this.#joined = new Array(this.nLayers).fill(null);
    this.#chunkStart = this.#position;
  }

  // The chunk's positions `keep` of a joined [memory ; chunk] pair (owned; frees the pair).
  #kept(part: KeyValues, pastLength: number, keep: readonly number[]): KeyValues {
    const indices = tf.tensor1d(
      Int32Array.from(keep, (slot) => pastLength + slot),
      'int32',
    );
    const kept = {
      k: tf.keep(tf.gather(part.k, indices, 2)) as tf.Tensor4D, // [B, H, kept, K]
      v: tf.keep(tf.gather(part.v, indices, 2)) as tf.Tensor4D, // [B, H, kept, V]
    };
    tf.dispose([part.k, part.v, indices]);
    return kept;
  }

  #checkBetweenSteps(what: string): void {
    if (this.#stepLayers !== 0) {
      throw new CacheError(
        `KVCache.${what}: a step is in progress (${this.#stepLayers} of ${this.nLayers} layers)`,
      );
    }
  }
}
