// A small table renderer with click-to-sort headers (numbers numerically, text alphabetically,
// empty cells last).

export interface Column<Row> {
  key: string;
  label: string;
  value: (row: Row) => string | number | null | undefined;
  /** The cell's content; defaults to the value as text. */
  render?: (row: Row) => string | Node;
  numeric?: boolean;
}

export interface SortState {
  key: string;
  direction: 'asc' | 'desc';
}

export interface TableOptions<Row> {
  rowKey?: (row: Row) => string;
  onRowClick?: (row: Row, event: MouseEvent) => void;
  rowClass?: (row: Row) => string;
  emptyText?: string;
}

export class SortableTable<Row> {
  sort: SortState | undefined;
  private rows: Row[] = [];

  constructor(
    private readonly table: HTMLTableElement,
    private readonly columns: Column<Row>[],
    private readonly options: TableOptions<Row> = {},
    initialSort?: SortState,
  ) {
    this.sort = initialSort;
  }

  setRows(rows: Row[]): void {
    this.rows = rows;
    this.render();
  }

  private sorted(): Row[] {
    const sort = this.sort;
    if (!sort) return this.rows;
    const column = this.columns.find((candidate) => candidate.key === sort.key);
    if (!column) return this.rows;
    const sign = sort.direction === 'asc' ? 1 : -1;
    return [...this.rows].sort((a, b) => {
      const left = column.value(a);
      const right = column.value(b);
      const leftEmpty = left === null || left === undefined || left === '';
      const rightEmpty = right === null || right === undefined || right === '';
      if (leftEmpty || rightEmpty) return leftEmpty === rightEmpty ? 0 : leftEmpty ? 1 : -1;
      if (typeof left === 'number' && typeof right === 'number') return (left - right) * sign;
      return String(left).localeCompare(String(right), undefined, { numeric: true }) * sign;
    });
  }

  render(): void {
    const head = document.createElement('thead');
    const headRow = head.insertRow();
    for (const column of this.columns) {
      const cell = document.createElement('th');
      cell.textContent = column.label;
      cell.dataset.key = column.key;
      if (this.sort?.key === column.key) cell.dataset.sort = this.sort.direction;
      cell.addEventListener('click', () => {
        const direction =
          this.sort?.key === column.key && this.sort.direction === 'asc' ? 'desc' : 'asc';
        this.sort = { key: column.key, direction };
        this.render();
      });
      headRow.append(cell);
    }
    const body = document.createElement('tbody');
    const rows = this.sorted();
    if (rows.length === 0) {
      const cell = body.insertRow().insertCell();
      cell.colSpan = this.columns.length;
      cell.className = 'muted';
      cell.textContent = this.options.emptyText ?? 'nothing yet';
    }
    for (const row of rows) {
      const tableRow = body.insertRow();
      if (this.options.rowKey) tableRow.dataset.key = this.options.rowKey(row);
      if (this.options.rowClass) tableRow.className = this.options.rowClass(row);
      if (this.options.onRowClick) {
        const onClick = this.options.onRowClick;
        tableRow.addEventListener('click', (event) => onClick(row, event));
      }
      for (const column of this.columns) {
        const cell = tableRow.insertCell();
        cell.dataset.key = column.key;
        if (column.numeric) cell.className = 'number';
        const content = column.render ? column.render(row) : String(column.value(row) ?? '–');
        if (typeof content === 'string') cell.textContent = content;
        else cell.append(content);
      }
    }
    this.table.replaceChildren(head, body);
  }
}
