#!/usr/bin/env node
// screenshots.mjs - a 1440x900 full-page screenshot of every dashboard,
// for the docs (docs/screenshots/, see test_ui_dashboards.sh with
// FLOWVIS_UPDATE_SCREENSHOTS=1).  No checks beyond "every page gets ready
// without a console error or a failed request"; exits 1 otherwise.
//
//   node tests/ui/screenshots.mjs --base http://127.0.0.1:PORT --shots DIR [--since 5m | --start S --end E]
//
// --start/--end (unix seconds) show an absolute range, so that a short run
// of the generator fills the time axis.

import fs from 'node:fs';
import path from 'node:path';

import { launch, parseArgs, watchPage, waitLoad, Checks } from './lib.mjs';

const PAGES = ['overview', 'flows', 'pod-to-pod', 'pod-to-external', 'pod-to-service', 'node-to-node', 'policy', 'heatmap'];
const args = parseArgs(process.argv.slice(2), { base: '', shots: '', since: '15m', start: '', end: '' });
if (!args.base || !args.shots || !args.start !== !args.end) {
  process.stderr.write('usage: screenshots.mjs --base URL --shots DIR [--since 5m | --start S --end E]\n');
  process.exit(2);
}
const range = args.start ? `start=${args.start}&end=${args.end}` : `since=${args.since}`;
const base = args.base.replace(/\/$/, '');
const t = new Checks();

fs.mkdirSync(args.shots, { recursive: true });
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const w = watchPage(page, base);
  for (const id of PAGES) {
    try {
      const ms = await waitLoad(page, () => page.goto(`${base}/#/${id}?${range}&refresh=off`), {
        navigation: true,
        pageId: id,
      });
      if (id === 'flows') {
        // The detail of the largest record, to show what it holds.
        await waitLoad(page, () => page.click('th[data-col=octetDeltaCount]'));
        await page.click('tbody tr[data-row="0"]');
        await page.waitForSelector('aside[data-detail]:not([hidden])');
      }
      // Let the charts' entry animations finish.
      await page.waitForTimeout(600);
      await page.screenshot({ path: path.join(args.shots, `${id}.png`), fullPage: true });
      t.ok(`${id}: ready in ${ms} ms, ${id}.png`);
    } catch (e) {
      t.fail(`${id}`, e.message);
    }
    t.errors(w.take(), `${id}: no console error, page error or failed request`);
  }
} finally {
  await browser.close();
}
process.exit(t.failures ? 1 : 0);
