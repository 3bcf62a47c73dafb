import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MetricsStore } from '@baka/trainer/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticLoss, writeMetricRows, writeThreeRunFixture } from './fixture-database';
import type { RunSummary, SeriesResponse } from './metrics-reader';
import { startViewerServer, type ViewerServer } from './server';

const directory = mkdtempSync(join(tmpdir(), 'metrics-viewer-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function getJson<T>(
  server: ViewerServer,
  path: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(new URL(path, server.url));
  return { status: response.status, body: (await response.json()) as T };
}

describe('API over a three-run fixture database', () => {
  const path = join(directory, 'three.sqlite');
  const databasePath = path;
  let server: ViewerServer;
  let ids: Record<string, number>;

  beforeAll(async () => {
    const { runs } = writeThreeRunFixture(path);
    ids = Object.fromEntries(runs.map((run) => [run.name, run.id]));
    server = await startViewerServer({ databasePath: path, port: 0 });
  });
  afterAll(() => server.close());

  it('binds to 127.0.0.1 by default and prints a URL there', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it('lists the runs with their summaries; a running run with an old heartbeat is stopped', async () => {
    const { status, body } = await getJson<{ database: { state: string }; runs: RunSummary[] }>(
      server,
      '/api/runs',
    );
    expect(status).toBe(200);
    expect(body.database.state).toBe('ready');
    const byName = new Map(body.runs.map((run) => [run.name, run]));
    expect([...byName.keys()].sort()).toEqual(['xl-killed', 'xl-noreset', 'xl-reset']);
    const reset = byName.get('xl-reset')!;
    expect(reset).toMatchObject({
      status: 'finished',
      interrupted: false,
      preset: 'tiny',
      nParams: 3_400_000,
    });
    expect(reset.steps).toBe(299);
    expect(reset.tokens).toBe(300 * 4096);
    expect(reset.metricRows).toBe(300);
    const expectedBest = Math.min(
      ...Array.from({ length: 300 }, (_, step) => syntheticLoss(step, 1)),
    );
    expect(reset.bestLoss).toBeCloseTo(expectedBest, 12);
    expect(reset.durationSeconds).toBeCloseTo(150, 0);
    expect((reset.config as { model: { resetMemory: boolean } }).model.resetMemory).toBe(true);
    // The newest run is counted from its cached columns, the others with SQL: same answers.
    const noReset = byName.get('xl-noreset')!;
    expect(noReset).toMatchObject({ status: 'running', interrupted: false, steps: 199 });
    expect(noReset.tokens).toBe(200 * 4096);
    expect(noReset.metricRows).toBe(200);
    const expectedNoResetBest = Math.min(
      ...Array.from({ length: 200 }, (_, step) => syntheticLoss(step, 2)),
    );
    expect(noReset.bestLoss).toBeCloseTo(expectedNoResetBest, 12);
    expect(byName.get('xl-killed')).toMatchObject({
      status: 'stopped',
      interrupted: true,
      steps: 119,
    });
    expect(byName.get('xl-killed')!.durationSeconds).toBeCloseTo(60, 0);
  });

  it('returns a whole series at full resolution when it fits', async () => {
    const { body } = await getJson<SeriesResponse>(
      server,
      `/api/runs/${ids['xl-reset']}/series?metric=loss&x=step`,
    );
    expect(body.downsampled).toBe(false);
    expect(body.rowsInRange).toBe(300);
    expect(body.xs).toEqual(Array.from({ length: 300 }, (_, step) => step));
    expect(body.ys[42]).toBeCloseTo(syntheticLoss(42, 1), 12);
    expect(body.means).toBeUndefined();
    expect(body.lastStep).toBe(299);
  });

  it('downsamples with LTTB to the requested number of points, keeping both ends', async () => {
    const { body } = await getJson<SeriesResponse>(
      server,
      `/api/runs/${ids['xl-reset']}/series?points=40`,
    );
    expect(body.downsampled).toBe(true);
    expect(body.xs.length).toBe(40);
    expect(body.xs[0]).toBe(0);
    expect(body.xs[39]).toBe(299);
    expect(body.ys[10]).toBeCloseTo(syntheticLoss(body.xs[10]!, 1), 12);
    // Bucket means: 298 inner rows in 38 buckets; the first and last point stand alone.
    expect(body.means!.length).toBe(40);
    expect(body.means![0]).toBe(body.ys[0]);
    const size = 298 / 38;
    const start = Math.floor(size) + 1;
    const end = Math.floor(2 * size) + 1;
    const expected = Array.from({ length: end - start }, (_, offset) =>
      syntheticLoss(start + offset, 1),
    );
    expect(body.means![2]).toBeCloseTo(expected.reduce((a, b) => a + b, 0) / expected.length, 12);
  });

  it('returns a zoomed range at full resolution, against tokens and wall time too', async () => {
    const runId = ids['xl-reset'];
    const byStep = await getJson<SeriesResponse>(
      server,
      `/api/runs/${runId}/series?from=100&to=149.5&points=40`,
    );
    expect(byStep.body.downsampled).toBe(true);
    const fits = await getJson<SeriesResponse>(
      server,
      `/api/runs/${runId}/series?from=100&to=149.5&points=50`,
    );
    expect(fits.body.downsampled).toBe(false);
    expect(fits.body.xs).toEqual(Array.from({ length: 50 }, (_, offset) => 100 + offset));
    const byTokens = await getJson<SeriesResponse>(
      server,
      `/api/runs/${runId}/series?x=tokens&metric=lr&from=${10 * 4096}&to=${20 * 4096}`,
    );
    expect(byTokens.body.xs).toEqual(
      Array.from({ length: 11 }, (_, offset) => (10 + offset) * 4096),
    );
    expect(byTokens.body.ys[0]).toBeCloseTo(6e-4 * (10 / 50), 15);
    const byTime = await getJson<SeriesResponse>(
      server,
      `/api/runs/${runId}/series?x=elapsed&metric=grad_norm&from=0&to=2`,
    );
    expect(byTime.body.xs).toEqual([0, 0.5, 1, 1.5, 2]);
  });

  it('returns only rows after a step, and picks up rows written while it runs', async () => {
    const runId = ids['xl-noreset']!;
    const before = await getJson<SeriesResponse>(server, `/api/runs/${runId}/series?afterStep=195`);
    expect(before.body.xs).toEqual([196, 197, 198, 199]);
    const store = new MetricsStore(path);
    writeMetricRows(store, runId, 200, 210, 2);
    store.close();
    const after = await getJson<SeriesResponse>(server, `/api/runs/${runId}/series?afterStep=199`);
    expect(after.body.xs).toEqual(Array.from({ length: 10 }, (_, offset) => 200 + offset));
    expect(after.body.lastStep).toBe(209);
    const runs = await getJson<{ runs: RunSummary[] }>(server, '/api/runs');
    const updated = runs.body.runs.find((run) => run.id === runId)!;
    expect(updated.steps).toBe(209);
    expect(updated.metricRows).toBe(210);
    expect(updated.tokens).toBe(210 * 4096);
  });

  it('sees rewritten history when a run resumes and logs its last steps again', async () => {
    const runId = ids['xl-killed']!;
    const first = await getJson<SeriesResponse>(server, `/api/runs/${runId}/series`);
    expect(first.body.ys[119]).toBeCloseTo(syntheticLoss(119, 3), 12);
    const store = new MetricsStore(path);
    store.startRun({ name: 'xl-killed', config: {} }, { resume: true });
    // Resumed from a step-100 checkpoint: steps 100..129 are logged again with new values.
    writeMetricRows(store, runId, 100, 130, 9);
    store.close();
    const second = await getJson<SeriesResponse>(server, `/api/runs/${runId}/series`);
    expect(second.body.xs.length).toBe(130);
    expect(second.body.ys[110]).toBeCloseTo(syntheticLoss(110, 9), 12);
    expect(second.body.ys[99]).toBeCloseTo(syntheticLoss(99, 3), 12);
  });

  it('serves validation points and results', async () => {
    const evals = await getJson<{ evals: { step: number; split: string; loss: number }[] }>(
      server,
      `/api/runs/${ids['xl-reset']}/evals`,
    );
    expect(evals.body.evals.map((point) => point.step)).toEqual([99, 199, 299]);
    expect(evals.body.evals[0]!.split).toBe('valid');
    const newer = await getJson<{ evals: unknown[] }>(
      server,
      `/api/runs/${ids['xl-reset']}/evals?afterStep=199`,
    );
    expect(newer.body.evals.length).toBe(1);
    const results = await getJson<{
      results: {
        runName: string;
        benchmark: string;
        loss: number;
        answers: { distance: number; answers: number; correct: number }[];
      }[];
    }>(server, '/api/results');
    expect(results.body.results.map((row) => row.runName).sort()).toEqual([
      'xl-noreset',
      'xl-reset',
    ]);
    expect(results.body.results.find((row) => row.runName === 'xl-reset')!.loss).toBe(2.61);
    const answers = Object.fromEntries(
      results.body.results.map((row) => [row.runName, row.answers]),
    );
    expect(answers).toEqual({
      'xl-reset': [
        { distance: 0, answers: 40, correct: 30 },
        { distance: 1, answers: 35, correct: 7 },
      ],
      'xl-noreset': [],
    });
  });

  it.each([
    ['/api/runs/abc/series', 'run id: must be an integer'],
    ['/api/runs/0/series', 'run id: must be >= 1'],
    ['/api/runs/-3/evals', 'run id: must be >= 1'],
    ['/api/runs/1%3B%20DROP%20TABLE%20runs/series', 'run id: must be an integer'],
    [
      '/api/runs/1/series?metric=perplexity',
      'metric: must be one of loss, lr, grad_norm, tokens_per_second',
    ],
    ['/api/runs/1/series?x=epoch', 'x: must be one of step, tokens, elapsed'],
    ['/api/runs/1/series?from=abc', 'from: must be a finite number'],
    ['/api/runs/1/series?from=Infinity', 'from: must be a finite number'],
    ['/api/runs/1/series?from=10&to=5', 'from: from must be <= to'],
    ['/api/runs/1/series?points=5', 'points: must be >= 10'],
    ['/api/runs/1/series?points=1000000', 'points: must be <= 20000'],
    ['/api/runs/1/series?points=2.5', 'points: must be an integer'],
    ['/api/runs/1/series?afterStep=-2', 'afterStep: must be >= -1'],
    ['/api/runs/1/series?limit=3', 'unknown parameter(s): limit'],
    ['/api/runs/1/evals?afterStep=x', 'afterStep: must be an integer'],
    ['/api/runs?name=x', 'unknown parameter(s): name'],
  ])('rejects %s with a 400 naming the parameter', async (path, message) => {
    const { status, body } = await getJson<{ error: string }>(server, path);
    expect(status).toBe(400);
    expect(body.error).toContain(message);
  });

  it('answers 404 for unknown runs and endpoints', async () => {
    expect((await getJson<{ error: string }>(server, '/api/runs/999/series')).body.error).toBe(
      'run 999 not found',
    );
    expect((await getJson(server, '/api/runs/999/evals')).status).toBe(404);
    expect((await getJson(server, '/api/nothing')).status).toBe(404);
  });

  it('serves only its own assets: no files by path, no traversal', async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js">');
    const script = await fetch(new URL('/assets/app.js', server.url));
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect((await script.text()).length).toBeGreaterThan(10_000);
    const css = await fetch(new URL('/assets/app.css', server.url));
    expect(await css.text()).toContain('.uplot');
    for (const path of [
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/../src/main.ts',
      '/src/main.ts',
      '/package.json',
      '/node_modules/uplot/package.json',
      '/assets/',
      `/${encodeURIComponent(databasePath)}`,
    ]) {
      const response = await fetch(new URL(path, server.url));
      expect(response.status, path).toBe(404);
      expect(await response.text()).not.toContain('"name"');
    }
  });

  it('refuses requests for another host name (DNS rebinding) when bound to loopback', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const outgoing = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/api/runs',
          headers: { host: 'attacker.example' },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
    expect(status).toBe(403);
  });

  it('rejects writes: only GET is served', async () => {
    const response = await fetch(new URL('/api/runs', server.url), { method: 'POST', body: '{}' });
    expect(response.status).toBe(404);
  });
});

