#!/usr/bin/env bash
# Agents -> aggregator (mutual TLS) -> JSON collector: Pod-to-Service with a
# local and with a remote endpoint, Pod-to-external, and IPv6 (the
# reference's e2e "LocalServiceAccess", "RemoteServiceAccess",
# "ToExternalFlows" and its IPv6 variants), in the namespace cluster.
#
# payments/payments-api (10.96.0.200 / fd00:10:96::c8, port "http" 8080)
# has its only endpoint on node-1 (pod 1_3).
#   1. pod 1_1 (node-1) -> 10.96.0.200:8080 from port 41011: local endpoint;
#      one complete record, destination the endpoint Pod 10.244.1.13:8080,
#      destinationClusterIPv4 10.96.0.200, destinationServicePort 8080,
#      destinationServicePortName "payments/payments-api:http", flowType 1.
#   2. pod 2_1 (node-2) -> 10.96.0.200:8080 from port 41012: remote endpoint;
#      node-2 knows the client and the Service, node-1 the endpoint Pod:
#      the aggregated record has all of it (both Pods, both nodes, the
#      ClusterIP and the port name), flowType 2, and is correlated (the
#      per-side totals of both nodes).
#   3. pod 1_1 -> external 198.51.100.10:8080 from port 41013 (masqueraded
#      by node-1): flowType 3, the source Pod, no destination Pod or node,
#      exported without waiting for a second half.
#   4. IPv6, pod 1_1 -> pod 2_2 [fd00:10:244:2::12]:8080 from port 41014:
#      sourceIPv6Address / destinationIPv6Address, no IPv4 addresses,
#      destinationClusterIPv6 "::", correlated, flowType 2.
#   5. IPv6, pod 2_1 -> payments-api [fd00:10:96::c8]:8080 from port 41015:
#      remote endpoint over IPv6, destinationClusterIPv6 fd00:10:96::c8 and
#      the port name, correlated.
# Every flow: totals = the client node's conntrack counters, and the
# deltas of its records sum to the totals.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"
# shellcheck source=helpers/agg_lib.sh
source "$FV_HELPERS/agg_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 3
fvg_stack_up
SINK=$FVG_SINK
PAY4=$FVC_SVC_PAYMENTS_API_IP4 PAY6=$FVC_SVC_PAYMENTS_API_IP6
PAY_NAME="$FVC_SVC_PAYMENTS_API_NAMESPACE/$FVC_SVC_PAYMENTS_API_NAME:http"
fv_assert_eq "payments/payments-api:http" "$PAY_NAME" "payments-api port name"
EXT4=$FVC_EXTERNAL_IP4
SEND=3000 REPLY=5000

fva_tcp_server pay4 "$FVC_POD_1_3_NETNS" 0.0.0.0 8080 "$SEND" "$REPLY"
fva_tcp_server pay6 "$FVC_POD_1_3_NETNS" :: 8080 "$SEND" "$REPLY"
fva_tcp_server cat6 "$FVC_POD_2_2_NETNS" :: 8080 "$SEND" "$REPLY"
fva_tcp_server ext "$FVC_EXTERNAL_NETNS" 0.0.0.0 8080 "$SEND" "$REPLY"

fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41011 "$PAY4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_2_1_NETNS" "$FVC_POD_2_1_IP4" 41012 "$PAY4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41013 "$EXT4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP6" 41014 "$FVC_POD_2_2_IP6" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_2_1_NETNS" "$FVC_POD_2_1_IP6" 41015 "$PAY6" 8080 "$SEND" "$REPLY"

# check_flow WHAT SPORT CLIENT_NODE_NS CONNTRACK_FILTER... : waits for the
# flow's final complete record (the last with flowEndReason 3 after which
# nothing more comes), checks totals against the client node's conntrack
# entry and the deltas against the totals; sets r to the last record.
check_flow() {
    local what=$1 sport=$2 ns=$3 totals
    shift 3
    fva_ct_wait "$ns" TIME_WAIT "$@" --sport "$sport"
    fvg_wait_flow 15 "$SINK" "$sport" '.flowEndReason == 3'
    r=$(fvg_final "$SINK" "$sport")
    totals=$(fvg_totals "$SINK" "$sport")
    fv_assert_eq "$(fva_ct_counters "$FVA_CT")" "$totals" "$what: totals = conntrack counters"
    fv_assert_eq "$totals" "$(fvg_sums "$SINK" "$sport")" "$what: sum of deltas = totals"
}

# wait_correlated SPORT: until the flow's last record holds both nodes' finals.
wait_correlated() {
    fvg_wait_flow 15 "$SINK" "$1" '.flowEndReason == 3 and .sourcePodName != ""
        and .destinationPodName != "" and .octetTotalCountFromSourceNode > 0
        and .octetTotalCountFromSourceNode == .octetTotalCountFromDestinationNode'
}

