#!/usr/bin/env bash
# `flowvis agent` without an inventory: host mode, then Pod CIDRs from the
# config.
#
# Two namespaces joined by a veth: "host", where the agent and its
# collector run (the collector on 127.0.0.1, over TCP), and "peer". host
# has 192.0.2.1, 10.1.1.1, 10.1.1.2 and 2001:db8::1; peer has 192.0.2.2,
# 10.1.2.1 and 2001:db8::2. An nftables rule that matches on ct state (as
# any stateful firewall has) makes the kernel track connections in host.
#   1. Host mode (no inventory.file, podCIDRs, clusterCIDRs): every
#      connection but loopback is exported, with empty Pod, namespace and
#      node fields and flowType 0: outgoing 192.0.2.1 -> 192.0.2.2 (TCP,
#      port 43001), incoming 192.0.2.2 -> 192.0.2.1 (TCP, 43002), IPv6
#      2001:db8::1 -> 2001:db8::2 (TCP, 43003) and UDP (43004, exact
#      counters, exported when idle: 2 s idle timeout); connections over 127.0.0.1 and ::1 (43005, 43006) are
#      not, and neither is the agent's own export connection. The
#      "agent started" log line says mode=host.
#   2. podCIDRs [10.1.1.0/24] and clusterCIDRs [10.1.0.0/16] (this node's
#      and every node's Pod CIDRs): flowType follows them, Pod fields stay
#      empty (no inventory to name the Pods):
#        10.1.1.1 -> 10.1.1.2 (both local)         flowType 1 (43101)
#        10.1.1.1 -> 10.1.2.1 (local -> remote)     flowType 2 (43102)
#        10.1.2.1 -> 10.1.1.1 (remote -> local)     flowType 2 (43103)
#        10.1.1.1 -> 192.0.2.2 (Pod -> outside)     flowType 3 (43104)
#        192.0.2.2 -> 10.1.1.1 (outside -> Pod)     flowType 4 (43105)
#        192.0.2.2 -> 192.0.2.1 (no Pod)            not exported (43106)
#      and the agent says mode=kubernetes.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl ss
fv_require_flowvis

fv_netns_add HOST host
fv_netns_add PEER peer
fv_veth "$HOST" 192.0.2.1/24 "$PEER" 192.0.2.2/24
ip -n "$HOST" addr add 10.1.1.1/24 dev "$FV_VETH_A"
ip -n "$HOST" addr add 10.1.1.2/24 dev "$FV_VETH_A"
ip -n "$HOST" addr add 2001:db8::1/64 dev "$FV_VETH_A" nodad
ip -n "$PEER" addr add 10.1.2.1/24 dev "$FV_VETH_B"
ip -n "$PEER" addr add 2001:db8::2/64 dev "$FV_VETH_B" nodad
ip -n "$HOST" route add 10.1.2.0/24 dev "$FV_VETH_A"
ip -n "$PEER" route add 10.1.1.0/24 dev "$FV_VETH_B"
fv_in "$HOST" nft -f - <<'EOF'
table inet firewall {
    chain input {
        type filter hook input priority filter; policy accept;
        ct state invalid drop
    }
}
EOF

COLL=$FV_TMP/coll.out
PORT=$(fv_free_port "$HOST" tcp)
fva_collector_start coll "$HOST" "127.0.0.1:$PORT"
server() { # NAME NS IP PORT: a TCP server exchanging 500 / 700 bytes
    fva_tcp_server "$1" "$2" "$3" "$4" 500 700
}
call() { # NS SRC SPORT DST DPORT
    fva_tcp_call "$1" "$2" "$3" "$4" "$5" 500 700
}

# --- 1. host mode ----------------------------------------------------------------
D=$(fva_domain host-a)
FVA_IDLE=2s fva_agent_config "$FV_TMP/host.yaml" host-a "127.0.0.1:$PORT:tcp"
fva_agent_start agent1 "$HOST" "$FV_TMP/host.yaml"
fv_wait_grep 5 "$FV_TMP/agent1.err" "agent started node=host-a domain=$D .* mode=host inventory=none denied=off\$"

server peer4 "$PEER" 192.0.2.2 8000
server host4 "$HOST" 192.0.2.1 8000
server peer6 "$PEER" 2001:db8::2 8000
server lo4 "$HOST" 127.0.0.1 8001
server lo6 "$HOST" ::1 8001
fva_udp_server peeru "$PEER" 192.0.2.2 5353 60
call "$HOST" 192.0.2.1 43001 192.0.2.2 8000
call "$PEER" 192.0.2.2 43002 192.0.2.1 8000
call "$HOST" 2001:db8::1 43003 2001:db8::2 8000
fva_udp_call "$HOST" 192.0.2.1 43004 192.0.2.2 5353 4 200 60
call "$HOST" 127.0.0.1 43005 127.0.0.1 8001
call "$HOST" ::1 43006 ::1 8001
# The loopback connections are in the kernel's table: the agent must skip them.
fva_ct_wait "$HOST" TIME_WAIT -p tcp --sport 43005
fva_ct_wait "$HOST" TIME_WAIT -f ipv6 -p tcp --sport 43006

