# bench/lib.sh - process and CPU helpers shared by the benchmark scripts
# (sourced by bench/run.sh, aggregator.sh, store.sh and ui.sh).  The caller
# sets ROOT (the repository) before sourcing it, and defines PIDS=() (its
# background processes) before using forget/stop_pid.
#
# BUILD (the build directory, as for make; `make bench BUILD=dir` passes it
# in the environment) is made absolute, and FLOWVIS defaults to the binary
# in it.
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
FLOWVIS=${FLOWVIS:-$BUILD/flowvis}

say() { printf '%s\n' "$*"; }

forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# stop_pid PID [SIGNAL]: SIGNAL (TERM), up to 10 s to exit, then SIGKILL.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    if kill -0 "$pid" 2>/dev/null; then
        kill -"$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

# busy_check: warns when other processes keep the machine busy, since the
# figures are then noisy (receivers and generator share the cores).
busy_check() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' \
        /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' \
        /proc/stat)
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        pct = (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0
        printf "  machine: %d cores, %.0f%% busy with other work before the runs\n", n, pct
        if (pct > 15)
            printf "  WARNING: the machine is busy: figures will be noisy; run again when idle\n"
    }'
}

# cpu_ticks PID: utime+stime of a live process (all its threads), in ticks.
cpu_ticks() {
    local line rest
    read -r line <"/proc/$1/stat" || return 1
    rest=${line##*) }
    # shellcheck disable=SC2086 # split the fields on purpose
    set -- $rest
    echo $((${12} + ${13}))
}


# pick_port: a port nobody has bound, TCP or UDP, on any address.
pick_port() {
    local i port p
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 30000))
        p=$(printf ':%04X ' "$port")
        grep -q "$p" /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null ||
            { echo "$port"; return 0; }
    done
    return 1
}
