// Builds metrics databases for tests, the browser test and the benchmark, with the trainer's real
// writer (@baka/trainer/metrics), so the viewer is always tested against the schema it will read.
import { MetricsStore } from '@baka/trainer/metrics';

export interface FixtureRun {
  id: number;
  name: string;
}

/** A smooth, noisy, decreasing loss curve, reproducible for a given seed. */
export function syntheticLoss(step: number, seed: number): number {
  const noise = Math.sin(step * 12.9898 + seed * 78.233) * 43758.5453;
  return 2.2 + 8 * Math.exp(-step / (60 + 30 * seed)) + 0.8 * (noise - Math.floor(noise) - 0.5);
}

function baseConfig(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    model: { dimModel: 256, nLayers: 4, nHeads: 4, memoryLength: 512, resetMemory: true },
    training: { learningRate: 6e-4, batchSize: 8, warmupSteps: 50, seed: 1 },
    ...overrides,
  };
}

/** Metric rows `from` <= step < `to`, one every half second of a run that started at `startTime`. */
export function writeMetricRows(
  store: MetricsStore,
  runId: number,
  from: number,
  to: number,
  seed: number,
  startTime = Date.now() - to * 500,
): void {
  const rows = [];
  for (let step = from; step < to; step++) {
    rows.push({
      step,
      tokens: (step + 1) * 4096,
      elapsed: step * 0.5,
      loss: syntheticLoss(step, seed),
      lr: 6e-4 * Math.min(1, (step + 1) / 50),
      gradNorm: 1 + 0.5 * Math.cos(step / 10),
      tokensPerSecond: 8000 + 100 * seed,
      time: startTime + step * 500,
    });
  }
  store.logMetrics(runId, rows);
}

/** Test-only: moves a run's recorded times (the writer stamps them with the current time). */
function setTimes(
  store: MetricsStore,
  runId: number,
  startedAt: number,
  endedAt: number | null,
  heartbeatAt: number,
): void {
  store.db
    .prepare('UPDATE runs SET started_at = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?')
    .run(startedAt, endedAt, heartbeatAt, runId);
}

/**
 * Three runs: `xl-reset` (finished, 300 steps), `xl-noreset` (running, fresh heartbeat, 200
 * steps) and `xl-killed` (recorded as running, heartbeat an hour old, 120 steps); validation
 * points and two results rows (xl-reset's with answer accuracy at distances 0 and 1).
 */
export function writeThreeRunFixture(path: string): { runs: FixtureRun[] } {
  const store = new MetricsStore(path);
  try {
    const reset = store.startRun({
      name: 'xl-reset',
      preset: 'tiny',
      config: baseConfig({}),
      nParams: 3_400_000,
    });
    const resetStart = Date.now() - 3 * 3_600_000;
    writeMetricRows(store, reset, 0, 300, 1, resetStart);
    for (const step of [99, 199, 299]) {
      const loss = syntheticLoss(step, 1) + 0.1;
      store.logEval(reset, {
        step,
        tokens: (step + 1) * 4096,
        elapsed: step * 0.5,
        split: 'valid',
        loss,
        tokenLoss: loss - 0.05,
        ppl: Math.exp(loss),
        nans: 0,
      });
    }
    store.endRun(reset, 'finished');
    setTimes(store, reset, resetStart, resetStart + 150_000, resetStart + 150_000);
    store.logResult({
      runId: reset,
      configId: 'xl-reset',
      modelType: 'baka-xl',
      nParams: 3_400_000,
      nInputEmbParams: 12_800_000,
      benchmark: 'tinyshakespeare',
      split: 'valid',
      nCtx: 512,
      nans: 0,
      loss: 2.61,
      ppl: Math.exp(2.61),
      tokenLoss: 2.58,
      tokens: 1_228_800,
      architecture: 'xl, memory reset',
      answers: [
        { distance: 0, answers: 40, correct: 30, loss: 0.9 },
        { distance: 1, answers: 35, correct: 7, loss: 2.1 },
      ],
    });

    const noReset = store.startRun({
      name: 'xl-noreset',
      preset: 'tiny',
      config: baseConfig({
        model: { dimModel: 256, nLayers: 4, nHeads: 4, memoryLength: 512, resetMemory: false },
      }),
      nParams: 3_400_000,
    });
    writeMetricRows(store, noReset, 0, 200, 2);
    const noResetLoss = syntheticLoss(99, 2) + 0.1;
    store.logEval(noReset, {
      step: 99,
      tokens: 409_600,
      elapsed: 49.5,
      split: 'valid',
      loss: noResetLoss,
      tokenLoss: noResetLoss - 0.05,
      ppl: Math.exp(noResetLoss),
      nans: 0,
    });
    store.logResult({
      runId: noReset,
      configId: 'xl-noreset',
      modelType: 'baka-xl',
      nParams: 3_400_000,
      nInputEmbParams: 12_800_000,
      benchmark: 'tinyshakespeare',
      split: 'valid',
      nCtx: 512,
      nans: 0,
      loss: 2.74,
      ppl: Math.exp(2.74),
      tokenLoss: 2.7,
      tokens: 819_200,
      architecture: 'xl, no reset',
    });

    const killed = store.startRun({
      name: 'xl-killed',
      preset: 'small',
      config: baseConfig({
        training: { learningRate: 3e-4, batchSize: 8, warmupSteps: 50, seed: 2 },
      }),
      nParams: 9_100_000,
    });
    const killedStart = Date.now() - 3_600_000 - 60_000;
    writeMetricRows(store, killed, 0, 120, 3, killedStart);
    setTimes(store, killed, killedStart, null, killedStart + 60_000);
    return {
      runs: [
        { id: reset, name: 'xl-reset' },
        { id: noReset, name: 'xl-noreset' },
        { id: killed, name: 'xl-killed' },
      ],
    };
  } finally {
    store.close();
  }
}

/** One finished run with `rows` metric rows, written in batches (for the benchmark). */
export function writeLargeRun(path: string, name: string, rows: number): number {
  const store = new MetricsStore(path);
  try {
    const runId = store.startRun({
      name,
      preset: 'bench',
      config: baseConfig({}),
      nParams: 3_400_000,
    });
    const batch = 50_000;
    for (let from = 0; from < rows; from += batch)
      writeMetricRows(store, runId, from, Math.min(rows, from + batch), 4);
    store.endRun(runId, 'finished');
    return runId;
  } finally {
    store.close();
  }
}
