#!/usr/bin/env bash
# selftest.sh - does the namespace cluster behave like a Kubernetes cluster?
#
#   tests/cluster/selftest.sh
#
# Brings a cluster up under a unique prefix, sends real traffic between its
# Pods, Services, nodes and the external host, checks what the servers saw
# and what the nodes' conntrack tables hold, tears it down and checks that
# nothing is left. One PASS or FAIL line per check; exit 0 when all pass,
# 1 when one fails, 77 when it cannot run here (not root, missing tools).
set -euo pipefail

# shellcheck source=../integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

fv_require_root
fv_require_cmd ip nft jq conntrack python3

pass() {
    echo "PASS: $*"
}

fail() {
    echo "FAIL: $*"
    FV_FAILURES=$((FV_FAILURES + 1))
}

# check WHAT EXPECTED GOT
check() {
    if [[ $2 == "$3" ]]; then
        pass "$1"
    else
        fail "$1: expected '$2', got '$3'"
    fi
}

# check_call WHAT NETNS PROTO HOST PORT EXPECTED_REPLY
check_call() {
    local got
    got=$(fv_cluster_call "$2" "$3" "$4" "$5" 2>&1) || true
    check "$1" "$6" "$got"
}

# ct_reply WHAT NODE_NETNS KEY CONNTRACK_FILTER...: the reply tuple's KEY
# (src or dst) of the first matching conntrack entry; the entry must carry
# counters (nf_conntrack_acct) and a timestamp (nf_conntrack_timestamp).
ct_reply() {
    local what=$1 ns=$2 key=$3 line
    shift 3
    line=$(fv_cluster_conntrack "$ns" "$@" | head -n 1)
    if [[ -z $line ]]; then
        fail "$what: no conntrack entry in $ns for: $*"
        echo none
        return
    fi
    if [[ $line != *packets=* || $line != *delta-time=* ]]; then
        fail "$what: entry without counters or timestamp: $line"
    fi
    fv_ct_field "$line" "$key" 2
}

# host_links: links in this (the host's) namespace with the names the
# cluster uses inside its namespaces; there must be none, before or after.
host_links() {
    ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' |
        grep -E '^(cbr0|br0|ext0|node-[0-9]+|veth[0-9]+)$' | sort | tr '\n' ' ' || true
}

started=$SECONDS
links_before=$(host_links)
servers=()

# serve NAME NETNS PROTO PORT REPLY_NAME
serve() {
    fv_cluster_serve "$@"
    servers+=("$1")
}

# --- up ---------------------------------------------------------------------
# shellcheck disable=SC2119 # no arguments: the default cluster
fv_cluster_up
P=$FV_CLUSTER_PREFIX
want_ns=$((2 + FVC_NODES + FVC_NODES * FVC_PODS_PER_NODE))
check "up: $want_ns namespaces for $FVC_NODES nodes x $FVC_PODS_PER_NODE pods" "$want_ns" \
    "$(ip netns list | grep -c "^$P")"

for ((i = 1; i <= FVC_NODES; i++)); do
    ns_var=FVC_NODE_${i}_NETNS
    got=$(ip netns exec "${!ns_var}" sysctl -n net.netfilter.nf_conntrack_acct \
        net.netfilter.nf_conntrack_timestamp net.ipv4.ip_forward net.ipv6.conf.all.forwarding \
        net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables | tr '\n' ' ')
    check "node-$i: conntrack acct+timestamp, forwarding v4+v6, br_netfilter v4+v6" \
        "1 1 1 1 1 1 " "$got"
done

inv=$FVC_INVENTORY
check "inventory: a List of Pods, Services, Nodes, Namespaces" \
    "List Namespace=5 Node=$FVC_NODES Pod=$((FVC_NODES * FVC_PODS_PER_NODE)) Service=5" \
    "$(jq -r '[.kind] + (.items | group_by(.kind) | map("\(.[0].kind)=\(length)")) | join(" ")' "$inv")"
check "inventory: every Pod Running, dual-stack, on a node" 0 \
    "$(jq '[.items[] | select(.kind == "Pod") | select(.status.phase != "Running"
        or (.status.podIPs | length) != 2 or .spec.nodeName == null
        or .status.hostIP == null)] | length' "$inv")"
check "inventory: Pod 1_1 is $FVC_POD_1_1_NAMESPACE/$FVC_POD_1_1_NAME at $FVC_POD_1_1_IP4" \
    "$FVC_POD_1_1_IP4 $FVC_POD_1_1_IP6 $FVC_NODE_1_IP4" \
    "$(jq -r --arg n "$FVC_POD_1_1_NAME" '.items[] | select(.kind == "Pod" and .metadata.name == $n)
        | "\(.status.podIPs[0].ip) \(.status.podIPs[1].ip) \(.status.hostIP)"' "$inv")"
