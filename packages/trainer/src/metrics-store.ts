// The metrics store: one SQLite database (WAL mode) per runs directory, `runs/metrics.sqlite`.
// Written by the trainer, read by `baka eval` and the metrics viewer. WAL lets readers query while
// a run writes, and every write is its own transaction, so a killed run leaves a consistent file.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { databaseError } from './storage-errors';

/**
 * The schema's version, in `meta`. 2 added `experiments` and `experiment_runs`, 3 `answer_evals`,
 * 4 `result_answers`; every change so far only adds tables, so opening an older database for
 * writing brings it up to date in one transaction, and older readers keep working.
 */
export const METRICS_SCHEMA_VERSION = 4;

/** The schema. Times are unix milliseconds; `elapsed` is seconds since the run started. */
export const METRICS_SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'stopped')),
  preset TEXT,
  config TEXT NOT NULL,            -- JSON: resolved model config plus training options
  n_params INTEGER,
  host TEXT,
  backend TEXT,
  started_at REAL NOT NULL,
  ended_at REAL,
  heartbeat_at REAL,               -- updated with every metric row; a 'running' run whose
                                   -- heartbeat is old was killed
  checkpoint_dir TEXT,
  note TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  tokens INTEGER NOT NULL,         -- tokens trained on so far (non-padding)
  elapsed REAL NOT NULL,
  time REAL NOT NULL,
  loss REAL,
  lr REAL,
  grad_norm REAL,
  tokens_per_second REAL,
  PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS evals (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  elapsed REAL NOT NULL,
  time REAL NOT NULL,
  split TEXT NOT NULL,
  loss REAL,                       -- mean of per-window (per-article) losses, as upstream
  token_loss REAL,                 -- token-weighted mean
  ppl REAL,
  nans INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, step, split)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS answer_evals (  -- an evaluation's answer tokens (recall corpus)
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  split TEXT NOT NULL,
  distance INTEGER NOT NULL,       -- chunks between an answer and its pair
  answers INTEGER NOT NULL,        -- answer tokens scored
  correct INTEGER NOT NULL,        -- of them, predicted right (argmax)
  loss REAL,                       -- mean cross-entropy on them
  PRIMARY KEY (run_id, step, split, distance)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
  id INTEGER PRIMARY KEY,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  config_id TEXT,
  model_type TEXT,
  n_params INTEGER,
  n_input_emb_params INTEGER,
  benchmark TEXT,
  split TEXT,
  n_ctx INTEGER,
  nans INTEGER,
  loss REAL,
  ppl REAL,
  token_loss REAL,
  tokens INTEGER,
  architecture TEXT,
  note TEXT,
  time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS result_answers (  -- a result's answer tokens (recall corpus), as answer_evals
  result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
  distance INTEGER NOT NULL,       -- chunks between an answer and its pair
  answers INTEGER NOT NULL,        -- answer tokens scored
  correct INTEGER NOT NULL,        -- of them, predicted right (argmax)
  loss REAL,                       -- mean cross-entropy on them
  PRIMARY KEY (result_id, distance)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,              -- JSON: the experiment file as validated (variants in order)
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_runs (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  variant TEXT NOT NULL,
  seed INTEGER NOT NULL,
  run_name TEXT NOT NULL UNIQUE,   -- runs.name (the run row appears when its training starts)
  settings TEXT NOT NULL,          -- JSON: what the experiment file sets for the run
  n_params INTEGER NOT NULL,
  n_embedding_params INTEGER NOT NULL,
  UNIQUE (experiment_id, variant, seed)
);
`;

export type RunStatus = 'running' | 'finished' | 'failed' | 'stopped';

export interface RunInfo {
  name: string;
  preset?: string | null;
  config: unknown;
  nParams?: number | null;
  host?: string | null;
  backend?: string | null;
  checkpointDir?: string | null;
  note?: string | null;
}

export interface MetricRow {
  step: number;
  tokens: number;
  elapsed: number;
  loss?: number | null;
  lr?: number | null;
  gradNorm?: number | null;
  tokensPerSecond?: number | null;
  time?: number;
}

/** Answer-token figures at one distance (documents that mark answers: the recall corpus). */
export interface AnswerRow {
  distance: number;
  answers: number;
  correct: number;
  loss: number;
}

export interface EvalRow {
  step: number;
  tokens: number;
  elapsed: number;
  split: string;
  loss: number | null;
  tokenLoss: number | null;
  ppl: number | null;
  nans: number;
  time?: number;
  /** Answer-token figures per distance, stored in answer_evals. */
  answers?: AnswerRow[] | null;
}

export interface ResultRow {
  runId?: number | null;
  configId?: string | null;
  modelType: string;
  nParams: number;
  nInputEmbParams: number;
  benchmark: string;
  split: string;
  nCtx: number;
  nans: number;
  loss: number | null;
  ppl: number | null;
  tokenLoss?: number | null;
  tokens?: number | null;
  architecture?: string | null;
  note?: string | null;
  time?: number;
  /** Answer-token figures per distance, stored in result_answers. */
  answers?: AnswerRow[] | null;
}

/** A run as `baka runs list` shows it: its row plus the last logged step. */
export interface RunSummary {
  id: number;
  name: string;
  status: RunStatus;
  preset: string | null;
  nParams: number | null;
  backend: string | null;
  startedAt: number;
  endedAt: number | null;
  heartbeatAt: number | null;
  checkpointDir: string | null;
  /** The last logged training step, its token count and loss (null before the first step). */
  lastStep: number | null;
  lastTokens: number | null;
  lastLoss: number | null;
}

/** An experiment as stored: its validated file. */
export interface ExperimentRecord {
  id: number;
  name: string;
  spec: unknown;
  createdAt: number;
  updatedAt: number;
}

/** One variant x seed of an experiment: the run it trains. */
export interface ExperimentRunLink {
  variant: string;
  seed: number;
  runName: string;
  /** What the experiment file sets for the run (the experiment compares it on a re-run). */
  settings: unknown;
  nParams: number;
  nEmbeddingParams: number;
}

/** SQLite stores NaN as NULL; keep finite numbers only. */
function finiteOrNull(value: number | null | undefined): number | null {
  return value === undefined || value === null || !Number.isFinite(value) ? null : value;
}

export class MetricsStore {
  readonly db: Database.Database;

  constructor(
    readonly path: string,
    options: { readonly?: boolean } = {},
  ) {
    let db: Database.Database | null = null;
    try {
      if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, {
        readonly: options.readonly ?? false,
        fileMustExist: options.readonly ?? false,
      });
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 5000');
        db.pragma('foreign_keys = ON');
        const open = db;
        open.transaction(() => {
          open.exec(METRICS_SCHEMA);
          // never lowers the version a newer trainer wrote
          open
            .prepare(
              `INSERT INTO meta (key, value) VALUES ('schema_version', ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value
               WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)`,
            )
            .run(String(METRICS_SCHEMA_VERSION));
        })();
      } else {
        db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get(); // a corrupt file fails here
      }
    } catch (error) {
      db?.close();
      throw databaseError(path, error);
    }
    this.db = db;
  }

  /** Runs a statement; SQLite and system errors become one line naming the database. */
  private guard<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw databaseError(this.path, error);
    }
  }

  /** Starts a run (or re-opens one of the same name when resuming) and returns its id. */
  startRun(info: RunInfo, { resume = false } = {}): number {
    return this.guard(() => {
      const now = Date.now();
      const existing = this.db.prepare('SELECT id FROM runs WHERE name = ?').get(info.name) as
        | { id: number }
        | undefined;
      if (existing) {
        if (!resume) throw new Error(`a run named '${info.name}' already exists in ${this.path}`);
        this.db
          .prepare(
            "UPDATE runs SET status = 'running', ended_at = NULL, heartbeat_at = ?, backend = ?, host = ? WHERE id = ?",
          )
          .run(now, info.backend ?? null, info.host ?? null, existing.id);
        return existing.id;
      }
      const result = this.db
        .prepare(
          `INSERT INTO runs (name, status, preset, config, n_params, host, backend, started_at, heartbeat_at, checkpoint_dir, note)
           VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          info.name,
          info.preset ?? null,
          JSON.stringify(info.config),
          info.nParams ?? null,
          info.host ?? null,
          info.backend ?? null,
          now,
          now,
          info.checkpointDir ?? null,
          info.note ?? null,
        );
      return Number(result.lastInsertRowid);
    });
  }

  /** The id of the run named `name`, if it exists. */
  runId(name: string): number | undefined {
    return this.guard(() => {
      const row = this.db.prepare('SELECT id FROM runs WHERE name = ?').get(name) as
        | { id: number }
        | undefined;
      return row?.id;
    });
  }

  hasRun(name: string): boolean {
    return this.guard(
      () => this.db.prepare('SELECT 1 FROM runs WHERE name = ?').get(name) !== undefined,
    );
  }

  /** Records training metrics; a step logged again (after a resume) replaces the old row. */
  logMetrics(runId: number, rows: MetricRow | MetricRow[]): void {
    this.guard(() => {
      const list = Array.isArray(rows) ? rows : [rows];
      const insert = this.db.prepare(
        `INSERT OR REPLACE INTO metrics (run_id, step, tokens, elapsed, time, loss, lr, grad_norm, tokens_per_second)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const heartbeat = this.db.prepare('UPDATE runs SET heartbeat_at = ? WHERE id = ?');
      this.db.transaction(() => {
        const now = Date.now();
        for (const row of list) {
          insert.run(
            runId,
            row.step,
            row.tokens,
            row.elapsed,
            row.time ?? now,
            finiteOrNull(row.loss),
            finiteOrNull(row.lr),
            finiteOrNull(row.gradNorm),
            finiteOrNull(row.tokensPerSecond),
          );
        }
        heartbeat.run(now, runId);
      })();
    });
  }

  logEval(runId: number, row: EvalRow): void {
    this.guard(() => {
      const answers = this.db.prepare(
        `INSERT OR REPLACE INTO answer_evals (run_id, step, split, distance, answers, correct, loss)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      this.db.transaction(() => {
        this.insertEval(runId, row);
        for (const answer of row.answers ?? []) {
          answers.run(
            runId,
            row.step,
            row.split,
            answer.distance,
            answer.answers,
            answer.correct,
            finiteOrNull(answer.loss),
          );
        }
      })();
    });
  }

  private insertEval(runId: number, row: EvalRow): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO evals (run_id, step, tokens, elapsed, time, split, loss, token_loss, ppl, nans)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        runId,
        row.step,
        row.tokens,
        row.elapsed,
        row.time ?? Date.now(),
        row.split,
        finiteOrNull(row.loss),
        finiteOrNull(row.tokenLoss),
        finiteOrNull(row.ppl),
        row.nans,
      );
  }

  logResult(row: ResultRow): number {
    return this.guard(() =>
      this.db.transaction(() => {
        const id = this.insertResult(row);
        const answers = this.db.prepare(
          `INSERT INTO result_answers (result_id, distance, answers, correct, loss)
           VALUES (?, ?, ?, ?, ?)`,
        );
        for (const answer of row.answers ?? []) {
          answers.run(
            id,
            answer.distance,
            answer.answers,
            answer.correct,
            finiteOrNull(answer.loss),
          );
        }
        return id;
      })(),
    );
  }

  private insertResult(row: ResultRow): number {
    const result = this.db
      .prepare(
        `INSERT INTO results (run_id, config_id, model_type, n_params, n_input_emb_params, benchmark, split, n_ctx,
           nans, loss, ppl, token_loss, tokens, architecture, note, time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.runId ?? null,
        row.configId ?? null,
        row.modelType,
        row.nParams,
        row.nInputEmbParams,
        row.benchmark,
        row.split,
        row.nCtx,
        row.nans,
        finiteOrNull(row.loss),
        finiteOrNull(row.ppl),
        finiteOrNull(row.tokenLoss),
        row.tokens ?? null,
        row.architecture ?? null,
        row.note ?? null,
        row.time ?? Date.now(),
      );
    return Number(result.lastInsertRowid);
  }

  endRun(runId: number, status: Exclude<RunStatus, 'running'>, checkpointDir?: string): void {
    this.guard(() => {
      this.db
        .prepare(
          'UPDATE runs SET status = ?, ended_at = ?, checkpoint_dir = COALESCE(?, checkpoint_dir) WHERE id = ?',
        )
        .run(status, Date.now(), checkpointDir ?? null, runId);
    });
  }

  /** Every run, oldest first, with its last logged step. */
  listRuns(): RunSummary[] {
    return this.db
      .prepare(
        `SELECT r.id, r.name, r.status, r.preset, r.n_params AS nParams, r.backend,
           r.started_at AS startedAt, r.ended_at AS endedAt, r.heartbeat_at AS heartbeatAt,
           r.checkpoint_dir AS checkpointDir, m.step AS lastStep, m.tokens AS lastTokens,
           m.loss AS lastLoss
         FROM runs r
         LEFT JOIN metrics m
           ON m.run_id = r.id AND m.step = (SELECT MAX(step) FROM metrics WHERE run_id = r.id)
         ORDER BY r.started_at, r.id`,
      )
      .all() as RunSummary[];
  }

  /**
   * Renames run `from` to `to`; checkpoint_dir paths under `from`'s directory follow when
   * `directories` gives the old and new run directory. Returns false when there is no such run.
   */
  renameRun(from: string, to: string, directories?: { from: string; to: string }): boolean {
    return this.db.transaction(() => {
      const id = this.runId(from);
      if (id === undefined) return false;
      if (this.hasRun(to)) throw new Error(`a run named '${to}' already exists in ${this.path}`);
      this.db.prepare('UPDATE runs SET name = ? WHERE id = ?').run(to, id);
      this.db.prepare('UPDATE experiment_runs SET run_name = ? WHERE run_name = ?').run(to, from);
      if (directories) {
        const row = this.db.prepare('SELECT checkpoint_dir FROM runs WHERE id = ?').get(id) as {
          checkpoint_dir: string | null;
        };
        const dir = row.checkpoint_dir;
        if (dir !== null && (dir === directories.from || dir.startsWith(`${directories.from}/`))) {
          this.db
            .prepare('UPDATE runs SET checkpoint_dir = ? WHERE id = ?')
            .run(directories.to + dir.slice(directories.from.length), id);
        }
      }
      return true;
    })();
  }

  /**
   * Deletes run `name` with its metrics and evaluations; result rows stay, detached from it.
   * Returns false when there is no such run.
   */
  deleteRun(name: string): boolean {
    return this.db.transaction(() => {
      const id = this.runId(name);
      if (id === undefined) return false;
      this.db.prepare('UPDATE results SET run_id = NULL WHERE run_id = ?').run(id);
      this.db.prepare('DELETE FROM evals WHERE run_id = ?').run(id);
      this.db.prepare('DELETE FROM metrics WHERE run_id = ?').run(id);
      this.db.prepare('DELETE FROM runs WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM experiment_runs WHERE run_name = ?').run(name);
      return true;
    })();
  }

  /** Records an experiment (or updates its file) and returns its id. */
  saveExperiment(name: string, spec: unknown): number {
    return this.guard(() => {
      const now = Date.now();
      this.db
        .prepare(
          `INSERT INTO experiments (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
        )
        .run(name, JSON.stringify(spec), now, now);
      return (
        this.db.prepare('SELECT id FROM experiments WHERE name = ?').get(name) as { id: number }
      ).id;
    });
  }

  /** The experiment named `name`, if recorded. */
  experiment(name: string): ExperimentRecord | undefined {
    return this.guard(() => {
      const row = this.db
        .prepare(
          'SELECT id, name, spec, created_at AS createdAt, updated_at AS updatedAt FROM experiments WHERE name = ?',
        )
        .get(name) as (Omit<ExperimentRecord, 'spec'> & { spec: string }) | undefined;
      return row ? { ...row, spec: JSON.parse(row.spec) as unknown } : undefined;
    });
  }

  /** The names of every recorded experiment, oldest first. */
  experimentNames(): string[] {
    return this.guard(() =>
      (
        this.db.prepare('SELECT name FROM experiments ORDER BY created_at, id').all() as {
          name: string;
        }[]
      ).map((row) => row.name),
    );
  }

  /** The runs of an experiment, each variant x seed once. */
  experimentRuns(experimentId: number): ExperimentRunLink[] {
    return this.guard(() =>
      (
        this.db
          .prepare(
            `SELECT variant, seed, run_name AS runName, settings, n_params AS nParams,
               n_embedding_params AS nEmbeddingParams
             FROM experiment_runs WHERE experiment_id = ? ORDER BY rowid`,
          )
          .all(experimentId) as (Omit<ExperimentRunLink, 'settings'> & { settings: string })[]
      ).map((row) => ({ ...row, settings: JSON.parse(row.settings) as unknown })),
    );
  }

  /** The experiment a run belongs to (its name, variant and seed), if any. */
  experimentOfRun(
    runName: string,
  ): { experiment: string; variant: string; seed: number } | undefined {
    return this.guard(
      () =>
        this.db
          .prepare(
            `SELECT e.name AS experiment, l.variant, l.seed FROM experiment_runs l
             JOIN experiments e ON e.id = l.experiment_id WHERE l.run_name = ?`,
          )
          .get(runName) as { experiment: string; variant: string; seed: number } | undefined,
    );
  }

  /** Ties run `link.runName` to the experiment as its variant x seed (kept when already tied). */
  linkExperimentRun(experimentId: number, link: ExperimentRunLink): void {
    this.guard(() => {
      this.db
        .prepare(
          `INSERT INTO experiment_runs (experiment_id, variant, seed, run_name, settings, n_params, n_embedding_params)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (experiment_id, variant, seed) DO NOTHING`,
        )
        .run(
          experimentId,
          link.variant,
          link.seed,
          link.runName,
          JSON.stringify(link.settings),
          link.nParams,
          link.nEmbeddingParams,
        );
    });
  }

  close(): void {
    this.db.close();
  }
}
