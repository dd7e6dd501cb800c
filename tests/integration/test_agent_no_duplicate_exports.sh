#!/usr/bin/env bash
# Each connection is exported exactly once, even when conntrack dumps are
# slow and connections start and end during one.
#
# In the namespace cluster, an agent in node-1 (1 s poll, 30 s active /
# 15 s idle timeouts) exports to a `flowvis collector` in the fabric.
# node-1's conntrack table is first filled with 60000 UDP entries from the
# node itself to the fabric (not Pod traffic: the agent walks them in
# every dump but does not export them), which makes each dump take
# ~100-200 ms. Then pod 1_1 makes 100 short TCP connections to pod 1_2,
# back to back, from ports 45000..45099. A connection that begins and
# ends while a dump is running has its NEW event read after the dump
# that already saw it in TIME_WAIT; the agent must not take that event's
# smaller counters for a new connection on the same tuple.
#   - exactly 100 records, one per source port, each with flowEndReason 3,
#     tcpState TIME_WAIT, deltas = totals, and the same totals for all
#     (identical exchanges of 100 / 200 bytes);
#   - no record of the filler entries.
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
COLL=$FV_TMP/coll.out
D1=$(fva_domain node-1)
NODE=$FVC_NODE_1_NETNS
N=100 FIRST=45000

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
fva_agent_config "$FV_TMP/agent.yaml" node-1 172.18.0.1:4739:tcp \
    "inventory:" "  file: $FVC_INVENTORY"
fva_agent_start agent "$NODE" "$FV_TMP/agent.yaml"

fv_in "$NODE" python3 "$FV_HELPERS/udp_fill.py" "$FVC_NODE_1_IP4" 172.18.0.1 60000
fv_assert_ge 60000 "$(fv_in "$NODE" cat /proc/sys/net/netfilter/nf_conntrack_count)" \
    "node-1 conntrack entries after the fill"
sleep 2.2 # two polls over the full table
fv_log "poll duration: $(fva_metric "$NODE" flowvis_agent_poll_duration_microseconds) us"

fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 100 200 60
for ((k = 0; k < N; k++)); do
    fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" $((FIRST + k)) "$FVC_POD_1_2_IP4" 8080 100 200
done
fv_wait_json 20 "$COLL" ".ipfix.sourceTransportPort >= $FIRST and .ipfix.protocolIdentifier == 6" "$N"
sleep 2.5 # two more polls: a duplicate would have come by now
fv_alive agent

recs=$(jq -c --argjson d "$D1" --argjson f "$FIRST" 'select(.observationDomainId == $d
    and .ipfix.protocolIdentifier == 6 and .ipfix.sourceTransportPort >= $f) | .ipfix' "$COLL")
fv_assert_eq "$N" "$(grep -c . <<<"$recs")" "records of the $N connections"
fv_assert_eq "$N" "$(jq .sourceTransportPort <<<"$recs" | sort -u | wc -l)" "distinct source ports"
dups=$(jq .sourceTransportPort <<<"$recs" | sort | uniq -d | xargs)
if [[ -n $dups ]]; then
    fv_fail "source ports exported more than once: $dups"
    for p in $dups; do
        jq -c --argjson p "$p" 'select(.sourceTransportPort == $p) | {sourceTransportPort,
            flowEndReason, tcpState, packetDeltaCount, packetTotalCount, flowStartSeconds,
            flowEndSeconds}' <<<"$recs" | sed 's/^/    /' >&2
    done
fi
fv_assert_eq "" "$(jq -c 'select(.flowEndReason != 3 or .tcpState != "TIME_WAIT"
    or .octetDeltaCount != .octetTotalCount or .packetDeltaCount != .packetTotalCount)
    | .sourceTransportPort' <<<"$recs" | xargs)" \
    "ports whose record is not a single final export (reason 3, TIME_WAIT, deltas = totals)"
fv_assert_eq 1 "$(jq -c '[.packetTotalCount, .octetTotalCount, .reversePacketTotalCount,
    .reverseOctetTotalCount]' <<<"$recs" | sort -u | wc -l)" \
    "distinct counter sets (every exchange is the same)"
fv_assert_eq 0 "$(fv_count_json "$COLL" '.ipfix.protocolIdentifier == 17')" \
    "records of the filler UDP entries (node -> fabric, not Pod traffic)"
