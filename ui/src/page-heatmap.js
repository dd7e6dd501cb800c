// Node throughput heat map: what each node's Pods send (Tx) and receive (Rx)
// over time.

import { heatmapPanel } from './widgets.js';

export default {
  id: 'heatmap',
  title: 'Node Throughput Heat Map',
  description:
    'Tx: forward throughput of the flows whose source Pod runs on the node (what it sends). ' +
    'Rx: forward throughput of the flows whose destination Pod runs on the node (what it receives). ' +
    'Replies (reverse bytes) are not counted; flows without a node on that side are left out.',
  tools: ['topn'],
  topnLabel: 'Nodes',
  panels: [
    heatmapPanel({
      id: 'node-tx-heatmap',
      title: 'Tx: throughput sent by node',
      info: 'group=source_node, metric=throughput: bits per second sent by the Pods of each node, per time bucket.',
      group: 'source_node',
      where: ['sourceNodeName!='],
    }),
    heatmapPanel({
      id: 'node-rx-heatmap',
      title: 'Rx: throughput received by node',
      info: 'group=destination_node, metric=throughput: bits per second received by the Pods of each node, per time bucket.',
      group: 'destination_node',
      where: ['destinationNodeName!='],
      colors: ['#f0fdf4', '#bbf7d0', '#4ade80', '#16a34a', '#14532d'],
    }),
  ],
};
