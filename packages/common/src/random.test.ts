import { describe, expect, it } from 'vitest';
import { mulberry32 } from './index';

describe('mulberry32', () => {
  it('gives the sequence checkpoints, fixtures and resumed data orders were made with', () => {
    // The reference implementation (Tommy Ettinger's mulberry32, as published), seed 0 and 42.
    const next = mulberry32(0);
    const first = Array.from({ length: 4 }, () => next());
    expect(first.map((x) => Math.round(x * 4294967296))).toEqual([
      reference(0, 0),
      reference(0, 1),
      reference(0, 2),
      reference(0, 3),
    ]);
    const fortyTwo = mulberry32(42);
    expect(Math.round(fortyTwo() * 4294967296)).toBe(reference(42, 0));
  });

  it('takes any number as a 32-bit seed and stays in [0, 1)', () => {
    const a = mulberry32(-1);
    const b = mulberry32(0xffffffff);
    for (let i = 0; i < 1000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});

/** Draw `index` of mulberry32(seed) as a uint32, written independently with BigInt arithmetic. */
function reference(seed: number, index: number): number {
  const mask = 0xffffffffn;
  const imul = (a: bigint, b: bigint) => (a * b) & mask;
  const state = (BigInt(seed >>> 0) + 0x6d2b79f5n * BigInt(index + 1)) & mask;
  let t = imul(state ^ (state >> 15n), state | 1n);
  t = (t ^ ((t + imul(t ^ (t >> 7n), t | 61n)) & mask)) & mask;
  return Number((t ^ (t >> 14n)) & mask);
}
