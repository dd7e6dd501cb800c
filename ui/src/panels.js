// Panels: a titled card with a chart (or tiles, or a table), its loading,
// empty and error states, and the data-* hooks the browser tests read.
//
//   <section class="panel" data-panel="ID" data-state="loading|ready|empty|error">
//     <header> title, note </header>
//     <div class="panel-body"> <div data-chart="ID" data-query="api/v1/..."> | tiles | table
//       <div class="panel-msg"> no flows in this range | the API's error </div>
//
// A panel spec is {id, title, info, size, height, kind, load}; load(p, ctx)
// fetches through ctx, draws into p and resolves to 'ready' or 'empty'.

import { h } from './dom.js';
import { chartOf } from './charts.js';

export const EMPTY_TEXT = 'no flows in this range';

export function buildPanel(spec) {
  const kind = spec.kind || 'chart';
  const msg = h('div', { class: 'panel-msg', role: 'status' });
  const note = h('span', { class: 'panel-note' });
  let content;
  if (kind === 'chart') {
    content = h('div', { class: 'chart', 'data-chart': spec.id });
    if (spec.height) content.style.height = `${spec.height}px`;
  } else {
    content = h('div', { class: `panel-content panel-${kind}` });
  }
  const el = h(
    'section',
    { class: `panel size-${spec.size || 'half'} kind-${kind}`, 'data-panel': spec.id, 'data-state': 'loading' },
    h(
      'header',
      { class: 'panel-head' },
      h('h2', { text: spec.title }),
      spec.info ? h('span', { class: 'panel-info', title: spec.info, 'aria-label': spec.info, text: 'i' }) : null,
      note,
    ),
    h('div', { class: 'panel-body' }, content, msg, h('div', { class: 'panel-spinner', 'aria-hidden': 'true' })),
  );
  return {
    spec,
    el,
    content,
    chartEl: kind === 'chart' ? content : null,
    get chart() {
      return chartOf(content);
    },
    setQuery(urls) {
      const s = (Array.isArray(urls) ? urls : [urls]).filter(Boolean).join(' ');
      const target = kind === 'chart' ? content : content.querySelector('[data-query-target]') || content;
      if (s) target.setAttribute('data-query', s);
      else target.removeAttribute('data-query');
      // Only the target holds the query: not a stale copy on the content
      // from a load that had no table yet.
      if (target !== content) content.removeAttribute('data-query');
    },
    setNote(text, title) {
      note.textContent = text || '';
      if (title) note.title = title;
      else note.removeAttribute('title');
    },
    setState(state, message) {
      el.dataset.state = state;
      msg.textContent = state === 'empty' ? message || EMPTY_TEXT : state === 'error' ? message || 'error' : '';
      msg.classList.toggle('is-error', state === 'error');
      if (state === 'empty' || state === 'error') {
        if (kind !== 'table') note.textContent = '';
        if (kind === 'chart') chartOf(content).clear();
        if (kind === 'stats' && state === 'error') content.replaceChildren();
      }
    },
  };
}
