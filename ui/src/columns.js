// The columns of the `flows` table (src/store/row.h), in table order, with
// their kind and the short header the Flow Records table shows.  The API
// answers every column under exactly these names.
//
// kind: 'time' (DateTime, unix seconds), 'int' (an integer column; `bytes`,
// `bps` and `packets` are integers shown with units), 'string'.

const C = (name, kind, label, unit = '') => Object.freeze({ name, kind, label, unit });

export const COLUMNS = Object.freeze([
  C('timeInserted', 'time', 'Inserted'),
  C('flowStartSeconds', 'time', 'Start'),
  C('flowEndSeconds', 'time', 'End'),
  C('flowEndSecondsFromSourceNode', 'time', 'End (src node)'),
  C('flowEndSecondsFromDestinationNode', 'time', 'End (dst node)'),
  C('flowEndReason', 'int', 'End reason', 'endReason'),
  C('sourceIP', 'string', 'Src IP'),
  C('destinationIP', 'string', 'Dst IP'),
  C('sourceTransportPort', 'int', 'Src port'),
  C('destinationTransportPort', 'int', 'Dst port'),
  C('protocolIdentifier', 'int', 'Proto', 'proto'),
  C('packetTotalCount', 'int', 'Packets total', 'count'),
  C('octetTotalCount', 'int', 'Bytes total', 'bytes'),
  C('packetDeltaCount', 'int', 'Packets', 'count'),
  C('octetDeltaCount', 'int', 'Bytes', 'bytes'),
  C('reversePacketTotalCount', 'int', 'Rev packets total', 'count'),
  C('reverseOctetTotalCount', 'int', 'Rev bytes total', 'bytes'),
  C('reversePacketDeltaCount', 'int', 'Rev packets', 'count'),
  C('reverseOctetDeltaCount', 'int', 'Rev bytes', 'bytes'),
  C('sourcePodName', 'string', 'Src pod'),
  C('sourcePodNamespace', 'string', 'Src namespace'),
  C('sourceNodeName', 'string', 'Src node'),
  C('destinationPodName', 'string', 'Dst pod'),
  C('destinationPodNamespace', 'string', 'Dst namespace'),
  C('destinationNodeName', 'string', 'Dst node'),
  C('destinationClusterIP', 'string', 'Cluster IP'),
  C('destinationServicePort', 'int', 'Svc port'),
  C('destinationServicePortName', 'string', 'Service'),
  C('ingressNetworkPolicyName', 'string', 'Ingress policy'),
  C('ingressNetworkPolicyNamespace', 'string', 'Ingress policy ns'),
  C('ingressNetworkPolicyRuleName', 'string', 'Ingress rule'),
  C('ingressNetworkPolicyRuleAction', 'int', 'Ingress action', 'action'),
  C('ingressNetworkPolicyType', 'int', 'Ingress policy type'),
  C('egressNetworkPolicyName', 'string', 'Egress policy'),
  C('egressNetworkPolicyNamespace', 'string', 'Egress policy ns'),
  C('egressNetworkPolicyRuleName', 'string', 'Egress rule'),
  C('egressNetworkPolicyRuleAction', 'int', 'Egress action', 'action'),
  C('egressNetworkPolicyType', 'int', 'Egress policy type'),
  C('tcpState', 'string', 'TCP state'),
  C('flowType', 'int', 'Type', 'flowType'),
  C('sourcePodLabels', 'string', 'Src labels'),
  C('destinationPodLabels', 'string', 'Dst labels'),
  C('throughput', 'int', 'Throughput', 'bps'),
  C('reverseThroughput', 'int', 'Rev throughput', 'bps'),
  C('throughputFromSourceNode', 'int', 'Throughput (src node)', 'bps'),
  C('throughputFromDestinationNode', 'int', 'Throughput (dst node)', 'bps'),
  C('reverseThroughputFromSourceNode', 'int', 'Rev throughput (src node)', 'bps'),
  C('reverseThroughputFromDestinationNode', 'int', 'Rev throughput (dst node)', 'bps'),
  C('trusted', 'int', 'Trusted'),
]);

export const COLUMN = Object.freeze(Object.fromEntries(COLUMNS.map((c) => [c.name, c])));

export const DEFAULT_COLUMNS = Object.freeze([
  'flowEndSeconds',
  'sourcePodNamespace',
  'sourcePodName',
  'sourceIP',
  'sourceTransportPort',
  'destinationPodNamespace',
  'destinationPodName',
  'destinationIP',
  'destinationTransportPort',
  'protocolIdentifier',
  'destinationServicePortName',
  'flowType',
  'octetDeltaCount',
  'reverseOctetDeltaCount',
  'throughput',
]);

// The API's where= aliases (docs/api.md) and the kind of column they stand for.
export const ALIASES = Object.freeze({
  srcip: 'string',
  dstip: 'string',
  srcport: 'int',
  dstport: 'int',
  proto: 'int',
  namespace: 'string',
  pod: 'string',
  node: 'string',
  service: 'string',
  policy: 'string',
});

// The kind of a where= key ('string', 'int', 'time'), or undefined.
export function keyKind(key) {
  if (Object.hasOwn(COLUMN, key)) return COLUMN[key].kind;
  if (Object.hasOwn(ALIASES, key)) return ALIASES[key];
  return undefined;
}
