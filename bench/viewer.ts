// Metrics viewer benchmark: time to first chart for a run with 1,000,000 metric rows.
//   server: the first series request on a fresh server (reads the run's columns from SQLite and
//           downsamples with LTTB to 2,000 points), the same request warm, a zoomed request at
//           full resolution, the runs list (aggregates) cold and warm;
//   browser: headless Chromium (Debian's chromium, playwright-core): navigation start until the
//           first loss curve is drawn, on a fresh server without warm-up, after the server's
//           start-up warm-up, and after reloads; and the time spent drawing (uPlot) alone.
// Prints a table and writes bench/results/viewer.json.
//
//   node --conditions=@baka/source --import tsx bench/viewer.ts [--rows 1000000] [--runs 5] [--fresh 3]
// (--runs: repetitions of warm measurements; --fresh: fresh servers for the cold ones)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startViewerServer, type ViewerServer } from '@baka/metrics-viewer';
import { launchChromium, writeLargeRun } from '@baka/metrics-viewer/testing';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench/results/viewer.json');

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    fresh: { type: 'string', default: '3' },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
if (!Number.isInteger(rows) || rows < 10)
  throw new Error(`--rows expects an integer >= 10, got '${values.rows}'`);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs expects an integer >= 1, got '${values.runs}'`);
const fresh = Number(values.fresh);
if (!Number.isInteger(fresh) || fresh < 1)
  throw new Error(`--fresh expects an integer >= 1, got '${values.fresh}'`);

function median(list: number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function timed(
  server: ViewerServer,
  path: string,
): Promise<{ ms: number; bytes: number; body: unknown }> {
  const start = performance.now();
  const response = await fetch(new URL(path, server.url));
  const text = await response.text();
  const ms = performance.now() - start;
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return { ms, bytes: Buffer.byteLength(text), body: JSON.parse(text) };
}

const directory = mkdtempSync(join(tmpdir(), 'viewer-bench-'));
const databasePath = join(directory, 'metrics.sqlite');
try {
  process.stdout.write(
    `writing ${rows.toLocaleString('en')} metric rows with the trainer's MetricsStore... `,
  );
  let start = performance.now();
  const runId = writeLargeRun(databasePath, 'bench-1m', rows);
  process.stdout.write(`${((performance.now() - start) / 1000).toFixed(1)} s\n`);
  const seriesPath = `/api/runs/${runId}/series?metric=loss&x=step&points=2000`;
  const zoomFrom = Math.floor(rows * 0.4);
  const zoomPath = `/api/runs/${runId}/series?metric=loss&x=step&points=2000&from=${zoomFrom}&to=${zoomFrom + 1999}`;

  // Server alone, on fresh servers without their start-up warm-up (cold caches), then warm.
  // The runs list of a cold server reads the newest run's step and loss columns (its counts come
  // from them); a series request on another cold server reads them for the chart.
  let server = await startViewerServer({ databasePath, port: 0, warm: false });
  const runsCold = await timed(server, '/api/runs');
  await server.close();
  server = await startViewerServer({ databasePath, port: 0, warm: false });
  const seriesCold = await timed(server, seriesPath);
  const seriesBody = seriesCold.body as { xs: number[]; rowsInRange: number; downsampled: boolean };
  if (seriesBody.rowsInRange !== rows || seriesBody.xs.length !== Math.min(rows, 2000)) {
    throw new Error(
      `unexpected series: ${seriesBody.rowsInRange} rows in range, ${seriesBody.xs.length} points`,
    );
  }
  const secondMetricCold = await timed(
    server,
    `/api/runs/${runId}/series?metric=lr&x=step&points=2000`,
  );
  const seriesWarm: number[] = [];
  const zoom: number[] = [];
  const runsWarm: number[] = [];
  let zoomPoints = 0;
  for (let run = 0; run < runs; run++) {
    seriesWarm.push((await timed(server, seriesPath)).ms);
    const zoomed = await timed(server, zoomPath);
    zoom.push(zoomed.ms);
    zoomPoints = (zoomed.body as { xs: number[] }).xs.length;
    runsWarm.push((await timed(server, '/api/runs')).ms);
  }
  await server.close();

  // The browser: navigation start -> first loss curve drawn, on a fresh server without warm-up
  // (everything read from SQLite on demand), on a fresh server after its start-up warm-up (what a
  // user who opens the URL a moment after starting sees), and after reloads.
  const browser = await launchChromium();
  const firstChart = {
    cold: [] as number[],
    afterWarmUp: [] as number[],
    warmUp: [] as number[],
    reload: [] as number[],
    draw: [] as number[],
  };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const open = async (url: string | null) => {
      if (url) await page.goto(url);
      else await page.reload();
      await page.waitForFunction(
        () => performance.getEntriesByName('viewer:first-chart').length > 0,
        undefined,
        {
          timeout: 120_000,
        },
      );
      const measured = await page.evaluate(() => ({
        firstChart: performance.getEntriesByName('viewer:first-chart')[0]!.startTime,
        draw: performance.getEntriesByName('viewer:draw')[0]!.duration,
        points: document.querySelector('#loss-chart')?.getAttribute('data-points'),
      }));
      const expected = String(Math.min(rows, 2000));
      if (measured.points !== expected) {
        throw new Error(`the page drew ${measured.points} points, expected ${expected}`);
      }
      firstChart.draw.push(measured.draw);
      return measured.firstChart;
    };
    // Fresh servers each time (a new server is a cold cache); medians of `fresh` tries.
    for (let attempt = 0; attempt < fresh; attempt++) {
      server = await startViewerServer({ databasePath, port: 0, warm: false });
      firstChart.cold.push(await open(server.url));
      await server.close();
      start = performance.now();
      server = await startViewerServer({ databasePath, port: 0 });
      await server.warmed;
      firstChart.warmUp.push(performance.now() - start);
      firstChart.afterWarmUp.push(await open(server.url));
      if (attempt < fresh - 1) await server.close();
    }
    for (let run = 0; run < runs; run++) firstChart.reload.push(await open(null));
  } finally {
    await browser.close();
    await server.close();
  }

  const results = {
    benchmark: 'metrics-viewer time to first chart',
    date: new Date().toISOString(),
    rows,
    pointsDrawn: 2000,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      loadAverage: loadavg()[0],
      node: process.version,
    },
    server: {
      seriesColdMs: seriesCold.ms,
      seriesColdBytes: seriesCold.bytes,
      secondMetricColdMs: secondMetricCold.ms,
      seriesWarmMedianMs: median(seriesWarm),
      zoomFullResolutionMedianMs: median(zoom),
      zoomPoints,
      runsListColdMs: runsCold.ms,
      runsListWarmMedianMs: median(runsWarm),
    },
    browser: {
      firstChartColdMedianMs: median(firstChart.cold),
      firstChartColdMs: firstChart.cold,
      serverStartAndWarmUpMedianMs: median(firstChart.warmUp),
      firstChartAfterWarmUpMedianMs: median(firstChart.afterWarmUp),
      firstChartAfterWarmUpMs: firstChart.afterWarmUp,
      firstChartReloadMedianMs: median(firstChart.reload),
      drawMedianMs: median(firstChart.draw),
    },
  };
  const table: [string, number][] = [
    ['server: runs list, cold', results.server.runsListColdMs],
    [`server: loss series (${rows} rows -> LTTB 2000), cold`, results.server.seriesColdMs],
    ['server: lr series, cold (second column)', results.server.secondMetricColdMs],
    ['server: loss series, warm (median)', results.server.seriesWarmMedianMs],
    [
      `server: zoomed range at full resolution (${zoomPoints} points)`,
      results.server.zoomFullResolutionMedianMs,
    ],
    ['server: runs list, warm (median)', results.server.runsListWarmMedianMs],
    [
      'browser: first chart, fresh server, no warm-up (navigation -> drawn)',
      results.browser.firstChartColdMedianMs,
    ],
    ['server start + start-up warm-up', results.browser.serverStartAndWarmUpMedianMs],
    ['browser: first chart, server after warm-up', results.browser.firstChartAfterWarmUpMedianMs],
    ['browser: first chart after reload (median)', results.browser.firstChartReloadMedianMs],
    ['browser: drawing the loss chart (median)', results.browser.drawMedianMs],
  ];
  const width = Math.max(...table.map(([label]) => label.length));
  process.stdout.write(
    `\n${'measurement'.padEnd(width)}  time (ms)\n${'-'.repeat(width)}  ---------\n`,
  );
  for (const [label, ms] of table)
    process.stdout.write(`${label.padEnd(width)}  ${ms.toFixed(1).padStart(9)}\n`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`\nwrote ${OUT}\n`);
} finally {
  rmSync(directory, { recursive: true, force: true });
}
