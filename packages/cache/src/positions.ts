// Rotary offsets for attention over keys [past ; now] and queries now (docs/architecture.md §1.2).
//
// P = pastLength (memory tokens before the chunk), T = chunkLength, S = absoluteStart (document
// position of the chunk's first token). Keys occupy rotary positions keyOffset..keyOffset+P+T-1,
// queries queryOffset..queryOffset+T-1; the last P+T key positions and the T query positions end
// together, so query j and key P+j share a position under either policy.
import { CacheError } from './cache-error';

export type PositionPolicy = 'reset' | 'absolute';

export interface RotaryOffsets {
  /** Position of the first query (the chunk's first token). */
  queryOffset: number;
  /** Position of the first key (the first memory token, or the chunk's first token). */
  keyOffset: number;
  /** Number of keys, P + T. */
  keyLength: number;
}

/**
 * - `reset` (upstream default, "XL-Long-Reset"): keys from 0, queries at P..P+T-1, whatever the
 *   document position.
 * - `absolute` (upstream XL-Long-NoReset): document positions; keys start at S - P.
 */
export function positions(
  policy: PositionPolicy,
  pastLength: number,
  chunkLength: number,
  absoluteStart: number,
): RotaryOffsets {
  for (const [name, value] of [
    ['pastLength', pastLength],
    ['chunkLength', chunkLength],
    ['absoluteStart', absoluteStart],
  ] as const) {
    if (!Number.isInteger(value) || value < 0) {
      throw new CacheError(`positions: ${name} must be a non-negative integer, got ${value}`);
    }
  }
  const keyLength = pastLength + chunkLength;
  if (policy === 'reset') return { queryOffset: pastLength, keyOffset: 0, keyLength };
  if (policy === 'absolute') {
    if (absoluteStart < pastLength) {
      throw new CacheError(
        `positions: with the 'absolute' policy the memory (${pastLength} tokens) cannot start before position 0 (chunk starts at ${absoluteStart})`,
      );
    }
    return { queryOffset: absoluteStart, keyOffset: absoluteStart - pastLength, keyLength };
  }
  throw new CacheError(
    `positions: policy must be 'reset' or 'absolute', got ${JSON.stringify(policy)}`,
  );
}
