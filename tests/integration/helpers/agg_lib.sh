# shellcheck shell=bash
# agg_lib.sh - helpers for the `flowvis aggregator` end-to-end tests
# (test_aggregator_*.sh), the counterpart of Antrea's flow aggregator e2e
# suite: agents on every node -> aggregator (mutual TLS) -> JSON collector.
#
# Source it after tests/integration/lib.sh, tests/cluster/lib.sh and
# helpers/agent_lib.sh:
#
#     fv_cluster_up --nodes 2 --pods-per-node 3
#     fvg_stack_up                  # sink + aggregator in the fabric, agents on every node
#     ... traffic ...
#     fvg_wait_flow 20 "$FVG_SINK" 41001 '.flowEndReason == 3'
#     final=$(fvg_final "$FVG_SINK" 41001)
#
# or piece by piece: fvg_sink_start, fvg_agg_config, fvg_agg_start,
# fvg_agents_start. Everything runs in the cluster's namespaces:
#   fabric  json_sink.py on 127.0.0.1:$FVG_SINK_PORT (lines in $FVG_SINK),
#           the aggregator on 172.18.0.1:4739 over TLS, its API on
#           127.0.0.1:$FVG_API_PORT, generated TLS material in $FVG_TLS_DIR;
#   node-i  `flowvis agent` with nodeName node-i, the cluster inventory,
#           flowCollectorAddr 172.18.0.1:4739:tls and the aggregator's
#           ca.crt / client.crt / client.key.
# Every process is started with fv_bg (stopped at exit, before the cluster
# goes down) and every wait is bounded.
#
# Records are the sink's JSON lines, {"@timestamp":...,"ipfix":{...}}; a
# "flow" is every record whose sourceTransportPort is the given port (the
# tests give each connection its own client port), optionally narrowed by
# destinationTransportPort.

FVG_AGG_IP=172.18.0.1
FVG_AGG_PORT=4739
FVG_API_PORT=10348
FVG_SINK_PORT=4740
# Short timeouts, as the reference's e2e suite uses: records come out a
# few seconds after the agents send them.
FVG_ACTIVE=${FVG_ACTIVE:-2s}
FVG_INACTIVE=${FVG_INACTIVE:-4s}

# fvg_sink_start NAME NS PORT: a json_sink.py on 127.0.0.1:PORT of NS,
# lines in $FV_TMP/NAME.jsonl; returns once it listens.
fvg_sink_start() {
    local name=$1 ns=$2 port=$3
    : >"$FV_TMP/$name.jsonl"
    fv_bg "$name" "$ns" python3 "$FV_HELPERS/json_sink.py" 127.0.0.1 "$port" \
        "$FV_TMP/$name.jsonl" 600
    fv_wait_for 10 "$name to listen on tcp $port" _fv_server_ready "$name"
}

# fvg_agg_config FILE [YAML_LINE...]: an aggregator config: TLS (generated
# CA, server and client certificates, SAN 172.18.0.1) on 172.18.0.1:4739,
# active $FVG_ACTIVE and inactive $FVG_INACTIVE, JSON lines to the sink,
# the API on 127.0.0.1:$FVG_API_PORT, one worker per CPU, log level info.
# YAML_LINEs are appended (top-level keys not set here, e.g.
# "correlationWait: 10s" or "inventory:" "  file: ...").
fvg_agg_config() {
    local file=$1 line
    shift
    FVG_TLS_DIR=$FV_TMP/tls
    {
        echo "listenAddress: $FVG_AGG_IP:$FVG_AGG_PORT"
        echo "aggregatorTransportProtocol: tls"
        echo "flowAggregatorAddress: $FVG_AGG_IP"
        echo "activeFlowRecordTimeout: $FVG_ACTIVE"
        echo "inactiveFlowRecordTimeout: $FVG_INACTIVE"
        echo "tls:"
        echo "  generate: true"
        echo "  dir: $FVG_TLS_DIR"
        echo "sqlite:"
        echo "  path: $FV_TMP/flows.db"
        echo "apiServer:"
        echo "  apiPort: $FVG_API_PORT"
        echo "  bindAddress: 127.0.0.1"
        echo "flowCollector:"
        echo "  enable: true"
        echo "  address: 127.0.0.1:$FVG_SINK_PORT:tcp"
        echo "  recordFormat: JSON"
        echo "logLevel: info"
        for line in "$@"; do
            echo "$line"
        done
    } >"$file"
}

