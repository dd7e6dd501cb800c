#!/usr/bin/env bash
# aggregator.sh - benchmarks of `flowvis aggregator` (part 5 of make bench;
# also runs alone). Figures, not pass/fail.
#
#   a. Loss and CPU per record over UDP at a fixed rate: `flowvis generate`
#      (4 nodes, inter-node flows reported by both nodes) sends BENCH_RATE
#      records/s to an aggregator listening on 127.0.0.1 (UDP, no outputs,
#      workers = one per CPU). Loss = records offered (the generator's
#      summary) - numRecordsReceived (/recordmetrics), next to the kernel's
#      drop counter (flowvis_aggregator_udp_kernel_drops_total). CPU = the
#      aggregator's utime+stime (/proc/PID/stat, all threads) while
#      receiving, divided by the records received.
#   b. The same over TCP, flat out (--rate 0): records/s sustained.
#   c. pmacct's nfacctd on the same UDP stream, aggregating by 5-tuple
#      (print plugin, refresh never during the run): its CPU per record (core
#      process + plugin) and its loss (packets it aggregated against the
#      packetDeltaCount the generator sent), and the ratio flowvis / nfacctd.
#   d. Memory per live flow: BENCH_AGG_FLOWS flows over TCP with long
#      timeouts (nothing expires); VmRSS minus the RSS of the idle aggregator,
#      per flow held (flowvis_aggregator_flows), with and without the pages of
#      its queues (found in /proc/PID/smaps), and
#      flowvis_aggregator_flow_table_bytes per flow.
#
# Exit status: 0 when everything ran (even with loss), 1 when something failed
# to run. Environment: BENCH_RATE (300000), BENCH_DURATION (10),
# BENCH_FLATOUT_DURATION (5; 0 skips b), BENCH_QUICK=1 (3 s and 2 s),
# BENCH_AGG_FLOWS (1000000; 0 skips d), BUILD, FLOWVIS, TMPDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
RATE=${BENCH_RATE:-300000}
DURATION=${BENCH_DURATION:-10}
FLATOUT_DURATION=${BENCH_FLATOUT_DURATION:-5}
FLOWS=${BENCH_AGG_FLOWS:-1000000}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    DURATION=${BENCH_DURATION:-3}
    FLATOUT_DURATION=${BENCH_FLATOUT_DURATION:-2}
fi
HOST=127.0.0.1
NODES=4
CLK_TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowvis-bench-agg.XXXXXX")
FAILED=0
PIDS=()        # our background processes, stopped at exit
FOREIGN=()     # nfacctd plugin processes (not our children), "pid:comm"
NFACCTD_PID=""
ROWS=()        # result rows, "|"-separated
THREADS=()     # "label: CPU seconds of each aggregator thread"
declare -A PER # CPU microseconds per record, by label

# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------



# stop_foreign: nfacctd's plugins, when their core did not take them along;
# only a process that still has the name it had (not a reused PID).
stop_foreign() {
    local f pid comm
    for f in "${FOREIGN[@]}"; do
        pid=${f%%:*} comm=${f#*:}
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    FOREIGN=()
}

cleanup() {
    local pid
    set +e
    for pid in "${PIDS[@]}"; do
        # nfacctd blocks SIGTERM while it waits for a datagram.
        if [[ $pid == "$NFACCTD_PID" ]]; then stop_pid "$pid" INT; else stop_pid "$pid"; fi
    done
    stop_foreign
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    say "bench: FAILED: aggregator: $*" >&2
    FAILED=1
}



# tree_ticks PID: cpu_ticks of PID and of its children (nfacctd's plugins).
tree_ticks() {
    local sum c t
    sum=$(cpu_ticks "$1") || return 1
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        t=$(cpu_ticks "$c" 2>/dev/null) && sum=$((sum + t))
    done
    echo "$sum"
}

# thread_ticks PID: "TID:TICKS" of each thread, in thread id order (the
# first is the main thread).
thread_ticks() {
    local t line rest
    for t in /proc/"$1"/task/*; do
        read -r line <"$t/stat" 2>/dev/null || continue
        rest=${line##*) }
        # shellcheck disable=SC2086 # split the fields on purpose
        set -- $rest
        echo "${t##*/}:$((${12} + ${13}))"
    done | sort -t: -k1,1n | tr '\n' ' '
}

