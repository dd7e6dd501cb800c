#!/usr/bin/env bash
# Runs cmocka unit test programs and sums their results.
#
#   tests/run-unit.sh build/tests/test_a build/tests/test_b ...
#
# Each program runs in its own process with a time limit (UNIT_TIMEOUT
# seconds, default 60).  A program's output is shown only when it fails,
# crashes or times out; otherwise one line says how many of its tests
# passed.  The last line is "N passed, N failed", counting individual
# tests; a program that dies before cmocka's summary counts as one
# failure.  Exits 1 if anything failed.
set -u

timeout_s=${UNIT_TIMEOUT:-60}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [ $# -eq 0 ]; then
    echo "usage: $0 TEST_BINARY..." >&2
    exit 2
fi

for bin in "$@"; do
    name=$(basename "$bin")
    timeout "$timeout_s" "$bin" >"$log" 2>&1
    rc=$?
    # cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed below:"
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed, timed out or failed a setup: no summary to trust
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        printf 'ok   %-28s %d passed\n' "$name" "$p"
    else
        if [ "$rc" -eq 124 ]; then
            why="timed out after ${timeout_s}s"
        elif [ "$rc" -gt 128 ]; then
            why="killed by signal $((rc - 128))"
        else
            why="exit $rc"
        fi
        printf 'FAIL %-28s %d passed, %d failed (%s)\n' "$name" "$p" "$f" "$why"
        sed 's/^/    /' "$log"
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
