#!/usr/bin/env bash
# NetworkPolicy attribution and denied flows, end to end: the namespace
# cluster with --policies (four NetworkPolicies in the inventory, enforced
# by nftables in the nodes, refusals logged to NFLOG groups 100 (drop) and
# 101 (reject); see tests/cluster/cluster.sh), an agent per node that
# evaluates the policies and listens to both groups, the aggregator, and a
# JSON sink.
#
# Pods (2 nodes, 5 Pods each): node-1 1_1 frontend, 1_2 catalog,
# 1_3 payments-api, 1_4 prometheus, 1_5 cart; node-2 2_1 frontend,
# 2_2 catalog, 2_3 coredns, 2_4 ledger, 2_5 grafana.
#
# Admitted (conntrack, action allow, named by the agents' evaluation):
#   A. grafana 2_5 -> prometheus 1_4 :9090/TCP, inter-node: egress
#      monitoring/grafana-egress egress-0 (from node-2) and ingress
#      monitoring/prometheus-ingress ingress-0 (from node-1), joined by
#      correlation.
#   B. frontend 2_1 -> catalog 1_2 :8080 (the named port "http"):
#      ingress shop/catalog-ingress ingress-0, no egress policy.
#   C. prometheus 1_4 -> catalog 2_2 :9090: ingress-1 of the same policy
#      (namespaceSelector team=observability).
#   D. grafana 2_5 -> coredns 2_3 :53/UDP, intra-node: egress-1.
# Refused (NFLOG, exact packets and bytes):
#   E. prometheus 1_4 -> payments-api 1_3 :8080/UDP x3, intra-node: action
#      drop, ingress payments/payments-api-ingress, flowType 1, 3 packets.
#   F. ledger 2_4 -> payments-api 1_3 :8080/UDP x3, inter-node: node-2's
#      conntrack half (the datagrams left it) and node-1's denied half are
#      correlated: flowType 2, both Pods, ingress drop with the policy.
#   G. grafana 2_5 -> external 198.51.100.10:443/TCP: rejected by egress
#      monitoring/grafana-egress, action reject, flowType 3, the one SYN.
# The agents' metrics count exactly the refused packets.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"
# shellcheck source=helpers/agg_lib.sh
source "$FV_HELPERS/agg_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 5 --policies
fv_assert_eq "grafana prometheus ledger payments-api" \
    "$FVC_POD_2_5_APP $FVC_POD_1_4_APP $FVC_POD_2_4_APP $FVC_POD_1_3_APP" "the cluster's Pod layout"
# shellcheck disable=SC2034 # read by fvg_agents_start
FVG_AGENT_LINES=("deniedFlows:" "  nflogGroups: [\"$FVC_NFLOG_DROP_GROUP\", \"$FVC_NFLOG_REJECT_GROUP:reject\"]")
fvg_stack_up
SINK=$FVG_SINK

# udp_burst NS SRC_IP SPORT DST_IP DPORT COUNT SIZE: COUNT datagrams of SIZE
# payload bytes, no answer expected.
udp_burst() {
    ip netns exec "$1" python3 - "$2" "$3" "$4" "$5" "$6" "$7" <<'EOF'
import socket, sys, time
src, sport, dst, dport, count, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, sport))
for _ in range(count):
    s.sendto(b"x" * size, (dst, dport))
    time.sleep(0.05)
EOF
}

# tcp_refused NS SRC_IP SPORT DST_IP DPORT: a connect that must be refused.
tcp_refused() {
    ip netns exec "$1" python3 - "$2" "$3" "$4" "$5" <<'EOF' || fv_fatal "connect $4:$5 was not refused"
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(3)
try:
    s.connect((sys.argv[3], int(sys.argv[4])))
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)
EOF
}

