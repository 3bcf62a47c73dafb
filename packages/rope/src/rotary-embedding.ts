// Rotary position embeddings (RoFormer), numerically matching `rotary-embedding-torch` in fp32.
//
// Shape legend: T sequence length (along `seqAxis`), D feature dim (last axis), R rotary dim
// (`options.dim`, R <= D; features R..D-1 pass through unchanged), C cached table rows.
//
// Math: invFreq[j] = 1 / theta^(2j / R), j = 0..R/2-1. Position p (an integer, divided by
// `interpolationFactor`) rotates pair j by the angle p * invFreq[j]:
//   out = x * cos + pairSwap(x) * sin,  pairSwap maps each pair (a, b) to (-b, a).
// Layout 'interleaved' (rotary-embedding-torch): pairs are (x0, x1), (x2, x3), ...
// Layout 'half' (GPT-NeoX): pairs are (x_j, x_{j + R/2}).
// xpos (Sun et al. 2022): queries are additionally multiplied by
//   scale[p, j] = ((2j + 0.4 R) / (1.4 R)) ^ ((p - center) / scaleBase)
// and keys by 1 / scale, so q·k still depends only on the relative position.
//
// Precision 'bfloat16' reproduces the rotary arithmetic of rotary-embedding-torch 0.3.x on a model
// converted with `.bfloat16()` (upstream BakaLLM trained that way): the library built positions
// as `arange(T, dtype=bf16) + offset` and multiplied them with its `freqs` parameter, which the
// conversion had made bf16, so every step was rounded to bfloat16 (round to nearest even):
//   position[i] = bf16(bf16(bf16(i) + bf16(offset)) / interpolationFactor)
//   angle[i, j] = bf16(position[i] * bf16(invFreq[j]))
//   cos, sin    = bf16(cos(angle)), bf16(sin(angle))   (computed in fp32, then rounded)
// Because bf16(i) and bf16(offset) are rounded separately, a row depends on (offset, i), not on
// offset + i alone, so such tables are built per (offset, length) window and a few are cached.
// Only the tables are rounded: the inputs, the multiply-add with the tables and the result stay
// float32 (the library ran those in bf16 too, on bf16 queries and keys; that is not emulated).
//
// Table ownership: the cos/sin tables are tensors owned by the RotaryEmbedding. They are built
// once, kept (tf.keep, so a surrounding tf.tidy does not free them) and regrown (old ones
// disposed) only when a call needs a position beyond the current capacity. Every tensor a call
// creates besides its result is freed inside the call's own tf.tidy.
import { BakaError } from '@baka/common';
import * as tf from '@tensorflow/tfjs-core';

export type RotaryLayout = 'interleaved' | 'half';

/** Arithmetic of positions, angles and cos/sin: float32, or bfloat16 as rotary-embedding-torch 0.3.x. */
export type RotaryPrecision = 'float32' | 'bfloat16';

export interface RotaryEmbeddingOptions {
  /** Rotary dim R (even). Only the first R features of the last axis are rotated. */
  dim: number;
  /** Frequency base, default 10000. */
  theta?: number;
  /** Which features form a rotating pair, default 'interleaved' (rotary-embedding-torch). */
  layout?: RotaryLayout;
  /** Positions are divided by this factor (position interpolation), default 1, must be >= 1. */
  interpolationFactor?: number;
  /** Length-extrapolatable scaling (xpos). Queries and keys must then be rotated with a role. */
  xpos?: { scaleBase: number };
  /**
   * Multiplies the inverse frequencies (in fp32, like `freqs.mul_(scale)` on
   * rotary-embedding-torch's `freqs`), default 1. A positive finite number.
   */
  frequencyScale?: number;
  /**
   * 'float32' (default) or 'bfloat16': positions, frequencies, their product and cos/sin rounded
   * to bfloat16 at each step, as rotary-embedding-torch 0.3.x computed them after `.bfloat16()`.
   * Inputs and outputs stay float32. Not combinable with xpos.
   */
  precision?: RotaryPrecision;
}

