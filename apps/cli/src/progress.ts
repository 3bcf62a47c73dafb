// A one-line progress bar for long CLI tasks. Redraws in place on a TTY, and prints a plain line
// at most every few seconds otherwise (CI logs, pipes), so logs stay readable.

export interface ProgressOptions {
  /** Label printed before the bar. */
  label: string;
  /** Total units of work, if known. */
  total?: number;
  /** Units already done before this bar started (a resumed run): counted, but not in the rate. */
  initial?: number;
  /** Unit name for the rate, e.g. 'tokens'. */
  unit?: string;
  stream?: NodeJS.WriteStream;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(r).padStart(2, '0')}s`
      : `${r}s`;
}

/** A rate with enough digits to be readable below 10 (0.42 steps/s, not 0). */
export function formatRate(n: number): string {
  return n < 10 ? n.toFixed(2) : formatCount(n);
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export class ProgressBar {
  private readonly start = performance.now();
  private lastPlain = Number.NEGATIVE_INFINITY;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY) || this.behindWrapper() !== undefined;
  }

  /**
   * The terminal width when this stream is stderr piped through bin/baka.js to a terminal (the
   * wrapper says so in BAKA_STDERR_TTY_COLUMNS); undefined otherwise.
   */
  private behindWrapper(): number | undefined {
    const columns = process.env.BAKA_STDERR_TTY_COLUMNS;
    if (this.stream !== process.stderr || this.stream.isTTY || columns === undefined)
      return undefined;
    // stdout on the same terminal follows resizes; the width the wrapper saw at start otherwise
    return process.stdout.isTTY ? process.stdout.columns : Number(columns) || 0;
  }

  /** Reports `done` units so far; `extra` is appended (e.g. `loss 4.12`). */
  update(done: number, extra = ''): void {
    const now = performance.now();
    const elapsed = (now - this.start) / 1000;
    const { total, unit = 'items', label } = this.options;
    const rate = elapsed > 0 ? (done - (this.options.initial ?? 0)) / elapsed : 0;
    let line = label;
    if (total !== undefined && total > 0) {
      const fraction = Math.min(1, done / total);
      const width = 24;
      const filled = Math.round(fraction * width);
      const eta = rate > 0 ? (total - done) / rate : Number.POSITIVE_INFINITY;
      line += ` [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ${formatCount(done)}/${formatCount(total)}`;
      line += ` ${formatRate(rate)} ${unit}/s ETA ${formatDuration(eta)}`;
    } else {
      line += ` ${formatCount(done)} ${unit} ${formatRate(rate)} ${unit}/s ${formatDuration(elapsed)}`;
    }
    if (extra) line += ` ${extra}`;
    if (this.tty) {
      const columns = this.stream.columns ?? this.behindWrapper() ?? 120;
      this.stream.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
    } else if (now - this.lastPlain > 5000 || (total !== undefined && done >= total)) {
      this.lastPlain = now;
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the bar (leaves the last state on its own line on a TTY). */
  finish(message?: string): void {
    if (this.tty) this.stream.write('\n');
    if (message) this.stream.write(`${message}\n`);
  }
}
