#!/usr/bin/env bash
# cluster.sh - a real mini Kubernetes cluster made of network namespaces.
#
#   tests/cluster/cluster.sh up [--nodes N] [--pods-per-node M] [--prefix P] [--state DIR]
#                               [--policies]
#   tests/cluster/cluster.sh down [--prefix P] [--state DIR]
#   tests/cluster/cluster.sh status [--prefix P] [--state DIR]
#
# There is no Kubernetes here, only what flowvis sees of one: the kernel
# datapath of a kubenet-style cluster (a Linux bridge per node, routed Pod
# CIDRs, kube-proxy's DNAT and masquerade in nftables, conntrack in every
# node), and the API objects that describe it (inventory.json, exactly as
# `kubectl get pods,services,nodes,namespaces -A -o json` prints it).
#
# Network namespaces (P defaults to "fvk-"; nothing is created in the
# namespace the script runs in):
#   ${P}fabric      the underlay: bridge br0 joining the nodes, and the
#                   router towards the "internet" (external)
#   ${P}external    a host outside the cluster, reached through the nodes'
#                   masquerade
#   ${P}node-<i>    a node: eth0 on the underlay, bridge cbr0 with the Pod
#                   gateway, nftables table inet kube-proxy, conntrack
#   ${P}pod-<i>-<j> Pod j of node i: eth0, a veth whose peer veth<j> is a
#                   port of the node's cbr0
#
# Addressing plan (i = node number, j = Pod number on the node):
#   underlay        172.18.0.0/24, fd00:172:18::/64 (fabric br0: .1 / ::1)
#   node IP         172.18.0.(10+i), fd00:172:18::(10+i)
#   Pod CIDR        10.244.i.0/24, fd00:10:244:i::/64 (cluster 10.244.0.0/16,
#                   fd00:10:244::/56); gateway .1 / ::1 on cbr0
#   Pod IP          10.244.i.(10+j), fd00:10:244:i::(10+j)
#   ClusterIPs      10.96.0.0/16, fd00:10:96::/112
#   external        198.51.100.10/24, 2001:db8:100::10/64 (fabric: .1 / ::1)
# (The IPv6 groups reuse the decimal digits of i and 10+j as hex, so that
# 10.244.2.13 and fd00:10:244:2::13 are visibly the same Pod.)
#
# Workloads, by Pod slot j on node i:
#   j=1  shop/frontend        on every node: the designated client
#   j=2  shop/catalog         on every node: endpoints of Service shop/catalog
#   j=3  payments/payments-api on node 1 (the only endpoint: "local" for
#        node-1 clients, "remote" for the others); kube-system/coredns on
#        nodes 2..N (endpoints of kube-dns, UDP and TCP 53)
#   j>3  prometheus, cart, ledger, grafana in turn (no Service)
# Services (dual-stack unless noted):
#   kube-system/kube-dns    10.96.0.10   fd00:10:96::a   dns 53/UDP, dns-tcp 53/TCP,
#                                                        metrics 9153/TCP
#   shop/catalog            10.96.0.100  fd00:10:96::64  http 80/TCP -> "http" (8080)
#   payments/payments-api   10.96.0.200  fd00:10:96::c8  http 8080/TCP -> 8080
#   default/kubernetes      10.96.0.1 (IPv4 only, no selector) https 443/TCP
#                           -> node-1's node IP :6443 (host network)
#   shop/frontend           10.96.0.80   fd00:10:96::50  http 80/TCP -> "http" (8080),
#                           NodePort 30080 on every node IP, externalTrafficPolicy
#                           Local (each node DNATs to its own frontend Pods, no
#                           SNAT: the Pod sees the external client's address)
# A Service with several endpoints picks them round robin (numgen inc), so
# that tests can predict which endpoint answers; no Pod calls a Service
# that it backs (that would need hairpin masquerade, which is left out).
#
# NetworkPolicies (--policies): four policies in the inventory, enforced by
# nftables in every node the way a policy-enforcing CNI does, at the source
# Pod's node for egress and at the destination Pod's node for ingress; what
# they refuse is logged to NFLOG (group 100 for drops, 101 for rejects) and
# dropped or rejected. They admit every workload of make demo:
#   shop/catalog-ingress        app=catalog: ingress-0 from app=frontend to
#                               port "http"; ingress-1 from namespaces with
#                               team=observability to 9090/TCP
#   payments/payments-api-ingress  app=payments-api (policyTypes implied):
#                               ingress-0 from namespaces team=storefront
#                               and app In (frontend, cart), 8080
#   monitoring/prometheus-ingress  app=prometheus: ingress-0 from
#                               app=grafana to port "web"
#   monitoring/grafana-egress   app=grafana, Egress: egress-0 to
#                               app=prometheus port "web"; egress-1 to
#                               k8s-app=kube-dns in any namespace, 53 UDP
#                               and TCP; anything else is rejected
#
# Files in the state directory (default ${TMPDIR:-/tmp}/flowvis-cluster-P):
#   inventory.json  the Kubernetes List (Pods, Services, Nodes, Namespaces)
#   cluster.env     shell variables FVC_* describing all of the above (see
#                   write_env), for tests: `source "$STATE/cluster.env"`
#   kube-proxy.nft  the ruleset loaded into every node
#   nodeports-node-<i>.nft  node i's NodePort rules, loaded after it
#   netpol-node-<i>.nft     node i's NetworkPolicy rules (--policies)
#
# From a test: source tests/integration/lib.sh, then tests/cluster/lib.sh,
# and call fv_cluster_up (unique prefix, torn down at exit, FVC_* set);
# probe.py is a server/client that reports the peer address it saw. Run
# the agent as a node would: ip netns exec "$FVC_NODE_1_NETNS" build/flowvis
# agent ... with nodeName node-1 and inventory "$FVC_INVENTORY".
# tests/cluster/selftest.sh checks all of the above.
#
# Requirements: root, iproute2, nftables, jq, a kernel with nf_nat, nft
# numgen and br_netfilter (bridged Pod-to-Pod traffic must pass the node's
# IP hooks, as kube-proxy requires; see configure_node).
set -euo pipefail

readonly MAX_NODES=50 MAX_PODS_PER_NODE=100
readonly UNDERLAY4=172.18.0 UNDERLAY6=fd00:172:18
readonly CLUSTER_CIDR4=10.244.0.0/16 CLUSTER_CIDR6=fd00:10:244::/56
readonly SERVICE_CIDR4=10.96.0.0/16 SERVICE_CIDR6=fd00:10:96::/112
readonly EXTERNAL_IP4=198.51.100.10 EXTERNAL_IP6=2001:db8:100::10
readonly EXTERNAL_GW4=198.51.100.1 EXTERNAL_GW6=2001:db8:100::1

usage() {
    sed -n '4,7s/^#   //p' "$0" >&2
    exit 2
}

log() {
    echo "cluster: $*" >&2
}