export interface XposRole {
  /** Queries are multiplied by the xpos scale, keys by its inverse. */
  role: 'query' | 'key';
  /** Position (after interpolation) where the scale is 1. */
  center: number;
}

export interface RotateOptions {
  /** Position of the first element along `seqAxis`, a non-negative integer. Default 0. */
  offset?: number;
  /** The sequence axis, default -2 (`[..., T, D]`). Must not be the last axis. */
  seqAxis?: number;
  /** Required when the embedding uses xpos, forbidden otherwise. */
  xpos?: XposRole;
}

export interface RotateQueriesAndKeysOptions {
  /** Position of the first query, default 0. */
  queryOffset?: number;
  /** Position of the first key, default 0. */
  keyOffset?: number;
  /** The sequence axis of both tensors, default -2. */
  seqAxis?: number;
  /**
   * xpos only: the position where the scale is 1. Default `keyOffset / interpolationFactor +
   * floor(keyLength / 2)`, which equals rotary-embedding-torch's `rotate_queries_and_keys` when
   * queries and keys share positions 0..T-1.
   */
  xposCenter?: number;
}

/** Cached tables: row p holds position p (rows 0..capacity-1), columns follow the layout. */
export interface RotaryTables {
  cos: tf.Tensor2D; // [C, R]
  sin: tf.Tensor2D; // [C, R]
}

/** A bad option or input; `isUserError` lets a CLI print the message without a stack. */
export class RotaryEmbeddingError extends BakaError {
  override name = 'RotaryEmbeddingError';
}

const MINIMUM_CAPACITY = 64;
/**
 * Up to this many elements the native backends swap pairs with one gather (measured on
 * TensorFlow, [1, 4, T, 32]: T = 1 27 us against 165 us for reshape + reverse + reshape, T = 64
 * 60 against 140); larger tensors reverse (T = 576: 215 against 410 us).
 */
const GATHER_SWAP_MAX_SIZE = 16384;
/** How many (offset, length) windows a 'bfloat16' embedding keeps (least recently used go). */
const WINDOW_CACHE_SIZE = 16;

interface WindowTables {
  cos: tf.Tensor2D; // [T, R]
  signedSin: tf.Tensor2D; // [T, R]
}

const bfloat16Scratch = new Float32Array(1);
const bfloat16Bits = new Uint32Array(bfloat16Scratch.buffer);

/**
 * `value` rounded to float32, then to bfloat16 (round to nearest, ties to even), as a number.
 * Infinities and NaN pass through unchanged.
 */
export function roundToBfloat16(value: number): number {
  bfloat16Scratch[0] = value;
  const bits = bfloat16Bits[0] as number;
  if ((bits & 0x7f800000) === 0x7f800000) return bfloat16Scratch[0] as number;
  bfloat16Bits[0] = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  return bfloat16Scratch[0] as number;
}

export class RotaryEmbedding {
  readonly dim: number;
  readonly theta: number;
  readonly layout: RotaryLayout;
  readonly interpolationFactor: number;
  readonly xpos: { scaleBase: number } | undefined;
  /** [R/2] inverse frequencies in fp32, as rotary-embedding-torch computes them (its `freqs`). */
  readonly invFreq: Float32Array;
  readonly precision: RotaryPrecision;
  /** [R/2] the frequencies the angles use: invFreq, or invFreq rounded to bf16 ('bfloat16'). */
  readonly angleFrequencies: Float32Array;

  #capacity = 0;
  #tableBuilds = 0;
  #cos: tf.Tensor2D | null = null; // [C, R]
  #sin: tf.Tensor2D | null = null; // [C, R]
  #signedSin: tf.Tensor2D | null = null; // [C, R], sin with the sign of pairSwap folded in
  // 'bfloat16' only: tables of recent (offset, length) windows, least recently used first
  readonly #windows = new Map<string, WindowTables>();
  #windowBuilds = 0;
  // per feature dim: each feature's pair partner (for the gather swap), built once
  readonly #swapIndices = new Map<number, tf.Tensor1D>();
  // the float32 table rows of the last one-position call (offset): generation rotates every
  // layer's queries and keys at the same position, so one step slices the tables once
  #row: { offset: number; cos: tf.Tensor2D; signedSin: tf.Tensor2D } | null = null;

