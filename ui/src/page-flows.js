// Flow Records: the stored records, 50 a page, sorted and filtered by the
// server (GET api/v1/flows).  Each answer carries every column of its rows,
// so the detail view shows a clicked record whole without another request.

import { h } from './dom.js';
import { COLUMN, COLUMNS, DEFAULT_COLUMNS } from './columns.js';
import { formatCell, formatCount, detailHint, protoName } from './format.js';
import { columnFilterClause, columnFilterText, parseClause } from './query.js';
import { PAGE_SIZE } from './state.js';

// Builds (or reuses) the toolbar, the column chooser and the table head.
function skeleton(p, ctx) {
  const st = ctx.state;
  let s = p.content.__flows;
  if (!s) {
    // Handlers read s.ctx: the context of the latest load, not of the first.
    s = p.content.__flows = {};
    s.info = h('span', { class: 'rows-info', 'data-rows-info': '' });
    s.prev = h('button', { type: 'button', 'data-control': 'prev', title: 'Previous page' }, '‹ Prev');
    s.next = h('button', { type: 'button', 'data-control': 'next', title: 'Next page' }, 'Next ›');
    s.prev.addEventListener('click', () => s.ctx.navigate({ offset: Math.max(0, s.ctx.state.offset - PAGE_SIZE) }));
    s.next.addEventListener('click', () => s.ctx.navigate({ offset: s.ctx.state.offset + PAGE_SIZE }));
    s.colBtn = h('button', { type: 'button', 'data-control': 'columns', 'aria-expanded': 'false' }, 'Columns ▾');
    s.chooser = h('div', { class: 'colchooser', 'data-colchooser': '', hidden: true });
    s.colBtn.addEventListener('click', (e) => {
      e.stopPropagation();
      const open = s.chooser.hidden;
      s.chooser.hidden = !open;
      s.colBtn.setAttribute('aria-expanded', String(open));
    });
    s.chooser.addEventListener('click', (e) => e.stopPropagation());
    s.hidden = h('span', { class: 'hidden-filters' });
    s.colError = h('span', { class: 'ctl-error', role: 'alert' });
    s.thead = h('thead');
    s.tbody = h('tbody');
    s.table = h('table', { class: 'grid-table flows', 'data-table': 'flows', 'data-total': '0', 'data-query-target': '' }, s.thead, s.tbody);
    p.content.replaceChildren(
      h(
        'div',
        { class: 'table-toolbar' },
        s.info,
        h('span', { class: 'pager' }, s.prev, s.next),
        s.hidden,
        s.colError,
        h('span', { class: 'spacer' }),
        h('span', { class: 'colchooser-wrap' }, s.colBtn, s.chooser),
      ),
      h('div', { class: 'table-scroll' }, s.table),
    );
  }
  s.ctx = ctx;
  const sig = JSON.stringify([st.cols, st.sort, st.order, st.cf]);
  if (s.sig !== sig) {
    s.sig = sig;
    buildHead(s, ctx);
    buildChooser(s, ctx);
    buildHiddenFilters(s, ctx);
  }
  s.prev.disabled = st.offset <= 0;
  return s;
}

