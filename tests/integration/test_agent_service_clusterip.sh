#!/usr/bin/env bash
# Connections to a ClusterIP are exported with the endpoint Pod as the
# destination (post-DNAT) and the Service's ClusterIP, port and
# "namespace/name:port" name, on the node where the client is.
#
# In the namespace cluster, agents in node-1 and node-2 export to one
# `flowvis collector` in the fabric. payments/payments-api (ClusterIP
# 10.96.0.200 / fd00:10:96::c8, port "http" 8080) has its only endpoint on
# node-1 (pod 1_3); shop/catalog (10.96.0.100, port "http" 80 -> targetPort
# "http" = 8080) has one endpoint per node, picked round robin.
#   1. pod 1_1 -> payments-api IPv4 (local endpoint), port 41003: node-1's
#      record has destination 10.244.1.13:8080, the endpoint Pod's name
#      and node, destinationClusterIPv4 10.96.0.200, destinationServicePort
#      8080, destinationServicePortName "payments/payments-api:http" (the
#      port name as the inventory has it), flowType 1.
#   2. pod 2_1 (node-2) -> payments-api IPv4 (remote endpoint), port 41004:
#      node-2's record has the source Pod, destination 10.244.1.13:8080,
#      no destination Pod (not on node-2), the Service fields, flowType 2;
#      node-1's record of the same connection (it arrives already DNATed)
#      has the destination Pod and no Service fields, flowType 2.
#   3. pod 1_1 -> payments-api IPv6, port 41005: template 257, destination
#      fd00:10:244:1::13, destinationClusterIPv6 fd00:10:96::c8.
#   4. pod 1_1 -> catalog IPv4 port 80, twice (ports 41006, 41007): the
#      destination port is the endpoint's 8080 while destinationServicePort
#      is 80, "shop/catalog:http"; whichever endpoint answered (the server
#      logs say which) is the record's destination, with flowType 1 and the
#      Pod name for the local one, flowType 2 and no Pod for the remote one.
# Every connection: one record per node, sum of deltas = totals = that
# node's conntrack counters, flowEndReason 3.
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
# shellcheck disable=SC2034 # read as ${!d}
D1=$(fva_domain node-1) D2=$(fva_domain node-2)

# The Service port names, as the inventory has them.
port_name() { # NAMESPACE NAME PORT
    jq -r --arg ns "$1" --arg n "$2" --argjson p "$3" '.items[] | select(.kind == "Service"
        and .metadata.namespace == $ns and .metadata.name == $n) | .spec.ports[]
        | select(.port == $p) | .name' "$FVC_INVENTORY"
}
PAY_NAME="payments/payments-api:$(port_name payments payments-api 8080)"
CAT_NAME="shop/catalog:$(port_name shop catalog 80)"
fv_assert_eq "payments/payments-api:http shop/catalog:http" "$PAY_NAME $CAT_NAME" \
    "Service port names in the inventory"
PAY4=$FVC_SVC_PAYMENTS_API_IP4 PAY6=$FVC_SVC_PAYMENTS_API_IP6 CAT4=$FVC_SVC_CATALOG_IP4

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
for n in 1 2; do
    ns=FVC_NODE_${n}_NETNS
    fva_agent_config "$FV_TMP/agent$n.yaml" "node-$n" 172.18.0.1:4739:tcp \
        "inventory:" "  file: $FVC_INVENTORY"
    fva_agent_start "agent$n" "${!ns}" "$FV_TMP/agent$n.yaml"
done

SEND=300 REPLY=4000
fva_tcp_server pay4 "$FVC_POD_1_3_NETNS" 0.0.0.0 8080 "$SEND" "$REPLY"
fva_tcp_server pay6 "$FVC_POD_1_3_NETNS" :: 8080 "$SEND" "$REPLY"
fva_tcp_server cat1 "$FVC_POD_1_2_NETNS" 0.0.0.0 8080 "$SEND" "$REPLY"
fva_tcp_server cat2 "$FVC_POD_2_2_NETNS" 0.0.0.0 8080 "$SEND" "$REPLY"

fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41003 "$PAY4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_2_1_NETNS" "$FVC_POD_2_1_IP4" 41004 "$PAY4" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP6" 41005 "$PAY6" 8080 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41006 "$CAT4" 80 "$SEND" "$REPLY"
fva_tcp_call "$FVC_POD_1_1_NETNS" "$FVC_POD_1_1_IP4" 41007 "$CAT4" 80 "$SEND" "$REPLY"

# check_flow WHAT NODE_N SPORT CT_FILTER...: one record, correlated counters
# equal to the node's conntrack entry; sets r to the record.
check_flow() {
    local what=$1 n=$2 sport=$3 d ns totals
    shift 3
    d=D$n ns=FVC_NODE_${n}_NETNS
    fva_ct_wait "${!ns}" TIME_WAIT "$@" --sport "$sport"
    fva_wait_flow 10 "$COLL" "${!d}" "$sport" '.flowEndReason == 3'
    fv_assert_eq 1 "$(fva_count "$COLL" "${!d}" "$sport")" "$what: records"
    totals=$(fva_totals "$COLL" "${!d}" "$sport")
    fv_assert_eq "$totals" "$(fva_sums "$COLL" "${!d}" "$sport")" "$what: sum of deltas = totals"
    fv_assert_eq "$(fva_ct_counters "$FVA_CT")" "$totals" "$what: totals = conntrack counters"
    r=$(fva_final "$COLL" "${!d}" "$sport")
}

