// Read-only access to the trainer's metrics store (`runs/metrics.sqlite`, see
// @baka/trainer/metrics). The viewer never writes: the connection is opened read-only, so the
// trainer can keep writing (WAL) while requests read. A missing file or a file without tables is a
// normal state ("no runs yet"), not an error. A busy database is retried, never surfaced.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import {
  type CurveX,
  type ExperimentCurves,
  type ExperimentRunRow,
  experimentCurves,
  experimentNames,
  experimentReport,
  experimentRunRows,
  hasTable,
} from './experiment-report';
import type { ExperimentReport } from './experiment-table';
import { bucketMeans, largestTriangleThreeBuckets } from './lttb';
import { type MetricColumn, RunColumns, type XColumn } from './run-columns';
import { seriesWindow } from './series-window';

/** A 'running' run whose heartbeat is older than this was killed: shown as stopped. */
export const HEARTBEAT_TIMEOUT_MS = 120_000;

export const START_COMMAND = 'pnpm --filter cli train';

export type DatabaseState = 'missing' | 'empty' | 'ready';
export type RunStatus = 'running' | 'finished' | 'failed' | 'stopped';

export interface RunSummary {
  id: number;
  name: string;
  /** The status to show: a 'running' run with a stale heartbeat is 'stopped'. */
  status: RunStatus;
  /** True when the run was recorded as running but its heartbeat stopped (killed). */
  interrupted: boolean;
  preset: string | null;
  nParams: number | null;
  backend: string | null;
  host: string | null;
  note: string | null;
  checkpointDir: string | null;
  /** The last logged step (null before the first metric row). */
  steps: number | null;
  tokens: number | null;
  bestLoss: number | null;
  metricRows: number;
  /** Unix milliseconds. */
  startedAt: number;
  endedAt: number | null;
  heartbeatAt: number | null;
  durationSeconds: number;
  config: unknown;
}

export interface SeriesRequest {
  metric: MetricColumn;
  x: XColumn;
  /** Inclusive x range; all of the run when absent. */
  from?: number | undefined;
  to?: number | undefined;
  /** Only rows with a step greater than this (live updates). */
  afterStep?: number | undefined;
  /** The most points to return; more rows in range are downsampled with LTTB. */
  points: number;
}

export interface SeriesResponse {
  runId: number;
  metric: MetricColumn;
  x: XColumn;
  xs: number[];
  ys: number[];
  /** When downsampled: per point, the mean of the rows its LTTB bucket stands for. */
  means?: number[];
  /** Rows with a value in the requested range, before downsampling. */
  rowsInRange: number;
  downsampled: boolean;
  /** The run's last step the server knows of; pass it as `afterStep` to get only newer rows. */
  lastStep: number | null;
}

export interface EvalPoint {
  step: number;
  tokens: number;
  elapsed: number;
  time: number;
  split: string;
  loss: number | null;
  tokenLoss: number | null;
  ppl: number | null;
  nans: number;
}

export interface ResultEntry {
  id: number;
  runId: number | null;
  runName: string | null;
  configId: string | null;
  modelType: string | null;
  nParams: number | null;
  nInputEmbParams: number | null;
  benchmark: string | null;
  split: string | null;
  nCtx: number | null;
  nans: number | null;
  loss: number | null;
  ppl: number | null;
  tokenLoss: number | null;
  tokens: number | null;
  architecture: string | null;
  note: string | null;
  time: number;
  /** Answer tokens per distance (recall corpus), in distance order; empty for other corpora. */
  answers: ResultAnswers[];
}

/** A result's answer tokens at one distance in chunks: how many were scored and predicted right. */
export interface ResultAnswers {
  distance: number;
  answers: number;
  correct: number;
}

/** An experiment as its view shows it: its runs, its report and its variants' curves. */
export interface ExperimentView {
  name: string;
  runs: ExperimentRunRow[];
  report: ExperimentReport;
  x: CurveX;
  curves: ExperimentCurves[];
}

