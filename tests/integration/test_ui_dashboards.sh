#!/usr/bin/env bash
# The web UI's dashboards in Debian's headless Chromium (tests/ui/dashboards.mjs,
# driven by playwright-core from ui/node_modules), against `flowvis aggregator`
# serving its embedded UI, with the SQLite store and ui.excludeNamespaces:
# [batch], seeded by `flowvis generate` (3 nodes, 60 flows, 300 records over
# 5 s over TCP on 127.0.0.1, seed 7) whose --summary-json is the oracle.
#
# Before the browser starts, the store must hold every octet the generator
# sent (GET /api/v1/top?since=1h, all namespaces), the aggregator must have
# no flow left in memory and no exporter connected (so that its live
# counters stay still), and / must serve the UI's index.html. Then, in the
# browser, with the range "last hour" and refresh off:
#   - every page, reached through its nav link: ready within 20 s, no panel
#     in error; every chart (Sankey, lines, pie, bars, heat map) shows
#     exactly the numbers of the API URL in its data-query, fetched again
#     from the page; every stat tile and table shows its API numbers; each
#     /top answer behind a chart equals the generator's summary for the
#     same group, metric and where clauses;
#   - with batch excluded: Overview's bytes, reverse bytes, flows and
#     throughput tiles are the summary's over the flows without batch,
#     records received = records sent, none dropped; the Pod-to-Pod Sankey is
#     the summary's per-Pod-pair sums; the policy Sankey has no link
#     batch/batch-egress (allow) -> backend/default-deny (drop); the denied
#     traffic table lists the summary's denied policy pairs;
#   - "show excluded namespaces" ticked: no query leaves batch out, the bytes
#     tile is the generator's total, the policy Sankey has that link with the
#     summary's sum, the Pod-to-Pod Sankey (top 50) every Pod pair; every page
#     again as above;
#   - the filter chip namespace=frontend: in the URL and in every panel's
#     query, every page's charts equal the API and the summary, every Sankey
#     link and pie slice is a group of flows touching frontend; removing the
#     chip restores the previous numbers;
#   - a custom range yesterday: every panel over the range, on every page, is
#     empty; "last hour" again: the same numbers as before; auto-refresh 10s
#     reloads the overview by itself with the same numbers;
#   - Flow Records: total and rows are the API's; next page (offset 50, no
#     row of page 1), prev; sorting by bytes desc then asc (first row = max,
#     min); a column filter gives the API's total for the same where; a row
#     click shows all 49 columns of the record with the API's raw values;
#   - no console error, page error, failed request or HTTP error answer, no
#     request leaving the aggregator, and no API request for more than 100
#     rows (/flows), 50 series (/series) or 50 groups (/top), all run long.
# Screenshots of every page (1440x900, full page) stay in build/ui-screenshots/.
#
# FLOWVIS_UPDATE_SCREENSHOTS=1: after the checks pass, a second aggregator
# (default excluded namespaces) is fed a larger cluster for 60 s (5 nodes,
# 400 flows) and the screenshots of every page over that minute
# (tests/ui/screenshots.mjs) replace docs/screenshots/*.png (run it with
# FV_TEST_TIMEOUT=240).
# FV_UI_DIR=DIR: serve the UI from DIR (ui.dir) instead of the embedded
# files, for UI development only.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_browser

SEED=7
FLOWS=60
RECORDS=300
RATE=60
SHOTS=$FV_ROOT/build/ui-screenshots

AGG_PORT=$(fv_free_port "" tcp)
API_PORT=$(fv_free_port "" tcp)
while [[ $API_PORT == "$AGG_PORT" ]]; do API_PORT=$(fv_free_port "" tcp); done
API=http://127.0.0.1:$API_PORT

# agg_config FILE IPFIX_PORT API_PORT DB EXCLUDED_YAML_LIST
agg_config() {
    cat >"$1" <<EOF
listenAddress: 127.0.0.1:$2
aggregatorTransportProtocol: tcp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 2s
correlationWait: 2s
logLevel: info
apiServer:
  apiPort: $3
sqlite:
  path: $4
  commitInterval: 200ms
ui:
  excludeNamespaces: $5
EOF
    if [[ -n ${FV_UI_DIR:-} ]]; then
        echo "  dir: $FV_UI_DIR" >>"$1"
    fi
}

# json URL: the body of a GET that must answer 200 (else empty).
json() {
    curl -sf --max-time 5 "$1" 2>/dev/null || true
}

_agg_ready() {
    fv_alive "$1"
    curl -sf --max-time 2 "$2/readyz" >/dev/null
}

# _settled API OCTETS: the store holds OCTETS (every namespace), and the
# aggregator holds no flow and no exporter connection any more.
_settled() {
    fv_alive agg
    local top m
    top=$(json "$1/api/v1/top?since=1h")
    m=$(json "$1/recordmetrics")
    [[ $(jq -r '.total // -1' <<<"$top" 2>/dev/null) == "$2" ]] &&
        [[ $(jq -r '"\(.numFlows) \(.numConnToCollector)"' <<<"$m" 2>/dev/null) == "0 0" ]]
}

