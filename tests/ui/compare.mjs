// compare.mjs - a chart's data against the API answer it was drawn from.
//
// Each helper takes the ECharts option of a chart (getOption()) and the
// API's JSON answer for the chart's data-query URL, and returns a list of
// differences (empty: the chart shows exactly the API's numbers).  They
// are written from docs/api.md and the UI's test contract, not from the
// UI's own code, so that a bug in the UI's transforms shows here:
//
//   - Sankey: one link per group whose value is not 0; link value = the group's value (reverse
//     for a reverse Sankey); node names are the group's labels prefixed
//     "s:" / "d:", so "<source node> -> <target node>" without the
//     prefixes is the group's key (for policy_pair the key carries the
//     rule actions, "ns/p (allow) -> ns/q (drop)", and so do the nodes);
//     the policy Sankey leaves out the group without a policy on either
//     side, and every Sankey shows at most topn links;
//   - lines: one series per API series, in order, data = the points with
//     the time in milliseconds;
//   - pie: one slice per group, value = its value, plus "other" when the
//     answer's other is above zero;
//   - bars: one bar per group, in order;
//   - heat map: cell [x, y, value] for the y-th series' x-th point.

// The chart kind of an option: 'sankey', 'line', 'pie', 'bar', 'heatmap'.
export function chartKind(option) {
  const types = [...new Set((option.series || []).map((s) => s.type))];
  return types.length === 1 ? types[0] : types.join('+') || 'none';
}

const stripSide = (name) => String(name).replace(/^[sd]:/, '');

// What a /top group's key says: "source -> destination".
export function splitKey(key) {
  const i = key.indexOf(' -> ');
  return i < 0 ? null : [key.slice(0, i), key.slice(i + 4)];
}

export function compareSankey(option, answer, { reverse = false, policy = false, topn = Infinity } = {}) {
  const diffs = [];
  const s = option.series[0];
  let groups = answer.groups || [];
  if (policy) groups = groups.filter((g) => (g.labels?.source ?? '') !== '' || (g.labels?.destination ?? '') !== '');
  groups = groups.slice(0, topn);
  // A group whose value is 0 has no link (nothing to draw).
  const want = new Map(
    groups.map((g) => [g.key, reverse ? g.reverse : g.value]).filter(([, v]) => v !== 0 && v != null),
  );
  const got = new Map();
  const nodes = new Set((s.data || s.nodes || []).map((n) => n.name));
  for (const l of s.links || s.edges || []) {
    if (!String(l.source).startsWith('s:')) diffs.push(`link source '${l.source}' has no 's:' prefix`);
    if (!String(l.target).startsWith('d:')) diffs.push(`link target '${l.target}' has no 'd:' prefix`);
    if (!nodes.has(l.source) || !nodes.has(l.target)) diffs.push(`link ${l.source} -> ${l.target}: a node is missing`);
    const key = `${stripSide(l.source)} -> ${stripSide(l.target)}`;
    if (got.has(key)) diffs.push(`link ${key} twice`);
    got.set(key, l.value);
  }
  for (const [k, v] of want) {
    if (!got.has(k)) diffs.push(`no link for group '${k}' (${v})`);
    else if (got.get(k) !== v) diffs.push(`link '${k}': ${got.get(k)}, API ${v}`);
  }
  for (const [k, v] of got) if (!want.has(k)) diffs.push(`link '${k}' (${v}) is no group of the answer`);
  // Every node carries a link: no stray nodes.
  const used = new Set([...(s.links || s.edges || [])].flatMap((l) => [l.source, l.target]));
  for (const n of nodes) if (!used.has(n)) diffs.push(`node '${n}' without a link`);
  return diffs;
}

// The chart's links as [{source, target, value}] with the prefixes removed.
export function sankeyLinks(option) {
  const s = option.series[0];
  return (s.links || s.edges || []).map((l) => ({ source: stripSide(l.source), target: stripSide(l.target), value: l.value }));
}

export function compareLines(option, answer) {
  const diffs = [];
  const lines = (option.series || []).filter((s) => s.type === 'line');
  const series = answer.series || [];
  if (lines.length !== series.length) diffs.push(`${lines.length} lines, API ${series.length} series`);
  series.forEach((s, i) => {
    const l = lines[i];
    if (!l) return;
    const want = (s.points || []).map(([t, v]) => [t * 1000, v]);
    const got = (l.data || []).map((d) => (Array.isArray(d) ? d : d && d.value));
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      const j = want.findIndex((p, k) => JSON.stringify(p) !== JSON.stringify(got[k]));
      diffs.push(
        `series ${i} (${s.key}): ${got.length} points, API ${want.length}; first difference at ${j}: ` +
          `${JSON.stringify(got[j])} vs API ${JSON.stringify(want[j])}`,
      );
    }
    if (s.other && l.name !== 'other') diffs.push(`series ${i} is the API's "other" but named '${l.name}'`);
  });
  return diffs;
}

