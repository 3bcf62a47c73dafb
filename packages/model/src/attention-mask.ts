// Additive XL attention masks, built once per (query count, past length, key width) and kept.
// Query i of the new tokens (0-based) sees every past key and new keys 0..i:
// mask[i, j] = 0 for j < P + i + 1, else -1e9 (exp underflows to exactly 0 in fp32); key
// positions past P + T (padding up to the width W) are blocked too. Memory-token groups
// (kinds/memory-tokens.ts) open the causal mask inside each group: a group's queries see the whole
// group, and still nothing after it.
// Shape legend: T query count, P past length, W key width (>= P + T).
import * as tf from '@tensorflow/tfjs-core';

const BLOCKED = -1e9;

/** Queries start..start+size-1 of the new tokens form a group that sees itself whole. */
export interface QueryGroup {
  start: number;
  size: number;
}

export class AttentionMasks {
  #masks = new Map<string, tf.Tensor2D>();

  /**
   * [T, W] additive mask (W defaults to P + T); owned by this cache (do not dispose). With `open`
   * (upstream 005's RMT mask), the last `write` queries see every real key and the first `read`
   * queries also see keys P..P+read-1. With `groups`, the queries of a group also see its later
   * keys P+start..P+start+size-1.
   */
  get(
    length: number,
    pastLength: number,
    width = pastLength + length,
    open?: { read: number; write: number },
    groups: readonly QueryGroup[] = [],
  ): tf.Tensor2D {
    if (width < pastLength + length) {
      throw new Error(
        `AttentionMasks.get: width ${width} is less than past ${pastLength} + length ${length}`,
      );
    }
    const grouped = groups.map(({ start, size }) => `${start}+${size}`).join(',');
    const key = `${length}:${pastLength}:${width}:${open?.read ?? 0}:${open?.write ?? 0}:${grouped}`;
    let mask = this.#masks.get(key);
    if (mask === undefined) {
      const values = new Float32Array(length * width);
      for (let i = 0; i < length; i++) {
        for (let j = pastLength + i + 1; j < width; j++) values[i * width + j] = BLOCKED;
      }
      if (open !== undefined) {
        const real = pastLength + length;
        for (let i = Math.max(0, length - open.write); i < length; i++) {
          for (let j = 0; j < real; j++) values[i * width + j] = 0;
        }
        for (let i = 0; i < Math.min(open.read, length); i++) {
          for (let j = pastLength; j < pastLength + open.read; j++) values[i * width + j] = 0;
        }
      }
      for (const { start, size } of groups) {
        if (start < 0 || size < 1 || start + size > length) {
          throw new Error(
            `AttentionMasks.get: group ${start}+${size} is outside ${length} queries`,
          );
        }
        for (let i = start; i < start + size; i++) {
          for (let j = pastLength + i + 1; j < pastLength + start + size; j++) {
            values[i * width + j] = 0;
          }
        }
      }
      mask = tf.keep(tf.tensor2d(values, [length, width])); // [T, W]
      this.#masks.set(key, mask);
    }
    return mask;
  }

  dispose(): void {
    for (const mask of this.#masks.values()) mask.dispose();
    this.#masks.clear();
  }
}