die() {
    echo "cluster: error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Names and addresses: one function each, so that the plan above lives in
# one place.
# ---------------------------------------------------------------------------

node_name() { echo "node-$1"; }
node_netns() { echo "${PREFIX}node-$1"; }
node_ip4() { echo "$UNDERLAY4.$((10 + $1))"; }
node_ip6() { echo "$UNDERLAY6::$((10 + $1))"; }
node_cidr4() { echo "10.244.$1.0/24"; }
node_cidr6() { echo "fd00:10:244:$1::/64"; }
node_gw4() { echo "10.244.$1.1"; }
node_gw6() { echo "fd00:10:244:$1::1"; }
pod_netns() { echo "${PREFIX}pod-$1-$2"; }
pod_ip4() { echo "10.244.$1.$((10 + $2))"; }
pod_ip6() { echo "fd00:10:244:$1::$((10 + $2))"; }
fabric_netns() { echo "${PREFIX}fabric"; }
external_netns() { echo "${PREFIX}external"; }

# mac_for_ip4 A.B.C.D: the MAC the CNI bridge plugin derives from an IPv4
# address (0a:58 + the address). Fixed MACs keep neighbour caches valid
# across the setup and make captures readable.
mac_for_ip4() {
    local IFS=.
    # shellcheck disable=SC2086 # splitting the address on dots is intended
    printf '0a:58:%02x:%02x:%02x:%02x' $1
}

# k8s_rand SEED LEN: LEN characters from Kubernetes' safe alphabet (the one
# of pod-template-hash and generated name suffixes), derived from SEED so
# that Pod names are the same on every run.
k8s_rand() {
    local alphabet=bcdfghjklmnpqrstvwxz2456789 hex out="" k
    hex=$(printf '%s' "$1" | md5sum)
    for ((k = 0; k < $2; k++)); do
        out+=${alphabet:$((16#${hex:k * 2:2} % 27)):1}
    done
    echo "$out"
}

# upper_key NAME: NAME as a shell variable name fragment (kube-dns -> KUBE_DNS).
upper_key() {
    local s=${1^^}
    echo "${s//[^A-Z0-9]/_}"
}

# ---------------------------------------------------------------------------
# The model: workloads, Pods, Services. Everything below (namespaces, nft
# rules, inventory, cluster.env) is generated from these arrays.
# ---------------------------------------------------------------------------

# Per workload: Kubernetes namespace, container image, extra labels and
# container ports ("name:port:PROTOCOL ...").
declare -A APP_NS=(
    [frontend]=shop [catalog]=shop [cart]=shop [payments-api]=payments [ledger]=payments
    [coredns]=kube-system [prometheus]=monitoring [grafana]=monitoring
)
declare -A APP_IMAGE=(
    [frontend]=ghcr.io/flowvis-demo/frontend:1.8.2
    [catalog]=ghcr.io/flowvis-demo/catalog:2.3.0
    [cart]=ghcr.io/flowvis-demo/cart:1.1.4
    [payments-api]=ghcr.io/flowvis-demo/payments-api:3.0.1
    [ledger]=ghcr.io/flowvis-demo/ledger:0.9.7
    [coredns]=registry.k8s.io/coredns/coredns:v1.11.1
    [prometheus]=quay.io/prometheus/prometheus:v2.48.0
    [grafana]=docker.io/grafana/grafana:10.2.2
)
declare -A APP_LABELS=([coredns]="k8s-app=kube-dns")
declare -A APP_PORTS=(
    [frontend]="http:8080:TCP"
    [catalog]="http:8080:TCP metrics:9090:TCP"
    [cart]="http:8080:TCP"
    [payments-api]="http:8080:TCP"
    [ledger]="grpc:50051:TCP"
    [coredns]="dns:53:UDP dns-tcp:53:TCP metrics:9153:TCP"
    [prometheus]="web:9090:TCP"
    [grafana]="http:3000:TCP"
)
readonly FILLER_APPS=(prometheus cart ledger grafana)
# Namespace labels beyond kubernetes.io/metadata.name (for namespace
# selectors in NetworkPolicy tests).
declare -A NS_LABELS=(
    [default]="" [kube-system]="" [shop]="team=storefront"
    [payments]="team=payments pci=true" [monitoring]="team=observability"
)
readonly K8S_NAMESPACES=(default kube-system shop payments monitoring)

# Services, by "namespace/name": ClusterIPs (IPv6 empty for single-stack),
# ports ("name:port:PROTOCOL:targetPort ..."), selector ("key=value", empty
# for a Service with manually managed endpoints) and labels.
readonly SERVICES=(kube-system/kube-dns shop/catalog payments/payments-api default/kubernetes
    shop/frontend)
declare -A SVC_IP4=(
    [kube-system/kube-dns]=10.96.0.10 [shop/catalog]=10.96.0.100
    [payments/payments-api]=10.96.0.200 [default/kubernetes]=10.96.0.1
    [shop/frontend]=10.96.0.80
)
declare -A SVC_IP6=(
    [kube-system/kube-dns]=fd00:10:96::a [shop/catalog]=fd00:10:96::64
    [payments/payments-api]=fd00:10:96::c8 [default/kubernetes]=""
    [shop/frontend]=fd00:10:96::50
)
declare -A SVC_PORTS=(
    [kube-system/kube-dns]="dns:53:UDP:dns dns-tcp:53:TCP:dns-tcp metrics:9153:TCP:9153"
    [shop/catalog]="http:80:TCP:http"
    [payments/payments-api]="http:8080:TCP:8080"
    [default/kubernetes]="https:443:TCP:6443"
    [shop/frontend]="http:80:TCP:http"
)
declare -A SVC_SELECTOR=(
    [kube-system/kube-dns]="k8s-app=kube-dns" [shop/catalog]="app=catalog"
    [payments/payments-api]="app=payments-api" [default/kubernetes]=""
    [shop/frontend]="app=frontend"
)
declare -A SVC_LABELS=(
    [kube-system/kube-dns]="k8s-app=kube-dns kubernetes.io/cluster-service=true kubernetes.io/name=CoreDNS"
    [shop/catalog]="app=catalog" [payments/payments-api]="app=payments-api"
    [default/kubernetes]="component=apiserver provider=kubernetes"
    [shop/frontend]="app=frontend"
)
# NodePort Services: "portname:nodePort ..." per Service (type NodePort,
# externalTrafficPolicy Local); every other Service is a plain ClusterIP.
declare -A SVC_NODEPORTS=([shop/frontend]="http:30080")

# Filled by build_model: per Pod key "i_j" its workload, name and labels;
# per Service its endpoints ("pod:i_j" or "node:i").
declare -A POD_APP=() POD_NAME=() POD_LABELS=() SVC_ENDPOINTS=()
POD_KEYS=()

# slot_app I J: the workload of Pod slot J on node I (see the header).
slot_app() {
    local i=$1 j=$2
    case $j in
    1) echo frontend ;;
    2) echo catalog ;;
    3) if ((i == 1)); then echo payments-api; else echo coredns; fi ;;
    *) echo "${FILLER_APPS[$((((i - 1) * (PODS_PER_NODE - 3) + j - 4) % ${#FILLER_APPS[@]}))]}" ;;
    esac
}