sleep 2 # a poll or two after the last connection: no record may follow

# --- 1. local endpoint ------------------------------------------------------------
check_flow "local endpoint, node-1" 1 41003 -p tcp
fv_log "1: node-1 record: $r"
fva_assert_fields "local endpoint, node-1" "$r" \
    templateId=256 sourceIPv4Address="$FVC_POD_1_1_IP4" sourceTransportPort=41003 \
    destinationIPv4Address="$FVC_POD_1_3_IP4" destinationTransportPort=8080 \
    sourcePodName="$FVC_POD_1_1_NAME" sourcePodNamespace=shop sourceNodeName=node-1 \
    destinationPodName="$FVC_POD_1_3_NAME" destinationPodNamespace=payments \
    destinationNodeName=node-1 \
    destinationClusterIPv4="$PAY4" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" flowType=1 flowEndReason=3 tcpState=TIME_WAIT

# --- 2. remote endpoint -------------------------------------------------------------
check_flow "remote endpoint, node-2 (client side)" 2 41004 -p tcp
fv_log "2: node-2 record: $r"
fva_assert_fields "remote endpoint, node-2 (client side)" "$r" \
    templateId=256 sourceIPv4Address="$FVC_POD_2_1_IP4" sourceTransportPort=41004 \
    destinationIPv4Address="$FVC_POD_1_3_IP4" destinationTransportPort=8080 \
    sourcePodName="$FVC_POD_2_1_NAME" sourcePodNamespace=shop sourceNodeName=node-2 \
    destinationPodName= destinationPodNamespace= destinationNodeName= \
    destinationClusterIPv4="$PAY4" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" flowType=2 flowEndReason=3 tcpState=TIME_WAIT
check_flow "remote endpoint, node-1 (endpoint side)" 1 41004 -p tcp
fv_log "2: node-1 record: $r"
fva_assert_fields "remote endpoint, node-1 (endpoint side)" "$r" \
    sourceIPv4Address="$FVC_POD_2_1_IP4" destinationIPv4Address="$FVC_POD_1_3_IP4" \
    destinationTransportPort=8080 sourcePodName= sourceNodeName= \
    destinationPodName="$FVC_POD_1_3_NAME" destinationPodNamespace=payments \
    destinationNodeName=node-1 \
    destinationClusterIPv4=0.0.0.0 destinationServicePort=0 destinationServicePortName= \
    flowType=2

# --- 3. IPv6 ----------------------------------------------------------------------------
check_flow "IPv6 local endpoint, node-1" 1 41005 -f ipv6 -p tcp
fv_log "3: node-1 record: $r"
fva_assert_fields "IPv6 local endpoint, node-1" "$r" \
    templateId=257 sourceIPv6Address="$FVC_POD_1_1_IP6" sourceTransportPort=41005 \
    destinationIPv6Address="$FVC_POD_1_3_IP6" destinationTransportPort=8080 \
    sourceIPv4Address="(missing)" \
    sourcePodName="$FVC_POD_1_1_NAME" destinationPodName="$FVC_POD_1_3_NAME" \
    destinationClusterIPv6="$PAY6" destinationServicePort=8080 \
    destinationServicePortName="$PAY_NAME" flowType=1 flowEndReason=3

# --- 4. catalog: port 80 -> targetPort "http" (8080), both endpoints ----------------------
served=""
for sport in 41006 41007; do
    if grep -q "^conn $FVC_POD_1_1_IP4 $sport " "$FV_TMP/cat1.out"; then
        ep=1_2 ftype=1
    elif grep -q "^conn $FVC_POD_1_1_IP4 $sport " "$FV_TMP/cat2.out"; then
        ep=2_2 ftype=2
    else
        fv_fatal "no catalog endpoint logged the connection from port $sport"
    fi
    served+="$ep "
    ip=FVC_POD_${ep}_IP4 name=FVC_POD_${ep}_NAME
    pod=${!name} pod_ns=shop node=node-1
    ((ftype == 2)) && pod="" pod_ns="" node=""
    check_flow "catalog via port $sport -> $ep" 1 "$sport" -p tcp
    fv_log "4: node-1 record: $r"
    fva_assert_fields "catalog via port $sport -> $ep" "$r" \
        destinationIPv4Address="${!ip}" destinationTransportPort=8080 \
        destinationPodName="$pod" destinationPodNamespace="$pod_ns" destinationNodeName="$node" \
        destinationClusterIPv4="$CAT4" destinationServicePort=80 \
        destinationServicePortName="$CAT_NAME" flowType="$ftype"
done
fv_assert_eq "1_2 2_2" "$(tr ' ' '\n' <<<"$served" | grep . | sort | xargs)" \
    "catalog endpoints that answered (round robin)"
