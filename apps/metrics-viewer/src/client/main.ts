// The page: runs table, loss chart, second metric chart, config diff, validation and results
// tables. State lives here; every 2 s the page asks only for rows newer than the ones it holds.
import {
  type EvalPoint,
  fetchEvals,
  fetchResults,
  fetchRuns,
  fetchSeries,
  type MetricColumn,
  type ResultEntry,
  type RunSummary,
  type SeriesResponse,
  type XColumn,
} from './api';
import { type ChartModel, ChartPanel, type ChartRun, type ZoomRange } from './chart-panel';
import { diffConfigs } from './config-diff';
import { formatCount, formatDate, formatDuration, formatValue, runColor } from './format';
import { ExperimentsView } from './experiments-view';
import { exponentialMovingAverage } from './smoothing';
import { type Column, SortableTable } from './sortable-table';

const POLL_MS = 2000;
const POINTS = 2000;
/** Past this many points held for a run (live appends), the series is fetched again downsampled. */
const MAX_HELD_POINTS = POINTS * 3;

interface SeriesData {
  xs: number[];
  ys: number[];
  /** What the smoothed curve smooths: bucket means of downsampled points, else the values. */
  means: number[];
  lastStep: number | null;
}

function seriesData(response: SeriesResponse): SeriesData {
  return {
    xs: response.xs,
    ys: response.ys,
    means: response.means ?? [...response.ys],
    lastStep: response.lastStep,
  };
}

const state = {
  runs: [] as RunSummary[],
  selected: [] as number[],
  selectionInitialized: false,
  filter: '',
  x: 'step' as XColumn,
  smoothing: 0.6,
  logScale: false,
  secondMetric: 'lr' as MetricColumn,
  zoom: null as ZoomRange | null,
  series: new Map<string, SeriesData>(),
  evals: new Map<number, EvalPoint[]>(),
  results: [] as ResultEntry[],
  generation: 0,
  /** The generation of a full load in flight, if any (polling leaves the charts alone meanwhile). */
  loadingGeneration: null as number | null,
};

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

const seriesKey = (runId: number, metric: MetricColumn) => `${runId}:${metric}`;
const metricLabels: Record<MetricColumn, string> = {
  loss: 'loss',
  lr: 'learning rate',
  grad_norm: 'grad norm',
  tokens_per_second: 'tokens / s',
};
const xLabels: Record<XColumn, string> = { step: 'step', tokens: 'tokens', elapsed: 'wall time' };

function formatX(value: number): string {
  if (state.x === 'elapsed') return formatDuration(value);
  if (state.x === 'tokens') return formatCount(Math.round(value));
  return String(Math.round(value));
}

function evalX(point: EvalPoint): number {
  return state.x === 'step' ? point.step : state.x === 'tokens' ? point.tokens : point.elapsed;
}

const tooltip = element<HTMLElement>('tooltip');
const lossChart = new ChartPanel(element('loss-chart'), tooltip, (range) => setZoom(range), 'loss');
const secondChart = new ChartPanel(
  element('second-chart'),
  tooltip,
  (range) => setZoom(range),
  'second',
);

// ---- runs table ---------------------------------------------------------------------------

/** A numeric column shown through `format` (counts, losses, durations). */
function numericColumn<Row>(
  key: string,
  label: string,
  value: (row: Row) => number | null,
  format: (value: number | null) => string,
): Column<Row> {
  return { key, label, value, render: (row) => format(value(row)), numeric: true };
}

function statusBadge(run: RunSummary): HTMLElement {
  const badge = document.createElement('span');
  badge.className = `status ${run.status}`;
  badge.textContent = run.interrupted ? 'stopped (interrupted)' : run.status;
  if (run.interrupted) {
    badge.title = `recorded as running, but no heartbeat since ${formatDate(run.heartbeatAt)}: the process was killed`;
  }
  return badge;
}

