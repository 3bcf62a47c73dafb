import { describe, expect, it } from 'vitest';
import { bucketMeans, largestTriangleThreeBuckets } from './lttb';

/** A direct transcription of the algorithm's definition, with explicit bucket lists. */
function referenceLttb(points: [number, number][], threshold: number): number[] {
  const inner = points.length - 2;
  const buckets: number[][] = [];
  for (let bucket = 0; bucket < threshold - 2; bucket++) {
    const start = Math.floor((bucket * inner) / (threshold - 2)) + 1;
    const end = Math.floor(((bucket + 1) * inner) / (threshold - 2)) + 1;
    buckets.push(Array.from({ length: end - start }, (_, offset) => start + offset));
  }
  buckets.push([points.length - 1]);
  const kept = [0];
  for (let bucket = 0; bucket < threshold - 2; bucket++) {
    const next = buckets[bucket + 1]!;
    const meanX = next.reduce((sum, index) => sum + points[index]![0], 0) / next.length;
    const meanY = next.reduce((sum, index) => sum + points[index]![1], 0) / next.length;
    const [ax, ay] = points[kept[kept.length - 1]!]!;
    let best = -1;
    let bestArea = -1;
    for (const index of buckets[bucket]!) {
      const [bx, by] = points[index]!;
      const area = Math.abs(ax * (by - meanY) + bx * (meanY - ay) + meanX * (ay - by)) / 2;
      if (area > bestArea) {
        bestArea = area;
        best = index;
      }
    }
    kept.push(best);
  }
  kept.push(points.length - 1);
  return kept;
}

function randomWalk(length: number, seed: number): { x: number[]; y: number[] } {
  let state = seed;
  const random = () => {
    state = (state * 1664525 + 1013904223) % 4294967296;
    return state / 4294967296;
  };
  const x: number[] = [];
  const y: number[] = [];
  let value = 0;
  for (let index = 0; index < length; index++) {
    x.push(index * 2 + random());
    value += random() - 0.5;
    y.push(value);
  }
  return { x, y };
}

describe('largestTriangleThreeBuckets', () => {
  it('returns every index when there are no more points than the threshold', () => {
    expect(Array.from(largestTriangleThreeBuckets([1, 2, 3], [5, 6, 7], 3))).toEqual([0, 1, 2]);
    expect(Array.from(largestTriangleThreeBuckets([1, 2], [5, 6], 10))).toEqual([0, 1]);
    expect(Array.from(largestTriangleThreeBuckets([], [], 10))).toEqual([]);
  });

  it('keeps the first and last point and exactly `threshold` ascending indices', () => {
    const { x, y } = randomWalk(10_000, 7);
    const kept = largestTriangleThreeBuckets(x, y, 500);
    expect(kept.length).toBe(500);
    expect(kept[0]).toBe(0);
    expect(kept[499]).toBe(9_999);
    for (let index = 1; index < kept.length; index++)
      expect(kept[index]!).toBeGreaterThan(kept[index - 1]!);
  });

  it('matches a direct transcription of the algorithm on random data', () => {
    for (const [length, threshold, seed] of [
      [1000, 50, 1],
      [997, 13, 2],
      [10, 3, 3],
      [5000, 4999, 4],
    ] as const) {
      const { x, y } = randomWalk(length, seed);
      const points = x.map((value, index) => [value, y[index]!] as [number, number]);
      expect(Array.from(largestTriangleThreeBuckets(x, y, threshold))).toEqual(
        referenceLttb(points, threshold),
      );
    }
  });

  it('keeps a lone spike and a lone dip that every-n-th sampling would drop', () => {
    const x = Array.from({ length: 1000 }, (_, index) => index);
    const y = x.map(() => 1);
    y[333] = 50;
    y[777] = -50;
    const kept = Array.from(largestTriangleThreeBuckets(x, y, 20));
    expect(kept).toContain(333);
    expect(kept).toContain(777);
  });

  it('picks the point forming the largest triangle in a hand-checked case', () => {
    // Buckets: [1,2] and [3,4]; last point 5. From (0,0) with next-bucket mean (3.5, 0),
    // point 2 (y = 3) forms a larger triangle than point 1 (y = 1).
    const x = [0, 1, 2, 3, 4, 5];
    const y = [0, 1, 3, 0, 0, 0];
    expect(Array.from(largestTriangleThreeBuckets(x, y, 4))).toEqual([0, 2, 3, 5]);
  });

  it('rejects a threshold below 3 and mismatched lengths', () => {
    expect(() => largestTriangleThreeBuckets([1, 2, 3, 4], [1, 2, 3, 4], 2)).toThrow(/threshold/);
    expect(() => largestTriangleThreeBuckets([1, 2, 3], [1, 2], 3)).toThrow(/3 points but y has 2/);
  });
});

describe('bucketMeans', () => {
  it('averages each LTTB bucket, keeping the first and last point', () => {
    // 8 points, threshold 5: buckets [1,2], [3,4], [5,6] between the ends.
    const values = [10, 1, 3, 5, 7, 9, 11, 20];
    expect(Array.from(bucketMeans(values, 5))).toEqual([10, 2, 6, 10, 20]);
  });

  it('returns the values themselves when nothing is downsampled', () => {
    expect(Array.from(bucketMeans([4, 5, 6], 10))).toEqual([4, 5, 6]);
  });

  it('uses the same buckets as LTTB: each kept point lies in the bucket its mean covers', () => {
    const { x, y } = randomWalk(1003, 5);
    const kept = largestTriangleThreeBuckets(x, y, 40);
    const means = bucketMeans(y, 40);
    const size = (1003 - 2) / 38;
    for (let bucket = 0; bucket < 38; bucket++) {
      const start = Math.floor(bucket * size) + 1;
      const end = Math.floor((bucket + 1) * size) + 1;
      expect(kept[bucket + 1]!).toBeGreaterThanOrEqual(start);
      expect(kept[bucket + 1]!).toBeLessThan(end);
      const slice = y.slice(start, end);
      expect(means[bucket + 1]).toBeCloseTo(slice.reduce((a, b) => a + b, 0) / slice.length, 12);
    }
  });
});
