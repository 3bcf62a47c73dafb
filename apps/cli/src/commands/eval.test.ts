// `baka eval` as a user runs it (a real process): a checkpoint written by a plain PyTorch script
// evaluates to the loss PyTorch computed.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BakaCausalLM,
  makeConfig,
  readSafetensors,
  saveCheckpoint,
  writeSafetensors,
} from '@baka/model';
import { trainBpe } from '@baka/tokenizer';
import { MetricsStore } from '@baka/trainer';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli-test-helpers';

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

describe('baka eval on the recall corpus', () => {
  it('stores answer accuracy per distance with its result row, tied to the run', async () => {
    const runs = join(mkdtempSync(join(tmpdir(), 'baka-eval-recall-')), 'runs');
    const corpus = 'recall:train=4,valid=2';
    const tiny = ['dim_model=16', 'dim_ff=32', 'n_layers=2', 'n_heads=2', 'n_ctx=20'];
    const trained = await runCli([
      'train',
      '--corpus',
      corpus,
      ...tiny.flatMap((setting) => ['--set', setting]),
      '--steps',
      '1',
      '--no-sample',
      '--run',
      'reach',
      '--runs-dir',
      runs,
      '--backend',
      'cpu',
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const evaluation = await runCli([
      'eval',
      '--checkpoint',
      'reach',
      '--runs-dir',
      runs,
      '--corpus',
      corpus,
      '--max-documents',
      '1',
      '--note',
      'answers',
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(evaluation.status, evaluation.stderr).toBe(0);
    const line = JSON.parse(evaluation.stdout.trim().split('\n').at(-1)!) as {
      resultId: number;
      answers: { distance: number; answers: number; correct: number; loss: number }[];
    };
    // one valid document of 8 chunks: 8 - d answers at distance d = 0..3
    expect(line.answers.map(({ distance, answers }) => [distance, answers])).toEqual([
      [0, 8],
      [1, 7],
      [2, 6],
      [3, 5],
    ]);
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    try {
      expect(
        store.db
          .prepare(
            `SELECT runs.name AS run, r.benchmark, r.note FROM results r
             JOIN runs ON runs.id = r.run_id WHERE r.id = ?`,
          )
          .get(line.resultId),
      ).toEqual({ run: 'reach', benchmark: corpus, note: 'answers' });
      const stored = store.db
        .prepare(
          'SELECT distance, answers, correct, loss FROM result_answers WHERE result_id = ? ORDER BY distance',
        )
        .all(line.resultId) as {
        distance: number;
        answers: number;
        correct: number;
        loss: number;
      }[];
      expect(stored).toEqual(
        line.answers.map(({ distance, answers, correct, loss }) => ({
          distance,
          answers,
          correct,
          loss: expect.closeTo(loss, 10),
        })),
      );
    } finally {
      store.close();
    }
  });
});

/** Sets every weight of DIR/model.safetensors but the rotary frequencies to NaN. */
function poisonWeights(dir: string): void {
  const path = join(dir, 'model.safetensors');
  const tensors = readSafetensors(path);
  for (const [name, tensor] of tensors) {
    if (!name.endsWith('rot.freqs')) (tensor.data as Float32Array).fill(Number.NaN);
  }
  writeSafetensors(path, tensors, { format: 'pt' });
}

describe('baka eval with a NaN loss', () => {
  it('--input-ids: prints the result, then one line and exit 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-eval-nan-'));
    const checkpoint = join(dir, 'nan');
    cpSync(torchCheckpoint, checkpoint, { recursive: true });
    poisonWeights(checkpoint);
    const run = baka([
      'eval',
      '--checkpoint',
      checkpoint,
      '--input-ids',
      join(torchCheckpoint, 'input-ids.json'),
      '--backend',
      'cpu',
    ]);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/loss NaN/);
    expect(run.stderr).toMatch(/^baka: the loss of .*nan on .*input-ids\.json is NaN: /m);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('--corpus: logs the result row, then one line and exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-eval-nan-'));
    const texts = Array.from({ length: 12 }, (_, i) => `line ${i}: the ghost walks at night.`);
    const corpus = join(dir, 'corpus.jsonl');
    writeFileSync(corpus, texts.map((text) => JSON.stringify({ text })).join('\n'));
    const tokenizer = trainBpe(texts, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
    const model = BakaCausalLM.create(
      makeConfig({ dim_model: 16, dim_ff: 32, n_layers: 2, n_heads: 2, n_ctx: 8, n_vocab: 300 }),
      { seed: 0 },
    );
    const checkpoint = join(dir, 'nan');
    await saveCheckpoint(checkpoint, model, { tokenizerJson: JSON.stringify(tokenizer) });
    model.dispose();
    poisonWeights(checkpoint);
    const runs = join(dir, 'runs');
    const args = ['eval', '--checkpoint', checkpoint, '--corpus', corpus, '--runs-dir', runs];
    const run = baka([...args, '--split', 'train', '--backend', 'cpu']);
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/result #1 saved/);
    expect(run.stderr).toMatch(
      /^baka: the loss of .*nan on .*corpus\.jsonl train is NaN: all \d+ windows had a NaN\/Inf loss$/m,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