function nameCell(run: RunSummary): HTMLElement {
  const wrapper = document.createElement('span');
  const checkbox = document.createElement('input');
  checkbox.type = 'checkbox';
  checkbox.checked = state.selected.includes(run.id);
  checkbox.setAttribute('aria-label', `compare ${run.name}`);
  checkbox.dataset.runId = String(run.id);
  const swatch = document.createElement('span');
  swatch.className = 'swatch';
  swatch.style.background = checkbox.checked ? runColor(run.id) : 'transparent';
  wrapper.append(checkbox, ' ', swatch, run.name);
  return wrapper;
}

const runsTable = new SortableTable<RunSummary>(
  element('runs-table'),
  [
    { key: 'name', label: 'run', value: (run) => run.name, render: nameCell },
    { key: 'status', label: 'status', value: (run) => run.status, render: statusBadge },
    { key: 'preset', label: 'preset', value: (run) => run.preset },
    numericColumn('params', 'params', (run) => run.nParams, formatCount),
    { key: 'steps', label: 'steps', value: (run) => run.steps, numeric: true },
    numericColumn('tokens', 'tokens', (run) => run.tokens, formatCount),
    numericColumn('bestLoss', 'best loss', (run) => run.bestLoss, formatValue),
    {
      key: 'started',
      label: 'started',
      value: (run) => run.startedAt,
      render: (run) => formatDate(run.startedAt),
    },
    numericColumn('duration', 'duration', (run) => run.durationSeconds, formatDuration),
  ],
  {
    rowKey: (run) => String(run.id),
    rowClass: (run) => (state.selected.includes(run.id) ? 'selected' : ''),
    onRowClick: (run) => toggleRun(run.id),
    emptyText: 'no runs match the filter',
  },
);

function renderRuns(): void {
  const filter = state.filter.trim().toLowerCase();
  const visible = filter
    ? state.runs.filter((run) => run.name.toLowerCase().includes(filter))
    : state.runs;
  runsTable.setRows(visible);
  element('run-count').textContent =
    `${visible.length} of ${state.runs.length} runs, ${state.selected.length} selected`;
}

function toggleRun(runId: number): void {
  state.selected = state.selected.includes(runId)
    ? state.selected.filter((id) => id !== runId)
    : [...state.selected, runId];
  renderRuns();
  renderConfigDiff();
  void loadSelected();
}

// ---- charts ---------------------------------------------------------------------------------

function chartModel(metric: MetricColumn, withEvals: boolean): ChartModel {
  const runs: ChartRun[] = [];
  for (const runId of state.selected) {
    const run = state.runs.find((candidate) => candidate.id === runId);
    const data = state.series.get(seriesKey(runId, metric));
    if (!run || !data) continue;
    const chartRun: ChartRun = {
      runId,
      name: run.name,
      color: runColor(runId),
      xs: data.xs,
      ys: data.ys,
      smoothed: state.smoothing > 0 ? exponentialMovingAverage(data.means, state.smoothing) : null,
    };
    if (withEvals) {
      const points = (state.evals.get(runId) ?? []).filter((point) => point.loss !== null);
      chartRun.evalXs = points.map(evalX);
      chartRun.evalYs = points.map((point) => point.loss!);
    }
    runs.push(chartRun);
  }
  const emptyText =
    state.selected.length === 0
      ? 'Select runs in the table to plot them.'
      : runs.length < state.selected.length
        ? 'loading…'
        : 'No values logged for this metric yet.';
  return {
    xLabel: xLabels[state.x],
    yLabel: metricLabels[metric],
    formatX,
    integerX: state.x !== 'elapsed',
    runs,
    logScale: state.logScale,
    emptyText,
  };
}

function drawCharts(): void {
  const start = performance.now();
  lossChart.update(chartModel('loss', true), state.zoom);
  secondChart.update(chartModel(state.secondMetric, false), state.zoom);
  if (lossChart.seriesCount > 0) {
    // For bench/viewer.ts: how long drawing takes, and when the first curve appeared.
    performance.measure('viewer:draw', { start });
    if (performance.getEntriesByName('viewer:first-chart').length === 0)
      performance.mark('viewer:first-chart');
  }
  element('zoom-status').textContent = state.zoom
    ? `zoomed to ${formatX(state.zoom.from)} – ${formatX(state.zoom.to)}`
    : '';
}

