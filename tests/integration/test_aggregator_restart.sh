#!/usr/bin/env bash
# The aggregator can be restarted while agents send: they reconnect, send
# their templates again, and a long connection's records carry on.
#
# In the namespace cluster, the agents of node-1 and node-2 (1 s poll, 2 s
# active timeout) export over mutual TLS (or plain TCP with
# FV_AGG_RESTART_TRANSPORT=tcp) to `flowvis aggregator` in the fabric
# (172.18.0.1:4739, 2 s active timeout; with TLS, using the CA, server and
# client certificates it generates into tls.dir at its first start and
# must reuse afterwards), which writes JSON lines over TCP to a sink
# (helpers/agg_interop_peers.py json-sink; the Nth aggregator process's
# connection goes to its own file, out.N). shop/frontend on node-1 (pod
# 1_1, port 43001) streams 40000 bytes/s for 32 s to shop/catalog on
# node-2 (pod 2_2, port 8080), then closes. Meanwhile:
#   1. aggregator #1 exports the connection, correlated (both Pods), twice
#      with growing totals; then it is killed with SIGKILL and, 3 s later,
#      started again on the same address;
#   2. aggregator #2: both agents connect to it ("exporter connected" from
#      each node's address), it decodes their records (so the templates
#      came again: a new session knows none) and exports the connection,
#      correlated, twice, with octetTotalCounts above #1's last, while the
#      stream is still running; then it is stopped with SIGTERM (exit 0,
#      having received records) and, 3 s later, started again;
#   3. aggregator #3: the same as #2;
# and at the end:
#   - the last record of #3 has flowEndReason 3, tcpState TIME_WAIT, both
#     Pods, Namespaces and Nodes, flowType 2, and totals (packets, octets,
#     both directions) equal to the conntrack counters of both nodes; the
#     octets are the payload the sender sent (and the server received)
#     plus 40..60 header bytes per packet;
#   - over #1, #2 and #3 in order, octetTotalCount never goes down;
#   - within each aggregator, the sum of the connection's octetDeltaCount
#     (and the three other deltas) equals the totals of its last record
#     less what was counted before its first export (a new aggregator's
#     first delta is the agent's delta, not the whole total, so deltas
#     summed over several aggregators do not count anything twice);
#   - with TLS: the restarts kept the generated CA and certificates (the
#     agents, holding the first ones, could not have reconnected otherwise);
#   - both agents count at least two reconnections and are connected at
#     the end; aggregators #2 and #3 saw no malformed message; #3 counts
#     two exporters connected. (Each aggregator's log, not the agent's, is
#     the record of the sessions: the agent logs "collector connected" when
#     it samples its sender's state, and misses a session shorter than
#     that.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss
fv_require_flowvis

PEERS=$FV_HELPERS/agg_interop_peers.py
ADDR=172.18.0.1:4739
SINK_PORT=4740
API_PORT=10348
SPORT=43001 DPORT=8080
RATE=40000 DURATION=32 # bytes/s, seconds
TRANSPORT=${FV_AGG_RESTART_TRANSPORT:-tls}
[[ $TRANSPORT == tls || $TRANSPORT == tcp ]] || fv_fatal "FV_AGG_RESTART_TRANSPORT must be tls or tcp"
TLS_DIR=$FV_TMP/tls

fv_cluster_up --nodes 2 --pods-per-node 3
FABRIC=$FVC_FABRIC_NETNS
SRC_IP=$FVC_POD_1_1_IP4 DST_IP=$FVC_POD_2_2_IP4

# --- the aggregator and its sink ------------------------------------------------

fv_bg sink "$FABRIC" python3 "$PEERS" json-sink 127.0.0.1 $SINK_PORT "$FV_TMP/out" 85
fv_wait_for 10 "the JSON sink to listen" _fv_server_ready sink