# fvg_agg_start NAME NS CONFIG: start the aggregator and return once it
# runs, listens on 4739, answers /readyz and has written its TLS material.
fvg_agg_start() {
    local name=$1 ns=$2 cfg=$3 f
    fv_bg "$name" "$ns" "$FLOWVIS" aggregator --config "$cfg"
    FVG_AGG_NS=$ns
    fv_wait_for 15 "$name to run" _fvg_agg_running "$name"
    fv_wait_port "$ns" tcp "$FVG_AGG_PORT" 10
    fv_wait_for 10 "$name to answer /readyz" fvg_http_code_is 200 /readyz
    for f in ca.crt client.crt client.key; do
        [[ -s $FVG_TLS_DIR/$f ]] || fv_fatal "$name did not write $FVG_TLS_DIR/$f"
    done
}

_fvg_agg_running() {
    fv_alive "$1"
    grep -qs 'aggregator running' "$FV_TMP/$1.err"
}

# fvg_agent_tls_lines: the YAML of an agent's mutual TLS towards the
# aggregator, printed one line each (read them into an array for
# fva_agent_config).
fvg_agent_tls_lines() {
    printf '%s\n' "tls:" "  caCert: $FVG_TLS_DIR/ca.crt" "  clientCert: $FVG_TLS_DIR/client.crt" \
        "  clientKey: $FVG_TLS_DIR/client.key"
}

# fvg_agents_start [NODES]: an agent on node-1..NODES (default every node),
# named agent<i>, exporting over TLS to the aggregator; returns once each
# is connected and has polled. Agent timeouts: FVA_POLL (1s), FVA_ACTIVE
# (default here 2s), FVA_IDLE (default here 2s). FVG_AGENT_LINES (an
# array, optional) holds more YAML lines for every agent's config.
# shellcheck disable=SC2120 # NODES is optional
fvg_agents_start() {
    local n=${1:-$FVC_NODES} i ns tls
    mapfile -t tls < <(fvg_agent_tls_lines)
    tls+=("${FVG_AGENT_LINES[@]}")
    for ((i = 1; i <= n; i++)); do
        ns=FVC_NODE_${i}_NETNS
        FVA_ACTIVE=${FVA_ACTIVE:-2s} FVA_IDLE=${FVA_IDLE:-2s} \
            fva_agent_config "$FV_TMP/agent$i.yaml" "node-$i" "$FVG_AGG_IP:$FVG_AGG_PORT:tls" \
            "inventory:" "  file: $FVC_INVENTORY" "${tls[@]}"
        fva_agent_start "agent$i" "${!ns}" "$FV_TMP/agent$i.yaml"
    done
    # Every agent's session must be up at the aggregator, too.
    fv_wait_for 10 "the aggregator to count $n exporters" _fvg_exporters_are "$n"
}

_fvg_exporters_are() {
    [[ $(fvg_metric flowvis_aggregator_exporters_connected) == "$1" ]]
}

# fvg_stack_up [YAML_LINE...]: sink "sink" ($FVG_SINK), aggregator "agg"
# (config $FV_TMP/agg.yaml with the extra lines) in the fabric, agents on
# every node.
# shellcheck disable=SC2120 # the YAML lines are optional
fvg_stack_up() {
    # shellcheck disable=SC2034 # for the tests
    FVG_SINK=$FV_TMP/sink.jsonl
    fvg_sink_start sink "$FVC_FABRIC_NETNS" "$FVG_SINK_PORT"
    fvg_agg_config "$FV_TMP/agg.yaml" "$@"
    fvg_agg_start agg "$FVC_FABRIC_NETNS" "$FV_TMP/agg.yaml"
    # shellcheck disable=SC2119 # every node
    fvg_agents_start
    fv_wait_for 10 "the aggregator's JSON output to connect to the sink" \
        grep -q '^conn ' "$FV_TMP/sink.out"
}

# ---------------------------------------------------------------------------
# The aggregator's API, from the fabric namespace
# ---------------------------------------------------------------------------

# fvg_api PATH: GET PATH (with its query) from the API; body on stdout;
# fails (status 22) on an HTTP error.
fvg_api() {
    ip netns exec "$FVG_AGG_NS" curl -sf --max-time 5 "http://127.0.0.1:$FVG_API_PORT$1"
}

# fvg_http_code PATH: the HTTP status code of GET PATH ("000" if no answer).
fvg_http_code() {
    ip netns exec "$FVG_AGG_NS" curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        "http://127.0.0.1:$FVG_API_PORT$1" || true
}

fvg_http_code_is() {
    [[ $(fvg_http_code "$2") == "$1" ]]
}

# fvg_metric NAME: one metric of the aggregator's /metrics ("" if missing).
fvg_metric() {
    fvg_api /metrics | awk -v n="$1" '$1 == n { print $2 }'
}

# fvg_get ARGS...: `flowvis get ARGS --server <the API>` in the fabric;
# stdout is the command's, its stderr goes to $FV_TMP/get.err and its
# exit status is the function's.
fvg_get() {
    ip netns exec "$FVG_AGG_NS" "$FLOWVIS" get "$@" --server "http://127.0.0.1:$FVG_API_PORT" \
        2>"$FV_TMP/get.err"
}