describe('read-only access and concurrent writers', () => {
  it('never changes the database file it reads', async () => {
    const path = join(directory, 'untouched.sqlite');
    writeThreeRunFixture(path);
    const hash = () => createHash('sha256').update(readFileSync(path)).digest('hex');
    const before = hash();
    const server = await startViewerServer({ databasePath: path, port: 0 });
    try {
      await getJson(server, '/api/runs');
      await getJson(server, '/api/runs/1/series?points=20');
      await getJson(server, '/api/runs/1/evals');
      await getJson(server, '/api/results');
    } finally {
      await server.close();
    }
    expect(hash()).toBe(before);
  });

  it('answers every request while another process writes rows', async () => {
    const path = join(directory, 'concurrent.sqlite');
    const { runs } = writeThreeRunFixture(path);
    const runId = runs[1]!.id;
    const server = await startViewerServer({ databasePath: path, port: 0 });
    try {
      const writerScript = fileURLToPath(
        new URL('./__fixtures__/concurrent-writer.ts', import.meta.url),
      );
      const writer = spawn(
        process.execPath,
        [
          '--conditions=@baka/source',
          '--import',
          'tsx',
          writerScript,
          path,
          String(runId),
          '200',
          '2500',
          // At most 15,000 rows: the final read below asks for every row at full resolution
          // (the API's limit is 20,000 points), however fast this machine writes.
          '15000',
        ],
        {
          cwd: fileURLToPath(new URL('..', import.meta.url)),
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let output = '';
      writer.stdout.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise<number>((resolve) =>
        writer.on('exit', (code) => resolve(code ?? -1)),
      );
      let finished = false;
      void exited.then(() => {
        finished = true;
      });
      let lastStep = 199;
      let requests = 0;
      while (!finished) {
        const series = await getJson<SeriesResponse>(
          server,
          `/api/runs/${runId}/series?points=500`,
        );
        const list = await getJson<{ runs: RunSummary[] }>(server, '/api/runs');
        expect(series.status).toBe(200);
        expect(list.status).toBe(200);
        expect(series.body.lastStep!).toBeGreaterThanOrEqual(lastStep);
        lastStep = series.body.lastStep!;
        requests++;
      }
      expect(await exited).toBe(0);
      const written = Number(output.trim());
      expect(written).toBeGreaterThan(1000);
      expect(requests).toBeGreaterThan(3);
      const final = await getJson<SeriesResponse>(server, `/api/runs/${runId}/series?points=20000`);
      expect(final.body.lastStep).toBe(written);
      expect(final.body.rowsInRange).toBe(written + 1);
      expect(final.body.downsampled).toBe(false);
      expect(final.body.xs.every((x, index) => x === index)).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('a locked database', () => {
  it('waits for a writer holding an exclusive lock instead of failing the request', async () => {
    const path = join(directory, 'locked.sqlite');
    const { runs } = writeThreeRunFixture(path);
    const server = await startViewerServer({ databasePath: path, port: 0, warm: false });
    try {
      const script = fileURLToPath(new URL('./__fixtures__/exclusive-lock.ts', import.meta.url));
      const locker = spawn(process.execPath, ['--import', 'tsx', script, path, '1500'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<number>((resolve) =>
        locker.on('exit', (code) => resolve(code ?? -1)),
      );
      await new Promise<void>((resolve) => locker.stdout.once('data', () => resolve()));
      const start = Date.now();
      const { status, body } = await getJson<SeriesResponse>(
        server,
        `/api/runs/${runs[0]!.id}/series`,
      );
      const waited = Date.now() - start;
      expect(status).toBe(200);
      expect(body.rowsInRange).toBe(300);
      // It could only answer once the lock was released.
      expect(waited).toBeGreaterThan(500);
      expect(await exited).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('answers 503 naming the file when the lock outlasts every retry', async () => {
    const path = join(directory, 'locked-long.sqlite');
    writeThreeRunFixture(path);
    const server = await startViewerServer({ databasePath: path, port: 0, warm: false });
    try {
      const script = fileURLToPath(new URL('./__fixtures__/exclusive-lock.ts', import.meta.url));
      const locker = spawn(process.execPath, ['--import', 'tsx', script, path, '9000'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<number>((resolve) =>
        locker.on('exit', (code) => resolve(code ?? -1)),
      );
      await new Promise<void>((resolve) => locker.stdout.once('data', () => resolve()));
      const { status, body } = await getJson<{ error: string }>(server, '/api/runs');
      expect(status).toBe(503);
      expect(body.error).toBe(`${path} stayed locked by another process; try again`);
      locker.kill();
      await exited;
    } finally {
      await server.close();
    }
  });
});

describe('step layouts', () => {
  it('reads runs logged every n-th step, with irregular steps, and with one row', async () => {
    const path = join(directory, 'layouts.sqlite');
    const store = new MetricsStore(path);
    const layouts: Record<string, number[]> = {
      'every-10th': Array.from({ length: 50 }, (_, index) => 5 + index * 10),
      irregular: [0, 10, 20, 35, 40, 50],
      'off-grid-same-count': [0, 10, 15, 30],
      single: [7],
    };
    const ids: Record<string, number> = {};
    for (const [name, steps] of Object.entries(layouts)) {
      ids[name] = store.startRun({ name, config: {} });
      store.logMetrics(
        ids[name]!,
        steps.map((step) => ({
          step,
          tokens: step * 100,
          elapsed: step / 10,
          loss: 1 + step / 1000,
        })),
      );
    }
    store.close();
    const server = await startViewerServer({ databasePath: path, port: 0, warm: false });
    try {
      for (const [name, steps] of Object.entries(layouts)) {
        const { body } = await getJson<SeriesResponse>(server, `/api/runs/${ids[name]}/series`);
        expect(body.xs, name).toEqual(steps);
        expect(body.ys, name).toEqual(steps.map((step) => 1 + step / 1000));
        const tokens = await getJson<SeriesResponse>(
          server,
          `/api/runs/${ids[name]}/series?x=tokens&afterStep=6`,
        );
        expect(tokens.body.xs, name).toEqual(
          steps.filter((step) => step > 6).map((step) => step * 100),
        );
      }
    } finally {
      await server.close();
    }
  });
});

describe('missing and empty databases', () => {
  it('reports a missing database as an empty state, then shows runs once it appears', async () => {
    const path = join(directory, 'later', 'metrics.sqlite');
    const server = await startViewerServer({ databasePath: path, port: 0 });
    try {
      const missing = await getJson<{
        database: { state: string; path: string };
        startCommand: string;
        runs: [];
      }>(server, '/api/runs');
      expect(missing.status).toBe(200);
      expect(missing.body).toMatchObject({
        database: { state: 'missing', path },
        startCommand: 'pnpm --filter cli train',
        runs: [],
      });
      expect((await getJson(server, '/api/results')).body).toEqual({ results: [] });
      expect((await getJson(server, '/api/runs/1/series')).status).toBe(404);
      expect((await fetch(server.url)).status).toBe(200);
      writeThreeRunFixture(path);
      const ready = await getJson<{ database: { state: string }; runs: unknown[] }>(
        server,
        '/api/runs',
      );
      expect(ready.body.database.state).toBe('ready');
      expect(ready.body.runs.length).toBe(3);
    } finally {
      await server.close();
    }
  });

  it('reports a database with no runs, and a zero-byte file, as empty', async () => {
    const path = join(directory, 'empty.sqlite');
    new MetricsStore(path).close();
    const zeroBytes = join(directory, 'zero.sqlite');
    writeFileSync(zeroBytes, '');
    for (const databasePath of [path, zeroBytes]) {
      const server = await startViewerServer({ databasePath, port: 0 });
      try {
        const { status, body } = await getJson<{ database: { state: string }; runs: [] }>(
          server,
          '/api/runs',
        );
        expect(status).toBe(200);
        expect(body.database.state).toBe('empty');
        expect(body.runs).toEqual([]);
        expect((await getJson(server, '/api/runs/1/evals')).status).toBe(404);
      } finally {
        await server.close();
      }
    }
  });
});

describe('ports', () => {
  it('falls back to a free port when the requested one is taken', async () => {
    const path = join(directory, 'ports.sqlite');
    const first = await startViewerServer({ databasePath: path, port: 0 });
    try {
      const second = await startViewerServer({ databasePath: path, port: first.port });
      try {
        expect(second.portChanged).toBe(true);
        expect(second.port).not.toBe(first.port);
        expect((await fetch(second.url)).status).toBe(200);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });
});

describe('experiments API', () => {
  it('lists experiments and serves one with its runs, report and seed-band curves', async () => {
    const path = join(directory, 'experiments.sqlite');
    const store = new MetricsStore(path);
    const id = store.saveExperiment('cmp', {
      name: 'cmp',
      variants: [{ name: 'a' }, { name: 'b' }],
      seeds: [0, 1],
      eval: { split: 'valid' },
      report: { lastSteps: 2 },
    });
    for (const [variant, level] of [
      ['a', 0],
      ['b', 1],
    ] as const) {
      for (const seed of [0, 1]) {
        const name = `cmp.${variant}.s${seed}`;
        store.linkExperimentRun(id, {
          variant,
          seed,
          runName: name,
          settings: {},
          nParams: 10,
          nEmbeddingParams: 4,
        });
        if (variant === 'b' && seed === 1) continue; // not started yet
        const run = store.startRun({ name, config: {} });
        for (let step = 1; step <= 4; step++) {
          store.logMetrics(run, {
            step,
            tokens: step * 10 + seed,
            elapsed: step,
            loss: level + step + seed,
            tokensPerSecond: 10,
          });
        }
        // a.s1 is still training: drawn, but left out of the report's figures
        if (!(variant === 'a' && seed === 1)) store.endRun(run, 'finished');
      }
    }
    store.close();
    const server = await startViewerServer({ databasePath: path, port: 0 });
    try {
      const list = await getJson<{ experiments: string[] }>(server, '/api/experiments');
      expect(list).toEqual({ status: 200, body: { experiments: ['cmp'] } });
      const { status, body } = await getJson<{
        runs: { variant: string; seed: number; runId: number | null }[];
        report: { rows: { variant: string; runs: number; finished: number; trainLoss: number }[] };
        curves: {
          variant: string;
          train: { xs: number[]; mean: number[]; low: number[]; high: number[]; seeds: number };
        }[];
      }>(server, '/api/experiments/cmp?x=tokens');
      expect(status).toBe(200);
      expect(body.runs.map((run) => [run.variant, run.seed, run.runId !== null])).toEqual([
        ['a', 0, true],
        ['a', 1, true],
        ['b', 0, true],
        ['b', 1, false],
      ]);
      const [a, b] = body.curves;
      // two seeds: mean x and y per step, the band from the lower to the higher seed
      expect(a).toMatchObject({
        variant: 'a',
        train: {
          xs: [10.5, 20.5, 30.5, 40.5],
          mean: [1.5, 2.5, 3.5, 4.5],
          low: [1, 2, 3, 4],
          high: [2, 3, 4, 5],
          seeds: 2,
        },
      });
      expect(b!.train).toEqual({
        xs: [10, 20, 30, 40],
        mean: [2, 3, 4, 5],
        low: [2, 3, 4, 5],
        high: [2, 3, 4, 5],
        seeds: 1,
      });
      // the report: mean of the last 2 steps over the finished runs (a.s0 and b.s0 only)
      expect(
        body.report.rows.map((row) => [row.variant, row.runs, row.finished, row.trainLoss]),
      ).toEqual([
        ['a', 2, 1, 3.5],
        ['b', 2, 1, 4.5],
      ]);
      const bucketed = await getJson<{ curves: { train: { xs: number[]; mean: number[] } }[] }>(
        server,
        '/api/experiments/cmp?points=10',
      );
      expect(bucketed.body.curves[0]!.train.xs).toEqual([1, 2, 3, 4]);
      expect((await getJson(server, '/api/experiments/nope')).status).toBe(404);
      const bad = await getJson<{ error: string }>(server, '/api/experiments/cmp?x=loss');
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/^x: must be one of step, tokens, elapsed/);
      expect((await getJson(server, '/api/experiments/cmp?colour=red')).status).toBe(400);
    } finally {
      await server.close();
    }
  });

  it('a database written before experiments existed has none', async () => {
    const path = join(directory, 'old.sqlite');
    const store = new MetricsStore(path);
    store.startRun({ name: 'r', config: {} });
    store.db.exec('DROP TABLE experiment_runs; DROP TABLE experiments');
    store.close();
    const server = await startViewerServer({ databasePath: path, port: 0 });
    try {
      expect((await getJson(server, '/api/experiments')).body).toEqual({ experiments: [] });
      expect((await getJson(server, '/api/experiments/cmp')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
