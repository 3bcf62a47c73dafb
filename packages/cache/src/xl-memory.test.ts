// XLMemory: source policies, chunk staging, length limit, row selection, detach vs gradient flow,
// ownership and leaks. Shape legend: B batch, H heads, P/T tokens, K key dim.
import * as tf from '@tensorflow/tfjs-core';
// Gradient kernels are registered by tfjs-node and the @tensorflow/tfjs bundle, not by core + cpu.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { XLMemory } from './xl-memory';

/** k/v [B, H, T, K] whose every element encodes (layer, chunk, row, token) so tests can read them back. */
function chunkTensors(
  layer: number,
  chunk: number,
  rows = 3,
  tokens = 4,
): { k: tf.Tensor4D; v: tf.Tensor4D } {
  const values: number[] = [];
  for (let row = 0; row < rows; row++) {
    for (let head = 0; head < 2; head++) {
      for (let token = 0; token < tokens; token++) {
        for (let feature = 0; feature < 2; feature++)
          values.push(1000 * layer + 100 * chunk + 10 * row + token);
      }
    }
  }
  const k = tf.tensor4d(values, [rows, 2, tokens, 2]); // [B, H, T, K]
  return { k, v: tf.neg(k) as tf.Tensor4D };
}

/** Runs `build` inside tf.tidy and returns its (non-tensor) result; tensors it kept survive. */
function inTidy<T>(build: () => T): T {
  let result: T | undefined;
  tf.tidy(() => {
    result = build();
  });
  return result as T;
}

/** The (layer, chunk, row, token) codes of a memory tensor, one per [row][token]. */
function codes(tensor: tf.Tensor4D): number[][] {
  const array = tensor.arraySync();
  return array.map((row) => (row[0] ?? []).map((token) => token[0] as number));
}

describe('XLMemory source policies', () => {
  it("'previous-layer': layer i reads layer i-1's chunk c-1 keys, layer 0 reads nothing", () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 3 });
      expect(memory.source).toBe('previous-layer');
      for (let layer = 0; layer < 3; layer++) expect(memory.pastFor(layer)).toBeNull();
      const chunk0 = [0, 1, 2].map((layer) => chunkTensors(layer, 0));
      chunk0.forEach(({ k, v }, layer) => {
        memory.update(layer, k, v, 0);
      });
      expect(memory.length).toBe(4);
      expect(memory.end).toBe(4);
      // chunk 1: while layers update, reads still see chunk 0
      const chunk1 = [0, 1, 2].map((layer) => chunkTensors(layer, 1));
      for (let layer = 0; layer < 3; layer++) {
        const past = memory.pastFor(layer);
        if (layer === 0) {
          expect(past).toBeNull();
        } else {
          expect(past?.k).toBe(chunk0[layer - 1]?.k);
          expect(past?.v).toBe(chunk0[layer - 1]?.v);
          expect(past?.start).toBe(0);
        }
        memory.update(layer, chunk1[layer]?.k as tf.Tensor4D, chunk1[layer]?.v as tf.Tensor4D, 4);
      }
      // after the chunk, layer 2 reads layer 1's chunk-1 keys
      expect(memory.pastFor(2)?.k).toBe(chunk1[1]?.k);
      expect(codes(memory.pastFor(2)?.k as tf.Tensor4D)[0]).toEqual([1100, 1101, 1102, 1103]);
      expect(memory.pastFor(1)?.start).toBe(4);
    });
  });

  it("'same-layer': layer i reads its own previous chunk", () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 2, source: 'same-layer' });
      const chunk0 = [0, 1].map((layer) => chunkTensors(layer, 0));
      chunk0.forEach(({ k, v }, layer) => {
        memory.update(layer, k, v, 0);
      });
      expect(memory.pastFor(0)?.k).toBe(chunk0[0]?.k);
      expect(memory.pastFor(1)?.v).toBe(chunk0[1]?.v);
    });
  });

  it('supports a fresh memory per chunk (next()) with the same results', () => {
    tf.tidy(() => {
      let memory = new XLMemory({ nLayers: 2, maxLength: 3 });
      const seen: number[][] = [];
      for (let chunk = 0; chunk < 3; chunk++) {
        const next = memory.next();
        expect(next.maxLength).toBe(3);
        for (let layer = 0; layer < 2; layer++) {
          const past = memory.pastFor(layer);
          if (past !== null) seen.push(codes(past.k)[0] as number[]);
          const { k, v } = chunkTensors(layer, chunk);
          next.update(layer, k, v, 4 * chunk);
        }
        memory = next;
      }
      expect(seen).toEqual([
        [1, 2, 3],
        [101, 102, 103],
      ]);
    });
  });

  it('rejects a second update of a layer in one chunk and bad layers', () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 2 });
      const { k, v } = chunkTensors(0, 0);
      memory.update(0, k, v, 0);
      expect(() => memory.update(0, k, v, 0)).toThrow(/layer 0 was already updated in this chunk/);
      expect(() => memory.pastFor(2)).toThrow(/layer 2 is not in 0..1/);
      expect(() => memory.update(1, k, tf.zeros([3, 2, 5, 2]) as tf.Tensor4D, 0)).toThrow(
        /disagree/,
      );
      expect(() => memory.detach()).toThrow(/1 of 2 layers were updated/);
      expect(() => new XLMemory({ nLayers: 0 })).toThrow(/nLayers must be a positive integer/);
    });
  });
});

