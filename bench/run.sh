#!/usr/bin/env bash
# run.sh - the flowvis benchmarks (make bench). Figures, not pass/fail.
#
#   1. build/bench/bench_decode: the IPFIX codec alone, on one core.
#   2. Instructions per record under callgrind (when valgrind is installed):
#      a figure that does not move with machine load.
#   3. build/bench/bench_agent_poll: the agent's conntrack poll against a bare
#      libnetfilter_conntrack dump, in a network namespace of its own (root).
#   4. End to end over UDP on 127.0.0.1: `flowvis generate` (3 exporters,
#      127.0.1.1-3) sends agent records at a fixed rate, then flat out, to
#      `flowvis collector --format json`, `--format none`, and to nfdump's
#      nfcapd. For each receiver: records offered, received, lost, kernel
#      drops, and the receiver's CPU time per record (utime+stime from
#      /proc/PID/stat once its socket is drained, minus its start-up).
#   5. bench/aggregator.sh: `flowvis aggregator` fed by 4 simulated nodes:
#      loss and CPU per record over UDP at BENCH_RATE, against pmacct's
#      nfacctd; records/s over TCP flat out; memory per flow at 1M flows.
#   6. bench/store.sh: rows/s into a local clickhouse-server and into the
#      SQLite store, and the UI query endpoints' latency over the stored rows.
#   7. bench/ui.sh: every dashboard in headless Chromium over a store of
#      100k flows: time to ready, longest main-thread task, heap, bytes.
#   8. bench/demo.sh: `make demo`'s namespace cluster: set-up time, time
#      until each flowType is stored, CPU and memory of agents, aggregator
#      and workloads, teardown time.
#   9. build/bench/bench_policy: NetworkPolicy compilation and evaluation
#      (5000 Pods, 500 policies): compile time, memory, flows/s, one core.
#
# Exit status: 0 when everything ran (even with loss, which is printed as
# LOSS), 1 when something failed to run. See bench/README.md.
#
# Environment: BENCH_RATE (300000), BENCH_DURATION (10), BENCH_FLATOUT_DURATION
# (5, 0 = skip the flat-out runs), BENCH_QUICK=1 (short runs, no callgrind),
# BENCH_CONNTRACK_ENTRIES (200000), BUILD (build directory, as for make),
# FLOWVIS, BENCH_DECODE and BENCH_AGENT_POLL (binaries), BENCH_AGG_FLOWS
# (1000000, flows of the aggregator's memory run; 0 skips it),
# TMPDIR (scratch space; nfcapd writes ~140 bytes per record there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BENCH_DECODE=${BENCH_DECODE:-$BUILD/bench/bench_decode}
BENCH_AGENT_POLL=${BENCH_AGENT_POLL:-$BUILD/bench/bench_agent_poll}
CT_ENTRIES=${BENCH_CONNTRACK_ENTRIES:-200000}
RATE=${BENCH_RATE:-300000}
DURATION=${BENCH_DURATION:-10}
FLATOUT_DURATION=${BENCH_FLATOUT_DURATION:-5}
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    DURATION=${BENCH_DURATION:-3}
    FLATOUT_DURATION=${BENCH_FLATOUT_DURATION:-2}
    CT_ENTRIES=${BENCH_CONNTRACK_ENTRIES:-50000}
fi
HOST=127.0.0.1
NODES=3
CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowvis-bench.XXXXXX")
FAILED=0
NETNS=""       # network namespace of the agent poll benchmark, deleted at exit
PIDS=()        # background processes to stop at exit
ROWS=()        # result table rows, "|"-separated
declare -A PER # CPU microseconds per record, by run label

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------



