#!/usr/bin/env bash
# The aggregator's IPFIX output decodes, in two third-party collectors, to
# exactly what the agents sent.
#
# In a fresh network namespace, `flowvis generate` (fixed seed, paced so
# that every flow is reported several times, over about 4 s) sends
# agent-format records from three nodes over UDP to `flowvis aggregator`
# (1 s active timeout), whose IPFIX output goes over UDP to nfcapd (nfdump
# package), while dumpcap records both streams on lo. The aggregator is
# stopped with SIGTERM once it has read every record, and exports what it
# holds. Expected values come only from what was sent: the generator's
# --summary-json, and tshark's decoding of the generator's stream (which
# must agree with that summary: records per exporter, delta sums, flows).
#
# A. tshark decodes the aggregator's stream (the same bytes nfcapd got):
#   - no malformed packet, no expert warning, every IPFIX length is its UDP
#     payload's, sequence numbers as RFC 7011 says;
#   - two templates, IPv4 and IPv6, element for element (PEN, id, length)
#     the aggregated template of SPEC section 2;
#   - per flow: the sum of octetDeltaCount (and of the three other deltas)
#     over the exported records is the flow's final total as sent, and the
#     last record's totals are those totals; every flow appears, no other;
#   - per flow, in every record: flowStartSeconds, flowEndReason, flowType,
#     both Pods/Namespaces/Nodes (an inter-node flow merged from its two
#     halves), service port and name, ClusterIP, tcpState, the policy fields;
#   - per flow, the last record's flowEndSeconds and per-side
#     flowEndSecondsFrom*Node and *TotalCountFrom*Node, and the sums of the
#     per-side deltas, are the ones each node reported (a flow that one
#     node alone reports, intra-node or to-external, is that node's on
#     both sides, as in the reference aggregator);
#   - originalExporterIPv4Address and originalObservationDomainId of every
#     record name a node that reported the flow; the common throughput is
#     one side's;
#   - no capture lost a packet (else the comparisons prove nothing);
#   - the aggregator exported as many records as tshark sees, correlated
#     every inter-node flow, and counted nothing stale, uncorrelated or
#     dropped.
# B. nfdump reads nfcapd's file: as many records as tshark saw, no sequence
#   error, and per flow the sum of its bytes / packets (nfdump takes
#   octetDeltaCount, IE 1, as "in_bytes" and the RFC 5103 reverse delta as
#   "out_bytes") equals the flow's final totals as sent.
# C. The same over TCP (the aggregator exporting to a `flowvis collector`
#   over TCP, another seed): no segment lost or retransmitted, tshark
#   reassembles the stream, sees as many records as the aggregator says it
#   exported (and as the collector decoded), with RFC 7011 sequence
#   numbers, and the per-flow sums and last totals are again the ones sent.
#
# What tshark (4.0) can and cannot name: it names every IANA element of the
# template (flowStartSeconds, L4_SRC_PORT, BYTES_TOTAL, ...,
# originalExporterIPv4Address, originalObservationDomainId), the RFC 5103
# reverse ones ("[Reverse]", PEN 29305), and the PEN 56506 as "Project
# Antrea" - but not the Antrea elements themselves: those it shows as
# "Enterprise Private entry: (Project Antrea) Type 101: Value (hex bytes)"
# and leaves out entirely when they are empty strings. The helper
# (helpers/agg_interop_ipfix.py) therefore reads tshark's PDML, where each
# entry keeps its element id, and interprets the bytes by the template's
# length (65535: a string). Also: tshark's default limit of 60 fields per
# template is below the aggregated template's 64, so with default
# preferences it ignores the template and decodes no record at all
# ("More entries (64) than we can handle"); the test raises the limit
# (cflow.max_template_fields:0). nfdump 1.7 does not read
# flowStartSeconds/flowEndSeconds (its first/last stay at 1970) nor any
# Antrea element, so B checks only what nfdump stores: addresses, ports,
# protocol, packets and bytes.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd dumpcap tshark nfcapd nfdump jq python3 ss curl
fv_require_flowvis

