#!/usr/bin/env bash
# The demo, as far as the project has come: `flowvis generate` plays a
# simulated 3-node cluster that exports agent-format IPFIX over UDP to
# `flowvis collector`, which writes every record as a JSON line and prints
# a live summary.  Ctrl-C (or DEMO_SECONDS) stops both; the collector then
# prints its per-exporter summary.
#
#   make demo                    run until Ctrl-C
#   make demo DEMO_SECONDS=30    run for 30 seconds
#   DEMO_RATE=5000 make demo     records per second (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/flowvis
port=${DEMO_PORT:-4739}
rate=${DEMO_RATE:-2000}
seconds=${DEMO_SECONDS:-0}
out=build/demo
mkdir -p "$out"

collector_pid= generator_pid=
cleanup() {
    trap - EXIT INT TERM
    [ -n "$generator_pid" ] && kill "$generator_pid" 2>/dev/null || true
    if [ -n "$collector_pid" ]; then
        kill -TERM "$collector_pid" 2>/dev/null || true
        wait "$collector_pid" 2>/dev/null || true
    fi
    echo
    echo "demo: stopped. Records: $out/records.jsonl ($(wc -l < "$out/records.jsonl") lines)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "demo: collector on 127.0.0.1:$port/udp, records as JSON lines in $out/records.jsonl"
"$bin" collector --address "127.0.0.1:$port:udp" --format json --stats-interval 2 \
    > "$out/records.jsonl" &
collector_pid=$!
sleep 0.3
kill -0 "$collector_pid" 2>/dev/null || { echo "demo: the collector did not start" >&2; exit 1; }

duration=$seconds
[ "$duration" -gt 0 ] || duration=31536000
echo "demo: generator: 3 nodes, $rate records/s; Ctrl-C to stop"
echo "demo: try:  tail -f $out/records.jsonl | jq -c '.ipfix | {sourcePodName, destinationPodName, flowType, octetDeltaCount}'"
"$bin" generate --target "127.0.0.1:$port:udp" --nodes 3 --rate "$rate" --records 0 \
    --duration "$duration" &
generator_pid=$!
wait "$generator_pid" || true
generator_pid=
sleep 0.5
