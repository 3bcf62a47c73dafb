// `baka experiment` end to end, as a user runs it: real processes, real files, real SQLite.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latestCheckpoint, loadTrainingCheckpoint, MetricsStore } from '@baka/trainer';
import { describe, expect, it } from 'vitest';
import { memoryReachVariants, memoryVariants } from '../built-in-experiments';
import { collect, runCli, startCli, waitFor, writeSmallCorpus } from '../cli-test-helpers';
import { parseExperiment } from '../experiment-file';
import { BakaCausalLM, makeConfig } from '@baka/model';
import { loadExperiment, planExperiment, shareInitialWeights } from './experiment';

/** A small corpus, a 300-token BPE and an experiment file of a 16-wide model: seconds a run. */
function setup(overrides: Record<string, unknown> = {}): {
  dir: string;
  file: string;
  runs: string;
  write: (changes: Record<string, unknown>) => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'baka-experiment-'));
  writeSmallCorpus(dir);
  const file = join(dir, 'exp.json');
  const experiment = {
    name: 'tiny',
    base: {
      corpus: 'corpus.jsonl',
      tokenizer: 'tokenizer.json',
      set: [
        'dim_model=16',
        'dim_ff=32',
        'n_layers=2',
        'n_heads=2',
        'n_ctx=8',
        'window=16',
        'epochs=1000',
        'saveEvery=1',
      ],
    },
    variants: [
      { name: 'reset', set: ['position_policy=reset'] },
      { name: 'absolute', set: ['position_policy=absolute'] },
    ],
    budget: { steps: 4 },
    seeds: [0],
    eval: { every: 0, documents: 2 },
    ...overrides,
  };
  const write = (changes: Record<string, unknown>) =>
    writeFileSync(file, JSON.stringify({ ...experiment, ...changes }));
  write({});
  return { dir, file, runs: join(dir, 'runs'), write };
}

const runArgs = (file: string, runs: string) => [
  'experiment',
  'run',
  file,
  '--runs-dir',
  runs,
  '--backend',
  'cpu',
];

/** Each run's logged (step, loss, time) rows. */
function metricRows(runs: string): Map<string, { step: number; loss: number; time: number }[]> {
  const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
  try {
    const rows = store.db
      .prepare(
        'SELECT r.name, m.step, m.loss, m.time FROM metrics m JOIN runs r ON r.id = m.run_id ORDER BY r.name, m.step',
      )
      .all() as { name: string; step: number; loss: number; time: number }[];
    const byRun = new Map<string, { step: number; loss: number; time: number }[]>();
    for (const { name, ...row } of rows) byRun.set(name, [...(byRun.get(name) ?? []), row]);
    return byRun;
  } finally {
    store.close();
  }
}

/** metricRows, or none while the database does not exist yet (or is being created). */
function metricRowsIfAny(runs: string): ReturnType<typeof metricRows> {
  if (!existsSync(join(runs, 'metrics.sqlite'))) return new Map();
  try {
    return metricRows(runs);
  } catch {
    return new Map();
  }
}

function runStatus(runs: string, name: string): string | undefined {
  const path = join(runs, 'metrics.sqlite');
  if (!existsSync(path)) return undefined;
  const store = new MetricsStore(path, { readonly: true });
  try {
    const row = store.db.prepare('SELECT status FROM runs WHERE name = ?').get(name) as
      | { status: string }
      | undefined;
    return row?.status;
  } catch {
    return undefined;
  } finally {
    store.close();
  }
}

