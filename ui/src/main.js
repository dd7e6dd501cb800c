// flowvis UI entry point: hash routing, page building, loading every panel
// of the page, auto-refresh, and the test hooks (README.md).
//
// The state lives in the URL (state.js).  A change of the hash rebuilds
// the page when the page changed and reloads its panels when anything
// else the data depend on changed.  A load aborts the previous one; a
// panel draws only if its load is still the current one.  <main
// data-state> is "loading" while any panel of the current load is.

import { echarts, disposeCharts } from './charts.js';
import { getJSON, isAbort, ApiError, resetTokenPrompt } from './api.js';
import { parseHash, serializeHash, dataKey, REFRESH, TOPN } from './state.js';
import { buildWhere, timeParams, apiUrl, stepFor, DEFAULT_EXCLUDED } from './query.js';
import { PAGE_DEFS } from './pages.js';
import { buildPanel } from './panels.js';
import { initTopbar, updateTopbar, showRangeInputs } from './topbar.js';
import { h, select } from './dom.js';

/* global __FLOWVIS_VERSION__ */
const VERSION = typeof __FLOWVIS_VERSION__ === 'string' ? __FLOWVIS_VERSION__ : 'dev';
window.__flowvis = { echarts, version: VERSION };

const main = document.getElementById('page');
const app = {
  state: parseHash(location.hash),
  config: null, // {excludeNamespaces, version, store} from api/v1/ui
  pageId: null, // the page whose DOM is built
  panels: [], // its panels (panels.js)
  gen: 0, // the current load
  abort: null, // aborts the current load's requests
  loadedKey: null, // dataKey of the state last loaded
  timer: 0,
  timerSec: -1,
};

function navigate(patch) {
  resetTokenPrompt();
  const hash = serializeHash({ ...app.state, ...patch });
  // The same state again (Enter, then the change event of the same input): nothing to do.
  if (hash !== location.hash) location.hash = hash;
}

function apply(st, force) {
  app.state = st;
  const canonical = serializeHash(st);
  if (canonical !== location.hash) history.replaceState(null, '', canonical);
  updateTopbar(st, app.config, navigate);
  if (!app.config) return;
  if (app.pageId !== st.page) {
    buildPage();
    load();
  } else {
    updateTools();
    if (force || dataKey(st) !== app.loadedKey) load();
  }
  scheduleRefresh();
}

function pageTools(def, st) {
  const tools = [];
  for (const t of def.tools || []) {
    if (t === 'topn') {
      const sel = select(
        { 'data-control': 'topn', 'aria-label': def.topnLabel || 'Top N' },
        TOPN.map((n) => [n, String(n)]),
        st.topn,
      );
      sel.addEventListener('change', () => navigate({ topn: Number(sel.value) }));
      tools.push(h('label', { class: 'tool', title: 'How many of the largest groups to show' }, def.topnLabel || 'Top', sel));
    } else if (typeof t === 'function') {
      tools.push(...t(st, navigate));
    }
  }
  return tools;
}

function updateTools() {
  const box = main.querySelector('.page-tools');
  if (!box || box.contains(document.activeElement)) return;
  box.replaceChildren(...pageTools(PAGE_DEFS[app.state.page], app.state));
}

function buildPage() {
  const st = app.state;
  const def = PAGE_DEFS[st.page];
  app.abort?.abort();
  disposeCharts(main);
  app.pageId = def.id;
  app.panels = def.panels.map(buildPanel);
  main.dataset.page = def.id;
  main.replaceChildren(
    h(
      'div',
      { class: 'page-head' },
      h('div', { class: 'page-title' }, h('h1', { text: def.title }), h('p', { class: 'page-desc', text: def.description })),
      h('div', { class: 'page-tools' }, pageTools(def, st)),
    ),
    h('div', { class: 'grid' }, app.panels.map((p) => p.el)),
  );
  document.title = `${def.title} · flowvis`;
}

async function runPanel(p, ctx, gen) {
  p.setState('loading');
  try {
    const r = await p.spec.load(p, ctx);
    if (gen !== app.gen) return;
    const [state, message] = Array.isArray(r) ? r : [r || 'ready'];
    p.setState(state, message);
  } catch (e) {
    if (gen !== app.gen || isAbort(e)) return;
    p.setState('error', e && e.message ? e.message : String(e));
  }
}

async function load() {
  const gen = ++app.gen;
  app.abort?.abort();
  const ac = new AbortController();
  app.abort = ac;
  const st = app.state;
  app.loadedKey = dataKey(st);
  main.dataset.state = 'loading';
  showRangeInputs(st, st.start === null);
  const def = PAGE_DEFS[st.page];
  const pageWhere = def.where ? def.where(st) : [];
  const cache = new Map();
  const ctx = {
    state: st,
    config: app.config,
    navigate,
    // One request per URL and load, whoever asks.
    fetch(url) {
      if (!cache.has(url)) cache.set(url, getJSON(url, { signal: ac.signal }));
      return cache.get(url);
    },
    // The URL of a query: time range, params, then page, panel and user
    // where= clauses and the excluded namespaces.  Throws when there are
    // more clauses than the API takes.
    url(path, params = [], where = []) {
      const w = buildWhere({
        page: [...pageWhere, ...where],
        user: st.where,
        excluded: app.config.excludeNamespaces,
        showExcluded: st.showExcluded,
      });
      if (w.error) throw new ApiError(w.error);
      return apiUrl(path, [...timeParams(st), ...params], w.where);
    },
    step: (maxBuckets = 100) => stepFor(st, maxBuckets),
  };
  await Promise.all(app.panels.map((p) => runPanel(p, ctx, gen)));
  if (gen === app.gen) main.dataset.state = 'ready';
}

function scheduleRefresh() {
  const sec = REFRESH[app.state.refresh] || 0;
  if (sec === app.timerSec) return;
  clearInterval(app.timer);
  app.timerSec = sec;
  app.timer = sec
    ? setInterval(() => {
        if (!document.hidden && main.dataset.state !== 'loading') load();
      }, sec * 1000)
    : 0;
}

async function loadConfig() {
  try {
    const c = await getJSON('api/v1/ui');
    const ex = Array.isArray(c?.excludeNamespaces) ? c.excludeNamespaces.filter((s) => typeof s === 'string' && s) : null;
    return { excludeNamespaces: ex ?? [...DEFAULT_EXCLUDED], version: c?.version, store: c?.store };
  } catch {
    // 404: an aggregator without the endpoint; anything else: the panels will say.
    return { excludeNamespaces: [...DEFAULT_EXCLUDED] };
  }
}

async function start() {
  main.dataset.page = app.state.page;
  main.dataset.state = 'loading';
  initTopbar({ getState: () => app.state, navigate });
  window.addEventListener('hashchange', () => {
    resetTokenPrompt();
    apply(parseHash(location.hash), false);
  });
  apply(app.state, false);
  app.config = await loadConfig();
  const v = document.querySelector('[data-version]');
  if (v) {
    v.textContent = `ui ${VERSION}${app.config.version ? ` · aggregator ${app.config.version}` : ''}`;
    if (app.config.store) v.title = `store: ${app.config.store}`;
  }
  apply(parseHash(location.hash), true);
}

start();