check "inventory: Service payments-api has both ClusterIPs" \
    "$FVC_SVC_PAYMENTS_API_IP4 $FVC_SVC_PAYMENTS_API_IP6" \
    "$(jq -r '.items[] | select(.kind == "Service" and .metadata.name == "payments-api")
        | .spec.clusterIPs | join(" ")' "$inv")"

# --- servers ------------------------------------------------------------------
for ((i = 1; i <= FVC_NODES; i++)); do
    v=FVC_POD_${i}_2
    ns_var=${v}_NETNS name_var=${v}_NAME
    serve "catalog-$i" "${!ns_var}" tcp 8080 "${!name_var}"
    v=FVC_POD_${i}_1
    ns_var=${v}_NETNS name_var=${v}_NAME
    serve "frontend-$i" "${!ns_var}" tcp 8080 "${!name_var}"
    if ((i > 1)); then
        v=FVC_POD_${i}_3
        ns_var=${v}_NETNS name_var=${v}_NAME
        serve "coredns-$i" "${!ns_var}" udp 53 "${!name_var}"
    fi
done
serve payments "$FVC_POD_1_3_NETNS" tcp 8080 "$FVC_POD_1_3_NAME"
serve apiserver "$FVC_NODE_1_NETNS" tcp 6443 apiserver
serve external "$FVC_EXTERNAL_NETNS" tcp 80 external

# --- traffic --------------------------------------------------------------------
for fam in 4 6; do
    ip_of() { local v="FVC_POD_$1_IP$fam"; echo "${!v}"; }
    svc=FVC_SVC_PAYMENTS_API_IP$fam
    check_call "pod->pod same node (IPv$fam)" "$FVC_POD_1_1_NETNS" tcp "$(ip_of 1_2)" 8080 \
        "$FVC_POD_1_2_NAME $(ip_of 1_1)"
    check_call "pod->pod other node (IPv$fam)" "$FVC_POD_1_1_NETNS" tcp "$(ip_of 2_2)" 8080 \
        "$FVC_POD_2_2_NAME $(ip_of 1_1)"
    check_call "pod->ClusterIP, remote endpoint, no SNAT (IPv$fam)" "$FVC_POD_2_1_NETNS" tcp \
        "${!svc}" 8080 "$FVC_POD_1_3_NAME $(ip_of 2_1)"
    check_call "pod->ClusterIP, local endpoint, no SNAT (IPv$fam)" "$FVC_POD_1_1_NETNS" tcp \
        "${!svc}" 8080 "$FVC_POD_1_3_NAME $(ip_of 1_1)"
    svc=FVC_SVC_KUBE_DNS_IP$fam
    reply=$(fv_cluster_call "$FVC_POD_1_1_NETNS" udp "${!svc}" 53 2>&1) || true
    check "pod->ClusterIP UDP 53, answered by a coredns Pod (IPv$fam)" \
        "coredns $(ip_of 1_1)" "$(sed -E 's/^(coredns)-[^ ]* /\1 /' <<<"$reply")"
    node_ip=FVC_NODE_1_IP$fam ext_ip=FVC_EXTERNAL_IP$fam
    check_call "pod->external, masqueraded to the node IP (IPv$fam)" "$FVC_POD_1_1_NETNS" tcp \
        "${!ext_ip}" 80 "external ${!node_ip}"
    # externalTrafficPolicy Local: node 2's own frontend answers, and sees
    # the external client's address (no SNAT).
    node_ip=FVC_NODE_2_IP$fam
    check_call "external->NodePort, local endpoint, no SNAT (IPv$fam)" "$FVC_EXTERNAL_NETNS" tcp \
        "${!node_ip}" "$FVC_SVC_FRONTEND_HTTP_NODE_PORT" "$FVC_POD_2_1_NAME ${!ext_ip}"
done
check_call "pod->ClusterIP with a host-network endpoint (default/kubernetes)" \
    "$FVC_POD_2_1_NETNS" tcp "$FVC_SVC_KUBERNETES_IP4" 443 "apiserver $FVC_POD_2_1_IP4"

# numgen inc: N new connections from one node reach each of N endpoints once.
seen=""
for ((k = 0; k < FVC_NODES; k++)); do
    seen+="$(fv_cluster_call "$FVC_POD_3_1_NETNS" tcp "$FVC_SVC_CATALOG_IP4" 80 | cut -d' ' -f1)"$'\n'
done
check "ClusterIP with $FVC_NODES endpoints on $FVC_NODES nodes, round robin" "$FVC_NODES" \
    "$(grep -c . <<<"$(sort -u <<<"$seen")")"