describe('experiment files', () => {
  const valid = {
    name: 'e',
    base: { corpus: 'tinyshakespeare' },
    variants: [{ name: 'a' }],
    budget: { steps: 3 },
  };
  const error = (input: unknown) => {
    try {
      const experiment = parseExperiment(input, 'exp.json');
      planExperiment(experiment, '.', 'exp.json', 300, 'tokenizer.json');
    } catch (caught) {
      return (caught as Error).message;
    }
    return 'no error';
  };

  it('a malformed file is one line naming the field', () => {
    expect(error({ ...valid, name: 'a b' })).toMatch(/^exp\.json: name: letters, digits/);
    expect(error({ ...valid, variants: [] })).toMatch(/^exp\.json: variants: /);
    expect(error({ ...valid, variants: [{ name: 'a', sets: [] }] })).toBe(
      'exp.json: variants[0].sets: unknown field',
    );
    expect(error({ ...valid, budget: { steps: 3, minutes: 2 } })).toBe(
      'exp.json: budget: give exactly one of steps, tokens, minutes',
    );
    expect(error({ ...valid, budget: { steps: 0 } })).toMatch(/^exp\.json: budget\.steps: /);
    expect(error({ ...valid, seeds: [0, 'x'] })).toMatch(/^exp\.json: seeds\[1\]: /);
    expect(error({ ...valid, eval: { split: 'train' } })).toMatch(/^exp\.json: eval\.split: /);
    expect(error({ ...valid, variants: [{ name: 'a' }, { name: 'a' }] })).toBe(
      "exp.json: variants[1].name: 'a' is used twice",
    );
    expect(error({ ...valid, variants: [{ name: 'a', set: ['n_layers=x'] }] })).toMatch(
      /^exp\.json: variants\[0\]\.set\[0\] n_layers=x: expected an integer/,
    );
    expect(error({ ...valid, variants: [{ name: 'a', set: ['colour=red'] }] })).toMatch(
      /^exp\.json: variants\[0\]\.set\[0\]: unknown key 'colour'/,
    );
    expect(error({ ...valid, variants: [{ name: 'a', set: ['seed=3'] }] })).toBe(
      'exp.json: variants[0].set[0]: seed is set by seeds',
    );
    expect(error({ ...valid, base: { ...valid.base, set: ['maxSteps=9'] } })).toBe(
      'exp.json: base.set[0]: maxSteps is set by budget',
    );
    expect(error({ ...valid, variants: [{ name: 'a', set: ['n_heads=3'] }] })).toMatch(
      /^exp\.json: variants\[0\] \(a\): /,
    );
    expect(error({ ...valid, base: { ...valid.base, preset: 'huge' } })).toMatch(
      /^exp\.json: base\.preset: .*expected one of .*tiny/,
    );
    expect(
      error({ ...valid, base: { ...valid.base, set: ['schedule=cosine'] }, budget: { tokens: 9 } }),
    ).toMatch(/^exp\.json: budget: a cosine schedule .* needs a steps budget/);
    expect(error(valid)).toBe('no error');
  });

  it('the CLI prints it as one line and exits 2, before any training', async () => {
    const { file, runs, write } = setup();
    write({ variants: [{ name: 'a', set: ['memory=sideways'] }] });
    const result = await runCli(runArgs(file, runs));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /^baka: .*exp\.json: variants\[0\]\.set\[0\] memory=sideways: expected one of xl, none/,
    );
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(runs, 'metrics.sqlite'))).toBe(false);
    const missing = await runCli(runArgs('nope', runs));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(
      /^baka: experiment: no file .*nope and no built-in experiment 'nope' \(built-in: seed-xl, memory-variants, memory-reach\)\n$/,
    );
  });

  it('memory-variants holds every value the config registry offers for the memory keys', () => {
    const variants = memoryVariants('tiny');
    expect(variants).toEqual([
      { name: 'defaults', set: [] },
      { name: 'memory-none', set: ['memory=none'] },
      { name: 'memory_source-same-layer', set: ['memory_source=same-layer'] },
      {
        name: 'layer_kinds-attention-only',
        set: ['layer_kinds=standard,attention-only,standard,attention-only'],
      },
      {
        name: 'layer_kinds-mega',
        set: ['layer_kinds=standard,mega,standard,mega', 'memory_source=same-layer'],
      },
      { name: 'pause', set: ['n_pauses=4', 'norm=rmsnorm'] },
      { name: 'rmt', set: ['n_pauses=4', 'n_rmt_tokens=4', 'memory_source=same-layer'] },
      { name: 'mamba', set: ['mamba_each_nth_layer=2'] },
      { name: 'block-recurrent', set: ['recurrent_layers=2'] },
      { name: 'memtok', set: ['n_memory_tokens=4', 'n_mem_kv=4'] },
    ]);
    // both built-ins resolve completely (every setting and config valid)
    for (const name of ['seed-xl', 'memory-variants', 'memory-reach']) {
      const { experiment } = loadExperiment(name);
      const plan = planExperiment(experiment, '.', name, 50277, 'tokenizer.json');
      expect(plan.length).toBe(experiment.variants.length * experiment.seeds.length);
    }
    const thin = planExperiment(
      loadExperiment('memory-variants').experiment,
      '.',
      'm',
      50277,
      't',
    ).find((run) => run.variant === 'layer_kinds-attention-only')!;
    expect(thin.config.layer_kinds).toEqual([
      'standard',
      'attention-only',
      'standard',
      'attention-only',
    ]);
  });
});

