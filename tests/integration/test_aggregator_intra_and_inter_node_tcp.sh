#!/usr/bin/env bash
# Agents -> aggregator (mutual TLS) -> JSON collector, with intra-node and
# inter-node TCP flows: the reference's flow aggregator e2e suite ("IntraNodeFlows",
# "InterNodeFlows", the iperf bandwidth check), in the namespace cluster.
#
# Two nodes; an agent on each exports over TLS (the aggregator's generated
# ca.crt, client.crt, client.key) to `flowvis aggregator` on 172.18.0.1:4739
# in the fabric, which exports JSON lines to json_sink.py. Aggregator
# active/inactive timeouts 2s/4s, agents poll 1s, active and idle 2s.
#   1. intra-node: shop/frontend (pod 1_1) -> shop/catalog (pod 1_2) :8080
#      from port 41001, 5000 bytes out, 6000 back. One aggregated record:
#      both Pods, namespaces, node-1 twice, flowType 1, TIME_WAIT,
#      flowEndReason 3, totals = node-1's conntrack counters, the deltas sum
#      to the totals, exporter node-1 (address and FNV-1 domain id).
#   2. inter-node: pod 1_1 -> pod 2_2 (node-2) :8080 from port 41002, 7000
#      out, 9000 back: a complete record (both Pods and nodes), flowType
#      2, correlated (per-side totals of both nodes, equal to the common
#      totals), totals = conntrack counters, deltas sum to the totals.
#   3. inter-node iperf3 -t 12 -b 10M from port 42001: correlated, the
#      deltas sum to the final totals over the many records of the flow,
#      the forward octets are the payload iperf3 sent plus headers, and the
#      median of the throughput of the steady records (ESTABLISHED, not
#      the first) is iperf3's sender bits_per_second within +-15 %.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"
# shellcheck source=helpers/agg_lib.sh
source "$FV_HELPERS/agg_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss iperf3
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 3
fvg_stack_up
SINK=$FVG_SINK
N1=node-1 N2=node-2

# counters_of NODE_NS SPORT: "packets bytes reverse_packets reverse_bytes" of
# the node's conntrack entry of the TCP connection from SPORT, whatever its
# state ("" when there is none).
counters_of() {
    local line
    line=$(ip netns exec "$1" conntrack -L -p tcp --sport "$2" 2>/dev/null | head -n 1)
    [[ -n $line ]] && fva_ct_counters "$line"
    return 0
}

# --- traffic ------------------------------------------------------------------------
fva_tcp_server srv12 "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 5000 6000
fva_tcp_server srv22 "$FVC_POD_2_2_NETNS" "$FVC_POD_2_2_IP4" 8080 7000 9000
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41001 "$FVC_POD_1_2_IP4" 8080 5000 6000
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41002 "$FVC_POD_2_2_IP4" 8080 7000 9000
fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -p tcp --sport 41001
CT_INTRA=$(fva_ct_counters "$FVA_CT")
fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -p tcp --sport 41002
CT_INTER=$(fva_ct_counters "$FVA_CT")
fva_ct_wait "$FVC_NODE_2_NETNS" TIME_WAIT -p tcp --sport 41002
fv_assert_eq "$CT_INTER" "$(fva_ct_counters "$FVA_CT")" "41002: conntrack counters of node-1 and node-2"

# The iperf3 stream runs while the short flows are checked below.
fv_bg iperf_srv "$FVC_POD_2_2_NETNS" iperf3 -s -B "$FVC_POD_2_2_IP4" -p 5201 -1
fv_wait_port "$FVC_POD_2_2_NETNS" tcp 5201
fv_bg iperf "$FVC_POD_1_1_NETNS" iperf3 -c "$FVC_POD_2_2_IP4" -p 5201 -B "$FVC_POD_1_1_IP4" \
    --cport 42001 -t 12 -b 10M --json

# --- 1. intra-node -------------------------------------------------------------------------
fvg_wait_flow 15 "$SINK" 41001 '.flowEndReason == 3'
r=$(fvg_final "$SINK" 41001)
fv_log "intra-node record: $r"
fvg_assert_fields "intra-node" "$r" \
    sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$FVC_POD_1_2_IP4" \
    sourceTransportPort=41001 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace="$FVC_POD_1_1_NAMESPACE" \
    sourceNodeName=$N1 destinationPodName="$FVC_POD_1_2_NAME" \
    destinationPodNamespace="$FVC_POD_1_2_NAMESPACE" destinationNodeName=$N1 \
    flowType=1 tcpState=TIME_WAIT flowEndReason=3 destinationClusterIPv4=0.0.0.0 \
    destinationServicePort=0 destinationServicePortName= \
    originalExporterIPv4Address="$FVC_NODE_1_IP4" originalObservationDomainId="$(fva_domain $N1)"
totals=$(fvg_totals "$SINK" 41001)
fv_assert_eq "$CT_INTRA" "$totals" "intra-node: totals = node-1's conntrack counters"
fv_assert_eq "$totals" "$(fvg_sums "$SINK" 41001)" "intra-node: sum of deltas = totals"
fv_assert_eq "$(fva_field "$r" octetTotalCount)" "$(fva_field "$r" octetTotalCountFromSourceNode)" \
    "intra-node: octetTotalCount = octetTotalCountFromSourceNode"
