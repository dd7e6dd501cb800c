#!/usr/bin/env bash
# Every panel of the Grafana dashboards (deploy/grafana/dashboards) answers
# exactly what the fixture's flows make it, on a real ClickHouse whose
# schema the real aggregator created from real IPFIX records.
#
# In a fresh network namespace: clickhouse-server (Debian's 18.16, or
# whatever `clickhouse-server` is installed; TZ=UTC, so that DateTime
# prints the same everywhere; config and data under $FV_TMP) on 127.0.0.1,
# empty; `flowvis aggregator` (UDP, SQLite off, clickHouse.enable with a
# 1 s commitInterval) creates the schema. tests/grafana/send_flows.py sends
# the records of tests/grafana/fixture.py as two agents would (template
# 256, fixed flow times in a ten-minute window of 2024-03-01, flowType 1
# to 4, two Nodes, four Namespaces, Allow/Drop/Reject policy actions), in
# two phases: everything, then, once those rows are in ClickHouse, the end
# of one flow (so that it has two rows in two time buckets). The aggregator
# is stopped with SIGTERM; then:
#   - the sink created flows and the three views; it received and wrote
#     every row, none failed; flows holds the rows fixture.py says;
#   - deploy/grafana/dashboards is what deploy/grafana/build_dashboards.py
#     writes (the JSON is generated from one source);
#   - the provisioning files name the plugin and the dashboards' path;
#   - tests/grafana/panels.py lint: every dashboard is valid JSON, uses no
#     datasource but the ${datasource} variable of type
#     grafana-clickhouse-datasource, has a SQL query in every panel, no
#     colliding panel id or gridPos, only macros that work on 18.16, only
#     its own variables;
#   - tests/grafana/panels.py run: every query variable and panel query of
#     every dashboard, with the variables at All and at two selections,
#     and the macros expanded as the plugin (4.x, and 2.x for Grafana 8)
#     expands them for the window and a 60 s interval, runs on ClickHouse
#     and answers exactly the block of tests/grafana/expected/<dashboard>.txt
#     (column names, types and rows).
# With FV_GRAFANA_UPDATE=1 the last step rewrites the expected files
# instead (review the diff against the fixture before committing it).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=helpers/ch_lib.sh
source "$FV_HELPERS/ch_lib.sh"

fv_require_root
fv_require_cmd curl ss python3
fv_require_flowvis
ch_require

GRAFANA=$FV_ROOT/deploy/grafana
HELPERS=$FV_ROOT/tests/grafana
# No __pycache__ left in the work tree by the helpers' imports.
export PYTHONDONTWRITEBYTECODE=1
fixture() {
    python3 -c "import sys; sys.path.insert(0, '$HELPERS'); import fixture; print($1)"
}

# clickhouse-server takes its time zone from TZ: UTC makes the DateTime text
# of the answers the same on every machine.
export TZ=UTC
fv_netns_add NS graf
CH_NS=$NS
ch_start ch
CH=${CH_URL[ch]}
fv_assert_eq UTC "$(ch_query ch "SELECT timezone()" | sed 's|^Etc/||')" "ClickHouse time zone"

ch_agg_start 60s <<EOF
  databaseURL: $CH
  commitInterval: 1s
  spoolDir: $FV_TMP/spool
EOF
fv_wait_for 15 "the sink to create the flows table" ch_value_is ch \
    "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'flows'" 1

# --- The fixture, through the real path: IPFIX -> aggregator -> ClickHouse -----------

for phase in 1 2; do
    want_records=$(fixture "fixture.RECORDS_AFTER_PHASE[$phase]")
    want_rows=$(fixture "fixture.ROWS_AFTER_PHASE[$phase]")
    fv_in "$NS" timeout 10 python3 "$HELPERS/send_flows.py" 127.0.0.1 "$AGG_PORT" "$phase" \
        >/dev/null 2>"$FV_TMP/send.err" ||
        fv_fatal "send_flows.py failed: $(cat "$FV_TMP/send.err")"
    fv_wait_for 10 "the aggregator to receive $want_records records" _ch_agg_received \
        "$want_records"
    # Phase 2 must find phase 1's rows written: then the flow it ends is
    # exported again, as a second row, whatever the timing.
    fv_wait_for 15 "$want_rows rows in flows after phase $phase" ch_value_is ch \
        "SELECT count() FROM default.flows" "$want_rows"