describe('seed-xl', () => {
  it('runs reset and absolute positions in float32 and with bf16 rotary, no memory, same-layer', () => {
    const { experiment } = loadExperiment('seed-xl');
    const plan = planExperiment(experiment, '.', 'seed-xl', 50277, 'tokenizer.json');
    const seed0 = plan.filter((run) => run.seed === 0);
    expect(
      seed0.map((run) => [
        run.variant,
        run.config.memory,
        run.config.memory_source,
        run.config.position_policy,
        run.config.rotary_precision,
      ]),
    ).toEqual([
      ['reset', 'xl', 'previous-layer', 'reset', 'float32'],
      ['absolute', 'xl', 'previous-layer', 'absolute', 'float32'],
      ['reset-bf16', 'xl', 'previous-layer', 'reset', 'bfloat16'],
      ['absolute-bf16', 'xl', 'previous-layer', 'absolute', 'bfloat16'],
      ['no-memory', 'none', 'previous-layer', 'reset', 'float32'],
      ['same-layer', 'xl', 'same-layer', 'reset', 'float32'],
    ]);
    expect(experiment.seeds).toEqual([0, 1]);
    expect(experiment.budget).toEqual({ steps: 70 });
  });
});

describe('memory-reach', () => {
  it('runs the memory variants but thin layers, XL first', () => {
    expect(memoryReachVariants('tiny').map((variant) => variant.name)).toEqual(
      memoryVariants('tiny')
        .map((variant) => (variant.name === 'defaults' ? 'xl' : variant.name))
        .filter((name) => !name.startsWith('layer_kinds-')),
    );
    const { experiment } = loadExperiment('memory-reach');
    expect(experiment.base.corpus).toBe('recall:chunks=6');
    expect(experiment.variants.slice(0, 3)).toEqual([
      { name: 'xl', set: [] },
      { name: 'memory-none', set: ['memory=none'] },
      { name: 'memory_source-same-layer', set: ['memory_source=same-layer'] },
    ]);
  });

  it('on a tiny budget: the recall corpus, answer accuracy per distance in the database and the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-reach-'));
    const runs = join(dir, 'runs');
    const { experiment } = loadExperiment('memory-reach');
    const file = join(dir, 'reach.json');
    writeFileSync(
      file,
      JSON.stringify({
        ...experiment,
        base: {
          ...experiment.base,
          corpus: 'recall:train=12,valid=3',
          set: [
            ...experiment.base.set,
            'dim_model=16',
            'dim_ff=32',
            'n_layers=2',
            'n_heads=2',
            'batchSize=2',
          ],
        },
        variants: experiment.variants.slice(0, 2),
        budget: { steps: 2 },
        eval: { every: 0, documents: 3, split: 'valid' },
      }),
    );
    const result = await runCli(runArgs(file, runs));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/data: recall:train=12,valid=3: 2400 tokens in 15 documents/);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/ ± seeds \(1\) +acc @0 +acc @1 +acc @2 +acc @3$/);
    expect(lines[1]).toMatch(/^xl +1\/1 .* \d+\.\d% +\d+\.\d% +\d+\.\d% +\d+\.\d%$/);
    expect(lines[2]).toMatch(/^memory-none +1\/1 /);
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    try {
      const rows = store.db
        .prepare(
          `SELECT r.name, a.step, a.distance, a.answers, a.correct FROM answer_evals a
           JOIN runs r ON r.id = a.run_id ORDER BY r.name, a.distance`,
        )
        .all() as {
        name: string;
        step: number;
        distance: number;
        answers: number;
        correct: number;
      }[];
      // 3 valid documents of 8 chunks: 8, 7, 6 and 5 answers each at distance 0..3
      expect(rows.filter((row) => row.name === 'memory-reach.xl.s0')).toEqual(
        [0, 1, 2, 3].map((distance) => ({
          name: 'memory-reach.xl.s0',
          step: 2,
          distance,
          answers: 3 * (8 - distance),
          correct: expect.any(Number),
        })),
      );
      const report = JSON.parse(
        (
          await runCli([
            'experiment',
            'report',
            'memory-reach',
            '--runs-dir',
            runs,
            '--format',
            'json',
          ])
        ).stdout,
      );
      expect(report.distances).toEqual([0, 1, 2, 3]);
      const xl = rows.filter((row) => row.name === 'memory-reach.xl.s0');
      expect(report.rows[0].answerAccuracy).toEqual(xl.map((row) => row.correct / row.answers));
      // the run's checkpoint works with eval (answer accuracy printed) and generate (its symbols)
      const evaluation = await runCli([
        'eval',
        '--checkpoint',
        'memory-reach.xl.s0',
        '--runs-dir',
        runs,
        '--corpus',
        'recall:train=12,valid=3',
        '--backend',
        'cpu',
      ]);
      expect(evaluation.status, evaluation.stderr).toBe(0);
      expect(evaluation.stdout).toMatch(
        /^recall:train=12,valid=3 valid: loss [\d.]+ .* \(3 articles, 78 tokens, .*; answer accuracy at distance 0: [\d.]+%, 1: [\d.]+%, 2: [\d.]+%, 3: [\d.]+%$/m,
      );
      const generated = await runCli([
        'generate',
        '--checkpoint',
        'memory-reach.xl.s0',
        '--runs-dir',
        runs,
        '--prompt',
        'xχPφ?x',
        '--max-new-tokens',
        '4',
        '--temperature',
        '0',
        '--backend',
        'cpu',
      ]);
      expect(generated.status, generated.stderr).toBe(0);
      expect(generated.stdout).toMatch(/^xχPφ\?x[.?a-zA-Z0-9α-χ]{4}\n?$/);
    } finally {
      store.close();
    }
  });
});

