// KVCache.rewind and KVCache.endChunk: dropping the last tokens of a chunk and ending a chunk
// early (pause and memory tokens make chunk lengths vary). One layer, k = v = token values, so
// what the cache holds is readable.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { KVCache } from './kv-cache';

/** k = v = [1, 1, t, 1] holding `values`. */
function kv(values: number[]): tf.Tensor4D {
  return tf.tensor4d(values, [1, 1, values.length, 1]);
}

function feed(cache: KVCache, values: number[]): void {
  const t = kv(values);
  cache.append(0, t, t);
  t.dispose();
}

function cached(cache: KVCache): number[] {
  const past = cache.view(0).past;
  return past === null ? [] : Array.from(past.k.dataSync());
}

describe('KVCache.rewind / endChunk', () => {
  it('rewind drops the chunk’s last tokens; feeding them again is as if never rewound', () => {
    const cache = new KVCache({ nLayers: 1, chunkLength: 4, source: 'same-layer' });
    feed(cache, [1, 2, 3]);
    expect(cache.position).toBe(3);
    cache.rewind(2);
    expect(cache.position).toBe(1);
    expect(cached(cache)).toEqual([1]);
    feed(cache, [9, 2, 3]);
    expect(cached(cache)).toEqual([1, 9, 2, 3]);
    expect(cache.position).toBe(4);
    // the chunk filled: it is now the memory, and the next chunk starts empty in front of it
    expect(cache.chunkStart).toBe(4);
    expect(cached(cache)).toEqual([1, 9, 2, 3]);
    // the memory cannot be rewound
    expect(() => cache.rewind(1)).toThrow(/rewind: count must be an integer in 0\.\.0/);
    cache.dispose();
  });

  it('endChunk rolls a short chunk into the memory; positions continue', () => {
    const cache = new KVCache({ nLayers: 1, chunkLength: 8, source: 'same-layer' });
    feed(cache, [1, 2, 3]);
    cache.endChunk();
    expect(cache.chunkStart).toBe(3);
    expect(cache.room).toBe(8);
    expect(cached(cache)).toEqual([1, 2, 3]);
    feed(cache, [4, 5]);
    expect(cached(cache)).toEqual([1, 2, 3, 4, 5]);
    expect(cache.memory.end).toBe(3);
    // view positions: 'reset' keys start at 0 in front of the memory
    expect(cache.view(0).keyOffset).toBe(0);
    cache.endChunk();
    expect(cached(cache)).toEqual([4, 5]);
    expect(cache.memory.layers()[0]?.start).toBe(3);
    cache.endChunk(); // empty chunk: nothing changes
    expect(cached(cache)).toEqual([4, 5]);
    cache.dispose();
  });

  it('neither leaks tensors', () => {
    const before = tf.memory().numTensors;
    const cache = new KVCache({ nLayers: 1, chunkLength: 4, source: 'same-layer' });
    for (let i = 0; i < 5; i++) {
      feed(cache, [1, 2]);
      cache.rewind(1);
      feed(cache, [3]);
      cache.endChunk();
    }
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('endChunk(keep) puts only those positions into the memory, which ends where the chunk ends', () => {
    const cache = new KVCache({ nLayers: 1, chunkLength: 10, source: 'same-layer' });
    feed(cache, [1, 2, 3, 4]);
    cache.endChunk([1, 3]);
    expect(cache.chunkStart).toBe(4);
    expect(cached(cache)).toEqual([2, 4]);
    expect(cache.memory.layers()[0]!.start).toBe(2); // 4 - 2 kept: the memory ends at 4
    feed(cache, [5, 6, 7]);
    expect(cached(cache)).toEqual([2, 4, 5, 6, 7]);
    cache.endChunk([0, 2]); // the new chunk's own positions, not the memory's
    expect(cached(cache)).toEqual([5, 7]);
    expect(cache.memory.layers()[0]!.start).toBe(5);
    feed(cache, [8]);
    expect(() => cache.endChunk([1])).toThrow(/keep must list increasing positions 0\.\.0/);
    expect(() => cache.endChunk([0, 0])).toThrow(/keep must list increasing positions/);
    cache.dispose();
  });
});