function buildHead(s, ctx) {
  const st = ctx.state;
  const focused = document.activeElement?.getAttribute?.('data-colfilter');
  const heads = st.cols.map((c) => {
    const col = COLUMN[c];
    const sorted = st.sort === c;
    const th = h(
      'th',
      {
        'data-col': c,
        class: `${col.kind === 'string' ? '' : 'num'}${sorted ? ' sorted' : ''}`,
        title: `${c}: click to sort`,
        'aria-sort': sorted ? (st.order === 'asc' ? 'ascending' : 'descending') : null,
        tabindex: '0',
      },
      col.label,
      h('span', { class: 'sort-mark', text: sorted ? (st.order === 'asc' ? '▲' : '▼') : '' }),
    );
    const sort = () => {
      const order = s.ctx.state.sort === c ? (s.ctx.state.order === 'desc' ? 'asc' : 'desc') : 'desc';
      s.ctx.navigate({ sort: c, order, offset: 0 });
    };
    th.addEventListener('click', sort);
    th.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') sort();
    });
    return th;
  });
  const filters = st.cols.map((c) => {
    const col = COLUMN[c];
    const clause = st.cf.find((w) => parseClause(w).key === c);
    const input = h('input', {
      type: 'text',
      'data-colfilter': c,
      value: clause ? columnFilterText(c, clause) : '',
      placeholder: col.kind === 'string' ? 'contains' : '=',
      spellcheck: 'false',
      'aria-label': `Filter ${c}`,
      title:
        col.kind === 'string'
          ? `${c}: text it contains; start with = or != for an exact match`
          : `${c}: a number (= by default; != also works)${col.unit === 'proto' ? ', or tcp, udp…' : ''}${col.unit === 'flowType' ? ', or intra-node, inter-node, to-external, from-external' : ''}`,
    });
    const apply = () => applyColFilter(s, c, input);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') apply();
      if (e.key === 'Escape') {
        input.value = '';
        apply();
      }
    });
    input.addEventListener('change', apply);
    return h('th', { class: 'filter-cell' }, input);
  });
  s.thead.replaceChildren(h('tr', { class: 'head-row' }, heads), h('tr', { class: 'filter-row' }, filters));
  if (focused) s.thead.querySelector(`[data-colfilter="${CSS.escape(focused)}"]`)?.focus();
}

function applyColFilter(s, c, input) {
  const r = columnFilterClause(c, input.value);
  if (r && r.error) {
    input.setAttribute('aria-invalid', 'true');
    s.colError.textContent = r.error;
    return;
  }
  input.removeAttribute('aria-invalid');
  s.colError.textContent = '';
  const cf = s.ctx.state.cf.filter((w) => parseClause(w).key !== c);
  if (r) cf.push(r);
  if (JSON.stringify(cf) === JSON.stringify(s.ctx.state.cf)) return;
  s.ctx.navigate({ cf, offset: 0 });
}

function buildChooser(s, ctx) {
  const st = ctx.state;
  const boxes = COLUMNS.map((col) => {
    const box = h('input', { type: 'checkbox', 'data-colchoice': col.name, checked: st.cols.includes(col.name) });
    box.addEventListener('change', () => {
      let cols = s.ctx.state.cols.filter((c) => c !== col.name);
      if (box.checked) cols = [...cols, col.name];
      if (cols.length) s.ctx.navigate({ cols });
      else box.checked = true;
    });
    return h('label', { class: 'colchoice', title: col.name }, box, h('span', { text: col.label }), h('code', { text: col.name }));
  });
  const reset = h('button', { type: 'button', 'data-control': 'columns-default' }, 'Default columns');
  reset.addEventListener('click', () => s.ctx.navigate({ cols: [...DEFAULT_COLUMNS] }));
  s.chooser.replaceChildren(h('div', { class: 'colchooser-head' }, h('b', { text: 'Columns' }), reset), h('div', { class: 'colchooser-list' }, boxes));
}

// Column filters on columns that are not shown, as removable chips.
function buildHiddenFilters(s, ctx) {
  const st = ctx.state;
  const hidden = st.cf.filter((w) => !st.cols.includes(parseClause(w).key));
  s.hidden.replaceChildren(
    ...hidden.map((w) => {
      const btn = h('button', { type: 'button', 'data-remove': '', 'aria-label': `remove ${w}` }, '×');
      btn.addEventListener('click', () => s.ctx.navigate({ cf: s.ctx.state.cf.filter((x) => x !== w), offset: 0 }));
      return h('span', { class: 'chip chip-col', 'data-colfilter-chip': w, title: 'filter on a hidden column' }, w, btn);
    }),
  );
}

function clearRows(s) {
  s.tbody.replaceChildren();
  s.info.textContent = '';
  s.table.dataset.total = '0';
  s.next.disabled = true;
}

