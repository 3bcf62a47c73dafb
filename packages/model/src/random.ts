// A small seeded PRNG (mulberry32) for parameter initialisation and sampling: deterministic for a
// seed on every backend, and fast enough to fill a 50277 x 768 embedding.

/** Returns a function giving uniform floats in [0, 1) from a 32-bit seed. */
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

/** Mixes a seed and a stream index into a new 32-bit seed (splitmix-style). */
export function deriveSeed(seed: number, stream: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Uniform values in [low, high). */
export function fillUniform(
  out: Float32Array,
  low: number,
  high: number,
  seed: number,
): Float32Array {
  const next = mulberry32(seed);
  const width = high - low;
  for (let i = 0; i < out.length; i++) out[i] = low + width * next();
  return out;
}

/** Standard-normal values times `std` (Box-Muller). */
export function fillNormal(out: Float32Array, std: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  for (let i = 0; i < out.length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - next()));
    const angle = 2 * Math.PI * next();
    out[i] = std * radius * Math.cos(angle);
    if (i + 1 < out.length) out[i + 1] = std * radius * Math.sin(angle);
  }
  return out;
}
