#!/usr/bin/env node
// token.mjs - the web UI against an aggregator whose API needs a bearer
// token (apiServer.tokenFile); tests/integration/test_ui_token.sh starts it.
//
//   node tests/ui/token.mjs --base http://127.0.0.1:PORT --token TOKEN
//
// Checks, one line each ("ok: ..." / "FAIL: ..."), exit 1 on any failure:
//   - the page and its assets load without the token; the first API call's
//     401 opens the token dialog, and the overview is not ready meanwhile;
//   - a wrong token is refused: the dialog comes back and says so;
//   - with the right token the overview gets ready, no panel in error, the
//     bytes tile equals the API's total (asked with the same token); every
//     API request after that carries "Authorization: Bearer <token>";
//   - a reload keeps the token for the session: no dialog, ready;
//   - no console error, page error or failed request other than the 401s
//     this test provokes.

import { runChecks, parseArgs, Checks, watchPage, waitLoad, panelStates, pageGetOk, TEST_HEADER } from './lib.mjs';

const args = parseArgs(process.argv.slice(2), { base: '', token: '' });
if (!args.base || !args.token) {
  process.stderr.write('usage: token.mjs --base URL --token TOKEN\n');
  process.exit(2);
}
const base = args.base.replace(/\/$/, '');
const t = new Checks();
const DIALOG = 'dialog[data-dialog=token]';

async function dialogOpen(page, timeout = 10000) {
  return page
    .waitForSelector(`${DIALOG}[open]`, { timeout })
    .then(() => true)
    .catch(() => false);
}

async function enterToken(page, token) {
  await page.fill(`${DIALOG} input[data-control=token]`, token);
  await page.click(`${DIALOG} [data-control=token-ok]`);
}

async function main() {
  await runChecks(t, async (browser) => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    // The 401s before the token is entered are deliberate, and Chromium logs
    // each as "Failed to load resource: ... 401".
    let unauthorized = 0;
    const w = watchPage(page, base, {
      allowStatus: (url, status) => status === 401 && new URL(url).pathname.startsWith('/api/'),
    });
    page.on('response', (res) => {
      if (res.status() === 401) unauthorized++;
    });
    w.allowConsole(/status of 401/);
    const authOf = new Map();
    page.on('request', (req) => {
      const u = new URL(req.url());
      if (u.pathname.startsWith('/api/') && !req.headers()[TEST_HEADER]) authOf.set(req, req.headers().authorization || '');
    });
    const assets = [];
    page.on('response', (res) => {
      const u = new URL(res.url());
      if (u.pathname === '/' || u.pathname.startsWith('/assets/')) assets.push(`${u.pathname}=${res.status()}`);
    });

    await page.goto(`${base}/#/overview?since=1h&refresh=off`);
    t.check(await dialogOpen(page), 'the first API call (401) opens the token dialog');
    t.check(
      assets.length >= 3 && assets.every((a) => a.endsWith('=200') || a.endsWith('=304')),
      `the page and its assets load without the token (${assets.join(' ')})`,
    );
    const state = await page.evaluate(() => document.getElementById('page').dataset.state);
    t.eq('loading', state, 'the overview waits while the dialog is open: main data-state');

    await enterToken(page, `${args.token}-wrong`);
    t.check(await dialogOpen(page), 'a wrong token: the dialog comes back');
    const msg = await page.textContent(`${DIALOG} [data-token-message]`);
    t.check(/refused/i.test(msg), 'a wrong token: the dialog says it was refused', msg);

    const before = authOf.size;
    const ms = await waitLoad(page, () => enterToken(page, args.token), { timeout: 20000, pageId: 'overview' }).catch((e) => {
      t.fail('the right token: the overview gets ready within 20 s', e.message);
      return -1;
    });
    if (ms >= 0) t.ok(`the right token: the overview is ready ${ms} ms after it is entered`);
    t.check(!(await page.isVisible(`${DIALOG}[open]`)), 'the dialog is closed');
    const panels = await panelStates(page);
    t.errors(
      panels.filter((p) => p.state !== 'ready').map((p) => `${p.id}=${p.state} ${p.msg}`),
      `all ${panels.length} overview panels are ready`,
    );
    const bytesUrl = await page.getAttribute('.stat[data-stat=bytes]', 'data-query');
    const [top] = await pageGetOk(page, [bytesUrl]);
    const tile = Number(await page.getAttribute('.stat[data-stat=bytes]', 'data-value'));
    t.check(top.total > 0 && tile === top.total, `the bytes tile = the API's total with the token (${top.total})`, `tile ${tile}`);
    const after = [...authOf.values()].slice(before);
    t.check(
      after.length > 0 && after.every((a) => a === `Bearer ${args.token}`),
      `all ${after.length} API requests after the token was entered carry it`,
      () => after.filter((a) => a !== `Bearer ${args.token}`).slice(0, 3).join(', '),
    );
    t.check(unauthorized >= 2, `the API answered 401 before the token and to the wrong one (${unauthorized} times)`);

    const n401 = unauthorized;
    const ms2 = await waitLoad(page, () => page.reload(), { navigation: true, timeout: 20000, pageId: 'overview' });
    t.check(
      !(await page.isVisible(`${DIALOG}[open]`)) && unauthorized === n401,
      `a reload keeps the token for the session: ready in ${ms2} ms, no dialog, no 401`,
    );
    t.errors(w.take(), 'no console error, page error, failed request or HTTP error but the 401s');
  });
}

main();
