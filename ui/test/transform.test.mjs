import test from 'node:test';
import assert from 'node:assert/strict';
import {
  topToSankey,
  topToPie,
  topToBars,
  seriesToLines,
  seriesToHeatmap,
  seriesEmpty,
  topEmpty,
  groupName,
  sankeyNodeLabel,
  pairAction,
  deniedPairs,
} from '../src/transform.js';

const podPairs = {
  start: 1763719200,
  end: 1763720100,
  metric: 'bytes',
  group: 'pod_pair',
  total: 24569,
  other: 2349,
  groups: [
    { key: 'web/frontend-1 -> db/postgres-0', labels: { source: 'web/frontend-1', destination: 'db/postgres-0' }, value: 16020, reverse: 18110 },
    { key: 'db/postgres-0 -> web/frontend-1', labels: { source: 'db/postgres-0', destination: 'web/frontend-1' }, value: 1200, reverse: 300 },
    { key: 'web/frontend-1 -> 93.184.216.34', labels: { source: 'web/frontend-1', destination: '93.184.216.34' }, value: 5000, reverse: 49000 },
  ],
};

test('a Sankey keeps the API values and never has a cycle', () => {
  const sk = topToSankey(podPairs);
  assert.deepEqual(
    sk.links.map((l) => [l.source, l.target, l.value]),
    [
      ['s:web/frontend-1', 'd:db/postgres-0', 16020],
      ['s:db/postgres-0', 'd:web/frontend-1', 1200],
      ['s:web/frontend-1', 'd:93.184.216.34', 5000],
    ],
  );
  const sources = new Set(sk.links.map((l) => l.source));
  for (const l of sk.links) assert.ok(!sources.has(l.target), 'a target is never a source');
  assert.equal(sk.nodes.length, 5);
  assert.equal(sk.sum, 22220);
});

test('the reverse Sankey carries the reverse values', () => {
  assert.deepEqual(topToSankey(podPairs, { reverse: true }).links.map((l) => l.value), [18110, 300, 49000]);
});

test('a Sankey of flows has no reverse links', () => {
  const flows = { groups: [{ key: 'a -> b', labels: { source: 'a', destination: 'b' }, value: 3, reverse: null }] };
  assert.equal(topToSankey(flows, { reverse: true }).links.length, 0);
});

test('a group of 0 (a denied flow has no reverse bytes) gets no link and no node', () => {
  const denied = {
    groups: [
      { key: 'a -> b', labels: { source: 'a', destination: 'b' }, value: 5, reverse: 0 },
      { key: 'c -> d', labels: { source: 'c', destination: 'd' }, value: 7, reverse: 2 },
    ],
  };
  const sk = topToSankey(denied, { reverse: true });
  assert.deepEqual(sk.links.map((l) => [l.source, l.target, l.value]), [['s:c', 'd:d', 2]]);
  assert.deepEqual(sk.nodes.map((n) => n.name), ['s:c', 'd:d']);
});

test('Sankey labels strip the side prefix and name empty labels', () => {
  assert.equal(sankeyNodeLabel('s:web/a'), 'web/a');
  assert.equal(sankeyNodeLabel('d:93.184.216.34'), '93.184.216.34');
  assert.equal(sankeyNodeLabel('d:'), '(none)');
});

const policyPairs = {
  total: 100,
  other: 0,
  groups: [
    { key: ' -> ', labels: { source: '', egressAction: '', destination: '', ingressAction: '' }, value: 60, reverse: 1 },
    { key: 'web/allow-out (allow) -> db/allow-in (allow)', labels: { source: 'web/allow-out', egressAction: 'allow', destination: 'db/allow-in', ingressAction: 'allow' }, value: 30, reverse: 2 },
    { key: ' -> db/deny (drop)', labels: { source: '', egressAction: '', destination: 'db/deny', ingressAction: 'drop' }, value: 7, reverse: 0 },
    { key: 'x -> y', labels: { source: 'x', egressAction: '', destination: 'y', ingressAction: '' }, value: 3, reverse: 0 },
  ],
};

test('the policy Sankey drops the no-policy group and colours by action', () => {
  const sk = topToSankey(policyPairs, { policy: true });
  assert.deepEqual(
    sk.links.map((l) => [l.source, l.target, l.value, l.action]),
    [
      ['s:web/allow-out (allow)', 'd:db/allow-in (allow)', 30, 'allow'],
      ['s:', 'd:db/deny (drop)', 7, 'drop'],
      ['s:x', 'd:y', 3, ''],
    ],
  );
  assert.equal(topToSankey(policyPairs, { policy: true, limit: 1 }).links.length, 1);
});

