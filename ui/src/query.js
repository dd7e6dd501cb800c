// Building the API's URLs: where= clauses (user filters, column filters,
// page clauses, excluded namespaces), the time range and the bucket width.
// Every URL is relative ("api/v1/top?..."), so the UI works behind any
// path prefix.  DOM-free (unit tests: test/query.test.mjs).

import { COLUMN, keyKind } from './columns.js';
import { FLOW_TYPES, ACTIONS } from './format.js';
import { parseDuration } from './state.js';

export const MAX_WHERE = 16; // the API's limit of where= clauses per request
export const DEFAULT_EXCLUDED = Object.freeze(['kube-system', 'flowvis']);

const PROTO_NAMES = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };

// Parses "key=value", "key!=value" or "key~value" the way the API does.
// Returns {clause, key, op, value} or {error}.
export function parseClause(text) {
  const s = String(text ?? '').trim();
  const m = /^([A-Za-z0-9_]+)\s*(!=|=|~)\s?(.*)$/s.exec(s);
  if (!m) return { error: `'${s}' is not key=value, key!=value or key~value` };
  const [, key, op] = m;
  const value = m[3].trim();
  const kind = keyKind(key);
  if (!kind) {
    return {
      error:
        `unknown key '${key}' (a column of the flows table, or srcip, dstip, srcport, ` +
        'dstport, proto, namespace, pod, node, service, policy)',
    };
  }
  if (kind !== 'string') {
    if (op === '~') return { error: `${key} is a number column; use = or !=` };
    if (key === 'proto' && Object.hasOwn(PROTO_NAMES, value.toLowerCase())) {
      return { clause: `${key}${op}${value.toLowerCase()}`, key, op, value: value.toLowerCase() };
    }
    if (kind === 'int' && !/^\d+$/.test(value)) return { error: `${key}: '${value}' is not a whole number` };
    if (kind === 'time' && value === '') return { error: `${key}: a time is needed (unix seconds or RFC 3339)` };
  }
  return { clause: `${key}${op}${value}`, key, op, value };
}

// A column filter's input text -> a where clause, null for an empty input, or
// {error}.  The text may start with an operator ("!=web", "=443", "~api");
// without one, text columns match by "contains" and number columns by "=".
// Names work for codes: "tcp" for protocolIdentifier, "inter-node" for
// flowType, "drop" for the rule actions.
export function columnFilterClause(column, text) {
  const col = COLUMN[column];
  if (!col) return { error: `unknown column '${column}'` };
  let s = String(text ?? '').trim();
  if (s === '') return null;
  let op = col.kind === 'string' ? '~' : '=';
  const m = /^(!=|=|~)\s*/.exec(s);
  if (m) {
    op = m[1];
    s = s.slice(m[0].length);
  }
  if (col.kind !== 'string') {
    const low = s.toLowerCase();
    if (col.unit === 'proto' && Object.hasOwn(PROTO_NAMES, low)) s = String(PROTO_NAMES[low]);
    if (col.unit === 'flowType' && FLOW_TYPES.includes(low)) s = String(FLOW_TYPES.indexOf(low));
    if (col.unit === 'action' && ACTIONS.includes(low) && low !== '') s = String(ACTIONS.indexOf(low));
  }
  const r = parseClause(`${column}${op}${s}`);
  return r.error ? { error: r.error } : r.clause;
}

// The value a column filter input shows for a clause on that column.
export function columnFilterText(column, clause) {
  const r = parseClause(clause);
  if (r.error || r.key !== column) return '';
  const col = COLUMN[column];
  const dflt = col && col.kind === 'string' ? '~' : '=';
  return r.op === dflt ? r.value : `${r.op}${r.value}`;
}

// The where= list of a request: the page's clauses, the user's filters and,
// unless shown, one namespace!=NS per excluded namespace.  Returns
// {where} or {error} when there are more than the API takes.
export function buildWhere({ page = [], user = [], excluded = [], showExcluded = false } = {}) {
  const where = [...page, ...user];
  if (!showExcluded) for (const ns of excluded) where.push(`namespace!=${ns}`);
  const seen = new Set();
  const list = where.filter((w) => (seen.has(w) ? false : (seen.add(w), true)));
  if (list.length > MAX_WHERE) {
    return {
      error:
        `too many filters: this panel needs ${list.length} where clauses and the API takes at ` +
        `most ${MAX_WHERE}; remove a filter${showExcluded ? '' : ' or show the excluded namespaces'}`,
    };
  }
  return { where: list };
}

// The time parameters of a state: [["since","15m"]] or [["start",s],["end",e]].
export function timeParams(st) {
  if (st.start !== null && st.end !== null && st.start !== undefined && st.end !== undefined) {
    return [
      ['start', String(st.start)],
      ['end', String(st.end)],
    ];
  }
  return [['since', st.since || '15m']];
}

// "path?k=v&...&where=..." with every value URL-encoded, in the order given.
export function apiUrl(path, params = [], where = []) {
  const parts = [];
  for (const [k, v] of params) {
    if (v === undefined || v === null) continue;
    parts.push(`${k}=${encodeURIComponent(String(v))}`);
  }
  for (const w of where) parts.push(`where=${encodeURIComponent(w)}`);
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

// The API's own bucket widths (docs/api.md), then whole days.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// The smallest of the API's nice bucket widths giving at most maxBuckets
// buckets over rangeSeconds.
export function chooseStep(rangeSeconds, maxBuckets = 100) {
  const r = Math.max(1, Math.ceil(rangeSeconds));
  for (const s of STEPS) if (Math.ceil(r / s) <= maxBuckets) return s;
  return 86400 * Math.ceil(r / 86400 / maxBuckets);
}

// The step for a state (since or start/end).
export function stepFor(st, maxBuckets = 100) {
  const r = st.start !== null && st.end !== null ? st.end - st.start : parseDuration(st.since || '15m');
  return chooseStep(r, maxBuckets);
}