NODES=3
FLOWS=24
RECORDS=240
RATE=60 # records/s: each flow is reported about every 0.6 s, for 4 s
SEED=11
API_PORT=10348
IPFIX=$FV_HELPERS/agg_interop_ipfix.py
TSHARK_PREFS=(-o cflow.max_template_fields:0)

fv_netns_add NS agg

# agg_config FILE LISTEN_PORT COLLECTOR: the aggregator's configuration.
agg_config() {
    cat >"$1" <<EOF
listenAddress: 127.0.0.1:$2
aggregatorTransportProtocol: udp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 30s
correlationWait: 10s
workers: 2
logLevel: info
sqlite:
  path: $FV_TMP/flows-$2.db
apiServer:
  apiPort: $API_PORT
flowCollector:
  enable: true
  address: $3
  recordFormat: IPFIX
  observationDomainID: 77
EOF
}

# metric NAME: one value from the aggregator's /metrics ("" if missing).
metric() {
    ip netns exec "$NS" curl -sf --max-time 3 "http://127.0.0.1:$API_PORT/metrics" |
        awk -v n="$1" '$1 == n { print $2 }'
}

_received() {
    [[ $(metric flowvis_aggregator_records_received_total) == "$1" ]]
}

# run_aggregator NAME LISTEN_PORT COLLECTOR SEED: start the aggregator,
# feed it with the generator (summary in $FV_TMP/NAME.sent.json), wait
# until it has read every record, stop it with SIGTERM (exit 0 required)
# and set AGG_STOPPED to its last log line ("stopped received=...").
run_aggregator() {
    local name=$1 port=$2 coll=$3 seed=$4
    agg_config "$FV_TMP/$name.yaml" "$port" "$coll"
    fv_bg "$name" "$NS" "$FLOWVIS" aggregator --config "$FV_TMP/$name.yaml"
    fv_wait_grep 10 "$FV_TMP/$name.err" 'aggregator running'
    fv_wait_port "$NS" udp "$port"
    fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$port:udp" --nodes $NODES \
        --flows $FLOWS --records $RECORDS --rate $RATE --seed "$seed" \
        --summary-json "$FV_TMP/$name.sent.json" 2>"$FV_TMP/$name.generate.err" ||
        fv_fatal "flowvis generate failed: $(cat "$FV_TMP/$name.generate.err")"
    # SIGTERM stops intake first: every datagram must have been read.
    fv_wait_for 10 "$name to receive $RECORDS records" _received $RECORDS
    fv_stop "$name" TERM 10
    if [[ $FV_STATUS -ne 0 ]]; then
        fv_show_err "$name"
        fv_fail "$name exited with status $FV_STATUS after SIGTERM, expected 0"
    fi
    AGG_STOPPED=$(grep 'stopped received=' "$FV_TMP/$name.err" | tail -n 1)
    fv_log "$name: $AGG_STOPPED"
}

# stat_of LINE KEY: the value of KEY=VALUE in a log line.
stat_of() {
    grep -oE "(^| )$2=[0-9]+" <<<"$1" | cut -d= -f2
}

# decode PCAP udp|tcp PORT PREFIX: tshark's decoding of the IPFIX sent to
# PORT, as the helper's JSON lines in PREFIX.jsonl.
decode() {
    local pcap=$1 proto=$2 port=$3 prefix=$4
    fv_tshark -r "$pcap" "${TSHARK_PREFS[@]}" -d "$proto.port==$port,cflow" \
        -Y "cflow && $proto.dstport == $port" -T pdml >"$prefix.pdml"
    python3 "$IPFIX" decode "$prefix.pdml" >"$prefix.jsonl"
}