function holdSeries(
  metric: MetricColumn,
  fetched: { runId: number; response: SeriesResponse }[],
): void {
  for (const { runId, response } of fetched) {
    state.series.set(seriesKey(runId, metric), seriesData(response));
  }
}

/** Fetches the selected runs' series (whole run or zoomed range) and validation points. */
async function loadSelected(): Promise<void> {
  const generation = ++state.generation;
  state.loadingGeneration = generation;
  const zoom = state.zoom;
  const query = (metric: MetricColumn) => ({
    metric,
    x: state.x,
    points: POINTS,
    from: zoom?.from,
    to: zoom?.to,
  });
  const fetchMetric = (metric: MetricColumn) =>
    Promise.all(
      state.selected.map(async (runId) => ({
        runId,
        response: await fetchSeries(runId, query(metric)),
      })),
    );
  try {
    // Loss first, so the main chart appears as soon as it can; the second chart follows.
    const [loss, evals] = await Promise.all([
      fetchMetric('loss'),
      Promise.all(state.selected.map(async (runId) => ({ runId, evals: await fetchEvals(runId) }))),
    ]);
    if (generation !== state.generation) return;
    state.series = new Map();
    holdSeries('loss', loss);
    for (const { runId, evals: points } of evals) state.evals.set(runId, points);
    drawCharts();
    renderEvals();
    const metric = state.secondMetric;
    const second = await fetchMetric(metric);
    if (generation !== state.generation) return;
    holdSeries(metric, second);
    drawCharts();
  } catch (error) {
    showError(error);
  } finally {
    if (state.loadingGeneration === generation) state.loadingGeneration = null;
  }
}

function setZoom(range: ZoomRange | null): void {
  state.zoom = range;
  void loadSelected();
}

// ---- tables below the charts -------------------------------------------------------------

function renderConfigDiff(): void {
  const container = element('config-diff');
  const runs = state.selected
    .map((id) => state.runs.find((run) => run.id === id))
    .filter((run): run is RunSummary => run !== undefined);
  if (runs.length < 2) {
    container.innerHTML =
      '<p class="muted">Select two or more runs to see how their configs differ.</p>';
    return;
  }
  const differences = diffConfigs(runs.map((run) => run.config));
  if (differences.length === 0) {
    container.innerHTML = '<p class="muted">The selected runs have identical configs.</p>';
    return;
  }
  const table = document.createElement('table');
  table.className = 'data';
  table.id = 'config-diff-table';
  const head = table.createTHead().insertRow();
  for (const label of ['field', ...runs.map((run) => run.name)]) {
    const cell = document.createElement('th');
    cell.textContent = label;
    head.append(cell);
  }
  const body = table.createTBody();
  for (const difference of differences) {
    const row = body.insertRow();
    row.insertCell().textContent = difference.path;
    for (const value of difference.values) {
      const cell = row.insertCell();
      if (value === undefined) {
        cell.className = 'diff-missing';
        cell.textContent = 'absent';
      } else {
        cell.textContent = value;
      }
    }
  }
  container.replaceChildren(table);
}

interface EvalRow extends EvalPoint {
  runName: string;
}

const evalsTable = new SortableTable<EvalRow>(
  element('evals-table'),
  [
    { key: 'run', label: 'run', value: (row) => row.runName },
    { key: 'step', label: 'step', value: (row) => row.step, numeric: true },
    numericColumn('tokens', 'tokens', (row) => row.tokens, formatCount),
    { key: 'split', label: 'split', value: (row) => row.split },
    numericColumn('loss', 'loss', (row) => row.loss, formatValue),
    numericColumn('tokenLoss', 'token loss', (row) => row.tokenLoss, formatValue),
    numericColumn('ppl', 'ppl', (row) => row.ppl, formatValue),
    { key: 'nans', label: 'NaNs', value: (row) => row.nans, numeric: true },
  ],
  { emptyText: 'no validation points for the selected runs' },
  { key: 'step', direction: 'asc' },
);

