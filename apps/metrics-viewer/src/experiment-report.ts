// An experiment's report from runs/metrics.sqlite: its variants in the experiment file's order,
// each summarised over its seeds' runs (see experiment-table.ts for the columns). Read-only; a
// database without the experiment tables (written before they existed) has no experiments.
import type Database from 'better-sqlite3';
import type { ExperimentReport, ExperimentReportRow } from './experiment-table';

/** What the report reads of a stored experiment file (the CLI validated and completed it). */
interface StoredSpec {
  variants: { name: string }[];
  seeds: number[];
  eval: { split: string };
  report: { lastSteps: number };
}

interface RunFigures {
  finished: boolean;
  nParams: number;
  nEmbeddingParams: number;
  trainTokens: number;
  trainSeconds: number;
  trainLoss: number | null;
  validLoss: number | null;
  validTokenLoss: number | null;
  /** The last evaluation's answer accuracy per distance (recall corpus). */
  answerAccuracy: Map<number, number>;
}

/** Whether the database has table `name` (older schemas lack the newer tables). */
export function hasTable(db: Database.Database, name: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined
  );
}

function hasExperimentTables(db: Database.Database): boolean {
  return (
    db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiment_runs'")
      .get() !== undefined
  );
}

/** The recorded experiments' names, oldest first (none in a database without the tables). */
export function experimentNames(db: Database.Database): string[] {
  if (!hasExperimentTables(db)) return [];
  return (
    db.prepare('SELECT name FROM experiments ORDER BY created_at, id').all() as { name: string }[]
  ).map((row) => row.name);
}

/** One experiment run as the viewer lists it: its run row's id and name, variant and seed. */
export interface ExperimentRunRow {
  variant: string;
  seed: number;
  runName: string;
  /** null until the run's training started. */
  runId: number | null;
  status: string | null;
}

/** The variants in file order and the runs tied to the experiment; null when there is none. */
export function experimentRunRows(
  db: Database.Database,
  name: string,
): { variants: string[]; runs: ExperimentRunRow[] } | null {
  if (!hasExperimentTables(db)) return null;
  const experiment = db.prepare('SELECT id, spec FROM experiments WHERE name = ?').get(name) as
    | { id: number; spec: string }
    | undefined;
  if (!experiment) return null;
  const spec = JSON.parse(experiment.spec) as StoredSpec;
  const runs = db
    .prepare(
      `SELECT l.variant, l.seed, l.run_name AS runName, r.id AS runId, r.status
       FROM experiment_runs l LEFT JOIN runs r ON r.name = l.run_name
       WHERE l.experiment_id = ? ORDER BY l.rowid`,
    )
    .all(experiment.id) as ExperimentRunRow[];
  return { variants: spec.variants.map((variant) => variant.name), runs };
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

function sampleDeviation(values: number[]): number | null {
  if (values.length < 2) return null;
  const m = mean(values)!;
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1));
}

