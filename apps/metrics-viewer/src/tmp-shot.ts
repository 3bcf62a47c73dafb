import { chromium } from 'playwright-core';
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-quic',
    '--disable-sync',
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
page.on('console', (m) => console.log('console:', m.text()));
page.on('pageerror', (e) => console.log('pageerror:', e.message));
await page.goto(process.argv[2] ?? 'http://127.0.0.1:5199/');
await page.waitForTimeout(2500);
await page.locator('#runs-table tbody tr').nth(1).click();
await page.waitForTimeout(1500);
await page.screenshot({ path: '/tmp/vw/shot.png', fullPage: true });
await browser.close();
