#!/usr/bin/env bash
# demo.sh - the whole system on one machine: `make demo`.
#
#   make demo                      run until Ctrl-C
#   make demo DEMO_SECONDS=60      run for 60 seconds, then stop
#   make demo DEMO_CLICKHOUSE=1    also a private ClickHouse, which the API then queries
#   make demo DEMO_MODE=simulated  the simulated cluster even where the real one can run
#
# Two modes (DEMO_MODE=auto picks the first that can run here):
#
# cluster    (root, network namespaces, nftables, br_netfilter) a 3-node
#            mini-cluster of network namespaces (tests/cluster/cluster.sh:
#            15 Pods, ClusterIP and NodePort Services, an external host),
#            one `flowvis agent` per node reading that node's conntrack,
#            the aggregator in this host's namespace, and the application
#            traffic of scripts/demo-workloads.py. The host reaches the
#            cluster's underlay through one veth (${DEMO_PREFIX%-}0,
#            169.254.47.1/30 here, .2 in the fabric, which masquerades the
#            nodes towards it); the agents export over mutual TLS to
#            169.254.47.1:4739.
# simulated  (anything else) `flowvis generate` plays a 3-node cluster and
#            exports its records over TCP to the aggregator on
#            127.0.0.1:DEMO_PORT.
#
# Both serve the same web UI and API on 127.0.0.1:DEMO_API_PORT and store
# flows in SQLite. Ctrl-C (or the end of DEMO_SECONDS) stops every process,
# deletes the namespaces (their nftables tables and veths go with them) and
# checks that nothing is left. A run first cleans up after a previous one
# that was killed. Everything it writes is under DEMO_OUT (build/demo).
#
# Variables: DEMO_SECONDS (0: until Ctrl-C), DEMO_API_PORT (10348),
# DEMO_MODE (auto|cluster|simulated), DEMO_CLICKHOUSE (0|1),
# DEMO_CH_HTTP_PORT / DEMO_CH_TCP_PORT (18123 / 19000), DEMO_RATE and
# DEMO_PORT (simulated mode: records/s, 200; IPFIX port, 4739). For tests:
# DEMO_OUT, DEMO_PREFIX (fvdemo-) and DEMO_UPLINK_NET (169.254.47), so that
# a test's demo cannot meet a user's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=$root/build/flowvis
out=${DEMO_OUT:-build/demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
seconds=${DEMO_SECONDS:-0}
api_port=${DEMO_API_PORT:-10348}
mode=${DEMO_MODE:-auto}
clickhouse=${DEMO_CLICKHOUSE:-0}
ch_http=${DEMO_CH_HTTP_PORT:-18123}
ch_tcp=${DEMO_CH_TCP_PORT:-19000}
rate=${DEMO_RATE:-200}
sim_port=${DEMO_PORT:-4739}
prefix=${DEMO_PREFIX:-fvdemo-}
uplink_net=${DEMO_UPLINK_NET:-169.254.47}
uplink=${prefix%-}0
uplink=${uplink:0:15}
agg_ip=$uplink_net.1
fabric_ip=$uplink_net.2
cluster_sh=$root/tests/cluster/cluster.sh
state=$out/cluster
readonly NODES=3 PODS_PER_NODE=5

say() {
    echo "demo: $*"
}

die() {
    echo "demo: error: $*" >&2
    exit 1
}

check_settings() {
    [[ $seconds =~ ^[0-9]+$ ]] || die "DEMO_SECONDS must be a number of seconds, not '$seconds'"
    [[ $mode =~ ^(auto|cluster|simulated)$ ]] ||
        die "DEMO_MODE must be auto, cluster or simulated, not '$mode'"
    [[ $clickhouse =~ ^[01]$ ]] || die "DEMO_CLICKHOUSE must be 0 or 1, not '$clickhouse'"
    local p
    for p in "$api_port" "$ch_http" "$ch_tcp" "$sim_port" "$rate"; do
        [[ $p =~ ^[0-9]+$ ]] || die "'$p' is not a number (DEMO_* port or rate)"
    done
    [[ $prefix =~ ^[a-z][a-z0-9]{0,9}-$ ]] ||
        die "DEMO_PREFIX must be 1-10 lower-case letters or digits and a '-', not '$prefix'"
    [[ $uplink_net =~ ^169\.254\.[0-9]{1,3}$ ]] ||
        die "DEMO_UPLINK_NET must be 169.254.N, not '$uplink_net'"
    [[ -x $bin ]] || die "$bin is missing; run 'make demo' (it builds first)"
}

# port_busy PORT: something listens on TCP PORT in this namespace.
port_busy() {
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

require_free_ports() {
    local p
    for p in "$@"; do
        if port_busy "$p"; then
            die "port $p is in use (a demo still running? another program?);" \
                "set DEMO_API_PORT / DEMO_PORT / DEMO_CH_*_PORT to free ports"
        fi
    done
}

# ---------------------------------------------------------------------------
# Processes: every one this script starts is in pids.txt ("NAME PID" lines),
# so that a later run can stop what a killed run left behind.
# ---------------------------------------------------------------------------

declare -A PID=()
names=()

# start NAME LOG CMD...: CMD in the background, its output in LOG.
start() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    PID[$name]=$!
    names+=("$name")
    echo "$name ${PID[$name]}" >>"$out/pids.txt"
}

alive() {
    kill -0 "${PID[$1]}" 2>/dev/null
}

# stop NAME [SECONDS]: TERM, wait up to SECONDS (10), then KILL.
stop() {
    local name=$1 limit=${2:-10} pid i
    pid=${PID[$name]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop in ${limit}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "PID[$name]"
}

# ours PID: PID still runs one of the commands this script starts (a PID
# from an old pids.txt may have been reused by anything since).
ours() {
    grep -qa 'flowvis\|demo-workloads\|clickhouse' "/proc/$1/cmdline" 2>/dev/null
}

# stale_cleanup: stop the processes of a previous run that was killed
# before its own cleanup: TERM, then KILL what still runs after 3 s.
stale_cleanup() {
    local name pid i k pending=()
    [[ -f $out/pids.txt ]] || return 0
    while read -r name pid; do
        if ours "$pid"; then
            say "stopping $name (pid $pid) left by an earlier run"
            kill -TERM "$pid" 2>/dev/null || true
            pending+=("$pid")
        fi
    done <"$out/pids.txt"
    for ((i = 0; i < 30 && ${#pending[@]} > 0; i++)); do
        sleep 0.1
        for k in "${!pending[@]}"; do
            ours "${pending[k]}" || unset "pending[k]"
        done
    done
    for pid in "${pending[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -f "$out/pids.txt"
}

# wait_until SECONDS WHAT CMD...: poll CMD every 0.2 s; fail with WHAT.
wait_until() {
    local limit=$1 what=$2 i
    shift 2
    for ((i = 0; i < limit * 5; i++)); do
        "$@" 2>/dev/null && return 0
        sleep 0.2
    done
    say "timed out after ${limit}s waiting for $what"
    return 1
}

api() {
    curl -sf --max-time 2 "http://127.0.0.1:$api_port$1"
}

metric() {
    api /metrics | awk -v n="$1" '$1 == n { print $2 }'
}

ready() {
    alive agg && api /readyz >/dev/null
}

# show_log FILE: its last lines, to explain a failure.
show_log() {
    echo "--- last lines of $1 ---" >&2
    tail -n 15 "$1" >&2 || true
}

# ---------------------------------------------------------------------------
# Can the namespace cluster run here?
# ---------------------------------------------------------------------------

# cluster_blocker: why the cluster cannot run here (nothing if it can).
cluster_blocker() {
    local probe=${prefix}probe$$ t
    if [[ $(id -u) -ne 0 ]]; then
        echo "not running as root (network namespaces need root)"
        return
    fi
    for t in ip nft jq python3 ss; do
        command -v "$t" >/dev/null || {
            echo "$t is not installed (scripts/deps.sh demo installs it)"
            return
        }
    done
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "network namespaces are not available ('ip netns add' failed)"
        return
    fi
    local why=""
    if ! ip netns exec "$probe" nft add table inet probe 2>/dev/null; then
        why="nftables is not available in network namespaces"
    elif ! ip netns exec "$probe" test -e /proc/sys/net/bridge/bridge-nf-call-iptables &&
        ! { modprobe br_netfilter 2>/dev/null &&
            ip netns exec "$probe" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; }; then
        why="br_netfilter is not available (modprobe br_netfilter failed)"
    fi
    ip netns del "$probe" 2>/dev/null || true
    echo "$why"
}

# ---------------------------------------------------------------------------
# ClickHouse (DEMO_CLICKHOUSE=1)
# ---------------------------------------------------------------------------

ch_lines=()
start_clickhouse() {
    local server
    [[ $clickhouse == 1 ]] || return 0
    server=$("$root/scripts/clickhouse-local.sh" server) ||
        die "DEMO_CLICKHOUSE=1 needs clickhouse-server (scripts/deps.sh clickhouse installs it)"
    require_free_ports "$ch_http" "$ch_tcp"
    # A fresh store each run, like the SQLite file.
    rm -rf "$out/clickhouse" "$out/clickhouse-spool"
    "$root/scripts/clickhouse-local.sh" config "$out/clickhouse" "$ch_http" "$ch_tcp" >/dev/null
    # shellcheck disable=SC2086 # server may be "clickhouse server"
    start clickhouse "$out/clickhouse.log" $server --config-file="$out/clickhouse/config.xml"
    wait_until 60 "ClickHouse to answer on 127.0.0.1:$ch_http" ch_ready || {
        show_log "$out/clickhouse/log/error.log"
        exit 1
    }
    say "ClickHouse on 127.0.0.1:$ch_http (data in $out/clickhouse)"
    ch_lines=("clickHouse:" "  enable: true" "  databaseURL: http://127.0.0.1:$ch_http"
        "  commitInterval: 2s" "  spoolDir: $out/clickhouse-spool")
}

ch_ready() {
    alive clickhouse && [[ $(curl -s --max-time 2 "http://127.0.0.1:$ch_http/ping") == Ok.* ]]
}

# ---------------------------------------------------------------------------
# The aggregator (both modes)
# ---------------------------------------------------------------------------

# aggregator_config LINE...: the config, the given lines first.
aggregator_config() {
    {
        echo "# Written by scripts/demo.sh."
        printf '%s\n' "$@"
        echo "activeFlowRecordTimeout: 5s"
        echo "inactiveFlowRecordTimeout: 15s"
        echo "correlationWait: 5s"
        echo "apiServer:"
        echo "  apiPort: $api_port"
        echo "  bindAddress: 127.0.0.1"
        echo "sqlite:"
        echo "  path: $out/flows.db"
        echo "  retention: 24h"
        printf '%s\n' "${ch_lines[@]}"
        echo "logLevel: info"
    } >"$out/aggregator.yaml"
}

start_aggregator() {
    rm -f "$out"/flows.db "$out"/flows.db-wal "$out"/flows.db-shm
    start agg "$out/aggregator.log" "$bin" aggregator --config "$out/aggregator.yaml"
    wait_until 20 "the aggregator to answer on 127.0.0.1:$api_port" ready || {
        show_log "$out/aggregator.log"
        exit 1
    }
}

# ---------------------------------------------------------------------------
# Cluster mode
# ---------------------------------------------------------------------------

uplink_down() {
    ip link del "$uplink" 2>/dev/null || true
}

cluster_down() {
    "$cluster_sh" down --prefix "$prefix" --state "$state" >>"$out/cluster.log" 2>&1 || true
    uplink_down
}

# uplink_up: the host's veth into the fabric, and the fabric's masquerade
# towards it (the host then needs no route to the cluster's addresses).
uplink_up() {
    local fab=${prefix}fabric
    uplink_down
    ip link add "$uplink" type veth peer name host0 netns "$fab"
    ip addr add "$agg_ip/30" dev "$uplink"
    ip link set "$uplink" up
    ip -n "$fab" addr add "$fabric_ip/30" dev host0
    ip -n "$fab" link set host0 up
    ip netns exec "$fab" nft -f - <<EOF
table ip demo-uplink {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "host0" masquerade
    }
}
EOF
}

agent_config() { # agent_config I FILE
    cat >"$2" <<EOF
# Written by scripts/demo.sh: the agent of node-$1.
nodeName: node-$1
flowCollectorAddr: $agg_ip:4739:tls
flowPollInterval: 2s
activeFlowExportTimeout: 5s
idleFlowExportTimeout: 5s
tls:
  caCert: $out/tls/ca.crt
  clientCert: $out/tls/client.crt
  clientKey: $out/tls/client.key
inventory:
  file: $state/inventory.json
# Where the cluster's nftables rules log the packets its NetworkPolicies
# refuse (cluster.sh --policies): group 100 drops, 101 rejects.
deniedFlows:
  nflogGroups: ["100", "101:reject"]
metricsAddress: 127.0.0.1:9101
logLevel: info
EOF
}

exporters_are() {
    [[ $(metric flowvis_aggregator_exporters_connected) == "$1" ]]
}

run_cluster() {
    local t0=$SECONDS i
    require_free_ports "$api_port"
    say "[1/5] cluster: $NODES nodes, $((NODES * PODS_PER_NODE)) Pods, Services, an external host" \
        "(network namespaces ${prefix}*)"
    : >"$out/cluster.log"
    cluster_down
    if ! "$cluster_sh" up --nodes "$NODES" --pods-per-node "$PODS_PER_NODE" --prefix "$prefix" \
        --state "$state" --policies >>"$out/cluster.log" 2>&1; then
        show_log "$out/cluster.log"
        die "the cluster did not come up"
    fi
    uplink_up
    sed -n 's/^  \(pod\|svc\|policies\) /      \1 /p' "$out/cluster.log"

    start_clickhouse
    say "[2/5] aggregator: IPFIX over mutual TLS on $agg_ip:4739, SQLite $out/flows.db"
    aggregator_config "listenAddress: $agg_ip:4739" "aggregatorTransportProtocol: tls" \
        "flowAggregatorAddress: $agg_ip" "tls:" "  generate: true" "  dir: $out/tls" \
        "inventory:" "  file: $state/inventory.json"
    start_aggregator

    say "[3/5] agents: one per node, reading its conntrack"
    for ((i = 1; i <= NODES; i++)); do
        agent_config "$i" "$out/agent-node-$i.yaml"
        start "agent$i" "$out/agent-node-$i.log" \
            ip netns exec "${prefix}node-$i" "$bin" agent --config "$out/agent-node-$i.yaml"
    done
    wait_until 20 "$NODES agents to connect to the aggregator" exporters_are "$NODES" || {
        for ((i = 1; i <= NODES; i++)); do show_log "$out/agent-node-$i.log"; done
        exit 1
    }

    say "[4/5] workloads: frontends, services, DNS, scrapes, batch transfers, external calls"
    # Debian's python3 itself: a wrapper (a pyenv shim) would take the
    # signals meant for the workloads.
    local py=/usr/bin/python3
    [[ -x $py ]] || py=$(command -v python3)
    start workloads "$out/workloads.log" "$py" "$root/scripts/demo-workloads.py" \
        "$state/cluster.env" --status "$out/workloads-status.json"
    wait_until 10 "the workloads to start" grep -q 'running$' "$out/workloads.log" || {
        show_log "$out/workloads.log"
        exit 1
    }
    sed -n 's/^workloads: /      /p' "$out/workloads.log"
    say "[5/5] up in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------
# Simulated mode
# ---------------------------------------------------------------------------

run_simulated() {
    local duration=$seconds
    require_free_ports "$api_port" "$sim_port"
    start_clickhouse
    say "aggregator: IPFIX on 127.0.0.1:$sim_port/tcp, SQLite $out/flows.db"
    aggregator_config "listenAddress: 127.0.0.1:$sim_port" "aggregatorTransportProtocol: tcp"
    start_aggregator
    # The generator outlives the demo's own clock, which stops it.
    if ((duration > 0)); then duration=$((duration + 60)); else duration=31536000; fi
    say "generator: a simulated 3-node cluster, $rate records/s"
    start generate "$out/generate.log" "$bin" generate --target "127.0.0.1:$sim_port:tcp" \
        --nodes 3 --pods-per-node 6 --flows 300 --rate "$rate" --records 0 --duration "$duration"
}

# ---------------------------------------------------------------------------
# Teardown
# ---------------------------------------------------------------------------

cleanup() {
    local rc=$? name i left=""
    trap - EXIT INT TERM
    echo
    say "stopping"
    # Traffic first, then the agents (their last records still reach the
    # aggregator), then the aggregator (it writes what it holds), then the
    # store.
    local order=(workloads generate)
    for ((i = 1; i <= NODES; i++)); do order+=("agent$i"); done
    for name in "${order[@]}" agg clickhouse; do
        stop "$name" 20
    done
    if [[ $mode == cluster ]]; then
        cluster_down
        [[ -z $(ip netns list | awk -v p="$prefix" 'index($1, p) == 1') ]] ||
            left+=" namespaces:$(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 {printf " %s", $1}')"
        ip link show "$uplink" >/dev/null 2>&1 && left+=" link $uplink"
    fi
    rm -f "$out/pids.txt"
    if [[ -n $left ]]; then
        say "could not remove:$left"
        exit 1
    fi
    say "stopped; nothing left running. Logs and flows.db are in $out"
    exit "$rc"
}

# watch: until DEMO_SECONDS pass or Ctrl-C; fails if a process died.
watch() {
    local end=$((SECONDS + seconds)) name
    while ((seconds == 0 || SECONDS < end)); do
        for name in "${names[@]}"; do
            [[ -n ${PID[$name]:-} ]] || continue
            if ! alive "$name"; then
                say "$name exited unexpectedly"
                [[ $name == agg ]] && show_log "$out/aggregator.log"
                exit 1
            fi
        done
        sleep 1
    done
}

banner() {
    local srv=""
    [[ $api_port == 10348 ]] || srv=" --server http://127.0.0.1:$api_port"
    cat <<EOF

  flowvis is running ($mode mode).

  Web UI:   http://127.0.0.1:$api_port/
            (flows show up within about 10 seconds; from another machine:
             ssh -L $api_port:127.0.0.1:$api_port root@THIS-HOST)

  Try:      build/flowvis get flowrecords$srv
            build/flowvis get flows --since 5m$srv
            build/flowvis get recordmetrics$srv
            curl -s 'http://127.0.0.1:$api_port/api/v1/top?group=pod_pair&since=5m' | jq .
EOF
    if [[ $mode == cluster ]]; then
        cat <<EOF
            ip netns exec ${prefix}node-1 conntrack -L     (what the agent of node-1 reads)
            tail -f $out/workloads.log
EOF
    fi
    if ((seconds > 0)); then
        echo "  Stops by itself in $seconds s (or Ctrl-C)."
    else
        echo "  Ctrl-C stops the demo and removes everything it created."
    fi
    echo
}

main() {
    local why
    check_settings
    stale_cleanup
    # Packages for the namespace cluster and ClickHouse: installed when
    # root, only if missing. Without root only curl is needed.
    if [[ $(id -u) -eq 0 ]]; then
        "$root/scripts/deps.sh" demo
        [[ $clickhouse == 0 ]] || "$root/scripts/deps.sh" clickhouse
    fi
    command -v curl >/dev/null || die "curl is not installed (scripts/deps.sh demo installs it)"
    if [[ $mode != simulated ]]; then
        why=$(cluster_blocker)
        if [[ -n $why ]]; then
            [[ $mode == cluster ]] && die "DEMO_MODE=cluster, but $why"
            say "the namespace cluster cannot run here: $why"
            say "falling back to the simulated cluster (flowvis generate); the UI is the same"
            mode=simulated
        else
            mode=cluster
        fi
    fi
    trap cleanup EXIT
    trap 'exit 0' INT TERM
    if [[ $mode == cluster ]]; then run_cluster; else run_simulated; fi
    banner
    watch
}

main "$@"
