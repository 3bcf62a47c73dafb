// The Recurrent Memory Transformer as upstream's branch 005 runs it, wrapped around the
// configured memory kind (xl or none). `n_rmt_tokens` M learned vectors `model.rmt.rmt_tokens`
// [M, D]: the first chunk of a sequence runs [chunk ; rmt_tokens]; every later chunk runs
// [m ; chunk ; m], where m is the last layer's output (before norm_out) at the previous chunk's
// write positions (the last M). Outputs at memory positions are removed before the head. The
// gradient flows through m from chunk to chunk (cut every `rmt_grad_chunks` chunks when set);
// `detach()` cuts it at a window boundary. Positions (rotary, the XL memory's) count memory slots.
// docs/architecture.md section 1.5.
//
// Shape legend: B batch rows, M memory tokens, W chunk slots (tokens and pauses), D dim_model.
import * as tf from '@tensorflow/tfjs-core';
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import { stopGradient } from '../memory';
import { nestedSavedState, nestSavedState } from '../sequence-state';
import type {
  ChunkPass,
  IncrementalState,
  SavedState,
  SequenceState,
  SequenceStateKind,
} from '../sequence-state';

/**
 * Parameters a forward call need not use: the RMT tokens start a sequence, so a call that
 * continues carried state has no gradient for them.
 */
export const MAY_BE_UNUSED_PARAMETERS: readonly string[] = ['model.rmt.rmt_tokens'];

/** memory.safetensors metadata `format` of an RMT state. */
export const RMT_FORMAT = 'baka-rmt-memory';
const INNER = 'inner.';

/** m [B, M, D] and the wrapped kind's state. */
export class RMTState implements SequenceState {
  readonly kind: string;
  readonly inner: SequenceState | null;
  readonly write: tf.Tensor3D;
  readonly end: number;
  readonly #owned: boolean;

  constructor(
    kind: string,
    inner: SequenceState | null,
    write: tf.Tensor3D,
    end: number,
    owned: boolean,
  ) {
    this.kind = kind;
    this.inner = inner;
    this.write = write;
    this.end = end;
    this.#owned = owned;
  }

  get batchSize(): number {
    return this.write.shape[0];
  }

  tensors(): tf.Tensor[] {
    return [this.write, ...(this.inner?.tensors() ?? [])];
  }

  detach(): RMTState {
    return new RMTState(
      this.kind,
      this.inner?.detach() ?? null,
      tf.keep(stopGradient(this.write)),
      this.end,
      true,
    );
  }

  selectRows(rows: readonly number[]): RMTState {
    const write = tf.tidy(() =>
      tf.gather(this.write, tf.tensor1d(Int32Array.from(rows), 'int32'), 0),
    );
    return new RMTState(
      this.kind,
      this.inner?.selectRows(rows) ?? null,
      tf.keep(write) as tf.Tensor3D,
      this.end,
      true,
    );
  }

