export { CacheError } from './cache-error';
export {
  type AttentionInputs,
  KVCache,
  type KVCacheOptions,
  type KeyValues,
  type LayerView,
} from './kv-cache';
export { type PositionPolicy, positions, type RotaryOffsets } from './positions';
export {
  type LayerMemory,
  type MemorySource,
  type PastMemory,
  stopGradient,
  XLMemory,
  type XLMemoryOptions,
} from './xl-memory';
