import { PassThrough } from 'node:stream';
import { describe, expect, test, vi } from 'vitest';
import { formatCount, formatRate, ProgressBar } from './progress';

describe('progress formatting', () => {
  test('counts abbreviate large numbers and rates keep decimals below 10', () => {
    expect(formatCount(950)).toBe('950');
    expect(formatCount(12_345)).toBe('12.3k');
    expect(formatCount(3_400_000)).toBe('3.40M');
    expect(formatRate(0.4234)).toBe('0.42');
    expect(formatRate(7)).toBe('7.00');
    expect(formatRate(2_500)).toBe('2500');
  });

  test('off a TTY it prints plain lines with percentage, counts and ETA, and the final state', () => {
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let output = '';
    (stream as unknown as PassThrough).on('data', (chunk) => {
      output += String(chunk);
    });
    const bar = new ProgressBar({ label: 'train', total: 10, unit: 'steps', stream });
    bar.update(1, 'loss 9.00');
    bar.update(10, 'loss 4.00');
    bar.finish('done');
    const lines = output.trim().split('\n');
    expect(lines[0]).toMatch(
      /^train \[#+\.+\] 10\.0% 1\/10 [\d.]+[kMG]? steps\/s ETA \S+ loss 9\.00$/,
    );
    expect(lines[1]).toMatch(/^train \[#{24}\] 100\.0% 10\/10 .* loss 4\.00$/);
    expect(lines[2]).toBe('done');
  });
});

describe('progress behind bin/baka.js', () => {
  test('stderr piped through the wrapper to a terminal still redraws the bar in place', () => {
    const before = process.env.BAKA_STDERR_TTY_COLUMNS;
    process.env.BAKA_STDERR_TTY_COLUMNS = '40';
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      const bar = new ProgressBar({ label: 'train', total: 10, unit: 'steps' });
      bar.update(1);
      bar.update(2);
      bar.finish();
    } finally {
      spy.mockRestore();
      if (before === undefined) delete process.env.BAKA_STDERR_TTY_COLUMNS;
      else process.env.BAKA_STDERR_TTY_COLUMNS = before;
    }
    const width = process.stdout.isTTY ? process.stdout.columns : 40;
    expect(writes).toHaveLength(3);
    expect(writes[0]).toMatch(/^\rtrain \[/);
    expect(writes[0]).toHaveLength(width);
    expect(writes[1]).toMatch(/^\rtrain \[/);
    expect(writes[2]).toBe('\n');
  });
});
