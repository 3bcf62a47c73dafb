// Memory Transformer tokens (Burtsev et al. 2020) and persistent memory key/values (Sukhbaatar
// et al. 2019, "all-attention"; x-transformers' num_mem_kv). docs/architecture.md section 1.10.
//
// Memory tokens: `n_memory_tokens` M learned rows `model.memtok.tokens` [M, D] run as a group in
// front of the chunk's tokens, or with `memory_tokens_every` N > 0 in front of tokens 0, N, 2N, ...
// of the chunk. Their slots take rotary positions like tokens (as pauses do). A group's queries
// see the XL past, every slot before the group and the whole group; every later slot sees the
// group causally. So no later token reaches a memory token, and the layout only ever grows at the
// end (generation needs no rewind). Their outputs are removed before the head. Unless
// `memory_tokens_in_xl`, their k/v stay out of what a chunk hands to the XL memory; that memory
// entry then ends where the chunk ends (it starts at chunk start + slots - kept).
//
// Persistent memory: `n_mem_kv` Nm learned keys `attn.mem_k` [H, Nm, K] and values `attn.mem_v`
// [H, Nm, Kv] per layer, in front of the rotated keys of every query, never rotated, never masked
// (attention.ts).
//
// Shape legend: B batch rows, T the chunk's tokens, W its slots (tokens and memory tokens),
// M memory tokens, D dim_model, H heads, K dim_head, Kv value head dim.
import * as tf from '@tensorflow/tfjs-core';
import type { QueryGroup } from '../attention-mask';
import type { LayerStateIn, LayerStateOut } from '../baka-net';
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import type { LayerShape, LayerTensor } from './layers';
import { pauseLayout } from './pauses';

/** The state_dict name of the memory tokens [M, D]. */
export const MEMORY_TOKENS_PARAMETER = 'model.memtok.tokens';

/** A layer's persistent memory k/v (after its norm, before q: attn's own parameters). */
export function persistentMemoryTensors(config: BakaConfig, shape: LayerShape): LayerTensor[] {
  if (config.n_mem_kv === 0) return [];
  const { n_heads: H, n_mem_kv: count, dim_model: D } = config;
  return [
    // N(0, 1), as x-transformers initialises mem_k / mem_v
    {
      suffix: 'attn.mem_k',
      shape: [H, count, shape.dimHead],
      init: { kind: 'normal' },
      trainable: true,
    },
    { suffix: 'attn.mem_v', shape: [H, count, D / H], init: { kind: 'normal' }, trainable: true },
  ];
}

/** A memory-token slot's code in a layout: memory token j is -(2 + j) (-1 is a pause). */
function memorySlot(j: number): number {
  return -2 - j;
}

/**
 * Per slot of a chunk of `tokens` tokens: the token's index in the chunk, -1 for a pause, or
 * -(2 + j) for memory token j. Memory tokens and pauses are never combined (config.ts refuses it).
 */
export function slotLayout(config: BakaConfig, tokens: number, random?: () => number): number[] {
  if (config.n_memory_tokens === 0) return pauseLayout(config, tokens, random);
  const every = config.memory_tokens_every || config.n_ctx;
  const slots: number[] = [];
  for (let token = 0; token < tokens; token++) {
    if (token % every === 0) {
      for (let j = 0; j < config.n_memory_tokens; j++) slots.push(memorySlot(j));
    }
    slots.push(token);
  }
  return slots;
}

/** The memory-token groups of (a part of) a layout: runs of memory slots, in layout order. */
export function slotGroups(layout: readonly number[]): QueryGroup[] {
  const groups: QueryGroup[] = [];
  layout.forEach((slot, index) => {
    if (slot > -2) return;
    const last = groups[groups.length - 1];
    if (last !== undefined && last.start + last.size === index) last.size += 1;
    else groups.push({ start: index, size: 1 });
  });
  return groups;
}

/**
 * Gather indices of a layout's slots into the rows [tokens (T) ; pause (when `pauses`) ; memory
 * tokens (M)].
 */
export function slotSources(layout: readonly number[], tokens: number, pauses: boolean): number[] {
  const memory = tokens + (pauses ? 1 : 0);
  return layout.map((slot) => (slot >= 0 ? slot : slot === -1 ? tokens : memory - 2 - slot));
}

/** The slots whose k/v enter the XL memory: null = all of them. */
export function xlSlots(config: BakaConfig, layout: readonly number[]): number[] | null {
  if (config.n_memory_tokens === 0 || config.memory_tokens_in_xl) return null;
  return layout.flatMap((slot, index) => (slot >= 0 ? [index] : []));
}

export interface WithMemoryTokens {
  x: tf.Tensor3D; // [B, W, D]
  /** The slots of the tokens (to take the outputs back out). */
  tokens: number[];
  groups: QueryGroup[];
  /** The slots whose k/v enter the XL memory (null: all). */
  xl: number[] | null;
}

/** The chunk x [B, T, D] with the memory-token groups -> [B, W, D]. */
export function insertMemoryTokens(
  x: tf.Tensor3D,
  memory: tf.Tensor2D | undefined,
  config: BakaConfig,
): WithMemoryTokens {
  if (memory === undefined) throw new ModelError(`memory tokens: no ${MEMORY_TOKENS_PARAMETER}`);
  const [batch, length, dimModel] = x.shape;
  const layout = slotLayout(config, length);
  const rows = tf.broadcastTo(tf.reshape(memory, [1, -1, dimModel]), [
    batch,
    config.n_memory_tokens,
    dimModel,
  ]); // [B, M, D]
  const source = tf.concat([x, rows], 1); // [B, T + M, D]
  const indices = tf.tensor1d(slotSources(layout, length, false), 'int32');
  return {
    x: tf.gather(source, indices, 1) as tf.Tensor3D, // [B, W, D]
    tokens: layout.flatMap((slot, index) => (slot >= 0 ? [index] : [])),
    groups: slotGroups(layout),
    xl: xlSlots(config, layout),
  };
}

/** Layer views with the chunk's memory-token groups added. */
export function withGroups(views: LayerStateIn[], groups: readonly QueryGroup[]): LayerStateIn[] {
  if (groups.length === 0) return views;
  return views.map((view) => ({ ...view, attention: { ...view.attention, groups } }));
}

/** The layers' writes at the slots `keep` only (k/v [B, H, kept, *]); null keeps them all. */
export function keptWrites(
  outs: readonly LayerStateOut[],
  keep: readonly number[] | null,
): readonly LayerStateOut[] {
  if (keep === null) return outs;
  const indices = tf.tensor1d(Int32Array.from(keep), 'int32');
  return outs.map((out) => ({
    ...out,
    written: {
      k: tf.gather(out.written.k, indices, 2) as tf.Tensor4D, // [B, H, kept, K]
      v: tf.gather(out.written.v, indices, 2) as tf.Tensor4D, // [B, H, kept, Kv]
    },
  }));
}

/** Slots of a full chunk (n_ctx tokens with their memory-token groups or pauses). */
export function fullChunkSlots(config: BakaConfig): number {
  return slotLayout(config, config.n_ctx).length;
}