# check_input PREFIX SENT_JSON: tshark's view of the generator's stream
# agrees with what the generator says it sent.
check_input() {
    local in=$1.jsonl sent=$2
    fv_assert_eq $RECORDS "$(jq .records "$sent")" "records the generator reports sent"
    jq -r '.exporters[] | "\(.address),\(.observationDomainId),\(.records)"' "$sent" \
        >"$1.sent_records.csv"
    jq -r 'select(.kind == "record") | "\(.exporter),\(.domain)"' "$in" | sort | uniq -c |
        awk '{ print $2 "," $1 }' >"$1.tshark_records.csv"
    fv_assert_same_lines "$1.sent_records.csv" "$1.tshark_records.csv" \
        "input records per exporter (address,domain,records): generator vs tshark"
    fv_assert_eq "$(jq .octetDeltaCount "$sent")" \
        "$(jq -s '[.[] | select(.kind == "record") | .fields.octetDeltaCount] | add' "$in")" \
        "input: sum of octetDeltaCount, generator vs tshark"
    fv_assert_eq "$(jq .packetDeltaCount "$sent")" \
        "$(jq -s '[.[] | select(.kind == "record") | .fields.packetDeltaCount] | add' "$in")" \
        "input: sum of packetDeltaCount, generator vs tshark"
    fv_assert_eq 0 "$(jq -s '[.[] | select(.kind == "record" and .problems != [])] | length' "$in")" \
        "input records tshark could not fully decode"
}

# check_output IN_PREFIX OUT_PREFIX WHAT: the per-flow comparisons.
check_output() {
    local in=$1 out=$2 what=$3 dir=$2.flows
    mkdir -p "$dir"
    python3 "$IPFIX" expect "$in.jsonl" "$dir"
    python3 "$IPFIX" got "$out.jsonl" "$dir"
    fv_assert_eq $FLOWS "$(wc -l <"$dir/expect_counters.csv")" "$what: flows in the input"
    fv_assert_eq 0 "$(jq -s '[.[] | select(.kind == "record" and .problems != [])] | length' \
        "$out.jsonl")" "$what: exported records tshark could not fully decode"
    jq -r 'select(.kind == "record" and .problems != []) | .problems | join("; ")' \
        "$out.jsonl" | sort | uniq -c | head -n 5 | sed 's/^/    /' >&2
    fv_assert_same_lines "$dir/expect_counters.csv" "$dir/got_sums.csv" \
        "$what: per flow, sums of the exported deltas (key,packets,octets,rpackets,roctets) vs final totals sent"
    fv_assert_same_lines "$dir/expect_counters.csv" "$dir/got_last.csv" \
        "$what: per flow, totals of the last exported record vs final totals sent"
}

# capture_dropped NAME: packets the capture NAME (stopped) says it lost, from
# dumpcap's "received/dropped" or tcpdump's "dropped by kernel" line.
capture_dropped() {
    local err=$FV_TMP/$1.err
    # "Packets received/dropped on interface 'Loopback: lo': 168/0 (...)"
    sed -nE -e 's|^Packets received/dropped on interface .*: [0-9]+/([0-9]+).*|\1|p' \
        -e 's|^([0-9]+) packets dropped by kernel$|\1|p' "$err" | tail -n 1
}

# check_capture NAME: a capture that lost packets cannot prove anything.
check_capture() {
    local dropped
    dropped=$(capture_dropped "$1")
    [[ $dropped == 0 ]] ||
        fv_fatal "capture $1 lost packets (${dropped:-unknown}): $(tail -n 3 "$FV_TMP/$1.err" | xargs)"
}

# --- 1. UDP: generator -> aggregator -> nfcapd, all captured ------------------

IN_PORT=$(fv_free_port "$NS" udp)
NF_PORT=$(fv_free_port "$NS" udp)
[[ $NF_PORT != "$IN_PORT" ]] || NF_PORT=$((IN_PORT + 1))
mkdir "$FV_TMP/nf"
fv_bg nfcapd "$NS" nfcapd -w "$FV_TMP/nf" -p "$NF_PORT" -b 127.0.0.1 -t 3600
fv_wait_port "$NS" udp "$NF_PORT"
fv_dumpcap_start cap "$NS" lo "udp port $IN_PORT or udp port $NF_PORT"
run_aggregator agg "$IN_PORT" "127.0.0.1:$NF_PORT:udp" $SEED
UDP_STOPPED=$AGG_STOPPED
fv_capture_stop cap
check_capture cap
# nfcapd writes its file when it stops.
fv_stop nfcapd TERM 10
PCAP=$FV_TMP/cap.pcap

decode "$PCAP" udp "$IN_PORT" "$FV_TMP/in"
decode "$PCAP" udp "$NF_PORT" "$FV_TMP/out"
check_input "$FV_TMP/in" "$FV_TMP/agg.sent.json"

