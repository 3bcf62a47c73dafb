// Sequence-state kinds: what a model carries from chunk to chunk and from call to call (window
// to window in training, segment to segment in evaluation, chunk to chunk in generation), chosen
// by `memory` in the config. The layer stack, the trainer, evaluation, checkpoints and generation
// talk to a kind only through these interfaces; `xl` (Transformer-XL memory) and `none` are the
// kinds today (kinds/xl.ts). docs/architecture.md section 6.2 describes the interface.
//
// Shape legend: B batch rows.
import type * as tf from '@tensorflow/tfjs-core';
import type { LayerStateIn, LayerStateOut } from './baka-net';
import type { BakaConfig } from './config';

/** A state's tensors and metadata as a checkpoint stores them (memory.safetensors). */
export interface SavedState {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** Text metadata; `format` names the kind that reads it back. */
  metadata: Record<string, string> & { format: string };
}

/**
 * What one call hands to the next. Ownership follows @baka/cache's XL memory: a state returned
 * by a forward call holds tensors of the caller's scope (free them with that scope, or call
 * `detach()` inside it); `detach()` and `selectRows()` return states that own their tensors, and
 * `dispose()` frees exactly what a state owns.
 */
export interface SequenceState {
  /** The registry name of its kind. */
  readonly kind: string;
  readonly batchSize: number;
  /** Position of the next chunk's first slot (counts every position the model ran). */
  readonly end: number;
  /** Every tensor it references (to carry them out of a tf.tidy). */
  tensors(): tf.Tensor[];
  /** An owning copy with the gradient cut. */
  detach(): SequenceState;
  /** An owning copy of some rows, in the order given (rows that continue into the next window). */
  selectRows(rows: readonly number[]): SequenceState;
  dispose(): void;
  save(): SavedState;
}

/** One forward call's chunk loop as a kind runs it. */
export interface ChunkPass {
  /** Position of the call's first chunk. */
  readonly start: number;
  /** The chunk's input [B, W, D] -> what the layers run over (e.g. with memory tokens added). */
  enter?(x: tf.Tensor3D): tf.Tensor3D;
  /** Every layer's state in for the chunk starting at `chunkStart` (taken before any write). */
  views(chunkStart: number): LayerStateIn[];
  /**
   * Every layer's state out of that chunk; `start` is the position of the first written slot (the
   * chunk's start, later when memory tokens are kept out of the writes, kinds/memory-tokens.ts).
   */
  write(outs: readonly LayerStateOut[], start: number): void;
  /** The last layer's output over what `enter` gave -> the chunk's positions [B, W, D]. */
  leave?(y: tf.Tensor3D): tf.Tensor3D;
  /** The state after the last chunk (tensors in the caller's scope), or null when nothing is carried. */
  result(): SequenceState | null;
}

/**
 * Generation's state of one sequence: the current chunk's slots so far and what the kind carries.
 * The decoder decides where chunks end (a chunk is n_ctx tokens plus their pauses and whatever
 * the kind adds) and feeds slots in steps. Owns its tensors.
 */
export interface IncrementalState {
  /** Slots fed into the current chunk so far. */
  readonly chunkSlots: number;
  /**
   * Every layer's state in for the next step (taken before any append). `open`: the step is the
   * kind's prefix or suffix block and upstream's RMT mask opens it (rmt_mask 'upstream').
   * `endsChunk`: the step holds the chunk's last slot (a recurrent state updates then).
   */
  views(open?: { read: number; write: number }, endsChunk?: boolean): LayerStateIn[];
  /** Layer `layer`'s state out of the step; after the last layer the step is complete. */
  append(layer: number, out: LayerStateOut): void;
  /** Drops the current chunk's last `count` slots (a pause now sits in front of them). */
  rewind(count: number): void;
  /**
   * Ends the current chunk: it becomes what the next chunk attends to; `keep`: only these slots
   * of it (memory tokens kept out of the XL memory), ending where the chunk ends.
   */
  endChunk(keep?: readonly number[]): void;
  /**
   * Keeps the batch rows `rows` of everything held, in that order (a row may repeat: the
   * decoder copies one sequence into several to sample them side by side). Between steps.
   */
  selectRows(rows: readonly number[]): void;
  /** Inputs [R*M, D] (row by row) the kind puts in front of a chunk's tokens (RMT read block), or null. */
  chunkPrefix?(): tf.Tensor2D | null;
  /** Inputs [R*M, D] (row by row) the kind puts behind a full chunk (RMT write block), or null. */
  chunkSuffix?(): tf.Tensor2D | null;
  /** The last layer's outputs [R*M, D] at the suffix positions (RMT: the next chunk's m). */
  takeSuffixOutput?(y: tf.Tensor2D): void;
  dispose(): void;
}

export interface SequenceStateKind {
  readonly description: string;
  /**
   * How evaluation scores an article: 'whole-article' runs it as one sequence with the state
   * flowing from chunk to chunk (upstream); 'sliding-window' scores windows of n_ctx with half
   * overlap, since nothing crosses a chunk boundary.
   */
  readonly evaluation: 'whole-article' | 'sliding-window';
  /** The kind and its settings as text, for `baka info` and the metrics store's architecture. */
  describe(config: BakaConfig): string;
  /** Whether layer `layer` attends to positions of an earlier chunk (for FLOP counts). */
  attendsToPast(config: BakaConfig, layer: number): boolean;
  /**
   * Starts a forward call over `batch` rows after `previous` (null: a fresh sequence);
   * `parameters` are the model's tensors by state_dict name (a kind may own some).
   */
  pass(
    config: BakaConfig,
    previous: SequenceState | null,
    batch: number,
    parameters?: ReadonlyMap<string, tf.Tensor>,
  ): ChunkPass;
  /** Generation state for one sequence; `parameters` as for `pass`. */
  incremental(config: BakaConfig, parameters?: ReadonlyMap<string, tf.Tensor>): IncrementalState;
  /** Reads back what `save()` wrote (an owning state); null when the format is not this kind's. */
  load(saved: SavedState, source: string): SequenceState | null;
}

/**
 * A wrapped kind's saved state inside its wrapper's: tensor names and metadata keys get `prefix`
 * (RMT and carried layer states save the state they wrap this way).
 */
export function nestSavedState(inner: SavedState, prefix: string, into: SavedState): void {
  for (const [name, tensor] of inner.tensors) into.tensors.set(`${prefix}${name}`, tensor);
  for (const [key, value] of Object.entries(inner.metadata))
    into.metadata[`${prefix}${key}`] = value;
}

/** What nestSavedState put under `prefix`, or null when nothing was nested there. */
export function nestedSavedState(saved: SavedState, prefix: string): SavedState | null {
  const format = saved.metadata[`${prefix}format`];
  if (format === undefined) return null;
  const tensors: SavedState['tensors'] = new Map();
  for (const [name, tensor] of saved.tensors) {
    if (name.startsWith(prefix)) tensors.set(name.slice(prefix.length), tensor);
  }
  const metadata = { format } as SavedState['metadata'];
  for (const [key, value] of Object.entries(saved.metadata)) {
    if (key.startsWith(prefix)) metadata[key.slice(prefix.length)] = value;
  }
  return { tensors, metadata };
}