# ---------------------------------------------------------------------------
# Records in the sink
# ---------------------------------------------------------------------------

# fvg_flow FILE SPORT [DPORT]: the records of one flow, in order, as a JSON
# array of their "ipfix" objects (plus "@timestamp").
fvg_flow() {
    jq -R -s -c --argjson p "$2" --argjson dp "${3:-0}" '
        [split("\n")[] | fromjson? | select(.ipfix.sourceTransportPort == $p
            and ($dp == 0 or .ipfix.destinationTransportPort == $dp))
         | .ipfix + {"@timestamp": .["@timestamp"]}]' "$1"
}

# fvg_count FILE SPORT [DPORT]: how many records the flow has.
fvg_count() {
    fvg_flow "$@" | jq length
}

# fvg_final FILE SPORT [DPORT]: the flow's last record, "null" if none.
fvg_final() {
    fvg_flow "$@" | jq -c '.[-1]'
}

# fvg_sums FILE SPORT [DPORT]: the sum of every delta over the flow's
# records, "packets octets reverse_packets reverse_octets"; it must equal
# the totals of the last record (fvg_totals).
fvg_sums() {
    fvg_flow "$@" | jq -r 'map([.packetDeltaCount, .octetDeltaCount, .reversePacketDeltaCount,
        .reverseOctetDeltaCount]) | transpose | map(add // 0) | map(tostring) | join(" ")'
}

# fvg_totals FILE SPORT [DPORT]: the totals of the flow's last record.
fvg_totals() {
    fvg_final "$@" | jq -r '[.packetTotalCount, .octetTotalCount, .reversePacketTotalCount,
        .reverseOctetTotalCount] | map(tostring) | join(" ")'
}

# fvg_wait_flow TIMEOUT_S FILE SPORT [JQ_CONDITION] [DPORT]: wait until the
# flow has a record for which the condition holds (default: any record).
fvg_wait_flow() {
    local timeout=$1 file=$2 p=$3 cond=${4:-true} dp=${5:-0} i
    for ((i = 0; i < timeout * 10; i++)); do
        if [[ $(fvg_flow "$file" "$p" "$dp" | jq "map(select($cond)) | length") -gt 0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    fvg_show_flow "$file" "$p" "$dp"
    fv_fatal "timed out after ${timeout}s waiting for an aggregated record of sport $p" \
        "with $cond in $(basename "$file") ($(fvg_count "$file" "$p" "$dp") records of that flow)"
}

# fvg_wait_quiet FILE SECONDS [TIMEOUT_S]: wait until FILE has not grown for
# SECONDS (the aggregator has nothing more to say); at most TIMEOUT_S (30).
fvg_wait_quiet() {
    local file=$1 quiet=$2 timeout=${3:-30} size prev=-1 still=0 i
    for ((i = 0; i < timeout * 10; i++)); do
        size=$(stat -c %s "$file")
        if [[ $size == "$prev" ]]; then
            still=$((still + 1))
            ((still >= quiet * 10)) && return 0
        else
            still=0
        fi
        prev=$size
        sleep 0.1
    done
    fv_fatal "$(basename "$file") still growing after ${timeout}s"
}

# fvg_show_flow FILE SPORT [DPORT]: the flow's records on stderr (key
# fields only), to explain a failure.
fvg_show_flow() {
    echo "--- aggregated records of sport $2 ---" >&2
    fvg_flow "$@" | jq -c '.[] | {flowType, flowEndReason, tcpState, sourcePodName,
        destinationPodName, sourceNodeName, destinationNodeName, octetTotalCount,
        octetDeltaCount, octetTotalCountFromSourceNode, octetTotalCountFromDestinationNode,
        throughput}' 2>/dev/null | sed 's/^/    /' >&2 || true
}

# fvg_assert_fields WHAT JSON FIELD=VALUE...: exact values (jq -r form).
fvg_assert_fields() {
    fva_assert_fields "$@"
}

# fvg_assert_nonzero WHAT JSON FIELD...: each field is present and > 0.
fvg_assert_nonzero() {
    local what=$1 rec=$2 f v
    shift 2
    for f in "$@"; do
        v=$(fva_field "$rec" "$f")
        if [[ $v =~ ^[0-9]+$ ]] && ((v > 0)); then
            fv_log "ok: $what: $f = $v > 0"
        else
            fv_fail "$what: $f: expected a non-zero number, got '$v'"
        fi
    done
}

# fvg_assert_correlated WHAT FILE SPORT [DPORT]: the flow's records carry
# both nodes' reports: over its records, octetTotalCountFromSourceNode and
# octetTotalCountFromDestinationNode both reach a non-zero value, and the
# last record's per-side totals equal its common totals (every byte passes
# both nodes).
fvg_assert_correlated() {
    local what=$1 file=$2 sp=$3 dp=${4:-0} flow last
    flow=$(fvg_flow "$file" "$sp" "$dp")
    last=$(jq -c '.[-1]' <<<"$flow")
    fvg_assert_nonzero "$what (last record)" "$last" octetTotalCountFromSourceNode \
        octetTotalCountFromDestinationNode packetTotalCountFromSourceNode \
        packetTotalCountFromDestinationNode flowEndSecondsFromSourceNode \
        flowEndSecondsFromDestinationNode
    fv_assert_eq "$(fva_field "$last" octetTotalCount)" \
        "$(fva_field "$last" octetTotalCountFromSourceNode)" \
        "$what: octetTotalCount = octetTotalCountFromSourceNode"
    fv_assert_eq "$(fva_field "$last" octetTotalCount)" \
        "$(fva_field "$last" octetTotalCountFromDestinationNode)" \
        "$what: octetTotalCount = octetTotalCountFromDestinationNode"
    fv_assert_eq "$(fva_field "$last" reverseOctetTotalCount)" \
        "$(fva_field "$last" reverseOctetTotalCountFromDestinationNode)" \
        "$what: reverseOctetTotalCount = reverseOctetTotalCountFromDestinationNode"
}

# ---------------------------------------------------------------------------
# Long-lived connections: a sink server and a client that sends a little
# every so often, so that the connection stays active (and in the
# aggregator's memory) for as long as the test needs it.
# ---------------------------------------------------------------------------

_FVG_TRICKLE_PY='
import socket, sys, threading, time
mode = sys.argv[1]
def fam(ip): return socket.AF_INET6 if ":" in ip else socket.AF_INET
if mode == "serve":
    ip, port, life = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    s = socket.socket(fam(ip), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port)); s.listen(16); s.settimeout(0.2)
    print("ready", flush=True)
    def drain(c, peer):
        c.settimeout(life)
        n = 0
        try:
            while True:
                b = c.recv(65536)
                if not b: break
                n += len(b)
        except OSError:
            pass
        c.close()
        print(f"conn {peer[0]} {peer[1]} {n}", flush=True)
    end = time.monotonic() + life
    while time.monotonic() < end:
        try:
            c, peer = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=drain, args=(c, peer), daemon=True).start()