describe('same initial weights where shapes allow', () => {
  it("a variant takes the first variant's tensors of the same name, shape and initialiser", () => {
    const dims = { dim_model: 16, dim_ff: 32, n_layers: 2, n_heads: 2, n_ctx: 8, n_vocab: 300 };
    const reference = makeConfig(dims);
    // a thin layer 0: its attention is initialised x 1e-4 and it has no MLP, so the tensors
    // after it sit at other positions of the seed stream
    const thin = makeConfig({ ...dims, layer_kinds: ['attention-only', 'standard'] });
    const values = (model: BakaCausalLM, name: string) =>
      Array.from(model.parameters.get(name)!.dataSync());
    const first = BakaCausalLM.create(reference, { seed: 3 });
    const own = BakaCausalLM.create(thin, { seed: 3 });
    const shared = BakaCausalLM.create(thin, { seed: 3 });
    // all 22 trainable tensors but the thin layer's 4 attention weights and 3 absent MLP ones
    expect(shareInitialWeights(shared, reference, 3)).toBe(15);
    for (const name of [
      'vocab_in.weight',
      'vocab_out.weight',
      'model.layers.1.attn.q.weight',
      'model.layers.1.mlp.fc_down.weight',
    ]) {
      expect(values(own, name)).not.toEqual(values(first, name));
      expect(values(shared, name)).toEqual(values(first, name));
    }
    // the thin layer keeps its own initialisation
    expect(values(shared, 'model.layers.0.attn.q.weight')).toEqual(
      values(own, 'model.layers.0.attn.q.weight'),
    );
    expect(values(shared, 'model.layers.0.attn.q.weight')).not.toEqual(
      values(first, 'model.layers.0.attn.q.weight'),
    );
    for (const model of [first, own, shared]) model.dispose();
  });
});