test('a pair action is the worst of both sides', () => {
  assert.equal(pairAction({ egressAction: 'allow', ingressAction: 'reject' }), 'reject');
  assert.equal(pairAction({ egressAction: 'drop', ingressAction: '' }), 'drop');
  assert.equal(pairAction({ egressAction: '', ingressAction: 'allow' }), 'allow');
  assert.equal(pairAction({}), '');
});

test('denied pairs merge answers by key, largest first', () => {
  const a = { groups: [policyPairs.groups[2], policyPairs.groups[1]] };
  const b = {
    groups: [
      policyPairs.groups[2],
      { key: 'web/x (reject) -> ', labels: { source: 'web/x', egressAction: 'reject', destination: '', ingressAction: '' }, value: 9, reverse: 0 },
    ],
  };
  assert.deepEqual(deniedPairs([a, b]).map((g) => g.value), [9, 7]);
});

test('pies keep the API order and add a grey other', () => {
  const pie = topToPie(podPairs);
  assert.deepEqual(pie.map((d) => [d.name, d.value]), [
    ['web/frontend-1 → db/postgres-0', 16020],
    ['db/postgres-0 → web/frontend-1', 1200],
    ['web/frontend-1 → 93.184.216.34', 5000],
    ['other', 2349],
  ]);
  assert.equal(pie[3].other, true);
  const ns = { total: 5, other: 0, groups: [{ key: '', labels: { source: '' }, value: 5, reverse: 1 }] };
  assert.deepEqual(topToPie(ns), [{ name: '(none)', value: 5 }]);
});

test('bars are the groups with their values', () => {
  assert.deepEqual(topToBars(podPairs).map((b) => b.value), [16020, 1200, 5000]);
});

test('group names read naturally', () => {
  assert.equal(groupName({ key: 'inter-node', labels: { flowType: 'inter-node' } }), 'inter-node');
  assert.equal(groupName({ key: 'all', labels: {} }), 'all');
  assert.equal(groupName({ key: 'other', labels: {}, other: true }), 'other');
  assert.equal(groupName({ key: ' -> b', labels: { source: '', destination: 'b' } }), '(none) → b');
  assert.equal(groupName(policyPairs.groups[2]), '(none) → db/deny (drop)');
});

const series = {
  start: 1763719200,
  end: 1763719800,
  step: 60,
  metric: 'bytes',
  group: 'source_node',
  series: [
    { key: 'node-1', labels: { source: 'node-1' }, other: false, points: [[1763719200, 1000], [1763719260, 2000], [1763719320, 0]] },
    { key: 'node-2', labels: { source: 'node-2' }, other: false, points: [[1763719200, 500], [1763719260, 0], [1763719320, 10]] },
    { key: 'other', labels: {}, other: true, points: [[1763719200, 720], [1763719260, 700], [1763719320, 1]] },
  ],
};

test('line series are the API points with times in milliseconds', () => {
  const lines = seriesToLines(series);
  assert.deepEqual(lines.map((l) => [l.name, l.other]), [['node-1', false], ['node-2', false], ['other', true]]);
  assert.deepEqual(lines[0].data, [[1763719200000, 1000], [1763719260000, 2000], [1763719320000, 0]]);
});

test('heat maps index buckets on x and groups on y', () => {
  const hm = seriesToHeatmap(series);
  assert.deepEqual(hm.times, [1763719200, 1763719260, 1763719320]);
  assert.deepEqual(hm.names, ['node-1', 'node-2', 'other']);
  assert.equal(hm.data.length, 9);
  assert.deepEqual(hm.data[1], [1, 0, 2000]);
  assert.deepEqual(hm.data[8], [2, 2, 1]);
  assert.equal(hm.max, 2000);
});

test('answers without records are empty', () => {
  assert.equal(seriesEmpty({ series: [] }), true);
  assert.equal(seriesEmpty({ series: [{ key: 'all', points: [[1, 0], [2, 0]] }] }), true);
  assert.equal(seriesEmpty(series), false);
  assert.equal(topEmpty({ groups: [] }), true);
  assert.equal(topEmpty(podPairs), false);
});