  constructor(options: RotaryEmbeddingOptions) {
    const { dim } = options;
    if (!Number.isInteger(dim) || dim < 2 || dim % 2 !== 0) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: dim must be a positive even integer, got ${dim}`,
      );
    }
    const theta = options.theta ?? 10000;
    if (!(theta > 1) || !Number.isFinite(theta)) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: theta must be a finite number > 1, got ${theta}`,
      );
    }
    const layout = options.layout ?? 'interleaved';
    if (layout !== 'interleaved' && layout !== 'half') {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: layout must be 'interleaved' or 'half', got ${JSON.stringify(layout)}`,
      );
    }
    const interpolationFactor = options.interpolationFactor ?? 1;
    if (!(interpolationFactor >= 1) || !Number.isFinite(interpolationFactor)) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: interpolationFactor must be a finite number >= 1, got ${interpolationFactor}`,
      );
    }
    if (options.xpos !== undefined) {
      const { scaleBase } = options.xpos;
      if (!(scaleBase > 0) || !Number.isFinite(scaleBase)) {
        throw new RotaryEmbeddingError(
          `RotaryEmbedding: xpos.scaleBase must be a positive number, got ${scaleBase}`,
        );
      }
    }
    this.dim = dim;
    this.theta = theta;
    this.layout = layout;
    this.interpolationFactor = interpolationFactor;
    this.xpos = options.xpos === undefined ? undefined : { scaleBase: options.xpos.scaleBase };
    const frequencyScale = options.frequencyScale ?? 1;
    if (!(frequencyScale > 0) || !Number.isFinite(frequencyScale)) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: frequencyScale must be a positive finite number, got ${frequencyScale}`,
      );
    }
    this.invFreq = inverseFrequencies(dim, theta, frequencyScale);
    const precision = options.precision ?? 'float32';
    if (precision !== 'float32' && precision !== 'bfloat16') {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding: precision must be 'float32' or 'bfloat16', got ${JSON.stringify(precision)}`,
      );
    }
    if (precision === 'bfloat16' && this.xpos !== undefined) {
      throw new RotaryEmbeddingError(
        "RotaryEmbedding: precision 'bfloat16' reproduces rotary-embedding-torch 0.3.x without xpos; xpos needs 'float32'",
      );
    }
    this.precision = precision;
    this.angleFrequencies =
      precision === 'bfloat16' ? this.invFreq.map(roundToBfloat16) : this.invFreq;
  }

  /** Number of positions the cached tables cover. */
  get capacity(): number {
    return this.#capacity;
  }

  /** How many times the tables have been built (grows only when a longer range is needed). */
  get tableBuilds(): number {
    return this.#tableBuilds;
  }

  /** 'bfloat16' only: how many (offset, length) window tables have been built (reuse is free). */
  get windowBuilds(): number {
    return this.#windowBuilds;
  }

  /**
   * The rotary position of element `index` of a sequence starting at `offset` (the number the
   * angles multiply): (offset + index) / interpolationFactor in fp32, or with 'bfloat16' each of
   * index, offset, their sum and the quotient rounded to bf16 as rotary-embedding-torch 0.3.x did.
   */
  position(offset: number, index: number): number {
    if (this.precision === 'float32')
      return Math.fround((offset + index) / this.interpolationFactor);
    const sum = roundToBfloat16(roundToBfloat16(index) + roundToBfloat16(offset));
    return roundToBfloat16(Math.fround(sum / this.interpolationFactor));
  }

  /**
   * The cached cos/sin tables covering at least positions 0..length-1 (rows beyond `length` may
   * exist), for a sequence starting at offset 0 (with 'bfloat16' row p is position bf16(p)).
   * Owned by this object: do not dispose them; they stay valid until the tables grow or
   * `dispose()` is called.
   */
  tables(length: number): RotaryTables {
    this.#ensureCapacity(length);
    return { cos: this.#cos as tf.Tensor2D, sin: this.#sin as tf.Tensor2D };
  }

  /**
   * Rotates the first `dim` features of `x` at positions offset..offset+T-1 along `seqAxis`.
   * Returns a new tensor (the caller owns it); `x` is not disposed.
   */
  rotate<R extends tf.Rank>(x: tf.Tensor<R>, options: RotateOptions = {}): tf.Tensor<R> {
    const offset = options.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding.rotate: offset must be a non-negative integer, got ${offset}`,
      );
    }
    if (x.dtype !== 'float32') {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding.rotate: expected a float32 tensor, got ${x.dtype}`,
      );
    }
    const rank = x.rank;
    const requestedAxis = options.seqAxis ?? -2;
    const seqAxis = requestedAxis < 0 ? rank + requestedAxis : requestedAxis;
    if (!Number.isInteger(requestedAxis) || seqAxis < 0 || seqAxis > rank - 2) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding.rotate: seqAxis ${requestedAxis} is not a non-feature axis of a tensor of shape [${x.shape.join(', ')}]`,
      );
    }
    const featureDim = x.shape[rank - 1] as number;
    if (this.dim > featureDim) {
      throw new RotaryEmbeddingError(
        `RotaryEmbedding.rotate: rotary dim ${this.dim} exceeds the feature dim of shape [${x.shape.join(', ')}]`,
      );
    }
    if (this.xpos !== undefined && options.xpos === undefined) {
      throw new RotaryEmbeddingError(
        'RotaryEmbedding.rotate: this embedding uses xpos; pass options.xpos ({ role, center }) or use rotateQueriesAndKeys',
      );
    }
    if (this.xpos === undefined && options.xpos !== undefined) {
      throw new RotaryEmbeddingError(
        'RotaryEmbedding.rotate: options.xpos given but the embedding has no xpos option',
      );
    }
    const seqLength = x.shape[seqAxis] as number;
    const rotaryDim = this.dim;
    const xposRole = options.xpos;
    const window = this.precision === 'bfloat16' ? this.#window(offset, seqLength) : null;
    if (window === null) this.#ensureCapacity(offset + seqLength);
    const cosTable = window?.cos ?? (this.#cos as tf.Tensor2D);
    const signedSinTable = window?.signedSin ?? (this.#signedSin as tf.Tensor2D);
    const tableRow = window === null ? offset : 0;

    // one position, outside any gradient scope (a tape would keep the rows, which the next
    // position's call frees)
    const row =
      window === null &&
      xposRole === undefined &&
      seqLength === 1 &&
      tf.engine().state.gradientDepth === 0;
    const rowTables = row ? this.#rowTables(offset) : null;
    return tf.tidy(() => {
      let cos: tf.Tensor =
        rowTables?.cos ?? tf.slice(cosTable, [tableRow, 0], [seqLength, rotaryDim]); // [T, R]
      let sin: tf.Tensor =
        rowTables?.signedSin ?? tf.slice(signedSinTable, [tableRow, 0], [seqLength, rotaryDim]); // [T, R]
      if (xposRole !== undefined) {
        const scale = tf.tensor2d(this.#xposScale(offset, seqLength, xposRole), [
          seqLength,
          rotaryDim,
        ]); // [T, R]
        cos = tf.mul(cos, scale);
        sin = tf.mul(sin, scale);
      }
      if (rotaryDim < featureDim) {
        // Pass-through features: cos 1, sin 0, swapped with themselves, so out = x exactly.
        cos = tf.concat([cos, tf.ones([seqLength, featureDim - rotaryDim])], 1); // [T, D]
        sin = tf.concat([sin, tf.zeros([seqLength, featureDim - rotaryDim])], 1); // [T, D]
      }
      // Tables broadcast against x from the right: [T, 1, .., 1, D] with T on the sequence axis.
      // (With seqAxis = -2 that is [T, D], which backends broadcast without index arithmetic.)
      if (seqAxis !== rank - 2) {
        const tableShape = [seqLength, ...new Array(rank - 2 - seqAxis).fill(1), featureDim];
        cos = tf.reshape(cos, tableShape); // [T, .., D]
        sin = tf.reshape(sin, tableShape); // [T, .., D]
      }
      // pairSwap(x): each pair (a, b) -> (b, a); the minus sign of (-b, a) lives in the sin table.
      const swapped = this.#pairSwap(x, featureDim); // [..., D]
      return tf.add(tf.mul(x, cos), tf.mul(swapped, sin)) as tf.Tensor<R>; // [..., D]
    });
  }

  // The float32 cos / signed sin rows [1, R] of position `offset` (kept; replaced by the next
  // offset asked for, or freed by dispose).
  #rowTables(offset: number): { cos: tf.Tensor2D; signedSin: tf.Tensor2D } {
    if (this.#row?.offset === offset) return this.#row;
    const rotaryDim = this.dim;
    const cos = tf.keep(tf.slice(this.#cos as tf.Tensor2D, [offset, 0], [1, rotaryDim])); // [1, R]
    const signedSin = tf.keep(
      tf.slice(this.#signedSin as tf.Tensor2D, [offset, 0], [1, rotaryDim]),
    ); // [1, R]
    this.#disposeRow();
    this.#row = { offset, cos, signedSin };
    return this.#row;
  }

  #disposeRow(): void {
    this.#row?.cos.dispose();
    this.#row?.signedSin.dispose();
    this.#row = null;
  }

  /**
   * Rotates queries at queryOffset.. and keys at keyOffset.. (each along seqAxis). With xpos,
   * queries are scaled by the xpos scale and keys by its inverse, both around one centre, so
   * attention scores depend only on relative positions. Returns new tensors owned by the caller.
   */
  rotateQueriesAndKeys<R extends tf.Rank>(
    queries: tf.Tensor<R>,
    keys: tf.Tensor<R>,
    options: RotateQueriesAndKeysOptions = {},
  ): [tf.Tensor<R>, tf.Tensor<R>] {
    const queryOffset = options.queryOffset ?? 0;
    const keyOffset = options.keyOffset ?? 0;
    const seqAxis = options.seqAxis ?? -2;
    if (this.xpos === undefined) {
      return [
        this.rotate(queries, { offset: queryOffset, seqAxis }),
        this.rotate(keys, { offset: keyOffset, seqAxis }),
      ];
    }
    const keyAxis = seqAxis < 0 ? keys.rank + seqAxis : seqAxis;
    const keyLength = keys.shape[keyAxis] ?? 0;
    const center =
      options.xposCenter ?? keyOffset / this.interpolationFactor + Math.floor(keyLength / 2);
    const rotatedQueries = this.rotate(queries, {
      offset: queryOffset,
      seqAxis,
      xpos: { role: 'query', center },
    });
    const rotatedKeys = this.rotate(keys, {
      offset: keyOffset,
      seqAxis,
      xpos: { role: 'key', center },
    });
    return [rotatedQueries, rotatedKeys];
  }

  /** Frees the cached tables. Later calls rebuild them. */
  dispose(): void {
    this.#disposeRow();
    for (const indices of this.#swapIndices.values()) indices.dispose();
    this.#swapIndices.clear();
    this.#cos?.dispose();
    this.#sin?.dispose();
    this.#signedSin?.dispose();
    this.#cos = null;
    this.#sin = null;
    this.#signedSin = null;
    this.#capacity = 0;
    for (const window of this.#windows.values()) {
      window.cos.dispose();
      window.signedSin.dispose();
    }
    this.#windows.clear();
  }

  // Swaps the features of every pair along the last axis (features beyond R stay in place).
  // Two equivalent implementations, picked for speed: the pure-JS 'cpu' backend gathers (its
  // reverse/concat kernels do per-element index arithmetic and are ~5x slower), and so do other
  // backends on small tensors (one op instead of three); on larger ones they reverse pairs / swap
  // halves (TensorFlow's reverse is ~2x faster than its gather there). The swap is its own
  // inverse and transpose, so the gather's gradient is the same gather of dy, cheaper than the
  // generic gather gradient (a segment sum).
  #pairSwap(x: tf.Tensor, featureDim: number): tf.Tensor {
    const rank = x.rank;
    const axis = rank - 1;
    if (tf.getBackend() === 'cpu' || x.size <= GATHER_SWAP_MAX_SIZE) {
      const swap = tf.customGrad((...inputs) => ({
        value: tf.gather(inputs[0] as tf.Tensor, this.#pairSwapIndices(featureDim), axis),
        gradFunc: (dy: tf.Tensor) => tf.gather(dy, this.#pairSwapIndices(featureDim), axis),
      }));
      return swap(x);
    }
    const rotaryDim = this.dim;
    const partial = rotaryDim < featureDim;
    const size = [...x.shape];
    size[axis] = rotaryDim;
    const middle = partial ? tf.slice(x, new Array(rank).fill(0), size) : x; // [..., R]
    let swapped: tf.Tensor;
    if (this.layout === 'interleaved') {
      const pairs = tf.reshape(middle, [...middle.shape.slice(0, axis), rotaryDim / 2, 2]); // [..., R/2, 2]
      swapped = tf.reshape(tf.reverse(pairs, -1), middle.shape); // [..., R]
    } else {
      const half = [...middle.shape];
      half[axis] = rotaryDim / 2;
      const secondBegin = new Array(rank).fill(0);
      secondBegin[axis] = rotaryDim / 2;
      const first = tf.slice(middle, new Array(rank).fill(0), half); // [..., R/2]
      const second = tf.slice(middle, secondBegin, half); // [..., R/2]
      swapped = tf.concat([second, first], axis); // [..., R]
    }
    if (!partial) return swapped;
    const restBegin = new Array(rank).fill(0);
    restBegin[axis] = rotaryDim;
    const rest = tf.slice(x, restBegin, new Array(rank).fill(-1)); // [..., D - R]
    return tf.concat([swapped, rest], axis); // [..., D]
  }

  // Feature index each output feature takes its partner from: the other element of its pair
  // (interleaved: c xor 1; half: c +- R/2); features beyond R map to themselves. Kept per
  // feature dim until dispose().
  #pairSwapIndices(featureDim: number): tf.Tensor1D {
    const cached = this.#swapIndices.get(featureDim);
    if (cached !== undefined) return cached;
    const half = this.dim / 2;
    const indices = new Int32Array(featureDim);
    for (let column = 0; column < featureDim; column++) {
      if (column >= this.dim) indices[column] = column;
      else if (this.layout === 'interleaved') indices[column] = column ^ 1;
      else indices[column] = column < half ? column + half : column - half;
    }
    const tensor = tf.keep(tf.tensor1d(indices, 'int32'));
    this.#swapIndices.set(featureDim, tensor);
    return tensor;
  }

  #ensureCapacity(length: number): void {
    if (length <= this.#capacity && this.#cos !== null) return;
    const capacity = Math.max(length, this.#capacity * 2, MINIMUM_CAPACITY);
    const rotaryDim = this.dim;
    const { cos, sin, signedSin } = this.#buildTables(0, capacity);
    this.#cos?.dispose();
    this.#sin?.dispose();
    this.#signedSin?.dispose();
    this.#cos = tf.keep(tf.tensor2d(cos, [capacity, rotaryDim]));
    this.#sin = tf.keep(tf.tensor2d(sin, [capacity, rotaryDim]));
    this.#signedSin = tf.keep(tf.tensor2d(signedSin, [capacity, rotaryDim]));
    this.#capacity = capacity;
    this.#tableBuilds += 1;
  }

  // 'bfloat16': the [T, R] tables of positions offset.., index 0..length-1, from the cache.
  #window(offset: number, length: number): WindowTables {
    const key = `${offset}:${length}`;
    const cached = this.#windows.get(key);
    if (cached !== undefined) {
      this.#windows.delete(key); // most recently used last
      this.#windows.set(key, cached);
      return cached;
    }
    const { cos, signedSin } = this.#buildTables(offset, length);
    const window = {
      cos: tf.keep(tf.tensor2d(cos, [length, this.dim])),
      signedSin: tf.keep(tf.tensor2d(signedSin, [length, this.dim])),
    };
    this.#windows.set(key, window);
    this.#windowBuilds += 1;
    if (this.#windows.size > WINDOW_CACHE_SIZE) {
      // A tape that recorded an evicted table holds its own reference, so gradients stay valid.
      const [oldestKey, oldest] = this.#windows.entries().next().value as [string, WindowTables];
      oldest.cos.dispose();
      oldest.signedSin.dispose();
      this.#windows.delete(oldestKey);
    }
    return window;
  }

  // Rows 0..length-1 = elements of a sequence starting at `offset` (see `position`).
  #buildTables(
    offset: number,
    length: number,
  ): { cos: Float32Array; sin: Float32Array; signedSin: Float32Array } {
    const rotaryDim = this.dim;
    const half = rotaryDim / 2;
    const frequencies = this.angleFrequencies;
    // fp32 steps as the reference: position, then times the inverse frequency, then cos/sin in
    // fp32; 'bfloat16' rounds each of those results to bf16.
    const round = this.precision === 'bfloat16' ? roundToBfloat16 : Math.fround;
    const cos = new Float32Array(length * rotaryDim);
    const sin = new Float32Array(length * rotaryDim);
    const signedSin = new Float32Array(length * rotaryDim);
    for (let row = 0; row < length; row++) {
      const position = this.position(offset, row);
      for (let column = 0; column < rotaryDim; column++) {
        const pair = this.layout === 'interleaved' ? column >> 1 : column % half;
        const firstOfPair = this.layout === 'interleaved' ? column % 2 === 0 : column < half;
        const angle = round(Math.fround(position * (frequencies[pair] as number)));
        const index = row * rotaryDim + column;
        const sine = round(Math.fround(Math.sin(angle)));
        cos[index] = round(Math.fround(Math.cos(angle)));
        sin[index] = sine;
        signedSin[index] = firstOfPair ? -sine : sine;
      }
    }
    return { cos, sin, signedSin };
  }

  // [T, R] xpos scale (or its inverse for keys) for positions offset..offset+T-1.
  #xposScale(offset: number, length: number, xposRole: XposRole): Float32Array {
    const scaleBase = (this.xpos as { scaleBase: number }).scaleBase;
    const rotaryDim = this.dim;
    const half = rotaryDim / 2;
    const base = new Float64Array(half);
    const shift = Math.fround(0.4 * rotaryDim);
    const denominator = Math.fround(1.4 * rotaryDim);
    for (let pair = 0; pair < half; pair++)
      base[pair] = Math.fround(Math.fround(2 * pair + shift) / denominator);
    const out = new Float32Array(length * rotaryDim);
    for (let row = 0; row < length; row++) {
      const position = Math.fround((offset + row) / this.interpolationFactor);
      const power = Math.fround(Math.fround(position - xposRole.center) / scaleBase);
      for (let column = 0; column < rotaryDim; column++) {
        const pair = this.layout === 'interleaved' ? column >> 1 : column % half;
        const scale = Math.fround((base[pair] as number) ** power);
        out[row * rotaryDim + column] = xposRole.role === 'query' ? scale : Math.fround(1 / scale);
      }
    }
    return out;
  }
}

/** [R/2] fp32 inverse frequencies 1 / theta^(2j / R), with fp32 rounding at each step. */
export function inverseFrequencies(dim: number, theta = 10000, scale = 1): Float32Array {
  const out = new Float32Array(dim / 2);
  const factor = Math.fround(scale);
  for (let pair = 0; pair < dim / 2; pair++) {
    const exponent = Math.fround((2 * pair) / dim);
    const frequency = Math.fround(1 / Math.fround(theta ** exponent));
    // times `scale` in fp32, like `freqs.mul_(scale)` on rotary-embedding-torch's freqs
    out[pair] = scale === 1 ? frequency : Math.fround(frequency * factor);
  }
  return out;
}
