// The `xl` and `none` sequence-state kinds. `xl`: every layer caches the unrotated k/v of the
// chunk it just ran and the next chunk attends to them (Transformer-XL memory, upstream 003; which
// layer's cache a layer reads is `memory_source`). `none`: chunks are independent. Both are
// thin adapters of @baka/cache's XLMemory and KVCache. docs/architecture.md section 1.2.
//
// Shape legend: B batch rows, H heads, P memory length, K key dim, Kv value dim.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { LayerStateIn, LayerStateOut } from '../baka-net';
import type { BakaConfig, PositionPolicy } from '../config';
import { ModelError } from '../errors';
import { KVCache, positions, XLMemory } from '../memory';
import { fullChunkSlots } from './memory-tokens';
import type { MemorySource } from '../memory';
import type {
  ChunkPass,
  IncrementalState,
  SavedState,
  SequenceState,
  SequenceStateKind,
} from '../sequence-state';

/** The config fields the `xl` kind owns (spread into the model config schema). */
export const XL_CONFIG_SHAPE = {
  memory_source: z
    .enum(['previous-layer', 'same-layer'])
    .default('previous-layer')
    .describe("Whose cache a layer reads: layer i-1's ('previous-layer', 003) or its own (005)."),
};

/** memory.safetensors metadata `format` of an XL memory. */
export const XL_MEMORY_FORMAT = 'baka-xl-memory';

/**
 * Layer `layer`'s view of an XL memory for a chunk of the full pass starting at position `start`
 * (an empty or absent memory: no past).
 */
export function memoryState(
  memory: XLMemory | null,
  layer: number,
  start: number,
  policy: PositionPolicy,
): LayerStateIn {
  const entry = memory === null || memory.isEmpty ? null : memory.pastFor(layer);
  const pastLength = entry === null ? 0 : entry.k.shape[2];
  const { keyOffset } = positions(policy, pastLength, 0, start);
  const past = entry === null ? null : { k: entry.k, v: entry.v };
  return { attention: { past, keyOffset, returnJoined: false } };
}

/** An XL memory as a carried sequence state. */
export class XLState implements SequenceState {
  readonly kind = 'xl';
  readonly memory: XLMemory;

  constructor(memory: XLMemory) {
    this.memory = memory;
  }

  get batchSize(): number {
    return this.memory.batchSize;
  }

  get end(): number {
    return this.memory.end;
  }

  tensors(): tf.Tensor[] {
    return this.memory
      .layers()
      .flatMap((entry) => [entry.k, entry.v])
      .filter((tensor): tensor is tf.Tensor4D => tensor !== null);
  }

  detach(): XLState {
    return new XLState(this.memory.detach());
  }

  selectRows(rows: readonly number[]): XLState {
    return new XLState(this.memory.selectRows(rows));
  }

  dispose(): void {
    this.memory.dispose();
  }

  // tensors `layers.{i}.k` [B, H, P, K] and `layers.{i}.v` [B, H, P, Kv] (unrotated, as cached);
  // metadata n_layers, source, max_length and each layer's start position (JSON)
  save(): SavedState {
    const tensors: SavedState['tensors'] = new Map();
    const starts: (number | null)[] = [];
    this.memory.layers().forEach((layer, i) => {
      if (layer.k === null || layer.v === null) {
        starts.push(null);
        return;
      }
      starts.push(layer.start);
      tensors.set(`layers.${i}.k`, {
        shape: [...layer.k.shape],
        data: layer.k.dataSync() as Float32Array,
      });
      tensors.set(`layers.${i}.v`, {
        shape: [...layer.v.shape],
        data: layer.v.dataSync() as Float32Array,
      });
    });
    const { maxLength } = this.memory;
    return {
      tensors,
      metadata: {
        format: XL_MEMORY_FORMAT,
        n_layers: String(this.memory.nLayers),
        source: this.memory.source,
        max_length: maxLength === undefined ? '' : String(maxLength),
        starts: JSON.stringify(starts),
      },
    };
  }
}