function runFigures(
  db: Database.Database,
  runId: number | null,
  status: string | null,
  spec: StoredSpec,
  link: { nParams: number; nEmbeddingParams: number },
): RunFigures {
  const figures: RunFigures = {
    finished: status === 'finished',
    ...link,
    trainTokens: 0,
    trainSeconds: 0,
    trainLoss: null,
    validLoss: null,
    validTokenLoss: null,
    answerAccuracy: new Map(),
  };
  if (runId === null) return figures;
  const steps = db
    .prepare(
      'SELECT tokens, loss, tokens_per_second AS rate FROM metrics WHERE run_id = ? ORDER BY step',
    )
    .all(runId) as { tokens: number; loss: number | null; rate: number | null }[];
  let previous = 0;
  for (const step of steps) {
    const tokens = step.tokens - previous;
    previous = step.tokens;
    if (step.rate === null || step.rate <= 0) continue;
    figures.trainTokens += tokens;
    figures.trainSeconds += tokens / step.rate;
  }
  const last = steps
    .slice(-spec.report.lastSteps)
    .flatMap((step) => (step.loss === null ? [] : [step.loss]));
  figures.trainLoss = mean(last);
  const evaluation = db
    .prepare(
      'SELECT step, loss, token_loss AS tokenLoss FROM evals WHERE run_id = ? AND split = ? ORDER BY step DESC LIMIT 1',
    )
    .get(runId, spec.eval.split) as
    | { step: number; loss: number | null; tokenLoss: number | null }
    | undefined;
  figures.validLoss = evaluation?.loss ?? null;
  figures.validTokenLoss = evaluation?.tokenLoss ?? null;
  // a database written before answer evaluations existed has no such table
  if (evaluation && hasTable(db, 'answer_evals')) {
    const answers = db
      .prepare(
        'SELECT distance, answers, correct FROM answer_evals WHERE run_id = ? AND step = ? AND split = ? ORDER BY distance',
      )
      .all(runId, evaluation.step, spec.eval.split) as {
      distance: number;
      answers: number;
      correct: number;
    }[];
    for (const row of answers) {
      if (row.answers > 0) figures.answerAccuracy.set(row.distance, row.correct / row.answers);
    }
  }
  return figures;
}

/** The report of experiment `name`, or null when the database has no such experiment. */
export function experimentReport(db: Database.Database, name: string): ExperimentReport | null {
  if (!hasExperimentTables(db)) return null;
  const experiment = db.prepare('SELECT id, spec FROM experiments WHERE name = ?').get(name) as
    | { id: number; spec: string }
    | undefined;
  if (!experiment) return null;
  const spec = JSON.parse(experiment.spec) as StoredSpec;
  const links = db
    .prepare(
      `SELECT l.variant, l.seed, l.n_params AS nParams, l.n_embedding_params AS nEmbeddingParams,
         r.id AS runId, r.status
       FROM experiment_runs l LEFT JOIN runs r ON r.name = l.run_name
       WHERE l.experiment_id = ?`,
    )
    .all(experiment.id) as {
    variant: string;
    seed: number;
    nParams: number;
    nEmbeddingParams: number;
    runId: number | null;
    status: string | null;
  }[];
  const rows: ExperimentReportRow[] = [];
  const finishedRuns: RunFigures[][] = [];
  for (const { name: variant } of spec.variants) {
    const all = links
      .filter((link) => link.variant === variant && spec.seeds.includes(link.seed))
      .map((link) => runFigures(db, link.runId, link.status, spec, link));
    // Figures come from finished runs only: a run still training would mix its early losses in.
    const runs = all.filter((run) => run.finished);
    finishedRuns.push(runs);
    const valid = runs.flatMap((run) => (run.validLoss === null ? [] : [run.validLoss]));
    const seconds = runs.reduce((sum, run) => sum + run.trainSeconds, 0);
    const validLoss = mean(valid);
    rows.push({
      variant,
      runs: all.length,
      finished: runs.length,
      params: all[0]?.nParams ?? null,
      nonEmbeddingParams: all[0] ? all[0].nParams - all[0].nEmbeddingParams : null,
      tokensPerSecond:
        seconds > 0 ? runs.reduce((sum, run) => sum + run.trainTokens, 0) / seconds : null,
      trainLoss: mean(runs.flatMap((run) => (run.trainLoss === null ? [] : [run.trainLoss]))),
      validLoss,
      validTokenLoss: mean(
        runs.flatMap((run) => (run.validTokenLoss === null ? [] : [run.validTokenLoss])),
      ),
      perplexity: validLoss === null ? null : Math.exp(validLoss),
      diff: null,
      spread: sampleDeviation(valid),
      answerAccuracy: [],
    });
  }
  const distances = [
    ...new Set(finishedRuns.flat().flatMap((run) => [...run.answerAccuracy.keys()])),
  ].sort((a, b) => a - b);
  rows.forEach((row, i) => {
    row.answerAccuracy = distances.map((distance) =>
      mean(finishedRuns[i]!.flatMap((run) => run.answerAccuracy.get(distance) ?? [])),
    );
  });
  const first = rows[0]?.validLoss ?? null;
  for (const row of rows) {
    row.diff = first === null || row.validLoss === null ? null : row.validLoss - first;
  }
  return {
    name,
    split: spec.eval.split,
    lastSteps: spec.report.lastSteps,
    seeds: spec.seeds,
    distances,
    rows,
  };
}

