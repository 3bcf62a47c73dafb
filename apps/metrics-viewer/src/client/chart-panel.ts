// One uPlot chart of a metric for several runs: each run's raw curve (faint when smoothed), its
// EMA-smoothed curve, and optionally its validation points. Drag to zoom (reported to the owner,
// which fetches that range at full resolution), double-click to reset, a tooltip listing every
// run's value at the cursor, log scale, PNG and CSV export.
import { INTEGER_INCREMENTS } from './axis-ticks';
import uPlot from 'uplot';
import { formatValue, withAlpha } from './format';

export interface ChartRun {
  runId: number;
  name: string;
  color: string;
  xs: number[];
  ys: number[];
  /** EMA of `ys`; null when smoothing is off. */
  smoothed: number[] | null;
  /** Validation points, drawn as dots. */
  evalXs?: number[];
  evalYs?: number[];
  /** A band around the curve (an experiment's lowest and highest seed at each x). */
  band?: { low: number[]; high: number[] };
}

export interface ChartModel {
  xLabel: string;
  yLabel: string;
  /** Formats x values on the axis and in the tooltip. */
  formatX: (value: number) => string;
  /** Whether x is a whole number (step, tokens): ticks then fall on whole numbers only. */
  integerX: boolean;
  runs: ChartRun[];
  logScale: boolean;
  /** Shown instead of the chart when there is nothing to draw. */
  emptyText: string;
}

export interface ZoomRange {
  from: number;
  to: number;
}

type Nullable = (number | null | undefined)[];

/** The index in sorted `xs` closest to `x`. */
function nearestIndex(xs: number[], x: number): number {
  let low = 0;
  let high = xs.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (xs[middle]! < x) low = middle + 1;
    else high = middle;
  }
  if (low > 0 && Math.abs(xs[low - 1]! - x) <= Math.abs(xs[low]! - x)) return low - 1;
  return low;
}

function positiveOrNull(values: number[], log: boolean): Nullable {
  return values.map((value) => (!Number.isFinite(value) || (log && value <= 0) ? null : value));
}

export class ChartPanel {
  private plot: uPlot | undefined;
  private structure = '';
  private model: ChartModel | undefined;
  private readonly resizeObserver: ResizeObserver;

