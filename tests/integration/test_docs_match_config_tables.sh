#!/usr/bin/env bash
# The configuration reference in docs/ is the one the binary prints from its
# config table, so the docs cannot drift from the code; and the example
# config the binary prints loads back cleanly.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_flowvis

# check_doc COMMAND: docs/COMMAND-config.md holds the table the binary
# prints, and the example config it prints loads back.
check_doc() {
    local cmd=$1 doc=$FV_ROOT/docs/$1-config.md
    sed -n "/<!-- BEGIN $cmd config -->/,/<!-- END $cmd config -->/p" "$doc" | sed '1d;$d' \
        >"$FV_TMP/doc.md"
    "$FLOWVIS" "$cmd" --print-config markdown >"$FV_TMP/table.md"
    if ! diff -u "$FV_TMP/doc.md" "$FV_TMP/table.md" >"$FV_TMP/diff"; then
        fv_fail "docs/$cmd-config.md differs from 'flowvis $cmd --print-config markdown':
$(cat "$FV_TMP/diff")"
    fi
    "$FLOWVIS" "$cmd" --print-config yaml >"$FV_TMP/example.yaml"
    out=$("$FLOWVIS" "$cmd" --config "$FV_TMP/example.yaml" --check 2>&1) ||
        fv_fail "the printed $cmd example config does not load: $out"
    fv_assert_eq "$FV_TMP/example.yaml: ok" "$out" "$cmd example config check"
}

check_doc agent
check_doc aggregator