# thread_split BEFORE AFTER: CPU seconds of each thread between the two
# thread_ticks, "a + b + c" (threads that used none left out).
thread_split() {
    awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" 'BEGIN {
        n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, ":"); t0[kv[1]] = kv[2] }
        m = split(b, y, " ")
        for (i = 1; i <= m; i++) {
            split(y[i], kv, ":"); d = kv[2] - t0[kv[1]]
            if (d > 0) out = out (out == "" ? "" : " + ") sprintf("%.2f", d / hz)
        }
        print out
    }'
}

vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# udp_field PORT FIELD: rx_queue (bytes) or drops of 127.0.0.1:PORT's UDP
# socket; nothing when no socket is bound there.
udp_field() {
    local want queue drops
    want=$(printf '0100007F:%04X' "$1")
    read -r queue drops < <(awk -v want="$want" \
        '$2 == want { split($5, q, ":"); print q[2], $NF; exit }' /proc/net/udp) || return 0
    if [[ $2 == rx_queue ]]; then echo $((16#$queue)); else echo "$drops"; fi
}

# ---------------------------------------------------------------------------
# The aggregator and its API
# ---------------------------------------------------------------------------

api() { curl -sf --max-time 5 "http://$HOST:$API_PORT$1"; }

# metric NAME: a value of /metrics.
metric() { api /metrics | awk -v n="$1" '$1 == n { print $2; exit }'; }

# received: numRecordsReceived of /recordmetrics.
received() { api /recordmetrics | sed -n 's/.*"numRecordsReceived":\([0-9]*\).*/\1/p'; }

# start_aggregator DIR PROTO [EXTRA_YAML]: starts the aggregator on
# 127.0.0.1 (PROTO udp or tcp), its API on 127.0.0.1; sets AGG_PID, PORT and
# API_PORT; waits until the API answers (10 s at most).
start_aggregator() {
    local dir=$1 proto=$2 extra=${3:-} i
    if ! PORT=$(pick_port) || ! API_PORT=$(pick_port); then
        fail "no free port"
        return 1
    fi
    cat >"$dir/aggregator.yaml" <<EOF
listenAddress: "$HOST:$PORT"
aggregatorTransportProtocol: "$proto"
apiServer:
  apiPort: $API_PORT
  bindAddress: "$HOST"
tls:
  generate: false
  dir: "$dir/tls"
flowCollector:
  enable: false
sqlite:
  enable: false
logLevel: warn
$extra
EOF
    "$FLOWVIS" aggregator --config "$dir/aggregator.yaml" >/dev/null 2>"$dir/aggregator.log" &
    AGG_PID=$!
    PIDS+=("$AGG_PID")
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$AGG_PID" 2>/dev/null; then
            fail "the aggregator did not start:"
            sed 's/^/    /' "$dir/aggregator.log" >&2
            stop_pid "$AGG_PID"
            return 1
        fi
        if [[ -n $(received) ]] &&
            { [[ $proto != udp ]] || [[ -n $(udp_field "$PORT" rx_queue) ]]; }; then
            return 0
        fi
        sleep 0.1
    done
    fail "the aggregator did not answer on $HOST:$API_PORT"
    stop_pid "$AGG_PID"
    return 1
}

# children_cpu FILE: user+sys seconds of the reaped children of this shell
# into FILE (`times` in a subshell would count the subshell's children).
children_cpu() {
    times >"$1.times"
    awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] }
                   printf "%.3f", s }' "$1.times" >"$1"
}

# generate DIR LABEL ARGS...: runs flowvis generate to 127.0.0.1:PORT in the
# background (so that a signal is handled at once) and waits; reads the
# summary into OFFERED, SECS, PACKETS and MESSAGES, and the generator's CPU
# seconds into GEN_CPU.
generate() {
    local dir=$1 label=$2 gen status=0
    shift 2
    children_cpu "$dir/cpu0"
    timeout 300 "$FLOWVIS" generate --nodes "$NODES" --summary-json "$dir/sent.json" "$@" \
        2>"$dir/generate.log" &
    gen=$!
    PIDS+=("$gen")
    wait "$gen" || status=$?
    forget "$gen"
    children_cpu "$dir/cpu1"
    GEN_CPU=$(awk 'NR == FNR { a = $1; next } { printf "%.2f", $1 - a }' "$dir/cpu0" "$dir/cpu1")
    if [[ $status -ne 0 ]]; then
        fail "$label: flowvis generate failed (status $status):"
        sed 's/^/    /' "$dir/generate.log" >&2
        return 1
    fi
    OFFERED=$(sed -n 's/^{"records":\([0-9]*\),.*/\1/p' "$dir/sent.json")
    PACKETS=$(sed -n 's/.*"packetDeltaCount":\([0-9]*\),.*/\1/p' "$dir/sent.json")
    SECS=$(sed -n 's/.*"seconds":\([0-9.]*\),.*/\1/p' "$dir/sent.json")
    MESSAGES=$(grep -o '"messages":[0-9]*' "$dir/sent.json" | awk -F: '{ n += $2 } END { print n + 0 }')
    if [[ -z $OFFERED || -z $SECS || -z $PACKETS ]]; then
        fail "$label: cannot read the generator's summary $dir/sent.json"
        return 1
    fi
}

