import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenDocumentsFromArrays } from '@baka/data';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, loadTrainingCheckpoint } from './checkpoint';
import { MetricsStore } from './metrics-store';
import { tinyDocuments, tinyModel, tinyOptions } from './test-helpers';
import { NonFiniteTrainingError, TrainingSession } from './training-session';
import type { TrainingOptionsInput } from './training-options';

const documents = tinyDocuments();

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'baka-session-'));
}

async function runSession(
  runDir: string,
  options: Partial<TrainingOptionsInput>,
  store?: MetricsStore,
) {
  const model = tinyModel(1);
  const session = new TrainingSession({
    model,
    documents,
    options: tinyOptions(options),
    runDir,
    store: store ?? null,
  });
  const summary = await session.run();
  const weights = new Map(
    [...model.parameters].map(([name, v]) => [name, Array.from(v.dataSync())]),
  );
  session.dispose();
  model.dispose();
  return { summary, weights };
}

describe('TrainingSession budgets and evaluation split', () => {
  it('maxTokens stops at the first step that reaches the token budget', async () => {
    const store = new MetricsStore(join(tempDir(), 'metrics.sqlite'));
    const straight = await runSession(tempDir(), { maxSteps: 6, runName: 'straight' }, store);
    const tokens = (
      store.db.prepare('SELECT tokens FROM metrics ORDER BY step').all() as { tokens: number }[]
    ).map((row) => row.tokens);
    store.close();
    const budget = tokens[2]! - 1; // reached during step 3
    const { summary } = await runSession(tempDir(), { maxTokens: budget });
    expect(summary.reason).toBe('max-tokens');
    expect(summary.steps).toBe(3);
    expect(summary.tokens).toBe(tokens[2]);
    expect(summary.losses).toEqual(straight.summary.losses.slice(0, 3));
  });

  it('evalSplit chooses the split the evaluations score and records it', async () => {
    const arrays = Array.from({ length: 16 }, (_, d) => Array.from(documents.document(d)));
    const split = tokenDocumentsFromArrays(arrays, {
      splits: {
        train: { start: 0, end: 10 },
        valid: { start: 10, end: 13 },
        test: { start: 13, end: 16 },
      },
    });
    const store = new MetricsStore(join(tempDir(), 'metrics.sqlite'));
    const scored: Record<string, number> = {};
    for (const evalSplit of ['valid', 'test'] as const) {
      const model = tinyModel(1);
      const session = new TrainingSession({
        model,
        documents: split,
        options: tinyOptions({ maxSteps: 2, evalSplit, runName: evalSplit }),
        runDir: tempDir(),
        store,
      });
      const summary = await session.run();
      expect(summary.evaluations.map((entry) => entry.result.split)).toEqual([evalSplit]);
      expect(summary.evaluations[0]!.result.documents).toBe(3);
      scored[evalSplit] = summary.evaluations[0]!.result.loss;
      session.dispose();
      model.dispose();
    }
    expect(scored.valid).not.toBeCloseTo(scored.test!, 4);
    expect(
      store.db
        .prepare(
          'SELECT r.name, e.split FROM evals e JOIN runs r ON r.id = e.run_id ORDER BY r.name',
        )
        .all(),
    ).toEqual([
      { name: 'test', split: 'test' },
      { name: 'valid', split: 'valid' },
    ]);
    store.close();
  });
});

