#!/usr/bin/env bash
# store.sh - benchmarks of the stores (part 6 of make bench; also runs
# alone). Figures, not pass/fail.
#
#   a. Rows/s sustained into a private clickhouse-server on 127.0.0.1
#      (Debian's 18.16, started here with scripts/clickhouse-local.sh):
#      build/bench/bench_store pushes BENCH_STORE_ROWS synthetic rows of a
#      20-node cluster through the sink (RowBinary batches, gzip, the
#      aggregator's default batch and queue sizes), timed from the first push
#      until the server confirmed every row; the server shares the 2 cores.
#      Compared with the reference's documented ~4,000 rows/s. Target: >=
#      200k rows/s.
#   b. The same into the embedded SQLite store (WAL, batched transactions,
#      the store's indexes). Target: >= 100k rows/s.
#   c. Query latency of the UI endpoints (/api/v1/flows, /series, /top) over
#      the stored rows, through `flowvis aggregator`'s API: each query of a
#      dashboard-like mix BENCH_QUERY_REPS times, p50 and p95 per store
#      (SQLite alone, then ClickHouse preferred). Target: p95 < 500 ms over
#      1M rows.
#
# Exit status: 0 when everything ran, 1 when something failed to run.
# Environment: BENCH_STORE_ROWS (1000000), BENCH_QUERY_REPS (10),
# BENCH_QUICK=1 (200000 rows, 5 repetitions), BUILD, FLOWVIS, TMPDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BENCH_STORE=${BENCH_STORE:-$BUILD/bench/bench_store}
ROWS_N=${BENCH_STORE_ROWS:-1000000}
REPS=${BENCH_QUERY_REPS:-10}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    ROWS_N=${BENCH_STORE_ROWS:-200000}
    REPS=${BENCH_QUERY_REPS:-5}
fi
HOST=127.0.0.1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/flowvis-bench-store.XXXXXX")
FAILED=0
PIDS=()
RESULTS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        stop_pid "$p"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
    say "FAILED: $*"
    FAILED=1
}

kv() { sed -n "s/^\(.* \)\{0,1\}$1=\([0-9.]*\).*/\2/p" <<<"$2" | head -1; }

# ---------------------------------------------------------------------------
# ClickHouse
# ---------------------------------------------------------------------------

