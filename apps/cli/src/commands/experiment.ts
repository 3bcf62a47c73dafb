// `baka experiment run FILE|NAME` and `baka experiment report NAME`: compare variants on the same
// data and budget. Every variant x seed is an ordinary training run (`<experiment>.<variant>.s<seed>`
// under --runs-dir: checkpoints, metrics, resumable), tied to the experiment in metrics.sqlite.
// Runs of one seed see the same data in the same order and start from the same weights wherever
// a tensor has the same name, shape and initialiser as in the first variant. Re-running skips
// finished runs, resumes an interrupted one and trains only what the file added.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TokenDocuments } from '@baka/data';
import {
  BakaCausalLM,
  type BakaConfig,
  makeConfig,
  parameterSpecs,
  presetConfig,
} from '@baka/model';
import {
  type ExperimentReport,
  formatReport,
  REPORT_FORMATS,
  type ReportFormat,
} from '@baka/metrics-viewer/experiment-table';
import { experimentNames, experimentReport } from '@baka/metrics-viewer/experiment-report';
import { Tokenizer } from '@baka/tokenizer';
import {
  type ExperimentRunLink,
  latestCheckpoint,
  loadTrainingCheckpoint,
  MetricsStore,
  makeTrainingOptions,
  NonFiniteTrainingError,
  parseTrainerState,
  RunLock,
  type TrainerState,
  type TrainingOptionKey,
  type TrainingOptions,
  TrainingSession,
} from '@baka/trainer';
import { type Command, Option } from 'commander';
import { backendOption, describeBackend, initBackend } from '../backend';
import { BUILT_IN_NAMES, builtInExperiment } from '../built-in-experiments';
import { action, asUserError, resolveUserPath, UserError } from '../cli-kit';
import { defaultTokenizerFor } from '../default-tokenizer';
import { EXPERIMENT_OWNED, type Experiment, readExperimentFile } from '../experiment-file';
import { formatCount, ProgressBar } from '../progress';
import { runsDirectory } from '../run-directory';
import {
  formatSeconds,
  INTERRUPTED_EXIT_CODE,
  openData,
  parseSettings,
  plural,
  progressHooks,
  type Settings,
  stopOnSignals,
} from './train';

/** One variant x seed of the experiment, resolved: what its run trains. */
export interface PlannedRun {
  variant: string;
  seed: number;
  runName: string;
  config: BakaConfig;
  options: TrainingOptions;
  /**
   * What the file sets for the run (parsed, paths as written), recorded with it; a later file
   * that sets it differently is refused. Defaults are left out, so a config field added to the
   * schema later does not make recorded runs look changed.
   */
  settings: {
    preset: string;
    corpus: string;
    tokenizer: string | null;
    model: Partial<BakaConfig>;
    training: Partial<TrainingOptions>;
    budget: Experiment['budget'];
    eval: Experiment['eval'];
  };
}

/** The experiment file, or the built-in experiment of that name. */
export function loadExperiment(target: string): { experiment: Experiment; directory: string } {
  const path = resolveUserPath(target);
  if (existsSync(path)) return readExperimentFile(path);
  const builtIn = builtInExperiment(target);
  if (builtIn) return { experiment: builtIn, directory: process.cwd() };
  throw new UserError(
    `experiment: no file ${path} and no built-in experiment '${target}' (built-in: ${BUILT_IN_NAMES.join(', ')})`,
  );
}

/** `--set`-style settings of one field of the file, refusing what the experiment itself sets. */
function fieldSettings(settings: readonly string[], field: string, into: Settings): void {
  settings.forEach((setting, i) => {
    const where = `${field}[${i}]`;
    const key = setting.slice(0, Math.max(setting.indexOf('='), 0)).trim();
    const owner = EXPERIMENT_OWNED[key as TrainingOptionKey];
    if (owner !== undefined) throw new UserError(`${where}: ${key} is set by ${owner}`);
    parseSettings([setting], into, where);
  });
}

/** Runs `run`, prefixing its one-line user error with the experiment file's name. */
function inFile(source: string, run: () => void): void {
  try {
    run();
  } catch (error) {
    if (error instanceof UserError) throw new UserError(`${source}: ${error.message}`);
    throw error;
  }
}

/** A corpus name as written, or a path relative to the experiment file that exists. */
function corpusOf(corpus: string, directory: string): string {
  const path = resolve(directory, corpus);
  return existsSync(path) ? path : corpus;
}