cat >"$FV_TMP/agg.yaml" <<EOF
listenAddress: $ADDR
aggregatorTransportProtocol: $TRANSPORT
flowAggregatorAddress: ${ADDR%:*}
tls:
  generate: true
  dir: $TLS_DIR
activeFlowRecordTimeout: 2s
inactiveFlowRecordTimeout: 30s
correlationWait: 10s
workers: 2
sqlite:
  path: $FV_TMP/flows.db
logLevel: info
inventory:
  file: $FVC_INVENTORY
apiServer:
  apiPort: $API_PORT
flowCollector:
  enable: true
  address: 127.0.0.1:$SINK_PORT:tcp
  recordFormat: JSON
EOF

# agg_start NAME: start an aggregator and return once it listens.
agg_start() {
    fv_bg "$1" "$FABRIC" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
    fv_wait_for 10 "$1 to run" _agg_running "$1"
}

_agg_running() {
    fv_alive "$1"
    grep -qs 'aggregator running' "$FV_TMP/$1.err" && fv_port_bound "$FABRIC" tcp "${ADDR##*:}"
}

# agg_metric NAME: one value from the running aggregator's /metrics.
agg_metric() {
    ip netns exec "$FABRIC" curl -sf --max-time 3 "http://127.0.0.1:$API_PORT/metrics" |
        awk -v n="$1" '$1 == n { print $2 }'
}

# _both_connected NAME: both nodes have an exporter session with NAME.
_both_connected() {
    fv_alive "$1"
    grep -Eq "exporter connected exporter=$FVC_NODE_1_IP4:[0-9]+ transport=$TRANSPORT" \
        "$FV_TMP/$1.err" &&
        grep -Eq "exporter connected exporter=$FVC_NODE_2_IP4:[0-9]+ transport=$TRANSPORT" \
            "$FV_TMP/$1.err"
}

# flow N: the connection's records in out.N, as a JSON array of "ipfix" objects.
flow() {
    jq -s -c --arg s "$SRC_IP" --arg d "$DST_IP" --argjson sp $SPORT --argjson dp $DPORT '
        [.[] | .ipfix | select(.sourceIPv4Address == $s and .destinationIPv4Address == $d
            and .sourceTransportPort == $sp and .destinationTransportPort == $dp
            and .protocolIdentifier == 6)]' "$FV_TMP/out.$1" 2>/dev/null || echo '[]'
}

# max_octets N: the largest octetTotalCount of the connection in out.N (0 if none).
max_octets() {
    flow "$1" | jq 'map(.octetTotalCount) | max // 0'
}

# _news N MIN: out.N has correlated records of the connection with two
# different octetTotalCounts above MIN (the first export and a later one:
# the connection goes on in this aggregator), and the stream still runs.
_news() {
    fv_alive snd
    [[ $(flow "$1" | jq --argjson m "$2" 'map(select(.octetTotalCount > $m
        and .sourcePodName != "" and .destinationPodName != "") | .octetTotalCount)
        | unique | length') -ge 2 ]]
}

# tls_material: the generated files and the start of their sha256.
tls_material() {
    (cd "$TLS_DIR" && sha256sum ca.crt ca.key server.crt server.key client.crt client.key) |
        awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $2, substr($1, 1, 12) }'
}

agg_start agg1
tls_agent=()
if [[ $TRANSPORT == tls ]]; then
    tls_agent=("tls:" "  caCert: $TLS_DIR/ca.crt" "  clientCert: $TLS_DIR/client.crt"
        "  clientKey: $TLS_DIR/client.key")
    tls_sums=$(tls_material)
fi

FVA_ACTIVE=2s
for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    fva_agent_config "$FV_TMP/agent$n.yaml" "node-$n" "$ADDR:$TRANSPORT" "inventory:" \
        "  file: $FVC_INVENTORY" "${tls_agent[@]}"
    fva_agent_start "agent$n" "${!ns}" "$FV_TMP/agent$n.yaml"
done

# --- the long connection ---------------------------------------------------------------

