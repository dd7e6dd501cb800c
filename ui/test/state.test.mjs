import test from 'node:test';
import assert from 'node:assert/strict';
import {
  parseHash,
  serializeHash,
  defaultState,
  parseDuration,
  effectiveRange,
  rangeSeconds,
  toDatetimeLocal,
  fromDatetimeLocal,
  dataKey,
} from '../src/state.js';
import { DEFAULT_COLUMNS } from '../src/columns.js';

test('an empty hash is the overview of the last 15 minutes', () => {
  const st = parseHash('');
  assert.equal(st.page, 'overview');
  assert.equal(st.since, '15m');
  assert.equal(st.refresh, '30s');
  assert.deepEqual(st.where, []);
  assert.equal(serializeHash(st), '#/overview?since=15m');
});

test('the page, range, filters and options are read from the hash', () => {
  const st = parseHash('#/pod-to-pod?since=1h&where=namespace%3Dweb&where=proto%3Dtcp&refresh=10s&showExcluded=1&topn=50');
  assert.equal(st.page, 'pod-to-pod');
  assert.equal(st.since, '1h');
  assert.deepEqual(st.where, ['namespace=web', 'proto=tcp']);
  assert.equal(st.refresh, '10s');
  assert.equal(st.showExcluded, true);
  assert.equal(st.topn, 50);
});

test('a hash survives a round trip', () => {
  const hashes = [
    '#/pod-to-pod?since=1h&refresh=10s&topn=50&where=namespace%3Dweb&where=pod~api&showExcluded=1',
    '#/flows?start=1795262400&end=1795266000&where=dstport%3D443&sort=octetDeltaCount&order=asc&offset=100&cf=sourcePodName~web',
    '#/policy?since=24h&policy=allow&policyns=web&policyside=egress',
    '#/heatmap?since=7d&refresh=off',
  ];
  for (const h of hashes) assert.equal(serializeHash(parseHash(h)), h);
});

test('values with special characters are encoded and decoded', () => {
  const st = { ...defaultState(), where: ['service=web/svc:http', 'pod~a&b', 'srcip=10.0.0.1'] };
  const h = serializeHash(st);
  assert.ok(!h.includes('a&b'));
  assert.deepEqual(parseHash(h).where, st.where);
});

test('bad values fall back to the defaults', () => {
  const st = parseHash('#/nope?since=3w&refresh=5s&topn=7&offset=-1&sort=bogus&order=up&cols=nope');
  assert.equal(st.page, 'overview');
  assert.equal(st.since, '15m');
  assert.equal(st.refresh, '30s');
  assert.equal(st.topn, 20);
  assert.equal(st.offset, 0);
  assert.equal(st.sort, 'flowEndSeconds');
  assert.equal(st.order, 'desc');
  assert.deepEqual(st.cols, [...DEFAULT_COLUMNS]);
});

test('an absolute range wins over since and needs end after start', () => {
  let st = parseHash('#/overview?since=1h&start=100&end=200');
  assert.equal(st.since, null);
  assert.equal(st.start, 100);
  assert.equal(st.end, 200);
  assert.equal(serializeHash(st), '#/overview?start=100&end=200');
  st = parseHash('#/overview?start=200&end=100');
  assert.equal(st.start, null);
  assert.equal(st.since, '15m');
});

test('page keys are written only for their page', () => {
  const st = parseHash('#/flows?since=5m&offset=50&sort=sourceIP&cf=sourceIP~10.');
  assert.equal(serializeHash(st, 'overview'), '#/overview?since=5m');
  assert.equal(serializeHash(st, 'flows'), '#/flows?since=5m&sort=sourceIP&offset=50&cf=sourceIP~10.');
});

test('the column list keeps its order and drops unknown columns', () => {
  const st = parseHash('#/flows?cols=throughput,sourceIP,bogus,sourceIP');
  assert.deepEqual(st.cols, ['throughput', 'sourceIP']);
  assert.equal(serializeHash(st), '#/flows?since=15m&cols=throughput%2CsourceIP');
});

test('durations are parsed like the API does', () => {
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('7d'), 604800);
  assert.ok(Number.isNaN(parseDuration('15')));
  assert.ok(Number.isNaN(parseDuration('1w')));
});

test('the effective range ends now for since and is fixed for start/end', () => {
  assert.deepEqual(effectiveRange(parseHash('#/overview?since=1h'), 10000), { start: 6400, end: 10000 });
  assert.deepEqual(effectiveRange(parseHash('#/overview?start=5&end=9'), 10000), { start: 5, end: 9 });
  assert.equal(rangeSeconds(parseHash('#/overview?since=6h')), 21600);
});

test('datetime-local values are local time', () => {
  const sec = new Date(2026, 10, 21, 10, 30).getTime() / 1000;
  assert.equal(toDatetimeLocal(sec), '2026-11-21T10:30');
  assert.equal(fromDatetimeLocal('2026-11-21T10:30'), sec);
  assert.equal(fromDatetimeLocal('2026-11-21T10:30:15'), sec + 15);
  assert.equal(fromDatetimeLocal(''), null);
  assert.equal(fromDatetimeLocal('yesterday'), null);
});

test('the refresh interval does not count as a data change', () => {
  const a = parseHash('#/overview?since=1h');
  const b = parseHash('#/overview?since=1h&refresh=10s');
  const c = parseHash('#/overview?since=6h');
  assert.equal(dataKey(a), dataKey(b));
  assert.notEqual(dataKey(a), dataKey(c));
});
