// The experiments view end to end in real headless Chromium (see chromium.ts) against a real
// server over a real database written by the trainer's own MetricsStore: an experiment of two
// variants x two seeds, then a third variant that appears while the page is open.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsStore } from '@baka/trainer/metrics';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium';
import { experimentReport } from './experiment-report';
import { formatReport } from './experiment-table';
import { runColor } from './client/format';
import { startViewerServer, type ViewerServer } from './server';

/**
 * Pixels of the experiment chart's (transparent) canvas holding `hex` at about 18 % opacity:
 * a band's fill.
 */
async function bandPixels(page: Page, hex: string): Promise<number> {
  return page.evaluate((color) => {
    const canvas = document.querySelector<HTMLCanvasElement>('#experiment-chart canvas');
    if (!canvas) return 0;
    const value = Number.parseInt(color.slice(1), 16);
    const [r, g, b] = [(value >> 16) & 255, (value >> 8) & 255, value & 255];
    const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let index = 0; index < pixels.length; index += 4) {
      const distance =
        Math.abs(pixels[index]! - r) +
        Math.abs(pixels[index + 1]! - g) +
        Math.abs(pixels[index + 2]! - b);
      const alpha = pixels[index + 3]! / 255;
      if (distance < 30 && alpha > 0.14 && alpha < 0.22) count++;
    }
    return count;
  }, hex);
}

const directory = mkdtempSync(join(tmpdir(), 'metrics-viewer-experiments-'));
const databasePath = join(directory, 'metrics.sqlite');
const STEPS = 30;

const spec = (variants: string[]) => ({
  name: 'cmp',
  variants: variants.map((name) => ({ name, set: [] })),
  seeds: [0, 1],
  eval: { every: 10, documents: 2, split: 'valid' },
  report: { lastSteps: 5 },
});

/** One run of the experiment: a loss curve offset by variant and seed, evals every 10 steps. */
function writeRun(
  store: MetricsStore,
  experimentId: number,
  variant: string,
  level: number,
  seed: number,
): void {
  const name = `cmp.${variant}.s${seed}`;
  store.linkExperimentRun(experimentId, {
    variant,
    seed,
    runName: name,
    settings: {},
    nParams: 1000 + level,
    nEmbeddingParams: 600,
  });
  const id = store.startRun({ name, config: {}, nParams: 1000 + level });
  for (let step = 1; step <= STEPS; step++) {
    const loss = 6 + level - step / 10 + seed * 0.2;
    store.logMetrics(id, {
      step,
      tokens: step * 100,
      elapsed: step * 0.5,
      loss,
      tokensPerSecond: 200,
    });
    if (step % 10 === 0) {
      store.logEval(id, {
        step,
        tokens: step * 100,
        elapsed: step * 0.5,
        split: 'valid',
        loss: loss + 0.3,
        tokenLoss: loss + 0.25,
        ppl: Math.exp(loss + 0.3),
        nans: 0,
        // answer accuracy per distance (a recall-corpus run): 10 answers fewer right per level
        answers: [
          { distance: 0, answers: 40, correct: 30 - 10 * level + 2 * seed, loss: 1 },
          { distance: 1, answers: 35, correct: 20 - 10 * level + 2 * seed, loss: 2 },
        ],
      });
    }
  }
  store.endRun(id, 'finished');
}

