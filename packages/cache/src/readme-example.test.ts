// The README's example must run as written (from source, through tsx).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('README example runs and prints the score shape and memory length', () => {
  const packageDirectory = fileURLToPath(new URL('..', import.meta.url));
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const example = /## Example[^\n]*\n+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example, 'README.md has a ```ts block under "## Example"').toBeDefined();
  // inside the package so @baka/* and tfjs resolve as for a user of the workspace
  const file = `${packageDirectory}.readme-example-${process.pid}.ts`;
  writeFileSync(file, example as string);
  try {
    const stdout = execFileSync(
      process.execPath,
      ['--conditions=@baka/source', '--import', 'tsx', file],
      {
        cwd: packageDirectory,
        encoding: 'utf8',
        stdio: 'pipe',
      },
    );
    expect(stdout.trim().split('\n').pop()).toBe('[ 1, 2, 3, 6 ] 3');
  } finally {
    rmSync(file, { force: true });
  }
}, 60_000);
