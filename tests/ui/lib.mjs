// lib.mjs - what the browser tests (dashboards.mjs, token.mjs) and the UI
// benchmark (bench.mjs) share: Debian's headless Chromium through
// playwright-core, the checks and how they are printed, a watch on
// everything a page logs and requests, waiting for the UI's load to
// finish, and API requests made from inside the page.
//
//     import { launch, Checks, watchPage, waitLoad, pageGet } from './lib.mjs';
//     const browser = await launch();
//     const page = await browser.newPage();
//     const watch = watchPage(page, base);
//     await waitLoad(page, () => page.goto(`${base}/#/overview?since=1h&refresh=off`));
//
// The hooks read here are the UI's test contract (ui/README.md): <main
// id="page" data-page data-state>, section.panel[data-panel][data-state],
// [data-chart][data-query], window.__flowvis.echarts.
//
// Nothing here talks to anything but the aggregator under test: Chromium
// runs with its background networking off, and the tests fail on any
// request that leaves the base URL's origin.

import { createRequire } from 'node:module';

const require = createRequire(new URL('../../ui/package.json', import.meta.url));
const { chromium } = require('playwright-core');

// Debian's Chromium (scripts/deps.sh test); FLOWVIS_CHROMIUM overrides it.
const CHROMIUM = process.env.FLOWVIS_CHROMIUM || '/usr/bin/chromium';

// The header that marks the tests' own API requests, so that the bounded
// request check (which is about what the UI asks for) leaves them out.
export const TEST_HEADER = 'x-flowvis-test';

// parseArgs(argv, {name: default}): --name VALUE options; an unknown option
// or a missing value is an error (exit 2), so that a typo never passes.
export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z][a-z0-9-]*)$/.exec(argv[i]);
    if (!m || !Object.hasOwn(defaults, m[1]) || i + 1 >= argv.length) {
      process.stderr.write(`bad argument '${argv[i]}'; options: ${Object.keys(defaults).map((k) => `--${k}`).join(' ')}\n`);
      process.exit(2);
    }
    out[m[1]] = argv[++i];
  }
  return out;
}

// Headless Chromium.  Playwright refuses --user-data-dir among the args and
// makes a fresh profile in os.tmpdir() itself (the bash tests point TMPDIR
// at their scratch directory); the other flags keep Chromium from calling
// home (updates, sync, field trials), which floods a closed network.
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-extensions',
      '--metrics-recording-only',
      '--no-default-browser-check',
      '--disable-dev-shm-usage',
    ],
  });
}

// The checks of one run: one line per check on stdout, "ok: ..." or
// "FAIL: ...", and the count of failures for the exit status.
export class Checks {
  constructor() {
    this.failures = 0;
    this.passed = 0;
  }

  ok(what) {
    this.passed++;
    process.stdout.write(`ok: ${what}\n`);
  }

  fail(what, detail) {
    this.failures++;
    process.stdout.write(`FAIL: ${what}${detail ? `: ${detail}` : ''}\n`);
  }

  note(what) {
    process.stdout.write(`note: ${what}\n`);
  }

  // check(cond, what, detail): ok or FAIL with detail (a string or a function
  // giving one, so that an expensive message is built only on failure).
  check(cond, what, detail) {
    if (cond) this.ok(what);
    else this.fail(what, typeof detail === 'function' ? detail() : detail);
    return !!cond;
  }

  // eq(expected, got, what): equal as JSON.
  eq(expected, got, what) {
    const a = JSON.stringify(expected);
    const b = JSON.stringify(got);
    return this.check(a === b, `${what} = ${short(a)}`, `expected ${short(a, 400)}, got ${short(b, 400)}`);
  }

  // errors(list, what): ok when list is empty, else FAIL with the first few.
  errors(list, what) {
    return this.check(list.length === 0, what, () => `${list.length} problem(s): ${list.slice(0, 6).join('; ')}`);
  }
}

