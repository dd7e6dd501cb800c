#!/usr/bin/env bash
# The configuration reference in docs/ is the one the binary prints from its
# config table, so the docs cannot drift from the code; and the example
# config the binary prints loads back cleanly.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_flowvis

DOC=$FV_ROOT/docs/agent-config.md
sed -n '/<!-- BEGIN agent config -->/,/<!-- END agent config -->/p' "$DOC" | sed '1d;$d' \
    >"$FV_TMP/doc.md"
"$FLOWVIS" agent --print-config markdown >"$FV_TMP/table.md"
if ! diff -u "$FV_TMP/doc.md" "$FV_TMP/table.md" >"$FV_TMP/diff"; then
    fv_fail "docs/agent-config.md differs from 'flowvis agent --print-config markdown':
$(cat "$FV_TMP/diff")"
fi

"$FLOWVIS" agent --print-config yaml >"$FV_TMP/example.yaml"
out=$("$FLOWVIS" agent --config "$FV_TMP/example.yaml" --check 2>&1) ||
    fv_fail "the printed example config does not load: $out"
fv_assert_eq "$FV_TMP/example.yaml: ok" "$out" "example config check"
