#!/usr/bin/env bash
# softflowd's IPFIX export of a capture decodes to exactly what the capture
# holds.
#
# Real TCP and UDP exchanges of known sizes cross a veth pair between two
# network namespaces while tcpdump records them. softflowd replays the
# capture (-r) and exports IPFIX (-v 10) to `flowvis collector`; the test
# asserts that every exported flow has the addresses, ports, protocol,
# packet and octet counts, TCP flags, end reason and start/end times that
# tshark computes from the same capture - an expectation that does not
# depend on softflowd. It does so twice: with one record per direction,
# and with softflowd's bidirectional records (-b), whose reverse counters
# are RFC 5103 elements under PEN 29305.
#
# What softflowd sends (1.1.0, Debian 12), and so what flowvis must decode:
# octet and packet counters in reduced-size 4-byte encoding, tcpControlBits
# in 1 byte, flowStart/EndMilliseconds (-A milli; without it softflowd sends
# sysUpTime values that wrap when replaying a file), data template 1024 for
# IPv4 TCP/UDP, an options template (256) with systemInitTimeMilliseconds,
# and set padding. Start and end times are per conversation, not per
# direction: softflowd keeps one flow for both directions.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd softflowd tcpdump tshark jq python3 ss
fv_require_flowvis

# TEST-NET-1 addresses, which exist only inside this test's namespaces.
CLIENT=192.0.2.1
SERVER=192.0.2.2
TCP_CPORT=41000 TCP_SPORT=5001 TCP_UP=20000 TCP_DOWN=7000
UDP_CPORT=41001 UDP_SPORT=5002 UDP_COUNT=5 UDP_SIZE=100 UDP_REPLIES=3 UDP_REPLY_SIZE=60
COLLECTOR=127.0.0.1:4739

# --- 1. Make the traffic and capture it -------------------------------------

fv_netns_add NS_CLI cli
fv_netns_add NS_SRV srv
fv_veth "$NS_CLI" "$CLIENT/24" "$NS_SRV" "$SERVER/24"

# IPv4 only: a fresh veth also carries IPv6 neighbour discovery, which is
# not part of this test.
fv_capture_start cap "$NS_SRV" "$FV_VETH_B" ip
fv_exchange_server tcpsrv "$NS_SRV" tcp-server $SERVER $TCP_SPORT $TCP_UP $TCP_DOWN
fv_exchange_server udpsrv "$NS_SRV" udp-server $SERVER $UDP_SPORT $UDP_COUNT $UDP_REPLIES \
    $UDP_REPLY_SIZE
fv_exchange "$NS_CLI" tcp-client $CLIENT $TCP_CPORT $SERVER $TCP_SPORT $TCP_UP $TCP_DOWN
fv_exchange "$NS_CLI" udp-client $CLIENT $UDP_CPORT $SERVER $UDP_SPORT $UDP_COUNT $UDP_SIZE \
    $UDP_REPLIES
fv_exchange_done tcpsrv
fv_exchange_done udpsrv
fv_capture_stop cap
PCAP=$FV_TMP/cap.pcap

# --- 2. The expectation, from the capture alone -----------------------------

# One line per IPv4 packet. Comma-separated because bash's read would merge
# empty tab-separated fields (a TCP packet has no udp.srcport).
fv_tshark -r "$PCAP" -Y ip -T fields -E separator=, -e frame.time_epoch -e ip.src -e ip.dst \
    -e ip.proto -e tcp.srcport -e udp.srcport -e tcp.dstport -e udp.dstport -e ip.len \
    -e tcp.flags -e tcp.len -e udp.length >"$FV_TMP/packets.csv"