read -r pkts octets rpkts roctets <<<"$totals"
fva_assert_octets "intra-node: client->server octets" 5000 "$pkts" "$octets"
fva_assert_octets "intra-node: server->client octets" 6000 "$rpkts" "$roctets"
fv_assert_eq 1 "$(fvg_count "$SINK" 41001)" "intra-node: aggregated records (one agent record)"

# --- 2. inter-node -------------------------------------------------------------------------
# Complete = both halves merged; the last record must hold both nodes' finals.
fvg_wait_flow 15 "$SINK" 41002 '.flowEndReason == 3 and .sourcePodName != ""
    and .destinationPodName != "" and .octetTotalCountFromSourceNode > 0
    and .octetTotalCountFromDestinationNode > 0'
r=$(fvg_final "$SINK" 41002)
fv_log "inter-node record: $r"
fvg_assert_fields "inter-node" "$r" \
    sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$FVC_POD_2_2_IP4" \
    sourceTransportPort=41002 destinationTransportPort=8080 protocolIdentifier=6 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace="$FVC_POD_1_1_NAMESPACE" \
    sourceNodeName=$N1 destinationPodName="$FVC_POD_2_2_NAME" \
    destinationPodNamespace="$FVC_POD_2_2_NAMESPACE" destinationNodeName=$N2 \
    flowType=2 tcpState=TIME_WAIT flowEndReason=3 destinationClusterIPv4=0.0.0.0
fvg_assert_correlated "inter-node" "$SINK" 41002
totals=$(fvg_totals "$SINK" 41002)
fv_assert_eq "$CT_INTER" "$totals" "inter-node: totals = conntrack counters"
fv_assert_eq "$totals" "$(fvg_sums "$SINK" 41002)" "inter-node: sum of deltas = totals"
exp=$(fva_field "$r" originalExporterIPv4Address)
[[ $exp == "$FVC_NODE_1_IP4" || $exp == "$FVC_NODE_2_IP4" ]] ||
    fv_fail "inter-node: originalExporterIPv4Address '$exp' is neither node's address"

# --- 3. iperf3 -----------------------------------------------------------------------------
fv_wait_exit iperf 30
[[ $FV_STATUS -eq 0 ]] || {
    fv_show_err iperf
    fv_fatal "iperf3 client exited with status $FV_STATUS: $(head -c 400 "$FV_TMP/iperf.out")"
}
IPERF=$FV_TMP/iperf.out
bps=$(jq '.end.sum_sent.bits_per_second | floor' "$IPERF")
sent=$(jq '.end.sum_sent.bytes' "$IPERF")
dport=$(jq '.start.connected[0].local_port' "$IPERF")
fv_assert_eq 42001 "$dport" "iperf3 data stream's client port"
fv_log "iperf3: sender $bps bit/s, $sent bytes"
fvg_wait_flow 20 "$SINK" 42001 '.flowEndReason == 3 and .octetTotalCountFromSourceNode > 0
    and .octetTotalCountFromSourceNode == .octetTotalCountFromDestinationNode'
sleep 2.5 # a tick or two of the aggregator: whatever else comes must still add up
CT_IPERF=$(counters_of "$FVC_NODE_1_NETNS" 42001)
flow=$(fvg_flow "$SINK" 42001)
fvg_show_flow "$SINK" 42001
r=$(jq -c '.[-1]' <<<"$flow")
fvg_assert_fields "iperf3" "$r" \
    sourcePodName="$FVC_POD_1_1_NAME" destinationPodName="$FVC_POD_2_2_NAME" \
    sourceNodeName=$N1 destinationNodeName=$N2 flowType=2 destinationTransportPort=5201 \
    flowEndReason=3
fvg_assert_correlated "iperf3" "$SINK" 42001
totals=$(fvg_totals "$SINK" 42001)
fv_assert_eq "$totals" "$(fvg_sums "$SINK" 42001)" "iperf3: sum of deltas = totals"
if [[ -n $CT_IPERF ]]; then
    fv_assert_eq "$CT_IPERF" "$totals" "iperf3: totals = node-1's conntrack counters"
fi
read -r pkts octets _ <<<"$totals"
fva_assert_octets "iperf3: client->server octets (payload $sent)" "$sent" "$pkts" "$octets"
fv_assert_ge 5 "$(jq length <<<"$flow")" "iperf3: aggregated records over 12 s"

# Steady records: ESTABLISHED, after the first (whose rate includes the
# start), with a non-zero throughput.
steady=$(jq -c '.[1:] | map(select(.tcpState == "ESTABLISHED" and .throughput > 0)
    | .throughput) | sort' <<<"$flow")
fv_log "steady throughputs: $steady"
n=$(jq length <<<"$steady")
fv_assert_ge 3 "$n" "iperf3: steady records with a throughput"
if ((n > 0)); then
    median=$(jq '.[length / 2 | floor]' <<<"$steady")
    fv_assert_between $((bps * 85 / 100)) $((bps * 115 / 100)) "$median" \
        "iperf3: median throughput of the records (iperf3 says $bps bit/s)"
fi
# The per-side fields agree with the common one in the steady state.
for side in FromSourceNode FromDestinationNode; do
    m=$(jq ".[1:] | map(select(.tcpState == \"ESTABLISHED\" and .throughput$side > 0)
        | .throughput$side) | sort | if length > 0 then .[length / 2 | floor] else 0 end" <<<"$flow")
    fv_assert_between $((bps * 85 / 100)) $((bps * 115 / 100)) "$m" \
        "iperf3: median throughput$side"
done

fv_alive agg
fv_alive agent1
fv_alive agent2