build_model() {
    local i j key app hash svc sel
    for ((i = 1; i <= NODES; i++)); do
        for ((j = 1; j <= PODS_PER_NODE; j++)); do
            key=${i}_$j
            app=$(slot_app "$i" "$j")
            hash=$(k8s_rand "$app" 10)
            POD_KEYS+=("$key")
            POD_APP[$key]=$app
            POD_NAME[$key]=$app-$hash-$(k8s_rand "$app/$i/$j" 5)
            POD_LABELS[$key]="app=$app pod-template-hash=$hash ${APP_LABELS[$app]:-}"
        done
    done
    for svc in "${SERVICES[@]}"; do
        sel=${SVC_SELECTOR[$svc]}
        SVC_ENDPOINTS[$svc]=""
        if [[ -z $sel ]]; then
            SVC_ENDPOINTS[$svc]="node:1" # default/kubernetes: the API server on node-1
            continue
        fi
        for key in "${POD_KEYS[@]}"; do
            app=${POD_APP[$key]}
            if [[ ${APP_NS[$app]} == "${svc%%/*}" && " ${POD_LABELS[$key]} " == *" $sel "* ]]; then
                SVC_ENDPOINTS[$svc]+=" pod:$key"
            fi
        done
        SVC_ENDPOINTS[$svc]=${SVC_ENDPOINTS[$svc]# }
    done
}

# Endpoint helpers: EP is "pod:i_j" or "node:i".
ep_ip() { # ep_ip EP 4|6
    local kind=${1%%:*} key=${1#*:}
    if [[ $kind == node ]]; then
        "node_ip$2" "$key"
    else
        "pod_ip$2" "${key%_*}" "${key#*_}"
    fi
}
ep_netns() {
    local kind=${1%%:*} key=${1#*:}
    if [[ $kind == node ]]; then node_netns "$key"; else pod_netns "${key%_*}" "${key#*_}"; fi
}
ep_node() {
    local key=${1#*:}
    node_name "${key%_*}"
}

# ep_target_port EP TARGET: the port number TARGET (a number, or the name
# of a container port of the endpoint Pod) stands for.
ep_target_port() {
    local ep=$1 target=$2 p
    if [[ $target =~ ^[0-9]+$ ]]; then
        echo "$target"
        return
    fi
    for p in ${APP_PORTS[${POD_APP[${ep#pod:}]}]}; do
        if [[ ${p%%:*} == "$target" ]]; then
            p=${p#*:}
            echo "${p%%:*}"
            return
        fi
    done
    die "endpoint $ep has no container port named $target"
}

# ---------------------------------------------------------------------------
# Network namespaces and links
# ---------------------------------------------------------------------------

netns_add() {
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# ns_sysctl NS KEY=VALUE...: set sysctls inside a namespace. net.* sysctls
# are per network namespace, and a new namespace starts from the kernel
# defaults, not from the host's values.
ns_sysctl() {
    local ns=$1
    shift
    ip netns exec "$ns" sysctl -q -w "$@" >/dev/null
}

# ns_has_br_netfilter NS: the br_netfilter sysctls exist in NS.
ns_has_br_netfilter() {
    ip netns exec "$1" test -e /proc/sys/net/bridge/bridge-nf-call-iptables
}

# Every address is added with nodad: Duplicate Address Detection would
# keep IPv6 addresses "tentative" (unusable) for a second or two, and there
# are no duplicates to detect here.
addr_add() { # addr_add NS DEV ADDR4/LEN ADDR6/LEN
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" addr add "$4" dev "$2" nodad
}

# The underlay: one bridge for all node IPs, and the router to external.
# The fabric has no route to any Pod CIDR, so a Pod can reach external
# only through its node's masquerade, as in a real cluster.
create_fabric() {
    local fab ext
    fab=$(fabric_netns)
    ext=$(external_netns)
    netns_add "$fab"
    ns_sysctl "$fab" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    # The fabric is a plain switch and router: keep bridged frames out of
    # its (empty) IP hooks.
    if ns_has_br_netfilter "$fab"; then
        ns_sysctl "$fab" net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0
    fi
    # mcast_snooping 0: without an MLD querier, snooping can withhold the
    # multicast Neighbour Solicitations that IPv6 needs.
    ip -n "$fab" link add br0 type bridge mcast_snooping 0
    addr_add "$fab" br0 "$UNDERLAY4.1/24" "$UNDERLAY6::1/64"
    ip -n "$fab" link set br0 up

    netns_add "$ext"
    ns_sysctl "$ext" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ext" link add eth0 type veth peer name ext0 netns "$fab"
    ip -n "$ext" link set eth0 address "$(mac_for_ip4 "$EXTERNAL_IP4")"
    addr_add "$ext" eth0 "$EXTERNAL_IP4/24" "$EXTERNAL_IP6/64"
    addr_add "$fab" ext0 "$EXTERNAL_GW4/24" "$EXTERNAL_GW6/64"
    ip -n "$ext" link set eth0 up
    ip -n "$fab" link set ext0 up
    ip -n "$ext" route add default via "$EXTERNAL_GW4"
    ip -n "$ext" -6 route add default via "$EXTERNAL_GW6"
}

# configure_node I: sysctls of node I, before any of its links exist (new
# links copy the "default" values).
configure_node() {
    local ns
    ns=$(node_netns "$1")
    # Routing between Pods and nodes; no ICMP redirects when the node
    # routes a packet back out of the bridge it came from (a Pod calling a
    # Service whose endpoint is on the same node).
    ns_sysctl "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 \
        net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    # What the flowvis agent sets on start, per network namespace: byte and
    # packet counters, and start/stop timestamps, on every connection.
    ns_sysctl "$ns" net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1
    # Traffic between two Pods of one node is bridged by cbr0, not routed.
    # br_netfilter passes it through the node's IP hooks anyway, so the
    # node's conntrack sees intra-node connections, and the reply of a
    # local Service endpoint (bridged straight back to the client Pod) is
    # un-DNATed. kube-proxy requires the same (kubeadm checks for it).
    if ! ns_has_br_netfilter "$ns"; then
        if command -v modprobe >/dev/null; then modprobe br_netfilter 2>/dev/null || true; fi
        ns_has_br_netfilter "$ns" ||
            die "br_netfilter is not available (modprobe br_netfilter); without it" \
                "intra-node connections bypass conntrack and local Services break"
    fi
    ns_sysctl "$ns" net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
}

# create_node I: node I on the underlay, with its Pod bridge and routes.
create_node() {
    local i=$1 ns fab k
    ns=$(node_netns "$i")
    fab=$(fabric_netns)
    netns_add "$ns"
    configure_node "$i"

    # The peer end is named after the node in the fabric, so that captures
    # on the underlay say which node a port belongs to.
    ip -n "$ns" link add eth0 type veth peer name "$(node_name "$i")" netns "$fab"
    ip -n "$fab" link set "$(node_name "$i")" master br0 up
    ip -n "$ns" link set eth0 address "$(mac_for_ip4 "$(node_ip4 "$i")")"
    addr_add "$ns" eth0 "$(node_ip4 "$i")/24" "$(node_ip6 "$i")/64"
    ip -n "$ns" link set eth0 up

    ip -n "$ns" link add cbr0 type bridge mcast_snooping 0
    # A bridge takes the lowest MAC of its ports unless it has one of its
    # own; a fixed one keeps Pods' neighbour entries for the gateway valid.
    ip -n "$ns" link set cbr0 address "$(mac_for_ip4 "$(node_gw4 "$i")")"
    addr_add "$ns" cbr0 "$(node_gw4 "$i")/24" "$(node_gw6 "$i")/64"
    ip -n "$ns" link set cbr0 up

    ip -n "$ns" route add default via "$UNDERLAY4.1"
    ip -n "$ns" -6 route add default via "$UNDERLAY6::1"
    # The routes a CNI (or kube-controller-manager's route controller)
    # would install: every other node's Pod CIDRs via that node's IP.
    for ((k = 1; k <= NODES; k++)); do
        ((k == i)) && continue
        ip -n "$ns" route add "$(node_cidr4 "$k")" via "$(node_ip4 "$k")"
        ip -n "$ns" -6 route add "$(node_cidr6 "$k")" via "$(node_ip6 "$k")"
    done
}

# create_pod I J: Pod J of node I, plugged into the node's cbr0.
create_pod() {
    local i=$1 j=$2 ns node
    ns=$(pod_netns "$i" "$j")
    node=$(node_netns "$i")
    netns_add "$ns"
    # A Pod is a host, not a router: it ignores redirects (so that a
    # Service's traffic keeps going through the node, where the DNAT is).
    ns_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 \
        net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0
    ip -n "$ns" link add eth0 type veth peer name "veth$j" netns "$node"
    ip -n "$node" link set "veth$j" master cbr0 up
    ip -n "$ns" link set eth0 address "$(mac_for_ip4 "$(pod_ip4 "$i" "$j")")"
    addr_add "$ns" eth0 "$(pod_ip4 "$i" "$j")/24" "$(pod_ip6 "$i" "$j")/64"
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$(node_gw4 "$i")"
    ip -n "$ns" -6 route add default via "$(node_gw6 "$i")"
}

# ---------------------------------------------------------------------------
# kube-proxy: the same nftables ruleset in every node, shaped like
# kube-proxy's nftables mode (services -> per-Service chain -> numgen ->
# per-endpoint chain with the DNAT).
# ---------------------------------------------------------------------------

# svc_ip SVC 4|6: the Service's ClusterIP of that family (may be empty).
svc_ip() {
    if [[ $2 == 6 ]]; then echo "${SVC_IP6[$1]}"; else echo "${SVC_IP4[$1]}"; fi
}

# svc_chain SVC PORTNAME 4|6: the chain of one Service port in one family.
svc_chain() {
    echo "svc-${1/\//-}-$2-v$3"
}

# render_dispatch SVC PORTSPEC 4|6: the "services" chain rule that sends
# packets for one ClusterIP:port to its Service chain.
render_dispatch() {
    local svc=$1 fam=$3 pname port proto ip match=ip
    IFS=: read -r pname port proto _ <<<"$2"
    ip=$(svc_ip "$svc" "$fam")
    [[ -n $ip ]] || return 0
    [[ $fam == 6 ]] && match=ip6
    echo "        $match daddr $ip ${proto,,} dport $port goto $(svc_chain "$svc" "$pname" "$fam")"
}

# render_service_chains SVC PORTSPEC 4|6: the Service chain (pick an
# endpoint round robin) and one chain per endpoint (the DNAT).
render_service_chains() {
    local svc=$1 fam=$3 pname port proto target chain vmap="" k addr nat=ip
    IFS=: read -r pname port proto target <<<"$2"
    [[ -n $(svc_ip "$svc" "$fam") ]] || return 0
    [[ $fam == 6 ]] && nat=ip6
    chain=$(svc_chain "$svc" "$pname" "$fam")
    local -a eps
    read -r -a eps <<<"${SVC_ENDPOINTS[$svc]}"
    for ((k = 0; k < ${#eps[@]}; k++)); do
        vmap+="${vmap:+, }$k : goto ep-${chain#svc-}-$k"
    done
    printf '    chain %s {\n        numgen inc mod %d vmap { %s }\n    }\n' \
        "$chain" "${#eps[@]}" "$vmap"
    for ((k = 0; k < ${#eps[@]}; k++)); do
        addr=$(ep_ip "${eps[k]}" "$fam")
        [[ $fam == 6 ]] && addr="[$addr]"
        # "meta l4proto" first: nft accepts a port in a DNAT target only
        # after a transport protocol match.
        printf '    chain ep-%s-%d {\n        meta l4proto %s dnat %s to %s:%s\n    }\n' \
            "${chain#svc-}" "$k" "${proto,,}" "$nat" "$addr" "$(ep_target_port "${eps[k]}" "$target")"
    done
}

# render_nodeports I: node I's part of the ruleset (loaded after the shared
# one, into the same table): its NodePorts, on its own node IPs, to its own
# endpoints of each NodePort Service (externalTrafficPolicy Local; with no
# local endpoint, kube-proxy drops). It reuses the shared endpoint chains.
render_nodeports() {
    local i=$1 svc np pname nport fam chain k ip match rules="" chains="" vmap
    local -a eps
    for svc in "${SERVICES[@]}"; do
        read -r -a eps <<<"${SVC_ENDPOINTS[$svc]}"
        for np in ${SVC_NODEPORTS[$svc]:-}; do
            IFS=: read -r pname nport <<<"$np"
            for fam in 4 6; do
                chain=$(svc_chain "$svc" "$pname" "$fam")
                chain=np-${chain#svc-}
                vmap="" match=ip
                [[ $fam == 6 ]] && match=ip6
                local n=0
                for ((k = 0; k < ${#eps[@]}; k++)); do
                    [[ $(ep_node "${eps[k]}") == "$(node_name "$i")" ]] || continue
                    vmap+="${vmap:+, }$n : goto ep-${chain#np-}-$k"
                    n=$((n + 1))
                done
                ip=$("node_ip$fam" "$i")
                if ((n == 0)); then
                    rules+="        $match daddr $ip tcp dport $nport drop"$'\n'
                    continue
                fi
                chains+=$(printf '    chain %s {\n        numgen inc mod %d vmap { %s }\n    }' \
                    "$chain" "$n" "$vmap")$'\n'
                rules+="        $match daddr $ip tcp dport $nport goto $chain"$'\n'
            done
        done
    done
    printf '# NodePorts of %s, generated by tests/cluster/cluster.sh.\n' "$(node_name "$i")"
    printf 'table inet kube-proxy {\n%s    chain nodeports {\n%s    }\n}\n' "$chains" "$rules"
}

render_nft() {
    local svc spec fam dispatch="" chains=""
    for svc in "${SERVICES[@]}"; do
        for spec in ${SVC_PORTS[$svc]}; do
            for fam in 4 6; do
                dispatch+=$(render_dispatch "$svc" "$spec" "$fam")
                dispatch+=$'\n'
                chains+=$(render_service_chains "$svc" "$spec" "$fam")
                chains+=$'\n'
            done
        done
    done
    cat <<EOF
# kube-proxy for cluster "$PREFIX", generated by tests/cluster/cluster.sh.
# Loaded into every node namespace. The nat chains make the kernel track
# every connection through the node (conntrack), which is what flowvis reads.
table inet kube-proxy {
    # Pods reach Services through their node as router: DNAT in prerouting.
    chain nat-prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        jump services
    }
    # Processes in the node's own namespace (host network) too. (-100 is
    # dstnat, a name nft 1.0.6 accepts for prerouting only.)
    chain nat-output {
        type nat hook output priority -100; policy accept;
        jump services
    }
    # Pods talk to each other and to nodes with their own addresses; what
    # leaves the cluster is masqueraded to the node IP.
    chain nat-postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr $CLUSTER_CIDR4 ip daddr != { $CLUSTER_CIDR4, $UNDERLAY4.0/24 } masquerade
        ip6 saddr $CLUSTER_CIDR6 ip6 daddr != { $CLUSTER_CIDR6, $UNDERLAY6::/64 } masquerade
    }
    chain filter-forward {
        type filter hook forward priority filter; policy accept;
        ct state invalid drop
    }
    chain services {
$(grep -v '^$' <<<"$dispatch")
        jump nodeports
    }
    # Filled per node (render_nodeports): its NodePorts on its node IPs.
    chain nodeports {
    }
$(grep -v '^$' <<<"$chains")
}
EOF
}

# ---------------------------------------------------------------------------
# NetworkPolicies (--policies): the objects, and nftables rules in every
# node that enforce them and log what they refuse to NFLOG.
# ---------------------------------------------------------------------------

readonly NP_DROP_GROUP=100 NP_REJECT_GROUP=101
readonly POLICY_NAMES=(shop/catalog-ingress payments/payments-api-ingress
    monitoring/prometheus-ingress monitoring/grafana-egress)

# policy_spec NS/NAME: the policy's spec, as JSON.
policy_spec() {
    case $1 in
    shop/catalog-ingress) cat <<'EOF' ;;
{"podSelector": {"matchLabels": {"app": "catalog"}}, "policyTypes": ["Ingress"],
 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
              "ports": [{"protocol": "TCP", "port": "http"}]},
             {"from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}],
              "ports": [{"protocol": "TCP", "port": 9090}]}]}
EOF
    payments/payments-api-ingress) cat <<'EOF' ;;
{"podSelector": {"matchLabels": {"app": "payments-api"}},
 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "storefront"}},
                        "podSelector": {"matchExpressions": [
                            {"key": "app", "operator": "In", "values": ["frontend", "cart"]}]}}],
              "ports": [{"port": 8080}]}]}
EOF
    monitoring/prometheus-ingress) cat <<'EOF' ;;
{"podSelector": {"matchLabels": {"app": "prometheus"}}, "policyTypes": ["Ingress"],
 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "grafana"}}}],
              "ports": [{"port": "web"}]}]}
EOF
    monitoring/grafana-egress) cat <<'EOF' ;;
{"podSelector": {"matchLabels": {"app": "grafana"}}, "policyTypes": ["Egress"],
 "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "prometheus"}}}],
             "ports": [{"protocol": "TCP", "port": "web"}]},
            {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
             "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}
EOF
    *) die "no policy $1" ;;
    esac
}

json_policy() {
    local np=$1
    next_rv
    jq -n --argjson spec "$(policy_spec "$np")" '{
        apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
        metadata: {name: $name, namespace: $ns, uid: $uid, resourceVersion: $rv,
                   generation: 1, creationTimestamp: $ts},
        spec: $spec}' \
        --arg name "${np#*/}" --arg ns "${np%%/*}" --arg uid "$(uuid)" \
        --arg rv "$RESOURCE_VERSION" --arg ts "$NOW"
}