function loadXL(saved: SavedState, source: string): XLState | null {
  const { metadata } = saved;
  if (metadata.format !== XL_MEMORY_FORMAT) return null;
  const nLayers = Number(metadata.n_layers);
  let starts: unknown;
  try {
    starts = JSON.parse(metadata.starts ?? '');
  } catch {
    throw new ModelError(`${source}: metadata 'starts' is not valid JSON`);
  }
  const memorySource = metadata.source;
  if (
    !Number.isInteger(nLayers) ||
    (memorySource !== 'previous-layer' && memorySource !== 'same-layer') ||
    !Array.isArray(starts) ||
    starts.length !== nLayers
  ) {
    throw new ModelError(`${source}: not an XL memory file (metadata n_layers/source/starts)`);
  }
  const tensor4d = (entry: { shape: number[]; data: Float32Array }) =>
    tf.tensor4d(entry.data, entry.shape as [number, number, number, number]);
  const layers = (starts as (number | null)[]).map((start, i) => {
    const k = saved.tensors.get(`layers.${i}.k`);
    const v = saved.tensors.get(`layers.${i}.v`);
    if (start === null || !k || !v) return { k: null, v: null, start: 0 };
    return { k: tensor4d(k), v: tensor4d(v), start };
  });
  const maxLength = metadata.max_length ? { maxLength: Number(metadata.max_length) } : {};
  return new XLState(
    XLMemory.owning({ nLayers, source: memorySource as MemorySource, ...maxLength }, layers),
  );
}

function memoryOf(state: SequenceState | null, kind: string): XLMemory | null {
  if (state === null) return null;
  if (!(state instanceof XLState)) {
    throw new ModelError(`memory: a '${state.kind}' state cannot continue a '${kind}' model`);
  }
  return state.memory;
}

/** A layer's cached keys rotated, and which unrotated keys (the cache's tensor) at which offset they are. */
interface RotatedKeys {
  source: tf.Tensor4D; // [B, H, L, K'] unrotated, as the KV cache holds them
  keyOffset: number;
  k: tf.Tensor4D; // [B, H, L, K'] rotated at keyOffset..keyOffset+L-1 (owned)
}

/**
 * The current chunk's KV cache in front of an XL memory (or of nothing), for generation. Besides
 * the unrotated keys (what the XL memory keeps), it keeps each layer's keys as attention rotated
 * them, so the next step rotates only its new keys: within a chunk the rotary position of every
 * cached key stays put (section 1.2). They are reused only for the very tensor they were rotated
 * from, at the same key offset; a rewind, a chunk's end or a row selection drops them.
 */
class CachedChunk implements IncrementalState {
  readonly #cache: KVCache;
  readonly #rotated: (RotatedKeys | null)[];
  /** The key offset each layer's view of the step in progress had. */
  readonly #viewOffsets: number[];

  constructor(cache: KVCache) {
    this.#cache = cache;
    this.#rotated = new Array(cache.nLayers).fill(null);
    this.#viewOffsets = new Array(cache.nLayers).fill(0);
  }

  get chunkSlots(): number {
    return this.#cache.position - this.#cache.chunkStart;
  }

  views(open?: { read: number; write: number }): LayerStateIn[] {
    const memory = this.#cache.memoryMode === 'xl' ? this.#cache.memory : null;
    return Array.from({ length: this.#cache.nLayers }, (_, layer) => {
      const view = this.#cache.view(layer);
      this.#viewOffsets[layer] = view.keyOffset;
      const rotated = this.#rotated[layer] ?? null;
      const reuse =
        rotated !== null && rotated.source === view.past?.k && rotated.keyOffset === view.keyOffset;
      const attention = {
        ...view,
        returnJoined: true,
        ...(reuse ? { rotatedPast: rotated.k } : {}),
      };
      // upstream's RMT mask opens only layers that read an XL memory entry (as in the full pass)
      const hasMemory = memory !== null && !memory.isEmpty && memory.pastFor(layer) !== null;
      return { attention: open !== undefined && hasMemory ? { ...attention, open } : attention };
    });
  }

