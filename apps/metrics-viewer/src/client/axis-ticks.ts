// Tick increments for integer axes (step, tokens): 1, 2, 5, 10, 20, 50, ... Without them uPlot
// may pick 0.5 and an 8-step run labels its ticks 1, 2, 2, 3, 3, ... once rounded to integers.
export const INTEGER_INCREMENTS: number[] = Array.from({ length: 16 }, (_, power) =>
  [1, 2, 5].map((mantissa) => mantissa * 10 ** power),
).flat();

/** The labels integer ticks get: `values` (what uPlot asks for) formatted, one per tick. */
export function integerTicks(min: number, max: number, increment: number): number[] {
  const ticks: number[] = [];
  for (let tick = Math.ceil(min / increment) * increment; tick <= max; tick += increment) {
    ticks.push(tick);
  }
  return ticks;
}

/** The smallest allowed increment that leaves at least `space` pixels between ticks. */
export function integerIncrement(min: number, max: number, width: number, space: number): number {
  const wanted = ((max - min) * space) / Math.max(width, 1);
  return INTEGER_INCREMENTS.find((increment) => increment >= wanted) ?? INTEGER_INCREMENTS.at(-1)!;
}
