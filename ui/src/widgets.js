// Panel specs of the common kinds: lines over time (/series), Sankey
// diagrams, pies and bars (/top), heat maps (/series).  Every one fetches
// through ctx (app.js), which adds the time range, the page's and the
// user's where= clauses and the excluded namespaces, and shares one
// request between the panels that ask for the same URL.

import { h } from './dom.js';
import { metricFormatter, formatBytes, formatCount, formatStep } from './format.js';
import {
  topToSankey,
  topToPie,
  topToBars,
  seriesToLines,
  seriesToHeatmap,
  seriesEmpty,
  topEmpty,
} from './transform.js';
import { lineOption, sankeyOption, pieOption, barOption, heatmapOption, hideOther, FLOW_TYPE_COLORS } from './charts.js';

// The most groups or series any request asks for (Sankeys, heat maps).
export const MAX_GROUPS = 50;

export const flowTypeColor = (name) => FLOW_TYPE_COLORS[name];

// GET /api/v1/top for a panel: records the URL as the panel's query (the
// test hook) and answers the API's JSON.
async function fetchTop(p, ctx, { metric, group, limit, where }) {
  const url = ctx.url('api/v1/top', [
    ['metric', metric],
    ['group', group],
    ['limit', limit],
  ], where);
  p.setQuery(url);
  return ctx.fetch(url);
}

// A line chart of /series: metric by group, the `top` largest groups plus "other".
export function seriesPanel({ id, title, info, size = 'half', height = 280, metric, group, top = 10, where = [], colorOf }) {
  return {
    id,
    title,
    info,
    size,
    height,
    async load(p, ctx) {
      const step = ctx.step();
      const url = ctx.url('api/v1/series', [
        ['metric', metric],
        ['group', group],
        ['step', step],
        ['top', top],
      ], where);
      p.setQuery(url);
      const ans = await ctx.fetch(url);
      if (seriesEmpty(ans)) return 'empty';
      const lines = seriesToLines(ans);
      const n = lines.filter((l) => !l.other).length;
      const other = !lines.some((l) => l.other) ? '' : hideOther(lines) ? ' + other (hidden: click it in the legend)' : ' + other';
      p.setNote(group === 'none' ? `${formatStep(ans.step)} buckets` : `top ${n}${other} · ${formatStep(ans.step)} buckets`);
      p.chart.setOption(lineOption(lines, { fmt: metricFormatter(metric), step: ans.step, range: ans.end - ans.start, colorOf }), true);
      return 'ready';
    },
  };
}

// A Sankey of /top?group=<pair group>: source -> destination, links = value
// (or reverse).  The two Sankeys of a page share one request.
export function sankeyPanel({ id, title, info, size = 'half', height = 460, group, where = [], reverse = false, policy = false }) {
  return {
    id,
    title,
    info,
    size,
    height,
    async load(p, ctx) {
      const n = ctx.state.topn;
      // The policy Sankey leaves out the group without any policy: ask for
      // one more (within the 50 groups a request may ask for).
      const limit = policy ? Math.min(n + 1, MAX_GROUPS) : n;
      const ans = await fetchTop(p, ctx, { metric: 'bytes', group, limit, where });
      const sk = topToSankey(ans, { reverse, policy, limit: n });
      if (!sk.links.length || sk.sum <= 0) return 'empty';
      const fmt = formatBytes;
      if (reverse) {
        p.setNote(`${formatBytes(sk.sum)} back over the top ${sk.links.length} pairs by bytes`);
      } else {
        const other = ans.other > 0 ? ` · other ${formatBytes(ans.other)}` : '';
        p.setNote(`top ${sk.links.length}: ${formatBytes(sk.sum)} of ${formatBytes(ans.total)}${other}`);
      }
      // Taller when many links, so that labels stay readable.
      const side = Math.max(...['source', 'destination'].map((x) => sk.nodes.filter((nd) => nd.side === x).length));
      const want = Math.max(height, Math.min(1400, 40 + side * 20));
      if (p.chartEl.style.height !== `${want}px`) {
        p.chartEl.style.height = `${want}px`;
        p.chart.resize();
      }
      p.chart.setOption(sankeyOption(sk, { fmt, policy }), true);
      return 'ready';
    },
  };
}

