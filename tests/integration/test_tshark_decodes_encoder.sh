#!/usr/bin/env bash
# Wireshark decodes what `flowvis generate` sends without a complaint, and
# to the same values that `flowvis collector` prints.
#
# In a fresh network namespace, `flowvis generate` sends agent-format
# records (templates 256 IPv4 and 257 IPv6, Antrea elements under PEN
# 56506) from three exporters over UDP to `flowvis collector`, while
# dumpcap records the stream. Then tshark - an independent IPFIX decoder -
# reads the capture, and the test asserts:
#   - no malformed packet and no expert warning or error: a record without
#     a template, or a sequence number that is not the RFC 7011 one
#     (records sent before the message) would each raise one; and every
#     message's length is its UDP payload's (tshark does not check that);
#   - tshark sees as many messages and data records per exporter as the
#     generator says it sent (--summary-json), and their packet and octet
#     deltas add up to the generator's totals;
#   - every record - exporter, domain, template, times, ports, protocol,
#     addresses, the forward and reverse counters, and the bytes of every
#     Antrea element - is the same in tshark's decoding as in the
#     collector's output (compared as sorted lists, canonicalised by
#     helpers/canon_records.py).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd dumpcap tshark jq python3 ss
fv_require_flowvis

RECORDS=300
NODES=3
SEED=7
COLLECTOR=127.0.0.1:4739

fv_netns_add NS gen

# --- 1. generate, capture and collect at once --------------------------------

fv_dumpcap_start cap "$NS" lo "udp dst port ${COLLECTOR##*:}"
fv_collector_start coll "$NS" $COLLECTOR udp
fv_in "$NS" timeout 30 "$FLOWVIS" generate --target $COLLECTOR --transport udp --nodes $NODES \
    --records $RECORDS --seed $SEED --summary-json "$FV_TMP/sent.json" 2>"$FV_TMP/generate.err" ||
    fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
fv_wait_json 15 "$FV_TMP/coll.out" '.templateId >= 256' $RECORDS
fv_capture_stop cap
fv_collector_stop coll

# What the generator says it sent, in total and per exporter.
SENT=$FV_TMP/sent.json
fv_assert_eq $RECORDS "$(jq .records "$SENT")" "records the generator reports sent"
jq -r '.exporters[] | "\(.address),\(.observationDomainId),\(.records)"' "$SENT" \
    >"$FV_TMP/sent_records.csv"
jq -r '.exporters[] | "\(.address),\(.observationDomainId),\(.messages)"' "$SENT" \
    >"$FV_TMP/sent_messages.csv"

# --- 2. tshark's view --------------------------------------------------------

PCAP=$FV_TMP/cap.pcap
DECODE=(-r "$PCAP" -d "udp.port==${COLLECTOR##*:},cflow")

# Messages per exporter and observation domain.
fv_tshark "${DECODE[@]}" -Y cflow -T fields -e ip.src -e cflow.od_id | sort | uniq -c |
    awk '{ print $2 "," $3 "," $1 }' >"$FV_TMP/tshark_messages.csv"
fv_assert_same_lines "$FV_TMP/sent_messages.csv" "$FV_TMP/tshark_messages.csv" \
    "messages per exporter (address,domain,messages): generator vs tshark"
fv_tshark "${DECODE[@]}" -Y '_ws.malformed || _ws.expert.severity >= warning' \
    -T fields -e frame.number -e _ws.expert.message >"$FV_TMP/complaints.txt"
fv_assert_eq 0 "$(grep -c . "$FV_TMP/complaints.txt" || true)" \
    "packets tshark finds malformed or warns about"
head -n 5 "$FV_TMP/complaints.txt" | sed 's/^/    /' >&2
# tshark does not complain about a message shorter than its header says, so
# check that each IPFIX length is the UDP payload length.
fv_assert_eq 0 "$(fv_tshark "${DECODE[@]}" -Y cflow -T fields -e udp.length -e cflow.len |
    awk '$1 - 8 != $2' | wc -l)" "messages whose IPFIX length is not the UDP payload length"

# The data records tshark decoded, one per line.
fv_tshark "${DECODE[@]}" -Y cflow -T json --no-duplicate-keys >"$FV_TMP/tshark.json"
python3 "$FV_HELPERS/canon_records.py" tshark "$FV_TMP/tshark.json" >"$FV_TMP/tshark.csv"
python3 "$FV_HELPERS/canon_records.py" flowvis "$FV_TMP/coll.out" >"$FV_TMP/flowvis.csv"

fv_assert_eq $RECORDS "$(wc -l <"$FV_TMP/tshark.csv")" "data records tshark decodes"
fv_assert_eq $RECORDS "$(wc -l <"$FV_TMP/flowvis.csv")" "data records flowvis prints"
cut -d, -f1,2 "$FV_TMP/tshark.csv" | sort | uniq -c | awk '{ print $2 "," $1 }' \
    >"$FV_TMP/tshark_records.csv"
fv_assert_same_lines "$FV_TMP/sent_records.csv" "$FV_TMP/tshark_records.csv" \
    "records per exporter (address,domain,records): generator vs tshark"
# packetDeltaCount and octetDeltaCount are fields 12 and 13 of the line.
fv_assert_eq "$(jq .packetDeltaCount "$SENT")" \
    "$(awk -F, '{ s += $12 } END { print s + 0 }' "$FV_TMP/tshark.csv")" \
    "sum of packetDeltaCount: generator vs tshark"
fv_assert_eq "$(jq .octetDeltaCount "$SENT")" \
    "$(awk -F, '{ s += $13 } END { print s + 0 }' "$FV_TMP/tshark.csv")" \
    "sum of octetDeltaCount: generator vs tshark"
fv_assert_ge 1 "$(awk -F, '$3 == 257' "$FV_TMP/tshark.csv" | wc -l)" "IPv6 records (template 257)"

# --- 3. the two decoders agree, record by record ----------------------------

fv_assert_same_lines "$FV_TMP/tshark.csv" "$FV_TMP/flowvis.csv" "records decoded by tshark and by flowvis"
