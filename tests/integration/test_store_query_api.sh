#!/usr/bin/env bash
# The query API over the SQLite store (/api/v1/flows, /series, /top,
# docs/api.md) and `flowvis get flows`, against a live aggregator.
#
# In a namespace of its own: `flowvis aggregator` listens for IPFIX over
# UDP on 127.0.0.1 (1 s active, 2 s inactive timeout) and stores every
# exported record in SQLite ($FV_TMP/flows.db); `flowvis generate` sends
# it 400 records of 40 flows on 3 simulated nodes over 8 s. Once the database holds
# every octet the generator says it sent, over the range [first
# flowEndSeconds, last + 1):
#   - /api/v1/flows: total = the rows of the table; a page sorted by
#     octetDeltaCount (limit 25, offset 7) is the page sqlite3 gives for the
#     same ORDER BY with the documented tie-breakers;
#   - /api/v1/top?group=pod_pair: every Pod pair's bytes and reverse bytes
#     equal both sqlite3's GROUP BY and the generator's own per-flow summary
#     (pod-to-external flows keyed by the address); total = the sum, other
#     0; with limit 3, other = total - the three values;
#   - /api/v1/top?metric=flows: 40 distinct 5-tuples;
#   - /api/v1/series by namespace pair (packets, step 2 s, top 3): the
#     series are /top's three largest groups in order, each sums to its
#     value, "other" sums to the rest, and the first one's points are
#     sqlite3's per-bucket sums;
#   - where clauses (namespace either side, proto by name, substring) select
#     what sqlite3 selects with the same conditions written by hand;
#   - `flowvis get flows -o json` prints the same total and rows, the table
#     has its header and says on stderr how many rows it left out, and a
#     bad --where exits 2 before any request;
#   - SQL injection through a where value matches nothing (200, total 0),
#     through sort, group, metric or a where key is a 400 naming the
#     parameter, a %00 is a 400, and the table is whole afterwards;
#   - bad parameters are 400s with {"error": "<parameter>: ..."};
#   - an aggregator without a store answers 503.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd jq curl sqlite3 ss
fv_require_flowvis

NODES=3
FLOWS=40
RECORDS=400
RATE=50
SEED=7
DB=$FV_TMP/flows.db

fv_netns_add NS q
AGG_PORT=$(fv_free_port "$NS" udp)
API_PORT=$(fv_free_port "$NS" tcp)
API=http://127.0.0.1:$API_PORT

# agg_config FILE UDP_PORT API_PORT SQLITE_ENABLE
agg_config() {
    cat >"$1" <<EOF
listenAddress: 127.0.0.1:$2
aggregatorTransportProtocol: udp
activeFlowRecordTimeout: 1s
inactiveFlowRecordTimeout: 2s
correlationWait: 2s
workers: 2
logLevel: info
apiServer:
  apiPort: $3
sqlite:
  enable: $4
  path: $DB
  commitInterval: 200ms
EOF
}

metric() {
    ip netns exec "$NS" curl -sf --max-time 3 "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" '$1 == n { print $2 }'
}

_agg_ready() {
    fv_alive "$1"
    [[ -n $(metric "$2" flowvis_aggregator_records_received_total) ]]
}

# sq SQL: sqlite3 on the aggregator's database (it is in WAL mode, so this
# reader does not disturb the writer), fields separated by ','.
sq() {
    sqlite3 -batch -separator , "$DB" "$1"
}

# api PATH [KEY=VALUE...]: GET PATH with the parameters URL-encoded; prints
# the HTTP status, the body is in $FV_TMP/body.
api() {
    local path=$1 kv args=()
    shift
    for kv in "$@"; do
        args+=(--data-urlencode "$kv")
    done
    ip netns exec "$NS" curl -sG --max-time 10 -o "$FV_TMP/body" -w '%{http_code}' \
        "${args[@]}" "$API$path"
}

# apij VAR PATH [KEY=VALUE...]: VAR = the JSON answer of a request that
# must be a 200 (else a failure, and VAR = {}). Not in $(...), so that a
# failure counts.
apij() {
    local var=$1 code
    shift
    code=$(api "$@")
    if [[ $code != 200 ]]; then
        fv_fail "GET $* answered $code: $(head -c 300 "$FV_TMP/body")"
        printf -v "$var" '{}'
        return 0
    fi
    printf -v "$var" '%s' "$(cat "$FV_TMP/body")"
}

