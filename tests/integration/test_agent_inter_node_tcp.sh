#!/usr/bin/env bash
# A TCP connection from a Pod on node-1 to a Pod on node-2 is exported by
# both nodes' agents, each with the half of the identity that it knows.
#
# In the namespace cluster, agents in node-1 and node-2 export to one
# `flowvis collector` in the fabric. shop/frontend on node-1 (pod 1_1)
# connects from port 41002 to shop/catalog on node-2 (pod 2_2) port 8080,
# sends 7000 bytes, gets 9000 back, closes. Then:
#   - node-1 (domain FNV-1("node-1")) exports the source half:
#     sourcePodName/Namespace and sourceNodeName node-1 set, destination
#     Pod, namespace and node empty;
#   - node-2 (domain FNV-1("node-2")) the destination half: the reverse;
#   - both flowType 2 (inter-node), the same 5-tuple (the destination is
#     the Pod's own address, no NAT on the way), tcpState TIME_WAIT and
#     flowEndReason 3 on the last record, exactly one record each;
#   - each node's correlated counters (sum of deltas = last totals) equal
#     its own conntrack counters, and the two nodes agree with each other
#     (every packet passes through both).
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
D1=$(fva_domain node-1) D2=$(fva_domain node-2)

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    fva_agent_config "$FV_TMP/agent$n.yaml" "node-$n" 172.18.0.1:4739:tcp \
        "inventory:" "  file: $FVC_INVENTORY"
    fva_agent_start "agent$n" "${!ns}" "$FV_TMP/agent$n.yaml"
done

SPORT=41002 SEND=7000 REPLY=9000
fva_tcp_server srv "$FVC_POD_2_2_NETNS" "$FVC_POD_2_2_IP4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" "$SPORT" "$FVC_POD_2_2_IP4" 8080 "$SEND" "$REPLY"
declare -A ct=()
for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    fva_ct_wait "${!ns}" TIME_WAIT -p tcp -s "$FVC_POD_1_1_IP4" --sport "$SPORT"
    ct[$n]=$(fva_ct_counters "$FVA_CT")
    fv_log "node-$n kernel: $FVA_CT"
done

fva_wait_flow 10 "$COLL" "$D1" "$SPORT" '.flowEndReason == 3'
fva_wait_flow 10 "$COLL" "$D2" "$SPORT" '.flowEndReason == 3'
sleep 2.5 # another poll or two: nothing more may come
fv_alive agent1
fv_alive agent2

for n in 1 2; do
    d=D$n
    fv_assert_eq 1 "$(fva_count "$COLL" "${!d}" "$SPORT")" "node-$n: records of the connection"
    totals=$(fva_totals "$COLL" "${!d}" "$SPORT")
    fv_assert_eq "$totals" "$(fva_sums "$COLL" "${!d}" "$SPORT")" "node-$n: sum of deltas = totals"
    fv_assert_eq "${ct[$n]}" "$totals" "node-$n: totals = its conntrack counters"
done
fv_assert_eq "${ct[1]}" "${ct[2]}" "conntrack counters of node-1 and node-2 agree"
read -r pkts octets rpkts roctets <<<"${ct[1]}"
fva_assert_octets "client->server octets" "$SEND" "$pkts" "$octets"
fva_assert_octets "server->client octets" "$REPLY" "$rpkts" "$roctets"

tuple="sourceIPv4Address=$FVC_POD_1_1_IP4 destinationIPv4Address=$FVC_POD_2_2_IP4
    sourceTransportPort=$SPORT destinationTransportPort=8080 protocolIdentifier=6"
common="flowType=2 tcpState=TIME_WAIT flowEndReason=3 templateId=256
    destinationClusterIPv4=0.0.0.0 destinationServicePort=0 destinationServicePortName="
r1=$(fva_final "$COLL" "$D1" "$SPORT")
r2=$(fva_final "$COLL" "$D2" "$SPORT")
fv_log "node-1 record: $r1"
fv_log "node-2 record: $r2"
# shellcheck disable=SC2086 # word splitting of the field lists is intended
{
    fva_assert_fields "node-1 (source half)" "$r1" $tuple $common exporterAddress="$FVC_NODE_1_IP4" \
        sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace="$FVC_POD_1_1_NAMESPACE" \
        sourceNodeName=node-1 destinationPodName= destinationPodNamespace= destinationNodeName=
    fva_assert_fields "node-2 (destination half)" "$r2" $tuple $common exporterAddress="$FVC_NODE_2_IP4" \
        sourcePodName= sourcePodNamespace= sourceNodeName= \
        destinationPodName="$FVC_POD_2_2_NAME" destinationPodNamespace="$FVC_POD_2_2_NAMESPACE" \
        destinationNodeName=node-2
}
fv_assert_eq "$D2" "$(jq -r --argjson p "$SPORT" 'select(.exporterAddress == "'"$FVC_NODE_2_IP4"'"
    and .ipfix.sourceTransportPort == $p) | .observationDomainId' "$COLL")" \
    "node-2's observationDomainId = FNV-1(node-2)"
