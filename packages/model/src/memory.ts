// The XL memory and rotary offsets come from @baka/cache (this module is the one place the
// model imports them from).
export { KVCache, positions, XLMemory } from '@baka/cache';
export type { LayerMemory, MemorySource, PastMemory } from '@baka/cache';