# agg_drained OFFERED: until the aggregator has received OFFERED records (or
# its count stopped moving), its UDP queue is empty and it has stopped using
# CPU; 60 s at most. Sets RECEIVED.
agg_drained() {
    local want=$1 i t0 t1 n0 n1 q
    t0=$(cpu_ticks "$AGG_PID") || return 1
    n0=$(received)
    for ((i = 0; i < 200; i++)); do
        sleep 0.3
        t1=$(cpu_ticks "$AGG_PID") || return 1
        n1=$(received)
        q=$(udp_field "$PORT" rx_queue)
        RECEIVED=${n1:-0}
        if [[ ${q:-0} -eq 0 && $t1 -eq $t0 && -n $n1 ]] &&
            [[ $n1 -ge $want || $n1 == "$n0" ]]; then
            return 0
        fi
        t0=$t1 n0=$n1
    done
    return 1
}

# agg_run LABEL PROTO RATE DURATION: one aggregator, one generator run.
agg_run() {
    local label=$1 proto=$2 rate=$3 duration=$4 dir="$TMP/$1" t0 t1 drops seqlost sock th0 th1
    mkdir -p "$dir"
    start_aggregator "$dir" "$proto" || return 0
    t0=$(cpu_ticks "$AGG_PID") || t0=0
    th0=$(thread_ticks "$AGG_PID")
    say "  $label: $rate records/s (0 = flat out) over $proto for ${duration}s to $HOST:$PORT ..."
    if ! generate "$dir" "$label" --target "$HOST:$PORT:$proto" --rate "$rate" \
        --duration "$duration"; then
        stop_pid "$AGG_PID"
        return 0
    fi
    if ! kill -0 "$AGG_PID" 2>/dev/null; then
        fail "$label: the aggregator died during the run:"
        sed 's/^/    /' "$dir/aggregator.log" >&2
        stop_pid "$AGG_PID"
        return 0
    fi
    agg_drained "$OFFERED" || say "  note: $label: the aggregator was still busy after 60 s"
    t1=$(cpu_ticks "$AGG_PID") || t1=$t0
    th1=$(thread_ticks "$AGG_PID")
    THREADS+=("$label: $(thread_split "$th0" "$th1")")
    drops=$(metric flowvis_aggregator_udp_kernel_drops_total)
    seqlost=$(metric flowvis_aggregator_sequence_lost_total)
    sock=-
    if [[ $proto == udp ]]; then sock=$(udp_field "$PORT" drops); else drops=-; fi
    stop_pid "$AGG_PID"
    ROWS+=("$label|$proto|$rate|$OFFERED|$SECS|$MESSAGES|$RECEIVED|${drops:-?}/${sock:-?}|$t0|$t1|${seqlost:-?}|$GEN_CPU")
}

# ---------------------------------------------------------------------------
# nfacctd
# ---------------------------------------------------------------------------