# pod_set FAM NODE APP...: "{ ip, ip }" of the Pods of these apps (on node
# NODE, or anywhere when NODE is 0); empty when there are none.
pod_set() {
    local fam=$1 node=$2 key ips=""
    shift 2
    for key in "${POD_KEYS[@]}"; do
        ((node == 0 || ${key%_*} == node)) || continue
        [[ " $* " == *" ${POD_APP[$key]} "* ]] || continue
        ips+="${ips:+, }$("pod_ip$fam" "${key%_*}" "${key#*_}")"
    done
    [[ -n $ips ]] && echo "{ $ips }"
    return 0
}

# np_rule FAM DIR SET MATCH: one rule "ip saddr|daddr SET MATCH", or
# nothing when the set is empty.
np_rule() {
    local match=ip
    [[ $1 == 6 ]] && match=ip6
    [[ -n $3 ]] && echo "        $match $2 $3 $4"
    return 0
}

# apps_in NS: the workloads of a namespace.
apps_in() {
    local app out=""
    for app in "${!APP_NS[@]}"; do
        [[ ${APP_NS[$app]} == "$1" ]] && out+=" $app"
    done
    echo "$out"
}

# render_netpol I: node I's policy rules, added to the shared table. Allowed
# packets "return" from a policy chain, so that a Pod-to-Pod packet inside
# one node meets both the egress and the ingress checks; refused ones are
# logged to NFLOG with the policy in the prefix and dropped or rejected.
render_netpol() {
    local i=$1 fam dispatch_in="" dispatch_eg="" catalog="" payments="" prom="" graf=""
    local -a monitoring
    read -r -a monitoring <<<"$(apps_in monitoring)"
    for fam in 4 6; do
        dispatch_in+=$(np_rule "$fam" daddr "$(pod_set "$fam" "$i" catalog)" "jump np-shop-catalog-ingress")$'\n'
        dispatch_in+=$(np_rule "$fam" daddr "$(pod_set "$fam" "$i" payments-api)" "jump np-payments-payments-api-ingress")$'\n'
        dispatch_in+=$(np_rule "$fam" daddr "$(pod_set "$fam" "$i" prometheus)" "jump np-monitoring-prometheus-ingress")$'\n'
        dispatch_eg+=$(np_rule "$fam" saddr "$(pod_set "$fam" "$i" grafana)" "jump np-monitoring-grafana-egress")$'\n'
        catalog+=$(np_rule "$fam" saddr "$(pod_set "$fam" 0 frontend)" "tcp dport 8080 return")$'\n'
        catalog+=$(np_rule "$fam" saddr "$(pod_set "$fam" 0 "${monitoring[@]}")" "tcp dport 9090 return")$'\n'
        payments+=$(np_rule "$fam" saddr "$(pod_set "$fam" 0 frontend cart)" "tcp dport 8080 return")$'\n'
        prom+=$(np_rule "$fam" saddr "$(pod_set "$fam" 0 grafana)" "tcp dport 9090 return")$'\n'
        graf+=$(np_rule "$fam" daddr "$(pod_set "$fam" 0 prometheus)" "tcp dport 9090 return")$'\n'
        graf+=$(np_rule "$fam" daddr "$(pod_set "$fam" 0 coredns)" "meta l4proto { tcp, udp } th dport 53 return")$'\n'
    done
    local drop="group $NP_DROP_GROUP drop" reject="group $NP_REJECT_GROUP reject"
    cat <<EOF
# NetworkPolicies of $(node_name "$i"), generated by tests/cluster/cluster.sh.
table inet kube-proxy {
    chain filter-forward {
        ct state established,related accept
        # Neighbour discovery between two Pods of a node is bridged, and
        # br_netfilter shows it to this hook: it is not Pod traffic.
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
        jump netpol-egress
        jump netpol-ingress
    }
    chain netpol-egress {
$(grep -v '^$' <<<"$dispatch_eg")
    }
    chain netpol-ingress {
$(grep -v '^$' <<<"$dispatch_in")
    }
    chain np-shop-catalog-ingress {
$(grep -v '^$' <<<"$catalog")
        log prefix "shop/catalog-ingress" $drop
    }
    chain np-payments-payments-api-ingress {
$(grep -v '^$' <<<"$payments")
        log prefix "payments/payments-api-ingress" $drop
    }
    chain np-monitoring-prometheus-ingress {
$(grep -v '^$' <<<"$prom")
        log prefix "monitoring/prometheus-ingress" $drop
    }
    chain np-monitoring-grafana-egress {
$(grep -v '^$' <<<"$graf")
        log prefix "monitoring/grafana-egress" $reject
    }
}
EOF
}

# ---------------------------------------------------------------------------
# Inventory: the Kubernetes objects, as kubectl prints them. One jq call per
# object; keys sorted and 4-space indent like `kubectl get ... -o json`
# (which prints a mixed List as unstructured objects, i.e. sorted keys).
# ---------------------------------------------------------------------------

# Shared jq definitions: "k=v k2=v2" -> {"k": "v", "k2": "v2"}.
# shellcheck disable=SC2016 # $i is a jq variable
readonly JQ_DEFS='def kv: split(" ") | map(select(length > 0) | index("=") as $i
    | {(.[:$i]): .[$i + 1:]}) | add // {};'

