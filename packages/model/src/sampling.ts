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

/**
 * Picks a token id from `logits` [V]; `random` gives uniforms in [0, 1). Only top-p sorts (and
 * only the candidates left after top-k); plain and top-k sampling scan the logits once or twice.
 */
export function sampleToken(
  logits: Float32Array,
  options: SamplingOptions,
  random: () => number,
): number {
  const { temperature = 1, topK, topP = 1 } = options;
  if (temperature === 0) return argmax(logits);
  const vocab = logits.length;
  // top-k: the k-th largest logit is the cut-off (ties at the cut-off resolved by lowest id)
  let threshold = Number.NEGATIVE_INFINITY;
  if (topK !== undefined && topK < vocab) {
    const sorted = Float32Array.from(logits).sort(); // ascending, numeric
    threshold = sorted[vocab - topK] as number;
  }
  const candidates: number[] = [];
  let above = 0;
  for (let id = 0; id < vocab; id++) if ((logits[id] as number) > threshold) above++;
  let tiesAllowed = topK === undefined ? vocab : topK - above;
  for (let id = 0; id < vocab; id++) {
    const value = logits[id] as number;
    if (value > threshold) candidates.push(id);
    else if (value === threshold && tiesAllowed > 0) {
      candidates.push(id);
      tiesAllowed--;
    }
  }
  let top = Number.NEGATIVE_INFINITY;
  for (const id of candidates) top = Math.max(top, logits[id] as number);
  let weights = candidates.map((id) => Math.exp(((logits[id] as number) - top) / temperature));
  let ids = candidates;
  if (topP < 1) {
    const order = candidates
      .map((_, index) => index)
      .sort((a, b) => (weights[b] as number) - (weights[a] as number));
    const total = weights.reduce((a, b) => a + b, 0);
    let cumulative = 0;
    let kept = order.length;
    for (let i = 0; i < order.length; i++) {
      cumulative += (weights[order[i] as number] as number) / total;
      if (cumulative >= topP) {
        kept = i + 1;
        break;
      }
    }
    ids = order.slice(0, kept).map((index) => candidates[index] as number);
    weights = order.slice(0, kept).map((index) => weights[index] as number);
  }
  const keptTotal = weights.reduce((a, b) => a + b, 0);
  let remaining = random() * keptTotal;
  for (let i = 0; i < ids.length; i++) {
    remaining -= weights[i] as number;
    if (remaining < 0) return ids[i] as number;
  }
  return ids[ids.length - 1] as number;
}
