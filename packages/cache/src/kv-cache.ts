// Incremental key/value cache for generation with XL memory, chunked exactly like a full pass.
//
// Shape legend: B batch rows, H heads, t new tokens in this step, F tokens of the current chunk
// before this step, P memory length, K key dim, V value dim.
//
// Semantics (DESIGN §1.2, written down here because a full pass defines them): a full pass over a
// sequence cuts it into chunks of `chunkLength` (n_ctx) tokens starting at position 0. Token s
// belongs to chunk c = floor(s / n_ctx). In layer i its query sees
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
// Usage per step: for each layer i in order, compute the new tokens' unrotated k, v and call
// `attend(i, k, v)`; it returns the keys/values to attend to plus the rotary offsets and the
// causal diagonal. After the last layer the step is complete and `position` advances.
//
// Ownership: the cache owns what it stores (tf.keep'd) and frees replaced tensors immediately, so
// it is for inference only: do not call `attend` inside a gradient scope. `attend` never keeps
// or disposes its inputs; the tensors it returns are new and belong to the caller (normally the
// step's tf.tidy). `dispose()` frees everything the cache holds.
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

interface ChunkPart {
  k: tf.Tensor4D; // [B, H, F, K]
  v: tf.Tensor4D; // [B, H, F, V]
}

export class KVCache {
  readonly nLayers: number;
  readonly chunkLength: number;
  readonly memoryMode: 'xl' | 'none';
  readonly source: MemorySource;
  readonly policy: PositionPolicy;
  readonly maxMemoryLength: number | undefined;

