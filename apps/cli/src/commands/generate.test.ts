// `baka generate` as a user runs it: a checkpoint with its own tokenizer.json; greedy output
// equals the library's generation decoded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BakaCausalLM, makeConfig, saveCheckpoint } from '@baka/model';
import { Tokenizer, trainBpe } from '@baka/tokenizer';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli-test-helpers';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));

describe('baka generate', () => {
  it('streams the greedy continuation the library computes', async () => {
    const text = 'the king and the queen walk at night; the fool speaks of the ghost. '.repeat(20);
    const tokenizerJson = JSON.stringify(
      trainBpe([text], { vocabSize: 300, specialTokens: ['<|endoftext|>'] }),
    );
    const tokenizer = Tokenizer.fromJSON(tokenizerJson);
    const config = makeConfig({
      dim_model: 16,
      n_layers: 2,
      n_heads: 2,
      n_vocab: tokenizer.vocabSize,
      n_ctx: 4,
    });
    const model = BakaCausalLM.create(config, { seed: 5 });
    const dir = join(mkdtempSync(join(tmpdir(), 'baka-generate-')), 'checkpoint');
    await saveCheckpoint(dir, model, { tokenizerJson });
    const prompt = 'the king';
    const ids = model.generate(Array.from(tokenizer.encode(prompt)), {
      maxNewTokens: 9,
      temperature: 0,
      stopTokens: [tokenizer.tokenToId('<|endoftext|>')!],
    });
    model.dispose();
    const run = await runCli([
      'generate',
      '--checkpoint',
      dir,
      '--prompt',
      prompt,
      '--max-new-tokens',
      '9',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${prompt}${tokenizer.decode(ids)}\n`);
    expect(run.stderr).toMatch(/tokens in .* s/);

    // async child processes: a blocking spawnSync would stall the test worker under load
    const sampled = (seed: string, ...more: string[]) =>
      runCli([
        'generate',
        '--checkpoint',
        dir,
        '--prompt',
        prompt,
        '--max-new-tokens',
        '12',
        '--seed',
        seed,
        '--top-k',
        '20',
        '--backend',
        'cpu',
        ...more,
      ]);
    const [again, batch, ...singles] = await Promise.all([
      sampled('3'),
      sampled('3', '--num-samples', '3'),
      ...['3', '4', '5'].map((seed) => sampled(seed)),
    ]);
    expect(again.stdout).toBe(singles[0]!.stdout);
    // --num-samples: side by side in one batch, sample k is the run with seed + k - 1
    expect(batch.status, batch.stderr).toBe(0);
    expect(batch.stderr).toMatch(/3 samples, \d+ tokens in .* s/);
    const texts = batch.stdout.split(/^--- sample \d of 3 ---\n/m).slice(1);
    expect(batch.stdout.match(/^--- sample \d of 3 ---$/gm)).toEqual([
      '--- sample 1 of 3 ---',
      '--- sample 2 of 3 ---',
      '--- sample 3 of 3 ---',
    ]);
    expect(texts).toEqual(singles.map((single) => single.stdout));
    expect(new Set(texts).size).toBeGreaterThan(1); // the seeds differ, so do the samples
  });

  it('rejects bad flags by name', async () => {
    const [run, samples] = await Promise.all([
      runCli(['generate', '--checkpoint', '.', '--prompt', 'x', '--top-p', '1.5']),
      runCli(['generate', '--checkpoint', '.', '--prompt', 'x', '--num-samples', '0']),
    ]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--top-p expects a number in \(0, 1\]/);
    expect(samples.status).toBe(2);
    expect(samples.stderr).toMatch(/--num-samples expects an integer >= 1, got '0'/);
  });

  it('--set changes a model key of the checkpoint; an unknown key lists the valid ones', async () => {
    const checkpoint = fileURLToPath(
      new URL('../../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
    );
    const generate = (...set: string[]) =>
      runCli(
        ['generate', '--checkpoint', checkpoint, '--prompt', 'a', '--max-new-tokens', '4']
          .concat(['--temperature', '0', '--backend', 'cpu'])
          .concat(set.flatMap((setting) => ['--set', setting])),
      );
    const [changed, unknown] = await Promise.all([
      generate('n_ctx=4', 'memory=none'),
      generate('ctx=4'),
    ]);
    expect(changed.status, changed.stderr).toBe(0);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim()).toMatch(/^baka: --set: unknown key 'ctx'; valid keys: .*n_ctx/m);
  });

  it('takes the prompt from a file or stdin, and stops at --stop strings (not printed)', async () => {
    const text = 'the king and the queen walk at night; the fool speaks of the ghost. '.repeat(20);
    const tokenizerJson = JSON.stringify(
      trainBpe([text], { vocabSize: 300, specialTokens: ['<|endoftext|>'] }),
    );
    const tokenizer = Tokenizer.fromJSON(tokenizerJson);
    const config = makeConfig({
      dim_model: 16,
      n_layers: 2,
      n_heads: 2,
      n_vocab: tokenizer.vocabSize,
      n_ctx: 4,
    });
    const model = BakaCausalLM.create(config, { seed: 5 });
    const work = mkdtempSync(join(tmpdir(), 'baka-generate-'));
    const dir = join(work, 'checkpoint');
    await saveCheckpoint(dir, model, { tokenizerJson });
    const prompt = 'the queen';
    const ids = model.generate(Array.from(tokenizer.encode(prompt)), {
      maxNewTokens: 12,
      temperature: 0,
      stopTokens: [tokenizer.tokenToId('<|endoftext|>')!],
    });
    model.dispose();
    const continuation = tokenizer.decode(ids);
    const common = [
      'generate',
      '--checkpoint',
      dir,
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ];
    const run = (args: string[], input?: string) =>
      spawnSync(process.execPath, [bin, ...common, ...args], {
        encoding: 'utf8',
        input,
        timeout: 120_000,
      });
    const promptFile = join(work, 'prompt.txt');
    writeFileSync(promptFile, prompt);
    const fromFile = run(['--prompt-file', promptFile]);
    expect(fromFile.status, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toBe(`${prompt}${continuation}\n`);
    const fromStdin = run(['--prompt', '-'], prompt);
    expect(fromStdin.status, fromStdin.stderr).toBe(0);
    expect(fromStdin.stdout).toBe(`${prompt}${continuation}\n`);
    // A stop string from the middle of the continuation: the text before it, and no more tokens.
    const stop = continuation.slice(3, 6);
    expect(stop.length).toBe(3);
    const stopped = run(['--prompt', prompt, '--stop', stop, 'never-there']);
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout).toBe(`${prompt}${continuation.slice(0, continuation.indexOf(stop))}\n`);
    const generated = Number(/^(\d+) tokens in/m.exec(stopped.stderr)![1]);
    expect(generated).toBeLessThan(ids.length);
    const both = run(['--prompt', prompt, '--prompt-file', promptFile]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/^baka: --prompt and --prompt-file cannot be used together$/m);
  });
});
