// Usage errors commander reports: one line naming the problem and pointing at --help, exit 2.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/baka.js', import.meta.url));

function baka(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('usage errors', () => {
  it('an unknown flag is one line plus "see --help"', () => {
    const result = baka(['info', '--checkpoint', 'x', '--bogus']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe("baka: unknown option '--bogus' (see --help)\n");
    expect(result.stdout).toBe('');
  });

  it('a misspelt flag keeps the suggestion on the same line', () => {
    const result = baka(['doctor', '--sise', '8']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(
      "baka: unknown option '--sise' (Did you mean --size?) (see --help)\n",
    );
  });
});