# --- conntrack in the nodes ----------------------------------------------------------
pay=$FVC_SVC_PAYMENTS_API_IP4 pay6=$FVC_SVC_PAYMENTS_API_IP6
check "conntrack node-2: remote Service connection, reply from the endpoint Pod (IPv4)" \
    "$FVC_POD_1_3_IP4" "$(ct_reply "ct remote v4" "$FVC_NODE_2_NETNS" src \
        -p tcp -s "$FVC_POD_2_1_IP4" -d "$pay" --dport 8080)"
check "conntrack node-2: remote Service connection, reply from the endpoint Pod (IPv6)" \
    "$FVC_POD_1_3_IP6" "$(ct_reply "ct remote v6" "$FVC_NODE_2_NETNS" src \
        -f ipv6 -p tcp -s "$FVC_POD_2_1_IP6" -d "$pay6" --dport 8080)"
check "conntrack node-1: the same connection, forwarded after DNAT" "$FVC_POD_2_1_IP4" \
    "$(ct_reply "ct forwarded" "$FVC_NODE_1_NETNS" dst \
        -p tcp -s "$FVC_POD_2_1_IP4" -d "$FVC_POD_1_3_IP4" --dport 8080)"
check "conntrack node-1: local Service connection, reply from the endpoint Pod (IPv4)" \
    "$FVC_POD_1_3_IP4" "$(ct_reply "ct local v4" "$FVC_NODE_1_NETNS" src \
        -p tcp -s "$FVC_POD_1_1_IP4" -d "$pay" --dport 8080)"
check "conntrack node-1: local Service connection, reply from the endpoint Pod (IPv6)" \
    "$FVC_POD_1_3_IP6" "$(ct_reply "ct local v6" "$FVC_NODE_1_NETNS" src \
        -f ipv6 -p tcp -s "$FVC_POD_1_1_IP6" -d "$pay6" --dport 8080)"
check "conntrack node-1: bridged same-node pod->pod connection (br_netfilter)" \
    "$FVC_POD_1_2_IP4" "$(ct_reply "ct same node" "$FVC_NODE_1_NETNS" src \
        -p tcp -s "$FVC_POD_1_1_IP4" -d "$FVC_POD_1_2_IP4" --dport 8080)"
dns_ep=$(ct_reply "ct udp" "$FVC_NODE_1_NETNS" src -p udp -s "$FVC_POD_1_1_IP4" \
    -d "$FVC_SVC_KUBE_DNS_IP4" --dport 53)
check "conntrack node-1: UDP Service connection, reply from a coredns Pod" yes \
    "$([[ " $FVC_SVC_KUBE_DNS_ENDPOINT_IP4S " == *" $dns_ep "* ]] && echo yes || echo "no ($dns_ep)")"
check "conntrack node-1: external connection masqueraded to the node IP (IPv4)" \
    "$FVC_NODE_1_IP4" "$(ct_reply "ct external v4" "$FVC_NODE_1_NETNS" dst \
        -p tcp -s "$FVC_POD_1_1_IP4" -d "$FVC_EXTERNAL_IP4" --dport 80)"
check "conntrack node-1: external connection masqueraded to the node IP (IPv6)" \
    "$FVC_NODE_1_IP6" "$(ct_reply "ct external v6" "$FVC_NODE_1_NETNS" dst \
        -f ipv6 -p tcp -s "$FVC_POD_1_1_IP6" -d "$FVC_EXTERNAL_IP6" --dport 80)"

# --- up again, down ------------------------------------------------------------------
for name in "${servers[@]}"; do
    fv_stop "$name"
done
# up on a live prefix replaces the cluster (and stops the servers above).
"$FV_CLUSTER_SH" up --prefix "$P" --state "$FV_CLUSTER_STATE" --nodes 2 --pods-per-node 3 \
    >"$FV_TMP/cluster-reup.out" 2>&1 || fail "up on an existing prefix: $(tail -n 3 "$FV_TMP/cluster-reup.out")"
check "up on an existing prefix replaces it" "10 no" \
    "$(ip netns list | grep -c "^$P") $(ip netns list | grep -q "^${P}node-3" && echo yes || echo no)"

fv_cluster_down || fail "down exited with status $?"
check "down: no namespace left" 0 "$(ip netns list | grep -c "^$P" || true)"
check "down: no cluster link in the host namespace" "$links_before" "$(host_links)"
check "down: state files removed" no \
    "$(ls "$FV_CLUSTER_STATE"/{inventory.json,cluster.env} >/dev/null 2>&1 && echo yes || echo no)"
if fv_cluster_down; then pass "down again (idempotent)"; else fail "down a second time failed"; fi

echo "selftest: $FV_FAILURES failure(s) in $((SECONDS - started)) s"
