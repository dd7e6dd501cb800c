#!/usr/bin/env bash
# The demo, as far as the project has come: `flowvis generate` plays a
# simulated 3-node cluster (Pods in three namespaces, Services, external
# calls, NetworkPolicies that allow, drop and reject) and exports its flows
# as agent-format IPFIX over TCP to `flowvis aggregator`, which correlates
# them, stores them in SQLite and serves the web UI and the API.  It prints
# the UI's URL and commands to try, and runs until Ctrl-C (or DEMO_SECONDS),
# then stops both processes.  Everything it writes is under build/demo/.
#
#   make demo                     run until Ctrl-C
#   make demo DEMO_SECONDS=60     run for 60 seconds
#   DEMO_RATE=500 make demo       records per second (default 200)
#   DEMO_API_PORT=18348 make demo the UI/API port (default 10348)
#
# The mini-cluster in network namespaces with real agents comes next
# (issue 7); this simulated cluster is its fallback.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=build/flowvis
api_port=${DEMO_API_PORT:-10348}
ipfix_port=${DEMO_PORT:-4739}
rate=${DEMO_RATE:-200}
seconds=${DEMO_SECONDS:-0}
out=build/demo
mkdir -p "$out"

# A port in use would make the aggregator exit at once; say which.
port_busy() {
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}
for p in "$api_port" "$ipfix_port"; do
    if port_busy "$p"; then
        echo "demo: port $p is in use; set DEMO_API_PORT / DEMO_PORT to free ports" >&2
        exit 1
    fi
done

cat >"$out/aggregator.yaml" <<EOF
# Written by scripts/demo.sh.
listenAddress: 127.0.0.1:$ipfix_port
aggregatorTransportProtocol: tcp
activeFlowRecordTimeout: 5s
inactiveFlowRecordTimeout: 15s
correlationWait: 5s
apiServer:
  apiPort: $api_port
  bindAddress: 127.0.0.1
sqlite:
  path: $PWD/$out/flows.db
  retention: 24h
logLevel: info
EOF
rm -f "$out"/flows.db "$out"/flows.db-wal "$out"/flows.db-shm

agg_pid='' gen_pid=''
cleanup() {
    trap - EXIT INT TERM
    [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null || true
    if [ -n "$agg_pid" ]; then
        kill -TERM "$agg_pid" 2>/dev/null || true
        wait "$agg_pid" 2>/dev/null || true
    fi
    echo
    echo "demo: stopped. Logs: $out/aggregator.log, $out/generate.log; flows: $out/flows.db"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "demo: aggregator: IPFIX on 127.0.0.1:$ipfix_port/tcp, SQLite $out/flows.db"
"$bin" aggregator --config "$out/aggregator.yaml" >"$out/aggregator.log" 2>&1 &
agg_pid=$!
for _ in $(seq 50); do
    curl -sf --max-time 1 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1 && break
    kill -0 "$agg_pid" 2>/dev/null || break
    sleep 0.2
done
if ! curl -sf --max-time 1 "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
    echo "demo: the aggregator did not start; its log:" >&2
    tail -20 "$out/aggregator.log" >&2
    exit 1
fi

duration=$seconds
[ "$duration" -gt 0 ] || duration=31536000
echo "demo: generator: a simulated 3-node cluster, $rate records/s"
"$bin" generate --target "127.0.0.1:$ipfix_port:tcp" --nodes 3 --pods-per-node 6 --flows 300 \
    --rate "$rate" --records 0 --duration "$duration" >"$out/generate.log" 2>&1 &
gen_pid=$!

srv=''
[ "$api_port" = 10348 ] || srv=" --server http://127.0.0.1:$api_port"
cat <<EOF

  flowvis is running.

  Web UI:   http://127.0.0.1:$api_port/
            (flows show up within a few seconds; from another machine:
             ssh -L $api_port:127.0.0.1:$api_port root@THIS-HOST)

  Try:      build/flowvis get flowrecords$srv
            build/flowvis get flows --since 5m$srv
            build/flowvis get recordmetrics$srv
            curl -s 'http://127.0.0.1:$api_port/api/v1/top?group=pod_pair&since=5m' | jq .

  Ctrl-C stops the demo.

EOF
wait "$gen_pid" || true
gen_pid=''