# --- A. tshark's view of the aggregator's output -------------------------------

OUT=$FV_TMP/out.jsonl
FLOWDIR=$FV_TMP/out.flows
fv_tshark -r "$PCAP" "${TSHARK_PREFS[@]}" -d "udp.port==$NF_PORT,cflow" \
    -Y "udp.dstport == $NF_PORT && (_ws.malformed || _ws.expert.severity >= warning)" \
    -T fields -e frame.number -e _ws.expert.message >"$FV_TMP/complaints.txt"
fv_assert_eq 0 "$(grep -c . "$FV_TMP/complaints.txt" || true)" \
    "output packets tshark finds malformed or warns about"
head -n 5 "$FV_TMP/complaints.txt" | sed 's/^/    /' >&2
fv_assert_eq 0 "$(fv_tshark -r "$PCAP" "${TSHARK_PREFS[@]}" -d "udp.port==$NF_PORT,cflow" \
    -Y "udp.dstport == $NF_PORT" -T fields -e udp.length -e cflow.len | awk '$1 - 8 != $2' | wc -l)" \
    "output messages whose IPFIX length is not the UDP payload length"
python3 "$IPFIX" sequence "$OUT" >"$FV_TMP/sequence.txt"
fv_assert_eq 0 "$(wc -l <"$FV_TMP/sequence.txt")" "output messages with a wrong sequence number"
head -n 3 "$FV_TMP/sequence.txt" | sed 's/^/    /' >&2
fv_assert_eq 77 "$(jq -s -r '[.[] | select(.kind == "message") | .domain] | unique | join(",")' "$OUT")" \
    "observation domain of the output (flowCollector.observationDomainID)"

python3 "$IPFIX" spec-templates >"$FV_TMP/templates.expect"
python3 "$IPFIX" templates "$OUT" >"$FV_TMP/templates.got"
fv_assert_same_lines "$FV_TMP/templates.expect" "$FV_TMP/templates.got" \
    "exported templates (ipv4|ipv6, then PEN/element/length per field) vs SPEC section 2"

check_output "$FV_TMP/in" "$FV_TMP/out" "udp"
ROWS=$(jq -s '[.[] | select(.kind == "record")] | length' "$OUT")
fv_log "$ROWS records exported for $FLOWS flows" \
    "($(jq -s -r '[.[] | select(.kind == "record") | .fields | "\(.sourceTransportPort)"] |
        group_by(.) | map(length) | group_by(.) | map("\(length) flows x \(.[0])") | join(", ")' "$OUT"))"
# Several records per flow, so that the sums above add deltas across exports.
fv_assert_ge $((2 * FLOWS)) "$ROWS" "records exported (at least two per flow)"
fv_assert_same_lines "$FLOWDIR/expect_identity.csv" "$FLOWDIR/got_identity.csv" \
    "per flow, every record's identity (key,start,endReason,flowType,pods,namespaces,nodes,policies,svcPort,svcName,clusterIP,tcpState)"
fv_assert_same_lines "$FLOWDIR/expect_sides.csv" "$FLOWDIR/got_sides.csv" \
    "per flow, last flowEndSeconds, per-side ends and totals, sums of per-side deltas"
fv_assert_eq "" "$(comm -23 "$FLOWDIR/got_exporters.csv" "$FLOWDIR/expect_exporters.csv" | head -n 3 | xargs)" \
    "originalExporter / originalObservationDomainId that did not report the flow"
fv_assert_eq "" "$(head -n 3 "$FLOWDIR/got_throughput_bad.csv" | xargs)" \
    "records whose common throughput is neither side's"

INTER=$(awk -F, '$8 == 2' "$FLOWDIR/expect_identity.csv" | wc -l)
fv_assert_ge 1 "$INTER" "inter-node flows in the input"
fv_assert_eq "$ROWS" "$(stat_of "$UDP_STOPPED" exported)" "records the aggregator says it exported vs tshark"
fv_assert_eq "$INTER" "$(stat_of "$UDP_STOPPED" correlated)" "flows the aggregator correlated"
for k in uncorrelated stale dropped; do
    fv_assert_eq 0 "$(stat_of "$UDP_STOPPED" $k)" "aggregator: $k"