# expect_400 WHAT WANT PATH [KEY=VALUE...]: a 400 whose error contains WANT.
expect_400() {
    local what=$1 want=$2 code err
    shift 2
    code=$(api "$@")
    err=$(jq -r '.error // empty' "$FV_TMP/body" 2>/dev/null)
    fv_assert_eq 400 "$code" "$what: status"
    [[ $err == *"$want"* ]] || fv_fail "$what: error '$err' does not say '$want'"
}

# The answers, set by apij.
out='' page='' top='' top3='' fl='' series='' w=''

get_flows() {
    fv_in "$NS" "$FLOWVIS" get flows --server "$API" "$@" 2>"$FV_TMP/get.err"
}

# --- the aggregator, fed by the generator ----------------------------------------------------

agg_config "$FV_TMP/agg.yaml" "$AGG_PORT" "$API_PORT" true
fv_bg agg "$NS" "$FLOWVIS" aggregator --config "$FV_TMP/agg.yaml"
fv_wait_for 15 "the aggregator to serve /metrics" _agg_ready agg "$API_PORT"
fv_wait_port "$NS" udp "$AGG_PORT"

fv_in "$NS" timeout 30 "$FLOWVIS" generate --target "127.0.0.1:$AGG_PORT:udp" --nodes $NODES \
    --flows $FLOWS --records $RECORDS --rate $RATE --seed $SEED \
    --summary-json "$FV_TMP/sent.json" 2>"$FV_TMP/generate.err" ||
    fv_fatal "flowvis generate failed: $(cat "$FV_TMP/generate.err")"
SENT=$(jq '[.perFlow[].octetDeltaCount] | add' "$FV_TMP/sent.json")
fv_log "sent $RECORDS records, $SENT octets"

_stored() {
    fv_alive agg
    [[ -s $DB && $(sq "SELECT coalesce(sum(octetDeltaCount), 0) FROM flows" 2>/dev/null) == "$SENT" ]]
}
fv_wait_for 30 "the SQLite store to hold the $SENT octets sent" _stored
ROWS=$(sq "SELECT count(*) FROM flows")
S=$(sq "SELECT min(flowEndSeconds) FROM flows")
E=$(($(sq "SELECT max(flowEndSeconds) FROM flows") + 1))
RANGE=(start="$S" end="$E")
IN_RANGE="flowEndSeconds >= $S AND flowEndSeconds < $E"
fv_log "stored $ROWS rows, flowEndSeconds in [$S, $E)"

# --- /api/v1/flows -----------------------------------------------------------------------------

apij out /api/v1/flows "${RANGE[@]}" limit=10000 columns=flowEndSeconds
fv_assert_eq "$ROWS $ROWS $S $E" "$(jq -r '"\(.total) \(.rows | length) \(.start) \(.end)"' <<<"$out")" \
    "flows: total, rows, start, end"

COLS=flowEndSeconds,sourceIP,destinationIP,sourceTransportPort,destinationTransportPort,protocolIdentifier,octetDeltaCount
apij page /api/v1/flows "${RANGE[@]}" sort=octetDeltaCount limit=25 offset=7 columns=$COLS
got=$(jq -r '.rows[] | [.flowEndSeconds, .sourceIP, .destinationIP, .sourceTransportPort,
        .destinationTransportPort, .protocolIdentifier, .octetDeltaCount] | map(tostring) | join(",")' \
    <<<"$page")
want=$(sq "SELECT $COLS FROM flows WHERE $IN_RANGE ORDER BY octetDeltaCount DESC,
    flowEndSeconds DESC, sourceIP, destinationIP, sourceTransportPort, destinationTransportPort,
    protocolIdentifier LIMIT 25 OFFSET 7")
fv_assert_eq "$want" "$got" "flows: page 8-32 by octetDeltaCount desc"
fv_assert_eq 25 "$(wc -l <<<"$got")" "flows: rows in the page"

# --- /api/v1/top ---------------------------------------------------------------------------------

POD_PAIR="(CASE WHEN sourcePodName = '' THEN sourceIP ELSE sourcePodNamespace || '/' ||
    sourcePodName END) || ' -> ' || (CASE WHEN destinationPodName = '' THEN destinationIP
    ELSE destinationPodNamespace || '/' || destinationPodName END)"