# nfacctd_run LABEL RATE DURATION: nfacctd (pmacct) with the print plugin,
# aggregating by 5-tuple; its cache is written once, when it exits.
nfacctd_run() {
    local label=$1 rate=$2 duration=$3 dir="$TMP/$1" pid i t0 t1 q drops c agg_pk est
    mkdir -p "$dir"
    PORT=$(pick_port) || { fail "no free port"; return 0; }
    # plugin_pipe_size/plugin_buffer_size: the core-to-plugin ring; the
    # defaults lose data at this rate ("Missing data detected").
    cat >"$dir/nfacctd.conf" <<EOF
daemonize: false
nfacctd_ip: $HOST
nfacctd_port: $PORT
nfacctd_pipe_size: 33554432
plugins: print
aggregate: src_host, dst_host, src_port, dst_port, proto
print_output: csv
print_output_file: $dir/flows.csv
print_refresh_time: 86400
plugin_pipe_size: 104857600
plugin_buffer_size: 102400
EOF
    nfacctd -f "$dir/nfacctd.conf" >"$dir/nfacctd.log" 2>&1 &
    pid=$!
    NFACCTD_PID=$pid
    PIDS+=("$pid")
    for ((i = 0; i < 50; i++)); do
        [[ -n $(udp_field "$PORT" rx_queue) ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $(udp_field "$PORT" rx_queue) ]]; then
        fail "$label: nfacctd did not bind $HOST:$PORT:"
        sed 's/^/    /' "$dir/nfacctd.log" >&2
        stop_pid "$pid" INT
        return 0
    fi
    sleep 0.5 # its plugin is forked after the bind
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        FOREIGN+=("$c:$(cat "/proc/$c/comm" 2>/dev/null)")
    done
    t0=$(tree_ticks "$pid") || t0=0
    say "  $label: $rate records/s over udp for ${duration}s to $HOST:$PORT ..."
    if ! generate "$dir" "$label" --target "$HOST:$PORT:udp" --rate "$rate" \
        --duration "$duration"; then
        stop_pid "$pid" INT
        stop_foreign
        return 0
    fi
    # Drained: socket queue empty, core and plugin no longer using CPU.
    t1=$(tree_ticks "$pid") || t1=$t0
    for ((i = 0; i < 150; i++)); do
        sleep 0.3
        q=$(udp_field "$PORT" rx_queue)
        c=$(tree_ticks "$pid") || break
        [[ ${q:-0} -eq 0 && $c -eq $t1 ]] && break
        t1=$c
    done
    drops=$(udp_field "$PORT" drops)
    # SIGINT: nfacctd blocks SIGTERM while it waits for a datagram.
    stop_pid "$pid" INT
    stop_foreign
    if [[ ! -s $dir/flows.csv ]]; then
        fail "$label: nfacctd wrote no $dir/flows.csv:"
        sed 's/^/    /' "$dir/nfacctd.log" >&2
        return 0
    fi
    agg_pk=$(awk -F, 'NR > 1 { p += $6 } END { printf "%.0f", p }' "$dir/flows.csv")
    # Records received, estimated from the packets aggregated (exact when
    # nothing was lost: every record's packetDeltaCount is summed once).
    est=$(awk -v o="$OFFERED" -v a="$agg_pk" -v s="$PACKETS" \
        'BEGIN { printf "%.0f", s ? o * a / s : 0 }')
    if [[ $agg_pk == "$PACKETS" ]]; then est=$OFFERED; fi
    NFACCTD_NOTE="nfacctd aggregated $agg_pk packets of the $PACKETS sent, in $(($(wc -l <"$dir/flows.csv") - 1)) 5-tuples; $(grep -o 'nfacctd_pipe_size: obtained=[0-9]*' "$dir/nfacctd.log" | sed 's/.*=/socket buffer /') bytes"
    if grep -q 'Missing data detected' "$dir/nfacctd.log"; then
        NFACCTD_NOTE+="; its plugin reported missing data (core-to-plugin ring overrun)"
    fi
    ROWS+=("$label|udp|$rate|$OFFERED|$SECS|$MESSAGES|$est|${drops:-?}|$t0|$t1|-|$GEN_CPU")
}

# ---------------------------------------------------------------------------
# Memory per flow
# ---------------------------------------------------------------------------

# big_vmas PID: "start-end" of the anonymous read-write mappings of 60 MiB
# or more: at start-up, before any traffic, these are the aggregator's
# queues (two of 64 MiB per shard, allocated at start), not flows.
big_vmas() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { r = $1; anon = (NF == 5 && $2 == "rw-p") }
         /^Size:/ { if (anon && $2 >= 61440) print r }' "/proc/$1/smaps"
}

# vma_rss_kb PID RANGES: the Rss of the mappings whose range is in RANGES
# (space separated), and how many of RANGES were still found as they were.
vma_rss_kb() {
    awk -v want=" $2 " '/^[0-9a-f]+-[0-9a-f]+ / { hit = index(want, " " $1 " ") > 0 }
         /^Rss:/ { if (hit) { kb += $2; n++ } }
         END { printf "%d %d", kb, n }' "/proc/$1/smaps"
}

