// `baka eval` as a user runs it (a real process): a checkpoint written by a plain PyTorch script
// evaluates to the loss PyTorch computed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const torchCheckpoint = fileURLToPath(
  new URL('../../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);

function baka(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe('baka eval', () => {
  it('gives the PyTorch loss of a PyTorch-written checkpoint (last stdout line is JSON)', () => {
    const expected = JSON.parse(readFileSync(join(torchCheckpoint, 'expected.json'), 'utf8'));
    const run = baka([
      'eval',
      '--checkpoint',
      torchCheckpoint,
      '--input-ids',
      join(torchCheckpoint, 'input-ids.json'),
      '--json',
      '--backend',
      process.env.BAKA_TEST_BACKEND === 'cpu' ? 'cpu' : 'auto',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    const result = JSON.parse(lines[lines.length - 1]!);
    expect(Math.abs(result.loss - expected.loss)).toBeLessThan(1e-4);
    expect(result.tokens).toBe(expected.tokens);
    expect(result.rows).toBe(2);
  });

  it('reports bad input clearly (exit 2, no stack)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-eval-'));
    const ragged = join(dir, 'ragged.json');
    writeFileSync(ragged, '[[1, 2, 3], [4, 5]]');
    const outOfVocabulary = join(dir, 'big.json');
    writeFileSync(outOfVocabulary, '[[1, 2, 300]]');
    const cases: [string[], RegExp][] = [
      [['--input-ids', ragged], /row 1 has 2 ids, but row 0 has 3/],
      [['--input-ids', outOfVocabulary], /token id 300 .*outside the model's vocabulary 0\.\.79/],
      [['--input-ids', join(dir, 'missing.json')], /not found/],
    ];
    for (const [args, message] of cases) {
      const run = baka(['eval', '--checkpoint', torchCheckpoint, '--backend', 'cpu', ...args]);
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
    const missing = baka([
      'eval',
      '--checkpoint',
      join(dir, 'nope'),
      '--input-ids',
      ragged,
      '--backend',
      'cpu',
    ]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--checkpoint: directory not found/);
  });

  it('--set changes a model key of the checkpoint; a bad key or value is one line', () => {
    const args = [
      'eval',
      '--checkpoint',
      torchCheckpoint,
      '--input-ids',
      join(torchCheckpoint, 'input-ids.json'),
      '--json',
      '--backend',
      'cpu',
    ];
    const full = baka(args);
    const noMemory = baka([...args, '--set', 'memory=none']);
    expect(noMemory.status, noMemory.stderr).toBe(0);
    const loss = (run: { stdout: string }) =>
      JSON.parse(run.stdout.trim().split('\n').at(-1)!).loss as number;
    // without XL memory the later chunks see less context: a different loss
    expect(loss(noMemory)).not.toBe(loss(full));
    const unknown = baka([...args, '--set', 'layers=2']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim()).toMatch(
      /^baka: --set: unknown key 'layers'; valid keys: .*n_ctx/m,
    );
    const bad = baka([...args, '--set', 'n_ctx=zero']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^baka: --set n_ctx=zero: expected an integer > 0/m);
  });
});