RESOURCE_VERSION=1000
NOW=""

uuid() { cat /proc/sys/kernel/random/uuid; }

next_rv() { RESOURCE_VERSION=$((RESOURCE_VERSION + 1)); }

json_namespace() {
    local ns=$1
    next_rv
    jq -n "$JQ_DEFS"' {
        apiVersion: "v1", kind: "Namespace",
        metadata: {name: $name, uid: $uid, resourceVersion: $rv, creationTimestamp: $ts,
                   labels: ({"kubernetes.io/metadata.name": $name} + ($labels | kv))},
        spec: {finalizers: ["kubernetes"]},
        status: {phase: "Active"}}' \
        --arg name "$ns" --arg uid "$(uuid)" --arg rv "$RESOURCE_VERSION" --arg ts "$NOW" \
        --arg labels "${NS_LABELS[$ns]}"
}

json_node() {
    local i=$1 name
    name=$(node_name "$i")
    next_rv
    jq -n "$JQ_DEFS"' {
        apiVersion: "v1", kind: "Node",
        metadata: {name: $name, uid: $uid, resourceVersion: $rv, creationTimestamp: $ts,
                   labels: ($labels | kv)},
        spec: {podCIDR: $cidr4, podCIDRs: [$cidr4, $cidr6]},
        status: {
            addresses: [{type: "InternalIP", address: $ip4}, {type: "InternalIP", address: $ip6},
                        {type: "Hostname", address: $name}],
            conditions: [{type: "Ready", status: "True", reason: "KubeletReady",
                          message: "kubelet is posting ready status",
                          lastHeartbeatTime: $ts, lastTransitionTime: $ts}],
            nodeInfo: {architecture: "amd64", operatingSystem: "linux",
                       kubeletVersion: "v1.29.0", kubeProxyVersion: "v1.29.0",
                       containerRuntimeVersion: "containerd://1.7.11"}}}' \
        --arg name "$name" --arg uid "$(uuid)" --arg rv "$RESOURCE_VERSION" --arg ts "$NOW" \
        --arg cidr4 "$(node_cidr4 "$i")" --arg cidr6 "$(node_cidr6 "$i")" \
        --arg ip4 "$(node_ip4 "$i")" --arg ip6 "$(node_ip6 "$i")" \
        --arg labels "kubernetes.io/arch=amd64 kubernetes.io/os=linux kubernetes.io/hostname=$name$(
            ((i == 1)) && echo ' node-role.kubernetes.io/control-plane=')"
}