# seed NAME IPFIX_PORT SUMMARY ARGS...: run the generator over TCP (in the
# background, so that a signal is handled at once) and wait for it.
seed() {
    local name=$1 port=$2 summary=$3
    shift 3
    fv_bg "$name" "" "$FLOWVIS" generate --target "127.0.0.1:$port:tcp" --summary-json "$summary" "$@"
    fv_wait_exit "$name" 120
    [[ $FV_STATUS -eq 0 ]] || fv_fatal "flowvis generate failed: $(cat "$FV_TMP/$name.err")"
}

# --- the aggregator, seeded -----------------------------------------------------------------------

agg_config "$FV_TMP/agg.yaml" "$AGG_PORT" "$API_PORT" "$FV_TMP/flows.db" "[batch]"
fv_bg agg "" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
fv_wait_for 15 "the aggregator to answer /readyz" _agg_ready agg "$API"
fv_wait_port "" tcp "$AGG_PORT"

index=$(curl -s --max-time 5 "$API/")
[[ $index == *'id="page"'* && $index == *assets/app.js* ]] ||
    fv_fatal "GET / does not serve the UI's index.html: $(head -c 300 <<<"$index")"
fv_log "ok: GET / serves the UI ($( [[ -n ${FV_UI_DIR:-} ]] && echo "from $FV_UI_DIR" || echo embedded))"

seed gen "$AGG_PORT" "$FV_TMP/sent.json" --nodes 3 --flows $FLOWS --records $RECORDS --rate $RATE \
    --seed $SEED
SENT=$(jq '[.perFlow[].octetDeltaCount] | add' "$FV_TMP/sent.json")
fv_log "sent $RECORDS records of $FLOWS flows, $SENT octets"
fv_wait_for 30 "the store to hold the $SENT octets sent, and no flow left in memory" _settled "$API" "$SENT"

# --- the browser ----------------------------------------------------------------------------------

rm -rf "$SHOTS"
mkdir -p "$SHOTS"
start=$SECONDS
# In the background (fv_bg), so that a signal stops the test at once and the
# cleanup stops node, and with it Chromium. TMPDIR: Playwright makes
# Chromium's fresh profile there.
fv_bg browser "" env TMPDIR="$FV_TMP" FLOWVIS_CHROMIUM="$CHROMIUM" node "$FV_ROOT/tests/ui/dashboards.mjs" \
    --base "$API" --summary "$FV_TMP/sent.json" --shots "$SHOTS" --excluded batch
fv_wait_exit browser 150
sed 's/^/    /' "$FV_TMP/browser.out" "$FV_TMP/browser.err" >&2
fv_log "the browser checks took $((SECONDS - start)) s; screenshots in ${SHOTS#"$FV_ROOT"/}/"
[[ $FV_STATUS -eq 0 ]] ||
    fv_fail "tests/ui/dashboards.mjs: $(grep -c '^FAIL' "$FV_TMP/browser.out") failed checks (exit $FV_STATUS)"
fv_assert_eq 8 "$(find "$SHOTS" -name '*.png' | wc -l)" "screenshots taken"

fv_stop agg TERM 20
fv_assert_eq 0 "$FV_STATUS" "the aggregator's exit status after SIGTERM"

# --- screenshots for the docs ---------------------------------------------------------------------

if [[ ${FLOWVIS_UPDATE_SCREENSHOTS:-0} == 1 && $FV_FAILURES -eq 0 ]]; then
    AGG2=$(fv_free_port "" tcp)
    API2=$(fv_free_port "" tcp)
    agg_config "$FV_TMP/agg2.yaml" "$AGG2" "$API2" "$FV_TMP/flows2.db" "[kube-system, flowvis]"
    fv_bg agg2 "" "$FLOWVIS" aggregator --config "$FV_TMP/agg2.yaml"
    fv_wait_for 15 "the second aggregator to answer /readyz" _agg_ready agg2 "http://127.0.0.1:$API2"
    fv_wait_port "" tcp "$AGG2"
    fv_log "feeding a 5-node cluster for 60 s for the docs' screenshots"
    t0=$(date +%s)
    seed gen2 "$AGG2" "$FV_TMP/sent2.json" --nodes 5 --pods-per-node 8 --flows 400 --records 0 \
        --duration 60 --rate 200 --seed 11
    t1=$(date +%s)
    sleep 5
    # The range of the data, so that its minute fills the time axes.
    fv_bg shots "" env TMPDIR="$FV_TMP" FLOWVIS_CHROMIUM="$CHROMIUM" node \
        "$FV_ROOT/tests/ui/screenshots.mjs" --base "http://127.0.0.1:$API2" --shots "$FV_TMP/docshots" \
        --start $((t0 - 5)) --end $((t1 + 5))
    fv_wait_exit shots 120
    sed 's/^/    /' "$FV_TMP/shots.out" "$FV_TMP/shots.err" >&2
    [[ $FV_STATUS -eq 0 ]] || fv_fail "tests/ui/screenshots.mjs failed (exit $FV_STATUS)"
    if [[ $FV_FAILURES -eq 0 ]]; then
        mkdir -p "$FV_ROOT/docs/screenshots"
        cp "$FV_TMP"/docshots/*.png "$FV_ROOT/docs/screenshots/"
        fv_log "updated docs/screenshots/ ($(find "$FV_TMP/docshots" -name "*.png" | wc -l) files)"
    fi
fi
