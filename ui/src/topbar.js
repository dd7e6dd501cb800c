// The top bar: navigation, time range, auto-refresh, key/value filters and
// "show excluded namespaces".  Every control changes the state through
// navigate(patch), which writes the URL; update(state) shows a state.

import { h } from './dom.js';
import { PAGES, RANGES, serializeHash, effectiveRange, toDatetimeLocal, fromDatetimeLocal } from './state.js';
import { parseClause } from './query.js';

const $ = (sel) => document.querySelector(sel);

export function initTopbar({ getState, navigate }) {
  const range = $('[data-control=range]');
  const start = $('[data-control=start]');
  const end = $('[data-control=end]');
  const apply = $('[data-control=apply]');
  const rangeError = $('[data-range-error]');
  const refresh = $('[data-control=refresh]');
  const filter = $('[data-control=filter]');
  const filterError = $('[data-filter-error]');
  const excluded = $('[data-control=show-excluded]');

  range.addEventListener('change', () => {
    rangeError.textContent = '';
    if (range.value === 'custom') {
      start.focus();
      return;
    }
    delete start.dataset.dirty;
    delete end.dataset.dirty;
    navigate({ since: range.value, start: null, end: null, offset: 0 });
  });

  const markDirty = () => {
    start.dataset.dirty = end.dataset.dirty = '1';
  };
  start.addEventListener('input', markDirty);
  end.addEventListener('input', markDirty);

  const applyRange = () => {
    const s = fromDatetimeLocal(start.value);
    const e = fromDatetimeLocal(end.value);
    if (s === null || e === null) {
      rangeError.textContent = 'enter a start and an end';
      return;
    }
    if (e <= s) {
      rangeError.textContent = 'the end must be after the start';
      return;
    }
    if (e - s > 400 * 86400) {
      rangeError.textContent = 'at most 400 days';
      return;
    }
    rangeError.textContent = '';
    delete start.dataset.dirty;
    delete end.dataset.dirty;
    navigate({ since: null, start: s, end: e, offset: 0 });
  };
  apply.addEventListener('click', applyRange);
  for (const el of [start, end]) {
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') applyRange();
    });
  }

  refresh.addEventListener('change', () => navigate({ refresh: refresh.value }));

  filter.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const text = filter.value.trim();
    if (!text) return;
    const r = parseClause(text);
    if (r.error) {
      filterError.textContent = r.error;
      filter.setAttribute('aria-invalid', 'true');
      return;
    }
    filterError.textContent = '';
    filter.removeAttribute('aria-invalid');
    filter.value = '';
    const where = getState().where;
    if (!where.includes(r.clause)) navigate({ where: [...where, r.clause], offset: 0 });
  });
  filter.addEventListener('input', () => {
    if (!filter.value) {
      filterError.textContent = '';
      filter.removeAttribute('aria-invalid');
    }
  });

  excluded.addEventListener('change', () => navigate({ showExcluded: excluded.checked, offset: 0 }));
}

// Shows state in the controls; config: {excludeNamespaces, version, store}.
export function updateTopbar(st, config, navigate) {
  const range = $('[data-control=range]');
  const custom = st.start !== null && st.end !== null;
  if (document.activeElement !== range) range.value = custom ? 'custom' : RANGES.includes(st.since) ? st.since : '15m';
  showRangeInputs(st, !custom);
  $('[data-control=refresh]').value = st.refresh;
  $('[data-control=show-excluded]').checked = st.showExcluded;
  const ex = (config && config.excludeNamespaces) || [];
  $('[data-excluded-label]').textContent = ex.length ? `show ${ex.join(', ')}` : 'show excluded namespaces';
  $('[data-excluded-label]').parentElement.title = ex.length
    ? `Flows of the namespaces ${ex.join(', ')} are hidden unless this is on`
    : 'No namespaces are excluded';

  const chips = $('[data-chips]');
  chips.replaceChildren(
    ...st.where.map((w) => {
      const rm = h('button', { type: 'button', 'data-remove': '', 'aria-label': `remove filter ${w}`, title: 'remove' }, '×');
      rm.addEventListener('click', () => navigate({ where: st.where.filter((x) => x !== w), offset: 0 }));
      return h('span', { class: 'chip', 'data-filter': w }, h('span', { class: 'chip-text', text: w }), rm);
    }),
  );

  for (const a of document.querySelectorAll('[data-nav]')) {
    const page = a.dataset.nav;
    if (!PAGES.includes(page)) continue;
    a.href = serializeHash(st, page);
    if (page === st.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const brand = $('[data-brand]');
  if (brand) brand.href = serializeHash(st, 'overview');
}

// Fills the datetime inputs with the range shown, unless the user is
// editing them.  live: a relative range, refreshed at each load.
export function showRangeInputs(st, live = true) {
  const start = $('[data-control=start]');
  const end = $('[data-control=end]');
  if (start.dataset.dirty || document.activeElement === start || document.activeElement === end) return;
  const r = effectiveRange(st);
  start.value = toDatetimeLocal(r.start);
  end.value = toDatetimeLocal(r.end);
  start.classList.toggle('live', live);
  end.classList.toggle('live', live);
}
