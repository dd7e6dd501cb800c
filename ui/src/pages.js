// The dashboards, by page id (state.js PAGES).  A page is
// {id, title, description, where(state) -> page where= clauses,
//  tools: ['topn' | (state, navigate) -> elements], panels: [panel spec]}.

import overview from './page-overview.js';
import flows from './page-flows.js';
import { podToPod, podToExternal, podToService, nodeToNode } from './page-pairs.js';
import policy from './page-policy.js';
import heatmap from './page-heatmap.js';

export const PAGE_DEFS = Object.freeze({
  overview,
  flows,
  'pod-to-pod': podToPod,
  'pod-to-external': podToExternal,
  'pod-to-service': podToService,
  'node-to-node': nodeToNode,
  policy,
  heatmap,
});