# --- 1. local endpoint ------------------------------------------------------------------
check_flow "local endpoint" 41011 "$FVC_NODE_1_NETNS" -p tcp
fv_log "1: $r"
fvg_assert_fields "local endpoint" "$r" \
    sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$FVC_POD_1_3_IP4" \
    sourceTransportPort=41011 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace=shop sourceNodeName=node-1 \
    destinationPodName="$FVC_POD_1_3_NAME" destinationPodNamespace=payments \
    destinationNodeName=node-1 destinationClusterIPv4="$PAY4" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" flowType=1 tcpState=TIME_WAIT flowEndReason=3
fv_assert_eq 1 "$(fvg_count "$SINK" 41011)" "local endpoint: aggregated records"

# --- 2. remote endpoint -----------------------------------------------------------------
wait_correlated 41012
check_flow "remote endpoint" 41012 "$FVC_NODE_2_NETNS" -p tcp
fv_log "2: $r"
fvg_assert_fields "remote endpoint" "$r" \
    sourceIPv4Address="$FVC_POD_2_1_IP4" destinationIPv4Address="$FVC_POD_1_3_IP4" \
    sourceTransportPort=41012 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_2_1_NAME" sourcePodNamespace=shop sourceNodeName=node-2 \
    destinationPodName="$FVC_POD_1_3_NAME" destinationPodNamespace=payments \
    destinationNodeName=node-1 destinationClusterIPv4="$PAY4" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" flowType=2 tcpState=TIME_WAIT flowEndReason=3
fvg_assert_correlated "remote endpoint" "$SINK" 41012
# Every record of the flow carries the Service: no record lost it.
fv_assert_eq 0 "$(fvg_flow "$SINK" 41012 | jq --arg ip "$PAY4" \
    'map(select(.destinationClusterIPv4 != $ip)) | length')" \
    "remote endpoint: records without destinationClusterIPv4 $PAY4"

# --- 3. to external ------------------------------------------------------------------------
check_flow "to external" 41013 "$FVC_NODE_1_NETNS" -p tcp
fv_log "3: $r"
fvg_assert_fields "to external" "$r" \
    sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$EXT4" \
    sourceTransportPort=41013 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace=shop sourceNodeName=node-1 \
    destinationPodName= destinationPodNamespace= destinationNodeName= \
    destinationClusterIPv4=0.0.0.0 destinationServicePortName= \
    flowType=3 tcpState=TIME_WAIT flowEndReason=3 originalExporterIPv4Address="$FVC_NODE_1_IP4"
fv_assert_eq "$(fva_field "$r" octetTotalCount)" "$(fva_field "$r" octetTotalCountFromSourceNode)" \
    "to external: octetTotalCount = octetTotalCountFromSourceNode"
fv_assert_eq 1 "$(fvg_count "$SINK" 41013)" "to external: aggregated records"
# The external host saw the node's address (masquerade), not the Pod's.
grep -q "^conn $FVC_NODE_1_IP4 " "$FV_TMP/ext.out" ||
    fv_fail "external server did not see node-1's address: $(cat "$FV_TMP/ext.out")"

# --- 4. IPv6 inter-node ---------------------------------------------------------------------
wait_correlated 41014
check_flow "IPv6 inter-node" 41014 "$FVC_NODE_1_NETNS" -f ipv6 -p tcp
fv_log "4: $r"
fvg_assert_fields "IPv6 inter-node" "$r" \
    sourceIPv6Address="$FVC_POD_1_1_IP6" destinationIPv6Address="$FVC_POD_2_2_IP6" \
    sourceIPv4Address="(missing)" destinationIPv4Address="(missing)" \
    destinationClusterIPv4="(missing)" destinationClusterIPv6=:: \
    sourceTransportPort=41014 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourceNodeName=node-1 \
    destinationPodName="$FVC_POD_2_2_NAME" destinationNodeName=node-2 \
    flowType=2 tcpState=TIME_WAIT flowEndReason=3
fvg_assert_correlated "IPv6 inter-node" "$SINK" 41014
FVA_V6=1 fva_assert_octets "IPv6 inter-node: client->server octets" "$SEND" \
    "$(fva_field "$r" packetTotalCount)" "$(fva_field "$r" octetTotalCount)"

# --- 5. IPv6 remote Service endpoint -------------------------------------------------------
wait_correlated 41015
check_flow "IPv6 remote endpoint" 41015 "$FVC_NODE_2_NETNS" -f ipv6 -p tcp
fv_log "5: $r"
fvg_assert_fields "IPv6 remote endpoint" "$r" \
    sourceIPv6Address="$FVC_POD_2_1_IP6" destinationIPv6Address="$FVC_POD_1_3_IP6" \
    destinationClusterIPv6="$PAY6" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" sourceTransportPort=41015 \
    destinationTransportPort=8080 sourcePodName="$FVC_POD_2_1_NAME" sourceNodeName=node-2 \
    destinationPodName="$FVC_POD_1_3_NAME" destinationNodeName=node-1 \
    flowType=2 flowEndReason=3
fvg_assert_correlated "IPv6 remote endpoint" "$SINK" 41015

fv_assert_eq 0 "$(fvg_metric flowvis_aggregator_records_dropped_total)" "records dropped"
fv_alive agg
fv_alive agent1
fv_alive agent2