memory_run() {
    local dir="$TMP/memory" records rss_idle rss flows tb t0 t1 exported queues qkb qn nq
    mkdir -p "$dir"
    # Every flow is seen: the generator reports the flows round robin, and
    # inter-node and pod-to-Service flows (half of them) by both nodes: 1.5
    # records per flow. 200 pods per node keep the 5-tuples distinct (a few
    # still coincide: flows held is what counts).
    records=$((FLOWS * 8 / 5))
    # Nothing expires or is evicted during the run.
    start_aggregator "$dir" tcp "activeFlowRecordTimeout: 24h
inactiveFlowRecordTimeout: 24h
correlationWait: 24h
maxFlows: $((FLOWS * 2 > 1000 ? FLOWS * 2 : 1000))" || return 0
    sleep 1
    rss_idle=$(vmrss_kb "$AGG_PID")
    queues=$(big_vmas "$AGG_PID" | tr '\n' ' ')
    nq=$(wc -w <<<"$queues")
    t0=$(cpu_ticks "$AGG_PID")
    say "  $records records of $FLOWS flows (200 pods per node) over tcp, flat out ..."
    generate "$dir" memory --target "$HOST:$PORT:tcp" --flows "$FLOWS" --pods-per-node 200 \
        --records "$records" --rate 0 || { stop_pid "$AGG_PID"; return 0; }
    agg_drained "$OFFERED" || say "  note: memory: the aggregator was still busy after 60 s"
    t1=$(cpu_ticks "$AGG_PID")
    rss=$(vmrss_kb "$AGG_PID")
    read -r qkb qn <<<"$(vma_rss_kb "$AGG_PID" "$queues")"
    flows=$(metric flowvis_aggregator_flows)
    tb=$(metric flowvis_aggregator_flow_table_bytes)
    exported=$(api /recordmetrics | sed -n 's/.*"numRecordsExported":\([0-9]*\).*/\1/p')
    stop_pid "$AGG_PID"
    if [[ -z $rss || -z $flows || -z $tb || ${flows:-0} -eq 0 ]]; then
        fail "memory: cannot read the aggregator's RSS or metrics"
        return 0
    fi
    [[ $qn == "$nq" ]] || qkb=-1 # a queue mapping changed (merged): unknown
    awk -v ri="$rss_idle" -v r="$rss" -v f="$flows" -v tb="$tb" -v want="$FLOWS" \
        -v ex="${exported:-?}" -v recv="$RECEIVED" -v off="$OFFERED" -v c="$((t1 - t0))" \
        -v hz="$CLK_TCK" -v secs="$SECS" -v q="$qkb" -v nq="$nq" 'BEGIN {
        mib = 1024
        printf "  flows held: %d (generator: %d flows; exported once each so far: %s); %d of %d records received\n",
               f, want, ex, recv, off
        printf "  VmRSS: idle %.1f MiB, holding the flows %.1f MiB", ri / mib, r / mib
        if (q >= 0)
            printf ", of which its queues %.1f MiB (%d mappings of >= 60 MiB at start)", q / mib, nq
        printf "\n"
        a = (r - ri) * 1024 / f
        printf "  (RSS - idle RSS) / flows            = %4.0f bytes per flow (target <= 400: %s)\n",
               a, a <= 400 ? "met" : "NOT MET"
        if (q >= 0) {
            b = (r - ri - q) * 1024 / f
            printf "  (RSS - idle RSS - queues) / flows   = %4.0f bytes per flow (target <= 400: %s)\n",
                   b, b <= 400 ? "met" : "NOT MET"
        }
        printf "  flowvis_aggregator_flow_table_bytes = %4.0f bytes per flow (%.1f MiB)\n", tb / f,
               tb / 1048576
        printf "  CPU while creating the flows: %.3f us/record (%.2f s for %d records sent in %.2f s)\n",
               c / hz / (recv ? recv : 1) * 1e6, c / hz, recv, secs
    }'
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