describe('baka experiment run and report', { timeout: 300_000 }, () => {
  it('trains every variant x seed as a run, ties them to the experiment and reports', async () => {
    const { file, runs, write } = setup({ seeds: [0, 1] });
    const first = await runCli(runArgs(file, runs));
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/experiment tiny: run 1 of 4 \(reset, seed 0\): new/);
    expect(first.stderr).toMatch(
      /experiment tiny: run 4 of 4 \(absolute, seed 1\): new; 3 trained, 0 skipped so far; experiment ETA \d/,
    );
    // The report at the end: a row per variant, both seeds finished.
    const lines = first.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^variant +runs +params +non-emb params +tokens\/s +train loss \(last 20\) +valid loss +valid loss \(token-weighted\) +ppl +vs first +± seeds \(2\)$/,
    );
    expect(lines[1]).toMatch(/^reset +2\/2 /);
    expect(lines[2]).toMatch(/^absolute +2\/2 /);
    const rows = metricRows(runs);
    expect([...rows.keys()].sort()).toEqual([
      'tiny.absolute.s0',
      'tiny.absolute.s1',
      'tiny.reset.s0',
      'tiny.reset.s1',
    ]);
    for (const run of rows.values()) expect(run.map((row) => row.step)).toEqual([1, 2, 3, 4]);
    // Same data order and initial weights per seed: in float32 reset and absolute positions
    // compute the same function, so their losses agree; the seeds differ.
    const losses = (name: string) => rows.get(name)!.map((row) => row.loss);
    const absoluteLosses = losses('tiny.absolute.s0');
    for (const [i, loss] of losses('tiny.reset.s0').entries())
      expect(Math.abs(loss - absoluteLosses[i]!)).toBeLessThan(1e-5);
    expect(losses('tiny.reset.s1')[0]).not.toBeCloseTo(losses('tiny.reset.s0')[0]!, 3);

    // The report in every format, from the database.
    const json = await runCli([
      'experiment',
      'report',
      'tiny',
      '--runs-dir',
      runs,
      '--format',
      'json',
    ]);
    expect(json.status, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ name: 'tiny', split: 'valid', lastSteps: 20, seeds: [0, 1] });
    const [reset, absolute] = report.rows;
    expect(reset).toMatchObject({ variant: 'reset', runs: 2, finished: 2, diff: 0 });
    expect(reset.params).toBe(reset.nonEmbeddingParams + 2 * 300 * 16);
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const evals = store.db
      .prepare(
        "SELECT r.name, e.loss, e.token_loss AS tokenLoss FROM evals e JOIN runs r ON r.id = e.run_id WHERE r.name LIKE 'tiny.reset.%' ORDER BY r.name",
      )
      .all() as { loss: number; tokenLoss: number }[];
    store.close();
    expect(evals).toHaveLength(2);
    const meanLoss = (evals[0]!.loss + evals[1]!.loss) / 2;
    expect(reset.validLoss).toBeCloseTo(meanLoss, 10);
    expect(reset.validTokenLoss).toBeCloseTo((evals[0]!.tokenLoss + evals[1]!.tokenLoss) / 2, 10);
    expect(reset.perplexity).toBeCloseTo(Math.exp(meanLoss), 8);
    expect(reset.spread).toBeCloseTo(Math.abs(evals[0]!.loss - evals[1]!.loss) / Math.SQRT2, 10);
    const trainMean = (name: string) => {
      const values = losses(name);
      return values.reduce((a, b) => a + b, 0) / values.length;
    };
    expect(reset.trainLoss).toBeCloseTo(
      (trainMean('tiny.reset.s0') + trainMean('tiny.reset.s1')) / 2,
      10,
    );
    expect(absolute.diff).toBeCloseTo(absolute.validLoss - reset.validLoss, 10);
    expect(reset.tokensPerSecond).toBeGreaterThan(0);

    const markdown = await runCli([
      'experiment',
      'report',
      'tiny',
      '--runs-dir',
      runs,
      '--format',
      'markdown',
    ]);
    expect(markdown.stdout.split('\n')[0]).toMatch(
      /^\| variant \| runs \| params \| .* \| ± seeds \(2\) \|$/,
    );
    expect(markdown.stdout.split('\n')[1]).toMatch(/^\| --- \| ---: \|/);
    expect(markdown.stdout).toMatch(/\n\| absolute \| 2\/2 \|/);
    const csv = await runCli([
      'experiment',
      'report',
      'tiny',
      '--runs-dir',
      runs,
      '--format',
      'csv',
    ]);
    const [header, resetRow] = csv.stdout.trim().split('\n');
    expect(header).toBe(
      'variant,runs,finished,params,nonEmbeddingParams,tokensPerSecond,trainLoss,validLoss,validTokenLoss,perplexity,diff,spread',
    );
    expect(Number(resetRow!.split(',')[7])).toBe(reset.validLoss);
    const unknown = await runCli(['experiment', 'report', 'nope', '--runs-dir', runs]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(
      /^baka: experiment 'nope' not found in .*metrics\.sqlite \(recorded: tiny\)\n$/,
    );
    const format = await runCli([
      'experiment',
      'report',
      'tiny',
      '--runs-dir',
      runs,
      '--format',
      'xml',
    ]);
    expect(format.status).toBe(2);
    expect(format.stderr).toMatch(
      /^baka: --format expects one of table, markdown, csv, json, got 'xml'\n$/,
    );

    // Running it again trains nothing; adding a variant trains only the new one.
    const again = await runCli(runArgs(file, runs));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr.match(/finished earlier, skipped/g)).toHaveLength(4);
    expect(metricRows(runs)).toEqual(rows);
    write({
      seeds: [0, 1],
      variants: [
        { name: 'reset', set: ['position_policy=reset'] },
        { name: 'absolute', set: ['position_policy=absolute'] },
        { name: 'none', set: ['memory=none'] },
      ],
    });
    const added = await runCli(runArgs(file, runs));
    expect(added.status, added.stderr).toBe(0);
    expect(added.stderr.match(/finished earlier, skipped/g)).toHaveLength(4);
    expect(added.stderr).toMatch(/run 3 of 6 \(none, seed 0\): new/);
    expect(added.stderr).toMatch(/run 6 of 6 \(none, seed 1\): new/);
    const after = metricRows(runs);
    for (const [name, run] of rows) expect(after.get(name)).toEqual(run);
    expect(after.get('tiny.none.s0')!.map((row) => row.step)).toEqual([1, 2, 3, 4]);
    expect(added.stdout).toMatch(/\nnone +2\/2 /);

    // A variant whose settings changed is refused, naming it; nothing trains.
    write({
      seeds: [0, 1],
      variants: [
        { name: 'reset', set: ['position_policy=reset', 'learningRate=0.01'] },
        { name: 'absolute', set: ['position_policy=absolute'] },
      ],
    });
    const changed = await runCli(runArgs(file, runs));
    expect(changed.status).toBe(2);
    expect(changed.stderr).toMatch(
      /^baka: .*exp\.json: variant 'reset' changed since run tiny\.reset\.s0 was trained .*\n$/,
    );
    expect(metricRows(runs)).toEqual(after);
    // and the refused file did not replace the recorded one: the report still has 'none'
    const kept = await runCli(['experiment', 'report', 'tiny', '--runs-dir', runs]);
    expect(kept.stdout).toMatch(/\nnone +2\/2 /);
  });

  it('a tokens budget stops each run at the first step that reaches it; a minutes budget at its time', async () => {
    const { file, runs, write } = setup({ budget: { tokens: 150 } });
    const tokens = await runCli([...runArgs(file, runs), '--format', 'csv']);
    expect(tokens.status, tokens.stderr).toBe(0);
    expect(tokens.stdout.split('\n')[0]).toMatch(/^variant,runs,finished,/);
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const rows = store.db
      .prepare(
        "SELECT r.name, r.status, m.step, m.tokens FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.name LIKE 'tiny.%' ORDER BY r.name, m.step",
      )
      .all() as { name: string; status: string; step: number; tokens: number }[];
    store.close();
    for (const name of ['tiny.reset.s0', 'tiny.absolute.s0']) {
      const run = rows.filter((row) => row.name === name);
      expect(run.at(-1)!.status).toBe('finished');
      expect(run.at(-1)!.tokens).toBeGreaterThanOrEqual(150);
      expect(run.at(-2)!.tokens).toBeLessThan(150);
    }
    write({ name: 'timed', budget: { minutes: 0.1 } });
    const minutes = await runCli(runArgs(file, runs));
    expect(minutes.status, minutes.stderr).toBe(0);
    const timed = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const states = timed.db
      .prepare(
        "SELECT r.name, r.status, MAX(m.elapsed) AS elapsed, MAX(m.step) AS steps FROM runs r JOIN metrics m ON m.run_id = r.id WHERE r.name LIKE 'timed.%' GROUP BY r.name ORDER BY r.name",
      )
      .all() as { name: string; status: string; elapsed: number; steps: number }[];
    timed.close();
    expect(states.map((state) => [state.name, state.status])).toEqual([
      ['timed.absolute.s0', 'finished'],
      ['timed.reset.s0', 'finished'],
    ]);
    // 6 s of a run whose data lasts 1000 epochs: the time limit ended it
    for (const state of states) {
      expect(state.steps).toBeLessThan(1000);
      expect(state.elapsed).toBeLessThan(6 + 14); // the limit plus the last step, under load
    }
    expect(minutes.stderr).toMatch(/timed\.reset\.s0: done at step \d+/);
  });

  it('kill -9 before the first checkpoint: the next run starts that run again from step 0', async () => {
    const { file, runs, write } = setup();
    write({
      budget: { steps: 12 },
      variants: [{ name: 'reset', set: ['position_policy=reset', 'saveEvery=0'] }],
    });
    const child = startCli(runArgs(file, runs), 'pipe');
    void collect(child);
    const logged = () => metricRowsIfAny(runs).get('tiny.reset.s0')?.length ?? 0;
    await waitFor(() => logged() >= 2, child, 120_000);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(latestCheckpoint(join(runs, 'tiny.reset.s0', 'checkpoints'))).toBeUndefined();
    const killedAt = Math.max(
      ...metricRows(runs)
        .get('tiny.reset.s0')!
        .map((row) => row.time),
    );
    const again = await runCli(runArgs(file, runs));
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/run 1 of 1 \(reset, seed 0\): new/);
    const rows = metricRows(runs).get('tiny.reset.s0')!;
    expect(rows.map((row) => row.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const row of rows) expect(row.time).toBeGreaterThan(killedAt);
    expect(again.stdout).toMatch(/\nreset +1\/1 /);
  });

  it('SIGTERM mid-experiment, then the same command: finished runs are not retrained, the interrupted one resumes', async () => {
    const { file, runs } = setup({ budget: { steps: 40 } });
    const child = startCli(runArgs(file, runs), 'pipe');
    const output = collect(child);
    const checkpoints = join(runs, 'tiny.absolute.s0', 'checkpoints');
    await waitFor(
      () =>
        runStatus(runs, 'tiny.reset.s0') === 'finished' &&
        (latestCheckpoint(checkpoints) ?? '').endsWith('step-00000003'),
      child,
      200_000,
    );
    child.kill('SIGTERM');
    const stopped = await output;
    expect(stopped.status).toBe(130);
    expect(stopped.stderr).toMatch(
      /experiment tiny: stopped after .* \(1 run trained\); run the same command again to continue/,
    );
    expect(stopped.stdout).toBe(''); // no report for an unfinished experiment
    expect(runStatus(runs, 'tiny.absolute.s0')).toBe('stopped');
    // the report meanwhile: the stopped run counts, but its figures wait until it finishes
    const partial = await runCli(['experiment', 'report', 'tiny', '--runs-dir', runs]);
    expect(partial.stdout).toMatch(/\nreset +1\/1 +[\d.]+k +\d+ +\d+ +\d\.\d{4} +\d\.\d{4} /);
    expect(partial.stdout).toMatch(/\nabsolute +0\/1 +[\d.]+k +\d+ +- +- +- +- +- +- +-\n/);
    const before = metricRows(runs);
    const stoppedAt = (await loadTrainingCheckpoint(latestCheckpoint(checkpoints)!)).state.step;
    expect(stoppedAt).toBeGreaterThanOrEqual(3);
    expect(stoppedAt).toBeLessThan(40);

    const resumed = await runCli(runArgs(file, runs));
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/run 1 of 2 \(reset, seed 0\): finished earlier, skipped/);
    expect(resumed.stderr).toMatch(
      new RegExp(`run 2 of 2 \\(absolute, seed 0\\): resuming at step ${stoppedAt}`),
    );
    const after = metricRows(runs);
    expect(after.get('tiny.reset.s0')).toEqual(before.get('tiny.reset.s0'));
    const absolute = after.get('tiny.absolute.s0')!;
    expect(absolute.map((row) => row.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // the steps before the stop were not trained again
    expect(absolute.slice(0, stoppedAt)).toEqual(
      before.get('tiny.absolute.s0')!.slice(0, stoppedAt),
    );
    // and resuming continued the same run: its losses equal the uninterrupted reset run's
    const reset = after.get('tiny.reset.s0')!;
    for (const [i, row] of absolute.entries())
      expect(Math.abs(row.loss - reset[i]!.loss)).toBeLessThan(1e-5);
    expect(resumed.stdout).toMatch(/^variant .*\nreset +1\/1 .*\nabsolute +1\/1 /);
    expect(
      JSON.parse(
        readFileSync(
          join(runs, 'tiny.absolute.s0', 'checkpoints', 'step-00000040', 'training.json'),
          'utf8',
        ),
      ),
    ).toMatchObject({ maxSteps: 40, seed: 0 });
  });
});