/**
 * Every run of the experiment, seed by seed (each seed's variants in file order), checked in
 * full before anything trains: a bad setting or config is one line naming its field.
 */
export function planExperiment(
  experiment: Experiment,
  directory: string,
  source: string,
  vocabSize: number,
  tokenizerPath: string,
): PlannedRun[] {
  const { base, budget } = experiment;
  if (base.corpus === null)
    throw new UserError(`${source}: base.corpus: an experiment needs a corpus`);
  const presetFields = asUserError(`${source}: base.preset: `, () =>
    presetConfig(base.preset, 'preset'),
  );
  const baseSettings: Settings = { model: {}, options: {}, optionFlags: {} };
  inFile(source, () => fieldSettings(base.set, 'base.set', baseSettings));
  const variants = experiment.variants.map((variant, i) => {
    const settings: Settings = {
      model: { ...baseSettings.model },
      options: { ...baseSettings.options },
      optionFlags: {},
    };
    const field = `variants[${i}]`;
    inFile(source, () => fieldSettings(variant.set, `${field}.set`, settings));
    const config = asUserError(`${source}: ${field} (${variant.name}): `, () =>
      makeConfig({ ...presetFields, n_vocab: vocabSize, ...settings.model }, 'model'),
    );
    if (config.n_vocab < vocabSize) {
      throw new UserError(
        `${source}: ${field} (${variant.name}): n_vocab ${config.n_vocab} is smaller than the tokenizer's vocabulary (${vocabSize})`,
      );
    }
    return { variant, field, config, model: settings.model, options: settings.options };
  });
  const runs: PlannedRun[] = [];
  for (const seed of experiment.seeds) {
    for (const { variant, field, config, model, options: given } of variants) {
      const runName = `${experiment.name}.${variant.name}.s${seed}`;
      const options = asUserError(`${source}: ${field} (${variant.name}): `, () =>
        makeTrainingOptions(
          {
            ...given,
            runName,
            seed,
            maxSteps: budget.steps ?? null,
            maxTokens: budget.tokens ?? null,
            maxMinutes: budget.minutes ?? null,
            evalEvery: experiment.eval.every,
            evalDocuments: experiment.eval.documents,
            evalSplit: experiment.eval.split,
            evalAtEnd: true,
            corpus: corpusOf(base.corpus!, directory),
            tokenizer: tokenizerPath,
            preset: base.preset,
          },
          'training options',
        ),
      );
      if (options.schedule === 'cosine' && budget.steps === undefined) {
        throw new UserError(
          `${source}: budget: a cosine schedule (${field} ${variant.name}) needs a steps budget (its decay horizon)`,
        );
      }
      runs.push({
        variant: variant.name,
        seed,
        runName,
        config,
        options,
        settings: {
          preset: base.preset,
          corpus: base.corpus!,
          tokenizer: base.tokenizer,
          model,
          training: given,
          budget,
          eval: experiment.eval,
        },
      });
    }
  }
  return runs;
}

/** Parameters of a config: every tensor, and the V x D input embedding and output projection. */
function parameterCounts(config: BakaConfig): { total: number; embedding: number } {
  let total = 0;
  let embedding = 0;
  for (const spec of parameterSpecs(config)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    total += size;
    if (spec.name === 'vocab_in.weight' || spec.name === 'vocab_out.weight') embedding += size;
  }
  return { total, embedding };
}

/**
 * Gives `model` the initial weights of `reference` (the first variant, same seed) wherever a
 * trainable tensor has the same name, shape and initialiser; returns how many tensors it took.
 * A tensor the variant initialises differently (a thin layer's scaled attention) keeps its own.
 */
export function shareInitialWeights(
  model: BakaCausalLM,
  reference: BakaConfig,
  seed: number,
): number {
  const own = new Map(parameterSpecs(model.config).map((spec) => [spec.name, spec]));
  const source = BakaCausalLM.create(reference, { seed });
  let shared = 0;
  try {
    for (const spec of parameterSpecs(source.config)) {
      const mine = own.get(spec.name);
      if (
        !spec.trainable ||
        mine === undefined ||
        JSON.stringify(mine.shape) !== JSON.stringify(spec.shape) ||
        JSON.stringify(mine.init) !== JSON.stringify(spec.init)
      )
        continue;
      model.parameters.get(spec.name)!.assign(source.parameters.get(spec.name)!);
      shared += 1;
    }
  } finally {
    source.dispose();
  }
  return shared;
}