fv_bg srv "$FVC_POD_2_2_NETNS" python3 "$PEERS" stream-serve "$DST_IP" $DPORT 60
fv_wait_for 10 "the stream server to listen" _fv_server_ready srv
fv_bg snd "$FVC_POD_1_1_NETNS" python3 "$PEERS" stream-send "$SRC_IP" $SPORT "$DST_IP" $DPORT \
    $RATE $DURATION
fv_wait_for 10 "the stream to connect" grep -qs connected "$FV_TMP/snd.out"
stream_start=$SECONDS

# --- 1. aggregator #1, then SIGKILL ---------------------------------------------------------

fv_wait_for 15 "aggregator #1 to export the connection, correlated" _news 1 0
fv_assert_eq "" "$(_both_connected agg1 || echo no)" "both nodes connected to aggregator #1"
max1=$(max_octets 1)
fv_log "aggregator #1: octetTotalCount $max1 after $((SECONDS - stream_start)) s; SIGKILL"
fv_stop agg1 KILL 5
sleep 3

# --- 2. aggregator #2, then SIGTERM ----------------------------------------------------------

agg_start agg2
fv_wait_for 15 "both agents to connect to aggregator #2" _both_connected agg2
fv_wait_for 15 "aggregator #2 to export the connection with news" _news 2 "$max1"
fv_log "aggregator #2: octetTotalCount $(max_octets 2) after $((SECONDS - stream_start)) s"
fv_assert_ge 1 "$(agg_metric flowvis_aggregator_records_received_total)" \
    "aggregator #2: records received (decoded: the templates came again)"
fv_stop agg2 TERM 10
fv_assert_eq 0 "$FV_STATUS" "aggregator #2: exit status after SIGTERM"
stopped2=$(grep 'stopped received=' "$FV_TMP/agg2.err" | tail -n 1)
fv_log "aggregator #2: $stopped2; SIGTERM"
fv_assert_ge 1 "$(grep -oE 'received=[0-9]+' <<<"$stopped2" | cut -d= -f2)" \
    "aggregator #2: records received by its stop"
max2=$(max_octets 2)
sleep 3

# --- 3. aggregator #3, until the connection ends ------------------------------------------------

agg_start agg3
fv_wait_for 15 "both agents to connect to aggregator #3" _both_connected agg3
fv_wait_for 15 "aggregator #3 to export the connection with news" _news 3 "$max2"
fv_log "aggregator #3: octetTotalCount $(max_octets 3) after $((SECONDS - stream_start)) s"

fv_wait_exit snd $((DURATION + 15))
fv_assert_eq 0 "$FV_STATUS" "stream sender exit status"
fv_wait_exit srv 15
fv_assert_eq 0 "$FV_STATUS" "stream server exit status"
SENT=$(sed -n 's/^sent //p' "$FV_TMP/snd.out")
fv_assert_eq $((RATE * DURATION)) "$SENT" "bytes the sender sent"
fv_assert_eq "$SENT" "$(sed -n 's/^received //p' "$FV_TMP/srv.out")" "bytes the server received"

declare -A ct=()
for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    fva_ct_wait "${!ns}" TIME_WAIT -p tcp -s "$SRC_IP" --sport $SPORT
    ct[$n]=$(fva_ct_counters "$FVA_CT")
    fv_log "node-$n kernel: $FVA_CT"
done
fv_assert_eq "${ct[1]}" "${ct[2]}" "conntrack counters of node-1 and node-2 agree"

_ended() {
    [[ $(flow 3 | jq 'map(select(.flowEndReason == 3)) | length') -gt 0 ]]
}
fv_wait_for 15 "aggregator #3 to export the end of the connection" _ended
sleep 2.5 # a poll or two more: the last record must stay the last

# --- checks -----------------------------------------------------------------------------------

