// Keeps the live page open in headless Chromium, as a user watching would:
//
//   node watch.mjs URL SECONDS [--click] [--screenshot FILE]
//
// Prints "open" once the page is connected. After SECONDS, optionally clicks the fourth
// test image and waits for its maps, takes a full-page screenshot, and closes. Used by
// scripts/page_cost.sh (training with and without a page open) and for the README's pictures.
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [url, secondsText, ...rest] = process.argv.slice(2);
const seconds = Number(secondsText);
if (!url || !(seconds >= 0)) {
  console.error('usage: node watch.mjs URL SECONDS [--click] [--screenshot FILE]');
  process.exit(2);
}
const click = rest.includes('--click');
const at = rest.indexOf('--screenshot');
const shot = at >= 0 ? resolve(rest[at + 1]) : null;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('link').textContent === 'live');
  console.log('open');
  await page.waitForTimeout(seconds * 1000);
  if (click) {
    await page.click('#gallery .shot:nth-child(4)');
    await page.waitForFunction(() => !document.getElementById('inspect').hidden
      && document.getElementById('inspect-maps').naturalWidth > 0, null, { timeout: 60_000 });
    await page.evaluate(() => window.scrollTo(0, 0));
  }
  if (shot) await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
