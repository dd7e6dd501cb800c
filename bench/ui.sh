#!/usr/bin/env bash
# ui.sh - what the web UI's dashboards cost, in Debian's headless Chromium
# (part 7 of make bench; also runs alone after `make all`). Figures, not
# pass/fail.
#
#   a. Seeding: `flowvis generate` sends BENCH_UI_RECORDS agent records of
#      BENCH_UI_FLOWS connections of a 20-node cluster (25 Pods a node) flat
#      out over TCP on 127.0.0.1 to `flowvis aggregator` with the SQLite
#      store (1 s active, 2 s inactive timeout). Timed from the start of the
#      generator until the store holds every row the aggregator exported and
#      no flow is left in memory (this includes the 2 s inactive timeout).
#   b. Every page of the UI (tests/ui/bench.mjs), range "last hour" (every
#      stored row is in it), refresh off: time from navigation to
#      <main data-state=ready> (median of BENCH_UI_LOADS full loads), the
#      longest main-thread task (PerformanceObserver 'longtask': how long the
#      page froze), the JS heap used after a GC, the API requests of a load
#      and the slowest one; and the bytes the first load transfers with an
#      empty cache (the embedded files are gzip-compressed). Targets: ready
#      < 2 s, longest task < 200 ms.
#   c. The same with BENCH_UI_BIG_RECORDS records (1M by default), one load
#      per page, when BENCH_QUICK is not 1.
#
# Nothing here compares with a peer UI: neither Grafana with the reference's
# dashboards nor Kibana can be installed on this machine (no network, no
# packages for them), so the figures are set against the targets only.
# The page-ready time is mostly the store's query time (bench/store.sh part
# c measures the queries alone): with every row in the range, SQLite's
# GROUP BY grows with the rows; ClickHouse is the store for large ranges.
#
# Exit status: 0 when everything ran, 1 when something failed to run.
# Environment: BENCH_UI_FLOWS (100000), BENCH_UI_RECORDS (200000),
# BENCH_UI_BIG_FLOWS (500000), BENCH_UI_BIG_RECORDS (1000000; 0 skips c),
# BENCH_UI_LOADS (3), BENCH_QUICK=1 (skips c), BUILD, FLOWVIS,
# FLOWVIS_CHROMIUM (/usr/bin/chromium), TMPDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
CHROMIUM=${FLOWVIS_CHROMIUM:-/usr/bin/chromium}
FLOWS=${BENCH_UI_FLOWS:-100000}
RECORDS=${BENCH_UI_RECORDS:-200000}
BIG_FLOWS=${BENCH_UI_BIG_FLOWS:-500000}
BIG_RECORDS=${BENCH_UI_BIG_RECORDS:-1000000}
LOADS=${BENCH_UI_LOADS:-3}
[[ ${BENCH_QUICK:-0} == 1 ]] && BIG_RECORDS=0
NODES=20
PODS=25
HOST=127.0.0.1
READY_TARGET_MS=2000
TASK_TARGET_MS=200
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowvis-bench-ui.XXXXXX")
FAILED=0
PIDS=()

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local p
    set +e
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    say "FAILED: $*"
    FAILED=1
}

# ---------------------------------------------------------------------------
# The aggregator and its store
# ---------------------------------------------------------------------------