cleanup() {
    local pid
    set +e
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    [[ -n $NETNS ]] && ip netns del "$NETNS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


fail() {
    say "bench: FAILED: $*" >&2
    FAILED=1
}


# sock_field PORT FIELD: a field of 127.0.0.1:PORT's line in /proc/net/udp:
# rx_queue (bytes) or drops; nothing when no socket is bound there.
sock_field() {
    local want queue drops
    want=$(printf '0100007F:%04X' "$1")
    read -r queue drops < <(awk -v want="$want" \
        '$2 == want { split($5, q, ":"); print q[2], $NF; exit }' /proc/net/udp) || return 0
    if [[ $2 == rx_queue ]]; then echo $((16#$queue)); else echo "$drops"; fi
}

port_bound() {
    local p
    p=$(printf ':%04X ' "$1")
    grep -q "$p" /proc/net/udp /proc/net/udp6 2>/dev/null
}


# wait_bound PID PORT: until the receiver has bound the port (5 s at most).
wait_bound() {
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -n $(sock_field "$2" rx_queue) ]] && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_drained PID PORT: until the socket queue is empty and the receiver
# has stopped using CPU (it has processed what it read); 30 s at most.
wait_drained() {
    local i q t0 t1
    t0=$(cpu_ticks "$1") || return 1
    for ((i = 0; i < 150; i++)); do
        sleep 0.2
        q=$(sock_field "$2" rx_queue)
        t1=$(cpu_ticks "$1") || return 1
        [[ ${q:-0} -eq 0 && $t1 -eq $t0 ]] && return 0
        t0=$t1
    done
    return 1
}

# ---------------------------------------------------------------------------
# One end-to-end run
# ---------------------------------------------------------------------------

# start_receiver KIND FORMAT PORT DIR: starts flowvis or nfcapd in the
# background (a child of this shell, so that it can be waited for) and
# sets RECEIVER_PID.
start_receiver() {
    local kind=$1 format=$2 port=$3 dir=$4
    if [[ $kind == flowvis ]]; then
        "$FLOWVIS" collector --address "$HOST:$port" --format "$format" \
            >/dev/null 2>"$dir/receiver.log" &
    else
        # -t 3600: no file rotation during the run; -B: ask for a large
        # socket buffer, as flowvis does (the kernel caps it at rmem_max).
        nfcapd -w "$dir/flows" -b "$HOST" -p "$port" -t 3600 -B 33554432 \
            >"$dir/receiver.log" 2>&1 &
    fi
    RECEIVER_PID=$!
    PIDS+=("$RECEIVER_PID")
}

# receiver_count KIND DIR: records the receiver says it decoded, and for
# flowvis its sequence-number loss, as "records lost".
receiver_count() {
    local kind=$1 dir=$2 line n
    if [[ $kind == flowvis ]]; then
        line=$(grep -E '^ *total exporters=' "$dir/receiver.log" || true)
        [[ -n $line ]] || return 1
        echo "$(kv records "$line") $(kv lost "$line")"
        return 0
    fi
    # nfcapd prints its totals when it terminates; nfdump reads what it stored.
    n=$(sed -n "s/.*Flows: \([0-9]*\),.*/\1/p" "$dir/receiver.log" | tail -1)
    [[ -n $n ]] || return 1
    local stored
    stored=$(nfdump -R "$dir/flows" -I 2>/dev/null | sed -n 's/^Flows: \([0-9]*\)$/\1/p' | head -1)
    if [[ -n $stored && $stored != "$n" ]]; then
        say "  note: nfcapd counted $n flows, nfdump -I reads $stored from its files"
    fi
    echo "$n -"
}

kv() { sed -n "s/.*[ ]$1=\([0-9]*\).*/\1/p" <<<"$2" | head -1; }

# e2e LABEL KIND FORMAT RATE DURATION: one receiver, one generator run.
e2e() {
    local label=$1 kind=$2 format=$3 rate=$4 duration=$5
    local dir="$TMP/$label" port pid gen status t0 t1 drops offered secs counts received lost
    mkdir -p "$dir/flows"
    port=$(pick_port) || { fail "$label: no free UDP port"; return 0; }
    start_receiver "$kind" "$format" "$port" "$dir"
    pid=$RECEIVER_PID
    if ! wait_bound "$pid" "$port"; then
        fail "$label: the receiver did not bind $HOST:$port:"
        sed 's/^/    /' "$dir/receiver.log" >&2
        stop_pid "$pid"
        return 0
    fi
    t0=$(cpu_ticks "$pid") || t0=0
    say "  $label: $rate records/s (0 = flat out) for ${duration}s to $HOST:$port ..."
    # In the background so that a signal to this script is handled at once
    # (bash runs traps only between foreground commands).
    timeout $((duration + 30)) "$FLOWVIS" generate \
        --target "$HOST:$port" --rate "$rate" --duration "$duration" --nodes "$NODES" \
        --summary-json "$dir/sent.json" 2>"$dir/generate.log" &
    gen=$!
    PIDS+=("$gen")
    status=0
    wait "$gen" || status=$?
    forget "$gen"
    if [[ $status -ne 0 ]]; then
        fail "$label: flowvis generate failed (status $status):"
        sed 's/^/    /' "$dir/generate.log" >&2
        stop_pid "$pid"
        return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        fail "$label: the receiver died during the run:"
        sed 's/^/    /' "$dir/receiver.log" >&2
        stop_pid "$pid"
        return 0
    fi
    wait_drained "$pid" "$port" || say "  note: $label: the receiver was still busy after 30s"
    t1=$(cpu_ticks "$pid") || t1=$t0
    drops=$(sock_field "$port" drops)
    stop_pid "$pid"
    offered=$(sed -n 's/^{"records":\([0-9]*\),.*/\1/p' "$dir/sent.json")
    secs=$(sed -n 's/.*"seconds":\([0-9.]*\),.*/\1/p' "$dir/sent.json")
    if [[ -z $offered || -z $secs ]]; then
        fail "$label: cannot read the generator's summary $dir/sent.json"
        return 0
    fi
    if ! counts=$(receiver_count "$kind" "$dir"); then
        fail "$label: no summary from the receiver:"
        sed 's/^/    /' "$dir/receiver.log" >&2
        return 0
    fi
    read -r received lost <<<"$counts"
    ROWS+=("$label|$rate|$offered|$secs|$received|$lost|${drops:-?}|$t0|$t1")
    rm -rf "$dir/flows" # nfcapd's files: ~140 bytes a record
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

print_table() {
    local row label rate offered secs received lost drops t0 t1 cpu per loss mark util
    printf '\n%-16s %9s %9s %9s %9s %8s %7s %6s %5s %8s  %s\n' receiver "offered/s" offered \
        received "recv/s" loss drops "CPU s" "util" "CPU us/r" result
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label rate offered secs received lost drops t0 t1 <<<"$row"
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
        per=$(awk -v c="$cpu" -v n="$received" 'BEGIN { printf "%.3f", n ? c / n * 1e6 : 0 }')
        util=$(awk -v c="$cpu" -v s="$secs" 'BEGIN { printf "%.0f%%", s ? 100 * c / s : 0 }')
        loss=$((offered - received))
        mark=ok
        [[ $loss -ne 0 ]] && mark=LOSS
        [[ $rate == 0 ]] && rate="max"
        printf '%-16s %9s %9s %9s %9.0f %8s %7s %6s %5s %8s  %s\n' "$label" "$rate" "$offered" \
            "$received" "$(awk -v n="$received" -v s="$secs" 'BEGIN { print s ? n / s : 0 }')" \
            "$loss" "$drops" "$cpu" "$util" "$per" "$mark"
        [[ $lost != - && $lost -ne 0 ]] && say "    ($label: $lost records missing by sequence numbers)"
        PER[$label]=$per
    done
}

print_ratio() {
    local a=$1 b=$2 va=${PER[$1]:-} vb=${PER[$2]:-}
    [[ -n $va && -n $vb ]] || return 0
    awk -v a="$va" -v b="$vb" -v na="$a" -v nb="$b" 'BEGIN {
        if (b == 0) exit
        r = a / b
        printf "  CPU per record %s / %s = %.2f (target <= 0.5: %s)\n", na, nb, r,
               r <= 0.5 ? "met" : "NOT MET"
    }'
}

callgrind_ir() { # CASE: instructions per record of one decode pass
    local out
    out=$(timeout 300 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect="$1_pass" "$BENCH_DECODE" --records 20000 --cold-records 0 \
        --reps 1 --passes 1 --case "$1" --stream udp 2>&1) || return 1
    awk '/hot  stream:/ { n = $3 } /Collected :/ { ir = $NF }
         END { if (n && ir) printf "%.0f", ir / n; else exit 1 }' <<<"$out"
}

# agent_poll: bench_agent_poll fills a conntrack table with CT_ENTRIES
# entries, so it runs in a network namespace of its own, deleted afterwards
# (which also drops the entries).
agent_poll() {
    if [[ ! -x $BENCH_AGENT_POLL ]]; then
        say "  skipped: $BENCH_AGENT_POLL is not built"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
        say "  skipped: needs root and ip (iproute2) for a network namespace"
        return 0
    fi
    NETNS=fvbench-$$
    if ! ip netns add "$NETNS"; then
        fail "agent poll: cannot create network namespace $NETNS"
        NETNS=""
        return 0
    fi
    # In the background, so that a signal to this script is handled at once.
    timeout 180 ip netns exec "$NETNS" "$BENCH_AGENT_POLL" "$CT_ENTRIES" \
        >"$TMP/agent_poll.out" 2>&1 &
    local pid=$! status=0
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    if [[ $status -eq 0 ]]; then
        sed 's/^/  /' "$TMP/agent_poll.out"
    else
        fail "agent poll (status $status):"
        sed 's/^/    /' "$TMP/agent_poll.out" >&2
    fi
    ip netns del "$NETNS" 2>/dev/null || true
    NETNS=""
}

# ---------------------------------------------------------------------------

[[ -x $FLOWVIS ]] || { echo "bench: $FLOWVIS missing (run make)" >&2; exit 1; }
[[ -x $BENCH_DECODE ]] || { echo "bench: $BENCH_DECODE missing (run make bench)" >&2; exit 1; }

say "== 1. codec microbenchmark (${BENCH_DECODE#"$ROOT"/})"
busy_check
decode_args=()
[[ $QUICK == 1 ]] && decode_args=(--reps 3 --cold-records 50000)
timeout 300 "$BENCH_DECODE" "${decode_args[@]}" | grep -v '^RESULT' || fail "bench_decode"


say ""
say "== 2. instructions per record (callgrind, 20000 records, udp-1400)"
if [[ $QUICK == 1 ]]; then
    say "  skipped (BENCH_QUICK=1)"
elif ! command -v valgrind >/dev/null; then
    say "  skipped: valgrind is not installed (scripts/deps.sh bench)"
else
    ir_dec=$(callgrind_ir decode) || ir_dec="?"
    ir_json=$(callgrind_ir json) || ir_json="?"
    say "  decode: $ir_dec instructions/record   decode + JSON: $ir_json instructions/record"
fi

say ""
say "== 3. agent conntrack poll ($CT_ENTRIES entries, ${BENCH_AGENT_POLL#"$ROOT"/})"
agent_poll

say ""
say "== 4. end to end over UDP: $NODES exporters -> one receiver on $HOST"
busy_check
e2e "flowvis-json" flowvis json "$RATE" "$DURATION"
e2e "flowvis-none" flowvis none "$RATE" "$DURATION"
if command -v nfcapd >/dev/null; then
    e2e "nfcapd" nfcapd - "$RATE" "$DURATION"
else
    say "  nfcapd: skipped, not installed (scripts/deps.sh bench installs nfdump)"
fi
if [[ $FLATOUT_DURATION -gt 0 ]]; then
    e2e "max-flowvis-none" flowvis none 0 "$FLATOUT_DURATION"
    e2e "max-flowvis-json" flowvis json 0 "$FLATOUT_DURATION"
    if command -v nfcapd >/dev/null; then
        e2e "max-nfcapd" nfcapd - 0 "$FLATOUT_DURATION"
    fi
fi

if [[ ${#ROWS[@]} -gt 0 ]]; then
    print_table
    say ""
    say "  loss = offered - received; drops = the receiver socket's kernel drop counter"
    say "  (/proc/net/udp); CPU = the receiver's utime+stime while receiving; util = CPU s"
    say "  / seconds of sending (near 100%: the receiver was CPU-bound). A flat-out run's"
    say "  1 / (CPU us/r) estimates what one core can take without loss."
    print_ratio flowvis-json nfcapd
    print_ratio flowvis-none nfcapd
fi

# run_part SCRIPT: one of the bench/*.sh parts, in the background so that a
# signal to this script is handled at once (each part stops its own
# processes when it gets SIGTERM); a part that fails to run is reported.
run_part() {
    local script=$1 pid status=0
    BUILD=$BUILD FLOWVIS=$FLOWVIS "$ROOT/bench/$script" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    [[ $status -eq 0 ]] || fail "bench/$script (status $status)"
}

say ""
say "== 5. aggregator: 4 nodes -> flowvis aggregator on $HOST (bench/aggregator.sh)"
run_part aggregator.sh

say ""
say "== 6. stores: rows/s into ClickHouse and SQLite, UI query latency (bench/store.sh)"
run_part store.sh

say ""
say "== 7. web UI: every dashboard in headless Chromium over 100k flows (bench/ui.sh)"
run_part ui.sh

say ""
say "== 8. make demo: set-up, time to data, CPU and memory (bench/demo.sh)"
run_part demo.sh

say ""
say "== 9. NetworkPolicy evaluation: 5000 Pods, 500 policies (build/bench/bench_policy)"
timeout 300 "$BUILD/bench/bench_policy" | grep -v '^RESULT' || fail "bench_policy"

if [[ $FAILED -ne 0 ]]; then
    say "bench: some benchmarks failed to run (see above)"
    exit 1
fi
