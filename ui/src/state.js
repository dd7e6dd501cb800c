// The UI state and its URL form: everything a view shows is in the hash,
// so a link shows the same dashboard to whoever opens it.
//
//   #/<page>?since=15m&where=namespace%3Dweb&refresh=10s&topn=50
//   #/flows?start=1795262400&end=1795266000&sort=octetDeltaCount&order=asc&offset=50
//
// Global keys (every page): since | start+end, refresh, where (repeated),
// showExcluded, topn.  Page keys: flows: offset, sort, order, cols, cf
// (repeated column filters); policy: policy, policyns, policyside.
// Unknown keys and bad values fall back to the defaults.  DOM-free
// (unit tests: test/state.test.mjs).

import { COLUMN, DEFAULT_COLUMNS } from './columns.js';

export const PAGES = Object.freeze([
  'overview',
  'flows',
  'pod-to-pod',
  'pod-to-external',
  'pod-to-service',
  'node-to-node',
  'policy',
  'heatmap',
]);
export const RANGES = Object.freeze(['5m', '15m', '1h', '6h', '24h', '7d']);
export const REFRESH = Object.freeze({ off: 0, '10s': 10, '30s': 30, '1m': 60 });
export const TOPN = Object.freeze([10, 20, 50]);
export const PAGE_SIZE = 50;

export const DEFAULTS = Object.freeze({
  page: 'overview',
  since: '15m',
  refresh: '30s',
  topn: 20,
  sort: 'flowEndSeconds',
  order: 'desc',
  policyside: 'ingress',
});

export function defaultState() {
  return {
    page: DEFAULTS.page,
    since: DEFAULTS.since,
    start: null,
    end: null,
    refresh: DEFAULTS.refresh,
    where: [],
    showExcluded: false,
    topn: DEFAULTS.topn,
    offset: 0,
    sort: DEFAULTS.sort,
    order: DEFAULTS.order,
    cols: [...DEFAULT_COLUMNS],
    cf: [],
    policy: '',
    policyns: '',
    policyside: DEFAULTS.policyside,
  };
}

const UNIT = { s: 1, m: 60, h: 3600, d: 86400 };

// Seconds of a duration like "15m", "1h30m", "7d"; NaN when malformed.
export function parseDuration(s) {
  if (typeof s !== 'string' || !/^(\d+[smhd])+$/.test(s)) return NaN;
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNIT[u];
  return total;
}

const isUint = (s) => typeof s === 'string' && /^\d{1,12}$/.test(s);

// The state of a location hash ("#/page?query"); missing or bad parts are defaults.
export function parseHash(hash) {
  const st = defaultState();
  let h = String(hash || '').replace(/^#/, '');
  h = h.replace(/^\//, '');
  const q = h.indexOf('?');
  const page = q < 0 ? h : h.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  if (PAGES.includes(page)) st.page = page;

  const since = params.get('since');
  const start = params.get('start');
  const end = params.get('end');
  if (isUint(start) && isUint(end) && Number(end) > Number(start)) {
    st.since = null;
    st.start = Number(start);
    st.end = Number(end);
  } else if (since && RANGES.includes(since)) {
    st.since = since;
  }
  const refresh = params.get('refresh');
  if (refresh && Object.hasOwn(REFRESH, refresh)) st.refresh = refresh;
  st.where = unique(params.getAll('where').filter((w) => w !== ''));
  st.showExcluded = ['1', 'true', 'on'].includes(params.get('showExcluded') ?? '');
  const topn = Number(params.get('topn'));
  if (TOPN.includes(topn)) st.topn = topn;

  const offset = params.get('offset');
  if (isUint(offset) && Number(offset) <= 1000000) st.offset = Number(offset);
  const sort = params.get('sort');
  if (sort && Object.hasOwn(COLUMN, sort)) st.sort = sort;
  const order = params.get('order');
  if (order === 'asc' || order === 'desc') st.order = order;
  const cols = params.get('cols');
  if (cols) {
    const list = unique(cols.split(',').filter((c) => Object.hasOwn(COLUMN, c)));
    if (list.length) st.cols = list;
  }
  st.cf = unique(params.getAll('cf').filter((w) => w !== ''));
  st.policy = params.get('policy') ?? '';
  st.policyns = params.get('policyns') ?? '';
  const side = params.get('policyside');
  if (side === 'ingress' || side === 'egress') st.policyside = side;
  return st;
}

function unique(list) {
  return [...new Set(list)];
}

const enc = (s) => encodeURIComponent(s);

// The hash of a state, for page (default: st.page).  Page keys are written
// only for their page and only when they differ from the defaults.
export function serializeHash(st, page = st.page) {
  const p = [];
  if (st.start !== null && st.end !== null && st.start !== undefined && st.end !== undefined) {
    p.push(`start=${st.start}`, `end=${st.end}`);
  } else {
    p.push(`since=${enc(st.since || DEFAULTS.since)}`);
  }
  if (st.refresh && st.refresh !== DEFAULTS.refresh) p.push(`refresh=${enc(st.refresh)}`);
  if (st.topn && st.topn !== DEFAULTS.topn) p.push(`topn=${st.topn}`);
  for (const w of st.where || []) p.push(`where=${enc(w)}`);
  if (st.showExcluded) p.push('showExcluded=1');
  if (page === 'flows') {
    if (st.sort && st.sort !== DEFAULTS.sort) p.push(`sort=${enc(st.sort)}`);
    if (st.order && st.order !== DEFAULTS.order) p.push(`order=${st.order}`);
    if (st.offset) p.push(`offset=${st.offset}`);
    if (st.cols && st.cols.join(',') !== DEFAULT_COLUMNS.join(',')) p.push(`cols=${enc(st.cols.join(','))}`);
    for (const c of st.cf || []) p.push(`cf=${enc(c)}`);
  }
  if (page === 'policy') {
    if (st.policy) p.push(`policy=${enc(st.policy)}`);
    if (st.policyns) p.push(`policyns=${enc(st.policyns)}`);
    if (st.policyns && st.policyside !== DEFAULTS.policyside) p.push(`policyside=${st.policyside}`);
  }
  return `#/${page}?${p.join('&')}`;
}

// The keys whose change needs new data (everything but refresh).
export function dataKey(st) {
  const s = { ...st };
  delete s.refresh;
  return JSON.stringify(s);
}

// The range [start, end) in unix seconds that a state stands for at nowSec.
export function effectiveRange(st, nowSec = Math.floor(Date.now() / 1000)) {
  if (st.start !== null && st.end !== null) return { start: st.start, end: st.end };
  const d = parseDuration(st.since || DEFAULTS.since);
  return { start: nowSec - d, end: nowSec };
}

// The length of the state's range in seconds.
export function rangeSeconds(st) {
  const r = effectiveRange(st, 0);
  return r.end - r.start;
}

const pad = (n) => String(n).padStart(2, '0');

// unix seconds -> "YYYY-MM-DDTHH:MM" in local time, for <input type=datetime-local>.
export function toDatetimeLocal(sec) {
  const d = new Date(sec * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

// "YYYY-MM-DDTHH:MM[:SS]" in local time -> unix seconds, or null.
export function fromDatetimeLocal(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/.exec(String(s || ''));
  if (!m) return null;
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  const t = d.getTime();
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}
