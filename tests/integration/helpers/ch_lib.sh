# shellcheck shell=bash
# ch_lib.sh - a real clickhouse-server for the ClickHouse sink's tests
# (test_store_clickhouse_*.sh).
#
# Source it after tests/integration/lib.sh:
#
#     source "$FV_HELPERS/ch_lib.sh"
#     ch_require                      # skips without clickhouse-server
#     ch_start ch                     # one server; its URL in CH_URL[ch]
#     ch_query ch "SELECT count() FROM default.flows"
#     ch_stop ch; ch_restart ch       # the same ports and data
#
#     ch_cluster_start fvtest s1 s2   # two servers, two shards of cluster fvtest
#
# Every server runs in the network namespace $CH_NS (default: the current
# one) on 127.0.0.1, with ports picked free at random, its configuration
# from scripts/clickhouse-local.sh, and its config, data and log under
# $FV_TMP/ch-NAME/ (the log in ch-NAME/log/). It runs as root:
# clickhouse-server 18.16 (Debian 12's) does not refuse it.
# It is started with fv_bg (stopped at exit); every wait is bounded.

CH_SERVER=${CH_SERVER:-}
CH_NS=${CH_NS:-}
declare -A CH_URL=() CH_HTTP=() CH_TCP=()

# ch_require: skip unless a clickhouse-server binary is installed.
ch_require() {
    if [[ -z $CH_SERVER ]]; then
        CH_SERVER=$("$FV_ROOT/scripts/clickhouse-local.sh" server 2>/dev/null) ||
            fv_skip "clickhouse-server is not installed (install with: scripts/deps.sh test)"
    fi
    fv_require_cmd curl
}

# ch_ports NAME: pick the HTTP and native TCP ports of server NAME.
ch_ports() {
    local name=$1 http tcp
    http=$(fv_free_port "$CH_NS" tcp)
    tcp=$(fv_free_port "$CH_NS" tcp)
    while [[ $tcp == "$http" ]]; do
        tcp=$(fv_free_port "$CH_NS" tcp)
    done
    CH_HTTP[$name]=$http
    CH_TCP[$name]=$tcp
    CH_URL[$name]=http://127.0.0.1:$http
}

# ch_config NAME [REMOTE_SERVERS_XML]: write the server's config.xml and
# users.xml (user default without password, from 127.0.0.1 only) with
# scripts/clickhouse-local.sh, which the benchmarks and the demo use too.
ch_config() {
    "$FV_ROOT/scripts/clickhouse-local.sh" config "$FV_TMP/ch-$1" "${CH_HTTP[$1]}" \
        "${CH_TCP[$1]}" "${2:-}" >/dev/null
}

# ch_run NAME: start the configured server and wait until it answers.
ch_run() {
    local name=$1
    # shellcheck disable=SC2086 # CH_SERVER may be "clickhouse server"
    fv_bg "ch-$name" "$CH_NS" $CH_SERVER --config-file="$FV_TMP/ch-$name/config.xml"
    fv_wait_for 60 "clickhouse $name to answer on ${CH_URL[$name]}" _ch_ready "$name"
}

_ch_ready() {
    if ! kill -0 "${FV_PID[ch-$1]}" 2>/dev/null; then
        tail -n 20 "$FV_TMP/ch-$1/log/error.log" "$FV_TMP/ch-$1.err" >&2 2>/dev/null || true
        fv_fatal "clickhouse $1 exited at start"
    fi
    [[ $(fv_in "$CH_NS" curl -s --max-time 2 "${CH_URL[$1]}/ping" 2>/dev/null) == Ok.* ]]
}

# ch_start NAME: one server (no cluster).
ch_start() {
    ch_ports "$1"
    ch_config "$1"
    ch_run "$1"
}

# ch_stop NAME: SIGTERM, wait (30 s at most) for it to exit.
ch_stop() {
    fv_stop "ch-$1" TERM 30
}

# ch_restart NAME: start a stopped server again (same config and data).
ch_restart() {
    ch_run "$1"
}

