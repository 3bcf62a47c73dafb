// The root entry (errors, PRNG, constants) is used by browser-safe packages such as @baka/rope: it
// imports nothing, and touches no Node.js globals. Only `@baka/common/user-paths` is Node-only.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('browser safety', () => {
  it('the root entry imports nothing but its own modules and uses no Node.js globals', () => {
    const directory = new URL('./', import.meta.url);
    const sources = readdirSync(directory).filter(
      (name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'user-paths.ts',
    );
    expect(sources).toEqual(expect.arrayContaining(['index.ts', 'errors.ts', 'random.ts']));
    for (const name of sources) {
      const text = readFileSync(new URL(name, directory), 'utf8');
      for (const [, specifier] of text.matchAll(/from\s+'([^']+)'/g)) {
        expect(specifier?.startsWith('./'), `${name}: ${specifier}`).toBe(true);
      }
      expect(text).not.toMatch(/\b(process|Buffer|require)\b[.(]/);
    }
  });
});