done
ch_agg_stop
STOPPED=$CH_AGG_STOPPED

ROWS=$(fixture "fixture.ROWS_AFTER_PHASE[2]")
fv_assert_eq "flows flows_node_view flows_pod_view flows_policy_view" \
    "$(ch_query ch "SELECT name FROM system.tables WHERE database = 'default' AND
        name LIKE 'flows%' ORDER BY name" | xargs)" "tables the sink created"
fv_assert_eq "$ROWS" "$(ch_query ch "SELECT count() FROM default.flows")" "rows in flows"
fv_assert_eq "$ROWS" "$(grep -oE ' received=[0-9]+' <<<"$STOPPED" | cut -d= -f2)" \
    "rows the sink received"
fv_assert_eq "$ROWS" "$(grep -oE ' written=[0-9]+' <<<"$STOPPED" | cut -d= -f2)" \
    "rows the sink wrote"
fv_assert_eq 0 "$(grep -oE ' failed=[0-9]+' <<<"$STOPPED" | cut -d= -f2)" \
    "failed insert attempts"
# The rows per flow: one each, two for the flow that phase 2 ends.
want="40001:2 40002:1 40003:1 40004:1 40006:1 40007:1 40009:1 40010:1 40012:1 41000:1"
fv_assert_eq "$want 51000:1 53000:1" \
    "$(ch_query ch "SELECT concat(toString(sourceTransportPort), ':', toString(count()))
        FROM default.flows GROUP BY sourceTransportPort ORDER BY sourceTransportPort" | xargs)" \
    "rows per flow (by source port)"

# --- The dashboards ----------------------------------------------------------------------

python3 "$GRAFANA/build_dashboards.py" --check 2>"$FV_TMP/build.err" ||
    fv_fail "$(cat "$FV_TMP/build.err")"
if python3 "$HELPERS/panels.py" lint "$GRAFANA/dashboards" >"$FV_TMP/lint.out" 2>"$FV_TMP/lint.err"
then
    fv_log "ok: dashboards lint: $(tr '\n' ';' <"$FV_TMP/lint.out")"
else
    sed 's/^/    /' "$FV_TMP/lint.err" >&2
    fv_fail "dashboard lint failed"
fi

# The provisioning files name the plugin and the dashboards' directory.
fv_assert_eq "type: grafana-clickhouse-datasource" \
    "$(grep -E '^\s*type:' "$GRAFANA/provisioning/datasources/flowvis-clickhouse.yaml" | xargs)" \
    "data source type provisioned"
fv_assert_eq "path: /var/lib/grafana/dashboards/flowvis" \
    "$(grep -E '^\s*path:' "$GRAFANA/provisioning/dashboards/flowvis.yaml" | xargs)" \
    "dashboards provider path"

update=()
[[ ${FV_GRAFANA_UPDATE:-0} == 1 ]] && update=(--update)
if fv_in "$NS" python3 "$HELPERS/panels.py" run "$GRAFANA/dashboards" "$HELPERS/expected" \
    "$CH" "${update[@]}" >"$FV_TMP/run.out" 2>"$FV_TMP/run.err"; then
    if [[ ${#update[@]} -gt 0 ]]; then
        fv_log "rewrote tests/grafana/expected: review the diff against the fixture"
    else
        fv_log "ok: every panel query answers as expected: $(tail -n 1 "$FV_TMP/run.out")"
    fi
else
    sed 's/^/    /' "$FV_TMP/run.err" >&2
    fv_fail "panel queries: $(grep -c '^FAIL' "$FV_TMP/run.err") failures" \
        "(of $(tail -n 1 "$FV_TMP/run.out"))"
fi