declare -A packets=() octets=() flags=() payload=() first_ms=() last_ms=()
while IFS=, read -r ts src dst proto tsport usport tdport udport iplen tflags tlen ulen; do
    sport=${tsport:-$usport} dport=${tdport:-$udport}
    dir="$src,$dst,$proto,$sport,$dport"
    packets[$dir]=$((${packets[$dir]:-0} + 1))
    octets[$dir]=$((${octets[$dir]:-0} + iplen))
    flags[$dir]=$((${flags[$dir]:-0} | ${tflags:-0}))
    # Payload bytes, to check the capture against what the peers sent.
    if [[ $proto == 6 ]]; then
        payload[$dir]=$((${payload[$dir]:-0} + tlen))
    else
        payload[$dir]=$((${payload[$dir]:-0} + ulen - 8))
    fi
    # Times per conversation, keyed by the (sorted) pair of endpoints, in
    # milliseconds truncated as softflowd does (sec * 1000 + usec / 1000).
    a="$src:$sport" b="$dst:$dport"
    [[ $a < $b ]] && conv="$a-$b" || conv="$b-$a"
    frac=${ts#*.}
    ms=$((${ts%.*} * 1000 + 10#${frac:0:3}))
    [[ -n ${first_ms[$conv]:-} ]] || first_ms[$conv]=$ms
    last_ms[$conv]=$ms
done <"$FV_TMP/packets.csv"

up_tcp="$CLIENT,$SERVER,6,$TCP_CPORT,$TCP_SPORT"
down_tcp="$SERVER,$CLIENT,6,$TCP_SPORT,$TCP_CPORT"
up_udp="$CLIENT,$SERVER,17,$UDP_CPORT,$UDP_SPORT"
down_udp="$SERVER,$CLIENT,17,$UDP_SPORT,$UDP_CPORT"

# The capture must hold exactly the four directions and the bytes sent;
# otherwise the comparison below would prove nothing.
fv_assert_eq 4 "${#packets[@]}" "directions in the capture"
fv_assert_eq $TCP_UP "${payload[$up_tcp]:-}" "TCP payload client->server in the capture"
fv_assert_eq $TCP_DOWN "${payload[$down_tcp]:-}" "TCP payload server->client in the capture"
fv_assert_eq $((UDP_COUNT * UDP_SIZE)) "${payload[$up_udp]:-}" "UDP payload client->server"
fv_assert_eq $((UDP_REPLIES * UDP_REPLY_SIZE)) "${payload[$down_udp]:-}" "UDP payload server->client"
fv_assert_eq $UDP_COUNT "${packets[$up_udp]:-}" "UDP packets client->server"
[[ $FV_FAILURES -eq 0 ]] || fv_fatal "the capture is not what the peers sent"

csv() { # FIELD... -> one comma-separated line
    local IFS=,
    echo "$*"
}

conv_of() { # DIR -> conversation key
    local src dst proto sport dport a b
    IFS=, read -r src dst proto sport dport <<<"$1"
    a="$src:$sport" b="$dst:$dport"
    [[ $a < $b ]] && echo "$a-$b" || echo "$b-$a"
}

# softflowd ends a TCP flow that saw FIN both ways with "end of flow
# detected" (3); every other flow ends by "idle timeout" (1) at end of file.
end_reason() { # UP DOWN
    local fin=$((${flags[$1]} & ${flags[$2]} & 0x01))
    [[ $2 == *",6,"* && $fin -eq 1 ]] && echo 3 || echo 1
}

# Unidirectional rows: exporter, domain, template, the five-tuple, packets,
# octets, tcpControlBits, flowEndReason, start ms, end ms.
: >"$FV_TMP/expect_uni.csv"
for pair in "$up_tcp $down_tcp" "$up_udp $down_udp"; do
    read -r up down <<<"$pair"
    reason=$(end_reason "$up" "$down")
    conv=$(conv_of "$up")
    for dir in $up $down; do
        csv 127.0.0.1 0 1024 "$dir" "${packets[$dir]}" "${octets[$dir]}" \
            $((${flags[$dir]} & 0xff)) "$reason" "${first_ms[$conv]}" "${last_ms[$conv]}"
    done >>"$FV_TMP/expect_uni.csv"
done

# Bidirectional rows: the client's direction is the forward one; then the
# reverse packet and octet counts.
: >"$FV_TMP/expect_bi.csv"
for pair in "$up_tcp $down_tcp" "$up_udp $down_udp"; do
    read -r up down <<<"$pair"
    conv=$(conv_of "$up")
    csv 127.0.0.1 0 1024 "$up" "${packets[$up]}" "${octets[$up]}" "${packets[$down]}" \
        "${octets[$down]}" "${first_ms[$conv]}" "${last_ms[$conv]}" >>"$FV_TMP/expect_bi.csv"
done

# --- 3. softflowd -> flowvis, one record per direction ----------------------

FLOW_RECORDS='.ipfix.sourceIPv4Address != null'

# replay NAME ARGS...: start a collector, replay the capture through
# softflowd with ARGS, wait for the IPv4 flow records and stop the collector.
replay() {
    local name=$1 want
    shift
    want=$(wc -l <"$FV_TMP/expect_$name.csv")
    fv_collector_start "coll_$name" "$NS_SRV" $COLLECTOR udp
    fv_in "$NS_SRV" timeout 20 softflowd -r "$PCAP" -n $COLLECTOR -v 10 -A milli "$@" ip \
        >"$FV_TMP/softflowd_$name.log" 2>&1 || fv_fatal "softflowd $* failed"
    fv_wait_json 10 "$FV_TMP/coll_$name.out" "$FLOW_RECORDS" "$want"
    fv_collector_stop "coll_$name"
}

replay uni
jq -R -r "fromjson? | select($FLOW_RECORDS) | [.exporterAddress, .observationDomainId,
    .templateId, (.ipfix | .sourceIPv4Address, .destinationIPv4Address, .protocolIdentifier,
    .sourceTransportPort, .destinationTransportPort, .packetDeltaCount, .octetDeltaCount,
    .tcpControlBits, .flowEndReason, .flowStartMilliseconds, .flowEndMilliseconds)]
    | map(tostring) | join(\",\")" "$FV_TMP/coll_uni.out" >"$FV_TMP/got_uni.csv"
fv_assert_same_lines "$FV_TMP/expect_uni.csv" "$FV_TMP/got_uni.csv" \
    "unidirectional flows (exporter,domain,template,src,dst,proto,sport,dport,packets,octets,tcpflags,endreason,startms,endms)"

# --- 4. softflowd -b -> flowvis, bidirectional records (RFC 5103) -----------

replay bi -b
jq -R -r "fromjson? | select($FLOW_RECORDS) | [.exporterAddress, .observationDomainId,
    .templateId, (.ipfix | .sourceIPv4Address, .destinationIPv4Address, .protocolIdentifier,
    .sourceTransportPort, .destinationTransportPort, .packetDeltaCount, .octetDeltaCount,
    .reversePacketDeltaCount, .reverseOctetDeltaCount, .flowStartMilliseconds,
    .flowEndMilliseconds)] | map(tostring) | join(\",\")" "$FV_TMP/coll_bi.out" \
    >"$FV_TMP/got_bi.csv"
fv_assert_same_lines "$FV_TMP/expect_bi.csv" "$FV_TMP/got_bi.csv" \
    "bidirectional flows (exporter,domain,template,src,dst,proto,sport,dport,packets,octets,rpackets,roctets,startms,endms)"
