#!/usr/bin/env bash
# The ClickHouse sink writes to a cluster: rows go through a Distributed
# table to two shards, and every row arrives, once.
#
# In a fresh network namespace: two clickhouse-servers on 127.0.0.1, each
# a shard of cluster "fvtest" (one replica each, both listed in every
# server's remote_servers); `flowvis aggregator` (UDP, 1 s active timeout,
# SQLite off) with clickHouse.cluster: fvtest, databaseURL the first
# server and shardURLs both; `flowvis generate` (3 nodes, fixed seed,
# about 4 s). The aggregator is stopped with SIGTERM once it has read
# every record. Then:
#   - on both servers the sink created flows_local and the three
#     *_view_local views (MergeTree / materialized views) and the
#     Distributed tables flows and *_view over them, and recorded
#     migration 1;
#   - once the Distributed table has forwarded its rows (asynchronously,
#     in the background): rows in shard 1's flows_local + shard 2's =
#     rows the sink wrote, and each shard holds some;
#   - per flow, the sums of the four deltas over both shards (read through
#     the Distributed table flows) are the flow's final totals as sent;
#   - the Distributed views (flows_pod_view, ...) sum the same octets as
#     flows, over both shards.
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
SEED=33

fv_netns_add NS ch
CH_NS=$NS
ch_cluster_start fvtest s1 s2


# shard_rows NAME: rows in that server's own flows_local.
shard_rows() {
    ch_query "$1" "SELECT count() FROM default.flows_local"
}

_all_arrived() {
    (($(shard_rows s1) + $(shard_rows s2) == $1))
}

ch_agg_start 30s <<EOF
  databaseURL: ${CH_URL[s1]}
  cluster: fvtest
  shardURLs: ${CH_URL[s1]},${CH_URL[s2]}
  commitInterval: 1s
  spoolDir: $FV_TMP/spool
EOF
fv_wait_for 15 "the sink to create the schema on shard 2" ch_value_is s2 \
    "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'flows'" 1

fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$AGG_PORT:udp" --nodes $NODES \
    --flows $FLOWS --records $RECORDS --rate $RATE --seed $SEED \
    --summary-json "$FV_TMP/sent.json" 2>"$FV_TMP/generate.err" ||
    fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
fv_wait_for 10 "the aggregator to receive $RECORDS records" _ch_agg_received $RECORDS
ch_agg_stop
STOPPED=$CH_AGG_STOPPED
received=$(grep -oE ' received=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
written=$(grep -oE ' written=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
fv_assert_eq "$received" "$written" "rows the sink wrote = rows it received"

# --- The schema on both shards ----------------------------------------------------------

TABLES="flows:Distributed flows_local:MergeTree flows_node_view:Distributed"
TABLES+=" flows_node_view_local:MaterializedView flows_pod_view:Distributed"
TABLES+=" flows_pod_view_local:MaterializedView flows_policy_view:Distributed"
TABLES+=" flows_policy_view_local:MaterializedView flowvis_schema_migrations:MergeTree"
for s in s1 s2; do
    fv_assert_eq "$TABLES" "$(ch_query $s "SELECT name || ':' || engine FROM system.tables
        WHERE database = 'default' AND name NOT LIKE '.inner%' ORDER BY name" | xargs)" \
        "$s: tables and engines"
    fv_assert_eq 1 "$(ch_query $s "SELECT max(version) FROM default.flowvis_schema_migrations")" \
        "$s: schema version applied"
done

# --- Every row on one shard or the other ------------------------------------------------

fv_wait_for 30 "both shards to hold $written rows together" _all_arrived "$written"
R1=$(shard_rows s1)
R2=$(shard_rows s2)
fv_log "rows: shard 1 $R1, shard 2 $R2, written $written"
fv_assert_eq "$written" $((R1 + R2)) "rows in flows_local of shard 1 + shard 2"
fv_assert_ge 1 "$R1" "rows on shard 1"
fv_assert_ge 1 "$R2" "rows on shard 2"

jq -r '.perFlow[] | [.sourceIP, .destinationIP, .sourceTransportPort,
    .destinationTransportPort, .protocolIdentifier, .packetDeltaCount, .octetDeltaCount,
    .reversePacketDeltaCount, .reverseOctetDeltaCount] | map(tostring) | join(",")' \
    "$FV_TMP/sent.json" | sort >"$FV_TMP/expect_sums.csv"
ch_query s2 "SELECT sourceIP, destinationIP, sourceTransportPort, destinationTransportPort,
    protocolIdentifier, sum(packetDeltaCount), sum(octetDeltaCount),
    sum(reversePacketDeltaCount), sum(reverseOctetDeltaCount)
    FROM default.flows
    GROUP BY sourceIP, destinationIP, sourceTransportPort, destinationTransportPort,
        protocolIdentifier
    FORMAT CSV" | tr -d '"' | sort >"$FV_TMP/got_sums.csv"
fv_assert_eq $FLOWS "$(wc -l <"$FV_TMP/expect_sums.csv")" "flows the generator reported"
fv_assert_same_lines "$FV_TMP/expect_sums.csv" "$FV_TMP/got_sums.csv" \
    "per flow, sums of the four deltas over both shards (Distributed flows) vs sent"

want=$(jq '[.perFlow[].octetDeltaCount] | add' "$FV_TMP/sent.json")
for view in flows_pod_view flows_node_view flows_policy_view; do
    fv_assert_eq "$want" "$(ch_query s1 "SELECT sum(octetDeltaCount) FROM default.$view")" \
        "$view (Distributed, both shards): total octets"
done