/** The x columns a curve can be drawn against (metrics and evals both have them). */
export const CURVE_X = ['step', 'tokens', 'elapsed'] as const;
export type CurveX = (typeof CURVE_X)[number];

/** One variant's curve: at each point the mean over seeds, and the lowest and highest seed. */
export interface VariantCurve {
  xs: number[];
  mean: number[];
  low: number[];
  high: number[];
  /** Seeds with at least one point. */
  seeds: number;
}

export interface ExperimentCurves {
  variant: string;
  train: VariantCurve;
  valid: VariantCurve;
}

/**
 * Mean and band of several seeds' curves: the seeds are aligned by step (each experiment run
 * counts the same steps), x is the seeds' mean x at that step, and only steps every seed has
 * reached are drawn. More steps than `points` are averaged in equal buckets of steps.
 */
function bandCurve(perSeed: Map<number, { x: number; y: number }>[], points: number): VariantCurve {
  const seeds = perSeed.filter((rows) => rows.size > 0);
  const curve: VariantCurve = { xs: [], mean: [], low: [], high: [], seeds: seeds.length };
  if (seeds.length === 0) return curve;
  const steps = [...seeds[0]!.keys()]
    .filter((step) => seeds.every((rows) => rows.has(step)))
    .sort((a, b) => a - b);
  const size = Math.max(1, Math.ceil(steps.length / points));
  for (let start = 0; start < steps.length; start += size) {
    const bucket = steps.slice(start, start + size);
    const x = mean(bucket.flatMap((step) => seeds.map((rows) => rows.get(step)!.x)))!;
    const values = seeds.map((rows) => mean(bucket.map((step) => rows.get(step)!.y))!);
    curve.xs.push(x);
    curve.mean.push(mean(values)!);
    curve.low.push(Math.min(...values));
    curve.high.push(Math.max(...values));
  }
  return curve;
}

/**
 * Every variant's train and evaluation curves against `x` (seeds as a band around their mean);
 * null when there is no such experiment.
 */
export function experimentCurves(
  db: Database.Database,
  name: string,
  x: CurveX,
  points: number,
): ExperimentCurves[] | null {
  const listed = experimentRunRows(db, name);
  if (listed === null) return null;
  const experiment = db.prepare('SELECT spec FROM experiments WHERE name = ?').get(name) as {
    spec: string;
  };
  const spec = JSON.parse(experiment.spec) as StoredSpec;
  // `x` is one of CURVE_X, never user text in SQL
  const train = db.prepare(
    `SELECT step, ${x} AS x, loss AS y FROM metrics WHERE run_id = ? AND loss IS NOT NULL ORDER BY step`,
  );
  const valid = db.prepare(
    `SELECT step, ${x} AS x, loss AS y FROM evals WHERE run_id = ? AND split = ? AND loss IS NOT NULL ORDER BY step`,
  );
  const rows = (statement: Database.Statement, ...args: unknown[]) =>
    new Map(
      (statement.all(...args) as { step: number; x: number; y: number }[]).map((row) => [
        row.step,
        { x: row.x, y: row.y },
      ]),
    );
  return listed.variants.map((variant) => {
    const runs = listed.runs.filter(
      (run) => run.variant === variant && run.runId !== null && spec.seeds.includes(run.seed),
    );
    return {
      variant,
      train: bandCurve(
        runs.map((run) => rows(train, run.runId)),
        points,
      ),
      valid: bandCurve(
        runs.map((run) => rows(valid, run.runId, spec.eval.split)),
        points,
      ),
    };
  });
}