AGG_PID=""
IPFIX_PORT=""
API=""
agg_start() {
    local dir=$1 api_port i
    IPFIX_PORT=$(pick_port) && api_port=$(pick_port) || return 1
    [[ $api_port != "$IPFIX_PORT" ]] || api_port=$(pick_port) || return 1
    API=http://$HOST:$api_port
    mkdir -p "$dir"
    cat >"$dir/agg.yaml" <<EOF
listenAddress: "$HOST:$IPFIX_PORT"
aggregatorTransportProtocol: tcp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 2s
correlationWait: 2s
logLevel: warn
apiServer:
  apiPort: $api_port
  bindAddress: "$HOST"
sqlite:
  path: $dir/flows.db
  retention: 0s
  maxSizeMB: 0
EOF
    "$FLOWVIS" aggregator --config "$dir/agg.yaml" >/dev/null 2>"$dir/agg.log" &
    AGG_PID=$!
    PIDS+=("$AGG_PID")
    for ((i = 0; i < 100; i++)); do
        curl -sf --max-time 1 "$API/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$AGG_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stored: "rows exported flows-in-memory connections" (empty on error).
stored() {
    local rows m
    rows=$(curl -sf --max-time 30 "$API/api/v1/flows?since=1h&limit=1&columns=flowEndSeconds" | jq -r .total) &&
        m=$(curl -sf --max-time 5 "$API/recordmetrics") &&
        echo "$rows $(jq -r '"\(.numRecordsExported) \(.numFlows) \(.numConnToCollector)"' <<<"$m")"
}

# seed FLOWS RECORDS: sets SEED_SECS, SEND_SECS and ROWS_STORED.
seed() {
    local flows=$1 records=$2 t0 t1 st rows exported inmem conns i gen status=0
    t0=$(date +%s.%N)
    timeout 600 "$FLOWVIS" generate --target "$HOST:$IPFIX_PORT:tcp" --nodes $NODES \
        --pods-per-node $PODS --flows "$flows" --records "$records" --seed 1 \
        2>"$TMP/generate.log" &
    gen=$!
    PIDS+=("$gen")
    wait "$gen" || status=$?
    forget "$gen"
    if [[ $status -ne 0 ]]; then
        fail "flowvis generate (status $status): $(tail -3 "$TMP/generate.log")"
        return 1
    fi
    SEND_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    for ((i = 0; i < 3000; i++)); do
        if st=$(stored) && read -r rows exported inmem conns <<<"$st" &&
            [[ $rows == "$exported" && $inmem == 0 && $conns == 0 && $rows -gt 0 ]]; then
            t1=$(date +%s.%N)
            SEED_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
            ROWS_STORED=$rows
            return 0
        fi
        kill -0 "$AGG_PID" 2>/dev/null || {
            fail "the aggregator died: $(tail -3 "$TMP/agg.log" 2>/dev/null)"
            return 1
        }
        sleep 0.2
    done
    fail "the store did not settle within 10 minutes (last: ${st:-?})"
    return 1
}

# ---------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------

# pages LABEL LOADS: bench.mjs over the aggregator; prints the table.
pages() {
    local label=$1 loads=$2 out="$TMP/$1.json" status=0 pid
    # In the background, so that a signal to this script is handled at once.
    TMPDIR=$TMP FLOWVIS_CHROMIUM=$CHROMIUM timeout -k 5 900 node "$ROOT/tests/ui/bench.mjs" \
        --base "$API" --loads "$loads" --since 1h >"$out" 2>"$TMP/$label.err" &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || status=$?
    forget "$pid"
    if [[ $status -ne 0 ]]; then
        fail "$label: tests/ui/bench.mjs (status $status): $(tail -5 "$TMP/$label.err")"
    fi
    jq -r 'select(.first) | .first |
        "  first load, empty cache: \(.total / 1024 | floor) KiB transferred in \(.requests) requests: " +
        "app.js \(.appJs / 1024 | floor) KiB gzip (\(.appJsDecoded / 1024 | floor) KiB), app.css " +
        "\(.appCss / 1024 | floor) KiB, document \(.document / 1024 | floor) KiB, API answers " +
        "\(.api / 1024 | floor) KiB"' "$out"
    printf '\n  %-16s %9s %6s %-7s %9s %6s %-7s %8s %5s %9s\n' page "ready ms" target result \
        "task ms" target result "heap MB" API "slow API"
    jq -r 'select(.page) | [.page, .ready_ms, .longtask_ms, .heap_mb, .api, .slowest_api_ms,
        (.ready_all | map(tostring) | join("/")), (.longtask_all | map(tostring) | join("/"))] | @tsv' \
        "$out" | while IFS=$'\t' read -r page ready task heap api slow all tasks; do
        printf '  %-16s %9s %6s %-7s %9s %6s %-7s %8s %5s %9s  (loads: %s; %s ms)\n' "$page" "$ready" \
            "<$READY_TARGET_MS" "$(met "$ready" $READY_TARGET_MS)" "$task" "<$TASK_TARGET_MS" \
            "$(met "$task" $TASK_TARGET_MS)" "$heap" "$api" "${slow} ms" "$all" "$tasks"
    done
}

met() {
    if (($1 < $2)); then echo met; else echo "NOT met"; fi
}

# run LABEL FLOWS RECORDS LOADS
run() {
    local label=$1 flows=$2 records=$3 loads=$4
    say "-- $label: $records records of $flows flows, $NODES nodes x $PODS Pods, flat out over TCP"
    if ! agg_start "$TMP/$label"; then
        fail "$label: the aggregator did not start: $(tail -3 "$TMP/$label/agg.log" 2>/dev/null)"
        return 0
    fi
    if seed "$flows" "$records"; then
        say "  seeding: generator done after ${SEND_SECS} s; the store held all $ROWS_STORED rows after" \
            "${SEED_SECS} s ($(awk -v n="$ROWS_STORED" -v s="$SEED_SECS" 'BEGIN { printf "%.0f", n / s }') rows/s" \
            "including the 2 s inactive timeout)"
        pages "$label" "$loads"
    fi
    stop_pid "$AGG_PID"
    rm -rf "${TMP:?}/$label"
}

# ---------------------------------------------------------------------------

[[ -x $FLOWVIS ]] || {
    echo "bench: $FLOWVIS missing (run make)" >&2
    exit 1
}
for c in node jq curl "$CHROMIUM"; do
    command -v "$c" >/dev/null || {
        say "  skipped: $c is not installed (scripts/deps.sh bench)"
        exit 0
    }
done
[[ -f $ROOT/ui/node_modules/playwright-core/package.json ]] || {
    say "  skipped: ui/node_modules/playwright-core is missing (make builds the UI: cd ui && npm ci)"
    exit 0
}

say "UI benchmark: $(nproc) CPUs, $("$CHROMIUM" --version 2>/dev/null | head -1), SQLite store, range 1h"
busy_check
run "small" "$FLOWS" "$RECORDS" "$LOADS"
if [[ $BIG_RECORDS -gt 0 ]]; then
    say ""
    run "big" "$BIG_FLOWS" "$BIG_RECORDS" 1
fi
say ""
say "  ready = navigation start -> main[data-state=ready]; task = the longest main-thread task"
say "  until 1 s after ready (what froze the page); both the median of the loads, each load's"
say "  figures in parentheses. heap = JS heap after a GC; API = requests of one load, slow API ="
say "  the slowest of them. The aggregator's queries share the cores with Chromium, which"
say "  stretches long tasks on a small machine. No peer UI (Grafana, Kibana) can be installed"
say "  here to compare against."
exit $FAILED
