// The one seeded PRNG of the BakaLLM packages: mulberry32, uniform floats in [0, 1) from a 32-bit
// seed, the same sequence on every backend and platform. Parameter initialisation, sampling,
// shuffles and packed-batch offsets all draw from it, so checkpoints, fixtures and resumed data
// orders depend on this exact sequence: do not change it.

/** Returns a function giving uniform floats in [0, 1) from a 32-bit seed (mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
