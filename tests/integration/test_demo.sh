#!/usr/bin/env bash
# test_demo.sh - `make demo` in cluster mode, as a user runs it.
#
# Runs `make demo` (network-namespace cluster, one agent per node, the
# aggregator, SQLite, the workloads) under its own prefix, port and output
# directory, and checks while it runs:
#   - flows of every flowType (1 intra-node, 2 inter-node, 3 to-external,
#     4 from-external) are in the store (SQLite, read directly and through
#     /api/v1/flows) and in the aggregator's memory (/flowrecords);
#   - every workload of scripts/demo-workloads.py ran, with no failed call,
#     and its flows are in the store, with the right Pods, Services and
#     flowTypes;
#   - inter-node Service flows are correlated (both nodes' counters);
#   - the cluster's NetworkPolicies name the admitted flows, and the calls
#     they refuse (the denied-* workloads) are stored with action drop or
#     reject;
# then sends Ctrl-C to the whole process group, as a terminal does, and
# checks that the teardown left no process, namespace or link behind.
# A second run, bounded by DEMO_SECONDS, must come up and stop by itself
# just as cleanly.
# fv-timeout: 300
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
fv_require_root
fv_require_cmd ip nft jq python3 curl sqlite3 setsid make
fv_require_flowvis

prefix=fvd$FV_TAG-
uplink=${prefix%-}0
uplink_net=169.254.$((50 + 16#$FV_TAG % 200))
out=$FV_TMP/demo
api_port=$(fv_free_port "" tcp)
api=http://127.0.0.1:$api_port

# The demo's own teardown is under test; this one only catches what a
# failed test leaves.
fv_defer "$FV_ROOT/tests/cluster/cluster.sh" down --prefix "$prefix" --state "$out/cluster"
fv_defer ip link del "$uplink"

# start_demo NAME SECONDS: `make demo` in a session of its own (its PID is
# the process group that Ctrl-C would signal); returns once it is running.
start_demo() {
    local name=$1 seconds=$2
    fv_bg "$name" "" setsid make --no-print-directory -C "$FV_ROOT" demo DEMO_MODE=cluster \
        DEMO_SECONDS="$seconds" DEMO_API_PORT="$api_port" DEMO_OUT="$out" DEMO_PREFIX="$prefix" \
        DEMO_UPLINK_NET="$uplink_net"
    fv_wait_for 90 "the demo to be running" _demo_running "$name"
}

_demo_running() {
    fv_alive "$1"
    grep -q 'flowvis is running (cluster mode)' "$FV_TMP/$1.out"
}

# flows WHERE...: how many records of the last 15 minutes /api/v1/flows
# counts with these where clauses (KEY=VALUE, KEY~VALUE).
flows() {
    local args=() w
    for w in "$@"; do
        args+=(--data-urlencode "where=$w")
    done
    curl -sf --max-time 5 -G "$api/api/v1/flows" --data-urlencode limit=1 "${args[@]}" |
        jq -r .total
}

_flows_present() {
    fv_alive demo
    [[ $(flows "$@") -gt 0 ]]
}

# expect_flows WHAT WHERE...: wait (bounded) until the store has records.
expect_flows() {
    local what=$1
    shift
    fv_wait_for 60 "$what in the store" _flows_present "$@"
    fv_log "ok: $what: $(flows "$@") records ($*)"
}

# no_leftovers WHAT: nothing of the demo is left on the machine.
no_leftovers() {
    fv_assert_eq "" "$(ip netns list | awk -v p="$prefix" 'index($1, p) == 1 { print $1 }')" \
        "$1: namespaces ${prefix}*"
    fv_assert_eq no "$(ip link show "$uplink" >/dev/null 2>&1 && echo yes || echo no)" \
        "$1: link $uplink"
    # Every process of the demo has $out in its command line (configs,
    # logs, the workloads' cluster.env).
    fv_assert_eq "" "$(pgrep -f -- "$out/" || true)" "$1: processes of the demo"
    fv_assert_eq no "$( [[ -e $out/pids.txt ]] && echo yes || echo no)" "$1: pids.txt"
}

# --- first run: until Ctrl-C ------------------------------------------------
start_demo demo 0
fv_log "demo up: $(grep -c . "$FV_TMP/demo.out") lines of output"
for f in aggregator.yaml agent-node-1.yaml agent-node-3.yaml tls/ca.crt cluster/cluster.env; do
    [[ -s $out/$f ]] || fv_fail "the demo did not write $f"
done
fv_assert_eq 3 "$(curl -sf "$api/metrics" | awk '$1 == "flowvis_aggregator_exporters_connected" { print $2 }')" \
    "agents connected to the aggregator"

# Every flowType, in the store through the API.
expect_flows "flowType 1 (intra-node)" flowType=1
expect_flows "flowType 2 (inter-node)" flowType=2
expect_flows "flowType 3 (to-external)" flowType=3
expect_flows "flowType 4 (from-external)" flowType=4

# Every workload, by what identifies its flows.
expect_flows "web-catalog" sourcePodName~frontend- service=shop/catalog:http
expect_flows "web-payments" sourcePodName~frontend- service=payments/payments-api:http
expect_flows "dns" proto=udp service=kube-system/kube-dns:dns
expect_flows "metrics-scrape (catalog)" sourcePodName~prometheus- destinationPodName~catalog- dstport=9090
expect_flows "metrics-scrape (coredns)" sourcePodName~prometheus- destinationPodName~coredns- dstport=9153
expect_flows "dashboards" sourcePodName~grafana- destinationPodName~prometheus- dstport=9090
expect_flows "ledger-stream" sourcePodName~cart- destinationPodName~ledger- dstport=50051
expect_flows "batch-backup" sourcePodName~ledger- dstip=198.51.100.10 dstport=443 flowType=3
expect_flows "external-api" sourcePodName~frontend- dstip=198.51.100.10 dstport=443 flowType=3
expect_flows "ntp" sourcePodName~catalog- proto=udp dstport=123 flowType=3
expect_flows "apiserver" service=default/kubernetes:https
expect_flows "nodeport" srcip=198.51.100.10 destinationPodName~frontend- dstport=8080 flowType=4
# NetworkPolicies (cluster.sh --policies): names on admitted flows, and the
# refused calls as denied flows.
expect_flows "dashboards, both policies" sourcePodName~grafana- destinationPodName~prometheus- \
    egressNetworkPolicyName=grafana-egress egressNetworkPolicyRuleAction=1 \
    ingressNetworkPolicyName=prometheus-ingress ingressNetworkPolicyRuleAction=1
expect_flows "web-catalog, ingress policy" sourcePodName~frontend- \
    ingressNetworkPolicyName=catalog-ingress ingressNetworkPolicyRuleName=ingress-0
expect_flows "denied-payments (drop)" sourcePodName~ledger- destinationPodName~payments-api- \
    ingressNetworkPolicyName=payments-api-ingress ingressNetworkPolicyRuleAction=2
expect_flows "denied-egress (reject)" sourcePodName~grafana- dstip=198.51.100.10 \
    egressNetworkPolicyName=grafana-egress egressNetworkPolicyRuleAction=3

# The same in the SQLite file itself.
db=$out/flows.db
fv_assert_eq "1 2 3 4" "$(sqlite3 "$db" 'SELECT DISTINCT flowType FROM flows WHERE flowType > 0 ORDER BY 1' | xargs)" \
    "flowTypes in $db"

# Correlation: inter-node Service flows carry both nodes' reports (and so
# both node names).
both=$(flows flowType=2 service=shop/catalog:http flowEndSecondsFromSourceNode!=0 \
    flowEndSecondsFromDestinationNode!=0 sourceNodeName!= destinationNodeName!=)
fv_assert_ge 1 "$both" "inter-node catalog records with both nodes' reports"

# The aggregator's memory (/flowrecords) holds every flowType, with Pod names.
recs=$("$FLOWVIS" get flowrecords -o json --server "$api")
for t in 1 2 3 4; do
    fv_assert_ge 1 "$(jq --argjson t "$t" '[.[] | select(.flowType == $t)] | length' <<<"$recs")" \
        "records of flowType $t in /flowrecords"
done
fv_assert_ge 1 "$(jq '[.[] | select(.sourcePodName | startswith("frontend-"))] | length' <<<"$recs")" \
    "frontend records in /flowrecords"

# The workloads' own account: every workload has clients, calls, no failure.
status=$out/workloads-status.json
fv_wait_for 10 "the workloads' status" test -s "$status"
for w in web-catalog web-payments dns metrics-scrape dashboards ledger-stream batch-backup \
    external-api ntp apiserver nodeport denied-payments denied-egress; do
    ok=ok
    [[ $w == denied-* ]] && ok=refused
    fv_assert_ge 1 "$(jq --arg w "$w" '.workloads[$w].clients // 0' "$status")" "$w: clients"
    fv_assert_ge 1 "$(jq --arg w "$w" --arg k "$ok" '.workloads[$w][$k] // 0' "$status")" \
        "$w: calls $ok"
    fv_assert_eq 0 "$(jq --arg w "$w" '.workloads[$w].failed // -1' "$status")" "$w: calls failed"
done

# Ctrl-C, as a terminal sends it: SIGINT to the whole process group.
# make reports the interrupt in its own status (2); the demo's cleanup must
# have finished and said so before make exits.
kill -INT -- "-${FV_PID[demo]}"
fv_wait_exit demo 60
[[ $FV_STATUS =~ ^(0|2|130)$ ]] || fv_fail "make demo exited with $FV_STATUS after Ctrl-C"
grep -q 'stopped; nothing left running' "$FV_TMP/demo.out" ||
    fv_fail "the demo did not report a clean stop: $(tail -n 5 "$FV_TMP/demo.out")"
no_leftovers "after Ctrl-C"

# --- second run: bounded by DEMO_SECONDS -------------------------------------
start_demo demo2 25
fv_assert_eq 3 "$(curl -sf "$api/metrics" | awk '$1 == "flowvis_aggregator_exporters_connected" { print $2 }')" \
    "second run: agents connected"
fv_wait_exit demo2 90
fv_assert_eq 0 "$FV_STATUS" "the second run's exit status at the end of DEMO_SECONDS"
no_leftovers "after DEMO_SECONDS"
