#!/usr/bin/env bash
# `flowvis aggregator` refuses a bad configuration with a clear message that
# names the file (and the line, where the parser knows it) and the key,
# and the right exit status: 2 for a file that is not a valid
# configuration, 1 for a configuration that cannot run.
#
# Each case runs the aggregator itself (not --check) in a fresh network
# namespace (so that its ports collide with nothing), under a 10 s timeout:
#   - unknown key, top level: "FILE:LINE: unknown key 'K'", status 2; a
#     near miss adds "(did you mean ...?)"; a nested one is named with
#     its dotted path;
#   - flowCollector.recordFormat: XML, status 2, naming the key and XML;
#   - activeFlowRecordTimeout 500ms (below 1s) and "5x", maxFlows 5 (below
#     1000), ui.excludeNamespaces with a name that is not a DNS label or
#     with 9 names, aggregatorTransportProtocol: quic, a bad flowCollector.address,
#     a duplicate key: status 2, FILE:LINE and the key;
#   - keys that only fail together, also caught by --check: status 2 —
#     aggregatorTransportProtocol: tcp,tls (tcp and tls cannot share the
#     port); apiServer.bindAddress 0.0.0.0 without token and TLS (naming
#     apiServer.tokenFile; nothing listens on the API port); JSON to a tls
#     collector;
#   - a missing config file: status 2;
#   - a good file: --check prints "FILE: ok" (status 0), and the aggregator
#     really starts with it and stops on SIGTERM with status 0, so that the
#     failures above come from the bad lines alone.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd ss
fv_require_flowvis

fv_netns_add NS agg
DIR=$FV_TMP/cfg
mkdir -p "$DIR"

GOOD="listenAddress: 127.0.0.1:4739
aggregatorTransportProtocol: tls
flowAggregatorAddress: 127.0.0.1
activeFlowRecordTimeout: 2s
inactiveFlowRecordTimeout: 4s
tls:
  dir: $FV_TMP/tls
sqlite:
  path: $FV_TMP/flows.db
apiServer:
  apiPort: 10348
flowCollector:
  enable: false
  recordFormat: json"
GOOD_LINES=$(wc -l <<<"$GOOD")

# run NAME ARGS...: the aggregator in $NS; sets RC, OUT (stdout), ERR (stderr).
run() {
    local name=$1
    shift
    RC=0
    fv_in "$NS" timeout 10 "$FLOWVIS" aggregator "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" || RC=$?
    OUT=$(cat "$DIR/$name.out")
    ERR=$(cat "$DIR/$name.err")
}