# --- traffic ------------------------------------------------------------------------
fva_tcp_server prom "$FVC_POD_1_4_NETNS" "$FVC_POD_1_4_IP4" 9090 300 400
fva_tcp_server cat1 "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 300 400
fva_tcp_server cat2 "$FVC_POD_2_2_NETNS" "$FVC_POD_2_2_IP4" 9090 300 400
fva_udp_server dns "$FVC_POD_2_3_NETNS" "$FVC_POD_2_3_IP4" 53 100
fva_tcp_call "$FVC_POD_2_5_NETNS" "$FVC_POD_2_5_IP4" 43001 "$FVC_POD_1_4_IP4" 9090 300 400
fva_tcp_call "$FVC_POD_2_1_NETNS" "$FVC_POD_2_1_IP4" 43002 "$FVC_POD_1_2_IP4" 8080 300 400
fva_tcp_call "$FVC_POD_1_4_NETNS" "$FVC_POD_1_4_IP4" 43003 "$FVC_POD_2_2_IP4" 9090 300 400
fva_udp_call "$FVC_POD_2_5_NETNS" "$FVC_POD_2_5_IP4" 43004 "$FVC_POD_2_3_IP4" 53 1 40 100
udp_burst "$FVC_POD_1_4_NETNS" "$FVC_POD_1_4_IP4" 43005 "$FVC_POD_1_3_IP4" 8080 3 100
udp_burst "$FVC_POD_2_4_NETNS" "$FVC_POD_2_4_IP4" 43006 "$FVC_POD_1_3_IP4" 8080 3 100
tcp_refused "$FVC_POD_2_5_NETNS" "$FVC_POD_2_5_IP4" 43007 "$FVC_EXTERNAL_IP4" 443

# --- A. both policies, joined by correlation ----------------------------------------
fvg_wait_flow 20 "$SINK" 43001 '.ingressNetworkPolicyName != "" and .egressNetworkPolicyName != ""'
r=$(fvg_final "$SINK" 43001)
fv_log "A: $r"
fvg_assert_fields "A grafana->prometheus" "$r" \
    sourcePodName="$FVC_POD_2_5_NAME" destinationPodName="$FVC_POD_1_4_NAME" flowType=2 \
    egressNetworkPolicyName=grafana-egress egressNetworkPolicyNamespace=monitoring \
    egressNetworkPolicyType=1 egressNetworkPolicyRuleName=egress-0 egressNetworkPolicyRuleAction=1 \
    ingressNetworkPolicyName=prometheus-ingress ingressNetworkPolicyNamespace=monitoring \
    ingressNetworkPolicyType=1 ingressNetworkPolicyRuleName=ingress-0 \
    ingressNetworkPolicyRuleAction=1
fvg_assert_correlated "A grafana->prometheus" "$SINK" 43001

# --- B, C, D. one side named -----------------------------------------------------------
fvg_wait_flow 20 "$SINK" 43002 '.destinationPodName != "" and .sourcePodName != ""
    and .ingressNetworkPolicyName != ""'
fvg_assert_fields "B frontend->catalog:http" "$(fvg_final "$SINK" 43002)" \
    ingressNetworkPolicyName=catalog-ingress ingressNetworkPolicyNamespace=shop \
    ingressNetworkPolicyRuleName=ingress-0 ingressNetworkPolicyRuleAction=1 \
    egressNetworkPolicyName= egressNetworkPolicyRuleAction=0 egressNetworkPolicyType=0
fvg_wait_flow 20 "$SINK" 43003 '.destinationPodName != "" and .sourcePodName != ""
    and .ingressNetworkPolicyName != ""'
fvg_assert_fields "C prometheus->catalog:9090" "$(fvg_final "$SINK" 43003)" \
    ingressNetworkPolicyName=catalog-ingress ingressNetworkPolicyRuleName=ingress-1 \
    ingressNetworkPolicyRuleAction=1 egressNetworkPolicyName=
fvg_wait_flow 20 "$SINK" 43004 '.egressNetworkPolicyName != ""'
fvg_assert_fields "D grafana->coredns:53/udp" "$(fvg_final "$SINK" 43004)" \
    flowType=1 protocolIdentifier=17 egressNetworkPolicyName=grafana-egress \
    egressNetworkPolicyRuleName=egress-1 egressNetworkPolicyRuleAction=1 \
    ingressNetworkPolicyName= ingressNetworkPolicyRuleAction=0

