import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { configFields } from '@baka/model';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli-test-helpers';
import { VALUE_WIDTH, wrapValue } from './info';

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

describe('baka info config table', () => {
  it('wraps a long value after its commas (inside an item only when one alone is too long)', () => {
    expect(wrapValue('xl')).toEqual(['xl']);
    expect(wrapValue('standard,attention-only,standard,mega')).toEqual([
      'standard,',
      'attention-only,',
      'standard,mega',
    ]);
    expect(wrapValue('0123456789abcdefghij')).toEqual(['0123456789abcde', 'fghij']);
    for (const line of wrapValue('1024,1024,2048,4096,2048,1024,1024,512')) {
      expect(line.length).toBeLessThanOrEqual(VALUE_WIDTH);
    }
    expect(wrapValue('1024,1024,2048,4096,2048,1024,1024,512').join('')).toBe(
      '1024,1024,2048,4096,2048,1024,1024,512',
    );
  });

  it('keeps every description in one column when a layer_kinds list is long', async () => {
    const kinds = 'standard,attention-only,standard';
    const run = await runCli([
      'info',
      '--checkpoint',
      torchCheckpoint,
      '--set',
      `layer_kinds=${kinds}`,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split('\n');
    const table = lines.slice(lines.indexOf('config:') + 1, lines.indexOf('parameters:'));
    const fields = configFields();
    const column = table[0]!.indexOf(
      fields.find((field) => field.key === table[0]!.trim().split(/ +/)[0])!.description,
    );
    expect(column).toBeGreaterThan(VALUE_WIDTH);
    const described = table.filter((line) => /^ {2}\S/.test(line));
    expect(described.length).toBeGreaterThan(10);
    for (const line of described) {
      const key = line.trim().split(/ +/)[0]!;
      const field = fields.find((candidate) => candidate.key === key)!;
      expect(line.slice(column), key).toBe(field.description);
    }
    // the list continues below its first line, in the value column, and reads back whole
    const at = table.findIndex((line) => line.startsWith('  layer_kinds '));
    const valueColumn = table[at]!.indexOf('standard,');
    expect(
      table.slice(at, at + 3).map((line) => line.slice(valueColumn, column).trimEnd()),
    ).toEqual(['standard,', 'attention-only,', 'standard']);
    expect(table[at + 1]!.slice(0, valueColumn).trim()).toBe('');
  });
});