json_pod() {
    local key=$1 i=${1%_*} j=${1#*_} app
    app=${POD_APP[$key]}
    next_rv
    jq -n "$JQ_DEFS"' ($labels | kv) as $l | {
        apiVersion: "v1", kind: "Pod",
        metadata: {name: $name, generateName: "\($app)-\($l["pod-template-hash"])-",
                   namespace: $ns, uid: $uid, resourceVersion: $rv, creationTimestamp: $ts,
                   labels: $l,
                   ownerReferences: [{apiVersion: "apps/v1", kind: "ReplicaSet",
                                      name: "\($app)-\($l["pod-template-hash"])", uid: $rsuid,
                                      controller: true, blockOwnerDeletion: true}]},
        spec: {
            containers: [{name: $app, image: $image, imagePullPolicy: "IfNotPresent",
                          ports: ($ports | split(" ") | map(split(":")
                                  | {name: .[0], containerPort: (.[1] | tonumber), protocol: .[2]})),
                          resources: {}, terminationMessagePath: "/dev/termination-log",
                          terminationMessagePolicy: "File"}],
            dnsPolicy: "ClusterFirst", enableServiceLinks: true, nodeName: $node,
            restartPolicy: "Always", schedulerName: "default-scheduler", securityContext: {},
            serviceAccount: "default", serviceAccountName: "default",
            terminationGracePeriodSeconds: 30},
        status: {
            phase: "Running", qosClass: "BestEffort", startTime: $ts,
            hostIP: $hostip4, hostIPs: [{ip: $hostip4}, {ip: $hostip6}],
            podIP: $ip4, podIPs: [{ip: $ip4}, {ip: $ip6}],
            conditions: ([ "Initialized", "Ready", "ContainersReady", "PodScheduled" ]
                         | map({type: ., status: "True", lastProbeTime: null,
                                lastTransitionTime: $ts})),
            containerStatuses: [{name: $app, image: $image, imageID: "", ready: true,
                                 started: true, restartCount: 0,
                                 containerID: "containerd://\($uid | gsub("-"; ""))",
                                 state: {running: {startedAt: $ts}}}]}}' \
        --arg name "${POD_NAME[$key]}" --arg app "$app" --arg ns "${APP_NS[$app]}" \
        --arg uid "$(uuid)" --arg rsuid "$(uuid)" --arg rv "$RESOURCE_VERSION" --arg ts "$NOW" \
        --arg labels "${POD_LABELS[$key]}" --arg image "${APP_IMAGE[$app]}" \
        --arg ports "${APP_PORTS[$app]}" --arg node "$(node_name "$i")" \
        --arg ip4 "$(pod_ip4 "$i" "$j")" --arg ip6 "$(pod_ip6 "$i" "$j")" \
        --arg hostip4 "$(node_ip4 "$i")" --arg hostip6 "$(node_ip6 "$i")"
}

json_service() {
    local svc=$1
    next_rv
    jq -n "$JQ_DEFS"' ([$ip4, $ip6] | map(select(length > 0))) as $ips
        | ($nodeports | split(" ") | map(select(length > 0) | split(":")
                                         | {(.[0]): (.[1] | tonumber)}) | add // {}) as $np | {
        apiVersion: "v1", kind: "Service",
        metadata: {name: $name, namespace: $ns, uid: $uid, resourceVersion: $rv,
                   creationTimestamp: $ts, labels: ($labels | kv)},
        spec: ({
            type: (if $np == {} then "ClusterIP" else "NodePort" end),
            clusterIP: $ips[0], clusterIPs: $ips,
            ipFamilies: ($ips | map(if test(":") then "IPv6" else "IPv4" end)),
            ipFamilyPolicy: (if ($ips | length) > 1 then "RequireDualStack" else "SingleStack" end),
            internalTrafficPolicy: "Cluster", sessionAffinity: "None",
            ports: ($ports | split(" ") | map(split(":") | {
                name: .[0], port: (.[1] | tonumber), protocol: .[2],
                targetPort: (.[3] | if test("^[0-9]+$") then tonumber else . end)}
                + (if $np[.[0]] then {nodePort: $np[.[0]]} else {} end)))}
            + (if $np == {} then {} else {externalTrafficPolicy: "Local"} end)
            + (if $selector == "" then {} else {selector: ($selector | kv)} end)),
        status: {loadBalancer: {}}}' \
        --arg name "${svc#*/}" --arg ns "${svc%%/*}" --arg uid "$(uuid)" \
        --arg rv "$RESOURCE_VERSION" --arg ts "$NOW" --arg labels "${SVC_LABELS[$svc]}" \
        --arg ip4 "${SVC_IP4[$svc]}" --arg ip6 "${SVC_IP6[$svc]}" \
        --arg ports "${SVC_PORTS[$svc]}" --arg selector "${SVC_SELECTOR[$svc]}" \
        --arg nodeports "${SVC_NODEPORTS[$svc]:-}"
}

# write_inventory FILE: the List, in kubectl's order (pods, services, nodes,
# namespaces, networkpolicies).
write_inventory() {
    local key svc i ns np
    NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    {
        for key in "${POD_KEYS[@]}"; do json_pod "$key"; done
        for svc in "${SERVICES[@]}"; do json_service "$svc"; done
        for ((i = 1; i <= NODES; i++)); do json_node "$i"; done
        for ns in "${K8S_NAMESPACES[@]}"; do json_namespace "$ns"; done
        if ((POLICIES)); then
            for np in "${POLICY_NAMES[@]}"; do json_policy "$np"; done
        fi
    } | jq -s -S --indent 4 '{apiVersion: "v1", kind: "List", items: .,
                              metadata: {resourceVersion: ""}}' >"$1.tmp"
    mv "$1.tmp" "$1"
}

