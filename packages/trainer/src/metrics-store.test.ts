import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { METRICS_SCHEMA_VERSION, MetricsStore } from './metrics-store';
import { StorageError } from './storage-errors';

const dirs: string[] = [];
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'baka-metrics-'));
  dirs.push(dir);
  return join(dir, 'runs', 'metrics.sqlite');
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('MetricsStore', () => {
  test('records a run, its metrics, evals and results, readable by a second connection', () => {
    const path = tempDb();
    const store = new MetricsStore(path);
    const runId = store.startRun({
      name: 'r1',
      preset: 'tiny',
      config: { dim_model: 64 },
      nParams: 123,
    });
    store.logMetrics(runId, [
      {
        step: 1,
        tokens: 100,
        elapsed: 0.5,
        loss: 10.5,
        lr: 1e-3,
        gradNorm: 2,
        tokensPerSecond: 200,
      },
      { step: 2, tokens: 200, elapsed: 1, loss: Number.NaN, lr: 1e-3 },
    ]);
    store.logEval(runId, {
      step: 2,
      tokens: 200,
      elapsed: 1,
      split: 'valid',
      loss: 9,
      tokenLoss: 9.1,
      ppl: Math.exp(9),
      nans: 0,
      answers: [
        { distance: 0, answers: 40, correct: 30, loss: 0.5 },
        { distance: 2, answers: 30, correct: 1, loss: Number.NaN },
      ],
    });
    store.logResult({
      runId,
      modelType: 'baka_xl',
      nParams: 123,
      nInputEmbParams: 64,
      benchmark: 'tinyshakespeare',
      split: 'valid',
      nCtx: 128,
      nans: 0,
      loss: 9,
      ppl: Math.exp(9),
    });
    const recall = store.logResult({
      modelType: 'baka_xl',
      nParams: 123,
      nInputEmbParams: 64,
      benchmark: 'recall',
      split: 'valid',
      nCtx: 128,
      nans: 0,
      loss: 4,
      ppl: Math.exp(4),
      answers: [
        { distance: 0, answers: 8, correct: 6, loss: 0.25 },
        { distance: 1, answers: 7, correct: 0, loss: Number.POSITIVE_INFINITY },
      ],
    });

    const reader = new MetricsStore(path, { readonly: true });
    expect(
      reader.db
        .prepare(
          'SELECT step, split, distance, answers, correct, loss FROM answer_evals WHERE run_id = ?',
        )
        .all(runId),
    ).toEqual([
      { step: 2, split: 'valid', distance: 0, answers: 40, correct: 30, loss: 0.5 },
      { step: 2, split: 'valid', distance: 2, answers: 30, correct: 1, loss: null },
    ]);
    const run = reader.db.prepare('SELECT * FROM runs WHERE id = ?').get(runId) as Record<
      string,
      unknown
    >;
    expect(run.status).toBe('running');
    expect(JSON.parse(String(run.config))).toEqual({ dim_model: 64 });
    const metrics = reader.db
      .prepare('SELECT step, loss FROM metrics WHERE run_id = ? ORDER BY step')
      .all(runId);
    expect(metrics).toEqual([
      { step: 1, loss: 10.5 },
      { step: 2, loss: null },
    ]);
    expect(reader.db.prepare('SELECT COUNT(*) AS n FROM results').get()).toEqual({ n: 2 });
    // a result's answer figures sit beside it, keyed by its id (only the recall result has any)
    expect(
      reader.db
        .prepare(
          'SELECT result_id, distance, answers, correct, loss FROM result_answers ORDER BY distance',
        )
        .all(),
    ).toEqual([
      { result_id: recall, distance: 0, answers: 8, correct: 6, loss: 0.25 },
      { result_id: recall, distance: 1, answers: 7, correct: 0, loss: null },
    ]);

    store.endRun(runId, 'finished', '/tmp/ckpt');
    expect(reader.db.prepare('SELECT status, checkpoint_dir FROM runs').get()).toEqual({
      status: 'finished',
      checkpoint_dir: '/tmp/ckpt',
    });
    reader.close();
    store.close();
  });

  test('a resumed run keeps its id and a re-logged step replaces the old row', () => {
    const path = tempDb();
    const store = new MetricsStore(path);
    const id = store.startRun({ name: 'r', config: {} });
    store.logMetrics(id, { step: 5, tokens: 50, elapsed: 1, loss: 3 });
    expect(() => store.startRun({ name: 'r', config: {} })).toThrow(/already exists/);
    expect(store.startRun({ name: 'r', config: {} }, { resume: true })).toBe(id);
    store.logMetrics(id, { step: 5, tokens: 50, elapsed: 1, loss: 2 });
    expect(store.db.prepare('SELECT loss FROM metrics').all()).toEqual([{ loss: 2 }]);
    store.close();
  });

  test('lists, renames and deletes runs; results survive their run', () => {
    const path = tempDb();
    const store = new MetricsStore(path);
    const a = store.startRun({ name: 'a', config: {}, checkpointDir: '/runs/a/checkpoints/x' });
    store.logMetrics(a, [
      { step: 1, tokens: 10, elapsed: 1, loss: 5 },
      { step: 2, tokens: 20, elapsed: 2, loss: 4 },
    ]);
    store.logEval(a, {
      step: 2,
      tokens: 20,
      elapsed: 2,
      split: 'valid',
      loss: 4.5,
      tokenLoss: 4.5,
      ppl: 90,
      nans: 0,
    });
    store.endRun(a, 'finished');
    const b = store.startRun({ name: 'b', config: {} });
    const result = store.logResult({
      runId: a,
      modelType: 'baka',
      nParams: 1,
      nInputEmbParams: 1,
      benchmark: 'x',
      split: 'valid',
      nCtx: 8,
      nans: 0,
      loss: 4.5,
      ppl: 90,
    });
    expect(
      store.listRuns().map((run) => [run.name, run.status, run.lastStep, run.lastLoss]),
    ).toEqual([
      ['a', 'finished', 2, 4],
      ['b', 'running', null, null],
    ]);

    expect(() => store.renameRun('a', 'b')).toThrow(/already exists/);
    expect(store.renameRun('missing', 'c')).toBe(false);
    expect(store.renameRun('a', 'c', { from: '/runs/a', to: '/runs/c' })).toBe(true);
    expect(store.runId('c')).toBe(a);
    expect(store.hasRun('a')).toBe(false);
    expect(store.listRuns()[0]).toMatchObject({
      name: 'c',
      checkpointDir: '/runs/c/checkpoints/x',
    });

    expect(store.deleteRun('c')).toBe(true);
    expect(store.deleteRun('c')).toBe(false);
    expect(store.listRuns().map((run) => run.id)).toEqual([b]);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM metrics').get()).toEqual({ n: 0 });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM evals').get()).toEqual({ n: 0 });
    expect(store.db.prepare('SELECT run_id FROM results WHERE id = ?').get(result)).toEqual({
      run_id: null,
    });
    store.close();
  });
});

