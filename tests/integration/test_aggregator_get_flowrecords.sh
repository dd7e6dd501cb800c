#!/usr/bin/env bash
# The aggregator's HTTP API and `flowvis get` against a live aggregator fed
# by agents (the reference's e2e check of `antctl get flowrecords` in the
# flow aggregator Pod), in the namespace cluster.
#
# Three nodes, an agent on each, over TLS to the aggregator in the fabric
# (API on 127.0.0.1:10348 of the fabric namespace). Three long-lived
# connections that send 200 bytes every 0.25 s:
#   A  pod 1_1 :42100 -> pod 2_2 :8080   (inter-node)
#   B  pod 1_1 :42101 -> pod 2_2 :8080   (same source address, other port)
#   C  pod 3_1 :42100 -> pod 1_2 :8080   (same source port, other address)
# While they are open:
#   - `get flowrecords -o json --srcip A --srcport 42100` prints exactly A
#     (count 1; addresses, ports, protocol, both Pods, correlated); with
#     all five filters (exact lookup) the same; --srcport 42100 alone gives
#     A and C, --srcip alone A and B;
#   - the table has the header SRC_IP DST_IP SPORT DPORT PROTO SRC_POD
#     DST_POD SRC_NS DST_NS SERVICE and A's row; -o yaml names A's port;
#   - `get recordmetrics -o json`: numRecordsReceived > 0,
#     numConnToCollector = 3 (the agents); the table has its header;
#   - /metrics serves flowvis_aggregator_records_received_total;
#     /healthz and /readyz answer 200; the API listens on loopback only;
#   - bad filters (--srcport 70000, --srcip 10.0.0.300, --proto bogus) exit 2
#     before any request; the API itself answers 400 to srcport=70000; an
#     unreachable server exits 1.
# After the connections close and everything is exported, the aggregator
# has received exactly the records the agents say they sent.
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

fv_cluster_up --nodes 3 --pods-per-node 3
fvg_stack_up
A_SRC=$FVC_POD_1_1_IP4 A_DST=$FVC_POD_2_2_IP4 C_SRC=$FVC_POD_3_1_IP4

fvg_trickle_server ts22 "$FVC_POD_2_2_NETNS" 0.0.0.0 8080
fvg_trickle_server ts12 "$FVC_POD_1_2_NETNS" 0.0.0.0 8080
fvg_trickle A "$FVC_POD_1_1_NETNS" "$A_SRC" 42100 "$A_DST" 8080
fvg_trickle B "$FVC_POD_1_1_NETNS" "$A_SRC" 42101 "$A_DST" 8080
fvg_trickle C "$FVC_POD_3_1_NETNS" "$C_SRC" 42100 "$FVC_POD_1_2_IP4" 8080

# A is in memory and complete (both halves) once the aggregator exported it
# with both Pods.
fvg_wait_flow 15 "$FVG_SINK" 42100 '.sourcePodName != "" and .destinationPodName != ""
    and .octetTotalCountFromSourceNode > 0 and .octetTotalCountFromDestinationNode > 0' 8080

# get_json WHAT ARGS...: `flowvis get flowrecords -o json ARGS`; must exit 0
# and print a JSON array; sets out.
get_json() {
    local what=$1 rc=0
    shift
    out=$(fvg_get flowrecords -o json "$@") || rc=$?
    if [[ $rc -ne 0 ]] || ! jq -e 'type == "array"' <<<"$out" >/dev/null 2>&1; then
        fv_fail "$what: flowvis get flowrecords -o json $* exited $rc:" \
            "$(head -c 300 <<<"$out") $(cat "$FV_TMP/get.err")"
        out='[]'
    fi
}