for p in 43001 43002 43003; do
    fva_wait_flow 10 "$COLL" "$D" "$p" '.flowEndReason == 3'
done
fva_wait_flow 10 "$COLL" "$D" 43004 '.flowEndReason == 1'
fv_stop agent1 TERM 10
fv_assert_eq 0 "$FV_STATUS" "host mode agent: exit status after SIGTERM"

no_pod="sourcePodName= sourcePodNamespace= sourceNodeName= destinationPodName=
    destinationPodNamespace= destinationNodeName= destinationServicePort=0
    destinationServicePortName= flowType=0"
# shellcheck disable=SC2086 # word splitting of the field list is intended
{
    r=$(fva_final "$COLL" "$D" 43001)
    fva_assert_fields "host mode, outgoing" "$r" $no_pod sourceIPv4Address=192.0.2.1 \
        destinationIPv4Address=192.0.2.2 destinationTransportPort=8000 flowEndReason=3 \
        destinationClusterIPv4=0.0.0.0
    r=$(fva_final "$COLL" "$D" 43002)
    fva_assert_fields "host mode, incoming" "$r" $no_pod sourceIPv4Address=192.0.2.2 \
        destinationIPv4Address=192.0.2.1 destinationTransportPort=8000 flowEndReason=3
    r=$(fva_final "$COLL" "$D" 43003)
    fva_assert_fields "host mode, IPv6" "$r" $no_pod templateId=257 \
        sourceIPv6Address=2001:db8::1 destinationIPv6Address=2001:db8::2 flowEndReason=3 \
        destinationClusterIPv6=::
}
fv_assert_eq "4 $((4 * 228)) 4 $((4 * 88))" "$(fva_sums "$COLL" "$D" 43004)" \
    "host mode, UDP: packets, octets (4 x 20+8+200), reverse (4 x 20+8+60), summed over records"
fv_assert_eq "0 0" "$(fva_count "$COLL" "$D" 43005) $(fva_count "$COLL" "$D" 43006)" \
    "host mode: records of the 127.0.0.1 and ::1 connections"
fv_assert_eq 0 "$(fv_count_json "$COLL" '.ipfix.destinationTransportPort == '"$PORT"' or
    .ipfix.sourceTransportPort == '"$PORT")" "host mode: records of the agent's own export connection"

# --- 2. Pod CIDRs from the config ---------------------------------------------------------
fva_agent_config "$FV_TMP/cidrs.yaml" host-a "127.0.0.1:$PORT:tcp" \
    "podCIDRs: [10.1.1.0/24]" "clusterCIDRs: [10.1.0.0/16]"
fva_agent_start agent2 "$HOST" "$FV_TMP/cidrs.yaml"
fv_wait_grep 5 "$FV_TMP/agent2.err" "agent started node=host-a .* mode=kubernetes inventory=[a-z]* denied=off\$"
server h11 "$HOST" 10.1.1.2 8100
server p21 "$PEER" 10.1.2.1 8100
server h1 "$HOST" 10.1.1.1 8100
server p2 "$PEER" 192.0.2.2 8100
server h2 "$HOST" 192.0.2.1 8100
call "$HOST" 10.1.1.1 43101 10.1.1.2 8100
call "$HOST" 10.1.1.1 43102 10.1.2.1 8100
call "$PEER" 10.1.2.1 43103 10.1.1.1 8100
call "$HOST" 10.1.1.1 43104 192.0.2.2 8100
call "$PEER" 192.0.2.2 43105 10.1.1.1 8100
call "$PEER" 192.0.2.2 43106 192.0.2.1 8100
fva_ct_wait "$HOST" TIME_WAIT -p tcp --sport 43106

declare -A want=([43101]="10.1.1.1 10.1.1.2 1" [43102]="10.1.1.1 10.1.2.1 2"
    [43103]="10.1.2.1 10.1.1.1 2" [43104]="10.1.1.1 192.0.2.2 3" [43105]="192.0.2.2 10.1.1.1 4")
for p in 43101 43102 43103 43104 43105; do
    fva_wait_flow 10 "$COLL" "$D" "$p" '.flowEndReason == 3'
done
sleep 2 # a poll or two more: 43106 would have come by now
fv_alive agent2
for p in 43101 43102 43103 43104 43105; do
    read -r src dst ftype <<<"${want[$p]}"
    r=$(fva_final "$COLL" "$D" "$p")
    fv_assert_eq 1 "$(fva_count "$COLL" "$D" "$p")" "CIDRs, port $p: records"
    # shellcheck disable=SC2086 # word splitting of the field list is intended
    fva_assert_fields "CIDRs, $src -> $dst" "$r" sourceIPv4Address="$src" \
        destinationIPv4Address="$dst" flowType="$ftype" \
        sourcePodName= destinationPodName= sourceNodeName= destinationNodeName=
done
fv_assert_eq 0 "$(fva_count "$COLL" "$D" 43106)" "CIDRs: records of 192.0.2.2 -> 192.0.2.1 (no Pod)"