else:
    sip, sport, dip, dport, size, every, life, stop = sys.argv[2:10]
    c = socket.socket(fam(dip), socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(5)
    c.bind((sip, int(sport))); c.connect((dip, int(dport)))
    print("connected", flush=True)
    end = time.monotonic() + float(life)
    sent = 0
    import os
    while time.monotonic() < end and not os.path.exists(stop):
        c.sendall(b"t" * int(size)); sent += int(size)
        time.sleep(float(every))
    c.close()
    print(f"sent {sent}", flush=True)
'

# fvg_trickle_server NAME NS IP PORT [LIFETIME_S]: accepts any number of
# connections at once and reads each to its end; returns once it listens.
fvg_trickle_server() {
    local name=$1 ns=$2
    fv_bg "$name" "$ns" python3 -c "$_FVG_TRICKLE_PY" serve "$3" "$4" "${5:-120}"
    fv_wait_for 10 "$name to listen" _fv_server_ready "$name"
}

# fvg_trickle NAME NS SRC_IP SRC_PORT DST_IP DST_PORT [SIZE] [EVERY_S] [LIFETIME_S]:
# a connection that sends SIZE bytes (200) every EVERY_S (0.25) until
# fvg_trickle_stop NAME or LIFETIME_S (60); returns once connected.
fvg_trickle() {
    local name=$1 ns=$2
    rm -f "$FV_TMP/$name.stop"
    fv_bg "$name" "$ns" python3 -c "$_FVG_TRICKLE_PY" call "$3" "$4" "$5" "$6" "${7:-200}" \
        "${8:-0.25}" "${9:-60}" "$FV_TMP/$name.stop"
    fv_wait_for 10 "$name to connect" _fvg_trickle_connected "$name"
}

_fvg_trickle_connected() {
    fv_alive "$1"
    grep -qs '^connected' "$FV_TMP/$1.out"
}

# fvg_trickle_stop NAME: close the connection (FIN) and wait for the client.
fvg_trickle_stop() {
    touch "$FV_TMP/$1.stop"
    fv_wait_exit "$1" 10
    [[ $FV_STATUS -eq 0 ]] || {
        fv_show_err "$1"
        fv_fatal "$1 exited with status $FV_STATUS"
    }
}