describe('experiments view in Chromium', () => {
  let browser: Browser;
  let server: ViewerServer;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const store = new MetricsStore(databasePath);
    const id = store.saveExperiment('cmp', spec(['reset', 'absolute']));
    for (const seed of [0, 1]) {
      writeRun(store, id, 'reset', 0, seed);
      writeRun(store, id, 'absolute', 1, seed);
    }
    store.close();
    server = await startViewerServer({ databasePath, port: 0 });
    browser = await launchChromium();
    page = await browser.newPage({
      viewport: { width: 1400, height: 1900 },
      acceptDownloads: true,
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(server.url);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("draws every variant's mean curve with a band over its seeds, and the report table", async () => {
    await expect.poll(() => page.locator('#experiments').isVisible()).toBe(true);
    expect(await page.locator('#experiment-select').inputValue()).toBe('cmp');
    const chart = page.locator('#experiment-chart');
    await expect.poll(() => chart.getAttribute('data-series')).toBe('2');
    // 30 steps, every one reached by both seeds
    expect(await chart.getAttribute('data-points')).toBe(`${STEPS},${STEPS}`);
    const legend = (await chart.locator('.u-legend').textContent()) ?? '';
    for (const label of [
      'reset',
      'reset (lowest seed)',
      'reset (highest seed)',
      'absolute (highest seed)',
      'absolute validation',
    ]) {
      expect(legend).toContain(label);
    }
    // the bands are filled: about 6,700 pixels of each variant's color at 18 % opacity (the
    // seed edges' faint lines alone, without the fill, give about 1,000)
    for (const color of [runColor(1), runColor(2)]) {
      expect(await bandPixels(page, color)).toBeGreaterThan(4000);
    }
    expect(await bandPixels(page, runColor(3))).toBe(0);
    const rows = page.locator('#experiment-table tbody tr');
    await expect.poll(() => rows.count()).toBe(2);
    const variants = await page
      .locator('#experiment-table tbody td[data-key="variant"]')
      .allTextContents();
    expect(variants.map((text) => text.trim())).toEqual(['reset', 'absolute']);
    // the table shows what `baka experiment report` computes: absolute is 1.0 worse
    const diff = await page
      .locator('#experiment-table tbody tr')
      .nth(1)
      .locator('td[data-key="diff"]')
      .textContent();
    expect(diff?.trim()).toBe('+1.0000');
    // answer accuracy per distance, the mean over seeds of the last evaluation
    const headers = await page.locator('#experiment-table thead th').allTextContents();
    expect(headers.slice(-2)).toEqual(['acc @0', 'acc @1']);
    const accuracy = (row: number, distance: number) =>
      page
        .locator('#experiment-table tbody tr')
        .nth(row)
        .locator(`td[data-key="answerAccuracy.${distance}"]`)
        .textContent();
    expect(await accuracy(0, 0)).toBe('77.5%'); // (30 + 32) / 80
    expect(await accuracy(0, 1)).toBe('60.0%'); // (20 + 22) / 70
    expect(await accuracy(1, 1)).toBe('31.4%'); // (10 + 12) / 70
    expect(await page.locator('#experiment-status').textContent()).toBe('4 of 4 runs finished');
  });

  it('switches the x axis and the curves', async () => {
    const chart = page.locator('#experiment-chart');
    await page.locator('#experiment-x').selectOption('tokens');
    await expect.poll(() => chart.getAttribute('data-axes')).toBe('tokens / train loss');
    await page.locator('#experiment-curve').selectOption('valid');
    await expect.poll(() => chart.getAttribute('data-axes')).toBe('tokens / valid loss');
    // three evaluations per run
    expect(await chart.getAttribute('data-points')).toBe('3,3');
    await page.locator('#experiment-curve').selectOption('train');
    await page.locator('#experiment-x').selectOption('step');
  });

  it('exports the table as CSV and markdown and the chart as PNG', async () => {
    const reader = new Database(databasePath, { readonly: true });
    const report = experimentReport(reader, 'cmp')!;
    reader.close();
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('button[data-experiment-export="csv"]').click(),
    ]);
    expect(csv.suggestedFilename()).toBe('cmp.csv');
    expect(readFileSync((await csv.path())!, 'utf8')).toBe(formatReport(report, 'csv'));
    const [markdown] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('button[data-experiment-export="markdown"]').click(),
    ]);
    expect(readFileSync((await markdown.path())!, 'utf8')).toBe(formatReport(report, 'markdown'));
    const [png] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('button[data-experiment-export="png"]').click(),
    ]);
    expect(
      readFileSync((await png.path())!)
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');
    expect(png.suggestedFilename()).toBe('cmp-train.png');
  });

  it('follows the experiment live: a variant added while the page is open appears', async () => {
    const store = new MetricsStore(databasePath);
    const id = store.saveExperiment('cmp', spec(['reset', 'absolute', 'none']));
    writeRun(store, id, 'none', 2, 0);
    store.close();
    const chart = page.locator('#experiment-chart');
    await expect.poll(() => chart.getAttribute('data-series'), { timeout: 10_000 }).toBe('3');
    await expect.poll(() => page.locator('#experiment-table tbody tr').count()).toBe(3);
    expect(await page.locator('#experiment-status').textContent()).toBe('5 of 5 runs finished');
    // one seed so far: no band for it
    expect(await chart.locator('.u-legend').textContent()).not.toContain('none (highest seed)');
    expect(pageErrors).toEqual([]);
  });
});
