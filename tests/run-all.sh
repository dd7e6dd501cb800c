#!/usr/bin/env bash
# Runs the unit tests (the binaries given as arguments) and then the
# integration suite, and prints one closing line for both:
#   N passed, N failed[, N skipped]
# Exit status is non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

unit_out=$(mktemp) integ_out=$(mktemp)
trap 'rm -f "$unit_out" "$integ_out"' EXIT

echo "== unit tests"
tests/run-unit.sh "$@" | tee "$unit_out"
unit_rc=${PIPESTATUS[0]}

echo "== integration tests"
tests/integration/run.sh | tee "$integ_out"
integ_rc=${PIPESTATUS[0]}

# Each runner ends with "N passed, N failed[, N skipped]"; add them up.
total() {
    awk -v key="$1" '/^[0-9]+ passed, [0-9]+ failed/ {
        for (i = 1; i < NF; i++) if ($(i + 1) ~ "^" key) n += $i
    } END { print n + 0 }' "$unit_out" "$integ_out"
}
passed=$(total passed) failed=$(total failed) skipped=$(total skipped)
if [ "$unit_rc" -ne 0 ] || [ "$integ_rc" -ne 0 ]; then
    [ "$failed" -eq 0 ] && failed=1   # a runner that crashed counts as a failure
fi
echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
