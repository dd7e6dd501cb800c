#!/usr/bin/env bash
# Pod-to-external traffic (flowType 3), UDP and IPv6 flows from the agent.
#
# In the namespace cluster, an agent in node-1 (1 s poll, 2 s idle and 30 s
# active timeouts) exports to a `flowvis collector` in the fabric. From
# shop/frontend on node-1 (pod 1_1) to the external host, which node-1
# masquerades to its node IP:
#   1. TCP over IPv4, port 41010 -> 198.51.100.10:80: template 256,
#      destination the external address (not the node's masquerade
#      address), flowType 3, source Pod set, destination Pod, namespace and
#      node empty, no Service, tcpState TIME_WAIT, flowEndReason 3.
#   2. UDP over IPv4, port 41011 -> :5353, 3 datagrams of 100 bytes, each
#      answered with 50 bytes: protocolIdentifier 17, tcpState "", flowType
#      3; counters exact: 3 packets and 3 x (20 + 8 + 100) = 384 octets,
#      3 reverse packets and 3 x (20 + 8 + 50) = 234 reverse octets; the
#      flow is exported when idle (flowEndReason 1), exactly once.
#   3. TCP over IPv6, port 41012 -> [2001:db8:100::10]:80: template 257,
#      sourceIPv6Address / destinationIPv6Address the Pod's and the
#      external host's, no IPv4 address fields, destinationClusterIPv6 "::",
#      flowType 3, TIME_WAIT, reason 3.
#   4. UDP over IPv6, port 41013: 3 x (40 + 8 + 100) = 444 octets, 3 x
#      (40 + 8 + 50) = 294 reverse octets, template 257, protocol 17.
# Every flow: sum of deltas = totals of the last record = node-1's
# conntrack counters (TCP).
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
EXT=$FVC_EXTERNAL_NETNS EXT4=$FVC_EXTERNAL_IP4 EXT6=$FVC_EXTERNAL_IP6
POD=$FVC_POD_1_1_NETNS POD4=$FVC_POD_1_1_IP4 POD6=$FVC_POD_1_1_IP6

fva_collector_start coll "$FVC_FABRIC_NETNS" 172.18.0.1:4739
FVA_IDLE=2s fva_agent_config "$FV_TMP/agent.yaml" node-1 172.18.0.1:4739:tcp \
    "inventory:" "  file: $FVC_INVENTORY"
fva_agent_start agent "$FVC_NODE_1_NETNS" "$FV_TMP/agent.yaml"

SEND=1000 REPLY=5000
fva_tcp_server ext4 "$EXT" 0.0.0.0 80 "$SEND" "$REPLY"
fva_tcp_server ext6 "$EXT" :: 80 "$SEND" "$REPLY"
fva_udp_server extu4 "$EXT" 0.0.0.0 5353 50
fva_udp_server extu6 "$EXT" :: 5353 50

fva_tcp_call "$POD" "$POD4" 41010 "$EXT4" 80 "$SEND" "$REPLY"
fva_udp_call "$POD" "$POD4" 41011 "$EXT4" 5353 3 100 50
fva_tcp_call "$POD" "$POD6" 41012 "$EXT6" 80 "$SEND" "$REPLY"
fva_udp_call "$POD" "$POD6" 41013 "$EXT6" 5353 3 100 50
# The external host saw the node, not the Pod: the masquerade is real.
fv_assert_eq "$FVC_NODE_1_IP4 41010" "$(awk '$1 == "conn" {print $2, $3}' "$FV_TMP/ext4.out" | sed 's/^::ffff://')" \
    "peer seen by the external IPv4 server (masqueraded)"
fv_assert_eq "$FVC_NODE_1_IP6 41012" "$(awk '$1 == "conn" {print $2, $3}' "$FV_TMP/ext6.out")" \
    "peer seen by the external IPv6 server (masqueraded)"

fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -p tcp --sport 41010
ct4=$(fva_ct_counters "$FVA_CT")
fva_ct_wait "$FVC_NODE_1_NETNS" TIME_WAIT -f ipv6 -p tcp --sport 41012
ct6=$(fva_ct_counters "$FVA_CT")

fva_wait_flow 10 "$COLL" "$D1" 41010 '.flowEndReason == 3'
fva_wait_flow 10 "$COLL" "$D1" 41012 '.flowEndReason == 3'
fva_wait_flow 10 "$COLL" "$D1" 41011 '.flowEndReason == 1'
fva_wait_flow 10 "$COLL" "$D1" 41013 '.flowEndReason == 1'
sleep 2.5 # past another idle timeout: an idle flow is not exported again
fv_alive agent

# check_flow WHAT SPORT RECORDS EXPECTED_TOTALS: count and correlation; sets r.
check_flow() {
    local totals
    fv_assert_eq "$3" "$(fva_count "$COLL" "$D1" "$2")" "$1: records"
    totals=$(fva_totals "$COLL" "$D1" "$2")
    fv_assert_eq "$totals" "$(fva_sums "$COLL" "$D1" "$2")" "$1: sum of deltas = totals"
    fv_assert_eq "$4" "$totals" "$1: totals (packets octets reverse_packets reverse_octets)"
    r=$(fva_final "$COLL" "$D1" "$2")
    fv_log "$1: last record: $r"
}
to_external="sourcePodName=$FVC_POD_1_1_NAME sourcePodNamespace=shop sourceNodeName=node-1
    destinationPodName= destinationPodNamespace= destinationNodeName=
    destinationServicePort=0 destinationServicePortName= flowType=3 exporterAddress=$FVC_NODE_1_IP4"

# shellcheck disable=SC2086 # word splitting of the field list is intended
{
    check_flow "TCP/IPv4 to external" 41010 1 "$ct4"
    fva_assert_fields "TCP/IPv4 to external" "$r" $to_external templateId=256 \
        sourceIPv4Address="$POD4" destinationIPv4Address="$EXT4" destinationTransportPort=80 \
        protocolIdentifier=6 destinationClusterIPv4=0.0.0.0 tcpState=TIME_WAIT flowEndReason=3
    read -r p o rp ro <<<"$ct4"
    fva_assert_octets "TCP/IPv4 client->server octets" "$SEND" "$p" "$o"
    fva_assert_octets "TCP/IPv4 server->client octets" "$REPLY" "$rp" "$ro"

    check_flow "UDP/IPv4 to external" 41011 1 "3 384 3 234"
    fva_assert_fields "UDP/IPv4 to external" "$r" $to_external templateId=256 \
        sourceIPv4Address="$POD4" destinationIPv4Address="$EXT4" destinationTransportPort=5353 \
        protocolIdentifier=17 destinationClusterIPv4=0.0.0.0 tcpState= flowEndReason=1

    check_flow "TCP/IPv6 to external" 41012 1 "$ct6"
    fva_assert_fields "TCP/IPv6 to external" "$r" $to_external templateId=257 \
        sourceIPv6Address="$POD6" destinationIPv6Address="$EXT6" destinationTransportPort=80 \
        sourceIPv4Address="(missing)" destinationIPv4Address="(missing)" \
        protocolIdentifier=6 destinationClusterIPv6=:: tcpState=TIME_WAIT flowEndReason=3
    read -r p o rp ro <<<"$ct6"
    FVA_V6=1 fva_assert_octets "TCP/IPv6 client->server octets" "$SEND" "$p" "$o"
    FVA_V6=1 fva_assert_octets "TCP/IPv6 server->client octets" "$REPLY" "$rp" "$ro"

    check_flow "UDP/IPv6 to external" 41013 1 "3 444 3 294"
    fva_assert_fields "UDP/IPv6 to external" "$r" $to_external templateId=257 \
        sourceIPv6Address="$POD6" destinationIPv6Address="$EXT6" destinationTransportPort=5353 \
        protocolIdentifier=17 destinationClusterIPv6=:: tcpState= flowEndReason=1
}
