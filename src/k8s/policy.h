/*
 * policy.h - Kubernetes NetworkPolicy (networking.k8s.io/v1) evaluation:
 * which policy admits a flow, or isolates the Pod that the flow was denied
 * to or from.
 *
 * flowvis agents see connections in conntrack, without help from the
 * datapath, and name the ingress policy that selects the destination Pod
 * and admits the flow, and the egress policy that selects the source Pod
 * and admits it (SPEC: NetworkPolicy enrichment).  The policies are
 * compiled once, when an inventory is finished (fv_k8s_builder_finish), into
 * structures in the inventory's pool: label selectors whose keys and values
 * are interned strings (so matching compares pointers), peers, ports and
 * CIDRs, plus indexes by namespace, by Pod and by Node address.
 * Evaluation then does no JSON work, no allocation and takes no lock.
 *
 * Semantics (the Kubernetes API reference and the "Network Policies"
 * concept page):
 *  - A policy selects the Pods of its own namespace that match
 *    spec.podSelector ({} or absent: all of them).  Only known Pods are
 *    selected: those fv_k8s_pod_by_ip() finds, so never hostNetwork Pods.
 *  - spec.policyTypes says which directions the policy isolates.  When it
 *    is absent or empty: Ingress, plus Egress when spec.egress has at least
 *    one rule (the API server's defaulting; an empty "egress": [] does not
 *    imply Egress).  [Egress] without egress rules denies all egress.
 *  - Ingress is decided by the policies of the destination Pod's namespace,
 *    their peers matched against the source; egress by those of the source
 *    Pod's namespace, peers matched against the destination.  A rule
 *    admits when a peer of its from/to matches (absent or [] = any peer)
 *    and a port entry matches (absent or [] = any port).
 *  - podSelector alone: Pods of the policy's namespace; namespaceSelector
 *    alone: every Pod of the namespaces whose labels match; both: Pods that
 *    match in namespaces that match.  A namespace always carries the label
 *    kubernetes.io/metadata.name=<its name>, also when its Namespace
 *    object lacks it or is missing.  Selector peers match known Pods only.
 *  - ipBlock {cidr, except} matches any address in cidr and in no except,
 *    Pod IPs included.  Kubernetes meant ipBlock for cluster-external
 *    addresses and leaves Pod IPs to the implementation (some CNIs match
 *    them, others such as Cilium by default do not); flowvis matches them,
 *    so with a CNI that does not, a flow admitted here by an ipBlock that
 *    covers Pod IPs may in fact have been dropped.
 *  - A port entry: protocol (default TCP) and port, a number (with endPort:
 *    the range port..endPort) or a name.  A name is looked up in the
 *    destination Pod's container ports (name, protocol and number), for
 *    ingress and egress alike; a destination that is not a known Pod has
 *    no named ports.  A protocol alone matches every port of it.  Flows of
 *    other protocols (ICMP...) match only rules without ports.
 *  - Kubernetes never isolates a Pod from itself or from its own Node: a
 *    flow from a Pod to its own IP, or between a Pod and an InternalIP of
 *    the Node it runs on, is NOT_ISOLATED in both directions.  Only
 *    InternalIPs are known: node traffic from another address of the Node
 *    (a CNI bridge or gateway address inside the Pod CIDR, as kubelet
 *    probes use with bridge CNIs) is evaluated like any peer, so it comes
 *    out UNKNOWN against selector peers and may come out DENIED.
 *  - Policies are tried in (namespace, name) order, rules in spec order:
 *    the first (policy, rule) that admits names the flow ("ingress-<i>",
 *    "egress-<i>", i the index in the spec array).  A denied flow names
 *    the first policy that isolates the Pod.
 *
 * What cannot be decided.  Every part of a policy evaluates to yes, no or
 * maybe, and a flow is ALLOWED only by a definite yes.  Maybe comes from:
 *  - a selector peer against an address inside the cluster's Pod CIDRs
 *    whose Pod the inventory does not hold (it may be a Pod that matches),
 *    and a named port on such a destination;
 *  - a namespaceSelector term (other than kubernetes.io/metadata.name) on a
 *    namespace whose Namespace object the inventory lacks;
 *  - a malformed part of a policy.
 * When no rule definitely admits the flow and a maybe could change the
 * answer, the verdict is UNKNOWN, never a guessed name.  When some rule
 * definitely admits it, the flow is ALLOWED by the first such rule, even
 * if an earlier rule was a maybe: the named policy does admit the flow.
 *
 * Malformed policies (as a file may hold; the API server would reject
 * them).  Every bad part is counted in the inventory's stats.bad_values
 * (and may be its first_issue: "NetworkPolicy shop/x: spec.ingress[0]...")
 * and evaluates to maybe, so that it can neither make a flow look admitted
 * nor un-isolate a Pod:
 *  - a bad podSelector term (unknown operator, values where none belong,
 *    a label value that is not a string...) may select any Pod that the
 *    selector's other terms do not rule out;
 *  - a bad policyTypes entry may isolate the directions not validly listed;
 *  - a peer that is not an object, has no selector or ipBlock, or has both,
 *    and an ipBlock whose cidr does not parse, may match any address; an
 *    except entry that does not parse may exclude any address of the cidr;
 *  - a bad port entry (port out of 1..65535, unknown protocol, endPort
 *    below port or with a named port) may match any flow;
 *  - from/to/ports/ingress/egress that are not arrays become one entry
 *    that may match anything.
 * A policy without spec is read as the API server would default it: it
 * selects every Pod of its namespace and denies all ingress.
 *
 * Cost.  Compiling also works out, per Pod, the policies that may select
 * it, so evaluation matches peers and ports only.  bench/bench_policy
 * (5000 Pods, 50 namespaces, 500 policies): about 3 ms to compile, about
 * 0.5 MiB, 170 ns per flow for both directions on one core.  An inventory
 * without policies compiles nothing and evaluates in a few nanoseconds.
 *
 * Threads.  Evaluation reads the sealed inventory only: any thread, no
 * locks, no allocation.  Results point into the inventory and stay valid
 * as long as it does.
 *
 *     struct fv_np_flow f = {.src = client_ip, .dst = endpoint_ip,
 *                            .dport = endpoint_port, .proto = IPPROTO_TCP};
 *     struct fv_np_result in, eg;
 *     fv_k8s_policy_evaluate(inv, &f, &in, &eg);
 *     if (in.verdict == FV_NP_ALLOWED)
 *         export in.policy->ns, in.policy->name, in.rule_name, action allow;
 *     else if (in.verdict == FV_NP_DENIED)
 *         export in.policy->name as the isolating policy, action drop;
 */