// runChecks(t, body): launches Chromium, runs body(browser); an exception
// is one more failure ("the run stopped early"); closes the browser, prints
// the tally and exits 1 on any failure.
export async function runChecks(t, body) {
  const browser = await launch();
  const t0 = Date.now();
  try {
    await body(browser);
  } catch (e) {
    t.fail('the run stopped early', e && e.stack ? e.stack : String(e));
  } finally {
    await browser.close();
  }
  process.stdout.write(`${t.passed} checks passed, ${t.failures} failed, in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.exit(t.failures ? 1 : 0);
}

export function short(s, n = 120) {
  s = String(s);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// watchPage(page, base, {allowStatus}): records what the page does that a
// test must fail on: console errors, uncaught exceptions, failed requests,
// HTTP >= 400 answers and requests that leave base's origin; and every API
// request the page makes (for the bounds check).  Aborted API requests are
// not failures: the UI aborts the requests of a load that a newer one
// superseded, on purpose.  allowStatus(url, status) says which error
// answers a test provokes deliberately (the token test's 401s).
export function watchPage(page, base, { allowStatus = () => false } = {}) {
  const origin = new URL(base).origin;
  const w = { problems: [], api: [], aborted: 0, responses: new Map() };
  const allowedConsole = [];
  w.allowConsole = (re) => allowedConsole.push(re);
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (allowedConsole.some((re) => re.test(text))) return;
    w.problems.push(`console error: ${short(text, 300)}`);
  });
  page.on('pageerror', (err) => w.problems.push(`page error: ${short(err && err.stack ? err.stack : err, 500)}`));
  page.on('request', (req) => {
    const url = req.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    if (new URL(url).origin !== origin) {
      w.problems.push(`request outside ${origin}: ${url}`);
      return;
    }
    const u = new URL(url);
    if (u.pathname.includes('/api/') && !req.headers()[TEST_HEADER]) w.api.push(u);
  });
  page.on('requestfailed', (req) => {
    const f = req.failure();
    const u = new URL(req.url());
    if (f && /ERR_ABORTED/.test(f.errorText) && u.pathname.includes('/api/')) {
      w.aborted++;
      return;
    }
    w.problems.push(`request failed: ${req.url()} (${f ? f.errorText : '?'})`);
  });
  page.on('response', (res) => {
    const status = res.status();
    const u = new URL(res.url());
    // The page's own answers of /series, by relative URL: a test fetching
    // the same "since=" URL a moment later may get buckets shifted by the
    // clock, and then asks again for the page's own start and end.
    if (status === 200 && u.pathname.endsWith('/api/v1/series') && !res.request().headers()[TEST_HEADER]) {
      w.responses.set(u.pathname.replace(/^\//, '') + u.search, res.json().catch(() => null));
    }
    if (status >= 400 && !allowStatus(res.url(), status)) {
      w.problems.push(`HTTP ${status} for ${res.url()}`);
    }
  });
  // Everything reported since the last call.
  w.take = () => w.problems.splice(0);
  return w;
}

// Installs (once per document) a MutationObserver on <main id=page> that
// counts the loads it starts (data-state -> loading); waitLoad compares
// counts, so that it never takes the previous load's "ready" for the new one.
async function loadCount(page) {
  return page.evaluate(() => {
    const main = document.getElementById('page');
    if (!main) return -1;
    if (!window.__fvt) {
      window.__fvt = { loads: 0 };
      new MutationObserver((recs) => {
        // A record has the old value only: the new one is the next
        // record's old value, or the current one for the last record.
        recs.forEach((r, i) => {
          const now = i + 1 < recs.length ? recs[i + 1].oldValue : main.dataset.state;
          if (now === 'loading') window.__fvt.loads++;
        });
      }).observe(main, { attributes: true, attributeOldValue: true, attributeFilter: ['data-state'] });
    }
    return window.__fvt.loads;
  });
}

// waitLoad(page, action, {timeout, page: id, navigation}): runs action (a
// click, a key press, a goto) and waits until the UI has started a new load
// and finished it: <main data-state=ready> (and data-page=id if given).
// With navigation (a goto or a reload) the observer is new, so any load
// counts.  Returns the milliseconds from the action to ready.  Throws on
// timeout with what the panels say.
export async function waitLoad(page, action, { timeout = 20000, pageId, navigation = false } = {}) {
  const before = navigation ? 0 : await loadCount(page);
  const t0 = Date.now();
  await action();
  const deadline = t0 + timeout;
  for (;;) {
    const n = await loadCount(page).catch(() => -1);
    const st = await page
      .evaluate(() => {
        const m = document.getElementById('page');
        return m ? { state: m.dataset.state, page: m.dataset.page } : null;
      })
      .catch(() => null);
    // After a goto the first load may have started before the observer:
    // the document's own start() sets data-state=loading first, so a ready
    // main in a fresh document is the end of a load.
    const started = navigation ? st !== null : n > before;
    if (started && st && st.state === 'ready' && (!pageId || st.page === pageId)) return Date.now() - t0;
    if (Date.now() > deadline) {
      const panels = await panelStates(page).catch(() => []);
      throw new Error(
        `no ready load within ${timeout} ms (main: ${JSON.stringify(st)}, loads ${before} -> ${n}; panels: ` +
          `${panels.map((p) => `${p.id}=${p.state}${p.msg ? ` (${p.msg})` : ''}`).join(', ')})`,
      );
    }
    await page.waitForTimeout(25);
  }
}

// The panels of the page: [{id, state, msg, queries: [url...]}].
export async function panelStates(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('section.panel[data-panel]')].map((el) => {
      const qs = [...el.querySelectorAll('[data-query]')].map((q) => q.getAttribute('data-query'));
      const msg = el.querySelector('.panel-msg');
      return {
        id: el.dataset.panel,
        state: el.dataset.state,
        msg: msg ? msg.textContent : '',
        queries: [...new Set(qs.flatMap((q) => q.split(/\s+/).filter(Boolean)))],
      };
    }),
  );
}

// pageGet(page, urls): the JSON answers of relative API URLs, fetched from
// inside the page (same origin, the UI's bearer token if it has one), each
// {status, body}.  Marked with TEST_HEADER.
export async function pageGet(page, urls) {
  return page.evaluate(
    async ({ urls, header }) => {
      let token = '';
      try {
        token = sessionStorage.getItem('flowvis.token') || '';
      } catch {
        /* no storage */
      }
      const headers = { Accept: 'application/json', [header]: '1' };
      if (token) headers.Authorization = `Bearer ${token}`;
      return Promise.all(
        urls.map(async (u) => {
          const r = await fetch(u, { headers, cache: 'no-store' });
          const text = await r.text();
          let body = null;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          return { status: r.status, body };
        }),
      );
    },
    { urls, header: TEST_HEADER },
  );
}

// pageGetOk(page, urls): the bodies; throws unless every answer is a 200.
export async function pageGetOk(page, urls) {
  const rs = await pageGet(page, urls);
  rs.forEach((r, i) => {
    if (r.status !== 200) throw new Error(`GET ${urls[i]}: ${r.status} ${short(JSON.stringify(r.body), 200)}`);
  });
  return rs.map((r) => r.body);
}

// Parameters of a relative API URL ("api/v1/top?...").
export function queryParam(url, key) {
  return new URL(url, 'http://x/').searchParams.get(key);
}

export function whereOf(url) {
  return new URL(url, 'http://x/').searchParams.getAll('where');
}

// withParams(url, {k: v|null}): the URL with those parameters replaced
// (null removes); where clauses are kept.
export function withParams(url, patch) {
  const u = new URL(url, 'http://x/');
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) u.searchParams.delete(k);
    else u.searchParams.set(k, String(v));
  }
  return u.pathname.replace(/^\//, '') + u.search;
}