function renderRows(s, ctx, ans) {
  const st = ctx.state;
  const now = Date.now() / 1000;
  const rows = ans.rows || [];
  s.table.dataset.total = String(ans.total);
  s.tbody.replaceChildren(
    ...rows.map((row, i) => {
      const tr = h(
        'tr',
        { 'data-row': i, tabindex: '0' },
        st.cols.map((c) => {
          const col = COLUMN[c];
          const v = row[c];
          return h('td', { class: col.kind === 'string' ? '' : 'num', title: v === undefined || v === null ? '' : String(v), text: formatCell(col, v, now) });
        }),
      );
      const open = () => {
        s.tbody.querySelector('tr.selected')?.classList.remove('selected');
        tr.classList.add('selected');
        showDetail(row);
      };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') open();
      });
      return tr;
    }),
  );
  const from = rows.length ? ans.offset + 1 : 0;
  const to = ans.offset + rows.length;
  s.info.textContent = rows.length
    ? `rows ${formatCount(from)}–${formatCount(to)} of ${formatCount(ans.total)}`
    : `rows 0 of ${formatCount(ans.total)}`;
  s.next.disabled = to >= ans.total;
  s.prev.disabled = ans.offset <= 0;
}

// The side panel with every column of a record, raw values (hints in CSS).
function showDetail(row) {
  const page = document.getElementById('page');
  let aside = page.querySelector('aside[data-detail]');
  if (!aside) {
    aside = h('aside', { class: 'detail', 'data-detail': '', 'aria-label': 'Flow record' });
    page.append(aside);
  }
  const close = h('button', { type: 'button', class: 'detail-close', 'data-control': 'close-detail', 'aria-label': 'Close' }, '×');
  close.addEventListener('click', () => hideDetail());
  const title =
    `${row.sourceIP ?? ''}:${row.sourceTransportPort ?? ''} → ${row.destinationIP ?? ''}:` +
    `${row.destinationTransportPort ?? ''} ${row.protocolIdentifier !== undefined ? protoName(row.protocolIdentifier) : ''}`;
  const items = [];
  for (const [c, v] of Object.entries(row)) {
    const dd = h('dd', { text: v === null || v === undefined ? '' : String(v) });
    const hint = detailHint(COLUMN[c], v);
    if (hint) dd.setAttribute('data-hint', hint);
    items.push(h('dt', { text: c, title: COLUMN[c]?.label || c }), dd);
  }
  aside.replaceChildren(
    h('div', { class: 'detail-head' }, h('div', null, h('h3', { text: 'Flow record' }), h('div', { class: 'detail-sub', text: title })), close),
    h('dl', { class: 'detail-list' }, items),
  );
  aside.hidden = false;
  aside.scrollTop = 0;
}

function hideDetail() {
  const aside = document.querySelector('#page aside[data-detail]');
  if (aside) aside.hidden = true;
  document.querySelector('#page tr.selected')?.classList.remove('selected');
}

// A click elsewhere closes the column chooser.
document.addEventListener('click', () => {
  for (const c of document.querySelectorAll('#page [data-colchooser]:not([hidden])')) {
    c.hidden = true;
    c.parentElement.querySelector('[data-control=columns]')?.setAttribute('aria-expanded', 'false');
  }
});

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !document.querySelector('dialog[open]')) hideDetail();
});

const table = {
  id: 'flows-table',
  title: 'Flow records',
  info: 'Stored flow records, newest first by default. Click a header to sort, type in the second header row to filter (Enter), click a row for every column of the record.',
  size: 'full',
  kind: 'table',
  async load(p, ctx) {
    const st = ctx.state;
    const s = skeleton(p, ctx);
    let ans;
    try {
      const params = [
        ['limit', PAGE_SIZE],
        ['offset', st.offset],
        ['sort', st.sort],
        ['order', st.order],
      ];
      const url = ctx.url('api/v1/flows', params, st.cf);
      p.setQuery(url);
      ans = await ctx.fetch(url);
    } catch (e) {
      if (e && e.name !== 'AbortError') clearRows(s);
      throw e;
    }
    renderRows(s, ctx, ans);
    if (!ans.total) return 'empty';
    if (!(ans.rows || []).length) return ['empty', 'no rows on this page'];
    return 'ready';
  },
};

export default {
  id: 'flows',
  title: 'Flow Records',
  description: 'Every stored flow record of the range, filtered and sorted by the aggregator.',
  panels: [table],
};
