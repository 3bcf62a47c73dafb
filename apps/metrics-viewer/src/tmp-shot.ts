import { launchChromium } from './chromium';
const browser = await launchChromium();
const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
await page.goto(process.argv[2]!);
await page.waitForTimeout(6000);
await page.screenshot({ path: process.argv[3]! });
await browser.close();
