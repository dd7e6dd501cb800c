# shellcheck shell=bash
# agent_lib.sh - helpers for the `flowvis agent` tests (test_agent_*.sh).
#
# Source it after tests/integration/lib.sh (and tests/cluster/lib.sh when
# the test uses the namespace cluster):
#
#     source "$FV_HELPERS/agent_lib.sh"
#     fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
#     fva_agent_config "$FV_TMP/a1.yaml" node-1 172.18.0.1:4739:tcp \
#         "inventory:" "  file: $FVC_INVENTORY"
#     fva_agent_start agent1 "$FVC_NODE_1_NETNS" "$FV_TMP/a1.yaml"
#     fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 1000 2000
#     fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41001 "$FVC_POD_1_2_IP4" 8080 1000 2000
#     fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -p tcp --sport 41001   # sets FVA_CT
#     fva_wait_flow 10 "$FV_TMP/coll.out" "$(fva_domain node-1)" 41001 '.flowEndReason == 3'
#     final=$(fva_final "$FV_TMP/coll.out" "$(fva_domain node-1)" 41001)
#     fv_assert_eq 3 "$(jq .flowEndReason <<<"$final")" "flowEndReason"
#
# Records are the collector's JSON lines; a "flow" is every record of one
# exporter (observation domain) whose sourceTransportPort is the given
# port (the tests give each connection its own client port).

FVA_PEER=$FV_HELPERS/flowpeer.py
FVA_METRICS_PORT=9101

# fva_domain NODE_NAME: the agent's observation domain id, the 32-bit FNV-1
# hash of the node name, computed here independently of the agent.
fva_domain() {
    python3 -c 'import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h * 16777619) & 0xFFFFFFFF) ^ b
print(h)' "$1"
}

# fva_collector_start NAME NS HOST:PORT: a TCP `flowvis collector`, JSON
# lines in $FV_TMP/NAME.out.
fva_collector_start() {
    fv_collector_start "$1" "$2" "$3" tcp
}

# fva_agent_config FILE NODE COLLECTOR [YAML_LINE...]: write an agent config
# with a 1 s poll, 30 s active and 15 s idle timeouts (a YAML_LINE may set
# them again: later lines are appended, so give only keys not set here, or
# set FVA_POLL/FVA_ACTIVE/FVA_IDLE), metrics on 127.0.0.1:9101 of the
# agent's namespace and log level info.
fva_agent_config() {
    local file=$1 node=$2 coll=$3 line
    shift 3
    {
        echo "nodeName: $node"
        echo "flowCollectorAddr: $coll"
        echo "flowPollInterval: ${FVA_POLL:-1s}"
        echo "activeFlowExportTimeout: ${FVA_ACTIVE:-30s}"
        echo "idleFlowExportTimeout: ${FVA_IDLE:-15s}"
        echo "metricsAddress: 127.0.0.1:$FVA_METRICS_PORT"
        for line in "$@"; do
            echo "$line"
        done
    } >"$file"
}

# fva_agent_start NAME NS CONFIG: start the agent and return once it is
# connected to its collector and has completed a first conntrack poll.
fva_agent_start() {
    local name=$1 ns=$2 cfg=$3
    fv_bg "$name" "$ns" "$FLOWVIS" agent --config "$cfg"
    fv_wait_for 10 "$name to connect to its collector" _fva_agent_connected "$name"
    fv_wait_for 10 "$name to complete a conntrack poll" _fva_polled "$name" "$ns"
}

_fva_agent_connected() {
    fv_alive "$1"
    grep -qs 'collector connected' "$FV_TMP/$1.err"
}

_fva_polled() {
    fv_alive "$1"
    [[ $(fva_metric "$2" flowvis_agent_polls_total) -ge 1 ]]
}

# fva_metrics NS: the agent's Prometheus text (metrics on 127.0.0.1:9101).
fva_metrics() {
    ip netns exec "$1" curl -sf --max-time 3 "http://127.0.0.1:$FVA_METRICS_PORT/metrics"
}

# fva_metric NS NAME: one metric's value ("" when missing).
fva_metric() {
    fva_metrics "$1" | awk -v n="$2" '$1 == n { print $2 }'
}

# fva_tcp_server NAME NS IP PORT REQUEST REPLY [LIFETIME_S]: a flowpeer.py TCP
# server; returns once it listens.
fva_tcp_server() {
    local name=$1 ns=$2
    fv_bg "$name" "$ns" python3 "$FVA_PEER" tcp-serve "$3" "$4" "$5" "$6" "${7:-50}"
    fv_wait_for 10 "$name to listen" _fv_server_ready "$name"
}

# fva_udp_server NAME NS IP PORT REPLY [LIFETIME_S]
fva_udp_server() {
    local name=$1 ns=$2
    fv_bg "$name" "$ns" python3 "$FVA_PEER" udp-serve "$3" "$4" "$5" "${6:-50}"
    fv_wait_for 10 "$name to bind" _fv_server_ready "$name"
}

# fva_tcp_call NS SRC_IP SRC_PORT DST_IP DST_PORT SEND REPLY [rst]: one
# connection; fails the test if a byte went astray.
fva_tcp_call() {
    local ns=$1
    shift
    ip netns exec "$ns" python3 "$FVA_PEER" tcp-call "$@" >/dev/null 2>"$FV_TMP/call.err" ||
        fv_fatal "tcp-call $* from $ns failed: $(cat "$FV_TMP/call.err")"
}

