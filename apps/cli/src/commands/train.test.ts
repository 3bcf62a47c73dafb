// `baka train` end to end, as a user runs it: real processes, real files, real SQLite.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '@baka/model';
import { trainBpe } from '@baka/tokenizer';
import { latestCheckpoint, loadTrainingCheckpoint, MetricsStore } from '@baka/trainer';
import {
  children,
  runCli,
  resumeArgs,
  runLosses,
  smallSetup,
  startCli,
  tempDir,
  waitFor,
} from '../cli-test-helpers';
import { afterEach, describe, expect, it } from 'vitest';
import { evaluateCorpus } from './eval';
import { parseTrainFlags } from './train';

const fixtures = fileURLToPath(
  new URL('../../../../packages/model/__fixtures__/train-4-steps/', import.meta.url),
);

describe('baka train flags', { timeout: 120_000 }, () => {
  it('errors name the flag and the value', () => {
    const base = { backend: 'cpu', sample: true };
    expect(() => parseTrainFlags({ ...base, steps: 'abc' })).toThrow(/--steps: .*'abc'/);
    expect(() => parseTrainFlags({ ...base, lr: '-1' })).toThrow(/--lr: .*'-1'/);
    expect(() => parseTrainFlags({ ...base, window: '2' })).toThrow(/--window: /);
    expect(() => parseTrainFlags({ ...base, run: 'a/b' })).toThrow(/--run: /);
    expect(() => parseTrainFlags({ ...base, preset: 'huge' })).toThrow(
      /--preset: expected one of .*tiny/,
    );
    expect(() => parseTrainFlags({ ...base, resume: true, init: 'x' })).toThrow(
      /--resume and --init/,
    );
    expect(parseTrainFlags({ ...base, steps: '12', lr: '3e-4' })).toMatchObject({
      steps: 12,
      lr: 3e-4,
    });
  });

  it('baka eval --corpus names a bad --split or --max-documents', async () => {
    const model = null as never;
    const flags = { checkpoint: '.', corpus: 'tinyshakespeare', split: 'valid' };
    await expect(evaluateCorpus(model, { ...flags, split: 'dev' })).rejects.toThrow(
      /--split: expected train, valid or test, got 'dev'/,
    );
    await expect(evaluateCorpus(model, { ...flags, maxDocuments: '0' })).rejects.toThrow(
      /--max-documents: expected an integer >= 1, got '0'/,
    );
  });

  it('a bad flag exits 2 with one line naming it', async () => {
    const result = await runCli(['train', '--steps', '0', '--backend', 'cpu']);
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toMatch(/^baka: --steps: .*'0'/m);
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});

describe('baka train --out never destroys what is there', { timeout: 120_000 }, () => {
  it("refuses a directory with the user's files, a runs directory and a file, before training", async () => {
    const dir = tempDir();
    const work = join(dir, 'work');
    mkdirSync(work);
    writeFileSync(join(work, 'notes.txt'), 'keep me');
    const runs = join(dir, 'runs');
    mkdirSync(runs);
    writeFileSync(join(runs, 'metrics.sqlite'), 'not really a database, but precious');
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'a file');
    for (const [out, expected] of [
      [work, /is not empty and is not a checkpoint \(it holds 'notes\.txt'\)/],
      [runs, /is not empty and is not a checkpoint \(it holds 'metrics\.sqlite'\)/],
      [file, /is a file, not a directory/],
    ] as const) {
      const result = await runCli(['train', '--out', out, '--runs-dir', runs, '--backend', 'cpu']);
      expect(result.status, result.stderr).toBe(2);
      const lines = result.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(new RegExp(`^baka: --out: ${out} `));
      expect(lines.at(-1)).toMatch(expected);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(readFileSync(join(work, 'notes.txt'), 'utf8')).toBe('keep me');
    expect(readdirSync(work)).toEqual(['notes.txt']);
    expect(readdirSync(runs)).toEqual(['metrics.sqlite']);
    expect(readFileSync(file, 'utf8')).toBe('a file');
  });
});

describe('baka train refuses data too small for one window', { timeout: 120_000 }, () => {
  it('exits 2 naming the corpus and what one window needs, saving nothing', async () => {
    const { dir, common } = smallSetup();
    const tiny = join(dir, 'tiny.txt');
    writeFileSync(tiny, 'a');
    const args = [...common, '--corpus', tiny, '--steps', '3', '--no-sample'];
    const upstream = await runCli(['train', ...args, '--run', 'u']);
    expect(upstream.status, upstream.stderr).toBe(2);
    expect(upstream.stderr).toMatch(
      /^baka: corpus .*tiny\.txt is too small to form one training window: its training split has \d tokens? in 1 document; upstream mode needs a training document of at least 3 tokens$/m,
    );
    expect(upstream.stderr).not.toMatch(/\n\s+at /);
    const packed = await runCli(['train', ...args, '--run', 'p', '--mode', 'packed']);
    expect(packed.status, packed.stderr).toBe(2);
    expect(packed.stderr).toMatch(
      /^baka: corpus .*tiny\.txt is too small .*; packed mode needs at least --window 16 tokens$/m,
    );
    for (const run of ['u', 'p']) expect(existsSync(join(dir, 'runs', run))).toBe(false);
    const store = new MetricsStore(join(dir, 'runs', 'metrics.sqlite'), { readonly: true });
    expect(store.hasRun('u') || store.hasRun('p')).toBe(false);
    store.close();
  });
});

describe('baka train --corpus DIR of prepared shards', { timeout: 180_000 }, () => {
  it('trains on the shards as they are, and refuses shards of another tokenizer in one line', async () => {
    const { dir, common } = smallSetup();
    const corpus = common[common.indexOf('--corpus') + 1]!;
    const tokenizer = common[common.indexOf('--tokenizer') + 1]!;
    const shards = join(dir, 'shards');
    const prepare = await runCli([
      'data',
      'prepare',
      '--corpus',
      corpus,
      '--out',
      shards,
      '--tokenizer',
      tokenizer,
    ]);
    expect(prepare.status, prepare.stderr).toBe(0);
    const args = [...common, '--corpus', shards, '--steps', '2', '--no-sample'];
    const trained = await runCli(['train', ...args, '--run', 'sharded']);
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/^data: .*shards: \d+ tokens in 40 documents/m);
    expect(existsSync(join(dir, 'runs', '.shards'))).toBe(false);
    expect(countSteps(join(dir, 'runs', 'metrics.sqlite'))).toBeGreaterThan(0);

    const other = join(dir, 'other-tokenizer.json');
    writeFileSync(
      other,
      JSON.stringify(
        trainBpe(['another corpus altogether, with other merges'], {
          vocabSize: 280,
          specialTokens: ['<|endoftext|>', '<|padding|>'],
        }),
      ),
    );
    const mismatch = await runCli(['train', ...args, '--tokenizer', other, '--run', 'other']);
    expect(mismatch.status, mismatch.stderr).toBe(2);
    expect(failureLine(mismatch)).toMatch(
      /^baka: .*shards holds shards made with tokenizer [0-9a-f]{12} .*, but this run tokenizes with [0-9a-f]{12} .*other-tokenizer\.json\); prepare the shards with this run's --tokenizer$/,
    );
    expect(mismatch.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('baka train and eval --corpus take the reader flags', { timeout: 180_000 }, () => {
  it('--text-field reads another JSONL field, as the missing-field error advises', async () => {
    const { dir, common } = smallSetup();
    const corpus = common[common.indexOf('--corpus') + 1]!;
    const body = join(dir, 'body.jsonl');
    writeFileSync(
      body,
      readFileSync(corpus, 'utf8')
        .split('\n')
        .map((line) => JSON.stringify({ body: (JSON.parse(line) as { text: string }).text }))
        .join('\n'),
    );
    const args = [...common, '--corpus', body, '--steps', '2', '--no-sample', '--run', 'b'];
    const missing = await runCli(['train', ...args]);
    expect(missing.status, missing.stderr).toBe(2);
    expect(failureLine(missing)).toMatch(
      /no 'text' field \(fields: body\); choose one with --text-field$/,
    );
    const trained = await runCli(['train', ...args, '--text-field', 'body']);
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/^data: .*body\.jsonl: \d+ tokens in 40 documents/m);
    const evaluated = await runCli([
      'eval',
      '--checkpoint',
      'b',
      '--runs-dir',
      join(dir, 'runs'),
      '--backend',
      'cpu',
      '--corpus',
      body,
      '--text-field',
      'body',
    ]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(/body\.jsonl valid: loss \d+\.\d+ .*\(4 articles/);
  });
});

/** Mounts a tmpfs of `size` at `dir` (needs root); false when this machine does not allow it. */
function mountTmpfs(dir: string, options: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status === 0;
}
const mounts: string[] = [];
afterEach(() => {
  for (const dir of mounts.splice(0)) spawnSync('umount', [dir]);
});
const probe = mkdtempSync(join(tmpdir(), 'baka-mount-probe-'));
const canMount = mountTmpfs(probe, 'size=64k') && spawnSync('umount', [probe]).status === 0;

/** The one `baka:` line of a failed run, checked to have no stack trace. */
function failureLine(result: { stderr: string }): string {
  expect(result.stderr).not.toMatch(/\n\s+at /);
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('baka: '));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('baka train: disk and database failures are one line, exit 1', {
  timeout: 180_000,
}, () => {
  it('a file where a directory is needed, a directory where the database is, a corrupt database', async () => {
    const { dir, common } = smallSetup();
    const args = [...common, '--steps', '2', '--no-sample'];
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const fileRuns = await runCli(['train', ...args, '--runs-dir', file]);
    expect(fileRuns.status).toBe(1);
    expect(failureLine(fileRuns)).toBe(`baka: ${file} is a file where a directory is needed`);
    const under = await runCli(['train', ...args, '--runs-dir', join(file, 'runs')]);
    expect(under.status).toBe(1);
    expect(failureLine(under)).toBe(`baka: ${file} is a file where a directory is needed`);

    const directoryDatabase = join(dir, 'runs-1');
    mkdirSync(join(directoryDatabase, 'metrics.sqlite'), { recursive: true });
    const isDirectory = await runCli(['train', ...args, '--runs-dir', directoryDatabase]);
    expect(isDirectory.status).toBe(1);
    expect(failureLine(isDirectory)).toMatch(
      /^baka: metrics database .*runs-1\/metrics\.sqlite: it is a directory where the database file is needed/,
    );

    const corrupt = join(dir, 'runs-2');
    mkdirSync(corrupt);
    writeFileSync(join(corrupt, 'metrics.sqlite'), Buffer.alloc(8192, 0x5a));
    const garbage = await runCli(['train', ...args, '--runs-dir', corrupt]);
    expect(garbage.status).toBe(1);
    expect(failureLine(garbage)).toMatch(
      /^baka: metrics database .*runs-2\/metrics\.sqlite: not a SQLite database .*move it aside/,
    );
  });

  it.skipIf(!canMount)(
    'a read-only runs directory (a read-only tmpfs; skipped where mount is not permitted)',
    async () => {
      const { dir, common } = smallSetup();
      const runs = join(dir, 'read-only');
      expect(mountTmpfs(runs, 'size=1m,ro')).toBe(true);
      mounts.push(runs);
      const result = await runCli([
        'train',
        ...common,
        '--steps',
        '2',
        '--no-sample',
        '--runs-dir',
        runs,
      ]);
      expect(result.status).toBe(1);
      expect(failureLine(result)).toMatch(
        new RegExp(
          `^baka: cannot create directory ${runs}/\\.shards/.*: ${runs} is not writable: the file system is read-only \\(EROFS\\)$`,
        ),
      );
    },
  );

  it.skipIf(!canMount)(
    'a full disk at a checkpoint (a 1 MB tmpfs; skipped where mount is not permitted): the run is failed, the previous checkpoint intact and named',
    async () => {
      const { dir, common } = smallSetup();
      const runs = join(dir, 'runs');
      const checkpoints = join(runs, 'full', 'checkpoints');
      expect(mountTmpfs(checkpoints, 'size=1m')).toBe(true);
      mounts.push(checkpoints);
      const result = await runCli([
        'train',
        ...common,
        '--run',
        'full',
        '--steps',
        '1000',
        '--epochs',
        '100',
        '--save-every',
        '1',
        '--keep',
        '100',
        '--no-sample',
      ]);
      expect(result.status).toBe(1);
      const line = failureLine(result);
      const match =
        /^baka: cannot save checkpoint (\S+)\/step-(\d+): .*no space left on the device \(ENOSPC\); the previous checkpoint (\S+) is intact$/.exec(
          line,
        );
      expect(match, line).not.toBeNull();
      const previous = match![3]!;
      expect(previous).toBe(latestCheckpoint(checkpoints));
      expect(previous.endsWith(`step-${String(Number(match![2]) - 1).padStart(8, '0')}`)).toBe(
        true,
      );
      const loaded = await loadTrainingCheckpoint(previous);
      expect(loaded.state.step).toBe(Number(match![2]) - 1);
      loaded.model.dispose();
      const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
      expect(
        store.db.prepare('SELECT status, checkpoint_dir FROM runs WHERE name = ?').get('full'),
      ).toEqual({
        status: 'failed',
        checkpoint_dir: previous,
      });
      store.close();
    },
  );
});

describe('baka train refuses a model that cannot fit in memory', { timeout: 60_000 }, () => {
  it('exits 2 with the estimated size, before allocating anything', async () => {
    const { dir, common } = smallSetup();
    const config = join(dir, 'huge.json');
    writeFileSync(
      config,
      JSON.stringify({
        dim_model: 8192,
        dim_attn: 8192,
        dim_ff: 32768,
        n_layers: 120,
        n_heads: 64,
        n_vocab: 1_000_000,
        n_ctx: 8,
      }),
    );
    const result = await runCli([
      'train',
      ...common,
      '--config',
      config,
      '--steps',
      '1',
      '--no-sample',
    ]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /^baka: the model config needs an estimated \d+\.\d TB to train \(.* parameters x 4 bytes x 4 for weights, gradients and AdamW moments\), more than the \d+\.\d GB of memory here; make dim_model \(8192\)/m,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('baka train --optimizer-in-latest-only', { timeout: 120_000 }, () => {
  it('keeps optimizer.safetensors only in the newest checkpoint', async () => {
    const { dir, common } = smallSetup();
    const args = ['--run', 'o', '--steps', '2', '--save-every', '1', '--no-sample'];
    const result = await runCli(['train', ...common, ...args, '--optimizer-in-latest-only']);
    expect(result.status, result.stderr).toBe(0);
    const checkpoints = join(dir, 'runs', 'o', 'checkpoints');
    expect(existsSync(join(checkpoints, 'step-00000001', 'optimizer.safetensors'))).toBe(false);
    expect(existsSync(join(checkpoints, 'step-00000001', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(checkpoints, 'step-00000002', 'optimizer.safetensors'))).toBe(true);
  });
});

describe('baka train parity with the PyTorch reference', { timeout: 180_000 }, () => {
  it('--init --input-ids --window --epochs --out: per-step losses and final weights match (1e-4)', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    mkdirSync(out); // an empty --out directory is fine
    const result = await runCli([
      'train',
      '--init',
      join(fixtures, 'init'),
      '--input-ids',
      join(fixtures, 'batch.json'),
      '--window',
      '16',
      '--epochs',
      '1',
      '--out',
      out,
      '--runs-dir',
      join(dir, 'runs'),
      '--backend',
      'cpu',
    ]);
    expect(result.status, result.stderr).toBe(0);
    const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as {
      steps: { loss: number; grad_norm: number }[];
    };
    const steps = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { step: number; loss: number; gradNorm: number });
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    steps.forEach((step, i) => {
      expect(Math.abs(step.loss - expected.steps[i]!.loss)).toBeLessThan(1e-4);
      expect(Math.abs(step.gradNorm - expected.steps[i]!.grad_norm)).toBeLessThan(1e-4);
    });
    const want = readSafetensors(join(fixtures, 'final.safetensors'));
    const got = readSafetensors(join(out, 'model.safetensors'));
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    let worst = 0;
    for (const [name, tensor] of want) {
      const mine = got.get(name)!.data as Float32Array;
      tensor.data.forEach((value, i) => {
        worst = Math.max(worst, Math.abs(Number(value) - mine[i]!));
      });
    }
    expect(worst).toBeLessThan(1e-4);
    expect(existsSync(join(out, 'config.json'))).toBe(true);
  });
});

describe('baka train runs, stops and resumes', { timeout: 240_000 }, () => {
  it('trains, resumes with --resume, and logs every step to the metrics store', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const first = await runCli([
      'train',
      ...common,
      '--run',
      'r1',
      '--steps',
      '3',
      '--eval-every',
      '2',
      '--sample-tokens',
      '5',
    ]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/done: 3 steps/);
    expect(first.stdout).toMatch(/pnpm --filter metrics-viewer start/);
    expect(first.stdout).toMatch(/loss: first \d+\.\d+ -> final \d+\.\d+/);
    expect(first.stdout).toMatch(/valid: loss \d+\.\d+, ppl/);
    expect(first.stdout).toMatch(/sample \(prompt \+ 5 generated tokens\):\n.+/);
    const second = await runCli(resumeArgs('r1', runs, 5));
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/resuming at step 3/);
    expect(second.stdout).toMatch(/done: 2 steps this session \(5 in total\)/);
    // The bar counts from the resumed step toward the planned total, and ends at 100%.
    expect(second.stderr).toMatch(/^train \[#+\.*\] 80\.0% 4\/5 /m);
    expect(second.stderr).toMatch(/^train \[#{24}\] 100\.0% 5\/5 /m);
    expect(second.stderr).not.toMatch(/ [12]\/5 /);
    expect(second.stdout).toContain(
      `resume with: pnpm baka train --resume r1 --runs-dir ${runs}\n`,
    );
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const steps = store.db.prepare('SELECT step FROM metrics ORDER BY step').all() as {
      step: number;
    }[];
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
    const evals = store.db.prepare('SELECT step, loss FROM evals ORDER BY step').all() as {
      step: number;
      loss: number;
    }[];
    expect(evals.map((e) => e.step)).toEqual([2, 3, 4, 5]);
    store.close();

    // `baka eval --corpus` scores the same split the same way and writes a results row.
    const corpus = common[common.indexOf('--corpus') + 1]!;
    const checkpoint = latestCheckpoint(join(runs, 'r1', 'checkpoints'))!;
    const evalArgs = [
      'eval',
      '--checkpoint',
      checkpoint,
      '--corpus',
      corpus,
      '--runs-dir',
      runs,
      '--backend',
      'cpu',
    ];
    const evaluated = await runCli([...evalArgs, '--split', 'valid', '--json']);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const line = JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!) as {
      loss: number;
      split: string;
    };
    expect(line.split).toBe('valid');
    expect(Math.abs(line.loss - evals.at(-1)!.loss)).toBeLessThan(1e-5);
    const reader = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const result = reader.db
      .prepare(
        'SELECT r.split, r.config_id, r.n_ctx, runs.name FROM results r JOIN runs ON runs.id = r.run_id',
      )
      .get();
    expect(result).toEqual({ split: 'valid', config_id: 'r1', n_ctx: 8, name: 'r1' });
    reader.close();
  });

  it('Ctrl-C saves a checkpoint and exits with the interrupted code 130', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const child = startCli(
      ['train', ...common, '--run', 'c', '--steps', '100000', '--epochs', '1000', '--no-sample'],
      'pipe',
    );
    let stdout = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    const store = () => existsSync(join(runs, 'metrics.sqlite'));
    await waitFor(() => store() && countSteps(join(runs, 'metrics.sqlite')) >= 2, child, 90_000);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(stdout).toMatch(/stopped \(Ctrl-C\): /);
    const checkpoint = latestCheckpoint(join(runs, 'c', 'checkpoints'));
    const loaded = await loadTrainingCheckpoint(checkpoint!);
    expect(loaded.state.step).toBeGreaterThanOrEqual(2);
    loaded.model.dispose();
  });

  it('kill -9 mid-run leaves a loadable last checkpoint and a readable database', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const child = startCli(
      [
        'train',
        ...common,
        '--run',
        'k',
        '--steps',
        '100000',
        '--epochs',
        '1000',
        '--save-every',
        '1',
        '--no-sample',
      ],
      'ignore',
    );
    const checkpoints = join(runs, 'k', 'checkpoints');
    await waitFor(
      () => (latestCheckpoint(checkpoints) ?? '').endsWith('step-00000004'),
      child,
      90_000,
    );
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    const loaded = await loadTrainingCheckpoint(latestCheckpoint(checkpoints)!);
    expect(loaded.state.step).toBeGreaterThanOrEqual(4);
    loaded.model.dispose();
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const run = store.db.prepare('SELECT status FROM runs WHERE name = ?').get('k') as {
      status: string;
    };
    expect(run.status).toBe('running'); // killed: the heartbeat tells the viewer it is stale
    expect(countSteps(join(runs, 'metrics.sqlite'))).toBeGreaterThanOrEqual(4);
    store.close();
    // and the run resumes from it
    const resumed = await runCli(resumeArgs('k', runs, loaded.state.step + 1));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/done: 1 step this session/);
    // the killed trainer's lock was stale and taken over
    expect(resumed.stderr).toMatch(
      /note: took over the stale lock of process \d+ \(.*k\/train\.lock\)/,
    );
    expect(existsSync(join(runs, 'k', 'train.lock'))).toBe(false);
  });

  it('one trainer per run: a second live trainer is refused with one line; resuming an older checkpoint is refused', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const checkpoints = join(runs, 'l', 'checkpoints');
    const child = startCli(
      [
        'train',
        ...common,
        '--run',
        'l',
        '--steps',
        '100000',
        '--epochs',
        '1000',
        '--save-every',
        '1',
        '--keep',
        '100',
        '--no-sample',
      ],
      'ignore',
    );
    await waitFor(
      () => (latestCheckpoint(checkpoints) ?? '').endsWith('step-00000003'),
      child,
      90_000,
    );
    const lock = JSON.parse(readFileSync(join(runs, 'l', 'train.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(child.pid);
    const second = await runCli(resumeArgs('l', runs, 100));
    expect(second.status).toBe(2);
    expect(second.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(
        `^baka: run 'l' is being trained by process ${child.pid} on .*; wait for it to finish or stop it$`,
      ),
    );
    child.kill('SIGINT');
    // an interrupted run exits 130 (after saving), and its lock is gone
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(130);
    expect(existsSync(join(runs, 'l', 'train.lock'))).toBe(false);

    const before = readdirSync(checkpoints).sort();
    const older = join(checkpoints, 'step-00000002');
    const resumeOlder = await runCli(resumeArgs(older, runs, 100));
    expect(resumeOlder.status).toBe(2);
    expect(resumeOlder.stderr.trim().split('\n').at(-1)).toMatch(
      /^baka: cannot resume run 'l' from .*step-00000002 \(step 2\): the run has newer checkpoints \(.*step-00000003.*\) that continuing would overwrite and prune; resume the newest \(--resume l\), or start a new run from this checkpoint with --init$/,
    );
    expect(readdirSync(checkpoints).sort()).toEqual(before);
  });
});

function countSteps(path: string): number {
  try {
    const store = new MetricsStore(path, { readonly: true });
    const row = store.db.prepare('SELECT COUNT(*) AS n FROM metrics').get() as { n: number };
    store.close();
    return row.n;
  } catch {
    return 0;
  }
}

/** Losses per step of a run, from the metrics store. */
function trainingJson(checkpoint: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(checkpoint, 'training.json'), 'utf8'));
}

describe('baka train --set and the schemas', { timeout: 240_000 }, () => {
  it('--set keys are typed by the schema; unknown keys and bad values are one line', async () => {
    const { dir, common } = smallSetup();
    const unknown = await runCli(['train', ...common, '--steps', '1', '--set', 'n_layer=1']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim().split('\n').at(-1)).toMatch(
      /^baka: --set: unknown key 'n_layer'; valid keys: model model_type, dim_model, .*n_layers.*; training runName, .*saveEvery/,
    );
    const bad = await runCli(['train', ...common, '--steps', '1', '--set', 'memory=long']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(
      /^baka: --set memory=long: expected one of xl, none/,
    );
    const trained = await runCli([
      'train',
      ...common,
      '--run',
      's',
      '--steps',
      '2',
      '--set',
      'n_layers=1',
      '--set',
      'memory=none',
      '--set',
      'weightDecay=0',
      '--no-sample',
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 's', 'checkpoints'))!;
    const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ n_layers: 1, memory: 'none', dim_model: 16 });
    expect('carry_memory' in config).toBe(false);
    // training options: the schema's defaults (one saveEvery for library and CLI), --set applied
    expect(trainingJson(checkpoint)).toMatchObject({ weightDecay: 0, saveEvery: 50, maxSteps: 2 });
  });

  it('thin layers from --set: trains, generates and evaluates; no MLP tensors for thin layers', async () => {
    const { dir, common } = smallSetup();
    const trained = await runCli([
      'train',
      ...common,
      '--run',
      'thin',
      '--steps',
      '2',
      '--set',
      'n_layers=3',
      '--set',
      'layer_kinds=standard,attention-only,standard',
      '--set',
      'layer_dim_ff=64,32,16',
      '--no-sample',
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 'thin', 'checkpoints'))!;
    const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      n_layers: 3,
      layer_kinds: ['standard', 'attention-only', 'standard'],
      layer_dim_ff: [64, 32, 16],
      thin_rotary_scale: 1e-4,
    });
    const names = [...readSafetensors(join(checkpoint, 'model.safetensors')).keys()];
    expect(names.filter((name) => name.startsWith('model.layers.1.mlp'))).toEqual([]);
    expect(names).toContain('model.layers.2.mlp.fc_down.weight');
    const generated = await runCli([
      'generate',
      '--checkpoint',
      checkpoint,
      '--prompt',
      'the king',
      '--max-new-tokens',
      '4',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ]);
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stderr).toMatch(/4 tokens in/);
    const ids = join(dir, 'ids.json');
    writeFileSync(ids, JSON.stringify([[5, 17, 40, 2, 9, 11, 30, 8, 100, 7]]));
    const evaluated = await runCli([
      'eval',
      '--checkpoint',
      checkpoint,
      '--input-ids',
      ids,
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const result = JSON.parse(evaluated.stdout.trim().split('\n').at(-1)!) as { loss: number };
    expect(Number.isFinite(result.loss)).toBe(true);
  });

  it('help text shows the schema descriptions and defaults', async () => {
    const help = await runCli(['train', '--help']);
    expect(help.status).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' ');
    expect(text).toMatch(
      /--save-every <n> Checkpoint every N steps \(0: only at the end\) \(default 50\)/,
    );
    expect(text).toMatch(/--lr <x> Peak learning rate \(default 0\.001, quick run 0\.003\)/);
    expect(text).toMatch(/--set <key=value>/);
  });

  it('an old checkpoint with carry_memory in config.json still loads; it becomes the training default', async () => {
    const { dir, common } = smallSetup();
    const first = await runCli(['train', ...common, '--run', 'old', '--steps', '1', '--no-sample']);
    expect(first.status, first.stderr).toBe(0);
    const init = latestCheckpoint(join(dir, 'runs', 'old', 'checkpoints'))!;
    const configPath = join(init, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    writeFileSync(configPath, JSON.stringify({ ...config, carry_memory: true }));
    const tokenizer = common[common.indexOf('--tokenizer') + 1]!;
    const corpus = common[common.indexOf('--corpus') + 1]!;
    const next = await runCli([
      'train',
      '--init',
      init,
      '--tokenizer',
      tokenizer,
      '--corpus',
      corpus,
      '--runs-dir',
      join(dir, 'runs'),
      '--backend',
      'cpu',
      '--window',
      '16',
      '--run',
      'from-old',
      '--steps',
      '1',
      '--no-sample',
    ]);
    expect(next.status, next.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 'from-old', 'checkpoints'))!;
    expect(trainingJson(checkpoint).carryMemory).toBe(true);
  });
});

describe('baka train --resume is self-contained and keeps the model and data', {
  timeout: 300_000,
}, () => {
  it('resumes with the tokenizer saved in the checkpoint after the original file is gone: same losses', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const straight = await runCli([
      'train',
      ...common,
      '--run',
      'straight',
      '--steps',
      '4',
      '--no-sample',
    ]);
    expect(straight.status, straight.stderr).toBe(0);
    const first = await runCli([
      'train',
      ...common,
      '--run',
      'split',
      '--steps',
      '2',
      '--no-sample',
    ]);
    expect(first.status, first.stderr).toBe(0);
    // the tokenizer file the run used is moved away, and the shard cache made with it deleted
    const tokenizer = common[common.indexOf('--tokenizer') + 1]!;
    renameSync(tokenizer, join(dir, 'moved-tokenizer.json'));
    rmSync(join(runs, '.shards'), { recursive: true, force: true });
    const resumed = await runCli(resumeArgs('split', runs, 4));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/done: 2 steps this session \(4 in total\)/);
    const database = join(runs, 'metrics.sqlite');
    expect(runLosses(database, 'split')).toEqual(runLosses(database, 'straight'));
  });

  it('refuses overrides that change the model or the data, naming the flag; allows and records safe ones', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const first = await runCli(['train', ...common, '--run', 'r', '--steps', '2', '--no-sample']);
    expect(first.status, first.stderr).toBe(0);
    const resume = resumeArgs('r', runs);
    const tokenizer = common[common.indexOf('--tokenizer') + 1]!;
    for (const [args, flag] of [
      [['--tokenizer', tokenizer], '--tokenizer'],
      [['--preset', 'tiny'], '--preset'],
      [['--set', 'n_layers=3'], '--set n_layers'],
      [['--window', '32'], '--window'],
      [['--batch-size', '2'], '--batch-size'],
      [['--mode', 'packed'], '--mode'],
      [['--corpus', 'wikitext-2'], '--corpus'],
      [['--seed', '7'], '--seed'],
    ] as const) {
      const result = await runCli([...resume, ...args, '--steps', '3']);
      expect(result.status, `${flag}: ${result.stderr}`).toBe(2);
      const line = result.stderr.trim().split('\n').at(-1)!;
      expect(line.startsWith(`baka: ${flag}: a resumed run keeps`), line).toBe(true);
    }
    // the same window as saved is no change; lr, steps and cadences are safe and recorded
    const safe = await runCli([
      ...resume,
      '--window',
      '16',
      '--lr',
      '5e-4',
      '--steps',
      '3',
      '--save-every',
      '7',
    ]);
    expect(safe.status, safe.stderr).toBe(0);
    expect(safe.stderr).toMatch(
      /resume overrides: maxSteps 2 -> 3, learningRate 0\.001 -> 0\.0005, saveEvery 50 -> 7/,
    );
    const checkpoint = latestCheckpoint(join(runs, 'r', 'checkpoints'))!;
    expect(trainingJson(checkpoint)).toMatchObject({
      learningRate: 5e-4,
      maxSteps: 3,
      saveEvery: 7,
    });
    const lrs = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const last = lrs.db.prepare('SELECT lr FROM metrics ORDER BY step DESC LIMIT 1').get() as {
      lr: number;
    };
    lrs.close();
    expect(last.lr).toBeCloseTo(5e-4, 10);
  });

  it('extending --steps on a cosine schedule needs --extend-schedule', async () => {
    const { dir, common } = smallSetup();
    const runs = join(dir, 'runs');
    const first = await runCli([
      'train',
      ...common,
      '--run',
      'cos',
      '--steps',
      '2',
      '--schedule',
      'cosine',
      '--no-sample',
    ]);
    expect(first.status, first.stderr).toBe(0);
    const resume = resumeArgs('cos', runs);
    const refused = await runCli([...resume, '--steps', '4']);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n').at(-1)).toMatch(
      /^baka: --steps: the cosine schedule decays over 2 steps; add --extend-schedule/,
    );
    const extended = await runCli([...resume, '--steps', '4', '--extend-schedule']);
    expect(extended.status, extended.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(runs, 'cos', 'checkpoints'))!;
    const state = JSON.parse(readFileSync(join(checkpoint, 'trainer_state.json'), 'utf8'));
    expect(state.step).toBe(4);
    expect(state.schedule.totalSteps).toBe(4);
  });
});

/** Every descendant pid of `root` (Linux /proc). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const [child, parent] of parents) {
      if (parent === pid) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

describe('signals reach the trainer through the wrappers', { timeout: 240_000 }, () => {
  const wrappers = [
    ['pnpm baka train', 'pnpm', ['baka', 'train']],
    ['pnpm --filter cli train', 'pnpm', ['--filter', 'cli', 'train']],
  ] as const;
  for (const [name, program, prefix] of wrappers) {
    it(`SIGTERM to \`${name}\` finishes the step, saves, and leaves no trainer behind`, async () => {
      const { dir, common } = smallSetup();
      const runs = join(dir, 'runs');
      const child = spawn(
        program,
        [
          ...prefix,
          ...common,
          '--run',
          't',
          '--steps',
          '100000',
          '--epochs',
          '1000',
          '--no-sample',
        ],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.add(child);
      let output = '';
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      const database = join(runs, 'metrics.sqlite');
      await waitFor(() => existsSync(database) && countSteps(database) >= 1, child, 120_000);
      // the node process running the CLI (not the `sh -c` pnpm starts it with)
      const trainers = descendants(child.pid!).filter((pid) => {
        const line = commandLine(pid);
        return /main\.ts train/.test(line) && !/^(\S*\/)?sh /.test(line);
      });
      expect(trainers, output).toHaveLength(1);
      const trainer = trainers[0]!;
      const exited = new Promise<[number | null, string | null]>((resolve) =>
        child.on('exit', (code, signal) => resolve([code, signal])),
      );
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      // pnpm itself ends at once (killed by the signal: 143); the trainer saves and exits 130
      expect(code === 143 || signal === 'SIGTERM', `${code} ${signal}`).toBe(true);
      const started = Date.now();
      while (alive(trainer) && Date.now() - started < 90_000) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(alive(trainer), `trainer ${trainer} still running`).toBe(false);
      const checkpoint = latestCheckpoint(join(runs, 't', 'checkpoints'));
      expect(checkpoint).toBeDefined();
      const loaded = await loadTrainingCheckpoint(checkpoint!);
      expect(loaded.state.step).toBeGreaterThanOrEqual(1);
      loaded.model.dispose();
      const store = new MetricsStore(database, { readonly: true });
      const run = store.db.prepare('SELECT status FROM runs WHERE name = ?').get('t') as {
        status: string;
      };
      store.close();
      expect(run.status).toBe('stopped');
    });
  }

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} through bin/baka.js saves and exits 130, like Ctrl-C`, async () => {
      const { dir, common } = smallSetup();
      const runs = join(dir, 'runs');
      const child = spawn(
        process.execPath,
        [
          join(repoRoot, 'apps/cli/bin/baka.js'),
          'train',
          ...common,
          '--run',
          'h',
          '--steps',
          '100000',
          '--epochs',
          '1000',
          '--no-sample',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      children.add(child);
      let stdout = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      child.stderr!.resume();
      const database = join(runs, 'metrics.sqlite');
      await waitFor(() => existsSync(database) && countSteps(database) >= 1, child, 120_000);
      const code = await new Promise<number | null>((resolve) => {
        child.on('exit', resolve);
        child.kill(signal);
      });
      expect(code).toBe(130);
      expect(stdout).toMatch(new RegExp(`stopped \\(${signal}\\): `));
      const loaded = await loadTrainingCheckpoint(
        latestCheckpoint(join(runs, 'h', 'checkpoints'))!,
      );
      expect(loaded.state.step).toBeGreaterThanOrEqual(1);
      loaded.model.dispose();
    });
  }
});
