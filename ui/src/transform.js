// API answers -> chart data.  Values stay exactly the API's numbers; only
// names are made readable.  DOM-free (unit tests: test/transform.test.mjs).
//
// Sankey diagrams must be acyclic: a -> b and b -> a would be a cycle, so
// source-side nodes are named "s:<label>" and destination-side nodes
// "d:<label>"; labels and tooltips strip the prefix (sankeyNodeLabel).

import { displayLabel } from './format.js';

export const OTHER = 'other';

// The name shown for a group of /top or a series of /series.
export function groupName(g) {
  if (!g) return '';
  if (g.other || g.key === OTHER) return OTHER;
  const l = g.labels || {};
  if ('egressAction' in l || 'ingressAction' in l) {
    return `${policySide(l.source, l.egressAction)} → ${policySide(l.destination, l.ingressAction)}`;
  }
  if ('source' in l && 'destination' in l) return `${displayLabel(l.source)} → ${displayLabel(l.destination)}`;
  const vals = Object.values(l);
  if (vals.length === 1) return displayLabel(vals[0]);
  return g.key === 'all' ? 'all' : displayLabel(g.key);
}

function policySide(policy, action) {
  return displayLabel(policy) + (action ? ` (${action})` : '');
}

// The worst rule action of a policy pair: "drop"/"reject" beat "allow" beat "".
export function pairAction(labels) {
  const a = [labels?.egressAction || '', labels?.ingressAction || ''];
  if (a.includes('reject')) return 'reject';
  if (a.includes('drop')) return 'drop';
  if (a.includes('allow')) return 'allow';
  return '';
}

// Whether a policy_pair group has no policy on either side.
export function isEmptyPolicyPair(g) {
  return (g.labels?.source ?? '') === '' && (g.labels?.destination ?? '') === '';
}

// The label of a Sankey node id ("s:web/a" -> "web/a", "d:" -> "(none)").
export function sankeyNodeLabel(id) {
  return displayLabel(String(id).replace(/^[sd]:/, ''));
}

// A /top answer with source/destination labels -> {nodes, links} for an
// ECharts Sankey.  reverse: the links carry the groups' `reverse`.
// policy: nodes carry the rule action ("s:ns/p (allow)") and links their
// action, for colouring; groups without a policy on either side are left out.
// Links are in the API's order; link.value is exactly the API's number;
// groups whose value is 0 get no link.
export function topToSankey(answer, { reverse = false, policy = false, limit = Infinity } = {}) {
  const nodes = [];
  const seen = new Map();
  const links = [];
  const node = (id, side, action) => {
    if (!seen.has(id)) {
      const n = { name: id, side };
      if (policy) n.action = action || '';
      seen.set(id, n);
      nodes.push(n);
    }
    return id;
  };
  let groups = answer?.groups || [];
  if (policy) groups = groups.filter((g) => !isEmptyPolicyPair(g));
  groups = groups.slice(0, limit);
  for (const g of groups) {
    const l = g.labels || {};
    const v = reverse ? g.reverse : g.value;
    // No link for nothing: a zero (a denied flow's reverse bytes) would only
    // draw a node without height whose label overlaps its neighbours.
    if (v === null || v === undefined || v === 0) continue;
    let s = `s:${l.source ?? ''}`;
    let d = `d:${l.destination ?? ''}`;
    if (policy) {
      if (l.egressAction) s += ` (${l.egressAction})`;
      if (l.ingressAction) d += ` (${l.ingressAction})`;
    }
    const link = { source: node(s, 'source', l.egressAction), target: node(d, 'destination', l.ingressAction), value: v, key: g.key };
    if (policy) link.action = pairAction(l);
    links.push(link);
  }
  const sum = links.reduce((a, k) => a + k.value, 0);
  return { nodes, links, sum };
}

// A /top answer -> pie data [{name, value}], the API's order, plus a grey
// "other" slice with the answer's `other` when it is above zero.
export function topToPie(answer, { withOther = true } = {}) {
  const data = (answer?.groups || []).map((g) => ({ name: groupName(g), value: g.value }));
  if (withOther && answer?.other > 0) data.push({ name: OTHER, value: answer.other, other: true });
  return data;
}

// A /top answer -> bar items [{name, value, reverse}] in the API's order.
export function topToBars(answer) {
  return (answer?.groups || []).map((g) => ({ name: groupName(g), value: g.value, reverse: g.reverse }));
}

// A /series answer -> line series [{name, key, other, data: [[ms, v], ...]}]:
// the API's points with the time in milliseconds, in the API's order.
export function seriesToLines(answer) {
  return (answer?.series || []).map((s) => ({
    name: groupName(s),
    key: s.key,
    other: !!s.other,
    data: (s.points || []).map(([t, v]) => [t * 1000, v]),
  }));
}

// A /series answer -> heat map data: x = bucket times (unix seconds),
// y = group names in the API's order (largest first, "other" last),
// data = [xIndex, yIndex, value]; max = the largest value.
export function seriesToHeatmap(answer) {
  const series = answer?.series || [];
  const times = (series[0]?.points || []).map((p) => p[0]);
  const index = new Map(times.map((t, i) => [t, i]));
  const names = series.map(groupName);
  const data = [];
  let max = 0;
  series.forEach((s, y) => {
    for (const [t, v] of s.points || []) {
      const x = index.get(t);
      if (x === undefined) continue;
      data.push([x, y, v]);
      if (v > max) max = v;
    }
  });
  return { times, names, data, max };
}

// Whether a /series answer has anything to show.
export function seriesEmpty(answer) {
  const s = answer?.series || [];
  return s.length === 0 || s.every((x) => (x.points || []).every((p) => !p[1]));
}

// Whether a /top answer has anything to show.
export function topEmpty(answer) {
  return !answer || !(answer.groups || []).length;
}

// The denied policy pairs of several /top answers (group=policy_pair),
// merged by key, largest value first: a pair's key fixes its record set,
// so a pair in two answers has the same numbers in both.
export function deniedPairs(answers) {
  const byKey = new Map();
  for (const a of answers) {
    for (const g of a?.groups || []) {
      const act = pairAction(g.labels);
      if ((act === 'drop' || act === 'reject') && !byKey.has(g.key)) byKey.set(g.key, g);
    }
  }
  return [...byKey.values()].sort((a, b) => b.value - a.value || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