#ifndef FV_K8S_POLICY_H
#define FV_K8S_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "base/ip.h"
#include "k8s/inventory.h"

enum fv_np_verdict {
    FV_NP_NOT_ISOLATED = 0, /* no policy selects the Pod for this direction, the end is not a
                               known Pod, or NetworkPolicy does not apply (a Pod to itself, a
                               Pod and its own Node) */
    FV_NP_ALLOWED,          /* isolated, and a rule admits the flow */
    FV_NP_DENIED,           /* isolated, and no rule admits it */
    FV_NP_UNKNOWN           /* cannot be decided: a peer is a Pod IP whose Pod the inventory
                               does not hold, a namespace's labels are unknown, or a malformed
                               policy part, might have changed the answer */
};

struct fv_np_result {
    enum fv_np_verdict verdict;
    const struct fv_k8s_network_policy *policy; /* ALLOWED: the admitting policy (first in
                                                   (namespace, name) order, then first rule);
                                                   DENIED: the first isolating policy; else
                                                   NULL */
    int rule;              /* ALLOWED: index in spec.ingress / spec.egress; else -1 */
    const char *rule_name; /* ALLOWED: "ingress-<i>" / "egress-<i>" (valid as long as the
                              inventory); else "" */
};

struct fv_np_flow {
    struct fv_ip src; /* the client */
    struct fv_ip dst; /* the server after DNAT (the endpoint, not the ClusterIP) */
    uint16_t dport;   /* destination port after DNAT */
    uint8_t proto;    /* IPPROTO_TCP / UDP / SCTP (others: ports never match, port-less rules do) */
};

/*
 * Ingress: the policies of the destination Pod's namespace that select it
 * and isolate Ingress; peers are matched against the source.  Egress: the
 * policies of the source Pod's namespace that select it and isolate Egress;
 * peers are matched against the destination.  Any thread, no locks, no
 * allocation.
 */
void fv_k8s_policy_evaluate(const struct fv_k8s_inventory *inv, const struct fv_np_flow *flow,
                            struct fv_np_result *ingress, struct fv_np_result *egress);

/* The number of compiled policies: every NetworkPolicy of the inventory
 * (a malformed one is compiled with its bad parts as "maybe"). */
size_t fv_k8s_policy_count(const struct fv_k8s_inventory *inv);

/* "not_isolated", "allowed", "denied", "unknown"; "?" for other values. */
const char *fv_np_verdict_name(enum fv_np_verdict v);

#endif