# --- flowrecords, JSON -------------------------------------------------------------------
get_json "srcip+srcport" --srcip "$A_SRC" --srcport 42100
fv_assert_eq 1 "$(jq length <<<"$out")" "records for --srcip $A_SRC --srcport 42100"
rec=$(jq -c '.[0] // {}' <<<"$out")
fv_log "A in memory: $rec"
fvg_assert_fields "A (flowrecords)" "$rec" \
    sourceIPv4Address="$A_SRC" destinationIPv4Address="$A_DST" sourceTransportPort=42100 \
    destinationTransportPort=8080 protocolIdentifier=6 sourcePodName="$FVC_POD_1_1_NAME" \
    sourcePodNamespace=shop sourceNodeName=node-1 destinationPodName="$FVC_POD_2_2_NAME" \
    destinationPodNamespace=shop destinationNodeName=node-2 flowType=2 tcpState=ESTABLISHED
fvg_assert_nonzero "A (flowrecords)" "$rec" octetTotalCountFromSourceNode \
    octetTotalCountFromDestinationNode

get_json "five filters" --srcip "$A_SRC" --dstip "$A_DST" --proto tcp --srcport 42100 --dstport 8080
fv_assert_eq "1 $A_SRC 42100 $A_DST 8080" \
    "$(jq -r '"\(length) \(.[0].sourceIPv4Address) \(.[0].sourceTransportPort) \(.[0].destinationIPv4Address) \(.[0].destinationTransportPort)"' <<<"$out")" \
    "exact lookup with all five filters"

get_json "srcport only" --srcport 42100
fv_assert_eq "$A_SRC $C_SRC" "$(jq -r 'map(.sourceIPv4Address) | sort | join(" ")' <<<"$out")" \
    "sources of the records with --srcport 42100"
get_json "srcip only" --srcip "$A_SRC" --proto tcp
fv_assert_eq "42100 42101" "$(jq -r 'map(.sourceTransportPort) | sort | map(tostring) | join(" ")' \
    <<<"$out")" "source ports of the records with --srcip $A_SRC --proto tcp"
get_json "no match" --srcip "$A_SRC" --srcport 42100 --dstport 9999
fv_assert_eq 0 "$(jq length <<<"$out")" "records for a dstport nothing uses"

# --- flowrecords, table and YAML ---------------------------------------------------------
table=$(fvg_get flowrecords --srcip "$A_SRC" --srcport 42100) || fv_fail "table output: $(cat "$FV_TMP/get.err")"
fv_log "table:"$'\n'"$table"
fv_assert_eq "SRC_IP DST_IP SPORT DPORT PROTO SRC_POD DST_POD SRC_NS DST_NS SERVICE" \
    "$(head -n 1 <<<"$table" | xargs)" "table header"
fv_assert_eq "$A_SRC $A_DST 42100 8080 TCP $FVC_POD_1_1_NAME $FVC_POD_2_2_NAME shop shop" \
    "$(sed -n 2p <<<"$table" | xargs)" "table row of A"
fv_assert_eq 2 "$(wc -l <<<"$table")" "table lines (header + A)"
yaml=$(fvg_get flowrecords -o yaml --srcip "$A_SRC" --srcport 42100) || fv_fail "yaml output failed"
grep -Eq '^[ -]*sourceTransportPort: *42100$' <<<"$yaml" ||
    fv_fail "-o yaml has no 'sourceTransportPort: 42100': $(head -c 300 <<<"$yaml")"

# --- recordmetrics ---------------------------------------------------------------------------
m=$(fvg_get recordmetrics -o json) || fv_fail "recordmetrics -o json: $(cat "$FV_TMP/get.err")"
fv_log "recordmetrics: $m"
fvg_assert_nonzero "recordmetrics" "$m" numRecordsReceived numRecordsExported numFlows
fv_assert_eq 3 "$(fva_field "$m" numConnToCollector)" "recordmetrics: numConnToCollector (agents)"
fv_assert_eq 0 "$(fva_field "$m" numRecordsDropped)" "recordmetrics: numRecordsDropped"
mt=$(fvg_get recordmetrics) || fv_fail "recordmetrics table: $(cat "$FV_TMP/get.err")"
fv_assert_eq "RECORDS-EXPORTED RECORDS-RECEIVED RECORDS-DROPPED FLOWS EXPORTERS-CONNECTED" \
    "$(head -n 1 <<<"$mt" | xargs)" "recordmetrics table header"
