#!/usr/bin/env bash
# `flowvis agent` at maxConnections: what it cannot track is counted, and
# what it tracks is exported whole.
#
# Two namespaces joined by a veth (host 192.0.2.1, peer 192.0.2.2); an
# nftables ct rule makes host track connections. The agent runs in host
# mode with maxConnections 1000 (the smallest allowed). One process in host
# sends one UDP datagram from 192.0.2.1:40000 to each of the ports
# 20000..21199 of the peer: 1200 connections. Then:
#   - flowvis_agent_tracked_connections is exactly 1000;
#   - flowvis_agent_untracked_connections is exactly 200 (the last poll's
#     connections that did not fit), and it falls back to 0 once the kernel
#     has forgotten them (conntrack -F), while the tracked ones are
#     exported;
#   - the collector receives one record for each of the 1000 tracked
#     connections (distinct destination ports) and none for the others;
#   - flowvis_agent_records_dropped_total stays 0: no record was lost in
#     export.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=helpers/agent_lib.sh
source "$FV_HELPERS/agent_lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3 curl
fv_require_flowvis

fv_netns_add HOST host
fv_netns_add PEER peer
fv_veth "$HOST" 192.0.2.1/24 "$PEER" 192.0.2.2/24
fv_in "$HOST" nft -f - <<'EOF'
table inet firewall {
    chain output {
        type filter hook output priority filter; policy accept;
        ct state invalid drop
    }
}
EOF
# The peer drops the datagrams silently: no ICMP errors back into host.
fv_in "$PEER" nft -f - <<'EOF'
table inet firewall {
    chain input {
        type filter hook input priority filter; policy accept;
        udp dport 20000-21199 drop
    }
}
EOF

COLL=$FV_TMP/coll.out
PORT=$(fv_free_port "$HOST" tcp)
fva_collector_start coll "$HOST" "127.0.0.1:$PORT"
FVA_IDLE=2s fva_agent_config "$FV_TMP/agent.yaml" host-a "127.0.0.1:$PORT:tcp" "maxConnections: 1000"
fva_agent_start agent "$HOST" "$FV_TMP/agent.yaml"

fv_in "$HOST" python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.1", 40000))
for p in range(20000, 21200):
    s.sendto(b"x" * 10, ("192.0.2.2", p))
'
fv_assert_eq 1200 "$(fv_in "$HOST" conntrack -L -p udp --sport 40000 2>/dev/null | grep -c .)" \
    "connections in host's conntrack"

_metric_is() {
    fv_alive agent
    [[ $(fva_metric "$HOST" "$1") == "$2" ]]
}
fv_wait_for 10 "1000 tracked connections" _metric_is flowvis_agent_tracked_connections 1000
fv_wait_for 10 "200 untracked connections" _metric_is flowvis_agent_untracked_connections 200

# Idle after 2 s: every tracked connection is exported once as idle.
_exported() {
    [[ $(jq -s '[.[] | .ipfix | select(.sourceTransportPort == 40000) | .destinationTransportPort]
        | unique | length' "$COLL") -ge 1000 ]]
}
fv_wait_for 20 "records of the 1000 tracked connections" _exported
sleep 1
fv_assert_eq 1000 "$(jq -s '[.[] | .ipfix | select(.sourceTransportPort == 40000) | .destinationTransportPort]
    | unique | length' "$COLL")" "connections with a record (distinct destination ports)"
# Each tracked connection is whole: 1 packet of 38 bytes (IPv4 20 + UDP 8
# + 10 bytes of payload) over its records.
fv_assert_eq '[[1,38]]' "$(jq -s -c '[.[] | .ipfix | select(.sourceTransportPort == 40000)]
    | group_by(.destinationTransportPort)
    | map([(map(.packetDeltaCount) | add), (map(.octetDeltaCount) | add)]) | unique' "$COLL")" \
    "packets and octets of every tracked connection"

fv_in "$HOST" conntrack -F 2>/dev/null
fv_wait_for 10 "no untracked connections after conntrack -F" \
    _metric_is flowvis_agent_untracked_connections 0
fv_assert_eq 0 "$(fva_metric "$HOST" flowvis_agent_records_dropped_total)" "records dropped"
