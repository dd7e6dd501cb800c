#!/usr/bin/env bash
# ClickHouse stopped for 30 s while records flow loses nothing and writes
# nothing twice: the sink keeps the rows (memory, then its disk spool) and
# writes them once the server is back.
#
# In a fresh network namespace: clickhouse-server (config and data under
# $FV_TMP) on 127.0.0.1; `flowvis aggregator` (UDP, 1 s active timeout,
# SQLite off, ClickHouse with a 1 s commitInterval, a 1 MB memory queue so
# that the outage spills to the spool in $FV_TMP/spool); `flowvis
# generate` paced for 40 s (300 flows, every flow reported about every
# second). 4 s in, between two inserts (see below), the server is
# stopped (SIGTERM); 30 s later it is started again on the same data. Once the generator is done, the
# aggregator has read every record and the sink's queue and spool are
# empty, the aggregator is stopped with SIGTERM. Then:
#   - during the outage the metrics showed the sink down
#     (flowvis_aggregator_clickhouse_up 0), failed attempts, rows spilled
#     to the spool, and spool bytes; the log said the insert failed once
#     and, at the end, that the server was back up; afterwards up is 1,
#     and queue and spool are empty;
#   - nothing was refused (the spool had room) and no failure was
#     ambiguous (so no retry can have written a batch twice);
#   - rows in flows = rows the sink received = rows it wrote (none lost,
#     none twice), and per flow the sums of the four deltas are the
#     flow's final totals as sent.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=helpers/ch_lib.sh
source "$FV_HELPERS/ch_lib.sh"

fv_require_root
fv_require_cmd jq curl ss python3 nft
fv_require_flowvis
ch_require

NODES=3
FLOWS=300
RATE=600
DURATION=40
SEED=5

fv_netns_add NS ch
CH_NS=$NS
ch_start ch
CH=${CH_URL[ch]}


chm() {
    ch_agg_metric "flowvis_aggregator_clickhouse_$1"
}

_metric_ge() {
    local v
    v=$(chm "$1")
    [[ $v =~ ^[0-9]+$ ]] && ((v >= $2))
}

_ch_idle() {
    [[ -z $(ip netns exec "$NS" ss -Htn state established "( sport = :${CH_HTTP[ch]} )") ]]
}

_drained() {
    [[ $(chm rows_queued) == 0 && $(chm spool_bytes) == 0 && $(chm up) == 1 ]]
}

ch_agg_start 60s <<EOF
  databaseURL: $CH
  commitInterval: 1s
  queueSizeMB: 1
  spoolDir: $FV_TMP/spool
  spoolSizeMB: 64
EOF
fv_wait_for 15 "the sink to create the flows table" ch_value_is ch \
    "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'flows'" 1

fv_bg gen "$NS" "$FLOWVIS" generate --target "127.0.0.1:$AGG_PORT:udp" --nodes $NODES \
    --flows $FLOWS --records 0 --duration $DURATION --rate $RATE --seed $SEED \
    --summary-json "$FV_TMP/sent.json"
sleep 4
fv_wait_for 10 "rows in ClickHouse before the outage" ch_query_ok ch \
    "SELECT throwIf(count() = 0) FROM default.flows"

# --- The outage ----------------------------------------------------------------------

# Between two inserts. For about 0.4 s after SIGTERM, 18.16 still accepts
# connections and then resets them after the whole body came: an insert
# in that window is one the sink must count as ambiguous (it cannot know
# whether the server kept it), and the test could not tell a duplicate
# from a bug. So new connections are refused first (as by a stopped
# server), the insert under way (each has its own connection) finishes,
# and only then is the server stopped.
ip netns exec "$NS" nft -f - <<EOF
table inet fvch {
    chain input {
        type filter hook input priority 0;
        tcp dport ${CH_HTTP[ch]} ct state new reject with tcp reset
    }
}
EOF
fv_wait_for 10 "the insert in flight to finish" _ch_idle
fv_log "stopping ClickHouse for 30 s"
ch_stop ch
ip netns exec "$NS" nft delete table inet fvch
t0=$SECONDS
fv_wait_for 15 "the sink to count failed attempts" _metric_ge batches_failed_total 1
fv_assert_eq 0 "$(chm up)" "flowvis_aggregator_clickhouse_up during the outage"
fv_wait_for 25 "the sink to spill to its spool" _metric_ge rows_spilled_total 1
fv_assert_ge 1 "$(chm spool_bytes)" "spool bytes during the outage"
sleep $((30 - (SECONDS - t0)))
fv_log "starting ClickHouse again after $((SECONDS - t0)) s; sink: failed=$(chm batches_failed_total)" \
    "spilled=$(chm rows_spilled_total) queued=$(chm rows_queued) spool_bytes=$(chm spool_bytes)"
ch_restart ch

fv_wait_exit gen $((DURATION + 10))
[[ $FV_STATUS -eq 0 ]] || {
    fv_show_err gen
    fv_fatal "flowvis generate exited with status $FV_STATUS"
}
RECORDS=$(jq .records "$FV_TMP/sent.json")
fv_wait_for 10 "the aggregator to receive $RECORDS records" _ch_agg_received "$RECORDS"
fv_wait_for 30 "the sink to empty its queue and spool" _drained
fv_assert_eq 0 "$(chm rows_refused_total)" "push() calls refused (the spool had room)"
fv_assert_eq 0 "$(chm batches_ambiguous_total)" "ambiguous failures"
FAILED=$(chm batches_failed_total)
SPILLED=$(chm rows_spilled_total)

ch_agg_stop
STOPPED=$CH_AGG_STOPPED
fv_assert_eq 1 "$(grep -c 'clickhouse insert failed' "$FV_TMP/agg.err")" \
    "log lines 'clickhouse insert failed' (one, then rate-limited)"
fv_assert_ge 1 "$(grep -c 'clickhouse back up' "$FV_TMP/agg.err")" "log lines 'clickhouse back up'"

# --- Nothing lost, nothing twice -------------------------------------------------------

ROWS=$(ch_query ch "SELECT count() FROM default.flows")
received=$(grep -oE ' received=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
written=$(grep -oE ' written=[0-9]+' <<<"$STOPPED" | cut -d= -f2)
fv_log "rows=$ROWS; during the outage: failed attempts=$FAILED, rows spilled=$SPILLED"
fv_assert_ge 1 "$SPILLED" "rows that went through the spool"
fv_assert_eq "$received" "$written" "rows the sink wrote = rows it received"
fv_assert_eq "$received" "$ROWS" "rows in flows = rows the sink received"

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
