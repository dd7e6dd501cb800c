// Formatting of numbers, times and codes for labels, axes and tooltips.
// Chart data stay the API's raw numbers; only what is shown goes through here.
// DOM-free (unit tests: test/format.test.mjs).

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
const SI_BPS = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s', 'Pbit/s'];

// Three significant digits, at most two decimals: 1.23, 12.3, 123.
function sig3(x) {
  if (x >= 100) return String(Math.round(x));
  if (x >= 10) return x.toFixed(1).replace(/\.0$/, '');
  return x.toFixed(2).replace(/\.?0+$/, '');
}

function scaled(n, base, units) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–';
  n = Number(n);
  const neg = n < 0;
  let x = Math.abs(n);
  let i = 0;
  while (x >= base && i < units.length - 1) {
    x /= base;
    i++;
  }
  // 1023.7 KiB rounds to "1024 KiB": move up a unit instead.
  if (i > 0 && i < units.length - 1 && Math.round(x) >= base) {
    x /= base;
    i++;
  }
  const s = i === 0 ? String(Math.round(x)) : sig3(x);
  return `${neg ? '-' : ''}${s} ${units[i]}`;
}

// Bytes with binary units: 1536 -> "1.5 KiB".
export function formatBytes(n) {
  return scaled(n, 1024, IEC);
}

// A y-axis interval for bytes that reads well in binary units: 1, 2 or 5
// times a power of 1024 times a power of ten (256 KiB, 1 MiB, 2 MiB, 50 MiB),
// for about `ticks` ticks up to max.  0 when max is 0.
export function niceBinaryInterval(max, ticks = 5) {
  if (!(max > 0)) return 0;
  const raw = max / ticks;
  let unit = 1;
  while (raw >= unit * 1024) unit *= 1024;
  const m = raw / unit; // 1 <= m < 1024 (or < 1 for tiny values)
  for (const n of [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 256, 500, 512]) if (n >= m) return n * unit;
  return 1024 * unit;
}

// Bits per second with decimal units: 1500000 -> "1.5 Mbit/s".
export function formatBps(n) {
  return scaled(n, 1000, SI_BPS);
}

// An integer with thousands separators: 1234567 -> "1,234,567".
export function formatCount(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–';
  const s = String(Math.round(Math.abs(Number(n))));
  return (Number(n) < 0 ? '-' : '') + s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

// The formatter for a metric of /series and /top.
export function metricFormatter(metric) {
  if (metric === 'bytes' || metric === 'reverseBytes') return formatBytes;
  if (metric === 'throughput' || metric === 'reverseThroughput') return formatBps;
  return formatCount;
}

// A bucket width: "10s", "5 min", "2 h", "1 d".
export function formatStep(s) {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s}s`;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Local time of unix milliseconds for a time axis: "14:05", with seconds
// when the buckets are shorter than a minute and the time is not on a
// whole minute ("14:05:10"), with the date ("11-21 14:05") when the range
// spans more than a day.
export function formatAxisTime(ms, stepSeconds = 60, rangeSeconds = 3600) {
  const d = new Date(ms);
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (stepSeconds < 60 && d.getSeconds() !== 0) s += `:${pad(d.getSeconds())}`;
  if (rangeSeconds > 86400) s = `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
  return s;
}

// Local date and time of unix seconds: "2026-11-21 14:05:09".
export function formatLocalDateTime(sec) {
  const d = new Date(sec * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

// UTC date and time of unix seconds: "2026-11-21 13:05:09 UTC".
export function formatUtcDateTime(sec) {
  return new Date(sec * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

// The local UTC offset at unix seconds: "UTC+01:00".
export function formatUtcOffset(sec) {
  const off = -new Date(sec * 1000).getTimezoneOffset();
  const a = Math.abs(off);
  return `UTC${off < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// A table cell's time: "14:05:09" for today, else "11-20 14:05:09".
export function formatCellTime(sec, nowSec = Date.now() / 1000) {
  const d = new Date(sec * 1000);
  const n = new Date(nowSec * 1000);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay =
    d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  return sameDay ? t : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

// The absolute time of a detail view: UTC and local.
export function formatDetailTime(sec) {
  if (!sec) return '0 (unset)';
  return `${formatUtcDateTime(sec)} · ${formatLocalDateTime(sec)} local (${formatUtcOffset(sec)})`;
}

export const FLOW_TYPES = Object.freeze(['unknown', 'intra-node', 'inter-node', 'to-external', 'from-external']);

export function flowTypeName(n) {
  return FLOW_TYPES[n] ?? String(n);
}

export const PROTOCOLS = Object.freeze({ 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' });

export function protoName(n) {
  return PROTOCOLS[n] ?? String(n);
}

export const ACTIONS = Object.freeze(['', 'allow', 'drop', 'reject']);

export function actionName(n) {
  return n === 0 ? '–' : (ACTIONS[n] ?? String(n));
}

const END_REASONS = { 1: 'idle timeout', 2: 'active timeout', 3: 'end of flow', 4: 'forced end', 5: 'lack of resources' };

export function endReasonName(n) {
  return END_REASONS[n] ?? String(n);
}

// An API label as shown: "" is "(none)".
export function displayLabel(s) {
  return s === '' || s === null || s === undefined ? '(none)' : String(s);
}

// A table cell's text for a column value (raw values stay in title/detail).
export function formatCell(col, v, nowSec) {
  if (v === null || v === undefined) return '';
  if (!col) return String(v);
  if (col.kind === 'time') return v ? formatCellTime(v, nowSec) : '–';
  switch (col.unit) {
    case 'bytes':
      return formatBytes(v);
    case 'bps':
      return formatBps(v);
    case 'count':
      return formatCount(v);
    case 'proto':
      return protoName(v);
    case 'flowType':
      return flowTypeName(v);
    case 'action':
      return actionName(v);
    case 'endReason':
      return endReasonName(v);
    default:
      return String(v);
  }
}

// A hint shown next to a raw value in the detail view, or ''.
export function detailHint(col, v) {
  if (!col || v === null || v === undefined) return '';
  if (col.kind === 'time') return formatDetailTime(v);
  if (col.unit === 'count' || col.kind === 'string') return '';
  const s = formatCell(col, v);
  return s === String(v) ? '' : s;
}