// A single-label group's label ("" when the side has none), else null.
function singleLabel(g) {
  const v = Object.values(g.labels || {});
  return v.length === 1 ? v[0] : null;
}

export function comparePie(option, answer) {
  const diffs = [];
  const data = option.series[0].data || [];
  const want = (answer.groups || []).map((g) => ({ label: singleLabel(g), key: g.key, value: g.value }));
  if (answer.other > 0) want.push({ label: 'other', key: 'other', value: answer.other });
  if (data.length !== want.length) diffs.push(`${data.length} slices, API ${want.length} (groups + other)`);
  want.forEach((w, i) => {
    const d = data[i];
    if (!d) return;
    if (d.value !== w.value) diffs.push(`slice ${i} '${d.name}': ${d.value}, API ${w.value} (${w.key})`);
    if (w.label && d.name !== w.label) diffs.push(`slice ${i} is named '${d.name}', API label '${w.label}'`);
  });
  return diffs;
}

export function compareBars(option, answer) {
  const diffs = [];
  const bars = option.series[0].data.map((d) => (typeof d === 'object' && d !== null ? d.value : d));
  const want = (answer.groups || []).map((g) => g.value);
  if (JSON.stringify(bars) !== JSON.stringify(want)) diffs.push(`bars ${JSON.stringify(bars)}, API ${JSON.stringify(want)}`);
  const names = (option.yAxis && option.yAxis[0] && option.yAxis[0].data) || [];
  (answer.groups || []).forEach((g, i) => {
    for (const l of Object.values(g.labels || {})) {
      if (l !== '' && !String(names[i] ?? '').includes(l)) diffs.push(`bar ${i} '${names[i]}' does not name '${l}'`);
    }
  });
  return diffs;
}

export function compareHeatmap(option, answer) {
  const diffs = [];
  const series = answer.series || [];
  const times = (series[0]?.points || []).map((p) => p[0]);
  const want = [];
  series.forEach((s, y) => (s.points || []).forEach(([t, v]) => want.push([times.indexOf(t), y, v])));
  const got = (option.series[0].data || []).map((d) => (Array.isArray(d) ? d : d.value));
  const key = (c) => c.join(',');
  const a = want.map(key).sort();
  const b = got.map(key).sort();
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    const missing = a.filter((x) => !b.includes(x)).slice(0, 3);
    const extra = b.filter((x) => !a.includes(x)).slice(0, 3);
    diffs.push(`${got.length} cells, API ${want.length}; missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`);
  }
  const rows = (option.yAxis && option.yAxis[0] && option.yAxis[0].data) || [];
  if (rows.length !== series.length) diffs.push(`${rows.length} rows, API ${series.length} series`);
  const cols = (option.xAxis && option.xAxis[0] && option.xAxis[0].data) || [];
  if (cols.length !== times.length) diffs.push(`${cols.length} columns, API ${times.length} buckets`);
  return diffs;
}

// compareChart(option, answer, ctx): dispatch on the chart kind.
export function compareChart(option, answer, ctx = {}) {
  const kind = chartKind(option);
  switch (kind) {
    case 'sankey':
      return compareSankey(option, answer, ctx);
    case 'line':
      return compareLines(option, answer);
    case 'pie':
      return comparePie(option, answer);
    case 'bar':
      return compareBars(option, answer);
    case 'heatmap':
      return compareHeatmap(option, answer);
    default:
      return [`unknown chart kind '${kind}'`];
  }
}

// The numbers a chart shows, for "the same as before" comparisons:
// sankey links by key, slices and bars in order, per series the sum of
// its points (the buckets move with the clock under since=).
export function chartNumbers(option) {
  const kind = chartKind(option);
  const s = option.series || [];
  switch (kind) {
    case 'sankey':
      return sankeyLinks(option)
        .map((l) => `${l.source} -> ${l.target}=${l.value}`)
        .sort();
    case 'line':
      return s.map((l) => `${l.name}=${(l.data || []).reduce((a, d) => a + (Array.isArray(d) ? d[1] : d.value[1]), 0)}`);
    case 'pie':
      return s[0].data.map((d) => `${d.name}=${d.value}`);
    case 'bar':
      return s[0].data.map((d) => (typeof d === 'object' ? d.value : d));
    case 'heatmap': {
      const sums = {};
      for (const d of s[0].data) {
        const [, y, v] = Array.isArray(d) ? d : d.value;
        sums[y] = (sums[y] || 0) + v;
      }
      return Object.entries(sums).map(([y, v]) => `${y}=${v}`);
    }
    default:
      return [];
  }
}
