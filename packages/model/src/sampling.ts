// Choosing the next token from logits: greedy (temperature 0) or sampling with temperature,
// top-k and top-p (nucleus) filtering, from a seeded PRNG so a seed reproduces a generation.
import { ModelError } from './errors';

export interface SamplingOptions {
  /** 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (default: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (default 1). */
  topP?: number;
}

export function checkSamplingOptions(options: SamplingOptions): void {
  const { temperature = 1, topK, topP = 1 } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new ModelError(`temperature must be a number >= 0, got ${temperature}`);
  }
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) {
    throw new ModelError(`topK must be an integer >= 1, got ${topK}`);
  }
  if (!(topP > 0 && topP <= 1)) throw new ModelError(`topP must be in (0, 1], got ${topP}`);
}

/** Index of the largest value (first one on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++)
    if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/** Picks a token id from `logits` [V]; `random` gives uniforms in [0, 1). */
export function sampleToken(
  logits: Float32Array,
  options: SamplingOptions,
  random: () => number,
): number {
  const { temperature = 1, topK, topP = 1 } = options;
  if (temperature === 0) return argmax(logits);
  const order = Array.from(logits.keys()).sort(
    (a, b) => (logits[b] as number) - (logits[a] as number),
  );
  const keep = Math.min(topK ?? order.length, order.length);
  const candidates = order.slice(0, keep);
  const top = logits[candidates[0] as number] as number;
  const weights = candidates.map((id) => Math.exp(((logits[id] as number) - top) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let kept = candidates.length;
  if (topP < 1) {
    let cumulative = 0;
    for (let i = 0; i < candidates.length; i++) {
      cumulative += (weights[i] as number) / total;
      if (cumulative >= topP) {
        kept = i + 1;
        break;
      }
    }
  }
  const keptTotal = weights.slice(0, kept).reduce((a, b) => a + b, 0);
  let threshold = random() * keptTotal;
  for (let i = 0; i < kept; i++) {
    threshold -= weights[i] as number;
    if (threshold < 0) return candidates[i] as number;
  }
  return candidates[kept - 1] as number;
}