/** Where a run stands: its database status and its newest checkpoint's trainer state. */
interface RunStanding {
  status: string | null;
  checkpoint: string | undefined;
  state: TrainerState | null;
}

function standing(store: MetricsStore, runsDir: string, runName: string): RunStanding {
  const row = store.db.prepare('SELECT status FROM runs WHERE name = ?').get(runName) as
    | { status: string }
    | undefined;
  const checkpoint = latestCheckpoint(join(runsDir, runName, 'checkpoints'));
  const state = checkpoint
    ? parseTrainerState(
        readFileSync(join(checkpoint, 'trainer_state.json'), 'utf8'),
        join(checkpoint, 'trainer_state.json'),
      )
    : null;
  return { status: row?.status ?? null, checkpoint, state };
}

/** Work left in a run in the budget's unit (steps, tokens or seconds). */
function workLeft(budget: Experiment['budget'], state: TrainerState | null): number {
  if (budget.steps !== undefined) return Math.max(0, budget.steps - (state?.step ?? 0));
  if (budget.tokens !== undefined) return Math.max(0, budget.tokens - (state?.tokens ?? 0));
  return Math.max(0, budget.minutes! * 60 - (state?.elapsedSeconds ?? 0));
}

function formatEta(seconds: number | null): string {
  return seconds === null || !Number.isFinite(seconds) ? '?' : formatSeconds(Math.max(0, seconds));
}

interface RunFlags {
  runsDir?: string;
  backend: string;
  format: ReportFormat;
}

function reportFormat(value: unknown): ReportFormat {
  if (value === undefined) return 'table';
  if (!REPORT_FORMATS.includes(value as ReportFormat)) {
    throw new UserError(
      `--format expects one of ${REPORT_FORMATS.join(', ')}, got '${String(value)}'`,
    );
  }
  return value as ReportFormat;
}

/** The report of experiment `name` from the store, or a one-line error listing what there is. */
function readReport(store: MetricsStore, name: string): ExperimentReport {
  const report = experimentReport(store.db, name);
  if (report === null) {
    const names = experimentNames(store.db);
    throw new UserError(
      `experiment '${name}' not found in ${store.path} (${names.length > 0 ? `recorded: ${names.join(', ')}` : 'no experiments recorded'})`,
    );
  }
  return report;
}

async function runExperiment(target: string, flags: RunFlags): Promise<void> {
  const { experiment, directory } = loadExperiment(target);
  const source = existsSync(resolveUserPath(target))
    ? resolveUserPath(target)
    : `built-in ${target}`;
  const runsDir = runsDirectory(flags.runsDir);
  const tokenizerPath = experiment.base.tokenizer
    ? resolve(directory, experiment.base.tokenizer)
    : defaultTokenizerFor(experiment.base.corpus);
  if (!existsSync(tokenizerPath)) {
    throw new UserError(`${source}: base.tokenizer: file not found: ${tokenizerPath}`);
  }
  const tokenizer = Tokenizer.fromFile(tokenizerPath);
  const plan = planExperiment(experiment, directory, source, tokenizer.vocabSize, tokenizerPath);
  const store = new MetricsStore(join(runsDir, 'metrics.sqlite'));
  try {
    const recorded = store.experiment(experiment.name);
    const links = new Map(
      (recorded ? store.experimentRuns(recorded.id) : []).map((link) => [
        `${link.variant}\0${link.seed}`,
        link,
      ]),
    );
    // Refuse, before training anything, runs the file now resolves differently or names taken.
    for (const run of plan) {
      const link = links.get(`${run.variant}\0${run.seed}`);
      if (link && JSON.stringify(link.settings) !== JSON.stringify(run.settings)) {
        throw new UserError(
          `${source}: variant '${run.variant}' changed since run ${run.runName} was trained (its settings, the base or the budget); give it a new name, or delete the run (baka runs rm ${run.runName} --yes)`,
        );
      }
      const owner = link ? undefined : store.experimentOfRun(run.runName);
      if (
        !link &&
        (owner !== undefined || store.hasRun(run.runName) || existsSync(join(runsDir, run.runName)))
      ) {
        throw new UserError(
          `run ${run.runName} already exists in ${runsDir} and is not this experiment's; rename it (baka runs rename) or use another --runs-dir`,
        );
      }
    }
    // the file as it stands now is what the report reads (variants in its order)
    const experimentId = store.saveExperiment(experiment.name, experiment);
    const report = await initBackend(flags.backend as Parameters<typeof initBackend>[0]);
    process.stderr.write(`${describeBackend(report)}\n`);
    const documents = await openData(plan[0]!.options, tokenizerPath, runsDir, {});
    await trainPlan({
      experiment,
      experimentId,
      plan,
      links,
      store,
      runsDir,
      documents,
      tokenizer,
      backend: report.name,
    });
    if (process.exitCode === INTERRUPTED_EXIT_CODE) return;
    process.stdout.write(formatReport(readReport(store, experiment.name), flags.format));
  } finally {
    store.close();
  }
}