final=$(flow 3 | jq -c '.[-1]')
fv_log "last record: $final"
fva_assert_fields "last record" "$final" flowEndReason=3 tcpState=TIME_WAIT flowType=2 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace="$FVC_POD_1_1_NAMESPACE" \
    sourceNodeName=node-1 destinationPodName="$FVC_POD_2_2_NAME" \
    destinationPodNamespace="$FVC_POD_2_2_NAMESPACE" destinationNodeName=node-2
fv_assert_eq "${ct[1]}" "$(jq -r '[.packetTotalCount, .octetTotalCount, .reversePacketTotalCount,
    .reverseOctetTotalCount] | map(tostring) | join(" ")' <<<"$final")" \
    "last record: totals (packets octets rpackets roctets) = conntrack's"
read -r pkts octets _ _ <<<"${ct[1]}"
fva_assert_octets "client->server octets (payload $SENT)" "$SENT" "$pkts" "$octets"

for n in 1 2 3; do
    fv_assert_eq "$(flow $n | jq -r '.[-1] | [.packetTotalCount, .octetTotalCount,
        .reversePacketTotalCount, .reverseOctetTotalCount] | map(tostring) | join(" ")')" \
        "$(flow $n | jq -r '(.[0] | [.packetTotalCount - .packetDeltaCount,
            .octetTotalCount - .octetDeltaCount, .reversePacketTotalCount - .reversePacketDeltaCount,
            .reverseOctetTotalCount - .reverseOctetDeltaCount]) as $before
            | map([.packetDeltaCount, .octetDeltaCount, .reversePacketDeltaCount,
            .reverseOctetDeltaCount]) | transpose | map(add // 0)
            | [range(4) as $i | .[$i] + $before[$i]] | map(tostring) | join(" ")')" \
        "aggregator #$n: counted before its first export + sum of its deltas = last totals"
done
fv_assert_eq "0 0" "$(flow 1 | jq -r '.[0] | [.packetTotalCount - .packetDeltaCount,
    .octetTotalCount - .octetDeltaCount] | map(tostring) | join(" ")')" \
    "aggregator #1 saw the connection from its start: first delta = first total"
all=$(for n in 1 2 3; do flow $n | jq -r '.[].octetTotalCount'; done | xargs)
fv_log "octetTotalCount over #1, #2, #3: $all"
fv_assert_eq "" "$(tr ' ' '\n' <<<"$all" | awk 'NR > 1 && $1 < prev { print prev " then " $1 } { prev = $1 }' |
    xargs)" "octetTotalCount going down across the restarts"

for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    metrics=$(fva_metrics "${!ns}") || fv_fatal "no metrics from agent$n"
    m() { awk -v n="$1" '$1 == n { print $2 }' <<<"$metrics"; }
    fv_assert_ge 2 "$(m flowvis_agent_reconnections_total)" "agent$n: flowvis_agent_reconnections_total"
    fv_assert_eq 1 "$(m flowvis_agent_collector_connected)" "agent$n: flowvis_agent_collector_connected"
    fv_alive "agent$n"
done
if [[ $TRANSPORT == tls ]]; then
    fv_assert_eq "$tls_sums" "$(tls_material)" "generated TLS material after two restarts"
fi
fv_assert_eq 2 "$(agg_metric flowvis_aggregator_exporters_connected)" "aggregator #3: exporters connected"
fv_assert_eq 0 "$(agg_metric flowvis_aggregator_messages_malformed_total)" \
    "aggregator #3: malformed messages"
fv_assert_eq 0 "$(grep -c 'malformed' "$FV_TMP/agg2.err" "$FV_TMP/agg3.err" | awk -F: '{ s += $2 } END { print s }')" \
    "'malformed' warnings in the logs of aggregators #2 and #3"
fv_stop agg3 TERM 10
fv_assert_eq 0 "$FV_STATUS" "aggregator #3: exit status after SIGTERM"
fv_log "aggregator #3: $(grep 'stopped received=' "$FV_TMP/agg3.err" | tail -n 1)"