done

# --- B. nfdump's view of what nfcapd stored --------------------------------------------

# nfcapd starts a new file at every full hour (-t 3600) and prints one
# summary line per file it closes.
nf_files=("$FV_TMP"/nf/nfcapd.2*)
[[ -f ${nf_files[0]} ]] || fv_fatal "nfcapd wrote no file: $(ls "$FV_TMP/nf")"
cat "$FV_TMP/nfcapd.out" "$FV_TMP/nfcapd.err" | grep -E "Flows: [0-9]+" >"$FV_TMP/nfcapd.summary"
sed 's/^/    nfcapd: /' "$FV_TMP/nfcapd.summary" >&2
nf_sum() { # LABEL: the sum of "LABEL: N" over nfcapd's summary lines
    grep -oE "$1: [0-9]+" "$FV_TMP/nfcapd.summary" | awk '{ s += $NF } END { print s + 0 }'
}
fv_assert_eq "$ROWS" "$(nf_sum Flows)" "records nfcapd received vs tshark"
fv_assert_eq 0 "$(nf_sum 'Sequence Errors')" "nfcapd: sequence errors"
fv_assert_eq 0 "$(nf_sum 'Bad Packets')" "nfcapd: bad packets"
nfdump -R "$FV_TMP/nf" -o json >"$FV_TMP/nfdump.json" 2>"$FV_TMP/nfdump.err" ||
    fv_fatal "nfdump failed: $(cat "$FV_TMP/nfdump.err")"
fv_assert_eq "$ROWS" "$(jq '[.[] | select(.type == "FLOW")] | length' "$FV_TMP/nfdump.json")" \
    "records nfdump reads vs tshark"
python3 "$IPFIX" nfdump "$FV_TMP/nfdump.json" >"$FV_TMP/nfdump_sums.csv"
fv_assert_same_lines "$FLOWDIR/expect_counters.csv" "$FV_TMP/nfdump_sums.csv" \
    "per flow, nfdump's sums (key,in_packets,in_bytes,out_packets,out_bytes) vs final totals sent"

# --- C. TCP: the aggregator -> flowvis collector over TCP, tshark reassembles ----------

TCP_IN=$(fv_free_port "$NS" udp)
TCP_OUT=$(fv_free_port "$NS" tcp)
fv_collector_start tcpcoll "$NS" "127.0.0.1:$TCP_OUT" tcp
fv_dumpcap_start tcap "$NS" lo "udp port $TCP_IN or tcp port $TCP_OUT"
run_aggregator aggtcp "$TCP_IN" "127.0.0.1:$TCP_OUT:tcp" $((SEED + 1))
fv_capture_stop tcap
fv_collector_stop tcpcoll
check_capture tcap
fv_assert_eq 0 "$(fv_tshark -r "$FV_TMP/tcap.pcap" -Y "tcp.port == $TCP_OUT &&
    (tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment || tcp.analysis.retransmission)" |
    wc -l)" "tcp: segments the capture lost or the stream retransmitted"
decode "$FV_TMP/tcap.pcap" udp "$TCP_IN" "$FV_TMP/tin"
decode "$FV_TMP/tcap.pcap" tcp "$TCP_OUT" "$FV_TMP/tout"
check_input "$FV_TMP/tin" "$FV_TMP/aggtcp.sent.json"
check_output "$FV_TMP/tin" "$FV_TMP/tout" "tcp"
fv_assert_eq "$(stat_of "$AGG_STOPPED" exported)" \
    "$(jq -s '[.[] | select(.kind == "record")] | length' "$FV_TMP/tout.jsonl")" \
    "tcp: records the aggregator says it exported vs tshark"
fv_assert_eq "" "$(python3 "$IPFIX" sequence "$FV_TMP/tout.jsonl" | head -n 3 | xargs)" \
    "tcp: output messages with a wrong sequence number"
fv_assert_eq "$(stat_of "$AGG_STOPPED" exported)" \
    "$(fv_count_json "$FV_TMP/tcpcoll.out" '.templateId >= 256')" \
    "tcp: records the aggregator says it exported vs the flowvis collector's"