fv_assert_eq 3 "$(sed -n 2p <<<"$mt" | awk '{print $5}')" "recordmetrics table: EXPORTERS-CONNECTED"

# --- /metrics, /healthz, /readyz, bind address ---------------------------------------------
fvg_assert_nonzero "/metrics" \
    "{\"received\": $(fvg_metric flowvis_aggregator_records_received_total || echo null)}" received
fv_assert_eq 3 "$(fvg_metric flowvis_aggregator_exporters_connected)" "/metrics: exporters connected"
# Read the whole body first: `grep -q` in a pipe exits at the first match,
# and under pipefail the writer's SIGPIPE would fail the check.
metrics_body=$(fvg_api /metrics)
grep -q '^# TYPE flowvis_aggregator_records_received_total counter$' <<<"$metrics_body" ||
    fv_fail "/metrics: no '# TYPE flowvis_aggregator_records_received_total counter'"
fv_assert_eq 200 "$(fvg_http_code /healthz)" "/healthz status"
fv_assert_eq 200 "$(fvg_http_code /readyz)" "/readyz status"
fv_assert_eq 404 "$(fvg_http_code /no-such-path)" "unknown path status"
fv_assert_eq 400 "$(fvg_http_code '/flowrecords?srcport=70000')" "API: srcport=70000 status"
fv_assert_eq "127.0.0.1:$FVG_API_PORT" \
    "$(ip netns exec "$FVC_FABRIC_NETNS" ss -Hltn "sport = :$FVG_API_PORT" | awk '{print $4}' | xargs)" \
    "API listening sockets (loopback only)"

# --- bad arguments and an unreachable server ----------------------------------------------
bad_args() { # EXPECTED_RC WHAT ARGS...
    local want=$1 what=$2 rc=0
    shift 2
    fvg_get "$@" >/dev/null || rc=$?
    fv_assert_eq "$want" "$rc" "exit status of get $what"
    [[ -s $FV_TMP/get.err ]] || fv_fail "get $what: nothing on stderr"
}
bad_args 2 "--srcport 70000" flowrecords --srcport 70000
grep -q srcport "$FV_TMP/get.err" || fv_fail "--srcport 70000: message does not name srcport: $(cat "$FV_TMP/get.err")"
bad_args 2 "--srcip 10.0.0.300" flowrecords --srcip 10.0.0.300
bad_args 2 "--proto bogus" flowrecords --proto bogus
bad_args 2 "-o xml" flowrecords -o xml
rc=0
ip netns exec "$FVC_FABRIC_NETNS" "$FLOWVIS" get recordmetrics --timeout 3 \
    --server "http://127.0.0.1:$((FVG_API_PORT + 1))" >/dev/null 2>"$FV_TMP/get.err" || rc=$?
fv_assert_eq 1 "$rc" "exit status of get against a closed port"

# --- everything the agents sent was received ---------------------------------------------
for t in A B C; do fvg_trickle_stop "$t"; done
for p in 42100 42101; do
    fvg_wait_flow 15 "$FVG_SINK" "$p" '.flowEndReason == 3 and .octetTotalCountFromSourceNode > 0
        and .octetTotalCountFromSourceNode == .octetTotalCountFromDestinationNode' 8080
done
fvg_wait_quiet "$FVG_SINK" 3 30
sent=0
for n in 1 2 3; do
    ns=FVC_NODE_${n}_NETNS
    v=$(fva_metric "${!ns}" flowvis_agent_records_exported_total)
    sent=$((sent + ${v:-0}))
done
fv_assert_eq "$sent" "$(fvg_metric flowvis_aggregator_records_received_total)" \
    "records received by the aggregator = sum of the agents' records exported"
# Flows leave memory after the inactive timeout once they ended.
no_flows() { [[ $(fvg_get recordmetrics -o json | jq .numFlows) == 0 ]]; }
fv_wait_for 15 "the aggregator's flow table to empty" no_flows
get_json "after the end" --srcip "$A_SRC" --srcport 42100
fv_assert_eq 0 "$(jq length <<<"$out")" "records of A once it ended and expired"
fv_alive agg
