// The live page in a real browser, against a short real training run (.ci/run runs it):
//
//   node check.mjs path/to/network [--screenshot FILE]
//
// It trains on the embedded sample with `train --serve` (slow kernels, small batches, so that
// steps keep coming while the page watches), opens the printed address in headless Chromium
// (CHROMIUM, else /usr/bin/chromium) and checks that the loss curve gains points as steps
// happen, that a click on a test image shows its maps and layers, and that a picture dropped on
// the page gets a prediction. Ends with "N passed, M failed"; exits non-zero on any failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [binary, ...rest] = process.argv.slice(2);
if (!binary) {
  console.error('usage: node check.mjs path/to/network [--screenshot FILE]');
  process.exit(2);
}
const shot = rest[0] === '--screenshot' ? resolve(rest[1]) : null;
const LIMIT = 60_000;
const work = mkdtempSync(join(tmpdir(), 'page-check-'));
const env = { ...process.env };
delete env.NETWORK_DATA;
delete env.NETWORK_RUNS;
const args = ['train', '--serve', '--epochs', '2', '--batch-size', '8', '--technique', 'naive',
  '--threads', '1', '--out', 'run'];
const trainer = spawn(resolve(binary), args, { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';

const url = await new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error(`no page address within ${LIMIT} ms:\n${log}`)), LIMIT);
  trainer.stderr.on('data', (chunk) => {
    log += chunk;
    const m = log.match(/page: (http:\/\/\S+)/);
    if (m) { clearTimeout(timer); ok(m[1]); }
  });
  trainer.on('exit', (code) => fail(new Error(`the trainer exited (${code}) before serving:\n${log}`)));
});
console.log(`page at ${url}`);

const results = [];
async function check(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push(true);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

// What the page did, printed when a check fails: its console, its errors and the requests
// still waiting for an answer (CI once saw the first load never end, with nothing to tell why).
const seen = [];
const pending = new Map();
function diagnose() {
  console.log(`--- the page's console and errors (${seen.length}):`);
  for (const line of seen.slice(-40)) console.log(`  ${line}`);
  console.log(`--- requests without an answer (${pending.size}):`);
  for (const [request, at] of pending) {
    console.log(`  ${request.method()} ${request.url()} (${Date.now() - at} ms)`);
  }
  console.log(`--- the trainer's log:\n${log.split('\n').slice(-30).join('\n')}`);
}

// The flags of this machine kind's probe: no background networking (the closed network refuses
// Chromium's own connections, and its look-ups of Google's hosts can stall), no GPU, no QUIC.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(LIMIT);
  page.on('console', (m) => seen.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => seen.push(`error: ${e.message}`));
  page.on('request', (r) => pending.set(r, Date.now()));
  page.on('requestfinished', (r) => pending.delete(r));
  page.on('requestfailed', (r) => {
    pending.delete(r);
    seen.push(`failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  // The checks below wait for what each needs; the document's own load is not one of them (the
  // event stream it opens never ends).
  await check('the page answers', async () => {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    if (!(await page.title()).includes('watch it learn')) throw new Error(await page.title());
  });
  if (!results[0]) throw new Error('the page did not load; the other checks were not run');
  const points = () => page.$eval('#loss', (c) => Number(c.dataset.points));

  await check('the loss curve gains points as steps happen', async () => {
    await page.waitForFunction(() => Number(document.getElementById('loss').dataset.points) > 0);
    const first = await points();
    await page.waitForFunction((n) => Number(document.getElementById('loss').dataset.points) > n, first);
    const later = await points();
    const step = await page.textContent('#runs');
    if (!(later > first)) throw new Error(`${first} then ${later} points`);
    if (!/training/.test(step)) throw new Error(`the run's card does not say it is training: ${step}`);
  });

  await check('a click on a test image shows its maps and layers', async () => {
    await page.click('#gallery .shot');
    await page.waitForFunction(() => {
      const maps = document.getElementById('inspect-maps');
      const layers = document.getElementById('inspect-layers');
      return !document.getElementById('inspect').hidden && maps.complete && maps.naturalWidth > 0
        && layers.complete && layers.naturalWidth > 0;
    });
    const title = await page.textContent('#inspect-title');
    if (!/test image \d+: true class/.test(title)) throw new Error(`title: ${title}`);
  });

  await check('a dropped picture gets a prediction', async () => {
    // A 120×80 JPEG drawn in the page, dropped on the drop zone as a user's file would be.
    await page.evaluate(async () => {
      const canvas = Object.assign(document.createElement('canvas'), { width: 120, height: 80 });
      const ctx = canvas.getContext('2d');
      const g = ctx.createLinearGradient(0, 0, 120, 80);
      g.addColorStop(0, '#2a6'); g.addColorStop(1, '#36c');
      ctx.fillStyle = g; ctx.fillRect(0, 0, 120, 80);
      const blob = await new Promise((ok) => canvas.toBlob(ok, 'image/jpeg', 0.9));
      const drop = new DataTransfer();
      drop.items.add(new File([blob], 'mine.jpg', { type: 'image/jpeg' }));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => /^mine\.jpg:/.test(document.getElementById('inspect-title').textContent)
      && document.querySelectorAll('#inspect-top li').length === 3);
    const top = await page.textContent('#inspect-top li');
    if (!/\d+\.\d%/.test(top)) throw new Error(`prediction: ${top}`);
  });

  if (shot) await page.screenshot({ path: shot, fullPage: true });
} catch (e) {
  console.log(`FAIL ${e.message}`);
} finally {
  await browser.close();
  trainer.kill('SIGINT');
  await new Promise((ok) => { trainer.once('exit', ok); setTimeout(() => { trainer.kill('SIGKILL'); ok(); }, 20_000); });
  rmSync(work, { recursive: true, force: true });
}
const passed = results.filter(Boolean).length;
if (passed < results.length) diagnose();
console.log(`browser: ${passed} passed, ${results.length - passed} failed`);
process.exit(passed === results.length && results.length > 0 ? 0 : 1);
