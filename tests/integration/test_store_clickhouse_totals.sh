#!/usr/bin/env bash
# Every record the aggregator exports reaches a real ClickHouse, once, with
# the flow's correlated fields, and the three views sum the same.
#
# In a fresh network namespace: clickhouse-server (Debian's 18.16, or
# whatever `clickhouse-server` is installed; config and data under
# $FV_TMP) on 127.0.0.1, empty; `flowvis aggregator` (UDP on 127.0.0.1,
# 1 s active timeout, SQLite off, clickHouse.enable with a 1 s
# commitInterval) and `flowvis generate` (3 nodes, fixed seed, paced so
# that every flow is reported several times over about 4 s, both halves
# of every inter-node flow). The aggregator is stopped with SIGTERM once
# it has read every record: it exports what it holds and flushes the
# sink. Then, in ClickHouse:
#   - the sink created the schema by itself: flows, flows_pod_view,
#     flows_node_view, flows_policy_view, and migration version 1 in
#     flowvis_schema_migrations;
#   - per flow (5-tuple), the sums of packetDeltaCount, octetDeltaCount
#     and the reverse ones over its rows are the flow's final totals as
#     the generator reports them (--summary-json perFlow); every flow is
#     there and no other;
#   - every row of a flow carries the flow's Pods, Namespaces, Nodes,
#     flowType, ClusterIP and Service port name (the inter-node ones merged
#     from both nodes' halves);
#   - each view's sum of octetDeltaCount and reverseOctetDeltaCount equals
#     the table's (and the generator's);
#   - the sink's own count (its "clickhouse stopped" line): rows received
#     = rows written = rows in flows, no batch failed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=helpers/ch_lib.sh
source "$FV_HELPERS/ch_lib.sh"

fv_require_root
fv_require_cmd jq curl ss python3
fv_require_flowvis
ch_require

NODES=3
FLOWS=40
RECORDS=500
RATE=120
SEED=21

fv_netns_add NS ch
CH_NS=$NS
ch_start ch
CH=${CH_URL[ch]}


ch_agg_start 30s <<EOF
  databaseURL: $CH
  commitInterval: 1s
  spoolDir: $FV_TMP/spool
EOF
# The schema comes from the sink, at its first contact.
fv_wait_for 15 "the sink to create the flows table" ch_value_is ch \
    "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'flows'" 1

fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$AGG_PORT:udp" --nodes $NODES \
    --flows $FLOWS --records $RECORDS --rate $RATE --seed $SEED \
    --summary-json "$FV_TMP/sent.json" 2>"$FV_TMP/generate.err" ||
    fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
fv_wait_for 10 "the aggregator to receive $RECORDS records" _ch_agg_received $RECORDS
ch_agg_stop
STOPPED=$CH_AGG_STOPPED

# --- The schema -----------------------------------------------------------------

fv_assert_eq "flows flows_node_view flows_pod_view flows_policy_view flowvis_schema_migrations" \
    "$(ch_query ch "SELECT name FROM system.tables WHERE database = 'default' AND
        name NOT LIKE '.inner%' ORDER BY name" | xargs)" "tables the sink created"
fv_assert_eq 1 "$(ch_query ch "SELECT max(version) FROM default.flowvis_schema_migrations")" \
    "schema version applied"

# --- Per flow: sums of the deltas = the final totals sent -------------------------

jq -r '.perFlow[] | [.sourceIP, .destinationIP, .sourceTransportPort,
    .destinationTransportPort, .protocolIdentifier, .packetDeltaCount, .octetDeltaCount,
    .reversePacketDeltaCount, .reverseOctetDeltaCount] | map(tostring) | join(",")' \
    "$FV_TMP/sent.json" | sort >"$FV_TMP/expect_sums.csv"
ch_query ch "SELECT sourceIP, destinationIP, sourceTransportPort, destinationTransportPort,
    protocolIdentifier, sum(packetDeltaCount), sum(octetDeltaCount),
    sum(reversePacketDeltaCount), sum(reverseOctetDeltaCount)
    FROM default.flows
    GROUP BY sourceIP, destinationIP, sourceTransportPort, destinationTransportPort,
        protocolIdentifier
    FORMAT CSV" | tr -d '"' | sort >"$FV_TMP/got_sums.csv"
fv_assert_eq $FLOWS "$(wc -l <"$FV_TMP/expect_sums.csv")" "flows the generator reported"
fv_assert_same_lines "$FV_TMP/expect_sums.csv" "$FV_TMP/got_sums.csv" \
    "per flow (5-tuple), sums of packets, octets, reverse packets, reverse octets in flows vs sent"

# --- Per row: the correlated fields ------------------------------------------------

jq -r '.perFlow[] | [.sourceIP, .destinationIP, .sourceTransportPort, .sourcePodName,
    .sourcePodNamespace, .sourceNodeName, .destinationPodName, .destinationPodNamespace,
    .destinationNodeName, .flowType, .destinationClusterIP, .destinationServicePortName]
    | map(tostring) | join(",")' "$FV_TMP/sent.json" | sort >"$FV_TMP/expect_fields.csv"
ch_query ch "SELECT DISTINCT sourceIP, destinationIP, sourceTransportPort, sourcePodName,
    sourcePodNamespace, sourceNodeName, destinationPodName, destinationPodNamespace,
    destinationNodeName, flowType, destinationClusterIP, destinationServicePortName
    FROM default.flows FORMAT CSV" | tr -d '"' | sort >"$FV_TMP/got_fields.csv"
fv_assert_same_lines "$FV_TMP/expect_fields.csv" "$FV_TMP/got_fields.csv" \
    "distinct (flow, Pods, Namespaces, Nodes, flowType, ClusterIP, Service) over every row vs sent"
fv_assert_eq "1 2 3" "$(ch_query ch "SELECT DISTINCT flowType FROM default.flows ORDER BY flowType" |
    xargs)" "flow types stored (intra-node, inter-node, to-external)"

# --- The views ---------------------------------------------------------------------

want="$(jq '[.perFlow[].octetDeltaCount] | add' "$FV_TMP/sent.json") $(jq \
    '[.perFlow[].reverseOctetDeltaCount] | add' "$FV_TMP/sent.json")"
fv_assert_eq "$want" "$(ch_query ch "SELECT sum(octetDeltaCount), sum(reverseOctetDeltaCount)
    FROM default.flows" | tr '\t' ' ')" "flows: total octets, reverse octets"
for view in flows_pod_view flows_node_view flows_policy_view; do
    fv_assert_eq "$want" "$(ch_query ch "SELECT sum(octetDeltaCount), sum(reverseOctetDeltaCount)
        FROM default.$view" | tr '\t' ' ')" "$view: total octets, reverse octets"
done

# --- The sink's own count ------------------------------------------------------------

ROWS=$(ch_query ch "SELECT count() FROM default.flows")
fv_assert_ge $((2 * FLOWS)) "$ROWS" "rows in flows (several exports per flow)"
received=$(grep -oE ' received=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
written=$(grep -oE ' written=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
failed=$(grep -oE ' failed=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
fv_assert_eq "$ROWS" "$received" "rows the sink received"
fv_assert_eq "$ROWS" "$written" "rows the sink wrote"
fv_assert_eq 0 "$failed" "failed insert attempts"
