#!/usr/bin/env node
// bench.mjs - what each dashboard costs the browser (bench/ui.sh runs it
// against an aggregator whose store it has filled).
//
//   node tests/ui/bench.mjs --base http://127.0.0.1:PORT [--loads 3] [--since 1h]
//
// For every page, --loads full loads (a fresh document each, range
// --since, refresh off) in one browser context, measured inside the page:
//   ready_ms    navigation start -> <main data-state=ready>, median of the loads
//   longtask_ms the longest main-thread task (PerformanceObserver 'longtask',
//               50 ms and more) from navigation to 1 s after ready: how long
//               the page froze at worst; median over the loads (each load's
//               figure in longtask_all: on a busy machine they vary a lot)
//   heap_mb     JS heap used after a forced garbage collection, 1 s after
//               ready (CDP Performance.getMetrics JSHeapUsedSize), largest
//   api         API requests of one load, and the slowest one's duration
//               (Resource Timing), median over the loads
// Before that, one load of the overview in a fresh context (empty cache):
// bytes transferred (Resource Timing transferSize: gzip bodies plus
// headers), for the document, app.js, app.css and the API answers.
// Output: one JSON object per line ({"first": ...} then {"page": ...});
// exits 1 when a page does not get ready within 60 s or logs an error.

import { launch, parseArgs, watchPage } from './lib.mjs';

const PAGES = ['overview', 'flows', 'pod-to-pod', 'pod-to-external', 'pod-to-service', 'node-to-node', 'policy', 'heatmap'];
const args = parseArgs(process.argv.slice(2), { base: '', loads: '3', since: '1h' });
if (!args.base) {
  process.stderr.write('usage: bench.mjs --base URL [--loads N] [--since 1h]\n');
  process.exit(2);
}
const base = args.base.replace(/\/$/, '');
const LOADS = Number(args.loads);
const READY_TIMEOUT = 60000;

// Runs in the page before its own scripts: records when <main> first turns
// ready after loading, and every long task.
function probe() {
  window.__bench = { ready: null, longtasks: [] };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch {
    /* no longtask support: the figure stays empty */
  }
  const watch = () => {
    const main = document.getElementById('page');
    if (!main) return false;
    let loading = main.dataset.state === 'loading';
    new MutationObserver(() => {
      if (main.dataset.state === 'loading') loading = true;
      else if (main.dataset.state === 'ready' && loading && window.__bench.ready === null) {
        window.__bench.ready = performance.now();
      }
    }).observe(main, { attributes: true, attributeFilter: ['data-state'] });
    return true;
  };
  if (!watch()) document.addEventListener('DOMContentLoaded', watch, { once: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

async function waitReady(page) {
  await page.waitForFunction(() => window.__bench && window.__bench.ready !== null, null, {
    timeout: READY_TIMEOUT,
    polling: 50,
  });
}

// One full load of url: {ready, longtask, heap, api, slowest}.
async function measure(page, cdp, url) {
  await page.goto('about:blank');
  await page.goto(url);
  await waitReady(page);
  await page.waitForTimeout(1000);
  const r = await page.evaluate(() => {
    const api = performance
      .getEntriesByType('resource')
      .filter((e) => new URL(e.name).pathname.includes('/api/'))
      .map((e) => e.duration);
    return {
      ready: window.__bench.ready,
      longtask: Math.max(0, ...window.__bench.longtasks.map((t) => t[1])),
      api: api.length,
      slowest: Math.max(0, ...api),
    };
  });
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  r.heap = metrics.find((m) => m.name === 'JSHeapUsedSize').value / 1048576;
  return r;
}

// The first load with an empty cache: bytes over the wire.
async function firstLoad(browser) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.addInitScript(probe);
  await page.goto(`${base}/#/overview?since=${args.since}&refresh=off`);
  await waitReady(page);
  const out = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const size = (re) => res.filter((e) => re.test(new URL(e.name).pathname)).reduce((a, e) => a + e.transferSize, 0);
    const body = (re) => res.filter((e) => re.test(new URL(e.name).pathname)).reduce((a, e) => a + e.decodedBodySize, 0);
    return {
      document: nav ? nav.transferSize : 0,
      appJs: size(/\/app\.js$/),
      appJsDecoded: body(/\/app\.js$/),
      appCss: size(/\/app\.css$/),
      other: size(/\.(svg|png|ico)$/),
      api: size(/\/api\/|recordmetrics/),
      requests: res.length + 1,
    };
  });
  out.total = out.document + out.appJs + out.appCss + out.other + out.api;
  await context.close();
  return out;
}

async function main() {
  const browser = await launch();
  let failed = 0;
  try {
    process.stdout.write(`${JSON.stringify({ first: await firstLoad(browser) })}\n`);
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    await page.addInitScript(probe);
    const w = watchPage(page, base);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    for (const id of PAGES) {
      const runs = [];
      try {
        for (let i = 0; i < LOADS; i++) runs.push(await measure(page, cdp, `${base}/#/${id}?since=${args.since}&refresh=off`));
      } catch (e) {
        process.stderr.write(`${id}: ${e.message}\n`);
        failed++;
        continue;
      }
      const problems = w.take();
      if (problems.length) {
        process.stderr.write(`${id}: ${problems.slice(0, 3).join('; ')}\n`);
        failed++;
      }
      process.stdout.write(
        `${JSON.stringify({
          page: id,
          ready_ms: Math.round(median(runs.map((r) => r.ready))),
          ready_all: runs.map((r) => Math.round(r.ready)),
          longtask_ms: Math.round(median(runs.map((r) => r.longtask))),
          longtask_all: runs.map((r) => Math.round(r.longtask)),
          heap_mb: Number(Math.max(...runs.map((r) => r.heap)).toFixed(1)),
          api: median(runs.map((r) => r.api)),
          slowest_api_ms: Math.round(median(runs.map((r) => r.slowest))),
        })}\n`,
      );
    }
    await context.close();
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}

main();
