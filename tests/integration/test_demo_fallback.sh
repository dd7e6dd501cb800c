#!/usr/bin/env bash
# test_demo_fallback.sh - without root, `scripts/demo.sh` says why the
# namespace cluster cannot run and falls back to the simulated cluster.
#
# Runs the demo as user nobody (DEMO_MODE=auto, bounded by DEMO_SECONDS),
# and checks that it names the reason, that the simulated cluster's flows
# reach the store and the UI is served, that it stops by itself with status
# 0, leaving no process behind; and that DEMO_MODE=cluster without root is
# an error that says so, not a silent fallback.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
fv_require_root
fv_require_cmd setpriv curl jq
fv_require_flowvis

# A directory user nobody can write, inside the test's scratch space.
chmod 755 "$FV_TMP"
out=$FV_TMP/demo
mkdir -m 777 "$out"
api_port=$(fv_free_port "" tcp)
ipfix_port=$(fv_free_port "" tcp)
while [[ $ipfix_port == "$api_port" ]]; do ipfix_port=$(fv_free_port "" tcp); done
api=http://127.0.0.1:$api_port

as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp DEMO_OUT="$out" \
        DEMO_API_PORT="$api_port" DEMO_PORT="$ipfix_port" "$@"
}

# DEMO_MODE=cluster cannot fall back.
rc=0
as_nobody DEMO_MODE=cluster DEMO_SECONDS=5 "$FV_ROOT/scripts/demo.sh" >"$FV_TMP/forced.out" 2>&1 || rc=$?
fv_assert_eq 1 "$rc" "DEMO_MODE=cluster without root: exit status"
grep -q 'DEMO_MODE=cluster, but not running as root' "$FV_TMP/forced.out" ||
    fv_fail "DEMO_MODE=cluster without root: no reason given: $(cat "$FV_TMP/forced.out")"

fv_bg demo "" setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp DEMO_OUT="$out" \
    DEMO_API_PORT="$api_port" DEMO_PORT="$ipfix_port" DEMO_SECONDS=20 "$FV_ROOT/scripts/demo.sh"
fv_wait_for 30 "the simulated demo to run" grep -q 'flowvis is running (simulated mode)' "$FV_TMP/demo.out"
grep -q 'cannot run here: not running as root' "$FV_TMP/demo.out" ||
    fv_fail "the fallback does not say why: $(head -5 "$FV_TMP/demo.out")"
grep -q 'falling back to the simulated cluster' "$FV_TMP/demo.out" ||
    fv_fail "the fallback is not announced"

_sim_flows() {
    [[ $(curl -sf --max-time 5 "$api/api/v1/flows?limit=1&where=flowType=2" | jq .total) -gt 0 ]]
}
fv_wait_for 30 "simulated inter-node flows in the store" _sim_flows
fv_assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "$api/")" "the UI's page"
fv_assert_eq "\"sqlite\"" "$(curl -sf "$api/api/v1/ui" | jq .store)" "the UI's store"

fv_wait_exit demo 40
fv_assert_eq 0 "$FV_STATUS" "exit status at the end of DEMO_SECONDS"
grep -q 'nothing left running' "$FV_TMP/demo.out" || fv_fail "no clean stop reported"
fv_assert_eq "" "$(pgrep -f -- "$out/" || true)" "aggregator left running"
fv_assert_eq "" "$(pgrep -f -- "generate --target 127.0.0.1:$ipfix_port:" || true)" \
    "generator left running"