# bad NAME STATUS EXPECTED_STDERR CONFIG_TEXT: refused with status STATUS
# and exactly this one-line stderr (@FILE@ is the config's path).
bad() {
    local name=$1 status=$2 want=$3 file=$DIR/$1.yaml
    printf '%s\n' "$4" >"$file"
    want=${want//@FILE@/$file}
    run "$name" --config "$file"
    fv_assert_eq "$status" "$RC" "$name: exit status"
    fv_assert_eq "$want" "$ERR" "$name: stderr"
    fv_assert_eq "" "$OUT" "$name: stdout"
}

# bad_match NAME STATUS CONFIG_TEXT REGEX...: refused with status STATUS and
# a stderr that matches every extended REGEX (@FILE@ is the path, quoted).
bad_match() {
    local name=$1 status=$2 file=$DIR/$1.yaml re qfile
    printf '%s\n' "$3" >"$file"
    shift 3
    run "$name" --config "$file"
    fv_assert_eq "$status" "$RC" "$name: exit status"
    qfile=$(sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$file")
    for re in "$@"; do
        re=${re//@FILE@/$qfile}
        if grep -Eq -- "$re" <<<"$ERR"; then
            fv_log "ok: $name: stderr matches /$re/"
        else
            fv_fail "$name: stderr does not match /$re/; it is: $ERR"
        fi
    done
}

# --- the good file ---------------------------------------------------------------------
printf '%s\n' "$GOOD" >"$DIR/good.yaml"
run good --config "$DIR/good.yaml" --check
fv_assert_eq "0 $DIR/good.yaml: ok" "$RC $OUT" "good config: --check"
fv_assert_eq "" "$ERR" "good config: --check stderr"

# --- not a valid configuration: status 2 ---------------------------------------------------
bad unknown_key 2 "flowvis aggregator: @FILE@:$((GOOD_LINES + 1)): unknown key 'bogusKey'" \
    "$GOOD
bogusKey: 1"

bad unknown_key_near 2 \
    "flowvis aggregator: @FILE@:2: unknown key 'activeFlowRecordTimout' (did you mean 'activeFlowRecordTimeout'?)" \
    "listenAddress: 127.0.0.1:4739
activeFlowRecordTimout: 5s"

bad unknown_nested_key 2 \
    "flowvis aggregator: @FILE@:$((GOOD_LINES + 2)): unknown key 'recordContents.podLabel' (did you mean 'recordContents.podLabels'?)" \
    "$GOOD
recordContents:
  podLabel: true"

bad_match record_format_xml 2 "listenAddress: 127.0.0.1:4739
flowCollector:
  enable: true
  address: 127.0.0.1:4740:tcp
  recordFormat: XML" "@FILE@" "flowCollector\.recordFormat" "'XML'" "IPFIX.*JSON|JSON.*IPFIX"
fv_assert_eq 1 "$(wc -l <<<"$ERR")" "record_format_xml: stderr lines"

bad duration_below_min 2 "flowvis aggregator: @FILE@:2: activeFlowRecordTimeout: 500ms is below the minimum 1s" \
    "listenAddress: 127.0.0.1:4739
activeFlowRecordTimeout: 500ms"

bad duration_bad 2 "flowvis aggregator: @FILE@:2: inactiveFlowRecordTimeout: '5x' is not a duration (use e.g. 500ms, 5s, 1m)" \
    "listenAddress: 127.0.0.1:4739
inactiveFlowRecordTimeout: 5x"

bad ui_namespace 2 "flowvis aggregator: @FILE@:3: ui.excludeNamespaces: item 2: 'Bad_NS' is invalid: a namespace name is lowercase letters, digits and inner '-'" \
    "listenAddress: 127.0.0.1:4739
ui:
  excludeNamespaces: [kube-system, Bad_NS]"

bad ui_namespaces_too_many 2 "flowvis aggregator: @FILE@:3: ui.excludeNamespaces: more than the maximum of 8 items" \
    "listenAddress: 127.0.0.1:4739
ui:
  excludeNamespaces: [a, b, c, d, e, f, g, h, i]"

bad max_flows_low 2 "flowvis aggregator: @FILE@:2: maxFlows: 5 is below the minimum 1000" \
    "listenAddress: 127.0.0.1:4739
maxFlows: 5"

bad_match transport_quic 2 "listenAddress: 127.0.0.1:4739
aggregatorTransportProtocol: quic" \
    "^flowvis aggregator: @FILE@:2: aggregatorTransportProtocol: .*'quic'"

bad_match collector_address 2 "listenAddress: 127.0.0.1:4739
flowCollector:
  address: 'a:b:c:d'" "^flowvis aggregator: @FILE@:3: flowCollector\.address: .*'a:b:c:d'"

bad duplicate_key 2 "flowvis aggregator: @FILE@:3: duplicate key 'maxFlows' (first set on line 2)" \
    "listenAddress: 127.0.0.1:4739
maxFlows: 5000
maxFlows: 6000"

run missing_file --config "$DIR/does-not-exist.yaml"
fv_assert_eq 2 "$RC" "missing config file: exit status"
grep -q "does-not-exist.yaml" <<<"$ERR" || fv_fail "missing config file: message does not name it: $ERR"

# --- keys that fail only together: status 2, and --check says so too ---------------------------
NO_TRANSPORT=$(grep -v '^aggregatorTransportProtocol:' <<<"$GOOD")
bad_match transport_tcp_tls 2 "$NO_TRANSPORT
aggregatorTransportProtocol: tcp,tls" \
    "@FILE@: aggregatorTransportProtocol: " "tcp and tls cannot share one port"
run transport_tcp_tls_check --config "$DIR/transport_tcp_tls.yaml" --check
fv_assert_eq 2 "$RC" "tcp,tls: --check exit status"

bad_match json_over_tls 2 "listenAddress: 127.0.0.1:4739
flowCollector:
  enable: true
  address: 127.0.0.1:4740:tls
  recordFormat: JSON" "flowCollector\.address: JSON goes over tcp or udp"

bad_match api_exposed 2 "$(grep -v '^apiServer:\|^  apiPort:' <<<"$GOOD")
apiServer:
  bindAddress: 0.0.0.0
  apiPort: 10348" "apiServer\.bindAddress 0\.0\.0\.0" "apiServer\.tokenFile"
if fv_port_bound "$NS" tcp 10348; then
    fv_fail "api_exposed: something listens on 10348 after the refusal"
fi

# --- the good file really runs ----------------------------------------------------------------
fv_bg good_run "$NS" "$FLOWVIS" aggregator --config "$DIR/good.yaml"
fv_wait_for 10 "the aggregator to run with the good config" \
    grep -qs 'aggregator running' "$FV_TMP/good_run.err"
fv_wait_port "$NS" tcp 4739
fv_wait_port "$NS" tcp 10348
fv_stop good_run TERM 10
fv_assert_eq 0 "$FV_STATUS" "good config: exit status after SIGTERM"
