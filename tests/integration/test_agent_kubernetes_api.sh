#!/usr/bin/env bash
# The agent with its inventory from the Kubernetes API instead of a file:
# the namespace cluster's objects (Pods, Services, Nodes, Namespaces,
# NetworkPolicies, split into the typed Lists an API server returns) are
# served by tests/k8s-api/replay_server.py inside node-1's namespace; the
# agent there has `inventory.kubernetes: true` and a kubeconfig with a bearer
# token pointing at it. Checks:
#   - the agent lists all five kinds, Pods with fieldSelector
#     spec.nodeName=node-1, with the token; flowvis_agent_kubernetes_synced 1;
#   - an intra-node connection frontend 1_1 -> catalog 1_2 :8080 carries
#     both Pods' names and namespaces, and the NetworkPolicy that admits it
#     (shop/catalog-ingress, ingress-0), all learnt from the API;
#   - with the API server gone, the agent keeps its inventory and counts
#     the failed requests.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 3 --policies
API=$FV_TMP/api
mkdir -p "$API"

# The inventory as five typed Lists, the way the API server returns them.
list_of() { # list_of KIND LISTKIND FILE
    jq --arg k "$1" --arg lk "$2" '{apiVersion: (if $k == "NetworkPolicy"
            then "networking.k8s.io/v1" else "v1" end), kind: $lk,
        metadata: {resourceVersion: "5000"},
        items: [.items[] | select(.kind == $k) | del(.kind, .apiVersion)]}' \
        "$FVC_INVENTORY" >"$API/$3"
}
list_of Pod PodList pods.json
list_of Service ServiceList services.json
list_of Node NodeList nodes.json
list_of Namespace NamespaceList namespaces.json
list_of NetworkPolicy NetworkPolicyList networkpolicies.json
jq -n '{routes: {
    "/api/v1/pods": {list: [{file: "pods.json"}], watch: [{events: [], then: "hold"}]},
    "/api/v1/services": {list: [{file: "services.json"}], watch: [{events: [], then: "hold"}]},
    "/api/v1/nodes": {list: [{file: "nodes.json"}], watch: [{events: [], then: "hold"}]},
    "/api/v1/namespaces": {list: [{file: "namespaces.json"}], watch: [{events: [], then: "hold"}]},
    "/apis/networking.k8s.io/v1/networkpolicies":
        {list: [{file: "networkpolicies.json"}], watch: [{events: [], then: "hold"}]}}}' \
    >"$API/scenario.json"

fv_bg apiserver "$FVC_NODE_1_NETNS" python3 "$FV_ROOT/tests/k8s-api/replay_server.py" \
    --scenario "$API/scenario.json" --port-file "$API/port" --log "$API/requests.jsonl"
fv_wait_for 10 "the replay API server to listen" test -s "$API/port"
port=$(cat "$API/port")
cat >"$API/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: replay
  cluster:
    server: http://127.0.0.1:$port
contexts:
- name: test
  context: {cluster: replay, user: agent}
users:
- name: agent
  user:
    token: flowvis-test-token
EOF

COLL=$FV_TMP/coll.out
DOMAIN=$(fva_domain node-1)
fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
fva_agent_config "$FV_TMP/agent.yaml" node-1 172.18.0.1:4739:tcp \
    "inventory:" "  kubernetes: true" "  kubeconfig: $API/kubeconfig"
fva_agent_start agent "$FVC_NODE_1_NETNS" "$FV_TMP/agent.yaml"
fv_assert_eq 1 "$(fva_metric "$FVC_NODE_1_NETNS" flowvis_agent_kubernetes_synced)" \
    "flowvis_agent_kubernetes_synced"

# What the agent asked for.
for path in /api/v1/pods /api/v1/services /api/v1/nodes /api/v1/namespaces \
    /apis/networking.k8s.io/v1/networkpolicies; do
    fv_assert_ge 1 "$(jq -c --arg p "$path" 'select(.path == $p)' "$API/requests.jsonl" | grep -c .)" \
        "requests for $path"
done
pods_q=$(jq -r 'select(.path == "/api/v1/pods") | .query' "$API/requests.jsonl" | head -n 1)
fv_log "first Pods request: $pods_q"
[[ $pods_q == *"fieldSelector=spec.nodeName%3Dnode-1"* ]] ||
    fv_fail "the Pods list is not limited to node-1: $pods_q"
auth=$(jq -r '.authorization' "$API/requests.jsonl" | sort -u)
fv_assert_eq "Bearer flowvis-test-token" "$auth" "Authorization of every request"

_metric_ge() { # _metric_ge NS NAME MIN
    [[ $(fva_metric "$1" "$2") -ge $3 ]]
}

# A connection, named from the API's objects.
SPORT=44001
fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 500 600
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$SPORT" "$FVC_POD_1_2_IP4" 8080 500 600
fva_wait_flow 15 "$COLL" "$DOMAIN" "$SPORT" '.flowEndReason == 3'
rec=$(fva_final "$COLL" "$DOMAIN" "$SPORT")
fv_log "record: $rec"
fva_assert_fields "intra-node record from the API inventory" "$rec" \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace=shop sourceNodeName=node-1 \
    destinationPodName="$FVC_POD_1_2_NAME" destinationPodNamespace=shop \
    destinationNodeName=node-1 flowType=1 ingressNetworkPolicyName=catalog-ingress \
    ingressNetworkPolicyNamespace=shop ingressNetworkPolicyRuleName=ingress-0 \
    ingressNetworkPolicyRuleAction=1

# The API server goes away: the agent keeps what it knows and counts errors.
fv_stop apiserver
fv_wait_for 15 "the agent to count failed API requests" \
    _metric_ge "$FVC_NODE_1_NETNS" flowvis_agent_kubernetes_errors_total 1
SPORT=44002
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$SPORT" "$FVC_POD_1_2_IP4" 8080 500 600
fva_wait_flow 15 "$COLL" "$DOMAIN" "$SPORT" '.flowEndReason == 3'
fva_assert_fields "record while the API is down" "$(fva_final "$COLL" "$DOMAIN" "$SPORT")" \
    sourcePodName="$FVC_POD_1_1_NAME" destinationPodName="$FVC_POD_1_2_NAME"
fv_alive agent
