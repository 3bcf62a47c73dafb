// The "auto skipped tensorflow-gpu" note: on every command only with --verbose; doctor always.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/baka.js', import.meta.url));
const checkpoint = fileURLToPath(
  new URL('../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);

function backendLine(extra: string[]): string {
  const result = spawnSync(
    process.execPath,
    [
      bin,
      'eval',
      '--checkpoint',
      checkpoint,
      '--input-ids',
      `${checkpoint}/input-ids.json`,
      ...extra,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(result.status, result.stderr).toBe(0);
  return result.stderr.split('\n').find((line) => line.startsWith('backend: ')) ?? '';
}

describe('--verbose', () => {
  it('only --verbose says that auto skipped tensorflow-gpu', () => {
    // This machine has no GPU build installed, so auto always skips it.
    expect(backendLine([])).not.toContain('tensorflow-gpu');
    expect(backendLine(['--verbose'])).toContain('auto skipped tensorflow-gpu');
  });
});