CH_URL=""
ch_start() {
    local http tcp conf server i
    server=$("$ROOT/scripts/clickhouse-local.sh" server) || return 1
    http=$(pick_port) && tcp=$(pick_port) || return 1
    conf=$("$ROOT/scripts/clickhouse-local.sh" config "$TMP/ch" "$http" "$tcp")
    # shellcheck disable=SC2086 # "clickhouse server" on current releases
    $server --config-file="$conf" >"$TMP/ch.out" 2>&1 &
    PIDS+=($!)
    CH_URL=http://$HOST:$http
    for ((i = 0; i < 600; i++)); do
        [[ $(curl -s --max-time 2 "$CH_URL/ping" 2>/dev/null) == Ok.* ]] && return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------
# Rows/s
# ---------------------------------------------------------------------------

# ingest LABEL ARGS...: one bench_store run; its last line holds
# rows_per_s=... bytes_per_row=... rss_kb=...
ingest() {
    local label=$1 out
    shift
    if ! out=$("$BENCH_STORE" "$@" --rows "$ROWS_N" 2>&1); then
        fail "$label: bench_store: $(tail -3 <<<"$out")"
        return 0
    fi
    say "$out" | sed 's/^/  /'
    RESULTS+=("$label|$(kv rows_per_s "$out")|$(kv bytes_per_row "$out") bytes/row, $(kv cpu_us_per_row "$out") us CPU/row")
}

# ---------------------------------------------------------------------------
# Query latency
# ---------------------------------------------------------------------------

API_PORT=""
AGG_PID=""
agg_start() {
    local extra=$1 port i
    port=$(pick_port) && API_PORT=$(pick_port) || return 1
    cat >"$TMP/agg.yaml" <<EOF
listenAddress: "$HOST:$port"
aggregatorTransportProtocol: udp
apiServer:
  apiPort: $API_PORT
  bindAddress: "$HOST"
logLevel: warn
$extra
EOF
    "$FLOWVIS" aggregator --config "$TMP/agg.yaml" >/dev/null 2>"$TMP/agg.log" &
    AGG_PID=$!
    PIDS+=("$AGG_PID")
    for ((i = 0; i < 100; i++)); do
        curl -sf --max-time 1 "http://$HOST:$API_PORT/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

QUERIES=(
    "/api/v1/flows?since=24h&limit=100"
    "/api/v1/flows?since=24h&limit=100&where=sourcePodNamespace=frontend&sort=octetDeltaCount"
    "/api/v1/series?since=24h&metric=throughput&group=pod_pair&top=10"
    "/api/v1/series?since=24h&metric=bytes&group=source_node&top=20"
    "/api/v1/top?since=24h&metric=bytes&group=pod_pair&limit=50"
    "/api/v1/top?since=24h&metric=bytes&group=namespace_pair&limit=20"
    "/api/v1/top?since=24h&metric=bytes&group=policy_pair&limit=20"
    "/api/v1/top?since=1h&metric=bytes&group=service&limit=10"
)

# latency LABEL: every query REPS times; p50/p95 over all of them, and the
# slowest query's p95.
latency() {
    local label=$1 q r t code all=() worst="" worst_t=0
    for q in "${QUERIES[@]}"; do
        local one=()
        for ((r = 0; r < REPS; r++)); do
            read -r code t < <(curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
                --max-time 30 "http://$HOST:$API_PORT$q")
            if [[ $code != 200 ]]; then
                fail "$label: $q answered $code: $(curl -s --max-time 30 "http://$HOST:$API_PORT$q" |
                    head -c 300)"
                return 0
            fi
            one+=("$t")
            all+=("$t")
        done
        t=$(printf '%s\n' "${one[@]}" | sort -g | awk '{ a[NR] = $1 } END {
            i = int(NR * 0.95 + 0.999); if (i > NR) i = NR; print a[i] * 1000 }')
        say "  $label ${q%%\?*} p95 ${t} ms  ($q)"
        if awk -v a="$t" -v b="$worst_t" 'BEGIN { exit !(a > b) }'; then
            worst_t=$t
            worst=$q
        fi
    done
    read -r p50 p95 < <(printf '%s\n' "${all[@]}" | sort -g | awk '{ a[NR] = $1 } END {
        i = int(NR * 0.95 + 0.999); if (i > NR) i = NR
        printf "%.1f %.1f\n", a[int((NR + 1) / 2)] * 1000, a[i] * 1000 }')
    RESULTS+=("$label queries p50/p95 (ms)|$p50 / $p95|slowest p95 ${worst_t} ms: ${worst%%&*}")
}

# ---------------------------------------------------------------------------

say "store benchmark: $ROWS_N rows, $(nproc) CPUs, queries x$REPS"
[[ -x $BENCH_STORE ]] || {
    fail "$BENCH_STORE is missing (make $BENCH_STORE)"
    exit 1
}

if ch_start; then
    say "-- a. ClickHouse ($CH_URL, $(curl -s "$CH_URL/?query=SELECT%20version()"))"
    # The aggregator's defaults: batches of 200,000 rows, a 256 MiB queue.
    ingest "ClickHouse rows/s" --store clickhouse --url "$CH_URL" --database flowvis_bench \
        --batch-rows 200000 --commit-ms 8000 --queue-mb 256
else
    fail "clickhouse-server did not start: $(tail -5 "$TMP/ch.out" 2>/dev/null)"
fi

say "-- b. SQLite ($TMP/flows.db)"
ingest "SQLite rows/s" --store sqlite --path "$TMP/flows.db"

say "-- c. query latency"
if [[ -f $TMP/flows.db ]]; then
    if agg_start "sqlite:
  path: $TMP/flows.db
  retention: 0s
  maxSizeMB: 0"; then
        latency "SQLite"
    else
        fail "aggregator (SQLite) did not start: $(tail -3 "$TMP/agg.log")"
    fi
    stop_pid "$AGG_PID"
fi
if [[ -n $CH_URL ]]; then
    if agg_start "sqlite:
  enable: false
clickHouse:
  enable: true
  databaseURL: $CH_URL
  database: flowvis_bench
  spoolDir: \"\""; then
        latency "ClickHouse"
    else
        fail "aggregator (ClickHouse) did not start: $(tail -3 "$TMP/agg.log")"
    fi
    stop_pid "$AGG_PID"
fi

say ""
say "| figure | result | note |"
say "|---|---|---|"
for r in "${RESULTS[@]}"; do
    IFS='|' read -r a b c <<<"$r"
    say "| $a | $b | $c |"
done
say "| reference (Antrea flow aggregator → ClickHouse) | ~4,000 rows/s | documented |"
exit $FAILED
