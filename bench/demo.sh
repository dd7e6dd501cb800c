#!/usr/bin/env bash
# demo.sh - what `make demo` costs and how fast it shows something (part 8 of
# make bench; also runs alone after `make all`). Figures, not pass/fail.
#
# Runs scripts/demo.sh in cluster mode (3 nodes, 15 Pods, the workloads)
# under its own prefix, port and output directory, for BENCH_DEMO_SECONDS
# (60), and prints:
#   - set-up time: from start until the demo says it is running (cluster,
#     aggregator, agents connected, workloads started);
#   - time from "running" until the store (SQLite, through /api/v1/flows)
#     holds a record of each flowType (1 intra-node, 2 inter-node,
#     3 to-external, 4 from-external): what a user waits before every
#     dashboard has data;
#   - per process (each agent, the aggregator, the workloads): CPU in % of
#     one core over the last 30 s of the run (utime+stime from
#     /proc/PID/stat), and resident memory (VmRSS) at the end;
#   - the records the aggregator received per second, and the conntrack
#     entries each agent saw at its last poll;
#   - teardown time: from SIGTERM until every process is gone and the
#     namespaces are deleted.
# Needs root, network namespaces, nftables and br_netfilter; otherwise it
# says why and skips. No peer runs the same cluster here, so the figures
# stand alone.
#
# Environment: BENCH_DEMO_SECONDS (60; at least 45), BUILD, FLOWVIS, TMPDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
SECONDS_RUN=${BENCH_DEMO_SECONDS:-60}
((SECONDS_RUN >= 45)) || SECONDS_RUN=45
WINDOW=30
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowvis-bench-demo.XXXXXX")
OUT=$TMP/demo
PREFIX=fvb$((RANDOM % 1000))-
PIDS=()
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    "$ROOT/tests/cluster/cluster.sh" down --prefix "$PREFIX" --state "$OUT/cluster" \
        >/dev/null 2>&1 || true
    ip link del "${PREFIX%-}0" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

say "8. make demo: the namespace cluster, agents, aggregator and workloads"
if [[ $(id -u) -ne 0 ]]; then
    say "  SKIP: needs root (network namespaces)"
    exit 0
fi
busy_check
API_PORT=$(pick_port)
API=http://127.0.0.1:$API_PORT

now_ms() { date +%s%3N; }

t0=$(now_ms)
DEMO_MODE=cluster DEMO_SECONDS=0 DEMO_OUT=$OUT DEMO_PREFIX=$PREFIX DEMO_API_PORT=$API_PORT \
    DEMO_UPLINK_NET=169.254.$((200 + RANDOM % 50)) "$ROOT/scripts/demo.sh" >"$TMP/demo.out" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
for ((i = 0; i < 600; i++)); do
    grep -q 'flowvis is running' "$TMP/demo.out" 2>/dev/null && break
    if ! kill -0 "$DEMO_PID" 2>/dev/null; then
        say "  FAILED: the demo did not start:"
        tail -n 5 "$TMP/demo.out" | sed 's/^/    /'
        exit 1
    fi
    sleep 0.1
done
grep -q 'flowvis is running (cluster mode)' "$TMP/demo.out" || {
    say "  SKIP: the demo did not run in cluster mode:"
    grep 'demo:' "$TMP/demo.out" | tail -n 3 | sed 's/^/    /'
    exit 0
}
t_up=$(now_ms)
printf '  set-up (cluster, aggregator, 3 agents, workloads): %.1f s\n' \
    "$(awk -v a="$t0" -v b="$t_up" 'BEGIN { print (b - a) / 1000 }')"

# First record of each flowType in the store.
declare -A first=()
deadline=$((SECONDS + SECONDS_RUN))
while ((${#first[@]} < 4 && SECONDS < deadline)); do
    for t in 1 2 3 4; do
        [[ -n ${first[$t]:-} ]] && continue
        n=$(curl -sf --max-time 2 "$API/api/v1/flows?limit=1&where=flowType=$t" | jq -r .total) || n=0
        ((n > 0)) && first[$t]=$(now_ms)
    done
    sleep 0.25
done
names=([1]=intra-node [2]=inter-node [3]=to-external [4]=from-external)
for t in 1 2 3 4; do
    if [[ -n ${first[$t]:-} ]]; then
        printf '  first stored record, flowType %d (%s): %.1f s after "running"\n' "$t" \
            "${names[$t]}" "$(awk -v a="$t_up" -v b="${first[$t]}" 'BEGIN { print (b - a) / 1000 }')"
    else
        printf '  first stored record, flowType %d (%s): none within %d s\n' "$t" "${names[$t]}" \
            "$SECONDS_RUN"
    fi
done

# CPU and memory over the last WINDOW seconds of the run.
left=$((t_up / 1000 + SECONDS_RUN - WINDOW - $(date +%s)))
((left > 0)) && sleep "$left"
declare -A pid_of=() t1=()
while read -r name pid; do
    [[ $name == agg || $name == agent* || $name == workloads ]] || continue
    pid_of[$name]=$pid
    t1[$name]=$(cpu_ticks "$pid" || echo 0)
done <"$OUT/pids.txt"
rec1=$(curl -sf "$API/metrics" | awk '$1 == "flowvis_aggregator_records_received_total" { print $2 }')
w0=$(now_ms)
sleep "$WINDOW"
w1=$(now_ms)
rec2=$(curl -sf "$API/metrics" | awk '$1 == "flowvis_aggregator_records_received_total" { print $2 }')
say "  over the last ${WINDOW} s:"
printf '    %-10s %8s %10s\n' process "CPU %" "RSS MiB"
for name in agent1 agent2 agent3 agg workloads; do
    pid=${pid_of[$name]:-}
    [[ -n $pid ]] || continue
    t2=$(cpu_ticks "$pid" || echo 0)
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    awk -v n="$name" -v d="$((t2 - ${t1[$name]}))" -v hz="$CLK_TCK" -v ms="$((w1 - w0))" \
        -v rss="$rss" 'BEGIN { printf "    %-10s %8.2f %10.1f\n", n, 100 * d / hz / (ms / 1000), rss / 1024 }'
done
awk -v a="${rec1:-0}" -v b="${rec2:-0}" -v ms="$((w1 - w0))" \
    'BEGIN { printf "    records received by the aggregator: %.1f/s\n", (b - a) / (ms / 1000) }'
for i in 1 2 3; do
    ct=$(ip netns exec "${PREFIX}node-$i" curl -sf --max-time 2 http://127.0.0.1:9101/metrics |
        awk '$1 == "flowvis_agent_conntrack_total_connections" { print $2 }')
    printf '    node-%d: %s conntrack entries at the last poll\n' "$i" "${ct:-?}"
done

# Teardown.
s0=$(now_ms)
kill -TERM "$DEMO_PID"
wait "$DEMO_PID" 2>/dev/null || true
forget "$DEMO_PID"
s1=$(now_ms)
left=$(ip netns list | awk -v p="$PREFIX" 'index($1, p) == 1' | wc -l)
printf '  teardown: %.1f s, %d namespaces left\n' \
    "$(awk -v a="$s0" -v b="$s1" 'BEGIN { print (b - a) / 1000 }')" "$left"
