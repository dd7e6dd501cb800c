#!/usr/bin/env bash
# ulogd2's IPFIX export of a conntrack flow decodes to the connection's real
# addresses, ports, protocol, counters, mark and times.
#
# Inside a fresh network namespace: ulogd2 runs the stack NFCT -> IPFIX and
# exports over TCP to `flowvis collector`. A TCP connection of known size
# runs from 127.0.0.2 to 127.0.0.3 while tcpdump records it, and conntrack
# marks it. The test asserts that flowvis prints one record for it whose
# values equal what the capture (and the kernel's own conntrack counters)
# say.
#
# How ulogd2 2.0.8 behaves, and what the test does about it:
# - Its IPFIX template (id 256) is fixed: sourceIPv4Address,
#   destinationIPv4Address, packetTotalCount and octetTotalCount in
#   reduced-size 4-byte encoding holding the SUM of both directions,
#   flowStart/EndSeconds, the ports, protocolIdentifier, and
#   applicationId (an octetArray) carrying the conntrack mark.
# - It sends a message only when the next record does not fit (its flush
#   timer fires once, a second after start, and never again), and drops
#   the pending message on exit. With mtu=101 a message holds the template
#   and exactly one record, so a second ("flush") connection pushes out
#   the record under test.
# - NFCT reports a connection when conntrack destroys it; a closed TCP
#   connection sits in TIME_WAIT for minutes, and even with short timeouts
#   the kernel's garbage collector reaps it seconds later at a time of its
#   own choosing. The test deletes the entry with `conntrack -D` instead.
# - Conntrack only runs in a namespace whose ruleset uses it (kernels
#   since 4.10 register its hooks on demand), and only counts bytes with
#   net.netfilter.nf_conntrack_acct=1 set before the connection starts.
#   The nftables rule that sets the mark is what turns conntrack on here.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd ulogd conntrack nft tcpdump tshark jq python3 ss
fv_require_flowvis

