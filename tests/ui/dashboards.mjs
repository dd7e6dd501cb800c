#!/usr/bin/env node
// dashboards.mjs - every dashboard of the flowvis web UI in headless
// Chromium, against an aggregator whose store holds what `flowvis generate`
// sent (tests/integration/test_ui_dashboards.sh starts both).
//
//   node tests/ui/dashboards.mjs --base http://127.0.0.1:PORT --summary sent.json \
//       [--shots DIR] [--excluded batch]
//
// Prints one line per check ("ok: ...", "FAIL: ...") and exits 1 when any
// failed (2 on bad arguments).  What it checks, in order:
//
//  1. Every page, reached through its nav link with the range "last hour"
//     and refresh off: the load ends (main[data-state=ready]) within 20 s,
//     every panel is ready (or empty when its API answers are); every
//     chart shows exactly the numbers of the API URL(s) in its data-query,
//     fetched again from inside the page (compare.mjs); every stat tile
//     shows its API number; the tables show the API's rows; and each /top
//     answer a chart is drawn from equals what the generator's summary
//     gives for the same group, metric and where clauses (oracle.mjs).
//     A 1440x900 full-page screenshot of each page into --shots.
//  2. The independent oracle, with the excluded namespace (batch) hidden:
//     Overview's tiles (bytes, reverse bytes, flows, throughput, records
//     received and dropped); the Pod-to-Pod Sankey's links are the
//     summary's per-Pod-pair sums; the policy Sankey has no link from
//     batch/batch-egress to backend/default-deny; the denied-traffic table
//     lists the summary's denied policy pairs.
//  3. "show excluded namespaces" ticked: no namespace!= clause is sent,
//     Overview's bytes tile is the generator's total, the policy Sankey has
//     the batch -> default-deny link with the summary's sum, the Pod-to-Pod
//     Sankey (top 50) has every Pod pair; every page again as in 1.
//  4. The filter chip namespace=frontend: it shows as a chip and in the
//     URL, every panel's data-query carries it, every page's charts equal
//     the API and every Sankey link and pie slice is a group of flows that
//     touch frontend; removing the chip restores the previous numbers.
//  5. A custom range entirely before the data (yesterday) makes every panel
//     of every page empty (but the aggregator's live counters); "last hour"
//     brings the same numbers back.
//     Auto-refresh 10s reloads the overview by itself, with the same
//     numbers; "off" again is in the URL.
//  6. Flow Records: data-total is the API's total, the rows are the API's
//     rows; "next" shows the next 50 (offset in the URL and the query, no
//     row of page 1); a header click sorts descending (first row = the
//     largest value), a second ascending; a column filter narrows the
//     total to the API's for the same where; a row click opens the detail
//     with every column (49) of the record and its raw values.
//  7. Throughout: no console error, uncaught exception, failed request or
//     HTTP error answer, no request outside the aggregator, and no API
//     request for more than 100 rows (/flows), 50 series (/series) or 50
//     groups (/top).

import fs from 'node:fs';
import path from 'node:path';

import {
  runChecks,
  parseArgs,
  Checks,
  watchPage,
  waitLoad,
  panelStates,
  pageGetOk,
  queryParam,
  whereOf,
  withParams,
  short,
} from './lib.mjs';
import { chartKind, compareChart, sankeyLinks, chartNumbers } from './compare.mjs';
import { Oracle } from './oracle.mjs';

const args = parseArgs(process.argv.slice(2), { base: '', summary: '', shots: '', excluded: 'batch' });
if (!args.base || !args.summary) {
  process.stderr.write('usage: dashboards.mjs --base URL --summary FILE [--shots DIR] [--excluded NS]\n');
  process.exit(2);
}
const BASE = args.base.replace(/\/$/, '');
const EXCLUDED = args.excluded;
const SINCE = '1h';
const RANGE_SECONDS = 3600;
const LOAD_TIMEOUT = 20000;
const PAGES = ['overview', 'flows', 'pod-to-pod', 'pod-to-external', 'pod-to-service', 'node-to-node', 'policy', 'heatmap'];
// path: [parameter, largest allowed, the API's default]
const BOUNDS = {
  '/api/v1/flows': ['limit', 100, 100],
  '/api/v1/series': ['top', 50, 10],
  '/api/v1/top': ['limit', 50, 10],
};
const FLOW_COLUMNS = 49;

const summary = JSON.parse(fs.readFileSync(args.summary, 'utf8'));
const oracle = new Oracle(summary);
const t = new Checks();

// ---------------------------------------------------------------------------
// Reading the page
// ---------------------------------------------------------------------------