print_table() {
    local row label proto rate offered secs msgs received drops t0 t1 seqlost gen cpu per util loss mark
    printf '\n%-14s %5s %9s %9s %9s %9s %8s %9s %6s %5s %8s  %s\n' run proto "offered/s" offered \
        received "recv/s" loss "drops" "CPU s" util "CPU us/r" result
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label proto rate offered secs msgs received drops t0 t1 seqlost gen <<<"$row"
        cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }')
        per=$(awk -v c="$cpu" -v n="$received" 'BEGIN { printf "%.3f", n ? c / n * 1e6 : 0 }')
        util=$(awk -v c="$cpu" -v s="$secs" 'BEGIN { printf "%.0f%%", s ? 100 * c / s : 0 }')
        loss=$((offered - received))
        mark=ok
        [[ $loss -ne 0 ]] && mark=LOSS
        [[ $rate == 0 ]] && rate=max
        printf '%-14s %5s %9s %9s %9s %9.0f %8s %9s %6s %5s %8s  %s\n' "$label" "$proto" "$rate" \
            "$offered" "$received" "$(awk -v n="$received" -v s="$secs" 'BEGIN { print s ? n / s : 0 }')" \
            "$loss" "$drops" "$cpu" "$util" "$per" "$mark"
        if [[ $seqlost != - && $seqlost != 0 ]]; then
            say "    ($label: $seqlost records missing by sequence numbers)"
        fi
        PER[$label]=$per
        if [[ $label == tcp-max ]]; then TCP_MAX="$received $secs $msgs $loss $cpu $gen"; fi
        if [[ $label == udp-$RATE ]]; then UDP_FIXED="$loss $per"; fi
    done
}

# ---------------------------------------------------------------------------

[[ -x $FLOWVIS ]] || { echo "bench: $FLOWVIS missing (run make)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench: curl missing (scripts/deps.sh)" >&2; exit 1; }

busy_check
NFACCTD_NOTE=""
TCP_MAX=""
UDP_FIXED=""
agg_run "udp-$RATE" udp "$RATE" "$DURATION"
if command -v nfacctd >/dev/null; then
    nfacctd_run "nfacctd-$RATE" "$RATE" "$DURATION"
else
    say "  nfacctd: skipped, not installed (scripts/deps.sh bench installs pmacct)"
fi
if [[ $FLATOUT_DURATION -gt 0 ]]; then
    agg_run tcp-max tcp 0 "$FLATOUT_DURATION"
fi

if [[ ${#ROWS[@]} -gt 0 ]]; then
    print_table
    say ""
    say "  loss = offered - received (numRecordsReceived; for nfacctd estimated from the"
    say "  packets it aggregated); drops = kernel drops of the UDP socket (aggregator: its"
    say "  metric / /proc/net/udp); CPU = utime+stime while receiving (aggregator: all its"
    say "  threads; nfacctd: core + plugin); util = CPU s / seconds of sending."
    for t in "${THREADS[@]}"; do
        say "  aggregator CPU s by thread (main first), $t"
    done
    [[ -n $NFACCTD_NOTE ]] && say "  $NFACCTD_NOTE"
    if [[ -n $UDP_FIXED ]]; then
        read -r l p <<<"$UDP_FIXED"
        awk -v l="$l" -v rate="$RATE" -v p="$p" 'BEGIN {
            printf "  zero loss at %d records/s over UDP: %s\n", rate, l == 0 ? "met" : "NOT MET (" l " lost)"
            printf "  CPU per record at %d records/s: %.3f us (target <= 1 us: %s)\n", rate, p,
                   p <= 1 ? "met" : "NOT MET"
        }'
    fi
    if [[ -n ${PER[udp-$RATE]:-} && -n ${PER[nfacctd-$RATE]:-} ]]; then
        awk -v a="${PER[udp-$RATE]}" -v b="${PER[nfacctd-$RATE]}" 'BEGIN {
            if (b > 0) printf "  CPU per record flowvis aggregator / nfacctd = %.2f\n", a / b }'
    fi
    if [[ -n $TCP_MAX ]]; then
        read -r r s m l c g <<<"$TCP_MAX"
        awk -v r="$r" -v s="$s" -v m="$m" -v l="$l" -v c="$c" -v g="$g" 'BEGIN {
            printf "  over TCP, flat out: %.0f records/s (%.0f messages of up to 64 KiB/s) %s;\n",
                   r / s, m / s, l == 0 ? "with zero loss" : "with LOSS (" l ")"
            printf "    the aggregator used %.0f%% of a core, the generator %.0f%%\n",
                   100 * c / s, 100 * g / s
        }'
    fi
    say "  reference: the go-ipfix based aggregator (Antrea) handles ~12.7k messages/s on 2 CPUs"
fi

if [[ $FLOWS -gt 0 ]]; then
    say ""
    say "  memory per live flow ($FLOWS flows, tcp, timeouts 24h):"
    memory_run
fi

if [[ $FAILED -ne 0 ]]; then
    say "bench: aggregator: some benchmarks failed to run (see above)"
    exit 1
fi
