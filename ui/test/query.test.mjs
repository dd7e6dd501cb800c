import test from 'node:test';
import assert from 'node:assert/strict';
import {
  parseClause,
  columnFilterClause,
  columnFilterText,
  buildWhere,
  timeParams,
  apiUrl,
  chooseStep,
  stepFor,
  MAX_WHERE,
} from '../src/query.js';
import { parseHash } from '../src/state.js';

test('filters take the three operators and keep the value as typed', () => {
  assert.equal(parseClause('namespace=web').clause, 'namespace=web');
  assert.equal(parseClause(' pod ~ api ').clause, 'pod~api');
  assert.equal(parseClause('dstport!=443').clause, 'dstport!=443');
  assert.equal(parseClause('service=').clause, 'service=');
  assert.equal(parseClause('pod=web/frontend-1').clause, 'pod=web/frontend-1');
  assert.equal(parseClause('sourcePodLabels~app=x').clause, 'sourcePodLabels~app=x');
});

test('filters are refused the way the API would refuse them', () => {
  assert.match(parseClause('namespace').error, /not key=value/);
  assert.match(parseClause('bogus=1').error, /unknown key 'bogus'/);
  assert.match(parseClause('dstport~44').error, /number column/);
  assert.match(parseClause('flowType=two').error, /not a whole number/);
  assert.match(parseClause('=x').error, /not key=value/);
});

test('proto takes names', () => {
  assert.equal(parseClause('proto=TCP').clause, 'proto=tcp');
  assert.match(parseClause('proto=gre').error, /whole number/);
});

test('column filters default to contains for text and = for numbers', () => {
  assert.equal(columnFilterClause('sourcePodName', 'web'), 'sourcePodName~web');
  assert.equal(columnFilterClause('sourcePodName', '=web-0'), 'sourcePodName=web-0');
  assert.equal(columnFilterClause('sourcePodName', '!=web-0'), 'sourcePodName!=web-0');
  assert.equal(columnFilterClause('destinationTransportPort', '443'), 'destinationTransportPort=443');
  assert.equal(columnFilterClause('destinationTransportPort', '!= 443'), 'destinationTransportPort!=443');
  assert.equal(columnFilterClause('sourcePodName', '  '), null);
  assert.match(columnFilterClause('destinationTransportPort', 'http').error, /whole number/);
});

test('column filters take names of coded values', () => {
  assert.equal(columnFilterClause('protocolIdentifier', 'udp'), 'protocolIdentifier=17');
  assert.equal(columnFilterClause('flowType', 'inter-node'), 'flowType=2');
  assert.equal(columnFilterClause('ingressNetworkPolicyRuleAction', 'drop'), 'ingressNetworkPolicyRuleAction=2');
});

test('a column filter input shows its clause without the default operator', () => {
  assert.equal(columnFilterText('sourcePodName', 'sourcePodName~web'), 'web');
  assert.equal(columnFilterText('sourcePodName', 'sourcePodName=web'), '=web');
  assert.equal(columnFilterText('flowType', 'flowType=2'), '2');
  assert.equal(columnFilterText('flowType', 'flowType!=2'), '!=2');
  assert.equal(columnFilterText('sourceIP', 'flowType=2'), '');
});

test('where lists combine page, user and exclusion clauses', () => {
  const r = buildWhere({ page: ['flowType=3'], user: ['pod~api'], excluded: ['kube-system', 'flowvis'] });
  assert.deepEqual(r.where, ['flowType=3', 'pod~api', 'namespace!=kube-system', 'namespace!=flowvis']);
  const shown = buildWhere({ page: ['flowType=3'], excluded: ['kube-system'], showExcluded: true });
  assert.deepEqual(shown.where, ['flowType=3']);
});

test('duplicate clauses are sent once', () => {
  const r = buildWhere({ page: ['namespace!=flowvis'], user: ['namespace!=flowvis'], excluded: ['flowvis'] });
  assert.deepEqual(r.where, ['namespace!=flowvis']);
});

test('more than 16 where clauses is an error, not a request', () => {
  const user = Array.from({ length: 15 }, (_, i) => `pod~p${i}`);
  assert.equal(buildWhere({ user, excluded: ['a'] }).where.length, MAX_WHERE);
  const r = buildWhere({ user, excluded: ['a', 'b'] });
  assert.equal(r.where, undefined);
  assert.match(r.error, /17 where clauses.*at most 16/);
});

test('URLs are relative, in order, with every value encoded', () => {
  const st = parseHash('#/pod-to-pod?since=15m');
  const url = apiUrl('api/v1/top', [...timeParams(st), ['group', 'pod_pair'], ['limit', 20]], ['namespace=web', 'pod~a&b']);
  assert.equal(url, 'api/v1/top?since=15m&group=pod_pair&limit=20&where=namespace%3Dweb&where=pod~a%26b');
  const abs = parseHash('#/overview?start=100&end=200');
  assert.equal(apiUrl('api/v1/flows', timeParams(abs)), 'api/v1/flows?start=100&end=200');
});

test('buckets are the API nice widths, at most the count asked', () => {
  assert.equal(chooseStep(300, 100), 5);
  assert.equal(chooseStep(900, 100), 10);
  assert.equal(chooseStep(3600, 100), 60);
  assert.equal(chooseStep(6 * 3600, 100), 300);
  assert.equal(chooseStep(86400, 100), 900);
  assert.equal(chooseStep(7 * 86400, 100), 7200);
  assert.equal(chooseStep(400 * 86400, 100), 4 * 86400);
  assert.equal(stepFor(parseHash('#/overview?since=1h')), 60);
  assert.equal(stepFor(parseHash('#/overview?start=0&end=600'), 60), 10);
});
