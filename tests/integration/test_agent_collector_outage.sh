#!/usr/bin/env bash
# The agent survives a collector outage without losing a record: what is
# produced while the collector is down waits in the export queue and is
# sent after the agent reconnects.
#
# In the namespace cluster, an agent in node-1 (1 s poll) exports over TCP
# to a `flowvis collector` in the fabric (172.18.0.1:4739). Pod 1_1 makes
# short connections to pod 1_2, one every 0.5 s, each from its own port:
#   A. 4 connections (ports 42000..): all reach the first collector; then
#      the collector is stopped;
#   B. for 10 s, about 20 connections (ports 42100..) while nothing listens
#      on the collector's address: the agent notices the dead session,
#      reports flowvis_agent_collector_connected 0 and holds the records
#      (flowvis_agent_export_queue_records > 0);
#   C. a new collector on the same address, then 4 more connections
#      (ports 42200..).
# Then: every connection of B and C appears in the new collector's output
# exactly once (counted by distinct source ports), every connection of A
# in the first one's and not again in the second's; the agent's
# flowvis_agent_reconnections_total >= 1, flowvis_agent_collector_connected
# 1, nothing dropped or refused, and its log says it disconnected and
# connected again.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../cluster/lib.sh
source "$FV_ROOT/tests/cluster/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss
fv_require_flowvis

fv_cluster_up --nodes 2 --pods-per-node 3
D1=$(fva_domain node-1)
NODE=$FVC_NODE_1_NETNS
ADDR=172.18.0.1:4739

fva_collector_start coll1 "$FVC_FABRIC_NETNS" "$ADDR"
fva_agent_config "$FV_TMP/agent.yaml" node-1 "$ADDR:tcp" "inventory:" "  file: $FVC_INVENTORY"
fva_agent_start agent "$NODE" "$FV_TMP/agent.yaml"
fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 100 200 60

# connect PORT: one short connection from pod 1_1 to pod 1_2.
connect() {
    fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$1" "$FVC_POD_1_2_IP4" 8080 100 200
}

# ports FILE: the distinct source ports of node-1's records to pod 1_2, sorted.
ports() {
    jq -r --argjson d "$D1" --arg dst "$FVC_POD_1_2_IP4" 'select(.observationDomainId == $d
        and .ipfix.destinationIPv4Address == $dst) | .ipfix.sourceTransportPort' "$1" | sort -n -u
}
# dup_ports FILE: source ports with more than one record.
dup_ports() {
    jq -r --argjson d "$D1" --arg dst "$FVC_POD_1_2_IP4" 'select(.observationDomainId == $d
        and .ipfix.destinationIPv4Address == $dst) | .ipfix.sourceTransportPort' "$1" |
        sort -n | uniq -d | xargs echo -n
}

# --- A: before the outage ----------------------------------------------------------
A=()
for ((k = 0; k < 4; k++)); do
    connect $((42000 + k))
    A+=($((42000 + k)))
    sleep 0.5
done
fv_wait_json 10 "$FV_TMP/coll1.out" '.ipfix.sourceTransportPort >= 42000' "${#A[@]}"
fv_collector_stop coll1
fv_log "collector stopped"

# --- B: the outage ------------------------------------------------------------------
B=()
outage_start=$SECONDS
for ((k = 0; k < 40 && SECONDS - outage_start < 10; k++)); do
    connect $((42100 + k))
    B+=($((42100 + k)))
    sleep 0.5
done
fv_alive agent
fv_log "${#B[@]} connections during the outage"
fv_assert_eq 0 "$(fva_metric "$NODE" flowvis_agent_collector_connected)" \
    "flowvis_agent_collector_connected during the outage"
fv_assert_ge 1 "$(fva_metric "$NODE" flowvis_agent_export_queue_records)" \
    "flowvis_agent_export_queue_records during the outage"

# --- C: a new collector on the same address ------------------------------------------------
fva_collector_start coll2 "$FVC_FABRIC_NETNS" "$ADDR"
fv_log "collector restarted after $((SECONDS - outage_start)) s"
C=()
for ((k = 0; k < 4; k++)); do
    connect $((42200 + k))
    C+=($((42200 + k)))
    sleep 0.5
done
# Reconnecting takes up to one backoff step (at most ~8 s at this point).
fv_wait_json 30 "$FV_TMP/coll2.out" '.ipfix.sourceTransportPort >= 42100' $((${#B[@]} + ${#C[@]}))
sleep 1.5 # one more poll: no duplicate may follow
fv_alive agent

printf '%s\n' "${A[@]}" >"$FV_TMP/want1"
ports "$FV_TMP/coll1.out" >"$FV_TMP/got1"
fv_assert_same_lines "$FV_TMP/want1" "$FV_TMP/got1" "connections before the outage in the first collector"
printf '%s\n' "${B[@]}" "${C[@]}" >"$FV_TMP/want2"
ports "$FV_TMP/coll2.out" | awk '$1 >= 42100' >"$FV_TMP/got2"
fv_assert_same_lines "$FV_TMP/want2" "$FV_TMP/got2" \
    "connections during and after the outage in the restarted collector"
fv_assert_eq "" "$(ports "$FV_TMP/coll2.out" | awk '$1 < 42100' | xargs)" \
    "connections before the outage sent again to the restarted collector"
fv_assert_eq "" "$(dup_ports "$FV_TMP/coll1.out")$(dup_ports "$FV_TMP/coll2.out")" \
    "source ports with more than one record"

metrics=$(fva_metrics "$NODE") || fv_fatal "no metrics from the agent"
metric() { awk -v n="$1" '$1 == n { print $2 }' <<<"$metrics"; }
fv_assert_ge 1 "$(metric flowvis_agent_reconnections_total)" "flowvis_agent_reconnections_total"
fv_assert_eq 1 "$(metric flowvis_agent_collector_connected)" "flowvis_agent_collector_connected"
fv_assert_eq 0 "$(metric flowvis_agent_export_queue_records)" "flowvis_agent_export_queue_records"
fv_assert_eq 0 "$(metric flowvis_agent_records_dropped_total)" "flowvis_agent_records_dropped_total"
fv_assert_eq 0 "$(metric flowvis_agent_export_queue_full_total)" "flowvis_agent_export_queue_full_total"
fv_assert_ge $((${#A[@]} + ${#B[@]} + ${#C[@]})) "$(metric flowvis_agent_records_exported_total)" \
    "flowvis_agent_records_exported_total"
grep -q "collector disconnected address=$ADDR:tcp" "$FV_TMP/agent.err" ||
    fv_fail "the agent did not log that it lost the collector"
fv_assert_eq 2 "$(grep -c "collector connected address=$ADDR:tcp" "$FV_TMP/agent.err")" \
    "'collector connected' lines in the agent's log"
fv_collector_stop coll2
summary=$(grep -E '^  total ' "$FV_TMP/coll2.err")
fv_log "restarted collector: $summary"
fv_assert_eq "lost=0" "$(grep -oE ' lost=[0-9]+' <<<"$summary" | xargs)" \
    "restarted collector: records lost by sequence numbers"
