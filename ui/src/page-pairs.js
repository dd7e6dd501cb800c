// The four "who talks to whom" pages share one layout: two Sankeys (bytes
// and reverse bytes of the top pairs, one /top request), throughput per
// pair, as source and as destination (/series), and two pies (/top).

import { seriesPanel, sankeyPanel, piePanel } from './widgets.js';

function pairPage(o) {
  return {
    id: o.id,
    title: o.title,
    description: o.description,
    where: () => o.where,
    tools: ['topn'],
    panels: [
      sankeyPanel({
        id: `${o.prefix}-sankey-bytes`,
        title: `Bytes: ${o.pairText}`,
        info: `Bytes sent from source to destination (forward) by the top ${o.pairWord} pairs.`,
        group: o.pair,
      }),
      sankeyPanel({
        id: `${o.prefix}-sankey-reverse`,
        title: `Reverse bytes: ${o.pairText}`,
        info: 'Bytes sent back from destination to source (the reply direction) by the same pairs.',
        group: o.pair,
        reverse: true,
      }),
      seriesPanel({
        id: 'pair-throughput',
        title: `Throughput per ${o.pairWord} pair`,
        info: 'Forward throughput of the 10 busiest pairs plus all the others.',
        size: 'full',
        metric: 'throughput',
        group: o.pair,
      }),
      seriesPanel({
        id: 'as-source',
        title: o.asSource,
        info: 'Forward throughput of the 10 busiest sources plus all the others.',
        metric: 'throughput',
        group: o.source,
      }),
      seriesPanel({
        id: 'as-destination',
        title: o.asDestination,
        info: 'Forward throughput of the 10 busiest destinations plus all the others.',
        metric: 'throughput',
        group: o.destination,
      }),
      ...o.pies.map((pie) => piePanel({ ...pie, size: 'half', group: pie.group, metric: 'bytes' })),
    ],
  };
}

export const podToPod = pairPage({
  id: 'pod-to-pod',
  title: 'Pod-to-Pod',
  description: 'Traffic between Pods, on one node (intra-node) or across nodes (inter-node).',
  where: ['flowType!=3', 'flowType!=4', 'destinationPodName!='],
  prefix: 'pod-pair',
  pair: 'pod_pair',
  pairText: 'source Pod → destination Pod',
  pairWord: 'Pod',
  source: 'source_pod',
  destination: 'destination_pod',
  asSource: 'Throughput of Pods as source',
  asDestination: 'Throughput of Pods as destination',
  pies: [
    { id: 'pie-source-ns', title: 'Bytes by source namespace', group: 'source_namespace' },
    { id: 'pie-destination-ns', title: 'Bytes by destination namespace', group: 'destination_namespace' },
  ],
});

export const podToExternal = pairPage({
  id: 'pod-to-external',
  title: 'Pod-to-External',
  description: 'Traffic from Pods to addresses outside the cluster (flow type to-external).',
  where: ['flowType=3'],
  prefix: 'pod-external',
  pair: 'pod_pair',
  pairText: 'source Pod → external address',
  pairWord: 'Pod–external',
  source: 'source_pod',
  destination: 'destination_pod',
  asSource: 'Throughput of Pods as source',
  asDestination: 'Throughput to external addresses',
  pies: [
    { id: 'pie-source-ns', title: 'Bytes by source namespace', group: 'source_namespace' },
    { id: 'pie-destination-ip', title: 'Bytes by external address', group: 'destination_pod' },
  ],
});

export const podToService = pairPage({
  id: 'pod-to-service',
  title: 'Pod-to-Service',
  description: 'Traffic from Pods to Services (connections to a ClusterIP, destination Service port name set).',
  where: ['destinationServicePortName!='],
  prefix: 'pod-service',
  pair: 'pod_service_pair',
  pairText: 'source Pod → Service',
  pairWord: 'Pod–Service',
  source: 'source_pod',
  destination: 'service',
  asSource: 'Throughput of Pods as source',
  asDestination: 'Throughput of Services as destination',
  pies: [
    { id: 'pie-source-ns', title: 'Bytes by source namespace', group: 'source_namespace' },
    { id: 'pie-service', title: 'Bytes by Service', group: 'service' },
  ],
});

export const nodeToNode = pairPage({
  id: 'node-to-node',
  title: 'Node-to-Node',
  description: 'Traffic between the nodes of the Pods at both ends (flows with a source and a destination node).',
  where: ['sourceNodeName!=', 'destinationNodeName!='],
  prefix: 'node-pair',
  pair: 'node_pair',
  pairText: 'source node → destination node',
  pairWord: 'node',
  source: 'source_node',
  destination: 'destination_node',
  asSource: 'Throughput of nodes as source',
  asDestination: 'Throughput of nodes as destination',
  pies: [
    { id: 'pie-source-node', title: 'Bytes by source node', group: 'source_node' },
    { id: 'pie-destination-node', title: 'Bytes by destination node', group: 'destination_node' },
  ],
});
