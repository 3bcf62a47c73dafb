import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeBuiltin } from './node-builtins.js';

describe('browser safety', () => {
  it('library modules never import Node built-ins at load time', () => {
    const directory = new URL('.', import.meta.url);
    const sources = readdirSync(directory).filter(
      (name) => name.endsWith('.ts') && !name.endsWith('.test.ts'),
    );
    expect(sources).toContain('tokenizer.ts');
    const offenders = sources.filter((name) =>
      /^import (?!type )[^;]*from 'node:/m.test(readFileSync(new URL(name, directory), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('fetches built-ins on use and names the feature when they are missing', () => {
    expect(
      nodeBuiltin<typeof import('node:os')>('node:os', 'x').availableParallelism(),
    ).toBeGreaterThan(0);
    const saved = globalThis.process.getBuiltinModule;
    try {
      (globalThis.process as { getBuiltinModule?: unknown }).getBuiltinModule = undefined;
      expect(() => nodeBuiltin('node:fs', 'Tokenizer.fromFile')).toThrow(
        /Tokenizer\.fromFile needs Node\.js >= 20\.16/,
      );
    } finally {
      globalThis.process.getBuiltinModule = saved;
    }
  });
});