# ---------------------------------------------------------------------------
# cluster.env: everything a test needs, as shell variables. Pods are keyed
# "I_J" (node I, slot J); Services by their upper-cased name.
# ---------------------------------------------------------------------------

# env_line NAME VALUE: a shell assignment; plain double quotes when they
# are enough (they are for every value written here), %q otherwise.
env_line() {
    if [[ $2 =~ ^[A-Za-z0-9\ ._:/=-]*$ ]]; then
        printf '%s="%s"\n' "$1" "$2"
    else
        printf '%s=%q\n' "$1" "$2"
    fi
}

write_env_nodes() {
    local i v
    env_line FVC_NODES "$NODES"
    for ((i = 1; i <= NODES; i++)); do
        v=FVC_NODE_$i
        echo "# $(node_name "$i")"
        env_line "${v}_NAME" "$(node_name "$i")"
        env_line "${v}_NETNS" "$(node_netns "$i")"
        env_line "${v}_IP4" "$(node_ip4 "$i")"
        env_line "${v}_IP6" "$(node_ip6 "$i")"
        env_line "${v}_CIDR4" "$(node_cidr4 "$i")"
        env_line "${v}_CIDR6" "$(node_cidr6 "$i")"
        env_line "${v}_GW4" "$(node_gw4 "$i")"
        env_line "${v}_GW6" "$(node_gw6 "$i")"
    done
}

