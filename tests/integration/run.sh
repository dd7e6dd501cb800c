#!/usr/bin/env bash
# Run the flowvis integration tests.
#
#   tests/integration/run.sh [-v] [TEST...]
#
# Runs every tests/integration/test_*.sh, or only the named ones (given as
# "test_x", "test_x.sh" or a path), one after the other, each under a
# timeout (FV_TEST_TIMEOUT seconds, default 90; a test with a line
# "# fv-timeout: SECONDS" gets that much if it is more). Prints PASS, FAIL or
# SKIP (reason) per test, the output of each failed test (of every test
# with -v), and ends with the line "N passed, N failed[, N skipped]".
# Exits 1 if any test failed, 0 otherwise.
#
# The binary under test is ${FLOWVIS:-build/flowvis}, relative to the
# repository root, which is where the tests run.
set -euo pipefail

cd "$(dirname "$0")/../.."
dir=tests/integration
timeout_s=${FV_TEST_TIMEOUT:-90}
verbose=0
if [[ ${1:-} == -v ]]; then
    verbose=1
    shift
fi

tests=()
if [[ $# -eq 0 ]]; then
    for t in "$dir"/test_*.sh; do
        [[ -e $t ]] && tests+=("$t")
    done
else
    for arg in "$@"; do
        name=$(basename "$arg" .sh)
        [[ -f $dir/$name.sh ]] || {
            echo "run.sh: no test named $name in $dir" >&2
            exit 2
        }
        tests+=("$dir/$name.sh")
    done
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

passed=0 failed=0 skipped=0
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    start=$SECONDS
    rc=0
    # A test that needs longer says so in a line "# fv-timeout: SECONDS".
    t_timeout=$(sed -n 's/^# fv-timeout: \([0-9][0-9]*\)$/\1/p' "$t" | head -n 1)
    [[ -n $t_timeout && $t_timeout -gt $timeout_s ]] || t_timeout=$timeout_s
    # -k: a test that ignores SIGTERM is killed 10 s later.
    timeout -k 10 "$t_timeout" bash "$t" >"$log" 2>&1 </dev/null || rc=$?
    took=$((SECONDS - start))
    case $rc in
    0)
        echo "PASS $name"
        passed=$((passed + 1))
        ;;
    77)
        reason=$(sed -n 's/^SKIP: //p' "$log" | tail -n 1)
        echo "SKIP $name (${reason:-no reason given})"
        skipped=$((skipped + 1))
        ;;
    124 | 137)
        echo "FAIL $name"
        echo "    timed out after ${t_timeout}s"
        failed=$((failed + 1))
        ;;
    *)
        echo "FAIL $name"
        echo "    exit status $rc after ${took}s"
        failed=$((failed + 1))
        ;;
    esac
    if [[ $verbose -eq 1 || ($rc -ne 0 && $rc -ne 77) ]]; then
        sed 's/^/    /' "$log"
    fi
done

summary="$passed passed, $failed failed"
[[ $skipped -eq 0 ]] || summary+=", $skipped skipped"
echo "$summary"
[[ $failed -eq 0 ]]