  constructor(
    readonly container: HTMLElement,
    private readonly tooltip: HTMLElement,
    private readonly onZoom: (range: ZoomRange | null) => void,
    readonly name: string,
  ) {
    this.resizeObserver = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.plot.height });
    });
    this.resizeObserver.observe(container);
  }

  private width(): number {
    return Math.max(300, this.container.clientWidth);
  }

  get current(): ChartModel | undefined {
    return this.model;
  }

  /** The number of curves drawn (raw curves; one per run). */
  get seriesCount(): number {
    return this.model?.runs.filter((run) => run.xs.length > 0).length ?? 0;
  }

  private seriesOptions(model: ChartModel): uPlot.Series[] {
    const series: uPlot.Series[] = [
      { label: model.xLabel, value: (_u, value) => (value == null ? '–' : model.formatX(value)) },
    ];
    for (const run of model.runs) {
      const smoothing = run.smoothed !== null;
      series.push({
        label: run.name,
        stroke: smoothing ? withAlpha(run.color, 0.25) : run.color,
        width: 1,
        spanGaps: true,
        points: { show: false },
        value: (_u, value) => formatValue(value),
      });
      if (smoothing) {
        series.push({
          label: `${run.name} (smoothed)`,
          stroke: run.color,
          width: 2,
          spanGaps: true,
          points: { show: false },
          value: (_u, value) => formatValue(value),
        });
      }
      if (run.band) {
        for (const edge of ['lowest', 'highest']) {
          series.push({
            label: `${run.name} (${edge} seed)`,
            stroke: withAlpha(run.color, 0.35),
            width: 0.5,
            spanGaps: true,
            points: { show: false },
            value: (_u, value) => formatValue(value),
          });
        }
      }
      if (run.evalXs && run.evalXs.length > 0) {
        series.push({
          label: `${run.name} validation`,
          stroke: run.color,
          fill: run.color,
          width: 0,
          paths: () => null,
          points: { show: true, size: 8, stroke: '#ffffff', fill: run.color, width: 1.5 },
          value: (_u, value) => formatValue(value),
        });
      }
    }
    return series;
  }

  private data(model: ChartModel): uPlot.AlignedData {
    const tables: uPlot.AlignedData[] = [];
    for (const run of model.runs) {
      const columns: Nullable[] = [positiveOrNull(run.ys, model.logScale)];
      if (run.smoothed) columns.push(positiveOrNull(run.smoothed, model.logScale));
      if (run.band) {
        columns.push(positiveOrNull(run.band.low, model.logScale));
        columns.push(positiveOrNull(run.band.high, model.logScale));
      }
      tables.push([run.xs, ...columns] as unknown as uPlot.AlignedData);
      if (run.evalXs && run.evalXs.length > 0) {
        tables.push([
          run.evalXs,
          positiveOrNull(run.evalYs ?? [], model.logScale),
        ] as unknown as uPlot.AlignedData);
      }
    }
    if (tables.length === 0) return [[]];
    return tables.length === 1 ? tables[0]! : uPlot.join(tables);
  }

  /** Draws `model`; keeps the zoomed x range when given. */
  update(model: ChartModel, zoom: ZoomRange | null): void {
    this.model = model;
    const empty = model.runs.every((run) => run.xs.length === 0 && (run.evalXs?.length ?? 0) === 0);
    this.container.dataset.series = String(this.seriesCount);
    this.container.dataset.points = model.runs.map((run) => run.xs.length).join(',');
    this.container.dataset.axes = `${model.xLabel} / ${model.yLabel}${model.logScale ? ' (log)' : ''}`;
    if (empty) {
      this.destroy();
      const placeholder = document.createElement('div');
      placeholder.className = 'placeholder';
      placeholder.textContent =
        model.runs.length === 0
          ? 'Select runs in the table to plot them.'
          : 'No values logged for this metric yet.';
      this.container.replaceChildren(placeholder);
      return;
    }
    const series = this.seriesOptions(model);
    const structure = `${model.logScale}|${model.xLabel}|${series.map((entry) => entry.label).join('|')}`;
    const data = this.data(model);
    if (this.plot && structure === this.structure) {
      this.plot.setData(data, zoom === null);
      if (zoom) this.plot.setScale('x', { min: zoom.from, max: zoom.to });
      return;
    }
    this.destroy();
    this.structure = structure;
    this.container.replaceChildren();
    // Each band fills between its curve's highest and lowest seed series.
    const bands: uPlot.Band[] = [];
    series.forEach((entry, index) => {
      if (!String(entry.label).endsWith(' (highest seed)')) return;
      const run = model.runs.find(
        (candidate) => entry.label === `${candidate.name} (highest seed)`,
      );
      if (run) bands.push({ series: [index, index - 1], fill: withAlpha(run.color, 0.18) });
    });
    const options: uPlot.Options = {
      width: this.width(),
      height: 320,
      series,
      bands,
      scales: { x: { time: false }, y: { distr: model.logScale ? 3 : 1 } },
      axes: [
        {
          label: model.xLabel,
          ...(model.integerX ? { incrs: INTEGER_INCREMENTS } : {}),
          values: (_u, values) => values.map((value) => model.formatX(value)),
        },
        {
          label: model.yLabel,
          size: 70,
          values: (_u, values) => values.map((value) => formatValue(value)),
        },
      ],
      legend: { show: true, live: false },
      cursor: { sync: { key: 'metrics-viewer' }, drag: { x: true, y: false, setScale: true } },
      hooks: {
        setSelect: [
          (plot) => {
            if (plot.select.width <= 2) return;
            const from = plot.posToVal(plot.select.left, 'x');
            const to = plot.posToVal(plot.select.left + plot.select.width, 'x');
            this.onZoom({ from, to });
          },
        ],
        setCursor: [(plot) => this.showTooltip(plot)],
      },
    };
    this.plot = new uPlot(options, data, this.container);
    this.plot.over.addEventListener('dblclick', () => this.onZoom(null));
    this.plot.over.addEventListener('mouseleave', () => {
      this.tooltip.hidden = true;
    });
    if (zoom) this.plot.setScale('x', { min: zoom.from, max: zoom.to });
  }

  private showTooltip(plot: uPlot): void {
    const model = this.model;
    const index = plot.cursor.idx;
    const left = plot.cursor.left ?? -1;
    if (!model || index === null || index === undefined || left < 0) {
      this.tooltip.hidden = true;
      return;
    }
    const x = plot.posToVal(left, 'x');
    const head = document.createElement('div');
    head.className = 'head';
    head.textContent = `${model.xLabel} ${model.formatX(x)}`;
    const rows: HTMLElement[] = [head];
    for (const run of model.runs) {
      if (run.xs.length === 0) continue;
      // Each run's own nearest point: runs are logged at different x values.
      const nearest = nearestIndex(run.xs, x);
      const row = document.createElement('div');
      row.className = 'row';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = run.color;
      const smoothed = run.smoothed ? ` (smoothed ${formatValue(run.smoothed[nearest])})` : '';
      row.append(
        swatch,
        `${run.name}: ${formatValue(run.ys[nearest])}${smoothed} @ ${model.formatX(run.xs[nearest]!)}`,
      );
      rows.push(row);
    }
    this.tooltip.replaceChildren(...rows);
    this.tooltip.hidden = false;
    const bounds = plot.over.getBoundingClientRect();
    const top = bounds.top + (plot.cursor.top ?? 0) + 16;
    let tooltipLeft = bounds.left + left + 16;
    if (tooltipLeft + this.tooltip.offsetWidth > window.innerWidth - 8) {
      tooltipLeft = bounds.left + left - this.tooltip.offsetWidth - 16;
    }
    this.tooltip.style.left = `${tooltipLeft}px`;
    this.tooltip.style.top = `${top}px`;
  }

  /** The chart with a white background, a title and the run names, as PNG. */
  toPng(title: string): Promise<Blob> {
    const plot = this.plot;
    const model = this.model;
    if (!plot || !model) return Promise.reject(new Error('nothing drawn yet'));
    const source = plot.ctx.canvas;
    const ratio = source.width / plot.width;
    const header = Math.round(28 * ratio);
    const footer = Math.round(24 * ratio);
    const canvas = document.createElement('canvas');
    canvas.width = source.width;
    canvas.height = source.height + header + footer;
    const context = canvas.getContext('2d')!;
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = '#111827';
    context.font = `${Math.round(15 * ratio)}px sans-serif`;
    context.fillText(title, 10 * ratio, 19 * ratio);
    context.drawImage(source, 0, header);
    let legendX = 10 * ratio;
    context.font = `${Math.round(12 * ratio)}px sans-serif`;
    for (const run of model.runs) {
      context.fillStyle = run.color;
      context.fillRect(legendX, canvas.height - footer + 6 * ratio, 10 * ratio, 10 * ratio);
      context.fillStyle = '#111827';
      context.fillText(run.name, legendX + 14 * ratio, canvas.height - footer + 15 * ratio);
      legendX += context.measureText(run.name).width + 34 * ratio;
    }
    return new Promise((resolve, reject) =>
      canvas.toBlob(
        (blob) => (blob ? resolve(blob) : reject(new Error('PNG encoding failed'))),
        'image/png',
      ),
    );
  }

  /** The drawn series as CSV (one row per point): run, x, value, smoothed value. */
  toCsv(): string {
    const model = this.model;
    if (!model) return '';
    const quote = (text: string) =>
      /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    const lines = [
      `run,${quote(model.xLabel)},${quote(model.yLabel)},${quote(`${model.yLabel} smoothed`)}`,
    ];
    for (const run of model.runs) {
      run.xs.forEach((x, index) => {
        const smoothed = run.smoothed ? run.smoothed[index] : undefined;
        lines.push(
          `${quote(run.name)},${x},${run.ys[index] ?? ''},${smoothed === undefined || Number.isNaN(smoothed) ? '' : smoothed}`,
        );
      });
    }
    return `${lines.join('\n')}\n`;
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.structure = '';
  }
}
