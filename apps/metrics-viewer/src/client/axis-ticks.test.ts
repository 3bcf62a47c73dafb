import { describe, expect, it } from 'vitest';
import { INTEGER_INCREMENTS, integerIncrement, integerTicks } from './axis-ticks';

describe('integer axis ticks', () => {
  it('an 8-step run on a wide chart labels each step once', () => {
    const increment = integerIncrement(1, 8, 900, 50);
    expect(increment).toBe(1);
    const labels = integerTicks(1, 8, increment).map((tick) => String(Math.round(tick)));
    expect(labels).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(new Set(labels).size).toBe(labels.length);
  });

  it('increments are whole numbers, so rounded labels never repeat', () => {
    expect(INTEGER_INCREMENTS.every((increment) => Number.isInteger(increment))).toBe(true);
    for (const [min, max, width] of [
      [0, 3, 800],
      [1, 259, 300],
      [0, 1_000_000, 640],
    ] as const) {
      const labels = integerTicks(min, max, integerIncrement(min, max, width, 50)).map((tick) =>
        Math.round(tick),
      );
      expect(new Set(labels).size).toBe(labels.length);
    }
  });
});