// The charts of the page: [{id, panel, state, queries, option}].
async function charts(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-chart]')].map((el) => {
      const panel = el.closest('section.panel');
      const c = window.__flowvis.echarts.getInstanceByDom(el);
      const o = c ? c.getOption() : null;
      // Functions (formatters) do not cross into Node; the data do.
      const option = o ? JSON.parse(JSON.stringify(o)) : null;
      return {
        id: el.dataset.chart,
        panel: panel ? panel.dataset.panel : '',
        state: panel ? panel.dataset.state : '',
        queries: (el.getAttribute('data-query') || '').split(/\s+/).filter(Boolean),
        option,
      };
    }),
  );
}

async function stats(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.stat[data-stat]')].map((el) => ({
      id: el.dataset.stat,
      value: el.dataset.value === '' ? null : Number(el.dataset.value),
      query: el.getAttribute('data-query') || '',
    })),
  );
}

async function stat(page, id) {
  return (await stats(page)).find((s) => s.id === id)?.value;
}

async function hash(page) {
  return page.evaluate(() => decodeURIComponent(location.hash));
}

async function uiState(page) {
  return page.evaluate(() => {
    const p = new URLSearchParams(location.hash.replace(/^#\/[^?]*\??/, ''));
    return { topn: Number(p.get('topn')) || 20 };
  });
}

// Answers fetched from inside the page, cached per URL for one check round.
function answers(page) {
  const cache = new Map();
  return async (url) => {
    if (!cache.has(url)) cache.set(url, pageGetOk(page, [url]).then((r) => r[0]));
    return cache.get(url);
  };
}

// ---------------------------------------------------------------------------
// Navigation
// ---------------------------------------------------------------------------

async function gotoPage(page, id) {
  const before = await page.evaluate(() => document.getElementById('page').dataset.page);
  if (before === id) return 0;
  return waitLoad(page, () => page.click(`a[data-nav="${id}"]`), { timeout: LOAD_TIMEOUT, pageId: id });
}

// ---------------------------------------------------------------------------
// One page: every chart, tile and table against the API and the oracle
// ---------------------------------------------------------------------------

const emptyAnswer = (a) =>
  a.series ? a.series.every((s) => s.points.every((p) => !p[1])) : a.groups ? a.groups.length === 0 : !a.total;

// verifyPage(page, w, id, label): checks the page shown and returns its
// numbers (for the "same as before" checks).
async function verifyPage(page, w, id, label) {
  const get = answers(page);
  const { topn } = await uiState(page);
  const numbers = {};
  const panels = await panelStates(page);
  const bad = panels.filter((p) => p.state === 'error' || p.state === 'loading');
  t.errors(
    bad.map((p) => `${p.id}: ${p.state} ${p.msg}`),
    `${label}: ${id}: ${panels.length} panels, none loading or in error`,
  );
  const diffs = [];
  const oracleDiffs = [];
  let nCharts = 0;
  let nTop = 0;
  for (const c of await charts(page)) {
    if (c.state === 'empty') {
      // Empty is right when the API has nothing for its queries.
      for (const q of c.queries) {
        if (!emptyAnswer(await get(q))) diffs.push(`${c.id}: empty, but the API has data for ${q}`);
      }
      numbers[c.id] = 'empty';
      continue;
    }
    if (!c.option) {
      diffs.push(`${c.id}: no chart instance`);
      continue;
    }
    if (c.queries.length !== 1) {
      diffs.push(`${c.id}: ${c.queries.length} data-query URLs, expected 1`);
      continue;
    }
    nCharts++;
    const url = c.queries[0];
    let ans = await get(url);
    if (ans.series) ans = await seriesAnswer(page, w, url, ans);
    const ctx = { reverse: /-sankey-reverse$/.test(c.id), policy: queryParam(url, 'group') === 'policy_pair', topn };
    const d = compareChart(c.option, ans, ctx);
    diffs.push(...d.map((x) => `${c.id} (${chartKind(c.option)}): ${x}`));
    const od = oracleTop(c.id, url, ans);
    if (od) {
      nTop++;
      oracleDiffs.push(...od);
    }
    numbers[c.id] = chartNumbers(c.option);
  }
  if (nCharts || diffs.length) t.errors(diffs, `${label}: ${id}: ${nCharts} charts show exactly their API answers`);
  if (nTop) t.errors(oracleDiffs, `${label}: ${id}: the ${nTop} /top answers behind the charts equal the generator's summary`);
  const s = await stats(page);
  if (s.length) {
    const sd = [];
    for (const x of s) {
      const want = await statFromApi(x, get);
      if (want === undefined) sd.push(`${x.id}: no rule to compare it`);
      else if (want !== x.value) sd.push(`${x.id}: ${x.value}, API ${want}`);
      numbers[`stat:${x.id}`] = x.value;
    }
    t.errors(sd, `${label}: ${id}: ${s.length} stat tiles show their API numbers`);
  }
  if (id === 'policy') numbers.denied = await verifyDenied(page, get, label);
  if (id === 'flows') numbers.flows = await verifyFlowRows(page, get, label);
  return numbers;
}

// A /series answer fetched a moment after the page's may have its bucket
// grid moved by the clock (the range is "the last hour"): then the chart
// is compared with the answer for the page's own start and end, which
// the page's answer (seen by watchPage) says.
async function seriesAnswer(page, w, url, fresh) {
  const own = await (w.responses.get(url) || null);
  if (!own || (own.start === fresh.start && own.end === fresh.end)) return fresh;
  const first = (a) => a.series[0]?.points?.[0]?.[0];
  const last = (a) => a.series[0]?.points?.at(-1)?.[0];
  if (first(own) === first(fresh) && last(own) === last(fresh)) return fresh;
  t.note(`the bucket grid moved between the page's request and the test's; asking for start=${own.start} end=${own.end}`);
  const [again] = await pageGetOk(page, [withParams(url, { since: null, start: own.start, end: own.end })]);
  return again;
}

// Each group of a /top answer (and its total) against the oracle: a list
// of differences, or null for what the summary does not model.
function oracleTop(id, url, ans) {
  if (!url.startsWith('api/v1/top')) return null;
  const group = queryParam(url, 'group') || 'none';
  const metric = queryParam(url, 'metric') || 'bytes';
  const o = oracle.top({ group, metric, where: whereOf(url), rangeSeconds: RANGE_SECONDS });
  if (!o) return null;
  const d = [];
  if (o.total !== ans.total) d.push(`${id}: total ${ans.total}, summary ${o.total} (${url})`);
  for (const g of ans.groups) {
    const w = o.groups.get(g.key);
    if (!w) d.push(`${id}: group '${g.key}' is in no flow of the summary`);
    else if (w.value !== g.value) d.push(`${id}: '${g.key}' ${g.value}, summary ${w.value}`);
    else if (w.reverse !== g.reverse) d.push(`${id}: '${g.key}' reverse ${g.reverse}, summary ${w.reverse}`);
  }
  // The groups answered are the largest ones.
  const vals = [...o.groups.values()].map((g) => g.value).sort((a, b) => b - a);
  const n = ans.groups.length;
  if (n < Math.min(o.groups.size, Number(queryParam(url, 'limit') || 10))) {
    d.push(`${id}: ${n} groups, the summary has ${o.groups.size}`);
  } else if (n && ans.groups[n - 1].value < (vals[n - 1] ?? 0)) {
    d.push(`${id}: the smallest group answered (${ans.groups[n - 1].value}) is below the ${n}th largest (${vals[n - 1]})`);
  }
  return d;
}

const RECORDMETRICS = {
  exporters: 'numConnToCollector',
  recordsReceived: 'numRecordsReceived',
  recordsExported: 'numRecordsExported',
  recordsDropped: 'numRecordsDropped',
  recordsStale: 'numRecordsStale',
  flowsActive: 'numFlows',
  flowsCorrelated: 'numFlowsCorrelated',
  flowsUncorrelated: 'numFlowsUncorrelated',
  flowsEvicted: 'numFlowsEvicted',
};

// The number a stat tile must show, from its data-query answer.
async function statFromApi(x, get) {
  if (!x.query) return undefined;
  const a = await get(x.query);
  if (x.query.startsWith('recordmetrics')) return a[RECORDMETRICS[x.id]];
  const metric = queryParam(x.query, 'metric') || 'bytes';
  if (x.id === metric) return a.total;
  if (x.id === `reverse${metric[0].toUpperCase()}${metric.slice(1)}`) return a.groups[0]?.reverse ?? 0;
  return undefined;
}

// The denied-traffic table: the API's pairs with a drop or reject rule
// (from both of its queries), and the summary's.
async function verifyDenied(page, get, label) {
  const tbl = await page.evaluate(() => {
    const el = document.querySelector('table[data-table=denied-pairs]');
    if (!el) return null;
    return {
      queries: (el.getAttribute('data-query') || '').split(/\s+/).filter(Boolean),
      rows: [...el.querySelectorAll('tr[data-row]')].map((tr) => {
        const td = tr.querySelectorAll('td');
        return { key: tr.title, value: Number(td[2]?.title), reverse: Number(td[3]?.title) };
      }),
    };
  });
  if (!tbl) {
    const st = (await panelStates(page)).find((p) => p.id === 'denied-pairs');
    t.check(st && st.state === 'empty', `${label}: policy: the denied-traffic table is there or its panel empty`);
    return 'empty';
  }
  const merged = new Map();
  for (const q of tbl.queries) {
    for (const g of (await get(q)).groups) {
      const acts = [g.labels.egressAction, g.labels.ingressAction];
      if (acts.includes('drop') || acts.includes('reject')) merged.set(g.key, g);
    }
  }
  const want = [...merged.values()].map((g) => ({ key: g.key, value: g.value, reverse: g.reverse }));
  want.sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
  t.eq(want, tbl.rows, `${label}: policy: the denied-traffic rows are the API's drop/reject pairs`);
  const where = tbl.queries.length ? whereOf(tbl.queries[0]).filter((w) => !/RuleAction/.test(w)) : [];
  const o = oracle.top({ group: 'policy_pair', where });
  if (o) {
    const fromSummary = [...o.groups.entries()]
      .filter(([, g]) => [g.labels.egressAction, g.labels.ingressAction].some((a) => a === 'drop' || a === 'reject'))
      .map(([key, g]) => ({ key, value: g.value, reverse: g.reverse }))
      .sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : 1));
    t.eq(fromSummary, tbl.rows, `${label}: policy: the denied-traffic rows are the summary's denied pairs`);
  }
  return tbl.rows.map((r) => `${r.key}=${r.value}`);
}

