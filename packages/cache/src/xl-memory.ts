// Transformer-XL memory: per layer, the UNROTATED keys and values of the last chunk
// (docs/architecture.md §1.2).
//
// Shape legend: B batch rows, H heads, P memory length (tokens), K key dim, V value dim.
// Every entry holds k [B, H, P, K], v [B, H, P, V] and `start`, the absolute (document) position
// of its first token.
//
// Chunk protocol. During a chunk the model reads `pastFor(i)` and writes `update(i, k, v, start)`
// for every layer i. Writes are STAGED: `pastFor` keeps returning the previous chunk's entries
// until every layer has been updated, and then the staged entries become the memory at once. So
// with the 'previous-layer' source, layer i at chunk c reads layer i-1's keys from chunk c-1 even
// though layer i-1 has already written chunk c's keys, and one object can be threaded through all
// chunks. (A fresh `memory.next()` per chunk works too.)
//
// Ownership rules (who disposes what):
// 1. `update()` stores REFERENCES and never disposes or keeps them. Call it inside the scope that
//    created k and v (the model's tf.tidy or the gradient function of a training window); that
//    scope owns them and frees them when it ends. This is what lets gradients flow through the
//    memory from chunk to chunk inside one window: nothing is copied, detached or freed early. A
//    slice taken to honour `maxLength` is created in the same scope and owned by it too.
// 2. `keep()`, `detach()` and `selectRows()` of an owning memory return a memory that OWNS its
//    tensors (tf.keep'd copies that outlive every tf.tidy). Call `dispose()` on it when done. To
//    carry memory to the next window, call `detach()` INSIDE the window's gradient function
//    (before its scope frees the chunk tensors) and dispose the result after the next window.
// 3. `dispose()` frees exactly the tensors this memory owns (owned entries, also ones replaced by
//    later updates, which are freed only now because a gradient tape may still need them) and
//    drops all references. On a memory that owns nothing it only drops references: safe to call.
// 4. A memory never disposes its input tensors, and methods returning a new memory leave the
//    source untouched: the caller disposes the source when it no longer needs it.
import * as tf from '@tensorflow/tfjs-core';
import { CacheError } from './cache-error';

export type MemorySource = 'previous-layer' | 'same-layer';

/** One layer's memory; k/v are unrotated, `start` is the position of the first cached token. */
export interface LayerMemory {
  k: tf.Tensor4D | null; // [B, H, P, K]
  v: tf.Tensor4D | null; // [B, H, P, V]
  start: number;
}

export interface PastMemory {
  k: tf.Tensor4D; // [B, H, P, K]
  v: tf.Tensor4D; // [B, H, P, V]
  start: number;
}

export interface XLMemoryOptions {
  nLayers: number;
  /** Which cache layer i attends to: layer i-1's ('previous-layer', upstream 003, default) or its own ('same-layer', 005). */
  source?: MemorySource;
  /** Keep at most the last `maxLength` tokens per layer (default: everything given to update). */
  maxLength?: number;
}

interface Entry {
  k: tf.Tensor4D; // [B, H, P, K]
  v: tf.Tensor4D; // [B, H, P, V]
  start: number;
  owned: boolean;
}

export class XLMemory {
  readonly nLayers: number;
  readonly source: MemorySource;
  readonly maxLength: number | undefined;

  #committed: (Entry | null)[];
  #staged: (Entry | null)[];
  #stagedCount = 0;
  #retired: Entry[] = [];
  #disposed = false;

  constructor(options: XLMemoryOptions) {
    const { nLayers } = options;
    if (!Number.isInteger(nLayers) || nLayers < 1) {
      throw new CacheError(`XLMemory: nLayers must be a positive integer, got ${nLayers}`);
    }
    const source = options.source ?? 'previous-layer';
    if (source !== 'previous-layer' && source !== 'same-layer') {
      throw new CacheError(
        `XLMemory: source must be 'previous-layer' or 'same-layer', got ${JSON.stringify(source)}`,
      );
    }
    if (
      options.maxLength !== undefined &&
      (!Number.isInteger(options.maxLength) || options.maxLength < 1)
    ) {
      throw new CacheError(
        `XLMemory: maxLength must be a positive integer, got ${options.maxLength}`,
      );
    }
    this.nLayers = nLayers;
    this.source = source;
    this.maxLength = options.maxLength;
    this.#committed = new Array(nLayers).fill(null);
    this.#staged = new Array(nLayers).fill(null);
  }

