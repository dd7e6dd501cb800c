// Network Policy: egress policy -> ingress policy of the traffic, coloured
// by rule action, bytes by policy over time, and the denied pairs.

import { h } from './dom.js';
import { sankeyPanel, seriesPanel } from './widgets.js';
import { formatBytes, displayLabel } from './format.js';
import { deniedPairs } from './transform.js';

// Denied = a drop or reject rule on either side: two requests (ingress,
// egress), each "action is neither none (0) nor allow (1)".
const DENIED_WHERE = {
  ingress: ['ingressNetworkPolicyRuleAction!=0', 'ingressNetworkPolicyRuleAction!=1'],
  egress: ['egressNetworkPolicyRuleAction!=0', 'egressNetworkPolicyRuleAction!=1'],
};

const actionBadge = (a) =>
  a ? h('span', { class: `action action-${a}`, text: a }) : h('span', { class: 'action action-none', text: '–' });

const denied = {
  id: 'denied-pairs',
  title: 'Denied traffic',
  info: 'Policy pairs where an egress or an ingress rule dropped or rejected the traffic (up to 50 of each), largest first.',
  size: 'third',
  kind: 'table',
  async load(p, ctx) {
    const urls = ['ingress', 'egress'].map((side) =>
      ctx.url('api/v1/top', [['metric', 'bytes'], ['group', 'policy_pair'], ['limit', 50]], DENIED_WHERE[side]),
    );
    p.setQuery(urls);
    const answers = await Promise.all(urls.map((u) => ctx.fetch(u)));
    const rows = deniedPairs(answers);
    const table = h(
      'table',
      { class: 'grid-table', 'data-table': 'denied-pairs', 'data-query-target': '', 'data-total': rows.length },
      h(
        'thead',
        null,
        h('tr', null, h('th', { text: 'Egress policy' }), h('th', { text: 'Ingress policy' }), h('th', { class: 'num', text: 'Bytes' }), h('th', { class: 'num', text: 'Reverse' })),
      ),
      h(
        'tbody',
        null,
        rows.map((g, i) =>
          h(
            'tr',
            { 'data-row': i, title: g.key },
            h('td', null, h('div', { class: 'cell-main', text: displayLabel(g.labels.source) }), actionBadge(g.labels.egressAction)),
            h('td', null, h('div', { class: 'cell-main', text: displayLabel(g.labels.destination) }), actionBadge(g.labels.ingressAction)),
            h('td', { class: 'num', title: String(g.value), text: formatBytes(g.value) }),
            h('td', { class: 'num', title: String(g.reverse), text: formatBytes(g.reverse) }),
          ),
        ),
      ),
    );
    p.content.replaceChildren(h('div', { class: 'table-scroll' }, table));
    p.setQuery(urls);
    p.setNote(rows.length ? `${rows.length} pairs` : '');
    return rows.length ? 'ready' : 'empty';
  },
};

function policyWhere(st) {
  const w = [];
  if (st.policy) w.push(`policy~${st.policy}`);
  if (st.policyns) w.push(`${st.policyside === 'egress' ? 'egress' : 'ingress'}NetworkPolicyNamespace=${st.policyns}`);
  return w;
}

// The page's own filter inputs (policy name contains, policy namespace).
function tools(st, navigate) {
  const name = h('input', {
    type: 'text',
    'data-control': 'policy-filter',
    placeholder: 'policy name contains…',
    value: st.policy,
    spellcheck: 'false',
    'aria-label': 'Policy name contains',
    title: 'where=policy~TEXT: the ingress or the egress policy name contains TEXT',
  });
  const ns = h('input', {
    type: 'text',
    'data-control': 'policy-ns',
    placeholder: 'policy namespace',
    value: st.policyns,
    spellcheck: 'false',
    'aria-label': 'Policy namespace',
  });
  const side = h(
    'select',
    { 'data-control': 'policy-side', 'aria-label': 'Namespace of the' },
    h('option', { value: 'ingress', selected: st.policyside === 'ingress' }, 'of the ingress policy'),
    h('option', { value: 'egress', selected: st.policyside === 'egress' }, 'of the egress policy'),
  );
  const apply = () => navigate({ policy: name.value.trim(), policyns: ns.value.trim(), policyside: side.value });
  const onKey = (e) => {
    if (e.key === 'Enter') apply();
  };
  name.addEventListener('keydown', onKey);
  ns.addEventListener('keydown', onKey);
  name.addEventListener('change', apply);
  ns.addEventListener('change', apply);
  side.addEventListener('change', apply);
  const legend = h(
    'span',
    { class: 'legend-inline' },
    ['allow', 'drop', ''].map((a) =>
      h('span', { class: 'legend-item' }, h('i', { class: `swatch swatch-${a || 'none'}` }), a || 'no rule'),
    ),
  );
  return [h('label', { class: 'tool' }, 'Policy', name), h('label', { class: 'tool' }, 'Namespace', ns, side), legend];
}

export default {
  id: 'policy',
  title: 'Network Policy',
  description: 'Which NetworkPolicies let traffic out (egress) and in (ingress), and what their rules did.',
  where: policyWhere,
  tools: ['topn', tools],
  panels: [
    sankeyPanel({
      id: 'policy-sankey',
      title: 'Egress policy → ingress policy (bytes)',
      info: 'Bytes by egress policy (left) and ingress policy (right) with their rule actions; green: allowed, red: dropped or rejected, grey: no rule. Traffic with no policy on either side is left out.',
      size: 'two-thirds',
      group: 'policy_pair',
      policy: true,
    }),
    denied,
    seriesPanel({
      id: 'ingress-policy-bytes',
      title: 'Bytes by ingress policy',
      info: 'Bytes of the traffic an ingress policy applied to, by policy (10 largest plus other).',
      metric: 'bytes',
      group: 'ingress_policy',
      where: ['ingressNetworkPolicyName!='],
    }),
    seriesPanel({
      id: 'egress-policy-bytes',
      title: 'Bytes by egress policy',
      info: 'Bytes of the traffic an egress policy applied to, by policy (10 largest plus other).',
      metric: 'bytes',
      group: 'egress_policy',
      where: ['egressNetworkPolicyName!='],
    }),
  ],
};
