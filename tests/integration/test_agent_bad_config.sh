#!/usr/bin/env bash
# `flowvis agent` refuses a bad configuration with one clear line that
# names the file, the line and the key, and the right exit status.
#
# Each case runs the agent itself (not --check) in a fresh network
# namespace, under a 10 s timeout, and checks its exit status and its
# whole stderr (exactly one line, exact text unless noted) and that it
# printed nothing on stdout:
#   - unknown key, top level and nested: "FILE:LINE: unknown key 'K'" with
#     "(did you mean 'NEAREST'?)" when a key is close, status 2;
#   - bad duration "flowPollInterval: 5x", status 2;
#   - flowPollInterval 500ms, below the 1s minimum, status 2;
#   - a duplicate key, a bad CIDR, a scalar where a list belongs, status 2;
#   - the config file itself missing; --config missing, status 2;
#   - an inventory.file that does not exist, or is not JSON: the agent
#     gives up at start with status 1 and an error line naming
#     inventory.file and the path (checked as a pattern: it carries a log
#     timestamp);
#   - and a good file passes --check ("FILE: ok", status 0), so that the
#     failures above come from the bad lines alone.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_flowvis

fv_netns_add NS agent
DIR=$FV_TMP/cfg
mkdir -p "$DIR"

GOOD='nodeName: node-1
flowCollectorAddr: 127.0.0.1:4739:tcp
flowPollInterval: 1s
metricsAddress: ""'

# run NAME ARGS...: the agent in $NS; sets RC, OUT (stdout) and ERR (stderr).
run() {
    local name=$1
    shift
    RC=0
    fv_in "$NS" timeout 10 "$FLOWVIS" agent "$@" >"$DIR/$name.out" 2>"$DIR/$name.err" || RC=$?
    OUT=$(cat "$DIR/$name.out")
    ERR=$(cat "$DIR/$name.err")
}

# bad NAME STATUS EXPECTED_STDERR CONFIG_TEXT: the config is refused with
# exactly this stderr.
bad() {
    local name=$1 status=$2 want=$3 file=$DIR/$1.yaml
    printf '%s\n' "$4" >"$file"
    want=${want//@FILE@/$file}
    run "$name" --config "$file"
    fv_assert_eq "$status" "$RC" "$name: exit status"
    fv_assert_eq "$want" "$ERR" "$name: stderr"
    fv_assert_eq "" "$OUT" "$name: stdout"
}

printf '%s\n' "$GOOD" >"$DIR/good.yaml"
run good --config "$DIR/good.yaml" --check
fv_assert_eq "0 $DIR/good.yaml: ok" "$RC $OUT" "good config: --check"

bad unknown_key 2 "flowvis agent: @FILE@:3: unknown key 'flowPolInterval' (did you mean 'flowPollInterval'?)" \
    "nodeName: node-1
flowCollectorAddr: 127.0.0.1:4739:tcp
flowPolInterval: 1s"

bad unknown_nested_key 2 "flowvis agent: @FILE@:6: unknown key 'inventory.fiel' (did you mean 'inventory.file'?)" \
    "$GOOD
inventory:
  fiel: /tmp/inventory.json"

bad unknown_key_far 2 "flowvis agent: @FILE@:5: unknown key 'zzzqqq'" \
    "$GOOD
zzzqqq: 1"

bad bad_duration 2 "flowvis agent: @FILE@:3: flowPollInterval: '5x' is not a duration (use e.g. 500ms, 5s, 1m)" \
    "nodeName: node-1
flowCollectorAddr: 127.0.0.1:4739:tcp
flowPollInterval: 5x"

bad poll_below_minimum 2 "flowvis agent: @FILE@:2: flowPollInterval: 500ms is below the minimum 1s" \
    "nodeName: node-1
flowPollInterval: 500ms"

bad duplicate_key 2 "flowvis agent: @FILE@:5: duplicate key 'flowPollInterval' (first set on line 3)" \
    "$GOOD
flowPollInterval: 2s"

bad bad_cidr 2 "flowvis agent: @FILE@:5: podCIDRs: item 2: '10.244.1.0/33' is not a CIDR (e.g. 10.244.0.0/16 or fd00:10:244::/64)" \
    "$GOOD
podCIDRs: [fd00:10:244:1::/64, 10.244.1.0/33]"

bad cidr_not_a_list 2 "flowvis agent: @FILE@:5: podCIDRs: expected a list of CIDRs, got a single value '10.244.1.0/24'" \
    "$GOOD
podCIDRs: 10.244.1.0/24"

run missing_file --config "$DIR/nonexistent.yaml"
fv_assert_eq "2" "$RC" "config file missing: exit status"
fv_assert_eq "flowvis agent: cannot read $DIR/nonexistent.yaml: No such file or directory" "$ERR" \
    "config file missing: stderr"

run no_config
fv_assert_eq "2" "$RC" "--config missing: exit status"
fv_assert_eq "flowvis agent: --config FILE is required" "$ERR" "--config missing: stderr"

# --- inventory.file: refused when the agent starts ------------------------------------
# bad_inventory NAME PATH MESSAGE_REGEX
bad_inventory() {
    local name=$1 path=$2 file=$DIR/$1.yaml
    printf '%s\ninventory:\n  file: %s\n' "$GOOD" "$path" >"$file"
    run "$name" --config "$file"
    fv_assert_eq 1 "$RC" "$name: exit status"
    if grep -qE "^[0-9TZ:.-]+ error inventory\.file: $3\$" <<<"$ERR"; then
        fv_log "ok: $name: error line naming inventory.file and $path"
    else
        fv_fail "$name: no error line 'inventory.file: $path: ...' matching '$3'; stderr:"
        while IFS= read -r l; do echo "    $l"; done <<<"$ERR" >&2
    fi
    grep -q 'agent started' <<<"$ERR" && fv_fail "$name: the agent says it started"
    return 0
}
bad_inventory inventory_missing "$DIR/no-such-inventory.json" \
    "$DIR/no-such-inventory\.json: No such file or directory"
printf '{"apiVersion": "v1", "kind": "List", "items": [\n' >"$DIR/truncated.json"
bad_inventory inventory_not_json "$DIR/truncated.json" "$DIR/truncated\.json: .+"