describe('XLMemory length limit', () => {
  it('keeps the last maxLength tokens and moves start accordingly', () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 2, source: 'same-layer', maxLength: 3 });
      for (let layer = 0; layer < 2; layer++) {
        const { k, v } = chunkTensors(layer, 0, 2, 5);
        memory.update(layer, k, v, 10);
      }
      expect(memory.length).toBe(3);
      const past = memory.pastFor(1);
      expect(past?.start).toBe(12);
      expect(past?.k.shape).toEqual([2, 2, 3, 2]);
      expect(codes(past?.k as tf.Tensor4D)).toEqual([
        [1002, 1003, 1004],
        [1012, 1013, 1014],
      ]);
      expect(codes(tf.neg(past?.v as tf.Tensor4D) as tf.Tensor4D)[1]).toEqual([1012, 1013, 1014]);
      expect(memory.end).toBe(15);
    });
  });

  it('leaves shorter chunks untouched', () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 1, source: 'same-layer', maxLength: 8 });
      const { k, v } = chunkTensors(0, 0);
      memory.update(0, k, v, 0);
      expect(memory.pastFor(0)?.k).toBe(k);
    });
  });
});

describe('XLMemory row selection', () => {
  it('keeps the requested rows in order, in every layer, without touching the source', () => {
    tf.tidy(() => {
      const memory = new XLMemory({ nLayers: 2 });
      for (let layer = 0; layer < 2; layer++) {
        const { k, v } = chunkTensors(layer, 0, 4, 2);
        memory.update(layer, k, v, 0);
      }
      const kept = memory.selectRows([3, 1]);
      expect(kept.batchSize).toBe(2);
      expect(codes(kept.pastFor(1)?.k as tf.Tensor4D)).toEqual([
        [30, 31],
        [10, 11],
      ]);
      const layers = kept.layers();
      expect(codes(tf.neg(layers[1]?.v as tf.Tensor4D) as tf.Tensor4D)).toEqual([
        [1030, 1031],
        [1010, 1011],
      ]);
      expect(memory.batchSize).toBe(4);
      expect(() => memory.selectRows([4])).toThrow(/row 4 is not in 0..3/);
      // dropping every row is allowed (all documents ended)
      expect(memory.selectRows([]).batchSize).toBe(0);
    });
  });

  it('an owning memory gives an owning selection that survives tf.tidy', () => {
    const owned = inTidy(() => {
      const memory = new XLMemory({ nLayers: 1, source: 'same-layer' });
      const { k, v } = chunkTensors(0, 0, 3, 2);
      memory.update(0, k, v, 0);
      return memory.detach();
    });
    const selected = owned.selectRows([2]);
    expect(selected.ownsTensors).toBe(true);
    expect(codes(selected.pastFor(0)?.k as tf.Tensor4D)).toEqual([[20, 21]]);
    owned.dispose();
    expect(codes(selected.pastFor(0)?.k as tf.Tensor4D)).toEqual([[20, 21]]);
    selected.dispose();
  });
});

