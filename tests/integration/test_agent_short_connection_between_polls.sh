#!/usr/bin/env bash
# A connection that is born and dies between two conntrack polls is still
# exported, exactly once, with its exact final counters: the agent's
# conntrack DESTROY event path.
#
# In the namespace cluster, an agent in node-1 polls conntrack every 5 s
# (30 s active, 15 s idle timeouts) and exports to a `flowvis collector` in
# the fabric.
#   1. Right after a poll (seen in flowvis_agent_polls_total), pod 1_1
#      connects to pod 1_2 from port 41020, exchanges 2222 / 3333 bytes and
#      closes; the node's TIME_WAIT entry is then deleted (conntrack -D,
#      which prints the entry's final counters), all within about 1 s. The
#      record must reach the collector before the next poll: one record,
#      octetDeltaCount = octetTotalCount = the deleted entry's bytes (both
#      directions, packets too), flowEndReason 3. Two more polls later
#      there is still exactly one record (the deleted entry is not
#      reported again, nor as "gone" by the sweep).
#   2. The same with a client that aborts with a RST (SO_LINGER 0), port
#      41021: the entry is in CLOSE; deleted right away, it is exported at
#      once with tcpState CLOSE and flowEndReason 3, exactly once.
#   3. A UDP flow (port 41022, 3 datagrams of 100 bytes, 3 answers of 50),
#      deleted while still live (UDP entries have no dying state): exported
#      at once and once, flowEndReason 3, tcpState "", exactly 3 packets /
#      384 octets and 3 / 234 back.
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

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
FVA_POLL=5s fva_agent_config "$FV_TMP/agent.yaml" node-1 172.18.0.1:4739:tcp \
    "inventory:" "  file: $FVC_INVENTORY"
fva_agent_start agent "$NODE" "$FV_TMP/agent.yaml"

SEND=2222 REPLY=3333
fva_tcp_server srv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 8080 "$SEND" "$REPLY"
fva_udp_server usrv "$FVC_POD_1_2_NETNS" "$FVC_POD_1_2_IP4" 5353 50

polls() { fva_metric "$NODE" flowvis_agent_polls_total; }

# wait_next_poll: return just after the agent completes its next poll; sets POLLS.
wait_next_poll() {
    local before i
    before=$(polls)
    for ((i = 0; i < 80; i++)); do
        POLLS=$(polls)
        [[ $POLLS -gt $before ]] && return 0
        sleep 0.1
    done
    fv_fatal "the agent completed no poll in 8 s (polls_total stayed at $before)"
}

# short_connection SPORT tcp|rst|udp: a connection and its deletion right
# after a poll; checks that the record comes before the next poll. Sets CT
# to the deleted entry's counters.
short_connection() {
    local sport=$1 kind=$2 proto=tcp t0 deleted mode=()
    [[ $kind == rst ]] && mode=(rst)
    wait_next_poll
    t0=$(date +%s%N)
    case $kind in
    tcp | rst)
        fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$sport" "$FVC_POD_1_2_IP4" 8080 \
            "$SEND" "$REPLY" "${mode[@]}"
        fva_ct_wait "$NODE" "$([[ $kind == tcp ]] && echo TIME_WAIT || echo CLOSE)" \
            -p tcp --sport "$sport"
        ;;
    udp)
        proto=udp
        fva_udp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$sport" "$FVC_POD_1_2_IP4" 5353 \
            3 100 50
        ;;
    esac
    deleted=$(ip netns exec "$NODE" conntrack -D -p "$proto" --sport "$sport" 2>/dev/null)
    fv_log "deleted $((($(date +%s%N) - t0) / 1000000)) ms after the poll: $deleted"
    [[ $(grep -c . <<<"$deleted") -eq 1 ]] || fv_fatal "conntrack -D deleted '$deleted'"
    CT=$(fva_ct_counters "$deleted")
    fva_wait_flow 3 "$COLL" "$D1" "$sport"
    fv_assert_eq "$POLLS" "$(polls)" "port $sport: polls completed when the record arrived" \
        "(it came from the DESTROY event, not from a poll)"
}

# check_once WHAT SPORT STATE
check_once() {
    local what=$1 sport=$2 state=$3 r
    fv_assert_eq 1 "$(fva_count "$COLL" "$D1" "$sport")" "$what: records"
    fv_assert_eq "$CT" "$(fva_totals "$COLL" "$D1" "$sport")" \
        "$what: totals = the deleted entry's counters"
    fv_assert_eq "$CT" "$(fva_sums "$COLL" "$D1" "$sport")" "$what: deltas = the same"
    r=$(fva_final "$COLL" "$D1" "$sport")
    fv_log "$what: $r"
    fva_assert_fields "$what" "$r" flowEndReason=3 tcpState="$state" flowType=1 \
        sourceIPv4Address="$FVC_POD_1_1_IP4" destinationIPv4Address="$FVC_POD_1_2_IP4" \
        sourcePodName="$FVC_POD_1_1_NAME" destinationPodName="$FVC_POD_1_2_NAME"
}

events_before=$(fva_metric "$NODE" flowvis_agent_conntrack_events_total)
short_connection 41020 tcp
fin_ct=$CT
short_connection 41021 rst
rst_ct=$CT
short_connection 41022 udp
udp_ct=$CT
fv_assert_ge $((events_before + 6)) "$(fva_metric "$NODE" flowvis_agent_conntrack_events_total)" \
    "flowvis_agent_conntrack_events_total (3 NEW + 3 DESTROY at least)"

# Two more polls: nothing new may come for any of them.
wait_next_poll
wait_next_poll
sleep 0.5
fv_alive agent
CT=$fin_ct check_once "closed with FIN, deleted" 41020 TIME_WAIT
CT=$rst_ct check_once "aborted with RST, deleted" 41021 CLOSE
# A UDP flow has no end of its own: deleted while live, it is exported at
# once as ended, with the kernel's exact counts: 3 x (20 + 8 + 100) octets,
# 3 x (20 + 8 + 50) back.
fv_assert_eq "3 384 3 234" "$udp_ct" "UDP: the deleted entry's counters"
CT=$udp_ct check_once "UDP, deleted" 41022 ""
fva_assert_fields "UDP, deleted" "$(fva_final "$COLL" "$D1" 41022)" protocolIdentifier=17 \
    destinationTransportPort=5353
read -r p o rp ro <<<"$fin_ct"
fva_assert_octets "FIN connection: client->server octets" "$SEND" "$p" "$o"
fva_assert_octets "FIN connection: server->client octets" "$REPLY" "$rp" "$ro"
