// The XL memory, the KV cache and rotary offsets come from @baka/cache (this module is the one
// place the model imports them from).
export { KVCache, positions, stopGradient, XLMemory } from '@baka/cache';
export type { KeyValues, LayerMemory, LayerView, MemorySource, PastMemory } from '@baka/cache';