apij top /api/v1/top "${RANGE[@]}" group=pod_pair limit=1000
got=$(jq -r '.groups[] | [.key, .value, .reverse] | map(tostring) | join(",")' <<<"$top" | sort)
want=$(sq "SELECT $POD_PAIR, sum(octetDeltaCount), sum(reverseOctetDeltaCount) FROM flows
    WHERE $IN_RANGE GROUP BY 1" | sort)
fv_assert_eq "$want" "$got" "top pod_pair: key, bytes, reverse bytes (vs sqlite3)"
sent=$(jq -r '.perFlow | map({k: ((if .sourcePodName == "" then .sourceIP
        else "\(.sourcePodNamespace)/\(.sourcePodName)" end) + " -> " +
        (if .destinationPodName == "" then .destinationIP
        else "\(.destinationPodNamespace)/\(.destinationPodName)" end)),
        v: .octetDeltaCount, r: .reverseOctetDeltaCount})
    | group_by(.k)[] | [.[0].k, (map(.v) | add), (map(.r) | add)] | map(tostring) | join(",")' \
    "$FV_TMP/sent.json" | sort)
fv_assert_eq "$sent" "$got" "top pod_pair: key, bytes, reverse bytes (vs what the generator sent)"
fv_assert_eq "$SENT 0" "$(jq -r '"\(.total) \(.other)"' <<<"$top")" "top pod_pair: total, other"
labels=$(jq -r '.groups[0] | "\(.labels.source) -> \(.labels.destination)" == .key' <<<"$top")
fv_assert_eq true "$labels" "top pod_pair: the key is the source and destination labels"

apij top3 /api/v1/top "${RANGE[@]}" group=pod_pair limit=3
fv_assert_eq "3 true" "$(jq -r '"\(.groups | length) \(.other == .total - ([.groups[].value] | add))"' \
    <<<"$top3")" "top pod_pair limit 3: groups, other = total - their values"
fv_assert_eq "$(head -n 3 < <(jq -r '.groups | sort_by(-.value, .key)[] | .key' <<<"$top"))" \
    "$(jq -r '.groups[].key' <<<"$top3")" "top pod_pair limit 3: the three largest, largest first"

apij fl /api/v1/top "${RANGE[@]}" metric=flows
fv_assert_eq "$FLOWS" "$(jq .total <<<"$fl")" "top metric=flows: distinct 5-tuples"
apij fl /api/v1/top "${RANGE[@]}" metric=flows group=flow_type
fv_assert_eq "$(sq "SELECT count(*) FROM (SELECT DISTINCT sourceIP, destinationIP,
    sourceTransportPort, destinationTransportPort, protocolIdentifier FROM flows
    WHERE $IN_RANGE AND flowType = 2)")" \
    "$(jq '[.groups[] | select(.key == "inter-node") | .value] | add // 0' <<<"$fl")" \
    "top metric=flows group=flow_type: inter-node 5-tuples"

# --- /api/v1/series ----------------------------------------------------------------------------

apij series /api/v1/series "${RANGE[@]}" group=namespace_pair metric=packets step=2 top=3
apij top /api/v1/top "${RANGE[@]}" group=namespace_pair metric=packets limit=3
fv_assert_eq "$(jq -r '.groups[] | "\(.key)=\(.value)"' <<<"$top")" \
    "$(jq -r '.series[] | select(.other | not) | "\(.key)=\([.points[][1]] | add)"' <<<"$series")" \
    "series namespace_pair: the top 3 of /top, each summing to its value"
total=$(sq "SELECT sum(packetDeltaCount) FROM flows WHERE $IN_RANGE")
fv_assert_eq "$((total - $(jq '[.groups[].value] | add' <<<"$top")))" \
    "$(jq '[.series[] | select(.other) | .points[][1]] | add // 0' <<<"$series")" \
    "series namespace_pair: other = everything else"