describe('TrainingSession', () => {
  for (const [label, extra] of [
    ['', {}],
    [' (carried memory, saved mid-pass)', { carryMemory: true, window: 8 }],
  ] as const) {
    it(`resume continues exactly: 6 steps straight = 3 steps + resume 3 steps${label}`, async () => {
      const straight = await runSession(tempDir(), { ...extra, maxSteps: 6 });
      expect(straight.summary.losses).toHaveLength(6);

      const runDir = tempDir();
      const first = await runSession(runDir, { ...extra, maxSteps: 3 });
      expect(first.summary.losses).toEqual(straight.summary.losses.slice(0, 3));
      const checkpoint = await loadTrainingCheckpoint(
        listCheckpoints(join(runDir, 'checkpoints')).at(-1)!.dir,
      );
      expect(checkpoint.state.step).toBe(3);
      if ('carryMemory' in extra) expect(checkpoint.state.position.window).toBeGreaterThan(0);
      const resumed = new TrainingSession({
        model: checkpoint.model,
        documents,
        options: tinyOptions({ ...extra, maxSteps: 6 }),
        runDir,
        resume: { dir: checkpoint.dir, state: checkpoint.state },
      });
      const rest = await resumed.run();
      expect(rest.sessionSteps).toBe(3);
      expect(rest.losses).toEqual(straight.summary.losses.slice(3));
      for (const [name, values] of straight.weights) {
        expect(Array.from(checkpoint.model.parameters.get(name)!.dataSync())).toEqual(values);
      }
      expect(rest.tokens).toBe(straight.summary.tokens);
      resumed.dispose();
      checkpoint.model.dispose();
    });
  }

  it('loss falls on a repeated corpus, and metrics + evals reach the store', async () => {
    const dir = tempDir();
    const store = new MetricsStore(join(dir, 'metrics.sqlite'));
    const { summary } = await runSession(
      join(dir, 'run'),
      { epochs: 4, evalEvery: 10, learningRate: 1e-2 },
      store,
    );
    expect(summary.reason).toBe('finished');
    expect(summary.finalLoss!).toBeLessThan(summary.firstLoss! - 0.3);
    const rows = store.db.prepare('SELECT step, loss, tokens FROM metrics ORDER BY step').all() as {
      step: number;
    }[];
    expect(rows).toHaveLength(summary.steps);
    const evals = store.db
      .prepare('SELECT step, loss, ppl, nans FROM evals ORDER BY step')
      .all() as {
      loss: number;
      ppl: number;
    }[];
    expect(evals.length).toBeGreaterThanOrEqual(2);
    expect(evals.at(-1)!.ppl).toBeCloseTo(Math.exp(evals.at(-1)!.loss), 3);
    expect(evals.at(-1)!.loss).toBeLessThan(evals[0]!.loss);
    const run = store.db.prepare('SELECT status, checkpoint_dir FROM runs').get() as {
      status: string;
      checkpoint_dir: string;
    };
    expect(run.status).toBe('finished');
    expect(run.checkpoint_dir).toBe(summary.checkpoint);
    store.close();
  });

  it('carried memory reaches the next window (losses change after the first window of a pass)', async () => {
    const plain = await runSession(tempDir(), { maxSteps: 4, window: 8 });
    const carried = await runSession(tempDir(), { maxSteps: 4, window: 8, carryMemory: true });
    expect(carried.summary.losses[0]).toBe(plain.summary.losses[0]);
    expect(carried.summary.losses.slice(1)).not.toEqual(plain.summary.losses.slice(1));
  });

  it('keeps the last K checkpoints', async () => {
    const runDir = tempDir();
    await runSession(runDir, { maxSteps: 7, saveEvery: 2, keep: 2 });
    expect(listCheckpoints(join(runDir, 'checkpoints')).map((c) => c.step)).toEqual([6, 7]);
  });

  it('stops on NaN losses after N in a row, saving the last good checkpoint', async () => {
    const dir = tempDir();
    const store = new MetricsStore(join(dir, 'metrics.sqlite'));
    const model = tinyModel(1);
    model.parameters.get('norm_out.bias')!.assign(tf.fill([16], Number.NaN));
    const session = new TrainingSession({
      model,
      documents,
      options: tinyOptions({ maxBadSteps: 3 }),
      runDir: join(dir, 'run'),
      store,
    });
    await expect(session.run()).rejects.toThrow(NonFiniteTrainingError);
    await expect(
      new TrainingSession({
        model,
        documents,
        options: tinyOptions({ runName: 'b', maxBadSteps: 3 }),
        runDir: join(dir, 'b'),
      }).run(),
    ).rejects.toThrow(/3 steps in a row had a NaN\/Inf loss.*last good weights are saved in/);
    expect(session.state.skippedSteps).toBe(3);
    expect(session.state.step).toBe(0);
    expect(listCheckpoints(join(dir, 'run', 'checkpoints'))).toHaveLength(1);
    expect((store.db.prepare('SELECT status FROM runs').get() as { status: string }).status).toBe(
      'failed',
    );
    store.close();
    session.dispose();
    model.dispose();
  });

  it('stops cleanly when asked (Ctrl-C), with a checkpoint of where it stopped', async () => {
    const runDir = tempDir();
    const model = tinyModel(1);
    const session = new TrainingSession({
      model,
      documents,
      options: tinyOptions({ maxSteps: 20, evalAtEnd: true }),
      runDir,
    });
    const summary = await session.run({
      onStep: (step) => (step.step === 2 ? session.requestStop() : undefined),
    });
    expect(summary.reason).toBe('interrupted');
    expect(summary.steps).toBe(2);
    expect(summary.evaluations).toEqual([]); // Ctrl-C skips the end-of-run evaluation
    expect(listCheckpoints(join(runDir, 'checkpoints')).map((c) => c.step)).toEqual([2]);
    session.dispose();
    model.dispose();
  });

  it('packed mode, carried memory and accumulation train without leaking tensors', async () => {
    for (const options of [
      { mode: 'packed' as const, window: 12, batchSize: 2 },
      { carryMemory: true, window: 8 },
      { accumulate: 2 },
    ]) {
      const model = tinyModel(2);
      // The first run fills the model's rotary-table and mask caches for these shapes.
      const warmup = new TrainingSession({
        model,
        documents,
        options: tinyOptions({ ...options, maxSteps: 5 }),
        runDir: tempDir(),
      });
      await warmup.run();
      warmup.dispose();
      const before = tf.memory().numTensors;
      const session = new TrainingSession({
        model,
        documents,
        options: tinyOptions({ ...options, maxSteps: 5 }),
        runDir: tempDir(),
      });
      const summary = await session.run();
      expect(summary.steps).toBe(5);
      expect(summary.losses.every(Number.isFinite)).toBe(true);
      session.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    }
  });

  it('optimizerInLatestOnly keeps optimizer.safetensors in the newest checkpoint only', async () => {
    const runDir = tempDir();
    await runSession(runDir, { maxSteps: 3, saveEvery: 1, keep: 3, optimizerInLatestOnly: true });
    const checkpoints = listCheckpoints(join(runDir, 'checkpoints'));
    expect(checkpoints.map((checkpoint) => checkpoint.step)).toEqual([1, 2, 3]);
    expect(
      checkpoints.map((checkpoint) => existsSync(join(checkpoint.dir, 'optimizer.safetensors'))),
    ).toEqual([false, false, true]);
    const older = await loadTrainingCheckpoint(checkpoints[0]!.dir);
    expect(older.state.step).toBe(1);
    older.model.dispose();
    const all = tempDir();
    await runSession(all, { maxSteps: 2, saveEvery: 1, keep: 3 });
    for (const checkpoint of listCheckpoints(join(all, 'checkpoints'))) {
      expect(existsSync(join(checkpoint.dir, 'optimizer.safetensors'))).toBe(true);
    }
  });
});
