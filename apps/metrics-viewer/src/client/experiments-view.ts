// The experiments panel: pick an experiment, see every variant's train (or validation) loss as
// the mean over its seeds with a band from the lowest to the highest seed, the report table, and
// export the chart (PNG) and the table (CSV, markdown). Refreshed on every poll, so it follows a
// running experiment.
import {
  formatReport,
  type ExperimentReport,
  type ExperimentReportRow,
  reportColumns,
} from '../experiment-table';
import { type CurveX, type ExperimentView, fetchExperiment, fetchExperiments } from './api';
import { ChartPanel, type ChartRun } from './chart-panel';
import { formatCount, formatDuration, runColor } from './format';
import { SortableTable } from './sortable-table';

type Curve = 'train' | 'valid';

const xLabels: Record<CurveX, string> = { step: 'step', tokens: 'tokens', elapsed: 'wall time' };

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

export class ExperimentsView {
  private names: string[] = [];
  private selected: string | null = null;
  private x: CurveX = 'step';
  private curve: Curve = 'train';
  private view: ExperimentView | null = null;
  private shown = '';
  private readonly chart: ChartPanel;
  private table: SortableTable<ExperimentReportRow> | null = null;
  private tableColumns = '';

  constructor(
    tooltip: HTMLElement,
    private readonly download: (blob: Blob, filename: string) => void,
    private readonly showError: (error: unknown) => void,
  ) {
    this.chart = new ChartPanel(element('experiment-chart'), tooltip, () => {}, 'experiment');
    const select = element<HTMLSelectElement>('experiment-select');
    select.addEventListener('change', () => {
      this.selected = select.value;
      void this.refresh(true);
    });
    element<HTMLSelectElement>('experiment-x').addEventListener('change', (event) => {
      this.x = (event.target as HTMLSelectElement).value as CurveX;
      void this.refresh(true);
    });
    element<HTMLSelectElement>('experiment-curve').addEventListener('change', (event) => {
      this.curve = (event.target as HTMLSelectElement).value as Curve;
      this.draw();
    });
    for (const button of document.querySelectorAll<HTMLButtonElement>(
      'button[data-experiment-export]',
    )) {
      button.addEventListener('click', () => void this.export(button.dataset.experimentExport!));
    }
  }

  /** Re-reads the experiment list and the selected experiment (each poll). */
  async refresh(force = false): Promise<void> {
    const names = await fetchExperiments();
    element('experiments').hidden = names.length === 0;
    if (JSON.stringify(names) !== JSON.stringify(this.names)) {
      this.names = names;
      const select = element<HTMLSelectElement>('experiment-select');
      select.replaceChildren(
        ...names.map((name) => {
          const option = document.createElement('option');
          option.value = name;
          option.textContent = name;
          return option;
        }),
      );
      // the newest experiment first shown; a chosen one stays chosen
      if (this.selected === null || !names.includes(this.selected))
        this.selected = names.at(-1) ?? null;
      if (this.selected !== null) select.value = this.selected;
    }
    if (this.selected === null) return;
    const view = await fetchExperiment(this.selected, this.x);
    const text = JSON.stringify(view);
    if (!force && text === this.shown) return;
    this.shown = text;
    this.view = view;
    this.draw();
    this.renderTable(view.report);
  }

  private colorOf(index: number): string {
    return runColor(index + 1);
  }

  private draw(): void {
    const view = this.view;
    if (!view) return;
    const runs: ChartRun[] = view.curves.map((curves, index) => {
      const shown = curves[this.curve];
      const run: ChartRun = {
        runId: index + 1,
        name: curves.variant,
        color: this.colorOf(index),
        xs: shown.xs,
        ys: shown.mean,
        smoothed: null,
      };
      if (shown.seeds > 1) run.band = { low: shown.low, high: shown.high };
      if (this.curve === 'train' && curves.valid.xs.length > 0) {
        run.evalXs = curves.valid.xs;
        run.evalYs = curves.valid.mean;
      }
      return run;
    });
    this.chart.update(
      {
        xLabel: xLabels[view.x],
        yLabel: this.curve === 'train' ? 'train loss' : `${view.report.split} loss`,
        formatX: (value) =>
          view.x === 'elapsed'
            ? formatDuration(value)
            : view.x === 'tokens'
              ? formatCount(Math.round(value))
              : String(Math.round(value)),
        integerX: view.x !== 'elapsed',
        runs,
        logScale: false,
        emptyText: 'No values logged yet.',
      },
      null,
    );
    const finished = view.runs.filter((run) => run.status === 'finished').length;
    const running = view.runs.filter((run) => run.status === 'running').length;
    element('experiment-status').textContent =
      `${finished} of ${view.runs.length} runs finished${running > 0 ? `, ${running} running` : ''}`;
  }

  private renderTable(report: ExperimentReport): void {
    const columns = reportColumns(report);
    const signature = columns.map((column) => column.header).join('|');
    if (!this.table || signature !== this.tableColumns) {
      this.tableColumns = signature;
      this.table = new SortableTable<ExperimentReportRow>(
        element('experiment-table'),
        columns.map((column, index) => ({
          key: column.key,
          label: column.header,
          value: column.value,
          render: (row) => {
            if (index !== 0) return column.text(row);
            const wrapper = document.createElement('span');
            const swatch = document.createElement('span');
            swatch.className = 'swatch';
            swatch.style.background = this.colorOf(report.rows.indexOf(row));
            wrapper.append(swatch, column.text(row));
            return wrapper;
          },
          numeric: index > 0,
        })),
        { rowKey: (row) => row.variant, emptyText: 'no variants' },
      );
    }
    this.table.setRows(report.rows);
  }

  private async export(kind: string): Promise<void> {
    const view = this.view;
    if (!view) return;
    try {
      if (kind === 'png') {
        const title = `${view.name}: ${this.curve === 'train' ? 'train' : view.report.split} loss vs ${xLabels[view.x]}`;
        this.download(await this.chart.toPng(title), `${view.name}-${this.curve}.png`);
      } else {
        const format = kind === 'csv' ? 'csv' : 'markdown';
        this.download(
          new Blob([formatReport(view.report, format)], {
            type: format === 'csv' ? 'text/csv' : 'text/markdown',
          }),
          `${view.name}.${format === 'csv' ? 'csv' : 'md'}`,
        );
      }
    } catch (error) {
      this.showError(error);
    }
  }
}
