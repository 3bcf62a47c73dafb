import { describe, expect, it } from 'vitest';
import { positions } from './positions';

describe('positions', () => {
  it("'reset': keys from 0, queries after the memory, whatever the document position", () => {
    expect(positions('reset', 0, 5, 0)).toEqual({ queryOffset: 0, keyOffset: 0, keyLength: 5 });
    expect(positions('reset', 512, 512, 1536)).toEqual({
      queryOffset: 512,
      keyOffset: 0,
      keyLength: 1024,
    });
  });

  it("'absolute': document positions, the memory just before the chunk", () => {
    expect(positions('absolute', 0, 5, 0)).toEqual({ queryOffset: 0, keyOffset: 0, keyLength: 5 });
    expect(positions('absolute', 512, 512, 1536)).toEqual({
      queryOffset: 1536,
      keyOffset: 1024,
      keyLength: 1024,
    });
    expect(positions('absolute', 3, 4, 10)).toEqual({
      queryOffset: 10,
      keyOffset: 7,
      keyLength: 7,
    });
  });

  it('query j and key P + j share a rotary position under both policies', () => {
    for (const policy of ['reset', 'absolute'] as const) {
      const { queryOffset, keyOffset } = positions(policy, 6, 4, 30);
      expect(queryOffset).toBe(keyOffset + 6);
    }
  });

  it('rejects impossible inputs with the name of the argument', () => {
    expect(() => positions('absolute', 8, 4, 3)).toThrow(/cannot start before position 0/);
    expect(() => positions('reset', -1, 4, 0)).toThrow(
      /pastLength must be a non-negative integer, got -1/,
    );
    expect(() => positions('reset', 0, 1.5, 0)).toThrow(/chunkLength/);
    expect(() => positions('sliding' as 'reset', 0, 1, 0)).toThrow(
      /policy must be 'reset' or 'absolute'/,
    );
  });
});