describe('MetricsStore experiments', () => {
  test('a version 1 database gains the experiment tables in place, keeping its runs', () => {
    const path = tempDb();
    const old = new MetricsStore(path);
    const runId = old.startRun({ name: 'before', config: {} });
    old.logMetrics(runId, { step: 1, tokens: 10, elapsed: 1, loss: 3 });
    // what a version 1 trainer left: no experiment tables, version 1
    old.db.exec(
      "DROP TABLE result_answers; DROP TABLE answer_evals; DROP TABLE experiment_runs; DROP TABLE experiments; UPDATE meta SET value = '1' WHERE key = 'schema_version'",
    );
    old.close();
    const store = new MetricsStore(path);
    expect(store.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({
      value: String(METRICS_SCHEMA_VERSION),
    });
    expect(METRICS_SCHEMA_VERSION).toBe(4);
    expect(store.listRuns().map((run) => [run.name, run.lastLoss])).toEqual([['before', 3]]);
    const id = store.saveExperiment('e', { variants: [] });
    expect(store.experiment('e')).toMatchObject({ id, name: 'e', spec: { variants: [] } });
    store.close();
  });

  test('a newer version is never lowered', () => {
    const path = tempDb();
    const store = new MetricsStore(path);
    store.db.prepare("UPDATE meta SET value = '7' WHERE key = 'schema_version'").run();
    store.close();
    const again = new MetricsStore(path);
    expect(again.db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({
      value: '7',
    });
    again.close();
  });

  test('links runs to an experiment; rename and delete keep the links right', () => {
    const store = new MetricsStore(tempDb());
    const id = store.saveExperiment('e', { v: 1 });
    expect(store.saveExperiment('e', { v: 2 })).toBe(id);
    expect(store.experiment('e')!.spec).toEqual({ v: 2 });
    const link = {
      variant: 'a',
      seed: 0,
      runName: 'e.a.s0',
      settings: { model: { n_layers: 2 } },
      nParams: 10,
      nEmbeddingParams: 4,
    };
    store.linkExperimentRun(id, link);
    store.linkExperimentRun(id, { ...link, runName: 'other' }); // already tied: kept
    store.linkExperimentRun(id, { ...link, variant: 'b', runName: 'e.b.s0' });
    expect(store.experimentRuns(id).map((row) => row.runName)).toEqual(['e.a.s0', 'e.b.s0']);
    expect(store.experimentRuns(id)[0]).toEqual(link);
    store.startRun({ name: 'e.a.s0', config: {} });
    expect(store.renameRun('e.a.s0', 'kept')).toBe(true);
    expect(store.experimentOfRun('kept')).toEqual({ experiment: 'e', variant: 'a', seed: 0 });
    expect(store.deleteRun('kept')).toBe(true);
    expect(store.experimentOfRun('kept')).toBeUndefined();
    expect(store.experimentRuns(id).map((row) => row.runName)).toEqual(['e.b.s0']);
    expect(store.experimentNames()).toEqual(['e']);
    store.close();
  });
});

describe('MetricsStore failures name the database and the problem', () => {
  test('missing, a directory, not a database, corrupted after use', () => {
    const missing = tempDb();
    expect(() => new MetricsStore(missing, { readonly: true })).toThrow(
      `metrics database ${missing}: its directory does not exist`,
    );
    mkdirSync(join(missing, '..'));
    expect(() => new MetricsStore(missing, { readonly: true })).toThrow(
      `metrics database ${missing}: the file or its directory does not exist (SQLITE_CANTOPEN)`,
    );
    const directory = tempDb();
    mkdirSync(directory, { recursive: true });
    expect(() => new MetricsStore(directory)).toThrow(
      /: it is a directory where the database file is needed \(SQLITE_CANTOPEN\)$/,
    );
    const garbage = tempDb();
    mkdirSync(join(garbage, '..'), { recursive: true });
    writeFileSync(garbage, Buffer.alloc(4096, 7));
    for (const readonly of [false, true]) {
      expect(() => new MetricsStore(garbage, { readonly })).toThrow(
        /: not a SQLite database \(corrupt, or another kind of file\); move it aside to start a new one \(SQLITE_NOTADB\)$/,
      );
    }
    // A database used, then damaged: the next open names it (the run can be marked nowhere).
    const damaged = tempDb();
    const store = new MetricsStore(damaged);
    store.startRun({ name: 'r', config: {} });
    store.close();
    writeFileSync(damaged, Buffer.alloc(8192, 7));
    let thrown: unknown;
    try {
      new MetricsStore(damaged).close();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StorageError);
    expect((thrown as StorageError).exitCode).toBe(1);
    expect((thrown as Error).message).toMatch(new RegExp(`^metrics database ${damaged}: `));
  });
});