describe('XLMemory gradients', () => {
  // One "window" of two chunks: k_c = x_c * w; chunk 1's loss reads chunk 0's memory.
  function windowLoss(
    w: tf.Tensor,
    x0: tf.Tensor4D,
    x1: tf.Tensor4D,
    mode: 'attached' | 'detached',
  ): tf.Scalar {
    let memory = new XLMemory({ nLayers: 1, source: 'same-layer' });
    const k0 = tf.mul(x0, w) as tf.Tensor4D;
    memory.update(0, k0, k0, 0);
    if (mode === 'detached') memory = memory.detach();
    const past = memory.pastFor(0);
    const k1 = tf.mul(x1, w) as tf.Tensor4D;
    const loss = tf.add(tf.sum(tf.mul(past?.k as tf.Tensor, 3)), tf.sum(k1)) as tf.Scalar;
    if (mode === 'detached') memory.dispose();
    return loss;
  }

  it('gradient flows through memory inside a window, and detach stops it', () => {
    const x0 = tf.fill([1, 1, 2, 2], 2) as tf.Tensor4D; // sum 8
    const x1 = tf.fill([1, 1, 2, 2], 5) as tf.Tensor4D; // sum 20
    const w = tf.scalar(0.5);
    const attached = tf.grad((weight: tf.Tensor) => windowLoss(weight, x0, x1, 'attached'))(w);
    const detached = tf.grad((weight: tf.Tensor) => windowLoss(weight, x0, x1, 'detached'))(w);
    // d/dw [3·sum(x0·w) + sum(x1·w)] = 3·8 + 20; detached memory contributes nothing
    expect(attached.dataSync()[0]).toBeCloseTo(44, 5);
    expect(detached.dataSync()[0]).toBeCloseTo(20, 5);
    tf.dispose([x0, x1, w, attached, detached]);
  });

  it('detached memory carried into the next window is a leaf: gradient only through that window', () => {
    const w = tf.variable(tf.scalar(0.5));
    const x = tf.fill([2, 1, 3, 2], 1) as tf.Tensor4D;
    let carried = null as XLMemory | null;
    const before = tf.memory().numTensors;
    for (let window = 0; window < 30; window++) {
      const previous: XLMemory | null = carried;
      const { value, grads } = tf.variableGrads(() => {
        const memory = new XLMemory({ nLayers: 2 });
        let total = tf.scalar(0);
        for (let layer = 0; layer < 2; layer++) {
          const k = tf.mul(x, w) as tf.Tensor4D;
          const past = previous?.pastFor(layer) ?? null;
          if (past !== null) total = tf.add(total, tf.sum(past.k));
          total = tf.add(total, tf.sum(k));
          memory.update(layer, k, k, 3 * window);
        }
        carried = memory.detach(); // inside the scope, before it frees k
        return total as tf.Scalar;
      });
      // d/dw of 2 layers · sum(x · w) = 2 · 12 = 24, with or without memory from the previous window
      expect(grads[w.name]?.dataSync()[0]).toBeCloseTo(24, 5);
      // each layer's k sums to 6; from window 1 on, layer 1 also reads layer 0's carried memory
      expect(value.dataSync()[0]).toBeCloseTo(window === 0 ? 12 : 18, 4);
      tf.dispose([value, ...Object.values(grads)]);
      previous?.dispose();
      // steady state: exactly the carried memory's tensors (2 layers × k, v) stay alive
      expect(tf.memory().numTensors).toBe(before + 4);
    }
    carried?.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, x]);
  });
});

describe('XLMemory ownership and leaks', () => {
  it('leaks nothing over many chunks and windows of a threaded memory', () => {
    const x = tf.randomNormal([2, 2, 4, 3]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    let carried = null as XLMemory | null;
    for (let window = 0; window < 10; window++) {
      const next = inTidy(() => {
        const memory = new XLMemory({ nLayers: 3, maxLength: 3 });
        for (let chunk = 0; chunk < 5; chunk++) {
          for (let layer = 0; layer < 3; layer++) {
            const past = memory.pastFor(layer) ?? carried?.pastFor(layer) ?? null;
            const k = tf.add(x, past === null ? 0 : tf.mean(past.k)) as tf.Tensor4D;
            memory.update(layer, k, k, 4 * (5 * window + chunk));
          }
        }
        return memory.keep();
      });
      carried?.dispose();
      carried = next;
      expect(tf.memory().numTensors).toBe(before + 6);
      expect(carried.length).toBe(3);
    }
    carried?.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('dispose frees only owned tensors, and an owned memory that was updated frees the old ones too', () => {
    const k = tf.ones([1, 1, 2, 2]) as tf.Tensor4D;
    const scoped = new XLMemory({ nLayers: 1, source: 'same-layer' });
    scoped.update(0, k, k, 0);
    scoped.dispose();
    expect(k.isDisposed).toBe(false); // not owned: left to its creator
    expect(() => scoped.pastFor(0)).toThrow(/disposed/);

    const owned = XLMemory.owning({ nLayers: 1, source: 'same-layer' }, [
      { k: tf.clone(k), v: tf.clone(k), start: 0 },
    ]);
    const old = owned.pastFor(0);
    owned.update(0, k, k, 2); // scope-owned replacement; the old owned tensors wait for dispose()
    expect(old?.k.isDisposed).toBe(false);
    expect(owned.pastFor(0)?.k).toBe(k);
    owned.dispose();
    expect(old?.k.isDisposed).toBe(true);
    expect(old?.v.isDisposed).toBe(true);
    expect(k.isDisposed).toBe(false);
    k.dispose();
  });
});
