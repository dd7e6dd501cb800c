// ECharts, with only the charts and components the dashboards use, and the
// option builders of every chart kind.  Series data are the API's numbers
// as they are (see transform.js); formatting happens in labels, axes and
// tooltips only, so tests can compare getOption() with the API.

import * as echarts from 'echarts/core';
import { SankeyChart, LineChart, PieChart, HeatmapChart, BarChart } from 'echarts/charts';
import {
  GridComponent,
  TooltipComponent,
  LegendScrollComponent,
  VisualMapContinuousComponent,
  DataZoomInsideComponent,
  TitleComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

import { formatAxisTime, displayLabel, formatBytes, niceBinaryInterval } from './format.js';
import { sankeyNodeLabel, OTHER } from './transform.js';
import { chooseStep } from './query.js';

echarts.use([
  SankeyChart,
  LineChart,
  PieChart,
  HeatmapChart,
  BarChart,
  GridComponent,
  TooltipComponent,
  LegendScrollComponent,
  VisualMapContinuousComponent,
  DataZoomInsideComponent,
  TitleComponent,
  CanvasRenderer,
]);

export { echarts };

export const PALETTE = [
  '#2563eb', '#10b981', '#f59e0b', '#8b5cf6', '#ef4444',
  '#06b6d4', '#ec4899', '#84cc16', '#f97316', '#6366f1',
  '#14b8a6', '#eab308', '#a855f7', '#0ea5e9', '#f43f5e',
];
export const GREY = '#9aa3b2';
export const ACTION_COLORS = { allow: '#16a34a', drop: '#dc2626', reject: '#b91c1c', '': '#94a3b8' };
export const FLOW_TYPE_COLORS = {
  'intra-node': '#2563eb',
  'inter-node': '#10b981',
  'to-external': '#f59e0b',
  'from-external': '#8b5cf6',
  unknown: GREY,
};

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const TEXT = '#334155';
const MUTED = '#64748b';
const GRIDLINE = '#e8edf3';

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// Short animations: series types have their own defaults (Sankey: 1 s),
// so every series sets its duration too (ANIM).
const ANIM = { animationDuration: 300, animationDurationUpdate: 300 };

const base = () => ({
  ...ANIM,
  color: PALETTE,
  textStyle: { fontFamily: FONT, color: TEXT },
});

const tooltipBase = {
  confine: true,
  borderColor: '#cbd5e1',
  backgroundColor: 'rgba(255,255,255,0.97)',
  textStyle: { color: TEXT, fontSize: 12 },
  extraCssText: 'box-shadow: 0 4px 14px rgba(15,23,42,.12); border-radius: 6px;',
};

const peak = (l) => l.data.reduce((m, p) => (p[1] > m ? p[1] : m), 0);

// Whether the "other" series dwarfs the top series so much that it should
// start hidden (a click on its legend entry shows it).
export function hideOther(lines) {
  const other = lines.find((l) => l.other);
  if (!other) return false;
  const top = Math.max(0, ...lines.filter((l) => !l.other).map(peak));
  return peak(other) > 2.5 * top;
}

// Lines over time: series from seriesToLines, values formatted by fmt.
export function lineOption(lines, { fmt, step, range, colorOf } = {}) {
  let ci = 0;
  const series = lines.map((l) => {
    const color = l.other ? GREY : (colorOf && colorOf(l.name)) || PALETTE[ci++ % PALETTE.length];
    return {
      type: 'line',
      ...ANIM,
      name: l.name,
      data: l.data,
      showSymbol: false,
      symbolSize: 4,
      smooth: false,
      lineStyle: { width: l.other ? 1.5 : 1.8, type: l.other ? 'dashed' : 'solid' },
      itemStyle: { color },
      emphasis: { focus: 'series' },
      areaStyle: lines.length === 1 ? { opacity: 0.12 } : undefined,
    };
  });
  const selected = {};
  if (hideOther(lines)) selected[OTHER] = false;
  // Byte axes tick at binary-round values (1 MiB, not 977 KiB).
  const shown = lines.filter((l) => selected[l.name] !== false);
  const interval = fmt === formatBytes ? niceBinaryInterval(Math.max(0, ...shown.map(peak))) || undefined : undefined;
  return {
    ...base(),
    grid: { left: 8, right: 16, top: 38, bottom: 8, containLabel: true },
    legend: {
      selected,
      type: 'scroll',
      top: 2,
      left: 0,
      right: 0,
      icon: 'roundRect',
      itemWidth: 12,
      itemHeight: 8,
      textStyle: { color: MUTED, fontSize: 11, lineHeight: 14 },
      formatter: (n) => (n.length > 48 ? `${n.slice(0, 46)}…` : n),
      tooltip: { show: true },
    },
    tooltip: {
      ...tooltipBase,
      trigger: 'axis',
      order: 'valueDesc',
      axisPointer: { type: 'line', lineStyle: { color: '#94a3b8' } },
      formatter: (items) => {
        if (!items.length) return '';
        const t = items[0].value[0];
        const rows = items
          .slice()
          .sort((a, b) => b.value[1] - a.value[1])
          .map(
            (it) =>
              `<div class="tt-row">${it.marker}<span class="tt-name">${esc(it.seriesName)}</span>` +
              `<b>${esc(fmt(it.value[1]))}</b></div>`,
          )
          .join('');
        return `<div class="tt-head">${esc(formatAxisTime(t, step, range))}</div>${rows}`;
      },
    },
    xAxis: {
      type: 'time',
      axisLine: { lineStyle: { color: '#cbd5e1' } },
      axisLabel: { color: MUTED, fontSize: 11, hideOverlap: true, formatter: (v) => formatAxisTime(v, step, range) },
      splitLine: { show: false },
    },
    yAxis: {
      type: 'value',
      interval,
      axisLabel: { color: MUTED, fontSize: 11, formatter: (v) => fmt(v) },
      splitLine: { lineStyle: { color: GRIDLINE } },
    },
    dataZoom: [{ type: 'inside', xAxisIndex: 0, zoomOnMouseWheel: 'shift' }],
    series,
  };
}

// A Sankey of topToSankey's {nodes, links}.  policy: colour by rule action.
export function sankeyOption(sk, { fmt, policy = false } = {}) {
  const colorOfNode = new Map();
  let ci = 0;
  const nodes = sk.nodes.map((n) => {
    const color = policy ? ACTION_COLORS[n.action || ''] : PALETTE[ci++ % PALETTE.length];
    colorOfNode.set(n.name, color);
    return { name: n.name, itemStyle: { color, borderWidth: 0 } };
  });
  const links = sk.links.map((l) => ({
    source: l.source,
    target: l.target,
    value: l.value,
    lineStyle: policy ? { color: ACTION_COLORS[l.action || ''], opacity: 0.45 } : undefined,
  }));
  return {
    ...base(),
    tooltip: {
      ...tooltipBase,
      trigger: 'item',
      formatter: (p) => {
        if (p.dataType === 'edge') {
          return (
            `<div class="tt-head">${esc(sankeyNodeLabel(p.data.source))} → ${esc(sankeyNodeLabel(p.data.target))}</div>` +
            `<div class="tt-row"><b>${esc(fmt(p.data.value))}</b></div>`
          );
        }
        const side = String(p.name).startsWith('s:') ? 'source' : 'destination';
        return (
          `<div class="tt-head">${esc(sankeyNodeLabel(p.name))}</div>` +
          `<div class="tt-row"><span class="tt-name">as ${side}</span><b>${esc(fmt(p.value))}</b></div>`
        );
      },
    },
    series: [
      {
        type: 'sankey',
        ...ANIM,
        left: 8,
        right: 8,
        top: 8,
        bottom: 8,
        nodeWidth: 12,
        nodeGap: 6,
        nodeAlign: 'justify',
        layoutIterations: 32,
        draggable: false,
        emphasis: { focus: 'adjacency' },
        data: nodes,
        links,
        lineStyle: policy ? { opacity: 0.45, curveness: 0.5 } : { color: 'gradient', opacity: 0.35, curveness: 0.5 },
        label: {
          color: TEXT,
          fontSize: 11,
          formatter: (p) => sankeyNodeLabel(p.name),
          overflow: 'truncate',
          width: 200,
        },
        levels: [
          { depth: 0, label: { position: 'right' } },
          { depth: 1, label: { position: 'left' } },
        ],
      },
    ],
  };
}

// A donut of topToPie's [{name, value, other}] with a legend of names,
// values and shares on the right.  width: the container's, to share it
// between the donut and the legend (compact legend under 520 px).
export function pieOption(data, { fmt, colorOf, width = 600, height = 260 } = {}) {
  let ci = 0;
  const total = data.reduce((a, d) => a + d.value, 0);
  const byName = new Map(data.map((d) => [d.name, d.value]));
  const compact = width < 520;
  const nameW = compact ? 96 : 150;
  const legendW = nameW + 62 + (compact ? 0 : 44) + 20;
  const area = Math.max(120, width - legendW - 24);
  const outer = Math.max(40, Math.min(area, height) / 2 - 12);
  const items = data.map((d) => ({
    name: d.name,
    value: d.value,
    itemStyle: { color: d.other ? GREY : (colorOf && colorOf(d.name)) || PALETTE[ci++ % PALETTE.length] },
  }));
  const maxChars = Math.floor(nameW / 6.2);
  return {
    ...base(),
    tooltip: {
      ...tooltipBase,
      trigger: 'item',
      formatter: (p) =>
        `<div class="tt-head">${esc(p.name)}</div><div class="tt-row"><b>${esc(fmt(p.value))}</b>` +
        `<span class="tt-pct">${total ? ((p.value / total) * 100).toFixed(1) : 0}%</span></div>`,
    },
    legend: {
      type: 'scroll',
      orient: 'vertical',
      right: 8,
      top: 'middle',
      icon: 'circle',
      itemWidth: 8,
      itemHeight: 8,
      itemGap: 7,
      textStyle: {
        color: MUTED,
        fontSize: 11,
        rich: {
          n: { width: nameW, color: TEXT, fontSize: 11 },
          v: { width: 62, align: 'right', color: TEXT, fontSize: 11, fontWeight: 600 },
          p: { width: 44, align: 'right', color: MUTED, fontSize: 11 },
        },
      },
      formatter: (n) => {
        const v = byName.get(n) ?? 0;
        const name = (n.length > maxChars ? `${n.slice(0, maxChars - 1)}…` : n).replace(/[{}|]/g, ' ');
        const pct = total ? `${((v / total) * 100).toFixed(v / total < 0.1 ? 1 : 0)}%` : '';
        return compact ? `{n|${name}}{v|${fmt(v)}}` : `{n|${name}}{v|${fmt(v)}}{p|${pct}}`;
      },
      tooltip: { show: true },
    },
    series: [
      {
        type: 'pie',
        ...ANIM,
        radius: [Math.round(outer * 0.6), Math.round(outer)],
        center: [Math.round(12 + area / 2), '50%'],
        avoidLabelOverlap: true,
        itemStyle: { borderColor: '#fff', borderWidth: 1.5 },
        label: { show: false },
        emphasis: { scale: true, scaleSize: 4 },
        data: items,
      },
    ],
  };
}

// Horizontal bars of topToBars' [{name, value}], largest on top.
export function barOption(items, { fmt, color = PALETTE[0] } = {}) {
  return {
    ...base(),
    grid: { left: 8, right: 64, top: 6, bottom: 4, containLabel: true },
    tooltip: {
      ...tooltipBase,
      trigger: 'item',
      formatter: (p) => `<div class="tt-head">${esc(p.name)}</div><div class="tt-row"><b>${esc(fmt(p.value))}</b></div>`,
    },
    xAxis: {
      type: 'value',
      axisLabel: { show: false },
      splitLine: { lineStyle: { color: GRIDLINE } },
    },
    yAxis: {
      type: 'category',
      inverse: true,
      data: items.map((i) => i.name),
      axisTick: { show: false },
      axisLine: { lineStyle: { color: '#cbd5e1' } },
      axisLabel: { color: TEXT, fontSize: 11, width: 260, overflow: 'truncate' },
    },
    series: [
      {
        type: 'bar',
        ...ANIM,
        data: items.map((i) => i.value),
        barMaxWidth: 16,
        itemStyle: { color, borderRadius: [0, 3, 3, 0] },
        label: { show: true, position: 'right', color: MUTED, fontSize: 11, formatter: (p) => fmt(p.value) },
      },
    ],
  };
}

// A heat map of seriesToHeatmap's {times, names, data, max}.
export function heatmapOption(hm, { fmt, step, range, colors } = {}) {
  const xs = hm.times.map((t) => formatAxisTime(t * 1000, step, range));
  // Labels and ticks on round times, about ten of them.
  let every = chooseStep(range, 10);
  if (every % step) every = step * Math.ceil(every / step);
  const onLabel = (i) => hm.times[i] % every === 0;
  return {
    ...base(),
    grid: { left: 8, right: 12, top: 8, bottom: 56, containLabel: true },
    tooltip: {
      ...tooltipBase,
      trigger: 'item',
      formatter: (p) =>
        `<div class="tt-head">${esc(hm.names[p.value[1]])}</div>` +
        `<div class="tt-row"><span class="tt-name">${esc(formatAxisTime(hm.times[p.value[0]] * 1000, step, range))}</span>` +
        `<b>${esc(fmt(p.value[2]))}</b></div>`,
    },
    xAxis: {
      type: 'category',
      data: xs,
      splitArea: { show: false },
      axisTick: { show: true, interval: onLabel, lineStyle: { color: '#cbd5e1' } },
      axisLine: { lineStyle: { color: '#cbd5e1' } },
      axisLabel: { color: MUTED, fontSize: 11, interval: onLabel, hideOverlap: true },
    },
    yAxis: {
      type: 'category',
      data: hm.names.map((n) => (n === OTHER ? OTHER : displayLabel(n))),
      inverse: true,
      axisTick: { show: false },
      axisLine: { show: false },
      axisLabel: { color: TEXT, fontSize: 11, width: 160, overflow: 'truncate' },
    },
    visualMap: {
      type: 'continuous',
      min: 0,
      max: Math.max(1, hm.max),
      calculable: true,
      orient: 'horizontal',
      left: 'center',
      bottom: 4,
      itemWidth: 12,
      itemHeight: 220,
      textStyle: { color: MUTED, fontSize: 11 },
      formatter: (v) => fmt(v),
      inRange: { color: colors || ['#f1f5fb', '#bfdbfe', '#60a5fa', '#2563eb', '#1e3a8a'] },
    },
    series: [
      {
        type: 'heatmap',
        ...ANIM,
        data: hm.data,
        progressive: 0,
        itemStyle: { borderColor: '#fff', borderWidth: 1 },
        emphasis: { itemStyle: { borderColor: '#0f172a', borderWidth: 1 } },
      },
    ],
  };
}

// The chart of a container, created on first use and resized with it.
export function chartOf(el) {
  let c = echarts.getInstanceByDom(el);
  if (!c) {
    c = echarts.init(el, null, { renderer: 'canvas' });
    if (typeof ResizeObserver === 'function') {
      const ro = new ResizeObserver(() => {
        if (c.isDisposed()) return;
        c.resize();
        el.__relayout?.();
      });
      ro.observe(el);
      el.__ro = ro;
    }
  }
  return c;
}

// Disposes the charts under root (before its DOM is dropped).
export function disposeCharts(root) {
  for (const el of root.querySelectorAll('[data-chart]')) {
    el.__ro?.disconnect();
    const c = echarts.getInstanceByDom(el);
    if (c) c.dispose();
  }
}