interface PlanContext {
  experiment: Experiment;
  experimentId: number;
  plan: PlannedRun[];
  links: Map<string, ExperimentRunLink>;
  store: MetricsStore;
  runsDir: string;
  documents: TokenDocuments;
  tokenizer: Tokenizer;
  backend: string;
}

/** Trains every unfinished run of the plan in order; a signal stops after saving the current one. */
async function trainPlan(context: PlanContext): Promise<void> {
  const { experiment, plan, store, runsDir } = context;
  const { budget } = experiment;
  const controller = {
    stopped: false,
    session: null as TrainingSession | null,
    requestStop() {
      this.stopped = true;
      this.session?.requestStop();
    },
  };
  const stopper = stopOnSignals(controller);
  const started = performance.now();
  const standings = plan.map((run) => standing(store, runsDir, run.runName));
  const left = plan.map((_, i) =>
    standings[i]!.status === 'finished' ? 0 : workLeft(budget, standings[i]!.state),
  );
  let workDone = 0;
  let trained = 0;
  let skipped = 0;
  let failed = 0;
  try {
    for (const [i, run] of plan.entries()) {
      if (controller.stopped) break;
      const where = `experiment ${experiment.name}: run ${i + 1} of ${plan.length} (${run.variant}, seed ${run.seed})`;
      const before = standings[i]!;
      if (before.status === 'finished') {
        skipped += 1;
        process.stderr.write(`${where}: finished earlier, skipped\n`);
        continue;
      }
      const remaining = left.slice(i).reduce((a, b) => a + b, 0);
      const seconds = (performance.now() - started) / 1000;
      const eta = workDone > 0 ? (remaining * seconds) / workDone : null;
      process.stderr.write(
        `${where}: ${before.checkpoint ? `resuming at step ${before.state!.step}` : 'new'}; ${trained} trained, ${skipped} skipped so far; experiment ETA ${formatEta(eta)}\n`,
      );
      const outcome = await trainRun(context, run, i, before, controller);
      workDone += left[i]! - workLeft(budget, outcome.state);
      left[i] = workLeft(budget, outcome.state);
      if (outcome.reason === 'interrupted') break;
      if (outcome.reason === 'non-finite') failed += 1;
      else trained += 1;
    }
  } finally {
    stopper.remove();
  }
  const took = formatSeconds((performance.now() - started) / 1000);
  if (controller.stopped) {
    process.stderr.write(
      `experiment ${experiment.name}: stopped after ${took} (${plural(trained, 'run')} trained); run the same command again to continue\n`,
    );
    process.exitCode = INTERRUPTED_EXIT_CODE;
    return;
  }
  process.stderr.write(
    `experiment ${experiment.name}: ${plural(plan.length, 'run')} (${trained} trained now, ${skipped} finished earlier${failed > 0 ? `, ${failed} failed on NaN/Inf` : ''}) in ${took}\n`,
  );
  if (failed > 0) process.exitCode = 1;
}