function renderEvals(): void {
  const rows: EvalRow[] = [];
  for (const runId of state.selected) {
    const name = state.runs.find((run) => run.id === runId)?.name ?? String(runId);
    for (const point of state.evals.get(runId) ?? []) rows.push({ ...point, runName: name });
  }
  evalsTable.setRows(rows);
}

/** A result's answer accuracy per distance (recall corpus), e.g. `@0 75.0% @1 12.5%`. */
function answerAccuracyText(row: ResultEntry): string | null {
  if (row.answers.length === 0) return null;
  return row.answers
    .map(({ distance, answers, correct }) =>
      answers === 0 ? `@${distance} -` : `@${distance} ${((100 * correct) / answers).toFixed(1)}%`,
    )
    .join(' ');
}

const resultsTable = new SortableTable<ResultEntry>(
  element('results-table'),
  [
    { key: 'run', label: 'run', value: (row) => row.runName ?? row.configId },
    { key: 'modelType', label: 'model', value: (row) => row.modelType },
    { key: 'benchmark', label: 'benchmark', value: (row) => row.benchmark },
    { key: 'split', label: 'split', value: (row) => row.split },
    numericColumn('nParams', 'params', (row) => row.nParams, formatCount),
    numericColumn('nInputEmbParams', 'input emb params', (row) => row.nInputEmbParams, formatCount),
    { key: 'nCtx', label: 'n_ctx', value: (row) => row.nCtx, numeric: true },
    numericColumn('loss', 'loss', (row) => row.loss, formatValue),
    numericColumn('ppl', 'ppl', (row) => row.ppl, formatValue),
    numericColumn('tokenLoss', 'token loss', (row) => row.tokenLoss, formatValue),
    { key: 'nans', label: 'NaNs', value: (row) => row.nans, numeric: true },
    numericColumn('tokens', 'tokens', (row) => row.tokens, formatCount),
    { key: 'answers', label: 'answer accuracy', value: (row) => answerAccuracyText(row) },
    { key: 'architecture', label: 'architecture', value: (row) => row.architecture },
    { key: 'note', label: 'note', value: (row) => row.note },
    { key: 'time', label: 'time', value: (row) => row.time, render: (row) => formatDate(row.time) },
  ],
  { emptyText: 'no results yet (baka eval records them)' },
  { key: 'time', direction: 'desc' },
);

// ---- polling --------------------------------------------------------------------------------

function showEmptyState(
  path: string,
  state_: 'missing' | 'empty' | 'ready',
  command: string,
): void {
  const empty = state_ !== 'ready';
  element('empty-state').hidden = !empty;
  element('content').hidden = empty;
  if (empty) {
    element('empty-title').textContent =
      state_ === 'missing' ? 'No metrics database yet' : 'No runs yet';
    element('empty-detail').textContent =
      state_ === 'missing' ? `Nothing at ${path}.` : `${path} has no runs recorded.`;
    element('empty-command').textContent = command;
  }
}

function showError(error: unknown): void {
  const live = element('live-status');
  live.className = 'live error';
  live.textContent = `error: ${(error as Error).message}`;
}

/** Appends rows newer than the held ones; false when a full reload is needed instead. */
async function appendNewRows(generation: number): Promise<boolean> {
  let changed = false;
  const metrics: MetricColumn[] = ['loss', state.secondMetric];
  for (const runId of state.selected) {
    for (const metric of metrics) {
      const held = state.series.get(seriesKey(runId, metric));
      if (!held) return false;
      const response = await fetchSeries(runId, {
        metric,
        x: state.x,
        points: POINTS,
        afterStep: held.lastStep ?? -1,
      });
      if (generation !== state.generation) return true;
      if (response.downsampled || held.xs.length + response.xs.length > MAX_HELD_POINTS)
        return false;
      if (response.xs.length > 0) {
        held.xs.push(...response.xs);
        held.ys.push(...response.ys);
        held.means.push(...response.ys);
        changed = true;
      }
      held.lastStep = response.lastStep;
    }
    const points = state.evals.get(runId) ?? [];
    const lastEval = points.length > 0 ? points[points.length - 1]!.step : -1;
    const newer = await fetchEvals(runId, lastEval);
    if (newer.length > 0) {
      state.evals.set(runId, [...points, ...newer]);
      changed = true;
    }
  }
  if (changed && generation === state.generation) {
    drawCharts();
    renderEvals();
  }
  return true;
}

