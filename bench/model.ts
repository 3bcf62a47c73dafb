// The model benchmark: @baka/model + @baka/trainer on native TensorFlow against the PyTorch
// reference (tools/reference/) on the same machine, same config, same weights, same batch, fp32,
// same thread count. Every measurement runs in its own child process per side (so peak resident
// memory is that measurement's), sides alternate round by round, and the table shows medians and
// tfjs/torch ratios. Writes bench/results/model.json (or model-quick.json) and a markdown copy.
//
//   node --conditions=@baka/source --import tsx bench/model.ts [--quick] [options]
//   (pnpm bench runs it, with the other bench scripts)
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mulberry32 } from '@baka/common';
import { type BakaConfig, countParameters, makeConfig, PRESETS, WEIGHTS_FILE } from '@baka/model';
import { parseResult, runChild } from './child';
import {
  formatBytes,
  formatNumber,
  formatRatio,
  median,
  renderMarkdown,
  renderTable,
} from './format';
import { forwardFlops, trainingFlops } from './model-flops';
import type {
  EvalResult,
  FirstTokenResult,
  GenerateResult,
  LeakResult,
  MatmulResult,
  SamplesResult,
  Side,
  TrainResult,
  WorkerResult,
  WorkerTask,
} from './model-tasks';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SIDES: readonly Side[] = ['tfjs', 'torch'];
const VOCAB = 50277; // the GPT-NeoX-20B tokenizer's vocabulary
const SECTIONS = [
  'train',
  'eval',
  'generate',
  'samples',
  'scaling',
  'leak',
  'variants',
  'xl',
] as const;
/** Sections a --quick run leaves out unless --only names them (baka-xl's checkpoint is 0.8 GB). */
const FULL_ONLY: readonly Section[] = ['xl'];

/**
 * The memory variants measured beside the base model (`variants` section): the first preset with
 * each variant's config fields, training and evaluation against our PyTorch reference running
 * the same variant. Target: >= 1.0x PyTorch's tokens/s.
 */
const VARIANTS: Record<string, Partial<BakaConfig>> = {
  thin: { layer_kinds: ['standard', 'attention-only', 'standard', 'attention-only'] },
  pause: { n_pauses: 8, norm: 'rmsnorm' },
  rmt: { n_pauses: 8, n_rmt_tokens: 16, memory_source: 'same-layer' },
  mamba: { mamba_each_nth_layer: 2 },
  'mamba-carry': { mamba_each_nth_layer: 2, mamba_carry_state: true },
  'qk-norm': { qk_norm: 'negator', split_norm: true },
  recurrent: { recurrent_layers: [2] },
  mega: { layer_kinds: ['standard', 'mega', 'standard', 'mega'], memory_source: 'same-layer' },
  memtok: { n_memory_tokens: 4, memory_tokens_every: 64, n_mem_kv: 16 },
};
type Section = (typeof SECTIONS)[number];
type Preset = 'tiny' | 'small';

const USAGE = `usage: bench/model.ts [--quick] [--presets tiny,small] [--batch N] [--window N] [--n-ctx N]
       [--rounds N] [--threads N] [--only train,eval,generate,samples,scaling,leak,variants,xl] [--no-torch] [--out FILE]
       [--render RESULTS.json]   (recompute the tables from the raw results of an earlier run)`;

interface Plan {
  quick: boolean;
  presets: Preset[];
  batch: number;
  window: number;
  nCtx: number;
  rounds: number;
  threads: number;
  sections: Set<Section>;
  torch: boolean;
  out: string;
  /** Re-render the report from an earlier results JSON instead of measuring. */
  render: string | null;
  trainSteps: { warmup: number; steps: number };
  evalLength: number;
  evalReps: { warmup: number; reps: number };
  generateTokens: number;
  /** Time to the first token: prompt length and prompts per child process. */
  firstToken: { prompt: number; reps: number };
  /**
   * The variants' cases: smaller than the presets' (nine variants, two rounds, two sides: the
   * variants section is a third of the full run), still four chunks with XL memory.
   */
  variant: {
    batch: number;
    window: number;
    trainSteps: { warmup: number; steps: number };
    evalLength: number;
    evalReps: { warmup: number; reps: number };
  };
  /** The baka-xl rows: one training case and one generation case, sized for minutes per side. */
  xl: { batch: number; window: number; warmup: number; steps: number; tokens: number };
  /** Batched sampling: samples side by side (tfjs only). */
  sampleCounts: number[];
  scalingWindows: number[];
  scalingLengths: number[];
  leakSteps: number;
  matmulSize: number;
}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) {
    throw new Error(
      `bench/model.ts: --${flag} must be a positive integer, got '${value}'\n${USAGE}`,
    );
  }
  return parsed;
}

function makePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      presets: { type: 'string' },
      batch: { type: 'string' },
      window: { type: 'string' },
      'n-ctx': { type: 'string' },
      rounds: { type: 'string' },
      threads: { type: 'string' },
      only: { type: 'string' },
      'no-torch': { type: 'boolean', default: false },
      out: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const presets = (values.presets ?? (quick ? 'tiny' : 'tiny,small')).split(',') as Preset[];
  for (const preset of presets) {
    if (preset !== 'tiny' && preset !== 'small') {
      throw new Error(`bench/model.ts: --presets takes tiny and/or small, got '${preset}'`);
    }
  }
  const defaults = SECTIONS.filter((section) => !quick || !FULL_ONLY.includes(section));
  const sections = new Set((values.only ?? defaults.join(',')).split(',') as Section[]);
  for (const section of sections) {
    if (!SECTIONS.includes(section)) {
      throw new Error(`bench/model.ts: --only takes ${SECTIONS.join(', ')}; got '${section}'`);
    }
  }
  const nCtx = positiveInt(values['n-ctx'], 'n-ctx', 512);
  const window = positiveInt(values.window, 'window', quick ? 2 * nCtx : 4 * nCtx);
  return {
    quick,
    presets,
    batch: positiveInt(values.batch, 'batch', quick ? 1 : 2),
    window,
    nCtx,
    rounds: positiveInt(values.rounds, 'rounds', quick ? 1 : 2),
    threads: positiveInt(values.threads, 'threads', availableParallelism()),
    sections,
    torch: !values['no-torch'],
    out: resolve(
      process.env.INIT_CWD ?? process.cwd(),
      values.out ?? join(ROOT, 'bench', 'results', quick ? 'model-quick.json' : 'model.json'),
    ),
    render: values.render ? resolve(process.env.INIT_CWD ?? process.cwd(), values.render) : null,
    trainSteps: quick ? { warmup: 1, steps: 1 } : { warmup: 1, steps: 3 },
    evalLength: (quick ? 2 : 8) * nCtx,
    evalReps: quick ? { warmup: 0, reps: 1 } : { warmup: 1, reps: 3 },
    generateTokens: quick ? 64 : nCtx + 64,
    firstToken: { prompt: 512, reps: quick ? 2 : 3 },
    variant: quick
      ? {
          batch: 1,
          window: 2 * nCtx,
          trainSteps: { warmup: 1, steps: 1 },
          evalLength: 2 * nCtx,
          evalReps: { warmup: 0, reps: 1 },
        }
      : {
          batch: 1,
          window: 4 * nCtx,
          trainSteps: { warmup: 1, steps: 2 },
          evalLength: 4 * nCtx,
          evalReps: { warmup: 1, reps: 2 },
        },
    xl: quick
      ? { batch: 1, window: 512, warmup: 1, steps: 1, tokens: 32 }
      : { batch: 1, window: 1024, warmup: 1, steps: 2, tokens: 64 },
    sampleCounts: [1, 4, 16],
    scalingWindows: (quick ? [1, 2] : [1, 2, 4, 8]).map((chunks) => chunks * nCtx),
    scalingLengths: (quick ? [1, 2] : [1, 2, 4, 8, 16]).map((chunks) => chunks * nCtx),
    leakSteps: quick ? 100 : 1000,
    matmulSize: quick ? 512 : 2048,
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs shared by both sides: seeded random token ids and a PyTorch-initialised checkpoint.

const WORK_DIR = join(tmpdir(), 'baka-bench');

/** Uniform random ids in [0, VOCAB), int32 little-endian, cached in the work directory. */
function idsFile(count: number, seed = 1234): string {
  const path = join(WORK_DIR, `ids-${seed}-${count}.bin`);
  if (!existsSync(path)) {
    const random = mulberry32(seed);
    const ids = new Int32Array(count);
    for (let index = 0; index < count; index++) ids[index] = Math.floor(random() * VOCAB);
    writeFileSync(path, new Uint8Array(ids.buffer));
  }
  return path;
}

/** A variant's fields that differ from the 003 model, for row labels. */
function describeVariant(config: BakaConfig): string {
  const parts: string[] = [];
  if (config.layer_kinds.some((kind) => kind !== 'standard'))
    parts.push(`layers ${config.layer_kinds.join('/')}`);
  if (config.layer_kinds.includes('mega')) {
    parts.push(`ema_dim ${config.ema_dim}, z ${config.mega_z_dim}, h ${config.mega_h_dim}`);
  }
  if (config.n_pauses > 0) parts.push(`${config.n_pauses} pauses`);
  if (config.n_rmt_tokens > 0)
    parts.push(`${config.n_rmt_tokens} RMT tokens, ${config.memory_source}`);
  if (config.n_memory_tokens > 0) {
    const every = config.memory_tokens_every || config.n_ctx;
    parts.push(`${config.n_memory_tokens} memory tokens every ${every}`);
  }
  if (config.n_mem_kv > 0) parts.push(`${config.n_mem_kv} persistent k/v`);
  if (config.mamba_each_nth_layer > 0) {
    const carried = config.mamba_carry_state ? ', state carried across chunks' : '';
    parts.push(`Mamba in layers i % ${config.mamba_each_nth_layer} == 0${carried}`);
  }
  if (config.norm !== 'layernorm') parts.push(config.norm);
  if (config.qk_norm !== 'none') parts.push(`qk_norm ${config.qk_norm}`);
  if (config.split_norm) parts.push('split_norm');
  if (config.recurrent_layers.length > 0) {
    parts.push(
      `recurrent layers ${config.recurrent_layers.join('/')} (${config.n_state_vectors} states, ${config.state_gate} gate)`,
    );
  }
  return parts.join(', ');
}

function presetConfig(preset: Preset | 'baka-xl', nCtx: number): BakaConfig {
  return makeConfig({ ...PRESETS[preset], n_vocab: VOCAB, n_ctx: nCtx }, `preset ${preset}`);
}

// ---------------------------------------------------------------------------------------------
// Running workers

interface Runner {
  plan: Plan;
  python: string;
  env: NodeJS.ProcessEnv;
  log: string[];
}

/** One measurement: the same task list for both sides, repeated `rounds` times. */
interface Case {
  key: string;
  label: string;
  tasks: WorkerTask[];
  rounds: number;
  sides: readonly Side[];
}

/** Per side, per round (child process), the results of the case's tasks. */
type CaseResults = Record<Side, WorkerResult[][]>;

function workerCommand(runner: Runner, side: Side, tasks: WorkerTask[]): [string, string[]] {
  const json = JSON.stringify(tasks);
  return side === 'tfjs'
    ? [
        process.execPath,
        ['--conditions=@baka/source', '--import', 'tsx', 'bench/model-worker.ts', json],
      ]
    : [runner.python, ['bench/torch/worker.py', json]];
}

async function runWorker(
  runner: Runner,
  side: Side,
  tasks: WorkerTask[],
  label: string,
): Promise<WorkerResult[]> {
  const [command, args] = workerCommand(runner, side, tasks);
  process.stdout.write(`  ${label} [${side}] ... `);
  const run = await runChild(command, args, { cwd: ROOT, env: runner.env, timeoutSeconds: 3600 });
  try {
    const results = parseResult<WorkerResult[]>(run, `${label} [${side}]`);
    process.stdout.write(`${run.seconds.toFixed(1)} s\n`);
    return results;
  } catch (error) {
    process.stdout.write('FAILED\n');
    runner.log.push(String((error as Error).message));
    process.stderr.write(`${(error as Error).message}\n`);
    return [];
  }
}

/**
 * Full mode: each case in its own child processes, `rounds` rounds, the side going first
 * alternating per round (so drift in machine load hits both). Quick mode: one child per side runs
 * every case's tasks in a row (peak RSS is then the process's peak so far).
 */
async function execute(runner: Runner, cases: Case[]): Promise<Map<string, CaseResults>> {
  const out = new Map<string, CaseResults>(
    cases.map((entry) => [entry.key, { tfjs: [], torch: [] }]),
  );
  const sides = SIDES.filter((side) => side === 'tfjs' || runner.plan.torch);
  if (runner.plan.quick) {
    for (const side of sides) {
      const mine = cases.filter((entry) => entry.sides.includes(side));
      const results = await runWorker(
        runner,
        side,
        mine.flatMap((entry) => entry.tasks),
        'all quick measurements',
      );
      if (results.length === 0) continue;
      let index = 0;
      for (const entry of mine) {
        out.get(entry.key)![side].push(results.slice(index, index + entry.tasks.length));
        index += entry.tasks.length;
      }
    }
    return out;
  }
  for (const entry of cases) {
    for (let round = 0; round < entry.rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        if (!entry.sides.includes(side)) continue;
        const label = `${entry.label} (round ${round + 1}/${entry.rounds})`;
        const results = await runWorker(runner, side, entry.tasks, label);
        if (results.length > 0) out.get(entry.key)![side].push(results);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rows of the report

type Goal = 'higher' | 'lower' | 'info';

/** The report's tables, in order, with the line printed above each. */
const GROUPS = {
  base: '',
  variants:
    'Variants: the first preset with each memory variant, against our PyTorch reference running the same variant from the same checkpoint:',
  xl: 'The full-size preset (baka-xl):',
  samples: 'Batched sampling (`baka generate --num-samples N`, tfjs only):',
  leak: 'Tensor growth (tf.memory().numTensors):',
} as const;
type Group = keyof typeof GROUPS;

interface Row {
  metric: string;
  unit: string;
  tfjs: number | null;
  torch: number | null;
  /** tfjs / torch */
  ratio: number | null;
  goal: Goal;
  /** Target on the ratio (e.g. >= 1.2 for throughput, <= 1 for memory). */
  target: string;
  met: boolean | null;
  note?: string;
  /** Which table of the report the row goes to (absent in results of older runs: base). */
  group?: Group;
}

function row(
  metric: string,
  unit: string,
  tfjs: number | null,
  torch: number | null,
  goal: Goal,
  target: number | null = null,
  note?: string,
  /** What the target applies to: the tfjs/torch ratio (default) or the tfjs value itself. */
  targetOn: 'ratio' | 'tfjs' = 'ratio',
): Row {
  const ratio = tfjs !== null && torch !== null && torch !== 0 ? tfjs / torch : null;
  const judged = targetOn === 'ratio' ? ratio : tfjs;
  let met: boolean | null = null;
  if (judged !== null && target !== null)
    met = goal === 'higher' ? judged >= target : judged <= target;
  const comparison = `${goal === 'higher' ? '>=' : '<='} ${target}`;
  const targetText = target === null ? '' : targetOn === 'tfjs' ? `tfjs ${comparison}` : comparison;
  return {
    metric,
    unit,
    tfjs,
    torch,
    ratio,
    goal,
    target: targetText,
    met,
    ...(note ? { note } : {}),
  };
}

function orNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

// ---------------------------------------------------------------------------------------------

interface Report {
  meta: Record<string, unknown>;
  rows: Row[];
  generation: {
    preset: Preset;
    buckets: { from: number; to: number; tfjs: number | null; torch: number | null }[];
  }[];
  scaling: {
    training: {
      window: number;
      chunks: number;
      tfjs: number | null;
      torch: number | null;
      tfjsRss: number | null;
      torchRss: number | null;
    }[];
    evaluation: { length: number; chunks: number; tfjs: number | null; torch: number | null }[];
  };
  leak: LeakResult | null;
  /** Batched sampling per sample count (tfjs only). */
  samples: {
    preset: Preset;
    samples: number;
    tokensPerSecond: number | null;
    firstTokenSeconds: number | null;
  }[];
  errors: string[];
  raw: Record<string, unknown>;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
  } catch {
    return null;
  }
}

function findPython(): { python: string; reason: string | null } {
  const python = process.env.BAKA_BENCH_PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import torch, rotary_embedding_torch, safetensors'], {
    encoding: 'utf8',
  });
  if (probe.status === 0) return { python, reason: null };
  const detail = probe.error ? probe.error.message : probe.stderr.trim().split('\n').pop();
  return {
    python,
    reason: `${python} cannot import torch/rotary_embedding_torch/safetensors (${detail})`,
  };
}

async function ensureCheckpoint(runner: Runner, config: BakaConfig, seed: number): Promise<string> {
  const hash = createHash('sha256')
    .update(JSON.stringify({ config, seed }))
    .digest('hex')
    .slice(0, 12);
  const dir = join(WORK_DIR, `checkpoint-${hash}`);
  if (existsSync(join(dir, WEIGHTS_FILE))) return dir;
  const [command, args] = workerCommand(runner, 'torch', [
    { kind: 'checkpoint', config, seed, dir, threads: runner.plan.threads },
  ]);
  const run = await runChild(command, args, { cwd: ROOT, env: runner.env, timeoutSeconds: 600 });
  parseResult(run, `checkpoint for ${JSON.stringify(config)}`);
  return dir;
}

/** What building the measurement cases needs. */
interface CaseSetup {
  runner: Runner;
  plan: Plan;
  ids: string;
  threads: number;
  configs: Map<Preset, BakaConfig>;
  checkpoints: Map<Preset, string>;
  first: Preset;
  firstCheckpoint: string;
  /** Filled with each measured variant's config. */
  variantConfigs: Map<string, BakaConfig>;
  /** The baka-xl preset at the plan's n_ctx (section `xl`). */
  xlConfig: BakaConfig;
}

/** What the report's row builders read. */
interface ReportContext {
  plan: Plan;
  configs: Map<Preset, BakaConfig>;
  get: <T extends WorkerResult>(key: string, index?: number) => Record<Side, T[]>;
  peakOf: (runs: WorkerResult[]) => number | null;
  rssNote: string;
  rows: Row[];
  report: Report;
  first: Preset;
  variantConfigs: Map<string, BakaConfig>;
  xlConfig: BakaConfig;
  mfu: (side: Side, flopsPerSecond: number | null) => number | null;
}

/** Every measurement of the plan, both sides (the variants' checkpoints are made here). */
async function measurementCases(setup: CaseSetup): Promise<Case[]> {
  const {
    runner,
    plan,
    ids,
    threads,
    configs,
    checkpoints,
    first,
    firstCheckpoint,
    variantConfigs,
    xlConfig,
  } = setup;
  const both = SIDES;
  const cases: Case[] = [
    {
      key: 'sweep',
      label: 'matmul peak + eval scaling',
      rounds: 1,
      sides: both,
      tasks: [
        { kind: 'matmul', size: plan.matmulSize, warmup: 2, reps: plan.quick ? 5 : 8, threads },
        ...(plan.sections.has('scaling')
          ? [
              {
                kind: 'eval' as const,
                checkpoint: firstCheckpoint,
                ids,
                lengths: plan.scalingLengths,
                warmup: 1,
                reps: plan.quick ? 1 : 2,
                threads,
              },
            ]
          : []),
      ],
    },
  ];
  for (const preset of plan.presets) {
    const checkpoint = checkpoints.get(preset)!;
    if (plan.sections.has('train')) {
      cases.push({
        key: `train-${preset}`,
        label: `train ${preset}`,
        rounds: plan.rounds,
        sides: both,
        tasks: [
          {
            kind: 'train',
            checkpoint,
            ids,
            batch: plan.batch,
            window: plan.window,
            ...plan.trainSteps,
            threads,
          },
        ],
      });
    }
    if (plan.sections.has('eval')) {
      cases.push({
        key: `eval-${preset}`,
        label: `eval ${preset}`,
        rounds: plan.rounds,
        sides: both,
        tasks: [
          { kind: 'eval', checkpoint, ids, lengths: [plan.evalLength], ...plan.evalReps, threads },
        ],
      });
    }
    if (plan.sections.has('generate')) {
      cases.push({
        key: `generate-${preset}`,
        label: `generate ${preset}`,
        rounds: Math.min(plan.rounds, 1), // one child per side: per-position costs are the point
        sides: both,
        tasks: [{ kind: 'generate', checkpoint, ids, tokens: plan.generateTokens, threads }],
      });
      cases.push({
        key: `first-token-${preset}`,
        label: `first token after a ${plan.firstToken.prompt}-token prompt, ${preset}`,
        rounds: plan.rounds,
        sides: both,
        tasks: [{ kind: 'first-token', checkpoint, ids, ...plan.firstToken, threads }],
      });
    }
  }
  if (plan.sections.has('xl')) {
    const checkpoint = await ensureCheckpoint(runner, xlConfig, 0);
    const { batch, window, warmup, steps, tokens } = plan.xl;
    cases.push(
      {
        key: 'xl-train',
        label: `baka-xl training, B ${batch} x T ${window}`,
        rounds: 1, // ~1 min per side: one round keeps the full run under 30 min
        sides: both,
        tasks: [{ kind: 'train', checkpoint, ids, batch, window, warmup, steps, threads }],
      },
      {
        key: 'xl-generate',
        label: `baka-xl generation, ${tokens} tokens`,
        rounds: 1,
        sides: both,
        tasks: [{ kind: 'generate', checkpoint, ids, tokens, threads }],
      },
    );
  }
  if (plan.sections.has('variants')) {
    const base = configs.get(first)!;
    for (const [name, fields] of Object.entries(VARIANTS)) {
      const layerKinds = fields.layer_kinds?.slice(0, base.n_layers);
      const config = makeConfig(
        { ...base, ...fields, ...(layerKinds ? { layer_kinds: layerKinds } : {}) },
        `variant ${name}`,
      );
      variantConfigs.set(name, config);
      const checkpoint = await ensureCheckpoint(runner, config, 0);
      cases.push({
        key: `variant-${name}`,
        label: `variant ${name} (${first}): train + eval`,
        rounds: plan.rounds,
        sides: both,
        tasks: [
          {
            kind: 'train',
            checkpoint,
            ids,
            batch: plan.variant.batch,
            window: plan.variant.window,
            ...plan.variant.trainSteps,
            threads,
          },
          {
            kind: 'eval',
            checkpoint,
            ids,
            lengths: [plan.variant.evalLength],
            ...plan.variant.evalReps,
            threads,
          },
        ],
      });
    }
  }
  if (plan.sections.has('scaling')) {
    for (const window of plan.scalingWindows) {
      if (plan.sections.has('train') && window === plan.window) continue; // the training case above
      cases.push({
        key: `train-scaling-${window}`,
        label: `train scaling ${first}, window ${window}`,
        rounds: 1,
        sides: both,
        tasks: [
          {
            kind: 'train',
            checkpoint: firstCheckpoint,
            ids,
            batch: plan.batch,
            window,
            warmup: 1,
            steps: plan.quick ? 1 : 2,
            threads,
          },
        ],
      });
    }
  }
  if (plan.sections.has('samples')) {
    for (const samples of plan.sampleCounts) {
      cases.push({
        key: `samples-${first}-${samples}`,
        label: `generate ${first}, ${samples} sample(s) side by side`,
        rounds: Math.min(plan.rounds, 1),
        sides: ['tfjs'],
        tasks: [
          {
            kind: 'generate-samples',
            checkpoint: firstCheckpoint,
            ids,
            prompt: plan.nCtx,
            tokens: plan.quick ? 32 : 64,
            samples,
            threads,
          },
        ],
      });
    }
  }
  if (plan.sections.has('leak')) {
    cases.push({
      key: 'leak',
      label: `tensor growth, ${plan.leakSteps} training steps`,
      rounds: 1,
      sides: ['tfjs'],
      tasks: [
        {
          kind: 'leak',
          config: { dim_model: 32, dim_ff: 64, n_layers: 2, n_heads: 2, n_vocab: 256, n_ctx: 16 },
          batch: 2,
          window: 48,
          steps: plan.leakSteps,
          evalSteps: plan.quick ? 20 : 200,
          generateTokens: 40,
          threads,
        },
      ],
    });
  }

  return cases;
}

/** The matmul peak and runtime baseline rows; returns the MFU of a FLOP rate per side. */
function baseRows(
  context: Omit<ReportContext, 'mfu'>,
): (side: Side, flopsPerSecond: number | null) => number | null {
  const { plan, get, rows } = context;
  const matmul = get<MatmulResult>('sweep', 0);
  const peakGflops = (side: Side) => orNull(median(matmul[side].map((result) => result.gflops)));
  rows.push(
    row(
      `fp32 matmul peak (${plan.matmulSize}x${plan.matmulSize})`,
      'GFLOP/s',
      peakGflops('tfjs'),
      peakGflops('torch'),
      'info',
    ),
  );
  const baseline = (side: Side) =>
    orNull(median(matmul[side].map((result) => result.startRssBytes)));
  rows.push(
    row(
      'process RSS after loading the runtime (Node + tfjs-node + TF / Python + torch)',
      'bytes',
      baseline('tfjs'),
      baseline('torch'),
      'info',
    ),
  );
  const mfu = (side: Side, flopsPerSecond: number | null) => {
    const peakValue = peakGflops(side);
    return flopsPerSecond === null || peakValue === null
      ? null
      : flopsPerSecond / (peakValue * 1e9);
  };

  return mfu;
}

/** Training rows of one preset (speed, MFU, memory, first loss, tensor growth). */
function trainRows(context: ReportContext, preset: Preset): void {
  const { plan, get, peakOf, rssNote, rows, report, first, mfu } = context;
  const config = context.configs.get(preset)!;
  const train = get<TrainResult>(`train-${preset}`);
  const tokens = plan.batch * plan.window;
  const stepSeconds = (side: Side) =>
    orNull(median(train[side].flatMap((result) => result.seconds)));
  const per = (side: Side, amount: number) => {
    const value = stepSeconds(side);
    return value === null ? null : amount / value;
  };
  const flops = trainingFlops(config, plan.batch, plan.window);
  const firstLoss = (side: Side) => train[side][0]?.losses[0] ?? null;
  rows.push(
    row(
      `training tokens/s, ${preset} (B ${plan.batch} x T ${plan.window})`,
      'tokens/s',
      per('tfjs', tokens),
      per('torch', tokens),
      'higher',
      1.2,
    ),
    row(
      `training MFU, ${preset}`,
      'fraction',
      mfu('tfjs', per('tfjs', flops)),
      mfu('torch', per('torch', flops)),
      'info',
    ),
    row(
      `training peak RSS, ${preset}${rssNote}`,
      'bytes',
      peakOf(train.tfjs),
      peakOf(train.torch),
      'lower',
      1,
    ),
    row(
      `training first-step loss, ${preset} (same weights and ids)`,
      'loss',
      firstLoss('tfjs'),
      firstLoss('torch'),
      'info',
    ),
  );
  const tensors = train.tfjs[0]?.tensors;
  if (tensors) {
    rows.push(
      row(
        `tf tensors: growth over ${plan.trainSteps.steps} timed training steps, ${preset}`,
        'tensors',
        tensors.after.numTensors - tensors.before.numTensors,
        null,
        'info',
      ),
    );
  }
  if (plan.sections.has('scaling') && preset === first) {
    report.scaling.training.push({
      window: plan.window,
      chunks: Math.ceil(plan.window / plan.nCtx),
      tfjs: stepSeconds('tfjs'),
      torch: stepSeconds('torch'),
      tfjsRss: peakOf(train.tfjs),
      torchRss: peakOf(train.torch),
    });
  }
}

/** Evaluation rows of one preset. */
function evalRows(context: ReportContext, preset: Preset): void {
  const { plan, get, peakOf, rssNote, rows, mfu } = context;
  const config = context.configs.get(preset)!;
  const evaluation = get<EvalResult>(`eval-${preset}`);
  const docSeconds = (side: Side) =>
    orNull(median(evaluation[side].flatMap((result) => result.lengths[0]?.seconds ?? [])));
  const per = (side: Side, amount: number) => {
    const value = docSeconds(side);
    return value === null ? null : amount / value;
  };
  const flops = forwardFlops(config, plan.evalLength);
  rows.push(
    row(
      `eval tokens/s, ${preset} (documents of ${plan.evalLength}, no grad)`,
      'tokens/s',
      per('tfjs', plan.evalLength),
      per('torch', plan.evalLength),
      'higher',
      1.2,
    ),
    row(
      `eval MFU, ${preset}`,
      'fraction',
      mfu('tfjs', per('tfjs', flops)),
      mfu('torch', per('torch', flops)),
      'info',
    ),
    row(
      `eval peak RSS, ${preset}${rssNote}`,
      'bytes',
      peakOf(evaluation.tfjs),
      peakOf(evaluation.torch),
      'lower',
      1,
    ),
  );
}

/** Generation rows and the per-position cost table of one preset. */
function generationRows(context: ReportContext, preset: Preset): void {
  const { plan, get, peakOf, rssNote, rows, report } = context;
  const generation = get<GenerateResult>(`generate-${preset}`);
  // per position: the median over rounds
  const perPosition = (side: Side) =>
    Array.from({ length: plan.generateTokens }, (_, position) =>
      median(
        generation[side]
          .map((result) => result.seconds[position] ?? Number.NaN)
          .filter(Number.isFinite),
      ),
    );
  const positionsOf = { tfjs: perPosition('tfjs'), torch: perPosition('torch') };
  // position 0 pays one-off costs (first kernels, table building): left out of the rates
  const steady = (side: Side) => orNull(median(positionsOf[side].slice(1)));
  const rate = (side: Side) => {
    const value = steady(side);
    return value === null ? null : 1 / value;
  };
  const bucket = plan.quick ? 16 : Math.max(1, Math.floor(plan.nCtx / 8));
  const buckets: Report['generation'][number]['buckets'] = [];
  for (let from = 0; from < plan.generateTokens; from += bucket) {
    const to = Math.min(plan.generateTokens, from + bucket);
    const slice = (side: Side) => orNull(median(positionsOf[side].slice(Math.max(from, 1), to)));
    buckets.push({ from, to, tfjs: slice('tfjs'), torch: slice('torch') });
  }
  report.generation.push({ preset, buckets });
  // flatness: the last full bucket inside the first chunk over the first bucket
  const lastIndex =
    Math.min(Math.floor(plan.nCtx / bucket), Math.floor(plan.generateTokens / bucket)) - 1;
  const lastBucket = buckets[lastIndex];
  const flatness = (side: Side) => {
    const firstBucket = buckets[0]?.[side] ?? null;
    const last = lastBucket?.[side] ?? null;
    return firstBucket === null || last === null ? null : last / firstBucket;
  };
  const check = (side: Side) => generation[side][0]?.lastArgmax ?? null;
  rows.push(
    row(
      `generation tokens/s, ${preset} (KV cache, batch 1)`,
      'tokens/s',
      rate('tfjs'),
      rate('torch'),
      'higher',
      1.2,
    ),
    // the target: per-token cost flat inside a chunk (not linear in the context)
    row(
      `generation cost growth in a chunk, ${preset} (ms/token at positions ${lastBucket?.from}-${(lastBucket?.to ?? 0) - 1} / 1-${bucket - 1})`,
      'x',
      flatness('tfjs'),
      flatness('torch'),
      'lower',
      1.25,
      undefined,
      'tfjs',
    ),
    row(
      `generation peak RSS, ${preset}${rssNote}`,
      'bytes',
      peakOf(generation.tfjs),
      peakOf(generation.torch),
      'lower',
      1,
    ),
    row(
      `generation argmax after ${plan.generateTokens} tokens, ${preset}`,
      'id',
      check('tfjs'),
      check('torch'),
      'info',
    ),
  );
  firstTokenRows(context, preset);
}

/** Time to the first token after a prompt: first call in a process (target) and later calls. */
function firstTokenRows(context: ReportContext, preset: Preset): void {
  const { plan, get, rows } = context;
  const firstToken = get<FirstTokenResult>(`first-token-${preset}`);
  const { prompt, reps } = plan.firstToken;
  const firstCall = (side: Side) =>
    orNull(median(firstToken[side].flatMap((result) => result.seconds.slice(0, 1))));
  const laterCalls = (side: Side) =>
    orNull(median(firstToken[side].flatMap((result) => result.seconds.slice(1))));
  // >= 1.2x PyTorch's speed = at most 1/1.2 of its time
  const speedTarget = 1 / 1.2;
  rows.push(
    {
      ...row(
        `time to the first token after a ${prompt}-token prompt, ${preset} (fresh decoder, first call in the process)`,
        'seconds',
        firstCall('tfjs'),
        firstCall('torch'),
        'lower',
        speedTarget,
      ),
      target: '<= 0.83 (1.2x faster)',
    },
    row(
      `time to the first token after a ${prompt}-token prompt, ${preset} (later calls, median of ${reps - 1} per process)`,
      'seconds',
      laterCalls('tfjs'),
      laterCalls('torch'),
      'info',
    ),
    row(
      `first token after the ${prompt}-token prompt (argmax), ${preset}`,
      'id',
      firstToken.tfjs[0]?.argmax ?? null,
      firstToken.torch[0]?.argmax ?? null,
      'info',
    ),
  );
}

/** Training, evaluation and generation rows of one preset. */
function presetRows(context: ReportContext, preset: Preset): void {
  const { sections } = context.plan;
  if (sections.has('train')) trainRows(context, preset);
  if (sections.has('eval')) evalRows(context, preset);
  if (sections.has('generate')) generationRows(context, preset);
}

/** Training and evaluation cost against the window and document length. */
function scalingRows(context: ReportContext): void {
  const { plan, get, peakOf, report } = context;
  if (plan.sections.has('scaling')) {
    for (const window of plan.scalingWindows) {
      if (plan.sections.has('train') && window === plan.window) continue;
      const train = get<TrainResult>(`train-scaling-${window}`);
      const stepSeconds = (side: Side) =>
        orNull(median(train[side].flatMap((result) => result.seconds)));
      report.scaling.training.push({
        window,
        chunks: Math.ceil(window / plan.nCtx),
        tfjs: stepSeconds('tfjs'),
        torch: stepSeconds('torch'),
        tfjsRss: peakOf(train.tfjs),
        torchRss: peakOf(train.torch),
      });
    }
    report.scaling.training.sort((a, b) => a.window - b.window);
    const sweep = get<EvalResult>('sweep', 1);
    for (const length of plan.scalingLengths) {
      const lengthSeconds = (side: Side) =>
        orNull(
          median(
            sweep[side].flatMap(
              (result) => result.lengths.find((entry) => entry.length === length)?.seconds ?? [],
            ),
          ),
        );
      report.scaling.evaluation.push({
        length,
        chunks: Math.ceil(length / plan.nCtx),
        tfjs: lengthSeconds('tfjs'),
        torch: lengthSeconds('torch'),
      });
    }
  }
}

/** Training and evaluation rows of each memory variant. */
function variantRows(context: ReportContext): void {
  const { get, rows, first, variantConfigs, mfu } = context;
  const plan = context.plan.variant;
  for (const [name, config] of variantConfigs) {
    const train = get<TrainResult>(`variant-${name}`, 0);
    const evaluation = get<EvalResult>(`variant-${name}`, 1);
    const stepTokens = plan.batch * plan.window;
    const perStep = (side: Side) => {
      const value = orNull(median(train[side].flatMap((result) => result.seconds)));
      return value === null ? null : stepTokens / value;
    };
    const perDocument = (side: Side) => {
      const value = orNull(
        median(evaluation[side].flatMap((result) => result.lengths[0]?.seconds ?? [])),
      );
      return value === null ? null : plan.evalLength / value;
    };
    const firstLoss = (side: Side) => train[side][0]?.losses[0] ?? null;
    const what = `${name} (${first}: ${describeVariant(config)})`;
    const sizes = `B ${plan.batch} x T ${plan.window}`;
    rows.push(
      row(
        `training tokens/s, ${what}, ${sizes}`,
        'tokens/s',
        perStep('tfjs'),
        perStep('torch'),
        'higher',
        1,
      ),
      row(
        `training first-step loss, ${name} (same weights and ids)`,
        'loss',
        firstLoss('tfjs'),
        firstLoss('torch'),
        'info',
      ),
      row(
        `eval tokens/s, ${what}, documents of ${plan.evalLength}`,
        'tokens/s',
        perDocument('tfjs'),
        perDocument('torch'),
        'higher',
        1,
      ),
    );
    // model FLOPs with the variant's extra slots, layer kinds and widths (model-flops.ts)
    const trainFlops = trainingFlops(config, 1, plan.window) / plan.window; // per token
    const evalFlops = forwardFlops(config, plan.evalLength) / plan.evalLength;
    const flopRate = (rate: number | null, perToken: number) =>
      rate === null ? null : rate * perToken;
    rows.push(
      row(
        `training MFU, ${name}`,
        'fraction',
        mfu('tfjs', flopRate(perStep('tfjs'), trainFlops)),
        mfu('torch', flopRate(perStep('torch'), trainFlops)),
        'info',
      ),
      row(
        `eval MFU, ${name}`,
        'fraction',
        mfu('tfjs', flopRate(perDocument('tfjs'), evalFlops)),
        mfu('torch', flopRate(perDocument('torch'), evalFlops)),
        'info',
      ),
    );
  }
}

/** The full-size preset: what one training step and generated tokens cost on this machine. */
function xlRows(context: ReportContext): void {
  const { plan, get, peakOf, rssNote, rows, xlConfig } = context;
  if (!plan.sections.has('xl')) return;
  const { batch, window, steps, tokens } = plan.xl;
  const train = get<TrainResult>('xl-train');
  const generation = get<GenerateResult>('xl-generate');
  const stepRate = (side: Side) => {
    const value = orNull(median(train[side].flatMap((result) => result.seconds)));
    return value === null ? null : (batch * window) / value;
  };
  // position 0 pays one-off costs (first kernels): left out, as for tiny and small
  const tokenRate = (side: Side) => {
    const value = orNull(median(generation[side].flatMap((result) => result.seconds.slice(1))));
    return value === null ? null : 1 / value;
  };
  const size = `${(countParameters({ config: xlConfig }).total / 1e6).toFixed(0)}M parameters`;
  rows.push(
    row(
      `baka-xl (${size}) training tokens/s (B ${batch} x T ${window}, ${steps} timed steps after 1 warm-up, one round)`,
      'tokens/s',
      stepRate('tfjs'),
      stepRate('torch'),
      'info',
    ),
    row(
      `baka-xl training peak RSS${rssNote}`,
      'bytes',
      peakOf(train.tfjs),
      peakOf(train.torch),
      'info',
    ),
    row(
      'baka-xl training first-step loss (same weights and ids)',
      'loss',
      train.tfjs[0]?.losses[0] ?? null,
      train.torch[0]?.losses[0] ?? null,
      'info',
    ),
    row(
      `baka-xl generation tokens/s (KV cache, batch 1, ${tokens} tokens fed one at a time from an empty context, one round)`,
      'tokens/s',
      tokenRate('tfjs'),
      tokenRate('torch'),
      'info',
    ),
    row(
      `baka-xl generation peak RSS${rssNote}`,
      'bytes',
      peakOf(generation.tfjs),
      peakOf(generation.torch),
      'info',
    ),
    row(
      `baka-xl generation argmax after ${tokens} tokens`,
      'id',
      generation.tfjs[0]?.lastArgmax ?? null,
      generation.torch[0]?.lastArgmax ?? null,
      'info',
    ),
  );
}

/** Batched sampling: tokens/s (all samples together) per sample count, after an n_ctx prompt. */
function samplesRows(context: ReportContext): void {
  const { plan, get, rows, report, first } = context;
  if (!plan.sections.has('samples')) return;
  for (const samples of plan.sampleCounts) {
    const result = get<SamplesResult>(`samples-${first}-${samples}`, 0).tfjs[0];
    const step = result ? median(result.seconds) : null;
    const tokensPerSecond = step ? samples / step : null;
    report.samples.push({
      preset: first,
      samples,
      tokensPerSecond,
      firstTokenSeconds: result?.firstTokenSeconds ?? null,
    });
    rows.push(
      row(
        `batched generation tokens/s, ${first}, ${samples} sample(s) side by side (all samples)`,
        'tokens/s',
        tokensPerSecond,
        null,
        'info',
      ),
    );
  }
  // the target: tokens/s grows with the number of samples (here: at least doubles)
  const rateOf = (samples: number) =>
    report.samples.find((entry) => entry.samples === samples)?.tokensPerSecond ?? null;
  const one = rateOf(1);
  for (const samples of plan.sampleCounts.filter((count) => count > 1)) {
    const rate = rateOf(samples);
    rows.push(
      row(
        `batched generation speed-up, ${first}, ${samples} samples over one (tokens/s, all samples)`,
        'x',
        rate !== null && one ? rate / one : null,
        null,
        'higher',
        2, // at least twice one sample's tokens/s: the rows share every weight read
        undefined,
        'tfjs',
      ),
    );
  }
}

/** Tensor growth over many steps, evaluations and generated tokens. */
function leakRows(context: ReportContext): void {
  const { plan, get, rows, report } = context;
  if (plan.sections.has('leak')) {
    const leak = get<LeakResult>('leak').tfjs[0];
    report.leak = leak ?? null;
    if (leak) {
      const firstSample = leak.samples[1] ?? leak.samples[0]!;
      const lastSample = leak.samples[leak.samples.length - 1]!;
      rows.push(
        row(
          `tf tensors: growth over training steps ${firstSample.step}-${lastSample.step} (2-layer model, window 48, 3 chunks)`,
          'tensors',
          lastSample.numTensors - firstSample.numTensors,
          null,
          'info',
        ),
        row(
          `tf tensors: growth over ${plan.quick ? 20 : 200} evaluations`,
          'tensors',
          leak.eval.after.numTensors - leak.eval.before.numTensors,
          null,
          'info',
        ),
        // the model caches one additive mask per (new tokens, context length) pair it meets:
        // at most one per position of two chunks, freed with the model
        row(
          '40 generated tokens: masks cached on the model (bounded by 2 n_ctx; freed by dispose)',
          'tensors',
          leak.generate.after.numTensors - leak.eval.after.numTensors,
          null,
          'info',
        ),
        row(
          'tf tensors left after model.dispose()',
          'tensors',
          leak.afterDispose.numTensors,
          null,
          'info',
        ),
      );
    }
  }
}

export async function benchModel(argv: string[]): Promise<Report> {
  const plan = makePlan(argv);
  mkdirSync(WORK_DIR, { recursive: true });
  const { python, reason } = findPython();
  if (reason !== null && plan.torch) {
    throw new Error(
      `bench/model.ts: the PyTorch side needs ${reason}; pass --no-torch to run tfjs only`,
    );
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TF_NUM_INTRAOP_THREADS: String(plan.threads),
    OMP_NUM_THREADS: String(plan.threads),
    TF_CPP_MIN_LOG_LEVEL: '2',
  };
  const runner: Runner = { plan, python, env, log: [] };
  const loadBefore = loadavg();
  const began = performance.now();
  const ids = idsFile(1 << 16);
  const threads = plan.threads;
  const rows: Row[] = [];
  const report: Report = {
    meta: {},
    rows,
    generation: [],
    scaling: { training: [], evaluation: [] },
    leak: null,
    samples: [],
    errors: runner.log,
    raw: {},
  };

  process.stdout.write(
    `model bench: ${plan.quick ? 'quick' : 'full'}, presets ${plan.presets.join(', ')}, n_ctx ${plan.nCtx}, ` +
      `window ${plan.window}, batch ${plan.batch}, ${threads} threads, ${plan.rounds} round(s)\n`,
  );
  const configs = new Map(plan.presets.map((preset) => [preset, presetConfig(preset, plan.nCtx)]));
  const checkpoints = new Map<Preset, string>();
  for (const [preset, config] of configs)
    checkpoints.set(preset, await ensureCheckpoint(runner, config, 0));
  const first = plan.presets[0]!;
  const firstCheckpoint = checkpoints.get(first)!;

  const variantConfigs = new Map<string, BakaConfig>();
  const xlConfig = presetConfig('baka-xl', plan.nCtx);
  const cases = await measurementCases({
    runner,
    plan,
    ids,
    threads,
    configs,
    checkpoints,
    first,
    firstCheckpoint,
    variantConfigs,
    xlConfig,
  });

  // ---- measure
  const earlier =
    plan.render === null ? null : (JSON.parse(readFileSync(plan.render, 'utf8')) as Report);
  const results =
    earlier === null
      ? await execute(runner, cases)
      : new Map(Object.entries(earlier.raw as Record<string, CaseResults>));
  report.raw = Object.fromEntries(results);
  const get = <T extends WorkerResult>(key: string, index = 0): Record<Side, T[]> => {
    const entry = results.get(key) ?? { tfjs: [], torch: [] };
    const pick = (side: Side) =>
      entry[side].map((round) => round[index] as T).filter((value) => value !== undefined);
    return { tfjs: pick('tfjs'), torch: pick('torch') };
  };
  const peakOf = (runs: WorkerResult[]) => {
    const values = runs.map((result) => result.peakRssBytes).filter((value) => value > 0);
    return values.length === 0 ? null : Math.max(...values);
  };
  const rssNote = plan.quick ? ' (quick: process peak so far)' : '';

  const base = {
    plan,
    configs,
    get,
    peakOf,
    rssNote,
    rows,
    report,
    first,
    variantConfigs,
    xlConfig,
  };
  /** Runs a row builder and files the rows it added under `group`. */
  const grouped = (group: Group, build: () => void) => {
    const start = rows.length;
    build();
    for (const entry of rows.slice(start)) entry.group = group;
  };
  let mfu: ReportContext['mfu'] = () => null;
  grouped('base', () => {
    mfu = baseRows(base);
  });
  const context: ReportContext = { ...base, mfu };
  grouped('base', () => {
    for (const preset of plan.presets) presetRows(context, preset);
    scalingRows(context);
  });
  grouped('variants', () => variantRows(context));
  grouped('xl', () => xlRows(context));
  grouped('samples', () => samplesRows(context));
  grouped('leak', () => leakRows(context));

  const cpu = cpus()[0];
  const version = (side: Side) => get<MatmulResult>('sweep', 0)[side][0]?.version ?? null;
  report.meta = {
    date: new Date().toISOString(),
    commit: gitCommit(),
    mode: plan.quick ? 'quick' : 'full',
    machine: {
      cpu: cpu?.model ?? 'unknown',
      cores: cpus().length,
      memoryBytes: totalmem(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
    },
    node: process.version,
    tfjs: version('tfjs'),
    torch: version('torch'),
    threads,
    plan: { ...plan, sections: [...plan.sections] },
    configs: Object.fromEntries(configs),
    seconds: (performance.now() - began) / 1000,
  };
  if (earlier !== null) {
    // the measurement's own time, machine state and commit; only the analysis is new
    const { date, commit, machine, seconds } = earlier.meta as Record<string, unknown>;
    Object.assign(report.meta, {
      date,
      commit,
      machine,
      seconds,
      renderedFrom: relative(ROOT, plan.render ?? ROOT),
    });
    report.errors.push(...earlier.errors);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Printing

function formatValue(value: number | null, unit: string): string {
  if (value === null) return '—';
  switch (unit) {
    case 'bytes':
      return formatBytes(value);
    case 'fraction':
      return `${(value * 100).toFixed(1)}%`;
    case 'loss':
      return value.toFixed(4);
    case 'tensors':
    case 'id':
      return String(value);
    case 'x':
      return `${value.toFixed(2)}x`;
    default:
      return formatNumber(value);
  }
}

function mainTable(report: Report, group: Group): { header: string[]; rows: string[][] } {
  const header = ['measure', 'tfjs (ours)', 'PyTorch', 'tfjs/torch', 'target'];
  const mine = report.rows.filter((entry) => (entry.group ?? 'base') === group);
  const rows = mine.map((entry) => [
    entry.metric +
      (['tokens/s', 'GFLOP/s', 'seconds'].includes(entry.unit) ? ` [${entry.unit}]` : ''),
    formatValue(entry.tfjs, entry.unit),
    formatValue(entry.torch, entry.unit),
    entry.unit === 'loss' || entry.unit === 'id' || entry.torch === null
      ? ''
      : formatRatio(entry.ratio),
    entry.target === ''
      ? ''
      : `${entry.target} ${entry.met === null ? '' : entry.met ? 'met' : 'NOT met'}`.trim(),
  ]);
  return { header, rows };
}

function generationTable(report: Report): { header: string[]; rows: string[][] } {
  const header = [
    'positions',
    ...report.generation.flatMap((entry) => [
      `${entry.preset} tfjs ms/token`,
      `${entry.preset} torch ms/token`,
    ]),
  ];
  const base = report.generation[0]?.buckets ?? [];
  const rows = base.map((bucket, index) => [
    `${bucket.from}-${bucket.to - 1}`,
    ...report.generation.flatMap((entry) => {
      const cell = entry.buckets[index];
      return [
        formatNumber(cell?.tfjs ? cell.tfjs * 1000 : null),
        formatNumber(cell?.torch ? cell.torch * 1000 : null),
      ];
    }),
  ]);
  return { header, rows };
}

function scalingTables(report: Report) {
  const training = {
    header: [
      'window (chunks)',
      'tfjs s/step',
      'torch s/step',
      'tfjs/torch time',
      'tfjs peak RSS',
      'torch peak RSS',
    ],
    rows: report.scaling.training.map((entry) => [
      `${entry.window} (${entry.chunks})`,
      formatNumber(entry.tfjs),
      formatNumber(entry.torch),
      formatRatio(entry.tfjs !== null && entry.torch !== null ? entry.tfjs / entry.torch : null),
      formatBytes(entry.tfjsRss),
      formatBytes(entry.torchRss),
    ]),
  };
  const evaluation = {
    header: [
      'document (chunks)',
      'tfjs s',
      'torch s',
      'tfjs/torch time',
      'tfjs tokens/s',
      'torch tokens/s',
    ],
    rows: report.scaling.evaluation.map((entry) => [
      `${entry.length} (${entry.chunks})`,
      formatNumber(entry.tfjs),
      formatNumber(entry.torch),
      formatRatio(entry.tfjs !== null && entry.torch !== null ? entry.tfjs / entry.torch : null),
      formatNumber(entry.tfjs === null ? null : entry.length / entry.tfjs),
      formatNumber(entry.torch === null ? null : entry.length / entry.torch),
    ]),
  };
  return { training, evaluation };
}

function describe(report: Report): string {
  const meta = report.meta as {
    machine: {
      cpu: string;
      cores: number;
      memoryBytes: number;
      loadAverageBefore: number[];
      loadAverageAfter?: number[];
    };
    node: string;
    seconds?: number;
    tfjs: string | null;
    torch: string | null;
    threads: number;
    mode: string;
    date: string;
    commit: string | null;
    plan: Plan;
  };
  const load = (values: number[]) => values.map((value) => value.toFixed(1)).join(' ');
  const after = meta.machine.loadAverageAfter
    ? ` before, ${load(meta.machine.loadAverageAfter)} after`
    : '';
  const took = meta.seconds === undefined ? '' : `, ${(meta.seconds / 60).toFixed(0)} min`;
  return (
    `${meta.date} (${meta.mode}${took}, commit ${meta.commit ?? '?'}): ${meta.machine.cores} x ${meta.machine.cpu}, ` +
    `${formatBytes(meta.machine.memoryBytes)} RAM, load average (1/5/15 min) ${load(meta.machine.loadAverageBefore)}${after}; ` +
    `Node ${meta.node}, ${meta.tfjs ?? 'tfjs ?'}, ${meta.torch ?? 'torch ?'}; ${meta.threads} threads each side ` +
    `(TF_NUM_INTRAOP_THREADS = torch.set_num_threads); fp32; n_ctx ${meta.plan.nCtx}, vocab ${VOCAB}, ` +
    `training batch ${meta.plan.batch} x window ${meta.plan.window}; medians over ${meta.plan.rounds} alternating round(s).`
  );
}

function samplesTable(report: Report) {
  const one = (report.samples ?? []).find((entry) => entry.samples === 1)?.tokensPerSecond ?? null;
  return {
    header: [
      'samples',
      'tfjs tokens/s (all samples)',
      'x one sample',
      'first token after the prompt [s]',
    ],
    rows: (report.samples ?? []).map((entry) => [
      String(entry.samples),
      formatNumber(entry.tokensPerSecond),
      formatRatio(entry.tokensPerSecond !== null && one ? entry.tokensPerSecond / one : null),
      formatNumber(entry.firstTokenSeconds),
    ]),
  };
}

export function printReport(report: Report, markdown = false): string {
  const render = markdown ? renderMarkdown : renderTable;
  const generation = generationTable(report);
  const samples = samplesTable(report);
  const scaling = scalingTables(report);
  const parts = [describe(report)];
  for (const [group, title] of Object.entries(GROUPS) as [Group, string][]) {
    const table = mainTable(report, group);
    if (table.rows.length === 0) continue;
    parts.push('', ...(title === '' ? [] : [title, '']), render(table.header, table.rows));
    if (group === 'samples' && samples.rows.length > 0)
      parts.push(
        '',
        `Per sample count (${report.samples[0]?.preset}, after a prompt of n_ctx tokens):`,
        '',
        render(samples.header, samples.rows),
      );
  }
  if (generation.rows.length > 0)
    parts.push(
      '',
      'Generation cost per token as the context grows:',
      '',
      render(generation.header, generation.rows),
    );
  if (scaling.training.rows.length > 0)
    parts.push(
      '',
      'Training step time and memory against window length:',
      '',
      render(scaling.training.header, scaling.training.rows),
    );
  if (scaling.evaluation.rows.length > 0)
    parts.push(
      '',
      'Evaluation time against document length:',
      '',
      render(scaling.evaluation.header, scaling.evaluation.rows),
    );
  if (report.errors.length > 0)
    parts.push(
      '',
      `${report.errors.length} measurement(s) failed:`,
      ...report.errors.map((error) => `  ${error.split('\n')[0]}`),
    );
  return parts.join('\n');
}

async function main(): Promise<void> {
  const report = await benchModel(process.argv.slice(2));
  const text = printReport(report);
  process.stdout.write(`\n${text}\n`);
  const out = (report.meta.plan as Plan).out;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 1)}\n`);
  writeFileSync(out.replace(/\.json$/, '.md'), `${printReport(report, true)}\n`);
  process.stdout.write(
    `\nwrote ${out} (+ .md) in ${(report.meta.seconds as number).toFixed(0)} s\n`,
  );
  // a one-line summary for bench/run.ts
  const headline = report.rows.filter((entry) => entry.goal !== 'info' && entry.target !== '');
  process.stdout.write(
    `SUMMARY ${JSON.stringify({
      name: 'model',
      results: out,
      rows: headline.map((entry) => ({
        metric: entry.metric,
        ratio: entry.ratio,
        // a target on the tfjs value itself (not on the ratio) shows that value
        ...(entry.target.startsWith('tfjs') ? { value: formatValue(entry.tfjs, entry.unit) } : {}),
        target: entry.target,
        met: entry.met,
      })),
      errors: report.errors.length,
    })}\n`,
  );
  if (report.errors.length > 0) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