  /**
   * Wraps tensors the caller hands over: the new memory owns them (tf.keep'd here) and disposes
   * them in `dispose()`. Entries with null k/v stay empty. Used by KVCache and by loaders.
   */
  static owning(options: XLMemoryOptions, layers: readonly LayerMemory[]): XLMemory {
    const memory = new XLMemory(options);
    if (layers.length !== memory.nLayers) {
      throw new CacheError(
        `XLMemory.owning: expected ${memory.nLayers} layers, got ${layers.length}`,
      );
    }
    layers.forEach((layer, index) => {
      if (layer.k === null || layer.v === null) return;
      checkPair(`XLMemory.owning layer ${index}`, layer.k, layer.v);
      memory.#committed[index] = {
        k: tf.keep(layer.k),
        v: tf.keep(layer.v),
        start: layer.start,
        owned: true,
      };
    });
    memory.#checkConsistent();
    return memory;
  }

  /** An empty memory with the same options (for the one-new-memory-per-chunk style). */
  next(): XLMemory {
    return new XLMemory(this.#options());
  }

  /**
   * The memory layer `layer` attends to, per the source policy, from the last completed chunk:
   * 'previous-layer' -> layer-1's entry (null for layer 0), 'same-layer' -> its own. Null when
   * there is no memory yet. The tensors belong to this memory (or its scope): do not dispose them.
   */
  pastFor(layer: number): PastMemory | null {
    this.#checkAlive('pastFor');
    this.#checkLayer('pastFor', layer);
    const index = this.source === 'previous-layer' ? layer - 1 : layer;
    if (index < 0) return null;
    const entry = this.#committed[index];
    return entry === null || entry === undefined
      ? null
      : { k: entry.k, v: entry.v, start: entry.start };
  }

  /**
   * Records this chunk's unrotated k, v of `layer` (trimmed to the last `maxLength` tokens). The
   * write becomes visible to `pastFor` once every layer has been updated for this chunk. See the
   * ownership rules at the top of this file: the tensors are referenced, not kept or copied.
   */
  update(layer: number, k: tf.Tensor4D, v: tf.Tensor4D, start: number): void {
    this.#checkAlive('update');
    this.#checkLayer('update', layer);
    checkPair(`XLMemory.update layer ${layer}`, k, v);
    if (!Number.isInteger(start) || start < 0) {
      throw new CacheError(`XLMemory.update: start must be a non-negative integer, got ${start}`);
    }
    if (this.#staged[layer] !== null) {
      throw new CacheError(
        `XLMemory.update: layer ${layer} was already updated in this chunk (every layer updates once per chunk)`,
      );
    }
    let entry: Entry = { k, v, start, owned: false };
    const length = k.shape[2];
    if (this.maxLength !== undefined && length > this.maxLength) {
      const drop = length - this.maxLength;
      entry = {
        k: tf.slice(k, [0, 0, drop, 0], [-1, -1, this.maxLength, -1]), // [B, H, M, K]
        v: tf.slice(v, [0, 0, drop, 0], [-1, -1, this.maxLength, -1]), // [B, H, M, V]
        start: start + drop,
        owned: false,
      };
    }
    this.#staged[layer] = entry;
    this.#stagedCount += 1;
    if (this.#stagedCount === this.nLayers) this.#commitStaged();
  }

  /** Committed entries, layer by layer (k/v null for an empty layer). Not copies. */
  layers(): LayerMemory[] {
    return this.#committed.map((entry) =>
      entry === null
        ? { k: null, v: null, start: 0 }
        : { k: entry.k, v: entry.v, start: entry.start },
    );
  }

  /** Memory length in tokens (P) of the committed entries; 0 when empty. */
  get length(): number {
    const entry = this.#committed.find((candidate) => candidate !== null);
    return entry === undefined || entry === null ? 0 : entry.k.shape[2];
  }

  /** Absolute position right after the memorised tokens (the next chunk's start); 0 when empty. */
  get end(): number {
    const entry = this.#committed.find((candidate) => candidate !== null);
    return entry === undefined || entry === null ? 0 : entry.start + entry.k.shape[2];
  }

  /** Batch rows of the committed entries; 0 when empty. */
  get batchSize(): number {
    const entry = this.#committed.find((candidate) => candidate !== null);
    return entry === undefined || entry === null ? 0 : entry.k.shape[0];
  }

  /** True when no layer has committed entries. */
  get isEmpty(): boolean {
    return this.#committed.every((entry) => entry === null);
  }

  /** True when this memory owns (and will dispose) at least one tensor. */
  get ownsTensors(): boolean {
    return [...this.#committed, ...this.#staged, ...this.#retired].some(
      (entry) => entry?.owned === true,
    );
  }

  /** A copy that owns tf.keep'd tensors; gradients still flow through it inside the current tape. */
  keep(): XLMemory {
    return this.#derive('keep', (tensor) => tf.keep(tf.clone(tensor)), true);
  }

  /**
   * A copy that owns tf.keep'd tensors cut from the gradient tape: no gradient flows through it
   * into the tensors it was made from (their gradient is zero). Use it to carry memory across
   * training windows.
   */
  detach(): XLMemory {
    return this.#derive('detach', (tensor) => tf.keep(stopGradient(tensor)), true);
  }

  /**
   * Keeps batch rows `rows` (indices into the current rows, in the given order) of every entry,
   * e.g. dropping rows whose document ended. Owning memories give owning results; a memory of
   * scope-owned tensors gives scope-owned results (see the ownership rules).
   */
  selectRows(rows: readonly number[]): XLMemory {
    this.#checkAlive('selectRows');
    const batchSize = this.batchSize;
    for (const row of rows) {
      if (!Number.isInteger(row) || row < 0 || (batchSize > 0 && row >= batchSize)) {
        throw new CacheError(`XLMemory.selectRows: row ${row} is not in 0..${batchSize - 1}`);
      }
    }
    const allOwned = this.#committed.every((entry) => entry === null || entry.owned);
    const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
    try {
      return this.#derive(
        'selectRows',
        (tensor) => {
          const gathered = tf.gather(tensor, indices, 0) as tf.Tensor4D; // [rows, H, P, K]
          return allOwned ? tf.keep(gathered) : gathered;
        },
        allOwned,
      );
    } finally {
      indices.dispose();
    }
  }

  /** Frees every tensor this memory owns and drops all references (see rule 3). */
  dispose(): void {
    for (const entry of [...this.#committed, ...this.#staged, ...this.#retired]) {
      if (entry?.owned === true) tf.dispose([entry.k, entry.v]);
    }
    this.#committed.fill(null);
    this.#staged.fill(null);
    this.#stagedCount = 0;
    this.#retired = [];
    this.#disposed = true;
  }

  #derive(what: string, copy: (tensor: tf.Tensor4D) => tf.Tensor4D, owned: boolean): XLMemory {
    this.#checkAlive(what);
    if (this.#stagedCount !== 0) {
      throw new CacheError(
        `XLMemory.${what}: ${this.#stagedCount} of ${this.nLayers} layers were updated for the current chunk; finish the chunk first`,
      );
    }
    const result = new XLMemory(this.#options());
    this.#committed.forEach((entry, index) => {
      if (entry === null) return;
      result.#committed[index] = { k: copy(entry.k), v: copy(entry.v), start: entry.start, owned };
    });
    return result;
  }

  #commitStaged(): void {
    for (const entry of this.#committed) {
      // Owned tensors replaced now may still be needed by a gradient tape: free them in dispose().
      if (entry?.owned === true) this.#retired.push(entry);
    }
    this.#committed = this.#staged;
    this.#staged = new Array(this.nLayers).fill(null);
    this.#stagedCount = 0;
    this.#checkConsistent();
  }

  #checkConsistent(): void {
    const present = this.#committed.filter((entry): entry is Entry => entry !== null);
    const first = present[0];
    if (first === undefined) return;
    for (const entry of present) {
      if (
        entry.k.shape[0] !== first.k.shape[0] ||
        entry.k.shape[2] !== first.k.shape[2] ||
        entry.start !== first.start
      ) {
        throw new CacheError(
          `XLMemory: layers disagree: k [${entry.k.shape.join(', ')}] from ${entry.start} vs [${first.k.shape.join(', ')}] from ${first.start}`,
        );
      }
    }
  }

  #options(): XLMemoryOptions {
    return {
      nLayers: this.nLayers,
      source: this.source,
      ...(this.maxLength === undefined ? {} : { maxLength: this.maxLength }),
    };
  }

  #checkLayer(what: string, layer: number): void {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new CacheError(`XLMemory.${what}: layer ${layer} is not in 0..${this.nLayers - 1}`);
    }
  }

  #checkAlive(what: string): void {
    if (this.#disposed) throw new CacheError(`XLMemory.${what}: the memory was disposed`);
  }
}

/**
 * Identity in the forward pass with a zero gradient: the result is cut from the tape (tfjs has
 * no stop_gradient op). Outside a gradient scope it is a cheap copy.
 */
export function stopGradient<T extends tf.Tensor>(tensor: T): T {
  const cut = tf.customGrad((...inputs) => ({
    value: tf.clone(inputs[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return cut(tensor) as T;
}

function checkPair(what: string, k: tf.Tensor, v: tf.Tensor): void {
  if (k.rank !== 4 || v.rank !== 4) {
    throw new CacheError(
      `${what}: k and v must be [B, H, P, K], got k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`,
    );
  }
  if (k.shape[0] !== v.shape[0] || k.shape[1] !== v.shape[1] || k.shape[2] !== v.shape[2]) {
    throw new CacheError(
      `${what}: k [${k.shape.join(', ')}] and v [${v.shape.join(', ')}] disagree on B, H or P`,
    );
  }
}
