import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const torchCheckpoint = fileURLToPath(
  new URL('../../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);

describe('baka info', () => {
  it('prints the config and parameter counts', () => {
    const run = spawnSync(
      process.execPath,
      [bin, 'info', '--checkpoint', torchCheckpoint, '--json'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const info = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(info.config).toMatchObject({
      dim_model: 32,
      n_layers: 3,
      n_heads: 4,
      n_vocab: 80,
      memory: 'xl',
    });
    // 3 layers x (4 x 32^2 + 3 x 32 x 64 + 2 x 32 + 4 rotary) + 2 x 80 x 32 + 2 x 32
    expect(info.parameters.total).toBe(3 * (4 * 32 * 32 + 3 * 32 * 64 + 64 + 4) + 2 * 80 * 32 + 64);
    expect(info.parameters.inputEmbedding).toBe(80 * 32);
    const text = spawnSync(process.execPath, [bin, 'info', '--checkpoint', torchCheckpoint], {
      encoding: 'utf8',
    });
    expect(text.stdout).toMatch(/total +36108/);
    expect(text.stdout).toMatch(/input embedding 2560/);
  });
});