let polling = false;
async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    const response = await fetchRuns();
    element('database-path').textContent = response.database.path;
    showEmptyState(response.database.path, response.database.state, response.startCommand);
    const previous = JSON.stringify(state.runs);
    state.runs = response.runs;
    const known = new Set(state.runs.map((run) => run.id));
    state.selected = state.selected.filter((id) => known.has(id));
    let reload = false;
    if (!state.selectionInitialized && state.runs.length > 0) {
      // The most recent run, so a user who just trained sees its curve at once.
      state.selected = [state.runs[0]!.id];
      state.selectionInitialized = true;
      reload = true;
    }
    if (JSON.stringify(state.runs) !== previous) {
      renderRuns();
      renderConfigDiff();
    }
    const results = await fetchResults();
    if (JSON.stringify(results) !== JSON.stringify(state.results)) {
      state.results = results;
      resultsTable.setRows(results);
    }
    if (response.database.state === 'ready') await experiments.refresh();
    if (reload) await loadSelected();
    else if (state.loadingGeneration === null && !(await appendNewRows(state.generation)))
      await loadSelected();
    const live = element('live-status');
    live.className = 'live on';
    live.textContent = `live · ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    showError(error);
  } finally {
    polling = false;
  }
}

// ---- controls -------------------------------------------------------------------------------

function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function wireControls(): void {
  element<HTMLInputElement>('run-filter').addEventListener('input', (event) => {
    state.filter = (event.target as HTMLInputElement).value;
    renderRuns();
  });
  element('runs-table').addEventListener('click', (event) => {
    // The checkbox toggles through the row's click handler; keep its own toggle from doubling.
    if ((event.target as HTMLElement).tagName === 'INPUT') event.preventDefault();
  });
  element<HTMLSelectElement>('x-axis').addEventListener('change', (event) => {
    state.x = (event.target as HTMLSelectElement).value as XColumn;
    state.zoom = null;
    void loadSelected();
  });
  const smoothing = element<HTMLInputElement>('smoothing');
  smoothing.addEventListener('input', () => {
    state.smoothing = Number(smoothing.value);
    element('smoothing-value').textContent = state.smoothing.toFixed(2);
    drawCharts();
  });
  element<HTMLInputElement>('log-scale').addEventListener('change', (event) => {
    state.logScale = (event.target as HTMLInputElement).checked;
    drawCharts();
  });
  element<HTMLSelectElement>('second-metric').addEventListener('change', (event) => {
    state.secondMetric = (event.target as HTMLSelectElement).value as MetricColumn;
    void loadSelected();
  });
  element('reset-zoom').addEventListener('click', () => setZoom(null));
  for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-export]')) {
    button.addEventListener('click', async () => {
      const chart = button.dataset.chart === 'loss' ? lossChart : secondChart;
      const metric = button.dataset.chart === 'loss' ? 'loss' : state.secondMetric;
      const names = chart.current?.runs.map((run) => run.name).join('_') || 'chart';
      try {
        if (button.dataset.export === 'png') {
          download(
            await chart.toPng(`${metricLabels[metric]} vs ${xLabels[state.x]}`),
            `${metric}-${names}.png`,
          );
        } else {
          download(new Blob([chart.toCsv()], { type: 'text/csv' }), `${metric}-${names}.csv`);
        }
      } catch (error) {
        showError(error);
      }
    });
  }
}

const experiments = new ExperimentsView(tooltip, download, showError);
wireControls();
void poll();
setInterval(() => void poll(), POLL_MS);
