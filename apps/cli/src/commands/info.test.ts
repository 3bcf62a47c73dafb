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

  it('shows each key with its schema description, and the config --set would give', () => {
    const text = spawnSync(process.execPath, [bin, 'info', '--checkpoint', torchCheckpoint], {
      encoding: 'utf8',
    });
    expect(text.stdout).toMatch(/n_ctx +8 +Chunk length: /);
    expect(text.stdout).toMatch(/memory +xl +'xl' \(upstream\)/);
    const changed = spawnSync(
      process.execPath,
      [bin, 'info', '--checkpoint', torchCheckpoint, '--set', 'n_layers=1', '--json'],
      { encoding: 'utf8' },
    );
    expect(changed.status, changed.stderr).toBe(0);
    const info = JSON.parse(changed.stdout.trim().split('\n').pop()!);
    expect(info.config.n_layers).toBe(1);
    expect(info.parameters.total).toBe(1 * (4 * 32 * 32 + 3 * 32 * 64 + 64 + 4) + 2 * 80 * 32 + 64);
    const bad = spawnSync(
      process.execPath,
      [bin, 'info', '--checkpoint', torchCheckpoint, '--set', 'memory=long'],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^baka: --set memory=long: expected one of xl, none/);
  });
});