ULOGD_PLUGINS=
for dir in /usr/lib/*/ulogd /usr/lib/ulogd; do
    [[ -f $dir/ulogd_inpflow_NFCT.so && -f $dir/ulogd_output_IPFIX.so ]] && ULOGD_PLUGINS=$dir
done
[[ -n $ULOGD_PLUGINS ]] || fv_skip "ulogd2 NFCT/IPFIX plugins not found"

CLIENT=127.0.0.2 CPORT=40001
SERVER=127.0.0.3 SPORT=5001 FLUSH_PORT=5002
UP=5000 DOWN=3000
MARK=42          # conntrack mark, exported as applicationId
DOMAIN=7         # observation domain id ulogd2 puts in its messages
COLLECTOR_PORT=4739

fv_netns_add NS ct
fv_in "$NS" sysctl -q -w net.netfilter.nf_conntrack_acct=1
fv_in "$NS" nft -f - <<EOF
table inet fvtest {
    chain out {
        type filter hook output priority 0; policy accept;
        tcp dport $SPORT ct mark set $MARK
    }
}
EOF

# --- 1. collector and ulogd2 ------------------------------------------------

fv_collector_start coll "$NS" 127.0.0.1:$COLLECTOR_PORT tcp

cat >"$FV_TMP/ulogd.conf" <<EOF
[global]
logfile="$FV_TMP/ulogd.log"
loglevel=1
plugin="$ULOGD_PLUGINS/ulogd_inpflow_NFCT.so"
plugin="$ULOGD_PLUGINS/ulogd_output_IPFIX.so"
stack=ct1:NFCT,ipfix1:IPFIX

[ct1]
accept_proto_filter=tcp
accept_dst_filter=$SERVER/32

[ipfix1]
oid=$DOMAIN
host="127.0.0.1"
port=$COLLECTOR_PORT
proto="tcp"
mtu=101
send_template="once"
EOF
fv_bg ulogd "$NS" ulogd -c "$FV_TMP/ulogd.conf"
fv_wait_grep 10 "$FV_TMP/ulogd.log" "entering main loop"
fv_alive ulogd

# --- 2. the connection under test, captured ---------------------------------

t_start=$(date +%s)
fv_capture_start cap "$NS" lo "tcp port $SPORT"
fv_exchange_server srv "$NS" tcp-server $SERVER $SPORT $UP $DOWN
fv_exchange "$NS" tcp-client $CLIENT $CPORT $SERVER $SPORT $UP $DOWN
fv_exchange_done srv

# Both FINs and the last ACK have passed once conntrack says TIME_WAIT; the
# counters are final from then on.
ct_tuple=(-p tcp --orig-src "$CLIENT" --orig-dst "$SERVER" --sport "$CPORT" --dport "$SPORT")
_in_time_wait() {
    fv_in "$NS" conntrack -L "${ct_tuple[@]}" 2>/dev/null | grep -q TIME_WAIT
}
fv_wait_for 10 "the connection to reach TIME_WAIT in conntrack" _in_time_wait
fv_capture_stop cap
ct_entry=$(fv_in "$NS" conntrack -L "${ct_tuple[@]}" -o extended 2>/dev/null)
fv_log "conntrack: $ct_entry"

# --- 3. the expectation: the capture, checked against the kernel ------------

read -r cap_packets cap_octets < <(fv_tshark -r "$FV_TMP/cap.pcap" -T fields -e ip.len |
    awk '{ n++; s += $1 } END { print n + 0, s + 0 }')
read -r cap_payload < <(fv_tshark -r "$FV_TMP/cap.pcap" -T fields -e tcp.len |
    awk '{ s += $1 } END { print s + 0 }')
fv_assert_eq $((UP + DOWN)) "$cap_payload" "payload bytes in the capture"
# The kernel's counters per direction (packets=N bytes=N, orig then reply).
sum_of() { grep -o "$1=[0-9]*" <<<"$ct_entry" | awk -F= '{ s += $2 } END { print s + 0 }'; }
ct_packets=$(sum_of packets)
ct_octets=$(sum_of bytes)
fv_assert_eq "$cap_packets" "$ct_packets" "packets: capture vs conntrack"
fv_assert_eq "$cap_octets" "$ct_octets" "octets: capture vs conntrack"
[[ $FV_FAILURES -eq 0 ]] || fv_fatal "the capture and conntrack disagree; no expectation"

# --- 4. destroy it, push it out, and read what flowvis decoded --------------

fv_in "$NS" conntrack -D "${ct_tuple[@]}" >/dev/null 2>&1 ||
    fv_fatal "conntrack -D found no entry for the connection"

# The flush connection: refused, as nobody listens. Conntrack destroys an
# entry that a RST ends before it was established at once; the delete is
# there in case a kernel keeps it in CLOSE instead.
fv_exchange "$NS" tcp-client $CLIENT $((CPORT + 1)) $SERVER $FLUSH_PORT 0 0 2>/dev/null || true
fv_in "$NS" conntrack -D -p tcp --orig-src $CLIENT --dport $FLUSH_PORT >/dev/null 2>&1 || true

FLOW=".ipfix.sourceTransportPort == $CPORT"
fv_wait_json 10 "$FV_TMP/coll.out" "$FLOW" 1
t_end=$(date +%s)
fv_stop ulogd TERM 5
fv_collector_stop coll

fv_assert_eq 1 "$(fv_count_json "$FV_TMP/coll.out" "$FLOW")" "records for the connection"
record=$(jq -R -c "fromjson? | select($FLOW)" "$FV_TMP/coll.out" | head -n 1)
field() { jq -r "$1 | tostring" <<<"$record"; }

fv_assert_eq 127.0.0.1 "$(field .exporterAddress)" "exporterAddress"
fv_assert_eq $DOMAIN "$(field .observationDomainId)" "observationDomainId"
fv_assert_eq 256 "$(field .templateId)" "templateId"
fv_assert_eq $CLIENT "$(field .ipfix.sourceIPv4Address)" "sourceIPv4Address"
fv_assert_eq $SERVER "$(field .ipfix.destinationIPv4Address)" "destinationIPv4Address"
fv_assert_eq $CPORT "$(field .ipfix.sourceTransportPort)" "sourceTransportPort"
fv_assert_eq $SPORT "$(field .ipfix.destinationTransportPort)" "destinationTransportPort"
fv_assert_eq 6 "$(field .ipfix.protocolIdentifier)" "protocolIdentifier"
fv_assert_eq "$cap_packets" "$(field .ipfix.packetTotalCount)" "packetTotalCount (both directions)"
fv_assert_eq "$cap_octets" "$(field .ipfix.octetTotalCount)" "octetTotalCount (both directions)"
fv_assert_eq "$(printf '%08x' $MARK)" "$(field .ipfix.applicationId)" "applicationId (conntrack mark)"
start=$(field .ipfix.flowStartSeconds)
fv_assert_between "$t_start" "$t_end" "$start" "flowStartSeconds"
[[ $start =~ ^[0-9]+$ ]] || start=$t_start
fv_assert_between "$start" "$t_end" "$(field .ipfix.flowEndSeconds)" "flowEndSeconds"