# ch_cluster_start CLUSTER NAME...: one server per NAME, each a shard of
# CLUSTER (one replica each, by its native port on 127.0.0.1), every
# server knowing the whole cluster.
ch_cluster_start() {
    local cluster=$1 name xml
    shift
    for name in "$@"; do
        ch_ports "$name"
    done
    xml="<$cluster>"
    for name in "$@"; do
        xml+="<shard><replica><host>127.0.0.1</host><port>${CH_TCP[$name]}</port></replica></shard>"
    done
    xml+="</$cluster>"
    for name in "$@"; do
        ch_config "$name" "$xml"
        ch_run "$name"
    done
}

# ch_query NAME SQL: run SQL on server NAME, print the answer
# (TabSeparated); fail the test on an error.
ch_query() {
    local out rc=0
    out=$(fv_in "$CH_NS" curl -sS --max-time 30 "${CH_URL[$1]}/" --data-binary "$2" \
        -w '\n%{http_code}') || rc=$?
    local code=${out##*$'\n'}
    out=${out%$'\n'*}
    out=${out%$'\n'}
    if [[ $rc -ne 0 || $code != 200 ]]; then
        fv_fatal "clickhouse $1: query failed (curl $rc, HTTP $code): $2: $out"
    fi
    [[ -z $out ]] || printf '%s\n' "$out"
}

# ch_query_ok NAME SQL: true when SQL runs without error (for waits).
ch_query_ok() {
    [[ $(fv_in "$CH_NS" curl -s --max-time 5 -o /dev/null -w '%{http_code}' "${CH_URL[$1]}/" \
        --data-binary "$2") == 200 ]]
}

# ch_value_is NAME SQL EXPECTED: true when SQL's answer is EXPECTED (waits).
ch_value_is() {
    [[ $(fv_in "$CH_NS" curl -s --max-time 5 "${CH_URL[$1]}/" --data-binary "$2") == "$3" ]]
}

# --- An aggregator writing to ClickHouse -----------------------------------------

# ch_agg_start INACTIVE: `flowvis aggregator` in $CH_NS collecting UDP on
# 127.0.0.1:$AGG_PORT (API on $API_PORT, SQLite off, inactive timeout
# INACTIVE), with `clickHouse: enable: true` followed by the indented
# clickHouse keys read from stdin. Returns once it serves /metrics and
# listens.
ch_agg_start() {
    AGG_PORT=$(fv_free_port "$CH_NS" udp)
    API_PORT=$(fv_free_port "$CH_NS" tcp)
    {
        cat <<YAML
listenAddress: 127.0.0.1:$AGG_PORT
aggregatorTransportProtocol: udp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: $1
correlationWait: 10s
workers: 2
logLevel: info
apiServer:
  apiPort: $API_PORT
sqlite:
  enable: false
clickHouse:
  enable: true
YAML
        cat
    } >"$FV_TMP/agg.yaml"
    fv_bg agg "$CH_NS" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
    fv_wait_for 15 "the aggregator to serve /metrics" _ch_agg_ready
    fv_wait_port "$CH_NS" udp "$AGG_PORT"
}

# ch_agg_metric NAME: the aggregator's metric NAME (empty when absent).
ch_agg_metric() {
    fv_in "$CH_NS" curl -sf --max-time 3 "http://127.0.0.1:$API_PORT/metrics" |
        awk -v n="$1" '$1 == n { print $2 }'
}

_ch_agg_ready() {
    fv_alive agg
    [[ -n $(ch_agg_metric flowvis_aggregator_records_received_total) ]]
}

# _ch_agg_received N: the aggregator has received exactly N records.
_ch_agg_received() {
    [[ $(ch_agg_metric flowvis_aggregator_records_received_total) == "$1" ]]
}

# ch_agg_stop: SIGTERM; the aggregator must exit 0. Sets CH_AGG_STOPPED to
# the sink's last "clickhouse stopped" log line.
ch_agg_stop() {
    fv_stop agg TERM 20
    [[ $FV_STATUS -eq 0 ]] || {
        fv_show_err agg
        fv_fail "the aggregator exited with status $FV_STATUS after SIGTERM, expected 0"
    }
    CH_AGG_STOPPED=$(grep 'clickhouse stopped' "$FV_TMP/agg.err" | tail -n 1)
    fv_log "sink: $CH_AGG_STOPPED"
}