# --- E. intra-node drop ---------------------------------------------------------------
fvg_wait_flow 20 "$SINK" 43005 '.ingressNetworkPolicyRuleAction == 2'
r=$(fvg_final "$SINK" 43005)
fv_log "E: $r"
fvg_assert_fields "E prometheus->payments-api (dropped)" "$r" \
    sourcePodName="$FVC_POD_1_4_NAME" destinationPodName="$FVC_POD_1_3_NAME" \
    sourceNodeName=node-1 destinationNodeName=node-1 flowType=1 protocolIdentifier=17 \
    destinationTransportPort=8080 ingressNetworkPolicyName=payments-api-ingress \
    ingressNetworkPolicyNamespace=payments ingressNetworkPolicyType=1 \
    ingressNetworkPolicyRuleName= ingressNetworkPolicyRuleAction=2 \
    egressNetworkPolicyName= egressNetworkPolicyRuleAction=0 \
    reversePacketTotalCount=0 reverseOctetTotalCount=0
fv_assert_eq "3 384" "$(fvg_totals "$SINK" 43005 | cut -d' ' -f1-2)" \
    "E: packets and octets of the three refused datagrams (3 x (20 + 8 + 100))"
fv_assert_eq "$(fvg_totals "$SINK" 43005)" "$(fvg_sums "$SINK" 43005)" "E: sum of deltas = totals"

# --- F. inter-node drop: conntrack half + denied half -----------------------------------
fvg_wait_flow 20 "$SINK" 43006 '.ingressNetworkPolicyRuleAction == 2 and .sourcePodName != ""'
r=$(fvg_final "$SINK" 43006)
fv_log "F: $r"
fvg_assert_fields "F ledger->payments-api (dropped at node-1)" "$r" \
    sourcePodName="$FVC_POD_2_4_NAME" sourceNodeName=node-2 \
    destinationPodName="$FVC_POD_1_3_NAME" destinationNodeName=node-1 flowType=2 \
    ingressNetworkPolicyName=payments-api-ingress ingressNetworkPolicyNamespace=payments \
    ingressNetworkPolicyRuleAction=2 egressNetworkPolicyRuleAction=0 packetTotalCount=3 \
    octetTotalCount=384
fvg_assert_correlated "F ledger->payments-api" "$SINK" 43006

# --- G. egress reject ------------------------------------------------------------------
fvg_wait_flow 20 "$SINK" 43007 '.egressNetworkPolicyRuleAction == 3'
r=$(fvg_final "$SINK" 43007)
fv_log "G: $r"
fvg_assert_fields "G grafana->external (rejected)" "$r" \
    sourcePodName="$FVC_POD_2_5_NAME" sourceNodeName=node-2 destinationPodName= flowType=3 \
    destinationIPv4Address="$FVC_EXTERNAL_IP4" destinationTransportPort=443 \
    egressNetworkPolicyName=grafana-egress egressNetworkPolicyNamespace=monitoring \
    egressNetworkPolicyType=1 egressNetworkPolicyRuleName= egressNetworkPolicyRuleAction=3 \
    ingressNetworkPolicyRuleAction=0 packetTotalCount=1
fv_assert_eq 1 "$(fvg_count "$SINK" 43007)" "G: one record (not held for correlation)"

# --- metrics ---------------------------------------------------------------------------
fv_assert_eq 6 "$(fva_metric "$FVC_NODE_1_NETNS" flowvis_agent_denied_packets_total)" \
    "node-1: refused packets read from NFLOG (E and F)"
fv_assert_eq 1 "$(fva_metric "$FVC_NODE_2_NETNS" flowvis_agent_denied_packets_total)" \
    "node-2: refused packets read from NFLOG (G)"
fv_assert_eq 0 "$(fva_metric "$FVC_NODE_1_NETNS" flowvis_agent_nflog_overruns_total)" \
    "node-1: NFLOG overruns"
