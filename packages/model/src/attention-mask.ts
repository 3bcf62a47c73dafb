// Additive XL attention masks, built once per (chunk length, past length) and kept.
// Query i of the chunk (0-based) sees every past key and current keys 0..i:
// mask[i, j] = 0 for j < P + i + 1, else -1e9 (exp underflows to exactly 0 in fp32).
// Shape legend: T chunk (query) length, P past length.
import * as tf from '@tensorflow/tfjs-core';

const BLOCKED = -1e9;

export class AttentionMasks {
  #masks = new Map<string, tf.Tensor2D>();

  /** [T, P + T] additive mask; owned by this cache (do not dispose). */
  get(length: number, pastLength: number): tf.Tensor2D {
    const key = `${length}:${pastLength}`;
    let mask = this.#masks.get(key);
    if (mask === undefined) {
      const width = pastLength + length;
      const values = new Float32Array(length * width);
      for (let i = 0; i < length; i++) {
        for (let j = pastLength + i + 1; j < width; j++) values[i * width + j] = BLOCKED;
      }
      mask = tf.keep(tf.tensor2d(values, [length, width]));
      this.#masks.set(key, mask);
    }
    return mask;
  }

  dispose(): void {
    for (const mask of this.#masks.values()) mask.dispose();
    this.#masks.clear();
  }
}
