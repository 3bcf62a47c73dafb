// An in-memory, column-wise copy of one run's metric rows, loaded once and then extended with only
// the rows written since. Zooming and live updates then never re-read the whole history. Columns
// are loaded on first use; SQLite packs each column into one JSON array (`json_group_array`),
// which is several times faster than materializing a million row objects.
import type Database from 'better-sqlite3';

export const X_COLUMNS = ['step', 'tokens', 'elapsed'] as const;
export const METRIC_COLUMNS = ['loss', 'lr', 'grad_norm', 'tokens_per_second'] as const;
export type XColumn = (typeof X_COLUMNS)[number];
export type MetricColumn = (typeof METRIC_COLUMNS)[number];
type Column = XColumn | MetricColumn;
const COLUMNS: readonly string[] = [...X_COLUMNS, ...METRIC_COLUMNS];

function assertColumn(name: string): asserts name is Column {
  if (!COLUMNS.includes(name)) throw new Error(`run-columns: unknown column '${name}'`);
}

/** NULL (a missing or non-finite metric) becomes NaN. */
function toNumbers(json: string): number[] {
  const values = JSON.parse(json) as (number | null)[];
  for (let index = 0; index < values.length; index++) {
    if (values[index] === null) values[index] = Number.NaN;
  }
  return values as number[];
}

/** `json_group_array(a) AS c0, json_group_array(b) AS c1, …`: each column as one JSON array. */
function jsonArrayAggregates(names: Column[]): string {
  return names.map((name, index) => `json_group_array(${name}) AS c${index}`).join(', ');
}

export class RunColumns {
  private readonly data = new Map<Column, Float64Array>();
  private capacity = 0;
  /** The `time` of the last row held, to notice when a resumed run rewrites it. */
  private lastTime: number | undefined;
  length = 0;

  constructor(readonly runId: number) {}

  /** A loaded column; its first `length` entries are valid. */
  get(name: string): Float64Array {
    assertColumn(name);
    const column = this.data.get(name);
    if (!column)
      throw new Error(`run-columns: column '${name}' of run ${this.runId} is not loaded`);
    return column;
  }

  private reset(): void {
    this.data.clear();
    this.capacity = 0;
    this.length = 0;
    this.lastTime = undefined;
  }

  private timeOf(database: Database.Database, step: number): number | undefined {
    const row = database
      .prepare('SELECT time FROM metrics WHERE run_id = ? AND step = ?')
      .get(this.runId, step) as { time: number } | undefined;
    return row?.time;
  }

  private ensureCapacity(total: number): void {
    if (total <= this.capacity) return;
    const capacity = Math.max(total, this.capacity * 2, 1024);
    for (const [name, column] of this.data) {
      const grown = new Float64Array(capacity);
      grown.set(column.subarray(0, this.length));
      this.data.set(name, grown);
    }
    this.capacity = capacity;
  }

  private select(
    database: Database.Database,
    names: Column[],
    afterStep: number,
    upToStep: number,
  ): number[][] {
    const aggregates = jsonArrayAggregates(names);
    const row = database
      .prepare(
        `SELECT ${aggregates} FROM
           (SELECT ${names.join(', ')} FROM metrics WHERE run_id = ? AND step > ? AND step <= ? ORDER BY step)`,
      )
      .raw()
      .get(this.runId, afterStep, upToStep) as string[];
    return row.map(toNumbers);
  }

  /**
   * The first load of a run whose steps form a regular grid (every step, or every n-th: what a
   * trainer logs) reads only the value columns and generates the steps: one column less to pack
   * and parse. The grid is confirmed inside the same scan (row count, every step on the grid);
   * otherwise this returns false and the steps are read like any column.
   */
  private loadGrid(database: Database.Database, wanted: Column[]): boolean {
    const values = wanted.filter((name) => name !== 'step');
    const edge = (order: 'ASC' | 'DESC', offset: number) =>
      (
        database
          .prepare(
            `SELECT step FROM metrics WHERE run_id = ? ORDER BY step ${order} LIMIT 1 OFFSET ${offset}`,
          )
          .get(this.runId) as { step: number } | undefined
      )?.step;
    const first = edge('ASC', 0);
    const second = edge('ASC', 1);
    const last = edge('DESC', 0);
    if (values.length === 0 || first === undefined || second === undefined || last === undefined)
      return false;
    const stride = second - first;
    if ((last - first) % stride !== 0) return false;
    const count = (last - first) / stride + 1;
    const aggregates = jsonArrayAggregates(values);
    const row = database
      .prepare(
        `SELECT COUNT(*), MAX((step - ?) % ?), ${aggregates} FROM
           (SELECT step, ${values.join(', ')} FROM metrics WHERE run_id = ? AND step >= ? AND step <= ? ORDER BY step)`,
      )
      .raw()
      .get(first, stride, this.runId, first, last) as [number, number, ...string[]];
    if (row[0] !== count || row[1] !== 0) return false;
    const capacity = Math.max(count, 1024);
    const steps = new Float64Array(capacity);
    for (let index = 0; index < count; index++) steps[index] = first + index * stride;
    this.data.clear();
    this.data.set('step', steps);
    values.forEach((name, index) => {
      const column = new Float64Array(capacity);
      column.set(toNumbers(row[index + 2] as string));
      this.data.set(name, column);
    });
    this.capacity = capacity;
    this.length = count;
    this.lastTime = this.timeOf(database, last);
    return true;
  }

  /** Brings the cache up to date: loads `needed` columns, appends new rows, reloads if history changed. */
  refresh(database: Database.Database, needed: readonly string[]): void {
    if (this.length > 0) {
      // A resumed run rewrites steps it had logged (INSERT OR REPLACE): the row we hold last then
      // has a new time, or is gone. Start over in that case.
      const time = this.timeOf(database, this.get('step')[this.length - 1]!);
      if (time === undefined || time !== this.lastTime) this.reset();
    }
    const wanted = new Set<Column>(['step']);
    for (const name of needed) {
      assertColumn(name);
      wanted.add(name);
    }
    if (this.length === 0 && this.loadGrid(database, [...wanted])) return;
    const lastStep = this.length > 0 ? this.get('step')[this.length - 1]! : -1;
    const missing = [...wanted].filter((name) => !this.data.has(name));
    if (this.length > 0 && missing.length > 0) {
      const loaded = this.select(database, missing, -1, lastStep);
      if (loaded[0]!.length !== this.length) {
        this.reset();
        this.refresh(database, needed);
        return;
      }
      missing.forEach((name, index) => {
        const column = new Float64Array(this.capacity);
        column.set(loaded[index]!);
        this.data.set(name, column);
      });
    } else if (this.length === 0) {
      for (const name of wanted) this.data.set(name, new Float64Array(this.capacity));
    }
    const names = [...this.data.keys()];
    const appended = this.select(database, names, lastStep, Number.MAX_SAFE_INTEGER);
    const count = appended[0]!.length;
    if (count === 0) return;
    this.ensureCapacity(this.length + count);
    names.forEach((name, index) => {
      this.data.get(name)!.set(appended[index]!, this.length);
    });
    this.length += count;
    this.lastTime = this.timeOf(database, this.get('step')[this.length - 1]!);
  }
}