  #position = 0; // tokens completed so far = position of the next token
  #current: (ChunkPart | null)[];
  #memory: XLMemory;
  #stepLength = 0; // t of the step in progress (0 when none)
  #stepLayers = 0; // layers already attended in the step in progress

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
    this.#current = new Array(nLayers).fill(null);
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
    return this.#position - (this.#position % this.chunkLength);
  }

  /** How many tokens the next step may hold without crossing a chunk boundary. */
  get room(): number {
    return this.chunkLength - (this.#position % this.chunkLength);
  }

  /** The memory (previous chunk) the current chunk attends to. Owned by the cache. */
  get memory(): XLMemory {
    return this.#memory;
  }

  /**
   * Adds the new tokens' unrotated k, v [B, H, t, K] for `layer` (layers in order 0..n-1 within a
   * step, each once, all with the same t <= room) and returns what that layer attends to.
   */
  attend(layer: number, k: tf.Tensor4D, v: tf.Tensor4D): AttentionInputs {
    if (layer !== this.#stepLayers) {
      throw new CacheError(
        `KVCache.attend: expected layer ${this.#stepLayers} next in this step, got layer ${layer}`,
      );
    }
    if (k.rank !== 4 || v.rank !== 4 || k.shape[2] !== v.shape[2] || k.shape[0] !== v.shape[0]) {
      throw new CacheError(
        `KVCache.attend: k and v must be [B, H, t, K] with the same B and t, got k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`,
      );
    }
    const newTokens = k.shape[2];
    if (layer === 0) {
      if (newTokens < 1 || newTokens > this.room) {
        throw new CacheError(
          `KVCache.attend: a step holds 1..${this.room} tokens here (chunk of ${this.chunkLength} from position ${this.chunkStart}), got ${newTokens}`,
        );
      }
      this.#stepLength = newTokens;
    } else if (newTokens !== this.#stepLength) {
      throw new CacheError(
        `KVCache.attend: layer ${layer} got ${newTokens} tokens, layer 0 had ${this.#stepLength}`,
      );
    }

    // Append to this layer's current chunk (owned by the cache).
    const previous = this.#current[layer];
    const current: ChunkPart =
      previous === null || previous === undefined
        ? { k: tf.keep(tf.clone(k)), v: tf.keep(tf.clone(v)) }
        : {
            k: tf.keep(tf.concat([previous.k, k], 2)), // [B, H, F+t, K]
            v: tf.keep(tf.concat([previous.v, v], 2)), // [B, H, F+t, V]
          };
    if (previous !== null && previous !== undefined) tf.dispose([previous.k, previous.v]);
    this.#current[layer] = current;

    const past = this.memoryMode === 'xl' ? this.#memory.pastFor(layer) : null;
    const pastLength = past === null ? 0 : past.k.shape[2];
    const chunkSoFar = current.k.shape[2]; // F + t
    const offsets = positions(this.policy, pastLength, chunkSoFar, this.chunkStart);
    const keys =
      past === null ? tf.clone(current.k) : (tf.concat([past.k, current.k], 2) as tf.Tensor4D); // [B, H, P+F+t, K]
    const values =
      past === null ? tf.clone(current.v) : (tf.concat([past.v, current.v], 2) as tf.Tensor4D); // [B, H, P+F+t, V]

    this.#stepLayers += 1;
    if (this.#stepLayers === this.nLayers) this.#finishStep();
    return {
      keys,
      values,
      // queries are the last t of the F+t current tokens
      queryOffset: offsets.queryOffset + chunkSoFar - newTokens,
      keyOffset: offsets.keyOffset,
      pastLength,
      diagonal: pastLength + chunkSoFar - newTokens,
    };
  }

  /** Keeps batch rows `rows` of everything cached (e.g. drop finished sequences). */
  selectRows(rows: readonly number[]): void {
    this.#checkBetweenSteps('selectRows');
    const memory = this.#memory.selectRows(rows);
    this.#memory.dispose();
    this.#memory = memory;
    const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
    this.#current = this.#current.map((part) => {
      if (part === null) return null;
      const selected = {
        k: tf.keep(tf.gather(part.k, indices, 0)) as tf.Tensor4D, // [rows, H, F, K]
        v: tf.keep(tf.gather(part.v, indices, 0)) as tf.Tensor4D, // [rows, H, F, V]
      };
      tf.dispose([part.k, part.v]);
      return selected;
    });
    indices.dispose();
  }

  /** Frees everything the cache holds and starts over at position 0. */
  reset(): void {
    for (const part of this.#current) if (part !== null) tf.dispose([part.k, part.v]);
    this.#current = new Array(this.nLayers).fill(null);
    this.#memory.dispose();
    this.#memory = this.#memory.next();
    this.#position = 0;
    this.#stepLayers = 0;
    this.#stepLength = 0;
  }

  /** Frees everything the cache holds. */
  dispose(): void {
    this.reset();
  }

  #finishStep(): void {
    this.#position += this.#stepLength;
    this.#stepLayers = 0;
    this.#stepLength = 0;
    if (this.#position % this.chunkLength !== 0) return;
    // The chunk is full: its k/v become the memory for the next chunk (trimmed by XLMemory.owning
    // to maxMemoryLength), the previous memory is freed.
    const start = this.#position - this.chunkLength;
    const layers = this.#current.map((part) => {
      if (part === null) return { k: null, v: null, start };
      const length = part.k.shape[2];
      const keep =
        this.maxMemoryLength === undefined ? length : Math.min(length, this.maxMemoryLength);
      if (keep === length) return { k: part.k, v: part.v, start };
      const trimmed = {
        k: tf.slice(part.k, [0, 0, length - keep, 0], [-1, -1, keep, -1]) as tf.Tensor4D, // [B, H, M, K]
        v: tf.slice(part.v, [0, 0, length - keep, 0], [-1, -1, keep, -1]) as tf.Tensor4D, // [B, H, M, V]
        start: start + length - keep,
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
    this.#current = new Array(this.nLayers).fill(null);
  }

  #checkBetweenSteps(what: string): void {
    if (this.#stepLayers !== 0) {
      throw new CacheError(
        `KVCache.${what}: a step is in progress (${this.#stepLayers} of ${this.nLayers} layers)`,
      );
    }
  }
}