first=$(jq -r '.series[0].labels | "\(.source)|\(.destination)"' <<<"$series")
got=$(jq -r '.series[0].points[] | select(.[1] != 0) | map(tostring) | join(",")' <<<"$series")
want=$(sq "SELECT flowEndSeconds - flowEndSeconds % 2, sum(packetDeltaCount) FROM flows
    WHERE $IN_RANGE AND sourcePodNamespace = '${first%|*}' AND
    destinationPodNamespace = '${first#*|}' GROUP BY 1 ORDER BY 1")
fv_assert_eq "$want" "$got" "series namespace_pair: buckets of the largest ($first)"
fv_assert_eq 2 "$(jq .step <<<"$series")" "series: step"

# --- where -------------------------------------------------------------------------------------

NSX=$(sq "SELECT sourcePodNamespace FROM flows WHERE sourcePodNamespace != '' LIMIT 1")
apij w /api/v1/top "${RANGE[@]}" where=namespace="$NSX"
fv_assert_eq "$(sq "SELECT coalesce(sum(octetDeltaCount), 0) FROM flows WHERE $IN_RANGE AND
    (sourcePodNamespace = '$NSX' OR destinationPodNamespace = '$NSX')")" \
    "$(jq .total <<<"$w")" "where namespace=$NSX"
apij w /api/v1/top "${RANGE[@]}" where=namespace!="$NSX" where=proto=tcp
fv_assert_eq "$(sq "SELECT coalesce(sum(octetDeltaCount), 0) FROM flows WHERE $IN_RANGE AND
    sourcePodNamespace != '$NSX' AND destinationPodNamespace != '$NSX' AND protocolIdentifier = 6")" \
    "$(jq .total <<<"$w")" \
    "where namespace!=$NSX, proto=tcp"
apij w /api/v1/flows "${RANGE[@]}" 'where=pod~-1' limit=1
fv_assert_eq "$(sq "SELECT count(*) FROM flows WHERE $IN_RANGE AND
    (instr(sourcePodName, '-1') > 0 OR instr(destinationPodName, '-1') > 0)")" \
    "$(jq .total <<<"$w")" "where pod~-1"

# --- flowvis get flows ---------------------------------------------------------------------------

json=$(get_flows -o json --start "$S" --end "$E" --limit 10000) ||
    fv_fail "get flows -o json: $(cat "$FV_TMP/get.err")"
fv_assert_eq "$ROWS $ROWS" "$(jq -r '"\(.total) \(.rows | length)"' <<<"$json")" \
    "get flows -o json: total, rows"
json=$(get_flows -o json --start "$S" --end "$E" --where namespace="$NSX" --where proto=tcp) ||
    fv_fail "get flows --where: $(cat "$FV_TMP/get.err")"
fv_assert_eq "$(sq "SELECT count(*) FROM flows WHERE $IN_RANGE AND protocolIdentifier = 6 AND
    (sourcePodNamespace = '$NSX' OR destinationPodNamespace = '$NSX')")" \
    "$(jq .total <<<"$json")" "get flows --where namespace=$NSX --where proto=tcp: total"
table=$(get_flows --start "$S" --end "$E" --limit 5 --sort octetDeltaCount) ||
    fv_fail "get flows (table): $(cat "$FV_TMP/get.err")"
fv_log "table:"$'\n'"$table"
fv_assert_eq "TIME SRC_IP DST_IP SPORT DPORT PROTO SRC_POD DST_POD SRC_NS DST_NS SERVICE BYTES REV_BYTES" \
    "$(head -n 1 <<<"$table" | xargs)" "get flows: table header"
fv_assert_eq 6 "$(wc -l <<<"$table")" "get flows --limit 5: table lines"
fv_assert_eq "$(sq "SELECT max(octetDeltaCount) FROM flows WHERE $IN_RANGE")" \
    "$(sed -n 2p <<<"$table" | awk '{print $(NF-1)}')" "get flows --sort octetDeltaCount: BYTES of row 1"
grep -q "printed records 1-5 of $ROWS" "$FV_TMP/get.err" ||
    fv_fail "get flows --limit 5 did not say what it left out: $(cat "$FV_TMP/get.err")"
rc=0
get_flows --where bogus=1 >/dev/null || rc=$?
fv_assert_eq 2 "$rc" "get flows --where bogus=1: exit status"
grep -q "where: unknown key 'bogus'" "$FV_TMP/get.err" || fv_fail "get flows --where bogus=1: $(cat "$FV_TMP/get.err")"

# --- injection and bad parameters ----------------------------------------------------------------

for v in "x'; DROP TABLE flows; --" "' OR '1'='1" "\\' OR 1=1 --" "%" "_" "x\" OR \"\"=\""; do
    fv_assert_eq "200 0" "$(api /api/v1/top "${RANGE[@]}" "where=sourcePodName=$v") $(jq .total "$FV_TMP/body")" \
        "where sourcePodName=$v: matches nothing"
    fv_assert_eq "200 0" "$(api /api/v1/flows "${RANGE[@]}" "where=namespace~$v") $(jq .total "$FV_TMP/body")" \
        "where namespace~$v: matches nothing"
done
expect_400 "sort injection" "sort: unknown column" /api/v1/flows "sort=flowEndSeconds; DROP TABLE flows"
expect_400 "order injection" "order:" /api/v1/flows "order=desc, (SELECT 1)"
expect_400 "columns injection" "columns: unknown column" /api/v1/flows "columns=sourceIP,1); DROP TABLE flows; --"
expect_400 "group injection" "group:" /api/v1/top "group=pod_pair; DROP TABLE flows"
expect_400 "metric injection" "metric:" /api/v1/series "metric=sum(1)"
expect_400 "where key injection" "where: unknown key" /api/v1/top "where=1=1 OR sourceIP=x"
expect_400 "limit injection" "limit:" /api/v1/flows "limit=1; DROP TABLE flows"
code=$(ip netns exec "$NS" curl -s --max-time 10 -o "$FV_TMP/body" -w '%{http_code}' \
    "$API/api/v1/flows?where=namespace%3Dx%00%27%3B%20DROP%20TABLE%20flows")
fv_assert_eq 400 "$code" "a %00 in a value: status"
fv_assert_eq "$ROWS flows" "$(sq "SELECT count(*) FROM flows") $(sq "SELECT name FROM sqlite_master
    WHERE type = 'table' AND name = 'flows'")" "the flows table after the injection attempts"

expect_400 "limit 0" "limit: '0' is not an integer from 1 to 10000" /api/v1/flows limit=0
expect_400 "unknown parameter" "unknown parameter 'step' for /api/v1/flows" /api/v1/flows step=10
expect_400 "too many buckets" "step: 1 s makes" /api/v1/series since=1d step=1
expect_400 "inverted range" "the range is empty or inverted" /api/v1/top start="$E" end="$S"
expect_400 "bad time" "start: 'yesterday'" /api/v1/top start=yesterday
expect_400 "numeric column" "where: srcport: 'http'" /api/v1/top where=srcport=http

# --- no store: 503 -----------------------------------------------------------------------------------

AGG2_PORT=$(fv_free_port "$NS" udp)
API2_PORT=$(fv_free_port "$NS" tcp)
agg_config "$FV_TMP/agg2.yaml" "$AGG2_PORT" "$API2_PORT" false
fv_bg agg2 "$NS" "$FLOWVIS" aggregator --config "$FV_TMP/agg2.yaml"
fv_wait_for 15 "the aggregator without a store to serve /metrics" _agg_ready agg2 "$API2_PORT"
code=$(ip netns exec "$NS" curl -s --max-time 10 -o "$FV_TMP/body" -w '%{http_code}' \
    "http://127.0.0.1:$API2_PORT/api/v1/flows")
fv_assert_eq 503 "$code" "/api/v1/flows without a store: status"
grep -q "no store is enabled" "$FV_TMP/body" || fv_fail "503 body: $(cat "$FV_TMP/body")"

fv_stop agg TERM 20
fv_assert_eq 0 "$FV_STATUS" "the aggregator's exit status after SIGTERM"