  // the cache keeps attention's [past ; new] instead of concatenating again, and its rotated keys
  append(layer: number, { written, attended }: LayerStateOut): void {
    this.#cache.append(layer, written.k, written.v, attended === null ? {} : { joined: attended });
    const previous = this.#rotated[layer] ?? null;
    if (previous !== null && previous.k !== attended?.rotatedK) previous.k.dispose();
    this.#rotated[layer] =
      attended?.rotatedK === undefined
        ? null
        : {
            source: attended.k,
            keyOffset: this.#viewOffsets[layer] as number,
            k: tf.keep(attended.rotatedK),
          };
  }

  #dropRotated(): void {
    for (const rotated of this.#rotated) rotated?.k.dispose();
    this.#rotated.fill(null);
  }

  rewind(count: number): void {
    if (count > 0) this.#dropRotated();
    this.#cache.rewind(count);
  }

  endChunk(keep?: readonly number[]): void {
    this.#dropRotated();
    this.#cache.endChunk(keep);
  }

  selectRows(rows: readonly number[]): void {
    this.#dropRotated();
    this.#cache.selectRows(rows);
  }

  dispose(): void {
    this.#dropRotated();
    this.#cache.dispose();
  }
}

function cachedChunk(config: BakaConfig, memory: 'xl' | 'none'): CachedChunk {
  // a chunk ends when the decoder says so (endChunk); the bound only has to hold every slot, and
  // with memory tokens exceed them, so that a full chunk ends only through endChunk(keep)
  const memoryTokens = config.n_memory_tokens > 0 ? fullChunkSlots(config) - config.n_ctx + 1 : 0;
  const slots = config.n_ctx + config.n_pauses + 2 * config.n_rmt_tokens + memoryTokens;
  return new CachedChunk(
    new KVCache({
      nLayers: config.n_layers,
      chunkLength: slots,
      memory,
      source: config.memory_source,
      policy: config.position_policy,
    }),
  );
}

export const xlKind: SequenceStateKind = {
  description: "Transformer-XL memory: attend to the previous chunk's cached k/v (upstream 003)",
  evaluation: 'whole-article',
  describe: (config) => `xl/${config.memory_source}/${config.position_policy}`,
  attendsToPast: (config, layer) => config.memory_source === 'same-layer' || layer > 0,
  pass(config, previous, batch): ChunkPass {
    const memory = memoryOf(previous, 'xl');
    if (memory !== null && !memory.isEmpty && memory.batchSize !== batch) {
      throw new ModelError(`memory has ${memory.batchSize} rows but the input has ${batch}`);
    }
    // one memory threaded through the chunks: writes are staged until every layer wrote
    let current: XLMemory | null = null;
    return {
      start: memory === null ? 0 : memory.end,
      views: (chunkStart) => {
        const reading = current ?? memory;
        return Array.from({ length: config.n_layers }, (_, layer) =>
          memoryState(reading, layer, chunkStart, config.position_policy),
        );
      },
      write: (outs, chunkStart) => {
        const writing =
          current ?? new XLMemory({ nLayers: config.n_layers, source: config.memory_source });
        outs.forEach(({ written }, layer) => {
          writing.update(layer, written.k, written.v, chunkStart);
        });
        current = writing;
      },
      result: () => (current === null ? null : new XLState(current)),
    };
  },
  incremental: (config) => cachedChunk(config, 'xl'),
  load: loadXL,
};

export const noMemoryKind: SequenceStateKind = {
  description: 'no memory: every chunk is independent',
  evaluation: 'sliding-window',
  describe: () => 'none',
  attendsToPast: () => false,
  pass(config): ChunkPass {
    return {
      start: 0,
      views: (chunkStart) =>
        Array.from({ length: config.n_layers }, (_, layer) =>
          memoryState(null, layer, chunkStart, config.position_policy),
        ),
      write: () => {},
      result: () => null,
    };
  },
  incremental: (config) => cachedChunk(config, 'none'),
  load: () => null,
};
