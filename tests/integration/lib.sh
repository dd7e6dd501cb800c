# shellcheck shell=bash
# lib.sh - helpers for the flowvis integration tests.
#
# Each test is a bash script that sources this file, drives real third-party
# tools (softflowd, ulogd2, tshark) against the flowvis binary, and asserts
# exact values. This file provides:
#
#   - a cleanup stack run on every exit, success or failure (fv_defer);
#   - skipping with a reason (fv_skip, fv_require_root, fv_require_cmd);
#   - network namespaces and veth pairs that are deleted at exit;
#   - background processes that are stopped at exit (fv_bg, fv_stop);
#   - bounded waits for a bound port, a log line or a number of records;
#   - assertions that print what was expected and what was got; a test
#     with a failed assertion exits 1 even if it forgets to say so.
#
# Usage:
#     source "$(dirname "$0")/lib.sh"
#     fv_require_root
#     fv_netns_add ns probe
#     fv_collector_start coll "$ns" 127.0.0.1:4739 udp
#     ...
#     fv_assert_eq 42 "$got" "octetDeltaCount of flow A"
#
# Exit codes: 0 pass, 1 fail, 77 skip (the automake convention, which
# run.sh follows). Every wait is bounded; nothing here loops forever.

set -euo pipefail

FV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FV_TEST=$(basename "$0" .sh)
# The binary under test, relative to the repository root unless absolute.
FLOWVIS=${FLOWVIS:-build/flowvis}
[[ $FLOWVIS == /* ]] || FLOWVIS=$FV_ROOT/$FLOWVIS
FV_HELPERS=$FV_ROOT/tests/integration/helpers
# Scratch space for this test run; kept when FV_KEEP_TMP=1, for debugging.
FV_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$FV_TEST.XXXXXX")
FV_FAILURES=0
# A short tag that makes namespace and interface names unique per run, so
# that two runs on one machine do not collide. Interface names must stay
# under 16 bytes, hence the short form.
FV_TAG=$(printf '%x' $(($$ % 65536)))

# ---------------------------------------------------------------------------
# Cleanup stack and exit status
# ---------------------------------------------------------------------------

_fv_cleanups=()

# fv_defer CMD...: run CMD at exit; the last deferred runs first.
fv_defer() {
    _fv_cleanups+=("$*")
}

_fv_on_exit() {
    local rc=$? i
    set +e
    for ((i = ${#_fv_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_fv_cleanups[i]}" >/dev/null 2>&1
    done
    if [[ ${FV_KEEP_TMP:-0} == 1 ]]; then
        echo "kept scratch files in $FV_TMP" >&2
    else
        rm -rf "$FV_TMP"
    fi
    # A failed assertion fails the test even if the script ran to its end.
    if [[ $rc -eq 0 && $FV_FAILURES -gt 0 ]]; then
        rc=1
    fi
    exit "$rc"
}
trap _fv_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fv_log MSG...: a progress line on stderr (run.sh shows it on failure).
fv_log() {
    echo "[$FV_TEST] $*" >&2
}

# fv_fatal MSG...: fail the test now.
fv_fatal() {
    echo "FAIL: $*" >&2
    exit 1
}

# fv_skip REASON: skip the test; run.sh prints the reason.
fv_skip() {
    echo "SKIP: $*"
    exit 77
}

fv_require_root() {
    [[ $(id -u) -eq 0 ]] || fv_skip "needs root (network namespaces)"
    ip netns list >/dev/null 2>&1 || fv_skip "cannot use network namespaces here"
}

# fv_require_cmd CMD...: skip unless every command is installed.
fv_require_cmd() {
    local cmd missing=()
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ ${#missing[@]} -eq 0 ]] ||
        fv_skip "missing ${missing[*]} (install with: scripts/deps.sh test)"
}

# fv_require_flowvis: the binary under test must exist; a missing binary is
# a failure, not a skip, so that a broken build cannot look green.
fv_require_flowvis() {
    [[ -x $FLOWVIS ]] || fv_fatal "$FLOWVIS not found or not executable (run make first)"
}

# fv_require_browser: what the web UI's browser tests need (tests/ui/*.mjs):
# node, Debian's Chromium (CHROMIUM, or FLOWVIS_CHROMIUM), playwright-core
# from ui/node_modules, and the flowvis binary; skips with the reason.
fv_require_browser() {
    CHROMIUM=${FLOWVIS_CHROMIUM:-/usr/bin/chromium}
    fv_require_cmd node jq curl ss "$CHROMIUM"
    [[ -f $FV_ROOT/ui/node_modules/playwright-core/package.json ]] ||
        fv_skip "ui/node_modules/playwright-core is missing (make builds the UI: cd ui && npm ci)"
    fv_require_flowvis
}

# ---------------------------------------------------------------------------
# Network namespaces
# ---------------------------------------------------------------------------

# fv_netns_add VAR NAME: create a namespace with lo up, deleted at exit,
# and store its full name in VAR. (Not a $(...) function: the cleanup must
# be registered in this shell.) Processes started in it with fv_bg are
# stopped before it is deleted, because the cleanup stack runs in reverse.
fv_netns_add() {
    local ns="fv-$FV_TAG-$2"
    ip netns add "$ns"
    fv_defer ip netns del "$ns"
    ip -n "$ns" link set lo up
    printf -v "$1" '%s' "$ns"
}

# fv_veth NS_A IP_A/LEN NS_B IP_B/LEN: connect two namespaces with a veth
# pair (deleted with the namespaces); its ends are named $FV_VETH_A (in
# NS_A) and $FV_VETH_B (in NS_B).
FV_VETH_A="fv${FV_TAG}a"
FV_VETH_B="fv${FV_TAG}b"
fv_veth() {
    local a=$FV_VETH_A b=$FV_VETH_B
    ip link add "$a" netns "$1" type veth peer name "$b" netns "$3"
    ip -n "$1" addr add "$2" dev "$a"
    ip -n "$3" addr add "$4" dev "$b"
    ip -n "$1" link set "$a" up
    ip -n "$3" link set "$b" up
}

# fv_in NS CMD...: run CMD in namespace NS ("" means the current one).
fv_in() {
    local ns=$1
    shift
    if [[ -n $ns ]]; then
        ip netns exec "$ns" "$@"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------
# Background processes
# ---------------------------------------------------------------------------

declare -A FV_PID=()

# fv_bg NAME NS CMD...: start CMD in namespace NS in the background, stdout
# to $FV_TMP/NAME.out and stderr to $FV_TMP/NAME.err; it is stopped at exit.
fv_bg() {
    local name=$1 ns=$2
    shift 2
    # Not through fv_in: a backgrounded function runs in a subshell, and $!
    # would then be that subshell, not the process to signal. `ip netns
    # exec` execs the command, so here $! is the command itself.
    if [[ -n $ns ]]; then
        ip netns exec "$ns" "$@" >"$FV_TMP/$name.out" 2>"$FV_TMP/$name.err" &
    else
        "$@" >"$FV_TMP/$name.out" 2>"$FV_TMP/$name.err" &
    fi
    FV_PID[$name]=$!
    fv_defer fv_kill "$name"
}

# fv_kill NAME: TERM, then KILL after 3 s; for cleanup, status ignored.
fv_kill() {
    local pid=${FV_PID[$1]:-} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# fv_stop NAME [SIGNAL] [TIMEOUT_S]: signal the process (default TERM),
# wait for it to exit and set FV_STATUS to its exit status; fails the test
# if it does not exit in time.
fv_stop() {
    local name=$1 sig=${2:-TERM} timeout=${3:-5} pid=${FV_PID[$1]} i
    FV_STATUS=0
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        fv_fatal "$name did not exit within ${timeout}s of SIG$sig"
    fi
    wait "$pid" || FV_STATUS=$?
    unset "FV_PID[$name]"
}

# fv_wait_exit NAME TIMEOUT_S: wait for the process to exit by itself; sets
# FV_STATUS; fails the test if it is still running after TIMEOUT_S.
fv_wait_exit() {
    local name=$1 timeout=$2 pid=${FV_PID[$1]} i
    FV_STATUS=0
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fv_fatal "$name still running after ${timeout}s"
    wait "$pid" || FV_STATUS=$?
    unset "FV_PID[$name]"
}

# fv_alive NAME: fail the test, showing its stderr, if NAME has exited.
fv_alive() {
    local pid=${FV_PID[$1]}
    if ! kill -0 "$pid" 2>/dev/null; then
        local rc=0
        wait "$pid" || rc=$?
        fv_show_err "$1"
        fv_fatal "$1 exited early with status $rc"
    fi
}

# fv_show_err NAME: print the last lines of NAME's stderr, indented.
fv_show_err() {
    echo "--- $1 stderr (last 20 lines) ---" >&2
    tail -n 20 "$FV_TMP/$1.err" 2>/dev/null | sed 's/^/    /' >&2 || true
}

# ---------------------------------------------------------------------------
# Traffic with exact payload sizes (helpers/exchange.py)
# ---------------------------------------------------------------------------

# fv_exchange NS ARGS...: run one end of an exchange in the foreground.
fv_exchange() {
    local ns=$1
    shift
    fv_in "$ns" python3 "$FV_HELPERS/exchange.py" "$@"
}

# fv_exchange_server NAME NS ARGS...: start a server end in the background
# and return once it is bound.
fv_exchange_server() {
    local name=$1 ns=$2
    shift 2
    fv_bg "$name" "$ns" python3 "$FV_HELPERS/exchange.py" "$@"
    fv_wait_for 10 "$name to be ready" _fv_server_ready "$name"
}

_fv_server_ready() {
    fv_alive "$1"
    grep -qs ready "$FV_TMP/$1.out"
}

# fv_exchange_done NAME: the server end must exit 0 within 10 s.
fv_exchange_done() {
    fv_wait_exit "$1" 10
    if [[ $FV_STATUS -ne 0 ]]; then
        fv_show_err "$1"
        fv_fatal "$1 exited with status $FV_STATUS"
    fi
}

# ---------------------------------------------------------------------------
# Bounded waits
# ---------------------------------------------------------------------------

# fv_wait_for TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.1 s until it
# succeeds; fail the test with DESCRIPTION after TIMEOUT_S.
fv_wait_for() {
    local timeout=$1 what=$2 i
    shift 2
    for ((i = 0; i < timeout * 10; i++)); do
        "$@" >/dev/null && return 0
        sleep 0.1
    done
    fv_fatal "timed out after ${timeout}s waiting for $what"
}

# fv_port_bound NS PROTO PORT: true if a socket is bound to PORT (a listening
# TCP socket, or any UDP socket).
fv_port_bound() {
    local flags=-Hltn
    [[ $2 == udp ]] && flags=-Haun
    fv_in "$1" ss "$flags" "sport = :$3" | grep -q .
}

# fv_wait_port NS PROTO PORT [TIMEOUT_S]
fv_wait_port() {
    fv_wait_for "${4:-10}" "$2 port $3 to be bound${1:+ in $1}" fv_port_bound "$1" "$2" "$3"
}

# fv_free_port NS PROTO: print a random port in 20000-59999 that nothing in
# NS has bound (50 tries at most).
fv_free_port() {
    local i port
    for ((i = 0; i < 50; i++)); do
        port=$((20000 + RANDOM % 40000))
        fv_port_bound "$1" "$2" "$port" || {
            echo "$port"
            return 0
        }
    done
    fv_fatal "no free $2 port found"
}

# fv_wait_grep TIMEOUT_S FILE PATTERN: wait for an extended regex in FILE.
fv_wait_grep() {
    fv_wait_for "$1" "'$3' in $(basename "$2")" grep -sEq -- "$3" "$2"
}

# fv_count_json FILE JQ_FILTER: the number of JSON lines in FILE for which
# the filter is true (lines that are not JSON are ignored).
fv_count_json() {
    jq -R -c "fromjson? | select($2)" "$1" 2>/dev/null | wc -l
}

# fv_wait_json TIMEOUT_S FILE JQ_FILTER COUNT: wait until FILE holds at
# least COUNT JSON lines that match the filter.
fv_wait_json() {
    local timeout=$1 file=$2 filter=$3 want=$4 have=0 i
    for ((i = 0; i < timeout * 10; i++)); do
        have=$(fv_count_json "$file" "$filter")
        [[ $have -ge $want ]] && return 0
        sleep 0.1
    done
    fv_fatal "timed out after ${timeout}s waiting for $want records matching '$filter'" \
        "in $(basename "$file"); got $have"
}

# ---------------------------------------------------------------------------
# Captures (tcpdump or dumpcap)
# ---------------------------------------------------------------------------

# fv_capture_start NAME NS IFACE FILTER: capture on IFACE into
# $FV_TMP/NAME.pcap; returns once the capture is running.
fv_capture_start() {
    local name=$1 ns=$2 iface=$3 filter=$4
    # --immediate-mode and -U: each packet reaches the file as it arrives,
    # not when a kernel buffer block fills or times out.
    fv_bg "$name" "$ns" tcpdump -i "$iface" -n --immediate-mode -U -s 0 \
        -w "$FV_TMP/$name.pcap" "$filter"
    fv_wait_for 10 "tcpdump to listen on $iface" grep -q "listening on" "$FV_TMP/$name.err"
}

# fv_dumpcap_start NAME NS IFACE FILTER: the same with Wireshark's dumpcap
# (pcap format), stopping by itself after 60 s at the latest.
fv_dumpcap_start() {
    local name=$1 ns=$2 iface=$3 filter=$4
    fv_bg "$name" "$ns" dumpcap -q -P -i "$iface" -f "$filter" -a duration:60 \
        -w "$FV_TMP/$name.pcap"
    fv_wait_for 10 "dumpcap to capture on $iface" grep -q "Capturing on" "$FV_TMP/$name.err"
}

# fv_tshark ARGS...: tshark, without its warning about running as root.
fv_tshark() {
    tshark "$@" 2> >(grep -v '^Running as user' >&2)
}

# fv_capture_stop NAME: stop the capture once the file has stopped growing
# (tcpdump drops what it has not yet read when it is told to stop). SIGTERM,
# not SIGINT: a non-interactive shell starts background jobs with SIGINT
# ignored.
fv_capture_stop() {
    local file=$FV_TMP/$1.pcap size prev=-1 stable=0 i
    for ((i = 0; i < 50 && stable < 3; i++)); do
        sleep 0.1
        size=$(stat -c %s "$file")
        if [[ $size == "$prev" ]]; then
            stable=$((stable + 1))
        else
            stable=0
        fi
        prev=$size
    done
    fv_stop "$1" TERM 5
}

# ---------------------------------------------------------------------------
# The flowvis collector
# ---------------------------------------------------------------------------

# fv_collector_start NAME NS HOST:PORT TRANSPORT: start `flowvis collector`
# printing JSON lines to $FV_TMP/NAME.out; returns once the port is bound.
fv_collector_start() {
    local name=$1 ns=$2 addr=$3 transport=$4
    fv_bg "$name" "$ns" "$FLOWVIS" collector --address "$addr" --transport "$transport" \
        --format json
    fv_wait_for 10 "$name to bind $transport $addr" _fv_collector_ready "$name" "$ns" \
        "$transport" "${addr##*:}"
}

_fv_collector_ready() {
    fv_alive "$1"
    fv_port_bound "$2" "$3" "$4"
}

# fv_collector_stop NAME: SIGTERM; the collector must flush and exit 0.
fv_collector_stop() {
    fv_stop "$1" TERM 5
    if [[ $FV_STATUS -ne 0 ]]; then
        fv_show_err "$1"
        fv_fail "$1 exited with status $FV_STATUS after SIGTERM, expected 0"
    fi
}

# ---------------------------------------------------------------------------
# Assertions: each prints what was expected and what was got, counts the
# failure and lets the test go on, so that one run shows every mismatch.
# ---------------------------------------------------------------------------

# fv_fail MSG...: record a failed check.
fv_fail() {
    echo "FAIL: $*" >&2
    FV_FAILURES=$((FV_FAILURES + 1))
}

# fv_assert_eq EXPECTED GOT WHAT
fv_assert_eq() {
    if [[ $1 == "$2" ]]; then
        fv_log "ok: $3 = $1"
    else
        fv_fail "$3: expected '$1', got '$2'"
    fi
}

# fv_assert_ge MIN GOT WHAT (integers)
fv_assert_ge() {
    if [[ $2 =~ ^-?[0-9]+$ ]] && (($2 >= $1)); then
        fv_log "ok: $3 = $2 >= $1"
    else
        fv_fail "$3: expected >= $1, got '$2'"
    fi
}

# fv_assert_between MIN MAX GOT WHAT (integers, inclusive)
fv_assert_between() {
    if [[ $3 =~ ^-?[0-9]+$ ]] && (($3 >= $1 && $3 <= $2)); then
        fv_log "ok: $4 = $3 in [$1, $2]"
    else
        fv_fail "$4: expected a value in [$1, $2], got '$3'"
    fi
}

# fv_assert_same_lines EXPECTED_FILE GOT_FILE WHAT: the two files hold the
# same lines in any order; prints a diff (- expected, + got) otherwise.
fv_assert_same_lines() {
    local diff
    if diff=$(diff -u <(LC_ALL=C sort "$1") <(LC_ALL=C sort "$2")); then
        fv_log "ok: $3 ($(wc -l <"$1") lines match)"
    else
        fv_fail "$3 differ (- expected, + got):"
        echo "$diff" | tail -n +3 | sed 's/^/    /' >&2
    fi
}
