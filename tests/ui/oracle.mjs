// oracle.mjs - what the dashboards must show, computed from what the
// generator says it sent (`flowvis generate --summary-json`: per flow its
// 5-tuple, totals, Pods, namespaces, nodes, Service, policies), without the
// aggregator, its store or its API.
//
//     const o = new Oracle(JSON.parse(fs.readFileSync(summaryFile)));
//     o.top({group: 'pod_pair', metric: 'bytes', where: ['namespace!=batch']})
//       -> {total, groups: Map(key -> {value, reverse})} or null
//
// Labels and keys follow docs/api.md ("Metrics and groups"); where clauses
// follow its "Filters" section, for the keys the summary has (null for a
// clause on a column it lacks).  The time range is not modelled: the tests
// choose ranges that hold every record or none.

const ACTIONS = ['', 'allow', 'drop', 'reject'];
const FLOW_TYPES = ['unknown', 'intra-node', 'inter-node', 'to-external', 'from-external'];
const PROTOS = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };

const pod = (ns, name, ip) => (name ? `${ns}/${name}` : ip);
const srcPod = (f) => pod(f.sourcePodNamespace, f.sourcePodName, f.sourceIP);
const dstPod = (f) => pod(f.destinationPodNamespace, f.destinationPodName, f.destinationIP);
const policy = (ns, name) => (name ? (ns ? `${ns}/${name}` : name) : '');
const withAction = (label, a) => (ACTIONS[a] ? `${label} (${ACTIONS[a]})` : label);

// group -> flow -> [key, labels]
const GROUPS = {
  none: () => ['all', {}],
  flow_type: (f) => one('flowType', FLOW_TYPES[f.flowType] ?? 'unknown'),
  source_pod: (f) => one('source', srcPod(f)),
  destination_pod: (f) => one('destination', dstPod(f)),
  pod_pair: (f) => pair(srcPod(f), dstPod(f)),
  source_namespace: (f) => one('source', f.sourcePodNamespace),
  destination_namespace: (f) => one('destination', f.destinationPodNamespace),
  namespace_pair: (f) => pair(f.sourcePodNamespace, f.destinationPodNamespace),
  source_node: (f) => one('source', f.sourceNodeName),
  destination_node: (f) => one('destination', f.destinationNodeName),
  node_pair: (f) => pair(f.sourceNodeName, f.destinationNodeName),
  service: (f) => one('service', f.destinationServicePortName),
  pod_service_pair: (f) => pair(srcPod(f), f.destinationServicePortName),
  ingress_policy: (f) => one('policy', policy(f.ingressNetworkPolicyNamespace, f.ingressNetworkPolicyName)),
  egress_policy: (f) => one('policy', policy(f.egressNetworkPolicyNamespace, f.egressNetworkPolicyName)),
  policy_pair: (f) => {
    const s = policy(f.egressNetworkPolicyNamespace, f.egressNetworkPolicyName);
    const d = policy(f.ingressNetworkPolicyNamespace, f.ingressNetworkPolicyName);
    const ea = ACTIONS[f.egressNetworkPolicyRuleAction] ?? '';
    const ia = ACTIONS[f.ingressNetworkPolicyRuleAction] ?? '';
    return [
      `${withAction(s, f.egressNetworkPolicyRuleAction)} -> ${withAction(d, f.ingressNetworkPolicyRuleAction)}`,
      { source: s, egressAction: ea, destination: d, ingressAction: ia },
    ];
  },
};

function one(name, v) {
  return [v ?? '', { [name]: v ?? '' }];
}

function pair(s, d) {
  return [`${s ?? ''} -> ${d ?? ''}`, { source: s ?? '', destination: d ?? '' }];
}

// where key -> the summary's columns it covers (an alias covers two).
const ALIASES = {
  srcip: ['sourceIP'],
  dstip: ['destinationIP'],
  srcport: ['sourceTransportPort'],
  dstport: ['destinationTransportPort'],
  proto: ['protocolIdentifier'],
  namespace: ['sourcePodNamespace', 'destinationPodNamespace'],
  pod: ['sourcePodName', 'destinationPodName'],
  node: ['sourceNodeName', 'destinationNodeName'],
  service: ['destinationServicePortName'],
  policy: ['ingressNetworkPolicyName', 'egressNetworkPolicyName'],
};

// A where clause -> a predicate over summary flows, or null when the
// summary lacks the column (or for pod=NS/NAME, not modelled).
export function clausePredicate(clause, sample) {
  const m = /^([A-Za-z0-9_]+)(!=|=|~)(.*)$/s.exec(clause);
  if (!m) return null;
  const [, key, op, raw] = m;
  const cols = ALIASES[key] || [key];
  if (!cols.every((c) => Object.hasOwn(sample, c))) return null;
  if (key === 'pod' && raw.includes('/')) return null;
  const numeric = typeof sample[cols[0]] === 'number';
  let value = raw;
  if (numeric) {
    value = key === 'proto' && Object.hasOwn(PROTOS, raw) ? PROTOS[raw] : Number(raw);
    if (!Number.isInteger(value)) return null;
  }
  if (op === '=') return (f) => cols.some((c) => f[c] === value);
  if (op === '~') return numeric ? null : (f) => cols.some((c) => String(f[c]).includes(value));
  return (f) => cols.every((c) => f[c] !== value);
}

export class Oracle {
  constructor(summary) {
    this.summary = summary;
    this.flows = summary.perFlow || [];
  }

  // The flows matching every clause, or null when a clause is not modelled.
  select(where = []) {
    if (!this.flows.length) return [];
    const preds = where.map((w) => clausePredicate(w, this.flows[0]));
    if (preds.some((p) => p === null)) return null;
    return this.flows.filter((f) => preds.every((p) => p(f)));
  }

  // /top over every flow: {total, groups: Map(key -> {value, reverse, labels})},
  // or null when the group, metric or a clause is not modelled.
  // rangeSeconds: for the throughput metrics (bytes * 8 / seconds, down).
  top({ group = 'none', metric = 'bytes', where = [], rangeSeconds = 0 }) {
    const fn = GROUPS[group];
    const flows = this.select(where);
    if (!fn || !flows) return null;
    const fwd = { bytes: 'octetDeltaCount', packets: 'packetDeltaCount', throughput: 'octetDeltaCount' };
    const rev = { bytes: 'reverseOctetDeltaCount', packets: 'reversePacketDeltaCount', throughput: 'reverseOctetDeltaCount' };
    const base = metric.replace(/^reverse(.)/, (_, c) => c.toLowerCase());
    const isRev = metric.startsWith('reverse');
    if (metric !== 'flows' && !fwd[base]) return null;
    if (base === 'throughput' && !rangeSeconds) return null;
    const groups = new Map();
    for (const f of flows) {
      const [key, labels] = fn(f);
      const g = groups.get(key) || { value: 0, reverse: 0, labels };
      if (metric === 'flows') {
        g.value += 1; // summary flows are distinct 5-tuples
        g.reverse = null;
      } else {
        g.value += f[(isRev ? rev : fwd)[base]];
        g.reverse += f[(isRev ? fwd : rev)[base]];
      }
      groups.set(key, g);
    }
    let total = [...groups.values()].reduce((a, g) => a + g.value, 0);
    if (base === 'throughput') {
      const bps = (b) => Math.floor((b * 8) / rangeSeconds);
      total = bps(total);
      for (const g of groups.values()) {
        g.value = bps(g.value);
        g.reverse = bps(g.reverse);
      }
    }
    return { total, groups };
  }
}
