#!/usr/bin/env bash
# The web UI's own unit tests (ui/test/*.test.mjs: URL state, formatting,
# query building, the transformation of API answers into chart data),
# without a browser, under Node's built-in runner: `node --test ui/test/`.
#   - every test passes (the runner's exit status is 0);
#   - the runner found tests (at least one per ui/test/*.test.mjs file),
#     and none was cancelled or left as a todo.
# Skips when node is missing or there is no ui/test/*.test.mjs.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_cmd node
cd "$FV_ROOT"
shopt -s nullglob
files=(ui/test/*.test.mjs)
[[ ${#files[@]} -gt 0 ]] || fv_skip "no ui/test/*.test.mjs"

rc=0
# The TAP reporter: its summary lines ("# pass N") are stable across Node
# releases, and it prints every failure with its diff.
timeout -k 5 60 node --test --test-reporter=tap ui/test/ >"$FV_TMP/tap" 2>&1 || rc=$?
summary() {
    sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$FV_TMP/tap" | tail -n 1
}
tests=$(summary tests)
pass=$(summary pass)
if [[ $rc -ne 0 ]]; then
    grep -E -B2 -A25 '^not ok|^ +not ok' "$FV_TMP/tap" | head -n 200 | sed 's/^/    /' >&2
    fv_fail "node --test ui/test/: exit status $rc, $(summary fail) of $tests failed"
fi
fv_assert_ge "${#files[@]}" "${tests:-0}" "tests run (from ${#files[@]} files)"
fv_assert_eq "$tests" "$pass" "tests passed"
fv_assert_eq "0 0" "$(summary cancelled) $(summary todo)" "tests cancelled, todo"