# fva_udp_call NS SRC_IP SRC_PORT DST_IP DST_PORT COUNT SIZE REPLY
fva_udp_call() {
    local ns=$1
    shift
    ip netns exec "$ns" python3 "$FVA_PEER" udp-call "$@" >/dev/null 2>"$FV_TMP/call.err" ||
        fv_fatal "udp-call $* from $ns failed: $(cat "$FV_TMP/call.err")"
}

# fva_ct_wait NS STATE CONNTRACK_FILTER...: wait (10 s) until the node's
# conntrack entry that matches is in STATE (e.g. TIME_WAIT) and set
# FVA_CT to it. (Not a $(...) function: a failure must end the test.) The
# filter is conntrack -L syntax: the protocol (-p tcp) before ports.
fva_ct_wait() {
    local ns=$1 state=$2 i line
    shift 2
    FVA_CT=""
    for ((i = 0; i < 100; i++)); do
        line=$(ip netns exec "$ns" conntrack -L "$@" 2>/dev/null | head -n 1)
        if [[ $line == *" $state "* ]]; then
            # shellcheck disable=SC2034 # for the tests
            FVA_CT=$line
            return 0
        fi
        sleep 0.1
    done
    fv_fatal "no $state conntrack entry in $ns for: $* (last: ${line:-none})"
}

# fva_ct_counters LINE: "packets bytes reverse_packets reverse_bytes" of a
# conntrack -L line.
fva_ct_counters() {
    echo "$(fv_ct_field "$1" packets 1) $(fv_ct_field "$1" bytes 1)" \
        "$(fv_ct_field "$1" packets 2) $(fv_ct_field "$1" bytes 2)"
}

# fva_flow FILE DOMAIN SPORT: the records of one flow, as a JSON array of
# their "ipfix" objects plus templateId and exporterAddress, in order.
fva_flow() {
    jq -R -s -c --argjson d "$2" --argjson p "$3" '
        [split("\n")[] | fromjson? | select(.observationDomainId == $d
            and .ipfix.sourceTransportPort == $p)
         | .ipfix + {templateId, exporterAddress}]' "$1"
}

# fva_count FILE DOMAIN SPORT: how many records the flow has.
fva_count() {
    fva_flow "$@" | jq length
}

# fva_final FILE DOMAIN SPORT: the flow's last record (JSON), "null" if none.
fva_final() {
    fva_flow "$@" | jq -c '.[-1]'
}

# fva_sums FILE DOMAIN SPORT: the flow's correlated counters, "packets
# octets reverse_packets reverse_octets": the sum of every delta, which
# must equal the totals of the last record (fva_totals).
fva_sums() {
    fva_flow "$@" | jq -r 'map([.packetDeltaCount, .octetDeltaCount, .reversePacketDeltaCount,
        .reverseOctetDeltaCount]) | transpose | map(add // 0) | map(tostring) | join(" ")'
}

# fva_totals FILE DOMAIN SPORT: the totals of the flow's last record.
fva_totals() {
    fva_final "$@" | jq -r '[.packetTotalCount, .octetTotalCount, .reversePacketTotalCount,
        .reverseOctetTotalCount] | map(tostring) | join(" ")'
}

# fva_wait_flow TIMEOUT_S FILE DOMAIN SPORT [JQ_CONDITION]: wait until the
# flow has a record for which the condition holds (default: any record).
fva_wait_flow() {
    local timeout=$1 file=$2 d=$3 p=$4 cond=${5:-true} i
    for ((i = 0; i < timeout * 10; i++)); do
        if [[ $(fva_flow "$file" "$d" "$p" | jq "map(select($cond)) | length") -gt 0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    fv_fatal "timed out after ${timeout}s waiting for a record of domain $d sport $p" \
        "with $cond in $(basename "$file") ($(fva_count "$file" "$d" "$p") records of that flow)"
}

# fva_field JSON FIELD: one field of a record, raw (strings without quotes).
fva_field() {
    jq -r --arg f "$2" '.[$f] | if . == null then "(missing)" else . end' <<<"$1"
}

# fva_assert_fields WHAT JSON FIELD=VALUE...: each field of the record has
# exactly the value (compared as jq -r prints it).
fva_assert_fields() {
    local what=$1 rec=$2 kv
    shift 2
    for kv in "$@"; do
        fv_assert_eq "${kv#*=}" "$(fva_field "$rec" "${kv%%=*}")" "$what: ${kv%%=*}"
    done
}

# fva_assert_octets WHAT PAYLOAD PACKETS OCTETS: the octets of one direction
# of a TCP flow are its payload plus 40..60 header bytes per packet (IP and
# TCP headers with options), IPv4; add 20 per packet for IPv6 (FVA_V6=1).
fva_assert_octets() {
    local what=$1 payload=$2 pkts=$3 octets=$4 extra=0
    [[ ${FVA_V6:-0} == 1 ]] && extra=20
    fv_assert_between $((payload + (40 + extra) * pkts)) $((payload + (60 + extra) * pkts)) \
        "$octets" "$what"
}