// A donut of /top: metric by group, the `limit` largest plus "other".
export function piePanel({ id, title, info, size = 'half', height = 260, metric = 'bytes', group, limit = 10, where = [], colorOf }) {
  return {
    id,
    title,
    info,
    size,
    height,
    async load(p, ctx) {
      const ans = await fetchTop(p, ctx, { metric, group, limit, where });
      if (topEmpty(ans)) return 'empty';
      const fmt = metricFormatter(metric);
      p.setNote(`total ${fmt(ans.total)}`);
      const data = topToPie(ans);
      const draw = () => {
        const el = p.chartEl;
        p.chart.setOption(pieOption(data, { fmt, colorOf, width: el.clientWidth, height: el.clientHeight }), true);
      };
      draw();
      let w = p.chartEl.clientWidth;
      p.chartEl.__relayout = () => {
        if (Math.abs(p.chartEl.clientWidth - w) < 8) return;
        w = p.chartEl.clientWidth;
        draw();
      };
      return 'ready';
    },
  };
}

// Horizontal bars of /top: the `limit` largest groups.
export function barPanel({ id, title, info, size = 'half', height = 300, metric = 'bytes', group, limit = 10, where = [], color }) {
  return {
    id,
    title,
    info,
    size,
    height,
    async load(p, ctx) {
      const ans = await fetchTop(p, ctx, { metric, group, limit, where });
      if (topEmpty(ans)) return 'empty';
      const fmt = metricFormatter(metric);
      p.setNote(`top ${ans.groups.length} of ${fmt(ans.total)}`);
      p.chart.setOption(barOption(topToBars(ans), { fmt, color }), true);
      return 'ready';
    },
  };
}

// A heat map of /series: groups (nodes) on y, time buckets on x.
export function heatmapPanel({ id, title, info, metric = 'throughput', group, where = [], colors }) {
  return {
    id,
    title,
    info,
    size: 'full',
    height: 240,
    async load(p, ctx) {
      const step = ctx.step(90);
      const url = ctx.url('api/v1/series', [
        ['metric', metric],
        ['group', group],
        ['step', step],
        ['top', ctx.state.topn],
      ], where);
      p.setQuery(url);
      const ans = await ctx.fetch(url);
      if (seriesEmpty(ans)) return 'empty';
      const hm = seriesToHeatmap(ans);
      const fmt = metricFormatter(metric);
      p.setNote(`${hm.names.length} rows · ${formatStep(ans.step)} buckets · peak ${fmt(hm.max)}`);
      const want = Math.max(200, 100 + hm.names.length * 26);
      if (p.chartEl.style.height !== `${want}px`) {
        p.chartEl.style.height = `${want}px`;
        p.chart.resize();
      }
      p.chart.setOption(heatmapOption(hm, { fmt, step: ans.step, range: ans.end - ans.start, colors }), true);
      return 'ready';
    },
  };
}

// A stat tile: <div class="stat" data-stat=ID data-value=RAW>.
export function statTile(id, label, value, fmt = formatCount, { sub, query, tone } = {}) {
  const raw = value === null || value === undefined ? '' : String(value);
  return h(
    'div',
    { class: `stat${tone ? ` tone-${tone}` : ''}`, 'data-stat': id, 'data-value': raw, 'data-query': query, title: raw ? `${label}: ${formatCount(value)}` : label },
    h('div', { class: 'stat-label', text: label }),
    h('div', { class: 'stat-value', text: raw === '' ? '–' : fmt(value) }),
    sub ? h('div', { class: 'stat-sub', text: sub }) : null,
  );
}