  dispose(): void {
    this.inner?.dispose();
    if (this.#owned) this.write.dispose();
  }

  save(): SavedState {
    const tensors: SavedState['tensors'] = new Map([
      ['rmt.write', { shape: [...this.write.shape], data: this.write.dataSync() as Float32Array }],
    ]);
    const metadata: SavedState['metadata'] = {
      format: RMT_FORMAT,
      kind: this.kind,
      end: String(this.end),
    };
    const saved = { tensors, metadata };
    if (this.inner !== null) nestSavedState(this.inner.save(), INNER, saved);
    return saved;
  }
}

/** Reads an RMT state; `loadInner` reads the wrapped kind's part. Null when not RMT's format. */
export function loadRMT(
  saved: SavedState,
  source: string,
  loadInner: (saved: SavedState, source: string) => SequenceState,
): RMTState | null {
  if (saved.metadata.format !== RMT_FORMAT) return null;
  const write = saved.tensors.get('rmt.write');
  const end = Number(saved.metadata.end);
  if (write === undefined || write.shape.length !== 3 || !Number.isInteger(end)) {
    throw new ModelError(`${source}: not an RMT state file (tensor rmt.write, metadata end)`);
  }
  const nested = nestedSavedState(saved, INNER);
  const inner = nested === null ? null : loadInner(nested, source);
  const tensor = tf.tensor3d(write.data, write.shape as [number, number, number]);
  return new RMTState(saved.metadata.kind ?? 'rmt', inner, tensor, end, true);
}

/** The kind `inner` with RMT memory tokens around every chunk. */
export function rmtKind(name: string, inner: SequenceStateKind): SequenceStateKind {
  return {
    description: `RMT memory tokens around the chunk, with ${inner.description}`,
    evaluation: 'whole-article',
    describe: (config) => `rmt${config.n_rmt_tokens}/${config.rmt_mask}+${inner.describe(config)}`,
    attendsToPast: inner.attendsToPast,
    pass(config, previous, batch, parameters): ChunkPass {
      if (previous !== null && !(previous instanceof RMTState)) {
        throw new ModelError(`memory: a '${previous.kind}' state cannot continue an RMT model`);
      }
      if (previous !== null && previous.batchSize !== batch) {
        throw new ModelError(`memory has ${previous.batchSize} rows but the input has ${batch}`);
      }
      const tokens = parameters?.get('model.rmt.rmt_tokens') as tf.Tensor2D | undefined;
      if (tokens === undefined) throw new ModelError('RMT: the model has no model.rmt.rmt_tokens');
      const innerPass = inner.pass(config, previous?.inner ?? null, batch, parameters);
      const memoryTokens = config.n_rmt_tokens;
      let write: tf.Tensor3D | null = previous?.write ?? null;
      let read = 0;
      let end = previous?.end ?? 0;
      let chunks = 0;
      return {
        start: end,
        enter: (x) => {
          const [, , dimModel] = x.shape;
          if (write === null) {
            read = 0;
            const initial = tf.broadcastTo(tf.reshape(tokens, [1, memoryTokens, dimModel]), [
              batch,
              memoryTokens,
              dimModel,
            ]) as tf.Tensor3D; // [B, M, D]
            return tf.concat([x, initial], 1) as tf.Tensor3D; // [B, W + M, D]
          }
          read = memoryTokens;
          return tf.concat([write, x, write], 1) as tf.Tensor3D; // [B, M + W + M, D]
        },
        views: (chunkStart) => {
          const views = innerPass.views(chunkStart);
          if (config.rmt_mask !== 'upstream') return views;
          return views.map((view) =>
            view.attention.past === null
              ? view
              : { attention: { ...view.attention, open: { read, write: memoryTokens } } },
          );
        },
        write: (outs, chunkStart) => innerPass.write(outs, chunkStart),
        leave: (y) => {
          const [rows, width, dimModel] = y.shape;
          chunks += 1;
          end += width;
          const next = tf.slice(
            y,
            [0, width - memoryTokens, 0],
            [rows, memoryTokens, dimModel],
          ) as tf.Tensor3D;
          const cut = config.rmt_grad_chunks > 0 && chunks % config.rmt_grad_chunks === 0;
          write = cut ? stopGradient(next) : next;
          return tf.slice(
            y,
            [0, read, 0],
            [rows, width - read - memoryTokens, dimModel],
          ) as tf.Tensor3D;
        },
        result: () =>
          write === null ? null : new RMTState(name, innerPass.result(), write, end, false),
      };
    },
    incremental(config, parameters): IncrementalState {
      const tokens = parameters?.get('model.rmt.rmt_tokens') as tf.Tensor2D | undefined;
      if (tokens === undefined) throw new ModelError('RMT: the model has no model.rmt.rmt_tokens');
      const chunk = inner.incremental(config, parameters);
      const [memoryTokens, dimModel] = tokens.shape;
      let m: tf.Tensor2D | null = null; // [R*M, D] row by row, owned
      let initial: tf.Tensor2D = tokens; // the first write block: the learned tokens in every row
      let rows = 1;
      return {
        get chunkSlots() {
          return chunk.chunkSlots;
        },
        views: (open) => chunk.views(open),
        append: (layer, out) => chunk.append(layer, out),
        rewind: (count) => chunk.rewind(count),
        endChunk: (keep) => chunk.endChunk(keep),
        selectRows: (selected) => {
          chunk.selectRows(selected);
          rows = selected.length;
          if (initial !== tokens) initial.dispose();
          initial = rows === 1 ? tokens : (tf.keep(tf.tile(tokens, [rows, 1])) as tf.Tensor2D);
          if (m === null) return;
          const previous = m;
          m = tf.tidy(() => {
            const byRow = tf.reshape(previous, [-1, memoryTokens, dimModel]); // [R, M, D]
            const picked = tf.gather(byRow, tf.tensor1d(Int32Array.from(selected), 'int32'));
            return tf.keep(tf.reshape(picked, [rows * memoryTokens, dimModel])) as tf.Tensor2D;
          });
          previous.dispose();
        },
        chunkPrefix: () => m,
        chunkSuffix: () => m ?? initial,
        takeSuffixOutput: (y) => {
          m?.dispose();
          m = tf.keep(tf.clone(y));
        },
        dispose: () => {
          m?.dispose();
          if (initial !== tokens) initial.dispose();
          chunk.dispose();
        },
      };
    },
    load: () => null,
  };
}

/** Whether `config` runs RMT memory tokens. */
export function usesRMT(config: BakaConfig): boolean {
  return config.n_rmt_tokens > 0;
}
