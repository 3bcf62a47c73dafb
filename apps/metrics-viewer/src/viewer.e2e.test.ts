// End to end in real headless Chromium (see chromium.ts) against a real server over a real
// three-run database.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MetricsStore } from '@baka/trainer/metrics';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium';
import { writeMetricRows, writeThreeRunFixture } from './fixture-database';
import { startViewerServer, type ViewerServer } from './server';

const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'metrics-viewer-e2e-'));
const databasePath = join(directory, 'metrics.sqlite');

/** Pixels of the loss chart's canvas close to a run's color. */
async function countColorPixels(page: Page, hex: string): Promise<number> {
  return page.evaluate((color) => {
    const canvas = document.querySelector<HTMLCanvasElement>('#loss-chart canvas');
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
      if (distance < 60 && pixels[index + 3]! > 200) count++;
    }
    return count;
  }, hex);
}

const lossCanvas = (page: Page) =>
  page.evaluate(() => document.querySelector<HTMLCanvasElement>('#loss-chart canvas')!.toDataURL());

describe('metrics viewer in Chromium', () => {
  let browser: Browser;
  let server: ViewerServer;
  let page: Page;
  const pageErrors: string[] = [];
  let ids: Record<string, number>;

  beforeAll(async () => {
    const { runs } = writeThreeRunFixture(databasePath);
    ids = Object.fromEntries(runs.map((run) => [run.name, run.id]));
    server = await startViewerServer({ databasePath, port: 0 });
    browser = await launchChromium();
    page = await browser.newPage({
      viewport: { width: 1400, height: 1900 },
      acceptDownloads: true,
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Console errors include Content-Security-Policy violations and failed requests.
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

  it('lists the three runs with their status', async () => {
    const rows = page.locator('#runs-table tbody tr');
    await expect.poll(() => rows.count()).toBe(3);
    const names = await page.locator('#runs-table tbody td[data-key="name"]').allTextContents();
    expect(names.map((name) => name.trim()).sort()).toEqual([
      'xl-killed',
      'xl-noreset',
      'xl-reset',
    ]);
    await expect
      .poll(() => page.locator('#runs-table tr[data-key] td[data-key="status"]').allTextContents())
      .toContain('stopped (interrupted)');
  });

  it('draws one series per selected run', async () => {
    // The newest run is selected on load.
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-series')).toBe('1');
    await expect.poll(() => countColorPixels(page, '#dc2626')).toBeGreaterThan(200); // xl-noreset (id 2)
    expect(await countColorPixels(page, '#2563eb')).toBeLessThan(20);
    await page.locator(`#runs-table tr[data-key="${ids['xl-reset']}"]`).click();
    await expect.poll(() => page.locator('#loss-chart').getAttribute('data-series')).toBe('2');
    await expect.poll(() => countColorPixels(page, '#2563eb')).toBeGreaterThan(200); // xl-reset (id 1)
    expect(await countColorPixels(page, '#dc2626')).toBeGreaterThan(200);
    expect(await page.locator('#loss-chart .u-legend').textContent()).toContain(
      'xl-reset (smoothed)',
    );
    expect(await page.locator('#second-chart').getAttribute('data-series')).toBe('2');
    // Both selected runs differ only in the memory reset flag.
    await expect
      .poll(() => page.locator('#config-diff-table tbody tr').allTextContents())
      .toEqual(['model.resetMemoryfalsetrue']);
  });

  it('redraws the curves when the smoothing slider moves', async () => {
    const before = await lossCanvas(page);
    await page.locator('#smoothing').fill('0.95');
    await expect.poll(() => page.locator('#smoothing-value').textContent()).toBe('0.95');
    await expect.poll(() => lossCanvas(page)).not.toBe(before);
    const smoothed = await lossCanvas(page);
    await page.locator('#smoothing').fill('0');
    await expect.poll(() => lossCanvas(page)).not.toBe(smoothed);
    expect(await page.locator('#loss-chart .u-legend').textContent()).not.toContain('(smoothed)');
    await page.locator('#smoothing').fill('0.6');
  });

  it('shows rows appended to the database without a reload', async () => {
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    const runId = ids['xl-noreset']!;
    const pointsBefore = await page.locator('#loss-chart').getAttribute('data-points');
    const store = new MetricsStore(databasePath);
    writeMetricRows(store, runId, 200, 260, 2);
    store.close();
    const stepsCell = page.locator(`#runs-table tr[data-key="${runId}"] td[data-key="steps"]`);
    await expect.poll(() => stepsCell.textContent(), { timeout: 10_000 }).toBe('259');
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-points'), { timeout: 10_000 })
      .not.toBe(pointsBefore);
    const points = (await page.locator('#loss-chart').getAttribute('data-points'))!
      .split(',')
      .map(Number);
    expect(points).toEqual([260, 300]);
    expect(
      await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded),
    ).toBe(true);
  });

  it('shows a tooltip with every run at the cursor, and a screenshot is saved', async () => {
    const box = (await page.locator('#loss-chart .u-over').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await expect.poll(() => page.locator('#tooltip').isVisible()).toBe(true);
    const text = await page.locator('#tooltip').textContent();
    expect(text).toContain('xl-reset:');
    expect(text).toContain('xl-noreset:');
    mkdirSync(artifacts, { recursive: true });
    const screenshot = join(artifacts, 'metrics-viewer.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(existsSync(screenshot)).toBe(true);
    expect(pageErrors).toEqual([]);
  });

  it('zooms by dragging, fetching the range at full resolution, and resets', async () => {
    const box = (await page.locator('#loss-chart .u-over').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    await expect
      .poll(() => page.locator('#zoom-status').textContent())
      .toMatch(/^zoomed to \d+ – \d+$/);
    const [from, to] = (await page.locator('#zoom-status').textContent())!
      .match(/\d+/g)!
      .map(Number);
    const expected = (lastStep: number) =>
      Math.max(0, Math.min(lastStep, Math.floor(to!)) - Math.ceil(from!) + 1);
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-points'))
      .toBe(`${expected(259)},${expected(299)}`);
    await page.locator('#reset-zoom').click();
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-points'))
      .toBe('260,300');
    expect(await page.locator('#zoom-status').textContent()).toBe('');
  });

  it('switches the x axis to tokens and the y axis to log scale', async () => {
    const linear = await lossCanvas(page);
    await page.locator('#log-scale').check();
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-axes'))
      .toBe('step / loss (log)');
    await expect.poll(() => lossCanvas(page)).not.toBe(linear);
    await page.locator('#log-scale').uncheck();
    const bySteps = await lossCanvas(page);
    await page.locator('#x-axis').selectOption('tokens');
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-axes'))
      .toBe('tokens / loss');
    await expect.poll(() => lossCanvas(page)).not.toBe(bySteps);
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-points'))
      .toBe('260,300');
    await page.locator('#x-axis').selectOption('elapsed');
    await expect
      .poll(() => page.locator('#loss-chart').getAttribute('data-axes'))
      .toBe('wall time / loss');
    await page.locator('#x-axis').selectOption('step');
    await page.locator('#second-metric').selectOption('grad_norm');
    await expect
      .poll(() => page.locator('#second-chart').getAttribute('data-axes'))
      .toBe('step / grad norm');
    await expect
      .poll(() => page.locator('#second-chart').getAttribute('data-points'))
      .toBe('260,300');
    await page.locator('#second-metric').selectOption('lr');
  });

  it('sorts the results table by a clicked column', async () => {
    const firstLoss = () =>
      page.locator('#results-table tbody tr').first().locator('td[data-key="loss"]').textContent();
    await page.locator('#results-table th[data-key="loss"]').click();
    await expect.poll(firstLoss).toBe('2.61');
    await page.locator('#results-table th[data-key="loss"]').click();
    await expect.poll(firstLoss).toBe('2.74');
    expect(await page.locator('#results-table th[data-key="loss"]').getAttribute('data-sort')).toBe(
      'desc',
    );
  });

  it("shows a result's answer accuracy per distance (recall corpus), blank for other results", async () => {
    const answers = (loss: string) =>
      page
        .locator('#results-table tbody tr', {
          has: page.locator(`td[data-key="loss"]:text-is("${loss}")`),
        })
        .locator('td[data-key="answers"]')
        .textContent();
    await expect.poll(() => answers('2.61')).toBe('@0 75.0% @1 20.0%');
    await expect.poll(() => answers('2.74')).toBe('–');
  });

  it('filters the runs table by name', async () => {
    await page.locator('#run-filter').fill('kill');
    await expect.poll(() => page.locator('#runs-table tbody tr').count()).toBe(1);
    await page.locator('#run-filter').fill('');
    await expect.poll(() => page.locator('#runs-table tbody tr').count()).toBe(3);
  });

  it('exports the selected series as CSV and the chart as PNG', async () => {
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('button[data-export="csv"][data-chart="loss"]').click(),
    ]);
    const text = readFileSync((await csv.path())!, 'utf8');
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('run,step,loss,loss smoothed');
    expect(lines.length).toBe(1 + 260 + 300);
    expect(lines[1]).toMatch(/^xl-noreset,0,[\d.]+,[\d.]+$/);
    const [png] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('button[data-export="png"][data-chart="loss"]').click(),
    ]);
    const bytes = readFileSync((await png.path())!);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(png.suggestedFilename()).toBe('loss-xl-noreset_xl-reset.png');
  });

  it('shows the start command when the database does not exist', async () => {
    const empty = await startViewerServer({
      databasePath: join(directory, 'none', 'metrics.sqlite'),
      port: 0,
    });
    try {
      const emptyPage = await browser.newPage();
      await emptyPage.goto(empty.url);
      await expect.poll(() => emptyPage.locator('#empty-state').isVisible()).toBe(true);
      expect(await emptyPage.locator('#empty-command').textContent()).toBe(
        'pnpm --filter cli train',
      );
      expect(await emptyPage.locator('#content').isVisible()).toBe(false);
      await emptyPage.close();
    } finally {
      await empty.close();
    }
  });
});
