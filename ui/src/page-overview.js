// Overview: totals of the range, the aggregator's live counters, throughput
// and flows over time, bytes by flow type, top talkers and destinations.

import { formatBytes, formatBps, formatCount } from './format.js';
import { seriesPanel, piePanel, barPanel, statTile, flowTypeColor } from './widgets.js';
import { PALETTE } from './charts.js';

const rangeStats = {
  id: 'range-stats',
  title: 'In this range',
  info: 'Totals over the time range and filters: bytes source → destination (forward) and back (reverse), distinct connections (5-tuples), and the average throughput.',
  size: 'half',
  kind: 'stats',
  async load(p, ctx) {
    const q = (metric) => ctx.url('api/v1/top', [['metric', metric], ['group', 'none'], ['limit', 1]]);
    const urls = { bytes: q('bytes'), flows: q('flows'), throughput: q('throughput') };
    p.setQuery(Object.values(urls));
    const [bytes, flows, thr] = await Promise.all([ctx.fetch(urls.bytes), ctx.fetch(urls.flows), ctx.fetch(urls.throughput)]);
    const g = (a) => (a.groups && a.groups[0]) || { value: 0, reverse: 0 };
    p.content.replaceChildren(
      statTile('bytes', 'Bytes', bytes.total, formatBytes, { query: urls.bytes, sub: 'src → dst' }),
      statTile('reverseBytes', 'Reverse bytes', g(bytes).reverse ?? 0, formatBytes, { query: urls.bytes, sub: 'dst → src' }),
      statTile('flows', 'Flows', flows.total, formatCount, { query: urls.flows, sub: 'connections' }),
      statTile('throughput', 'Throughput', thr.total, formatBps, { query: urls.throughput, sub: 'average' }),
      statTile('reverseThroughput', 'Rev. throughput', g(thr).reverse ?? 0, formatBps, { query: urls.throughput, sub: 'average' }),
    );
    return bytes.total > 0 || flows.total > 0 ? 'ready' : 'empty';
  },
};

const aggStats = {
  id: 'aggregator-stats',
  title: 'Aggregator (live)',
  info: 'Counters of the aggregator since it started (GET recordmetrics); they do not depend on the time range or the filters.',
  size: 'half',
  kind: 'stats',
  async load(p, ctx) {
    const url = 'recordmetrics';
    p.setQuery(url);
    const m = await ctx.fetch(url);
    const t = (id, label, v, opts = {}) => statTile(id, label, v, formatCount, { query: url, ...opts });
    p.content.replaceChildren(
      t('exporters', 'Exporters', m.numConnToCollector, { sub: 'connected', tone: m.numConnToCollector ? '' : 'warn' }),
      t('recordsReceived', 'Received', m.numRecordsReceived, { sub: 'records' }),
      t('recordsExported', 'Exported', m.numRecordsExported, { sub: 'records' }),
      t('recordsDropped', 'Dropped', m.numRecordsDropped, { sub: 'records', tone: m.numRecordsDropped ? 'bad' : '' }),
      t('recordsStale', 'Stale', m.numRecordsStale, { sub: 'records', tone: m.numRecordsStale ? 'warn' : '' }),
      t('flowsActive', 'Active flows', m.numFlows, { sub: 'in memory' }),
      t('flowsCorrelated', 'Correlated', m.numFlowsCorrelated, { sub: 'flows' }),
      t('flowsUncorrelated', 'Uncorrelated', m.numFlowsUncorrelated, { sub: 'flows' }),
      t('flowsEvicted', 'Evicted', m.numFlowsEvicted, { sub: 'flows', tone: m.numFlowsEvicted ? 'warn' : '' }),
    );
    return 'ready';
  },
};

export default {
  id: 'overview',
  title: 'Overview',
  description: 'Traffic of the whole cluster in the selected range.',
  panels: [
    rangeStats,
    aggStats,
    seriesPanel({
      id: 'overview-throughput',
      title: 'Throughput by flow type',
      info: 'Forward throughput (bits per second) in each time bucket, by flow type.',
      metric: 'throughput',
      group: 'flow_type',
      colorOf: flowTypeColor,
    }),
    seriesPanel({
      id: 'overview-flows',
      title: 'Flows over time',
      info: 'Distinct connections (5-tuples) seen in each time bucket.',
      metric: 'flows',
      group: 'none',
    }),
    piePanel({
      id: 'pie-flow-type',
      title: 'Bytes by flow type',
      size: 'third',
      height: 300,
      group: 'flow_type',
      colorOf: flowTypeColor,
    }),
    barPanel({
      id: 'top-talkers',
      title: 'Top talkers',
      info: 'Pod pairs (or a Pod and an external address) with the most bytes, source → destination.',
      size: 'third',
      group: 'pod_pair',
      color: PALETTE[0],
    }),
    barPanel({
      id: 'top-destinations',
      title: 'Top destinations',
      info: 'Destination Pods (or addresses) receiving the most bytes.',
      size: 'third',
      group: 'destination_pod',
      color: PALETTE[1],
    }),
  ],
};
