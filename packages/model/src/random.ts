// Parameter initialisation from seeds: deterministic on every backend, and fast enough to fill a
// 50277 x 768 embedding. The generator is the packages' one seeded PRNG, @baka/common's mulberry32.
import { mulberry32 } from '@baka/common';

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