write_env_pods() {
    local key v app i j
    env_line FVC_PODS_PER_NODE "$PODS_PER_NODE"
    env_line FVC_POD_KEYS "${POD_KEYS[*]}"
    for key in "${POD_KEYS[@]}"; do
        i=${key%_*} j=${key#*_} app=${POD_APP[$key]} v=FVC_POD_$key
        echo "# ${APP_NS[$app]}/${POD_NAME[$key]}"
        env_line "${v}_NAME" "${POD_NAME[$key]}"
        env_line "${v}_NAMESPACE" "${APP_NS[$app]}"
        env_line "${v}_APP" "$app"
        env_line "${v}_NETNS" "$(pod_netns "$i" "$j")"
        env_line "${v}_NODE" "$(node_name "$i")"
        env_line "${v}_NODE_NETNS" "$(node_netns "$i")"
        env_line "${v}_IP4" "$(pod_ip4 "$i" "$j")"
        env_line "${v}_IP6" "$(pod_ip6 "$i" "$j")"
    done
}

write_env_services() {
    local svc v spec pname port proto target ep np names="" ip4s ip6s nss nodes pods
    env_line FVC_SERVICES "${SERVICES[*]}"
    for svc in "${SERVICES[@]}"; do
        v=FVC_SVC_$(upper_key "${svc#*/}")
        ip4s="" ip6s="" nss="" nodes="" pods="" names=""
        for ep in ${SVC_ENDPOINTS[$svc]}; do
            ip4s+=" $(ep_ip "$ep" 4)" ip6s+=" $(ep_ip "$ep" 6)" nss+=" $(ep_netns "$ep")"
            nodes+=" $(ep_node "$ep")"
            [[ $ep == pod:* ]] && pods+=" ${ep#pod:}"
        done
        echo "# $svc"
        env_line "${v}_NAME" "${svc#*/}"
        env_line "${v}_NAMESPACE" "${svc%%/*}"
        env_line "${v}_TYPE" "$([[ -n ${SVC_NODEPORTS[$svc]:-} ]] && echo NodePort || echo ClusterIP)"
        env_line "${v}_IP4" "${SVC_IP4[$svc]}"
        env_line "${v}_IP6" "${SVC_IP6[$svc]}"
        env_line "${v}_ENDPOINT_IP4S" "${ip4s# }"
        env_line "${v}_ENDPOINT_IP6S" "${ip6s# }"
        env_line "${v}_ENDPOINT_NETNS" "${nss# }"
        env_line "${v}_ENDPOINT_NODES" "${nodes# }"
        env_line "${v}_ENDPOINT_PODS" "${pods# }"
        for spec in ${SVC_PORTS[$svc]}; do
            IFS=: read -r pname port proto target <<<"$spec"
            names+=" $pname"
            env_line "${v}_$(upper_key "$pname")_PORT" "$port"
            env_line "${v}_$(upper_key "$pname")_PROTO" "${proto,,}"
            env_line "${v}_$(upper_key "$pname")_TARGET_PORT" \
                "$(ep_target_port "${SVC_ENDPOINTS[$svc]%% *}" "$target")"
            for np in ${SVC_NODEPORTS[$svc]:-}; do
                if [[ ${np%%:*} == "$pname" ]]; then
                    env_line "${v}_$(upper_key "$pname")_NODE_PORT" "${np#*:}"
                fi
            done
        done
        env_line "${v}_PORT_NAMES" "${names# }"
    done
}

write_env() {
    {
        echo "# The namespace cluster \"$PREFIX\", written by tests/cluster/cluster.sh up."
        echo "# Source it: Pods are FVC_POD_<node>_<slot>_*, Services FVC_SVC_<NAME>_*."
        env_line FVC_PREFIX "$PREFIX"
        env_line FVC_STATE "$STATE"
        env_line FVC_INVENTORY "$STATE/inventory.json"
        env_line FVC_CLUSTER_CIDR4 "$CLUSTER_CIDR4"
        env_line FVC_CLUSTER_CIDR6 "$CLUSTER_CIDR6"
        env_line FVC_SERVICE_CIDR4 "$SERVICE_CIDR4"
        env_line FVC_SERVICE_CIDR6 "$SERVICE_CIDR6"
        env_line FVC_FABRIC_NETNS "$(fabric_netns)"
        env_line FVC_EXTERNAL_NETNS "$(external_netns)"
        env_line FVC_EXTERNAL_IP4 "$EXTERNAL_IP4"
        env_line FVC_EXTERNAL_IP6 "$EXTERNAL_IP6"
        env_line FVC_POLICIES "$POLICIES"
        if ((POLICIES)); then
            env_line FVC_POLICY_NAMES "${POLICY_NAMES[*]}"
            env_line FVC_NFLOG_DROP_GROUP "$NP_DROP_GROUP"
            env_line FVC_NFLOG_REJECT_GROUP "$NP_REJECT_GROUP"
        fi
        write_env_nodes
        write_env_pods
        write_env_services
    } >"$1.tmp"
    mv "$1.tmp" "$1"
}

print_summary() {
    local i key app svc
    echo "cluster $PREFIX: $NODES nodes, ${#POD_KEYS[@]} pods, ${#SERVICES[@]} services; state in $STATE"
    for ((i = 1; i <= NODES; i++)); do
        printf '  %-8s %-22s %-14s %-18s %s %s\n' "$(node_name "$i")" "netns $(node_netns "$i")" \
            "$(node_ip4 "$i")" "$(node_ip6 "$i")" "$(node_cidr4 "$i")" "$(node_cidr6 "$i")"
    done
    for key in "${POD_KEYS[@]}"; do
        app=${POD_APP[$key]}
        printf '  pod %-5s %-40s %-13s %s\n' "$key" "${APP_NS[$app]}/${POD_NAME[$key]}" \
            "$(pod_ip4 "${key%_*}" "${key#*_}")" "$(pod_ip6 "${key%_*}" "${key#*_}")"
    done
    for svc in "${SERVICES[@]}"; do
        printf '  svc %-22s %-12s %-16s %-40s -> %s\n' "$svc" "${SVC_IP4[$svc]}" \
            "${SVC_IP6[$svc]:--}" "${SVC_PORTS[$svc]}" "${SVC_ENDPOINTS[$svc]}"
    done
    echo "  external $(external_netns) $EXTERNAL_IP4 $EXTERNAL_IP6"
    if ((POLICIES)); then
        echo "  policies ${POLICY_NAMES[*]} (NFLOG groups $NP_DROP_GROUP drop, $NP_REJECT_GROUP reject)"
    fi
}

# ---------------------------------------------------------------------------
# Teardown: by name, so that it also cleans up after a crashed run.
# ---------------------------------------------------------------------------

# cluster_netns: the namespaces of cluster $PREFIX. Only the exact shapes
# this script creates match, so that a short prefix cannot take other
# people's namespaces with it.
cluster_netns() {
    local ns rest
    ip netns list | while read -r ns _; do
        [[ $ns == "$PREFIX"* ]] || continue
        rest=${ns#"$PREFIX"}
        [[ $rest =~ ^(node-[0-9]+|pod-[0-9]+-[0-9]+|fabric|external)$ ]] && echo "$ns"
    done | sort -V
    return 0
}

# stop_netns_processes NS...: a namespace is only freed when its last
# process leaves, so stop what tests left running in it: TERM, then KILL
# what is still alive after 3 s.
stop_netns_processes() {
    local ns pid pids=() alive i
    for ns in "$@"; do
        mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    [[ ${#pids[@]} -gt 0 ]] || return 0
    log "stopping ${#pids[@]} process(es) left in the cluster's namespaces"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
        done
        [[ ${#alive[@]} -gt 0 ]] || return 0
        pids=("${alive[@]}")
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

teardown() {
    local names ns
    mapfile -t names < <(cluster_netns)
    if [[ ${#names[@]} -gt 0 ]]; then
        stop_netns_processes "${names[@]}"
        # Deleting a namespace deletes its links (the peer end of each veth
        # goes with it), its bridges and its nftables tables.
        for ns in "${names[@]}"; do
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
    local f
    for f in inventory.json cluster.env kube-proxy.nft; do
        rm -f "$STATE/$f" "$STATE/$f.tmp"
    done
    rm -f "$STATE"/nodeports-node-*.nft "$STATE"/netpol-node-*.nft
    rmdir "$STATE" 2>/dev/null || true
    mapfile -t names < <(cluster_netns)
    [[ ${#names[@]} -eq 0 ]] || die "could not delete namespaces: ${names[*]}"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

cmd_up() {
    local i j key svc spec ep nft_file started=$SECONDS
    build_model
    # Every named targetPort must resolve on every endpoint; check it here,
    # in this shell, rather than inside the $(...) of the renderers.
    for svc in "${SERVICES[@]}"; do
        for spec in ${SVC_PORTS[$svc]}; do
            for ep in ${SVC_ENDPOINTS[$svc]}; do
                ep_target_port "$ep" "${spec##*:}" >/dev/null
            done
        done
    done
    if [[ -n $(cluster_netns) ]]; then
        log "cluster $PREFIX exists; tearing it down first"
        teardown
    fi
    mkdir -p "$STATE"
    # From here on, a failure must not leave half a cluster behind.
    trap 'rc=$?; if ((rc != 0)); then log "up failed; tearing down"; teardown || true; fi' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    create_fabric
    for ((i = 1; i <= NODES; i++)); do
        create_node "$i"
        for ((j = 1; j <= PODS_PER_NODE; j++)); do
            create_pod "$i" "$j"
        done
    done
    nft_file=$STATE/kube-proxy.nft
    render_nft >"$nft_file"
    for ((i = 1; i <= NODES; i++)); do
        ip netns exec "$(node_netns "$i")" nft -f "$nft_file"
        render_nodeports "$i" >"$STATE/nodeports-node-$i.nft"
        ip netns exec "$(node_netns "$i")" nft -f "$STATE/nodeports-node-$i.nft"
        if ((POLICIES)); then
            render_netpol "$i" >"$STATE/netpol-node-$i.nft"
            ip netns exec "$(node_netns "$i")" nft -f "$STATE/netpol-node-$i.nft"
        fi
    done
    write_inventory "$STATE/inventory.json"
    write_env "$STATE/cluster.env"
    trap - EXIT INT TERM
    print_summary
    log "up in $((SECONDS - started)) s"
}

cmd_down() {
    teardown
    log "cluster $PREFIX is down"
}

cmd_status() {
    local names ns count
    mapfile -t names < <(cluster_netns)
    if [[ ${#names[@]} -eq 0 ]]; then
        echo "cluster $PREFIX: down"
        return 0
    fi
    echo "cluster $PREFIX: ${#names[@]} namespaces"
    for ns in "${names[@]}"; do
        [[ $ns == "${PREFIX}node-"* ]] || continue
        count=$(ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_count)
        printf '  %-20s conntrack entries %-5s kube-proxy table %s, pods %s\n' "$ns" "$count" \
            "$(ip netns exec "$ns" nft list table inet kube-proxy >/dev/null 2>&1 && echo yes ||
                echo MISSING)" \
            "$(ip -n "$ns" -o link show master cbr0 2>/dev/null | wc -l)"
    done
    [[ -f $STATE/cluster.env ]] && echo "  state: $STATE (cluster.env, inventory.json)"
    return 0
}

parse_args() {
    NODES=3 PODS_PER_NODE=4 PREFIX=fvk- STATE="" POLICIES=0
    while [[ $# -gt 0 ]]; do
        case $1 in
        --nodes) NODES=${2:?--nodes needs a value} && shift ;;
        --pods-per-node) PODS_PER_NODE=${2:?--pods-per-node needs a value} && shift ;;
        --prefix) PREFIX=${2?--prefix needs a value} && shift ;;
        --state) STATE=${2:?--state needs a value} && shift ;;
        --policies) POLICIES=1 ;;
        -h | --help) usage ;;
        *) die "unknown argument '$1' (try --help)" ;;
        esac
        shift
    done
    if ! [[ $NODES =~ ^[0-9]+$ ]] || ((NODES < 2 || NODES > MAX_NODES)); then
        die "--nodes must be 2..$MAX_NODES"
    fi
    if ! [[ $PODS_PER_NODE =~ ^[0-9]+$ ]] || ((PODS_PER_NODE < 3 || PODS_PER_NODE > MAX_PODS_PER_NODE)); then
        die "--pods-per-node must be 3..$MAX_PODS_PER_NODE"
    fi
    # Not empty: an empty prefix would claim namespaces called "fabric".
    [[ $PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$ ]] ||
        die "--prefix must be 1-32 characters of [A-Za-z0-9_.-]"
    STATE=${STATE:-${TMPDIR:-/tmp}/flowvis-cluster-${PREFIX%-}}
}

main() {
    [[ $# -gt 0 ]] || usage
    local cmd=$1
    shift
    parse_args "$@"
    case $cmd in
    up | down | status) ;;
    *) usage ;;
    esac
    [[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces)"
    local tool
    for tool in ip nft jq sysctl; do
        command -v "$tool" >/dev/null || die "$tool not found (install with: scripts/deps.sh test)"
    done
    "cmd_$cmd"
}

main "$@"