interface RunRow {
  id: number;
  name: string;
  status: RunStatus;
  preset: string | null;
  config: string;
  n_params: number | null;
  host: string | null;
  backend: string | null;
  started_at: number;
  ended_at: number | null;
  heartbeat_at: number | null;
  checkpoint_dir: string | null;
  note: string | null;
}

interface RunAggregate {
  storedStatus: RunStatus;
  lastStep: number | null;
  tokens: number | null;
  bestLoss: number | null;
  rows: number;
}

/** Runs whose columns stay in memory (the least recently charted ones are dropped). */
const MAX_CACHED_RUNS = 16;
/** SQLite's own busy wait per attempt, then a pause, up to this many attempts (about 5 s). */
const BUSY_TIMEOUT_MS = 250;
const BUSY_RETRIES = 20;
const BUSY_WAIT_MS = 25;

/** The database stayed locked by another process through every retry. */
export class DatabaseBusyError extends Error {
  override name = 'DatabaseBusyError';
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
  );
}

function isMissingTable(error: unknown): boolean {
  return error instanceof Error && /no such table/.test(error.message);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function parseConfig(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class MetricsReader {
  private database: Database.Database | undefined;
  private closed = false;
  private readonly aggregates = new Map<number, RunAggregate>();
  private readonly columns = new Map<number, RunColumns>();

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens the file read-only if it exists now (it may appear after the viewer started). */
  private open(): Database.Database | undefined {
    if (this.database) return this.database;
    if (this.closed || !existsSync(this.path)) return undefined;
    const database = new Database(this.path, {
      readonly: true,
      fileMustExist: true,
      timeout: BUSY_TIMEOUT_MS,
    });
    this.database = database;
    return database;
  }

  /** Runs `read` on the open database, retrying while a writer holds a lock. */
  private read<T>(read: (database: Database.Database) => T, whenMissing: T): T {
    for (let attempt = 0; ; attempt++) {
      const database = this.open();
      if (!database) return whenMissing;
      try {
        return read(database);
      } catch (error) {
        if (isMissingTable(error)) return whenMissing;
        if (isBusy(error)) {
          if (attempt < BUSY_RETRIES) {
            sleepSync(BUSY_WAIT_MS);
            continue;
          }
          throw new DatabaseBusyError(`${this.path} stayed locked by another process; try again`);
        }
        throw error;
      }
    }
  }

  state(): DatabaseState {
    return this.read(
      (database) => {
        const row = database.prepare('SELECT COUNT(*) AS count FROM runs').get() as {
          count: number;
        };
        return row.count > 0 ? 'ready' : 'empty';
      },
      this.database || existsSync(this.path) ? 'empty' : 'missing',
    );
  }

  /** Every run, newest first, with its aggregates (kept up to date incrementally). */
  listRuns(): RunSummary[] {
    return this.read((database) => {
      const rows = database
        .prepare('SELECT * FROM runs ORDER BY started_at DESC, id DESC')
        .all() as RunRow[];
      // The newest run is the one the page charts first: count it from its loss column, which
      // the chart needs anyway, instead of a separate scan of all its rows.
      return rows.map((row, index) => this.summarize(database, row, index === 0));
    }, []);
  }

  /** A run's aggregate from its cached step and loss columns (one read serves table and chart). */
  private aggregateFromColumns(database: Database.Database, row: RunRow): RunAggregate {
    const columns = this.runColumns(database, row.id, ['loss']);
    const losses = columns.get('loss');
    let bestLoss: number | null = null;
    for (let index = 0; index < columns.length; index++) {
      const loss = losses[index]!;
      if (!Number.isNaN(loss) && (bestLoss === null || loss < bestLoss)) bestLoss = loss;
    }
    const lastStep = columns.length > 0 ? columns.get('step')[columns.length - 1]! : null;
    const last =
      lastStep === null
        ? undefined
        : (database
            .prepare('SELECT tokens FROM metrics WHERE run_id = ? AND step = ?')
            .get(row.id, lastStep) as { tokens: number } | undefined);
    return {
      storedStatus: row.status,
      lastStep,
      tokens: last?.tokens ?? null,
      bestLoss,
      rows: columns.length,
    };
  }

  private aggregate(database: Database.Database, row: RunRow, fromColumns: boolean): RunAggregate {
    let aggregate = this.aggregates.get(row.id);
    // A run that changed status (resumed, ended) may have rewritten steps: recount from scratch.
    if (!aggregate || aggregate.storedStatus !== row.status) {
      if (fromColumns) {
        const counted = this.aggregateFromColumns(database, row);
        this.aggregates.set(row.id, counted);
        return counted;
      }
      aggregate = {
        storedStatus: row.status,
        lastStep: null,
        tokens: null,
        bestLoss: null,
        rows: 0,
      };
    }
    const fresh = database
      .prepare(
        `SELECT MAX(step) AS lastStep, MAX(tokens) AS tokens, MIN(loss) AS bestLoss,
                COUNT(*) AS rows
         FROM metrics WHERE run_id = ? AND step > ?`,
      )
      .get(row.id, aggregate.lastStep ?? -1) as Omit<RunAggregate, 'storedStatus'>;
    const max = (a: number | null, b: number | null) =>
      a === null ? b : b === null ? a : Math.max(a, b);
    const min = (a: number | null, b: number | null) =>
      a === null ? b : b === null ? a : Math.min(a, b);
    const updated: RunAggregate = {
      storedStatus: row.status,
      lastStep: max(aggregate.lastStep, fresh.lastStep),
      tokens: max(aggregate.tokens, fresh.tokens),
      bestLoss: min(aggregate.bestLoss, fresh.bestLoss),
      rows: aggregate.rows + fresh.rows,
    };
    this.aggregates.set(row.id, updated);
    return updated;
  }

  private summarize(database: Database.Database, row: RunRow, fromColumns: boolean): RunSummary {
    const aggregate = this.aggregate(database, row, fromColumns);
    const now = this.now();
    const lastSign = row.heartbeat_at ?? row.started_at;
    const interrupted = row.status === 'running' && now - lastSign > HEARTBEAT_TIMEOUT_MS;
    const end = row.ended_at ?? (row.status === 'running' && !interrupted ? now : lastSign);
    return {
      id: row.id,
      name: row.name,
      status: interrupted ? 'stopped' : row.status,
      interrupted,
      preset: row.preset,
      nParams: row.n_params,
      backend: row.backend,
      host: row.host,
      note: row.note,
      checkpointDir: row.checkpoint_dir,
      steps: aggregate.lastStep,
      tokens: aggregate.tokens,
      bestLoss: aggregate.bestLoss,
      metricRows: aggregate.rows,
      startedAt: row.started_at,
      endedAt: row.ended_at,
      heartbeatAt: row.heartbeat_at,
      durationSeconds: Math.max(0, (end - row.started_at) / 1000),
      config: parseConfig(row.config),
    };
  }

  /** The columns cache of a run, brought up to date with rows written since the last call. */
  private runColumns(
    database: Database.Database,
    runId: number,
    needed: readonly string[],
  ): RunColumns {
    // Least recently used first: a Map iterates in insertion order.
    const columns = this.columns.get(runId) ?? new RunColumns(runId);
    this.columns.delete(runId);
    this.columns.set(runId, columns);
    for (const [oldest] of this.columns) {
      if (this.columns.size <= MAX_CACHED_RUNS) break;
      this.columns.delete(oldest);
    }
    columns.refresh(database, needed);
    return columns;
  }

  /** One metric of one run against x, downsampled to `points` with LTTB. Undefined: no such run. */
  series(runId: number, request: SeriesRequest): SeriesResponse | undefined {
    return this.read((database) => {
      const exists = database.prepare('SELECT 1 FROM runs WHERE id = ?').get(runId);
      if (!exists) return undefined;
      const xColumn = request.x;
      const columns = this.runColumns(database, runId, ['step', xColumn, request.metric]);
      const steps = columns.get('step');
      const xs = columns.get(xColumn);
      const ys = columns.get(request.metric);
      const window = seriesWindow(steps, xs, ys, columns.length, {
        from: request.from ?? -Infinity,
        to: request.to ?? Infinity,
        afterStep: request.afterStep ?? -Infinity,
      });
      const rowsInRange = window.xs.length;
      const downsampled = rowsInRange > request.points;
      let outX: number[];
      let outY: number[];
      let means: number[] | undefined;
      if (downsampled) {
        const indices = largestTriangleThreeBuckets(window.xs, window.ys, request.points);
        outX = Array.from(indices, (index) => window.xs[index]!);
        outY = Array.from(indices, (index) => window.ys[index]!);
        means = Array.from(bucketMeans(window.ys, request.points));
      } else {
        outX = Array.from(window.xs);
        outY = Array.from(window.ys);
      }
      return {
        runId,
        metric: request.metric,
        x: request.x,
        xs: outX,
        ys: outY,
        ...(means ? { means } : {}),
        rowsInRange,
        downsampled,
        lastStep: columns.length > 0 ? steps[columns.length - 1]! : null,
      };
    }, undefined);
  }

  /**
   * Loads what the page asks for first (the runs list, and the step and loss columns of the newest
   * runs and of running ones) so the first chart is drawn from memory. The server calls this once
   * after it starts listening.
   */
  warm(newestRuns = 3): void {
    const runs = this.listRuns();
    const chosen = runs.filter((run, index) => index < newestRuns || run.status === 'running');
    for (const run of chosen) this.series(run.id, { metric: 'loss', x: 'step', points: 10 });
  }

  /** Validation points of a run (optionally only after a step). Undefined: no such run. */
  evals(runId: number, afterStep = -1): EvalPoint[] | undefined {
    return this.read((database) => {
      if (!database.prepare('SELECT 1 FROM runs WHERE id = ?').get(runId)) return undefined;
      return database
        .prepare(
          `SELECT step, tokens, elapsed, time, split, loss, token_loss AS tokenLoss, ppl, nans
           FROM evals WHERE run_id = ? AND step > ? ORDER BY step, split`,
        )
        .all(runId, afterStep) as EvalPoint[];
    }, undefined);
  }

  /** The recorded experiments' names, oldest first. */
  experiments(): string[] {
    return this.read((database) => experimentNames(database), []);
  }

  /** One experiment's runs, report and curves against `x`. Undefined: no such experiment. */
  experiment(name: string, x: CurveX, points: number): ExperimentView | undefined {
    return this.read((database) => {
      const listed = experimentRunRows(database, name);
      const report = experimentReport(database, name);
      const curves = experimentCurves(database, name, x, points);
      if (!listed || !report || !curves) return undefined;
      return { name, runs: listed.runs, report, x, curves };
    }, undefined);
  }

  /** The results table (benchmark evaluations), newest first. */
  results(): ResultEntry[] {
    return this.read((database) => {
      const rows = database
        .prepare(
          `SELECT results.id, results.run_id AS runId, runs.name AS runName, config_id AS configId,
                  model_type AS modelType, results.n_params AS nParams, n_input_emb_params AS nInputEmbParams,
                  benchmark, split, n_ctx AS nCtx, nans, loss, ppl, token_loss AS tokenLoss, tokens,
                  architecture, results.note AS note, time
           FROM results LEFT JOIN runs ON runs.id = results.run_id
           ORDER BY time DESC, results.id DESC`,
        )
        .all() as Omit<ResultEntry, 'answers'>[];
      const answers = new Map<number, ResultAnswers[]>();
      // a database written before schema 4 has no result_answers table
      if (hasTable(database, 'result_answers')) {
        const stored = database
          .prepare(
            'SELECT result_id AS resultId, distance, answers, correct FROM result_answers ORDER BY result_id, distance',
          )
          .all() as (ResultAnswers & { resultId: number })[];
        for (const { resultId, ...answer } of stored) {
          answers.set(resultId, [...(answers.get(resultId) ?? []), answer]);
        }
      }
      return rows.map((row) => ({ ...row, answers: answers.get(row.id) ?? [] }));
    }, []);
  }

  close(): void {
    this.closed = true;
    this.database?.close();
    this.database = undefined;
    this.columns.clear();
    this.aggregates.clear();
  }
}