// The flow table's rows: [{cells: {column: title}}] and its total.
async function flowTable(page) {
  return page.evaluate(() => {
    const el = document.querySelector('table[data-table=flows]');
    if (!el) return null;
    const cols = [...el.querySelectorAll('th[data-col]')].map((th) => th.dataset.col);
    return {
      total: Number(el.dataset.total),
      query: el.getAttribute('data-query') || '',
      cols,
      rows: [...el.querySelectorAll('tbody tr[data-row]')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.title)),
    };
  });
}

// The table's total and rows against a fresh answer of its data-query.
async function verifyFlowRows(page, get, label) {
  const tb = await flowTable(page);
  if (!t.check(tb && tb.query, `${label}: flows: the table and its data-query are there`)) return null;
  const ans = await get(tb.query);
  t.eq(ans.total, tb.total, `${label}: flows: data-total is the API's total`);
  const want = ans.rows.map((r) => tb.cols.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  t.check(
    JSON.stringify(want) === JSON.stringify(tb.rows),
    `${label}: flows: the ${tb.rows.length} rows show the API's rows, columns ${tb.cols.length}, in order`,
    () => `first row ${short(JSON.stringify(tb.rows[0]), 300)}, API ${short(JSON.stringify(want[0]), 300)}`,
  );
  return [tb.total, tb.rows.length];
}

// ---------------------------------------------------------------------------
// The steps
// ---------------------------------------------------------------------------

async function noProblems(w, what) {
  t.errors(w.take(), `${what}: no console error, page error, failed request or HTTP error`);
}

// Step 1 (and 3): every page through its nav link.
async function everyPage(page, w, label, { shots = false } = {}) {
  const out = {};
  for (const id of PAGES) {
    let ms;
    try {
      if ((await page.evaluate(() => document.getElementById('page').dataset.page)) === id) {
        throw new Error(`${id} is already shown: the round must start elsewhere`);
      }
      ms = await gotoPage(page, id);
    } catch (e) {
      t.fail(`${label}: ${id}: ready within ${LOAD_TIMEOUT} ms`, e.message);
      continue;
    }
    const h = await hash(page);
    t.check(
      h.startsWith(`#/${id}?`) && h.includes(`since=${SINCE}`) && h.includes('refresh=off'),
      `${label}: ${id}: ready in ${ms} ms through its nav link, range and refresh kept in the URL`,
      h,
    );
    out[id] = await verifyPage(page, w, id, label);
    if (shots && args.shots) {
      await page.screenshot({ path: path.join(args.shots, `${id}.png`), fullPage: true });
    }
    await noProblems(w, `${label}: ${id}`);
  }
  return out;
}

// Step 2: the oracle with the excluded namespace hidden.
async function oracleDefault(page) {
  const ex = [`namespace!=${EXCLUDED}`];
  await gotoPage(page, 'overview');
  const bytes = oracle.top({ where: ex });
  const thr = oracle.top({ metric: 'throughput', where: ex, rangeSeconds: RANGE_SECONDS });
  const flows = oracle.top({ metric: 'flows', where: ex });
  t.eq(bytes.total, await stat(page, 'bytes'), `overview: bytes tile = summary's octets of flows without ${EXCLUDED}`);
  t.eq(bytes.groups.get('all').reverse, await stat(page, 'reverseBytes'), 'overview: reverse bytes tile = summary');
  t.eq(flows.total, await stat(page, 'flows'), 'overview: flows tile = summary flows');
  t.eq(thr.total, await stat(page, 'throughput'), 'overview: throughput tile = summary octets * 8 / 3600');
  t.eq(summary.records, await stat(page, 'recordsReceived'), 'overview: records received = records the generator sent');
  t.eq(0, await stat(page, 'recordsDropped'), 'overview: records dropped');

  await gotoPage(page, 'pod-to-pod');
  const kept = (f) => f.sourcePodNamespace !== EXCLUDED && f.destinationPodNamespace !== EXCLUDED;
  await podPairs(page, kept, `without ${EXCLUDED}`);

  await gotoPage(page, 'policy');
  const link = await policyLink(page);
  t.check(!link, `policy: no link batch/batch-egress (allow) -> backend/default-deny (drop) while ${EXCLUDED} is excluded`, () =>
    JSON.stringify(link),
  );
}

// The Pod-to-Pod Sankey against the summary's per-Pod-pair sums of the
// intra- and inter-node flows with a destination Pod that keep(flow).
async function podPairs(page, keep, what) {
  const want = new Map();
  for (const f of summary.perFlow) {
    if (![1, 2].includes(f.flowType) || !f.destinationPodName || !keep(f)) continue;
    const k = `${f.sourcePodNamespace}/${f.sourcePodName} -> ${f.destinationPodNamespace}/${f.destinationPodName}`;
    want.set(k, (want.get(k) || 0) + f.octetDeltaCount);
  }
  const c = (await charts(page)).find((x) => x.id === 'pod-pair-sankey-bytes');
  if (!t.check(c && c.option, `pod-to-pod: the bytes Sankey is drawn (${what})`)) return;
  const got = new Map(sankeyLinks(c.option).map((l) => [`${l.source} -> ${l.target}`, l.value]));
  const sorted = (m) => [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  t.eq(sorted(want), sorted(got), `pod-to-pod: Sankey = summary's ${want.size} Pod pairs and their bytes (${what})`);
}

async function policyLink(page) {
  const c = (await charts(page)).find((x) => x.id === 'policy-sankey');
  if (!c || !c.option) return null;
  return sankeyLinks(c.option).find(
    (l) => l.source === 'batch/batch-egress (allow)' && l.target === 'backend/default-deny (drop)',
  );
}

// Step 3: show excluded namespaces.
async function showExcluded(page, w) {
  await gotoPage(page, 'policy');
  await waitLoad(page, () => page.check('input[data-control=show-excluded]'), { timeout: LOAD_TIMEOUT });
  const h = await hash(page);
  t.check(/showExcluded=(1|true|on)/.test(h), 'show-excluded: ticking it puts it in the URL', h);
  const qs = (await panelStates(page)).flatMap((p) => p.queries);
  t.check(
    qs.every((q) => !whereOf(q).includes(`namespace!=${EXCLUDED}`)),
    `show-excluded: no query leaves out ${EXCLUDED}`,
    () => qs.join(' '),
  );
  const sum = summary.perFlow
    .filter(
      (f) =>
        f.egressNetworkPolicyNamespace === 'batch' &&
        f.egressNetworkPolicyName === 'batch-egress' &&
        f.ingressNetworkPolicyNamespace === 'backend' &&
        f.ingressNetworkPolicyName === 'default-deny',
    )
    .reduce((a, f) => a + f.octetDeltaCount, 0);
  const link = await policyLink(page);
  t.check(sum > 0, `the summary has batch -> backend traffic denied by default-deny (${sum} octets)`);
  t.eq(sum, link ? link.value : null, 'show-excluded: policy Sankey link batch/batch-egress (allow) -> backend/default-deny (drop)');

  await gotoPage(page, 'pod-to-pod');
  await waitLoad(page, () => page.selectOption('select[data-control=topn]', '50'), { timeout: LOAD_TIMEOUT });
  t.check((await hash(page)).includes('topn=50'), 'topn: choosing 50 puts it in the URL');
  await podPairs(page, () => true, 'every namespace, top 50');

  await gotoPage(page, 'overview');
  t.eq(
    summary.perFlow.reduce((a, f) => a + f.octetDeltaCount, 0),
    await stat(page, 'bytes'),
    "show-excluded: overview bytes tile = the generator's total",
  );
  await gotoPage(page, PAGES[PAGES.length - 1]);
  await everyPage(page, w, 'show-excluded');
  await gotoPage(page, 'overview');
  await waitLoad(page, () => page.uncheck('input[data-control=show-excluded]'), { timeout: LOAD_TIMEOUT });
  await waitLoad(page, () => page.evaluate(() => (location.hash = location.hash.replace(/&?topn=50/, ''))), {
    timeout: LOAD_TIMEOUT,
  });
  await noProblems(w, 'show-excluded');
}

// Step 4: the filter chip namespace=frontend.
async function filterChip(page, w, before) {
  const clause = 'namespace=frontend';
  await gotoPage(page, 'overview');
  await waitLoad(
    page,
    async () => {
      await page.fill('input[data-control=filter]', clause);
      await page.press('input[data-control=filter]', 'Enter');
    },
    { timeout: LOAD_TIMEOUT },
  );
  t.check(await page.isVisible(`[data-filter="${clause}"]`), `filter: Enter adds the chip [data-filter="${clause}"]`);
  t.check((await hash(page)).includes(`where=${clause}`), 'filter: the clause is in the URL');
  for (const id of PAGES) {
    await gotoPage(page, id);
    const qs = (await panelStates(page)).flatMap((p) => p.queries).filter((q) => q.startsWith('api/'));
    t.check(
      qs.length > 0 && qs.every((q) => whereOf(q).includes(clause)),
      `filter: ${id}: every one of ${qs.length} API queries has where=${clause}`,
      () => qs.filter((q) => !whereOf(q).includes(clause)).join(' '),
    );
    await verifyPage(page, w, id, 'filter');
    await involvesFrontend(page, id);
    await noProblems(w, `filter: ${id}`);
  }
  await gotoPage(page, 'overview');
  await waitLoad(page, () => page.click(`[data-filter="${clause}"] button[data-remove]`), { timeout: LOAD_TIMEOUT });
  t.check(!(await page.isVisible(`[data-filter="${clause}"]`)), 'filter: the chip is gone after its remove button');
  t.check(!(await hash(page)).includes('where='), 'filter: and so is the clause in the URL');
  await samePage(page, w, 'overview', before.overview, 'filter removed');
  await gotoPage(page, 'pod-to-pod');
  await samePage(page, w, 'pod-to-pod', before['pod-to-pod'], 'filter removed');
  await noProblems(w, 'filter removed');
}

// Every Sankey link and pie slice is a group of flows that touch frontend.
async function involvesFrontend(page, id) {
  const bad = [];
  let n = 0;
  for (const c of await charts(page)) {
    if (!c.option || c.state !== 'ready') continue;
    const kind = chartKind(c.option);
    if (kind !== 'sankey' && kind !== 'pie') continue;
    const url = c.queries[0];
    const group = queryParam(url, 'group');
    const o = oracle.top({ group, where: ['namespace=frontend'] });
    if (!o) continue;
    const labels = new Set([...o.groups.values()].flatMap((g) => Object.values(g.labels)));
    if (kind === 'sankey') {
      for (const l of sankeyLinks(c.option)) {
        n++;
        const key = `${l.source} -> ${l.target}`;
        if (!o.groups.has(key)) bad.push(`${c.id}: ${key}`);
      }
    } else {
      for (const d of c.option.series[0].data) {
        if (d.name === 'other') continue;
        n++;
        if (!labels.has(d.name) && !(d.name === '(none)' && labels.has(''))) bad.push(`${c.id}: ${d.name}`);
      }
    }
  }
  if (n) t.errors(bad, `filter: ${id}: all ${n} Sankey links and pie slices are groups of flows touching frontend`);
}

// The page shows the numbers it showed before (chart sums, tiles, tables).
async function samePage(page, w, id, before, label) {
  const now = await verifyPage(page, w, id, label);
  const d = [];
  for (const [k, v] of Object.entries(before || {})) {
    if (k === 'stat:flowsActive' || k === 'stat:exporters') continue; // live counters
    const [a, b] = [JSON.stringify(now[k]), JSON.stringify(v)];
    if (a !== b) d.push(`${k}: ${short(a)}, before ${short(b)}`);
  }
  t.errors(d, `${label}: ${id}: the same numbers as before (${Object.keys(before || {}).length} charts, tiles, tables)`);
}

// Step 5: a custom range before the data, then the last hour again.
async function timeRange(page, w, before) {
  await gotoPage(page, 'overview');
  const [s, e] = await page.evaluate(() => {
    const pad = (n) => String(n).padStart(2, '0');
    const f = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    const d = new Date(Date.now() - 86400e3);
    d.setHours(0, 0, 0, 0);
    return [f(d), f(new Date(d.getTime() + 3600e3))];
  });
  await page.selectOption('select[data-control=range]', 'custom');
  await page.fill('input[data-control=start]', s);
  await page.fill('input[data-control=end]', e);
  await waitLoad(page, () => page.click('button[data-control=apply]'), { timeout: LOAD_TIMEOUT });
  const h = await hash(page);
  t.check(/start=\d+/.test(h) && /end=\d+/.test(h) && !h.includes('since='), `range: custom ${s} .. ${e} is start/end in the URL`, h);
  for (const id of PAGES) {
    await gotoPage(page, id);
    const panels = await panelStates(page);
    // The aggregator's live counters (GET recordmetrics) do not depend on the range.
    const ranged = panels.filter((p) => p.queries.some((q) => q.startsWith('api/')));
    t.check(
      ranged.length > 0 && ranged.every((p) => p.state === 'empty'),
      `range: ${id}: all ${ranged.length} panels over the range are empty`,
      () => panels.map((p) => `${p.id}=${p.state}`).join(' '),
    );
    const fixed = panels.filter((p) => !ranged.includes(p));
    if (fixed.length) t.note(`range: ${id}: ${fixed.map((p) => `${p.id}=${p.state}`).join(' ')} (not over the range)`);
    await noProblems(w, `range: ${id}`);
  }
  await gotoPage(page, 'overview');
  await waitLoad(page, () => page.selectOption('select[data-control=range]', SINCE), { timeout: LOAD_TIMEOUT });
  t.check((await hash(page)).includes(`since=${SINCE}`), `range: choosing ${SINCE} again puts since=${SINCE} in the URL`);
  await samePage(page, w, 'overview', before.overview, `range ${SINCE} again`);
  await noProblems(w, `range ${SINCE} again`);
}

// Step 5b: auto-refresh every 10 s reloads the page by itself, with the
// same numbers; "off" is in the URL again afterwards.
async function autoRefresh(page, w, before) {
  await gotoPage(page, 'overview');
  const ms = await waitLoad(page, () => page.selectOption('select[data-control=refresh]', '10s'), {
    timeout: 15000,
  }).catch((e) => {
    t.fail('refresh 10s: the overview reloads by itself within 15 s', e.message);
    return -1;
  });
  if (ms >= 0) t.ok(`refresh 10s: the overview reloaded by itself, ready ${ms} ms after choosing it`);
  t.check((await hash(page)).includes('refresh=10s'), 'refresh 10s: in the URL');
  await samePage(page, w, 'overview', before.overview, 'refresh 10s');
  await page.selectOption('select[data-control=refresh]', 'off');
  t.check((await hash(page)).includes('refresh=off'), 'refresh off: in the URL again');
  await noProblems(w, 'refresh');
}

// Step 6: Flow Records.
async function flowRecords(page, w) {
  await gotoPage(page, 'flows');
  const get = answers(page);
  const p1 = await flowTable(page);
  const all1 = (await get(p1.query)).rows.map((r) => JSON.stringify(r));
  t.check(p1.total > 50, `flows: more than one page of records (${p1.total})`);

  await waitLoad(page, () => page.click('[data-control=next]'), { timeout: LOAD_TIMEOUT });
  const p2 = await flowTable(page);
  t.check((await hash(page)).includes('offset=50'), 'flows: next puts offset=50 in the URL');
  t.eq('50', queryParam(p2.query, 'offset'), 'flows: next: offset in the data-query');
  await verifyFlowRows(page, answers(page), 'flows next');
  const rows2 = (await answers(page)(p2.query)).rows.map((r) => JSON.stringify(r));
  t.check(
    rows2.length > 0 && rows2.every((r) => !all1.includes(r)),
    `flows: next shows ${rows2.length} rows, none of page 1`,
  );
  await waitLoad(page, () => page.click('[data-control=prev]'), { timeout: LOAD_TIMEOUT });
  t.check(!(await hash(page)).includes('offset='), 'flows: prev goes back to offset 0');

  for (const [order, pick] of [
    ['desc', Math.max],
    ['asc', Math.min],
  ]) {
    await waitLoad(page, () => page.click('th[data-col=octetDeltaCount]'), { timeout: LOAD_TIMEOUT });
    const tb = await flowTable(page);
    t.check(
      queryParam(tb.query, 'sort') === 'octetDeltaCount' && queryParam(tb.query, 'order') === order,
      `flows: header click ${order === 'desc' ? 'once' : 'twice'}: sort=octetDeltaCount order=${order} in the data-query`,
      tb.query,
    );
    t.check((await hash(page)).includes('sort=octetDeltaCount'), 'flows: the sort is in the URL');
    const every = await get(
      withParams(tb.query, { limit: 10000, offset: 0, sort: null, order: null, columns: 'octetDeltaCount' }),
    );
    const want = pick(...every.rows.map((r) => r.octetDeltaCount));
    const col = tb.cols.indexOf('octetDeltaCount');
    const which = order === 'desc' ? 'largest' : 'smallest';
    t.eq(String(want), tb.rows[0]?.[col], `flows: first row's bytes = the ${which} of ${every.total} records`);
  }

  const before = (await flowTable(page)).total;
  await waitLoad(
    page,
    async () => {
      await page.fill('input[data-colfilter=sourcePodNamespace]', 'frontend');
      await page.press('input[data-colfilter=sourcePodNamespace]', 'Enter');
    },
    { timeout: LOAD_TIMEOUT },
  );
  const tf = await flowTable(page);
  t.check(
    whereOf(tf.query).includes('sourcePodNamespace~frontend'),
    'flows: the column filter is a where clause of the data-query',
    tf.query,
  );
  const own =
    `api/v1/flows?since=${SINCE}&limit=1&where=${encodeURIComponent('sourcePodNamespace~frontend')}` +
    `&where=${encodeURIComponent(`namespace!=${EXCLUDED}`)}`;
  const ans = await get(own);
  t.check(
    tf.total === ans.total && tf.total > 0 && tf.total < before,
    `flows: column filter sourcePodNamespace~frontend: total ${tf.total} = the API's for the same where, below ${before}`,
    `API ${ans.total}`,
  );
  await verifyFlowRows(page, answers(page), 'flows filtered');

  await page.click('tbody tr[data-row="0"]');
  await page.waitForSelector('aside[data-detail]:not([hidden])', { timeout: 5000 }).catch(() => null);
  const detail = await page.evaluate(() => {
    const a = document.querySelector('aside[data-detail]');
    if (!a || a.hidden) return null;
    return {
      dt: [...a.querySelectorAll('dt')].map((x) => x.textContent),
      dd: [...a.querySelectorAll('dd')].map((x) => x.textContent),
    };
  });
  const row = (await get(tf.query)).rows[0];
  if (t.check(detail, 'flows: a row click opens aside[data-detail]')) {
    t.eq(FLOW_COLUMNS, detail.dt.length, 'flows: the detail lists every column');
    t.eq(Object.keys(row), detail.dt, 'flows: the detail names the columns of the API row, in order');
    t.eq(
      Object.values(row).map((v) => (v === null ? '' : String(v))),
      detail.dd,
      "flows: the detail's values are the API row's raw values",
    );
  }
  await noProblems(w, 'flows');
}

// Step 7: the API requests the UI made.
function bounds(w) {
  const bad = [];
  for (const u of w.api) {
    const rule = BOUNDS[u.pathname.replace(/^.*(\/api\/v1\/[a-z]+)$/, '$1')];
    if (!rule) continue;
    const [param, max, dflt] = rule;
    const v = u.searchParams.has(param) ? Number(u.searchParams.get(param)) : dflt;
    if (!(v <= max)) bad.push(`${u.pathname}?${param}=${v} (at most ${max}): ${u.search}`);
  }
  t.errors(bad, `bounded requests: none of the UI's ${w.api.length} API requests asks for more than 100 rows, 50 series or 50 groups`);
}

// ---------------------------------------------------------------------------

async function main() {
  if (args.shots) fs.mkdirSync(args.shots, { recursive: true });
  await runChecks(t, async (browser) => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(LOAD_TIMEOUT);
    const w = watchPage(page, BASE);
    // The last page first, so that every page of the first round is
    // reached through its nav link.
    const last = PAGES[PAGES.length - 1];
    const ms = await waitLoad(page, () => page.goto(`${BASE}/#/${last}?since=${SINCE}&refresh=off`), {
      timeout: LOAD_TIMEOUT,
      navigation: true,
      pageId: last,
    });
    t.ok(`${BASE}/#/${last} loads, ready in ${ms} ms`);
    const [ui] = await pageGetOk(page, ['api/v1/ui']);
    t.eq([EXCLUDED], ui.excludeNamespaces, 'GET api/v1/ui: excludeNamespaces');

    const before = await everyPage(page, w, 'pages', { shots: true });
    await oracleDefault(page);
    await showExcluded(page, w);
    await filterChip(page, w, before);
    await timeRange(page, w, before);
    await autoRefresh(page, w, before);
    await flowRecords(page, w);
    bounds(w);
    if (w.aborted) t.note(`${w.aborted} API requests of superseded loads were aborted by the UI`);
    await noProblems(w, 'the whole run');
    await context.close();
  });
}

main();