/** Trains one run to its budget: resumes its newest checkpoint, or starts it from the shared weights. */
async function trainRun(
  context: PlanContext,
  run: PlannedRun,
  index: number,
  before: RunStanding,
  controller: { session: TrainingSession | null; stopped: boolean },
): Promise<{ reason: string; state: TrainerState }> {
  const { store, runsDir, plan, experiment } = context;
  const key = `${run.variant}\0${run.seed}`;
  const counts = parameterCounts(run.config);
  if (!before.checkpoint && store.hasRun(run.runName)) {
    // Killed before its first checkpoint: nothing to resume, its rows are this experiment's.
    // Holding the run's lock first refuses a live process that is training it right now.
    const lock = RunLock.acquire(join(runsDir, run.runName), run.runName);
    try {
      store.deleteRun(run.runName);
    } finally {
      lock.release();
    }
    context.links.delete(key);
  }
  if (!context.links.has(key)) {
    const link: ExperimentRunLink = {
      variant: run.variant,
      seed: run.seed,
      runName: run.runName,
      settings: run.settings,
      nParams: counts.total,
      nEmbeddingParams: counts.embedding,
    };
    store.linkExperimentRun(context.experimentId, link);
    context.links.set(key, link);
  }
  const resumed = before.checkpoint ? await loadTrainingCheckpoint(before.checkpoint) : null;
  let model: BakaCausalLM;
  if (resumed) {
    model = resumed.model;
  } else {
    model = BakaCausalLM.create(run.config, { seed: run.seed });
    const first = plan.find((other) => other.seed === run.seed)!;
    if (first !== run) shareInitialWeights(model, first.config, run.seed);
  }
  const options =
    experiment.budget.minutes !== undefined
      ? { ...run.options, maxMinutes: workLeft(experiment.budget, resumed?.state ?? null) / 60 }
      : run.options;
  const session = new TrainingSession({
    model,
    documents: context.documents,
    options,
    runDir: join(runsDir, run.runName),
    tokenizerJson: context.tokenizer.toJSON(),
    store,
    backend: context.backend,
    resume: resumed ? { dir: resumed.dir, state: resumed.state } : null,
  });
  controller.session = session;
  if (controller.stopped) session.requestStop();
  const bar = new ProgressBar({
    label: `run ${index + 1}/${plan.length} ${run.variant} s${run.seed}`,
    ...(experiment.budget.steps !== undefined ? { total: experiment.budget.steps } : {}),
    initial: session.state.step,
    unit: 'steps',
  });
  const hooks = progressHooks(bar, false);
  let reason: string;
  try {
    const summary = await session.run(hooks);
    reason = summary.reason;
    bar.finish();
    const last = summary.evaluations.at(-1);
    process.stderr.write(
      `${run.runName}: ${summary.reason === 'interrupted' ? 'stopped' : 'done'} at step ${summary.steps}, ${formatCount(summary.tokens)} tokens, ${formatCount(hooks.tokensPerSecond())} tokens/s; train loss ${summary.finalLoss?.toFixed(4) ?? '-'}${last ? `, ${last.result.split} loss ${last.result.loss.toFixed(4)}` : ''}\n`,
    );
  } catch (error) {
    bar.finish();
    if (!(error instanceof NonFiniteTrainingError)) throw error;
    process.stderr.write(`${run.runName}: ${error.message}\n`);
    reason = 'non-finite';
  } finally {
    controller.session = null;
    session.dispose();
    model.dispose();
  }
  return { reason, state: session.state };
}

async function runReport(
  name: string,
  flags: { runsDir?: string; format: ReportFormat },
): Promise<void> {
  const path = join(runsDirectory(flags.runsDir), 'metrics.sqlite');
  if (!existsSync(path)) throw new UserError(`no metrics database at ${path} (see --runs-dir)`);
  const store = new MetricsStore(path, { readonly: true });
  try {
    process.stdout.write(formatReport(readReport(store, name), flags.format));
  } finally {
    store.close();
  }
}

const formatOption = () =>
  new Option('--format <format>', `report format: ${REPORT_FORMATS.join(', ')} (default table)`);

export function register(program: Command): void {
  const command = program
    .command('experiment')
    .description('Compare variants on the same data and budget: run an experiment, report on it');
  command
    .command('run <file|name>')
    .description(
      `Train every variant x seed of an experiment file, or of a built-in experiment (${BUILT_IN_NAMES.join(', ')}), then print its report. ` +
        `Finished runs are skipped, an interrupted one resumes; exit code ${INTERRUPTED_EXIT_CODE} when a signal stopped it (after saving).`,
    )
    .option('--runs-dir <dir>', 'where runs and metrics.sqlite live (default: <repo root>/runs)')
    .addOption(backendOption())
    .addOption(formatOption())
    .action(
      action(async (target: string, raw: Record<string, unknown>) => {
        await runExperiment(target, {
          ...(typeof raw.runsDir === 'string' ? { runsDir: raw.runsDir } : {}),
          backend: String(raw.backend),
          format: reportFormat(raw.format),
        });
      }),
    );
  command
    .command('report <name>')
    .description('Print the report of an experiment recorded in metrics.sqlite')
    .option('--runs-dir <dir>', 'where runs and metrics.sqlite live (default: <repo root>/runs)')
    .addOption(formatOption())
    .action(
      action(async (name: string, raw: Record<string, unknown>) => {
        await runReport(name, {
          ...(typeof raw.runsDir === 'string' ? { runsDir: raw.runsDir } : {}),
          format: reportFormat(raw.format),
        });
      }),
    );
}
