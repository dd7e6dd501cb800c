import test from 'node:test';
import assert from 'node:assert/strict';
import {
  formatBytes,
  formatBps,
  formatCount,
  formatAxisTime,
  formatUtcDateTime,
  formatDetailTime,
  formatCell,
  formatStep,
  detailHint,
  flowTypeName,
  protoName,
  actionName,
  displayLabel,
  metricFormatter,
  niceBinaryInterval,
} from '../src/format.js';
import { COLUMN } from '../src/columns.js';

test('bytes use binary units with three significant digits', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1 KiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(12.5 * 1024 * 1024), '12.5 MiB');
  assert.equal(formatBytes(123.4 * 1024 ** 3), '123 GiB');
  assert.equal(formatBytes(5 * 1024 ** 4), '5 TiB');
});

test('bytes just under a unit move up instead of showing 1024', () => {
  assert.equal(formatBytes(1024 * 1024 - 1), '1 MiB');
});

test('throughput is in bits per second with decimal units', () => {
  assert.equal(formatBps(0), '0 bit/s');
  assert.equal(formatBps(999), '999 bit/s');
  assert.equal(formatBps(1500), '1.5 kbit/s');
  assert.equal(formatBps(4_660_000), '4.66 Mbit/s');
  assert.equal(formatBps(10e9), '10 Gbit/s');
});

test('missing numbers show a dash', () => {
  assert.equal(formatBytes(null), '–');
  assert.equal(formatBps(undefined), '–');
  assert.equal(formatCount(null), '–');
});

test('counts have thousands separators', () => {
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(1234567), '1,234,567');
  assert.equal(formatCount(-1200), '-1,200');
});

test('each metric has its formatter', () => {
  assert.equal(metricFormatter('bytes'), formatBytes);
  assert.equal(metricFormatter('reverseBytes'), formatBytes);
  assert.equal(metricFormatter('throughput'), formatBps);
  assert.equal(metricFormatter('flows'), formatCount);
});

test('axis times are local HH:MM, seconds only off the minute, date over a day', () => {
  const d = new Date(2026, 10, 21, 9, 5, 0);
  assert.equal(formatAxisTime(d.getTime(), 10, 900), '09:05');
  assert.equal(formatAxisTime(d.getTime() + 10_000, 10, 900), '09:05:10');
  assert.equal(formatAxisTime(d.getTime() + 10_000, 60, 900), '09:05');
  assert.equal(formatAxisTime(d.getTime(), 3600, 7 * 86400), '11-21 09:05');
});

test('detail times show UTC and local time', () => {
  assert.equal(formatUtcDateTime(1795262400), '2026-11-21 12:00:00 UTC');
  const s = formatDetailTime(1795262400);
  assert.match(s, /^2026-11-21 12:00:00 UTC · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d local \(UTC[+-]\d\d:\d\d\)$/);
  assert.equal(formatDetailTime(0), '0 (unset)');
});

test('flow types, protocols and rule actions have names', () => {
  assert.deepEqual([0, 1, 2, 3, 4].map(flowTypeName), ['unknown', 'intra-node', 'inter-node', 'to-external', 'from-external']);
  assert.deepEqual([6, 17, 1, 58, 132, 47].map(protoName), ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', '47']);
  assert.deepEqual([0, 1, 2, 3].map(actionName), ['–', 'allow', 'drop', 'reject']);
});

test('empty labels show as (none)', () => {
  assert.equal(displayLabel(''), '(none)');
  assert.equal(displayLabel('93.184.216.34'), '93.184.216.34');
});

test('table cells format by column', () => {
  assert.equal(formatCell(COLUMN.octetDeltaCount, 2048), '2 KiB');
  assert.equal(formatCell(COLUMN.throughput, 2500), '2.5 kbit/s');
  assert.equal(formatCell(COLUMN.protocolIdentifier, 17), 'UDP');
  assert.equal(formatCell(COLUMN.flowType, 3), 'to-external');
  assert.equal(formatCell(COLUMN.sourceTransportPort, 443), '443');
  assert.equal(formatCell(COLUMN.sourcePodName, 'web-0'), 'web-0');
  const t = new Date(2026, 10, 21, 14, 5, 9).getTime() / 1000;
  assert.equal(formatCell(COLUMN.flowEndSeconds, t, t + 60), '14:05:09');
  assert.equal(formatCell(COLUMN.flowEndSeconds, t, t + 3 * 86400), '11-21 14:05:09');
});

test('detail hints explain coded or scaled values only', () => {
  assert.equal(detailHint(COLUMN.protocolIdentifier, 6), 'TCP');
  assert.equal(detailHint(COLUMN.octetDeltaCount, 100), '100 B');
  assert.equal(detailHint(COLUMN.sourceTransportPort, 443), '');
  assert.equal(detailHint(COLUMN.sourcePodName, 'x'), '');
  assert.match(detailHint(COLUMN.flowEndSeconds, 1795262400), /UTC/);
});

test('bucket widths read naturally', () => {
  assert.equal(formatStep(10), '10s');
  assert.equal(formatStep(300), '5 min');
  assert.equal(formatStep(7200), '2 h');
  assert.equal(formatStep(86400), '1 d');
});

test('byte axes tick at binary-round intervals', () => {
  const MiB = 1024 * 1024;
  assert.equal(niceBinaryInterval(0), 0);
  assert.equal(niceBinaryInterval(3.34 * MiB), MiB);
  assert.equal(niceBinaryInterval(5.72 * MiB), 2 * MiB);
  assert.equal(niceBinaryInterval(900), 200);
  assert.equal(niceBinaryInterval(300 * MiB), 100 * MiB);
  assert.equal(niceBinaryInterval(4.5 * 1024 * MiB), 1024 * MiB);
  assert.equal(formatBytes(niceBinaryInterval(40 * MiB)), '10 MiB');
});
