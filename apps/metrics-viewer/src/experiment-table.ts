// An experiment's report as a table: one row per variant, its columns, and the text forms
// `baka experiment report --format` prints and the viewer exports (aligned text, markdown, CSV).
// No Node imports: the viewer's page bundles this file too.

/** One variant of an experiment, its seeds' runs summarised. */
export interface ExperimentReportRow {
  variant: string;
  /** Runs of this variant (one per seed) and how many of them finished. */
  runs: number;
  finished: number;
  /** Every parameter, and all but the V x D input embedding and output projection. */
  params: number | null;
  nonEmbeddingParams: number | null;
  // The figures below are over the variant's finished runs (none: null).
  /** Tokens trained on per second of training steps (all seeds together). */
  tokensPerSecond: number | null;
  /** Mean over seeds of the mean training loss of each run's last `lastSteps` steps. */
  trainLoss: number | null;
  /** Mean over seeds of the last evaluation: the per-article mean (upstream's number). */
  validLoss: number | null;
  /** Mean over seeds of the last evaluation's token-weighted loss. */
  validTokenLoss: number | null;
  /** exp(validLoss). */
  perplexity: number | null;
  /** validLoss minus the first variant's. */
  diff: number | null;
  /** Sample standard deviation of validLoss over seeds (null with fewer than two). */
  spread: number | null;
  /**
   * Answer accuracy (recall corpus) at each of the report's `distances`: mean over seeds of the
   * last evaluation's share of answer tokens predicted right; null where none was scored.
   */
  answerAccuracy: (number | null)[];
}

export interface ExperimentReport {
  name: string;
  /** The split the evaluations scored. */
  split: string;
  /** Training steps the final train loss is averaged over. */
  lastSteps: number;
  seeds: number[];
  /** Distances in chunks the runs' answer evaluations scored (empty: the corpus has no answers). */
  distances: number[];
  rows: ExperimentReportRow[];
}

export const REPORT_FORMATS = ['table', 'markdown', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

interface Column {
  /** A field of the row, or `answerAccuracy.<distance>`. */
  key: string;
  header: string;
  /** The unrounded value (CSV, sorting). */
  value: (row: ExperimentReportRow) => number | string | null;
  text: (row: ExperimentReportRow) => string;
}

function fixed(digits: number): (value: number | null) => string {
  return (value) => (value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits));
}

function signed(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return `${value >= 0 ? '+' : ''}${value.toFixed(4)}`;
}

/** A count as `13.9M`, `412.5k` or `980`. */
export function formatCount(value: number | null): string {
  if (value === null) return '-';
  if (value >= 1e9) return `${(value / 1e9).toFixed(2)}G`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}

/** The report's columns, in order: header and how a row's value reads. */
export function reportColumns(report: ExperimentReport): Column[] {
  const loss = fixed(4);
  const field = (
    key: Exclude<keyof ExperimentReportRow, 'answerAccuracy'>,
    header: string,
    text: (row: ExperimentReportRow) => string,
  ): Column => ({ key, header, value: (row) => row[key], text });
  return [
    field('variant', 'variant', (row) => row.variant),
    field('runs', 'runs', (row) => `${row.finished}/${row.runs}`),
    field('params', 'params', (row) => formatCount(row.params)),
    field('nonEmbeddingParams', 'non-emb params', (row) => formatCount(row.nonEmbeddingParams)),
    field('tokensPerSecond', 'tokens/s', (row) => formatCount(row.tokensPerSecond)),
    field('trainLoss', `train loss (last ${report.lastSteps})`, (row) => loss(row.trainLoss)),
    field('validLoss', `${report.split} loss`, (row) => loss(row.validLoss)),
    field('validTokenLoss', `${report.split} loss (token-weighted)`, (row) =>
      loss(row.validTokenLoss),
    ),
    field('perplexity', 'ppl', (row) => fixed(1)(row.perplexity)),
    field('diff', 'vs first', (row) => signed(row.diff)),
    field('spread', `± seeds (${report.seeds.length})`, (row) => loss(row.spread)),
    ...report.distances.map(
      (distance, i): Column => ({
        key: `answerAccuracy.${distance}`,
        header: `acc @${distance}`,
        value: (row) => row.answerAccuracy[i] ?? null,
        text: (row) => {
          const value = row.answerAccuracy[i] ?? null;
          return value === null ? '-' : `${(100 * value).toFixed(1)}%`;
        },
      }),
    ),
  ];
}

/** The report as aligned text columns (what the terminal shows). */
export function reportText(report: ExperimentReport): string {
  const columns = reportColumns(report);
  const cells = [
    columns.map((column) => column.header),
    ...report.rows.map((row) => columns.map((column) => column.text(row))),
  ];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  const lines = cells.map((line) =>
    line
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  return `${lines.join('\n')}\n`;
}

/** The report as a markdown table. */
export function reportMarkdown(report: ExperimentReport): string {
  const columns = reportColumns(report);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return `${[
    line(columns.map((column) => column.header)),
    line(columns.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...report.rows.map((row) => line(columns.map((column) => column.text(row)))),
  ].join('\n')}\n`;
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The report as CSV: one row per variant, the unrounded numbers, empty where there is none. */
export function reportCsv(report: ExperimentReport): string {
  const columns = reportColumns(report).flatMap((column) =>
    column.key === 'runs'
      ? [column, { ...column, key: 'finished', value: (row: ExperimentReportRow) => row.finished }]
      : [column],
  );
  const rows = report.rows.map((row) =>
    columns.map((column) => csvCell(column.value(row))).join(','),
  );
  return `${[columns.map((column) => column.key).join(','), ...rows].join('\n')}\n`;
}

/** The report in one of `REPORT_FORMATS`. */
export function formatReport(report: ExperimentReport, format: ReportFormat): string {
  switch (format) {
    case 'table':
      return reportText(report);
    case 'markdown':
      return reportMarkdown(report);
    case 'csv':
      return reportCsv(report);
    case 'json':
      return `${JSON.stringify(report, null, 2)}\n`;
  }
}
