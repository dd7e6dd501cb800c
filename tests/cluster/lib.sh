# shellcheck shell=bash
# tests/cluster/lib.sh - the namespace cluster in a test.
#
# Source it after tests/integration/lib.sh (it uses fv_defer, fv_bg,
# fv_wait_for and $FV_TMP from there):
#
#     source "$FV_ROOT/tests/cluster/lib.sh"      # or a path relative to $0
#     fv_cluster_up                 # or: fv_cluster_up --nodes 2
#     fv_cluster_serve pay "$FVC_POD_1_3_NETNS" tcp 8080 "$FVC_POD_1_3_NAME"
#     reply=$(fv_cluster_call "$FVC_POD_2_1_NETNS" tcp "$FVC_SVC_PAYMENTS_API_IP4" 8080)
#     ct=$(fv_cluster_conntrack "$FVC_NODE_2_NETNS" -p tcp -d "$FVC_SVC_PAYMENTS_API_IP4")
#
# fv_cluster_up brings a cluster up under a prefix unique to this test run,
# sources its cluster.env (the FVC_* variables, see cluster.sh) and tears it
# down at exit. Processes started later with fv_bg are stopped before that,
# because the cleanup stack runs in reverse.

FV_CLUSTER_SH=$FV_ROOT/tests/cluster/cluster.sh
FV_CLUSTER_PROBE=$FV_ROOT/tests/cluster/probe.py

# fv_cluster_up [cluster.sh up ARGS...]: sets FV_CLUSTER_PREFIX and
# FV_CLUSTER_STATE, and every FVC_* variable.
fv_cluster_up() {
    FV_CLUSTER_PREFIX=fvc$FV_TAG-
    FV_CLUSTER_STATE=$FV_TMP/cluster
    # Deferred first: down is idempotent, and this way a test killed while
    # the cluster comes up still cleans up.
    fv_defer "$FV_CLUSTER_SH" down --prefix "$FV_CLUSTER_PREFIX" --state "$FV_CLUSTER_STATE"
    if ! "$FV_CLUSTER_SH" up --prefix "$FV_CLUSTER_PREFIX" --state "$FV_CLUSTER_STATE" "$@" \
        >"$FV_TMP/cluster-up.out" 2>&1; then
        sed 's/^/    /' "$FV_TMP/cluster-up.out" >&2
        fv_fatal "cluster.sh up failed"
    fi
    # shellcheck disable=SC1091 # generated at run time
    source "$FV_CLUSTER_STATE/cluster.env"
}

# fv_cluster_down: tear the cluster down now (it is also done at exit).
fv_cluster_down() {
    "$FV_CLUSTER_SH" down --prefix "$FV_CLUSTER_PREFIX" --state "$FV_CLUSTER_STATE" \
        >>"$FV_TMP/cluster-down.out" 2>&1
}

# fv_cluster_serve NAME NETNS PROTO PORT [REPLY_NAME]: start a probe.py
# server (answers "<REPLY_NAME> <peer ip>", logs "peer <ip> <port>" to
# $FV_TMP/NAME.out) and return once it is bound.
fv_cluster_serve() {
    local name=$1 ns=$2 proto=$3 port=$4 reply=${5:-$1}
    fv_bg "$name" "$ns" python3 "$FV_CLUSTER_PROBE" serve "$proto" "$port" "$reply" 120
    fv_wait_for 10 "$name to listen on $proto $port" _fv_cluster_ready "$name"
}

_fv_cluster_ready() {
    fv_alive "$1"
    # -s: the shell that fv_bg forked may not have created the file yet.
    grep -qs '^ready$' "$FV_TMP/$1.out"
}

# fv_cluster_call NETNS PROTO HOST PORT: one request from NETNS; prints the
# reply ("<server name> <source ip the server saw>"); fails on no reply.
fv_cluster_call() {
    ip netns exec "$1" python3 "$FV_CLUSTER_PROBE" call "$2" "$3" "$4"
}

# fv_cluster_conntrack NODE_NETNS CONNTRACK_FILTER...: the node's conntrack
# entries that match (conntrack -L syntax: -p tcp -s SRC -d DST --dport P;
# IPv6 addresses need -f ipv6), one per line, without the summary line.
fv_cluster_conntrack() {
    local ns=$1
    shift
    ip netns exec "$ns" conntrack -L "$@" 2>/dev/null
}

# fv_ct_field LINE KEY N: the Nth KEY= value of a conntrack line (N=1 is
# the original tuple, N=2 the reply tuple), e.g. fv_ct_field "$l" src 2 is
# the reply's source: the endpoint a Service connection was DNATed to.
fv_ct_field() {
    grep -o "$2=[^ ]*" <<<"$1" | sed -n "$3{s/^[^=]*=//p}"
}
