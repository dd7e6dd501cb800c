/*
 * generate.c - `flowvis generate`: a simulated cluster that exports
 * agent-format IPFIX records, for tests, benchmarks and the demo.
 *
 * The cluster is deterministic for a given --seed: N nodes, each an
 * exporter with its own loopback source address (127.0.1.<i>) and
 * observation domain (FNV-1 of its node name, as the agent does); pods in
 * three namespaces; ClusterIP Services in front of some pods; and flows of
 * every kind: intra-node (reported by its node), inter-node (reported by
 * both nodes, each knowing only its own pod), pod-to-Service and
 * to-external.  Every report of a flow grows its counters, so totals,
 * deltas and the sum of deltas are all consistent; the summary printed at
 * the end (and written as JSON with --summary-json) is what a receiver
 * must have seen.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "base/clock.h"
#include "base/err.h"
#include "cmd/cmd.h"
#include "ipfix/templates.h"
#include "ipfix/transport.h"

#define MAX_NODES 250
#define NAMESPACES 3
#define FLUSH_INTERVAL_NS 100000000ull /* paced streams: flush every 100 ms */

static const char *const namespaces[NAMESPACES] = {"frontend", "backend", "batch"};
static const char *const apps[NAMESPACES] = {"web", "api", "worker"};

struct node {
    char name[32];
    char source_ip[16]; /* exporter source address */
    uint32_t domain;    /* observation domain id */
    struct fv_ipfix_exporter *exp;
    uint64_t records;
};

struct pod {
    char name[48];
    const char *ns;
    int node; /* index into nodes */
    uint8_t ip4[4];
    uint8_t ip6[16];
};

enum kind { KIND_INTRA, KIND_INTER, KIND_SERVICE, KIND_EXTERNAL, KIND_COUNT };

/* The NetworkPolicy that admitted (or denied) one side of a flow; name ""
 * when no policy applies. */
struct policy {
    const char *name, *ns, *rule;
    uint8_t action; /* 1 allow, 2 drop, 3 reject; 0 with no policy */
};

struct flow {
    enum kind kind;
    bool ipv6;
    int src, dst;           /* pod indexes; dst unused for external */
    uint8_t ext_ip[16];     /* external destination */
    uint8_t cluster_ip[16]; /* service ClusterIP */
    char svc_name[64];      /* "namespace/name:port" */
    uint16_t svc_port;
    uint16_t sport, dport;
    uint8_t proto;
    uint32_t start;
    struct policy in, eg;                  /* ingress (destination side), egress (source side) */
    uint64_t pkts, octets, rpkts, roctets; /* totals so far */
};

struct gen {
    struct node nodes[MAX_NODES];
    int nnodes;
    struct pod *pods;
    int npods;
    struct flow *flows;
    int nflows;
    uint64_t rng;
    uint64_t records, octet_delta_sum, packet_delta_sum;
};

static uint32_t rnd(struct gen *g)
{
    /* xorshift64*: fast, and deterministic for a seed. */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return (uint32_t)((g->rng * 2685821657736338717ull) >> 32);
}

/* The cluster's NetworkPolicies, as the agents would attribute them:
 *   - backend/allow-frontend admits traffic into backend Pods (ingress-0),
 *     and backend/default-deny isolates them from batch Pods (drop);
 *   - batch/batch-egress admits the egress of batch Pods (egress-0);
 *   - frontend/deny-external rejects frontend Pods' external calls that are
 *     not HTTPS (a reject rule, as Antrea-native policies have).
 * Deterministic, so that tests can recompute it from --summary-json. */
static void set_policies(const struct gen *g, struct flow *fl)
{
    const char *sns = g->pods[fl->src].ns;
    const char *dns = fl->kind == KIND_EXTERNAL ? "" : g->pods[fl->dst].ns;

    fl->in = fl->eg = (struct policy){"", "", "", 0};
    if (strcmp(sns, "batch") == 0)
        fl->eg = (struct policy){"batch-egress", "batch", "egress-0", 1};
    if (strcmp(dns, "backend") == 0) {
        if (strcmp(sns, "batch") == 0)
            fl->in = (struct policy){"default-deny", "backend", "", 2};
        else
            fl->in = (struct policy){"allow-frontend", "backend", "ingress-0", 1};
    }
    if (fl->kind == KIND_EXTERNAL && strcmp(sns, "frontend") == 0 && fl->dport != 443)
        fl->eg = (struct policy){"deny-external", "frontend", "egress-0", 3};
}

static void build_cluster(struct gen *g, int pods_per_node, int nflows, int ipv6_every)
{
    g->npods = g->nnodes * pods_per_node;
    g->pods = calloc((size_t)g->npods, sizeof(*g->pods));
    g->flows = calloc((size_t)nflows, sizeof(*g->flows));
    g->nflows = nflows;
    for (int i = 0; i < g->nnodes; i++) {
        struct node *n = &g->nodes[i];
        snprintf(n->name, sizeof(n->name), "node-%d", i + 1);
        snprintf(n->source_ip, sizeof(n->source_ip), "127.0.1.%d", i + 1);
        n->domain = fv_agent_domain_id(n->name); /* as the agent does */
    }
    for (int i = 0; i < g->npods; i++) {
        struct pod *p = &g->pods[i];
        int node = i % g->nnodes, k = i / g->nnodes;
        p->node = node;
        p->ns = namespaces[k % NAMESPACES];
        snprintf(p->name, sizeof(p->name), "%s-%d-%d", apps[k % NAMESPACES], node + 1, k);
        uint8_t v4[4] = {10, 244, (uint8_t)(node + 1), (uint8_t)(10 + k)};
        memcpy(p->ip4, v4, 4);
        inet_pton(AF_INET6, "fd00:10:244::", p->ip6);
        p->ip6[7] = (uint8_t)(node + 1);
        p->ip6[15] = (uint8_t)(10 + k);
    }
    for (int f = 0; f < nflows; f++) {
        struct flow *fl = &g->flows[f];
        fl->kind = (enum kind)(f % KIND_COUNT);
        fl->ipv6 = ipv6_every > 0 && f % ipv6_every == ipv6_every - 1;
        fl->src = (int)(rnd(g) % (uint32_t)g->npods);
        int src_node = g->pods[fl->src].node;
        if (fl->kind == KIND_INTRA || g->nnodes == 1) {
            /* A different pod on the same node. */
            fl->dst = (fl->src + g->nnodes) % g->npods;
            if (fl->kind == KIND_INTER)
                fl->kind = KIND_INTRA;
        } else {
            int other = (src_node + 1 + (int)(rnd(g) % (uint32_t)(g->nnodes - 1))) % g->nnodes;
            fl->dst = other + g->nnodes * (int)(rnd(g) % (uint32_t)pods_per_node);
        }
        fl->proto = f % 7 == 6 ? 17 : 6;
        fl->sport = (uint16_t)(32768 + f % 28000);
        fl->dport = fl->proto == 17 ? 53 : (uint16_t)(f % 3 == 0 ? 443 : 8080);
        if (fl->kind == KIND_SERVICE) {
            int svc = fl->dst % 16;
            const struct pod *d = &g->pods[fl->dst];
            uint8_t v4[4] = {10, 96, 0, (uint8_t)(10 + svc)};
            if (fl->ipv6) {
                inet_pton(AF_INET6, "fd00:10:96::", fl->cluster_ip);
                fl->cluster_ip[15] = (uint8_t)(10 + svc);
            } else {
                memcpy(fl->cluster_ip, v4, 4);
            }
            fl->svc_port = fl->proto == 17 ? 53 : 80;
            snprintf(fl->svc_name, sizeof(fl->svc_name), "%s/svc-%d:%s", d->ns, svc,
                     fl->proto == 17 ? "dns" : "http");
        }
        if (fl->kind == KIND_EXTERNAL) {
            if (fl->ipv6) {
                inet_pton(AF_INET6, "2001:db8::", fl->ext_ip);
                fl->ext_ip[15] = (uint8_t)(f % 250 + 1);
            } else {
                uint8_t v4[4] = {192, 0, 2, (uint8_t)(f % 250 + 1)};
                memcpy(fl->ext_ip, v4, 4);
            }
        }
        fl->start = fv_clock_wall_s() - (uint32_t)(rnd(g) % 60);
        set_policies(g, fl);
    }
}

static int send_record(struct gen *g, int node, struct fv_agent_rec *r)
{
    int rc = fv_ipfix_exporter_add(
        g->nodes[node].exp, r->ipv6 ? FV_TMPL_AGENT_V6 : FV_TMPL_AGENT_V4, fv_agent_rec_encode, r);
    if (rc < 0)
        return rc;
    g->nodes[node].records++;
    g->records++;
    g->octet_delta_sum += r->octets_delta;
    g->packet_delta_sum += r->packets_delta;
    return 0;
}

/* True when both nodes of the flow report it. */
static bool needs_two(const struct gen *g, const struct flow *fl)
{
    return fl->kind != KIND_EXTERNAL && g->pods[fl->src].node != g->pods[fl->dst].node;
}

/* Policy type 1 is a Kubernetes NetworkPolicy, 3 an Antrea NetworkPolicy
 * (the only kind with reject rules); 0 with no policy. */
static uint8_t policy_type(const struct policy *p)
{
    return p->action == 0 ? 0 : p->action == 3 ? 3 : 1;
}

static void set_ingress(struct fv_agent_rec *r, const struct policy *p)
{
    r->in_policy = p->name;
    r->in_policy_ns = p->ns;
    r->in_rule = p->rule;
    r->in_policy_type = policy_type(p);
    r->in_action = p->action;
}

static void set_egress(struct fv_agent_rec *r, const struct policy *p)
{
    r->eg_policy = p->name;
    r->eg_policy_ns = p->ns;
    r->eg_rule = p->rule;
    r->eg_policy_type = policy_type(p);
    r->eg_action = p->action;
}

/* Advances one flow and sends its report(s); returns records sent or < 0. */
static int report_flow(struct gen *g, struct flow *fl)
{
    const struct pod *s = &g->pods[fl->src], *d = &g->pods[fl->dst];
    struct fv_agent_rec r = {0};
    uint64_t pk = 1 + rnd(g) % 20, rpk = 1 + rnd(g) % 10;
    uint64_t oc = pk * (60 + rnd(g) % 1400), roc = rpk * (60 + rnd(g) % 600);
    int rc, sent = 0;

    /* A denied connection gets no answer. */
    if (fl->in.action > 1 || fl->eg.action > 1)
        rpk = roc = 0;
    fl->pkts += pk;
    fl->octets += oc;
    fl->rpkts += rpk;
    fl->roctets += roc;
    r.ipv6 = fl->ipv6;
    r.flow_start = fl->start;
    r.flow_end = fv_clock_wall_s();
    r.end_reason = 2;
    r.src_port = fl->sport;
    r.dst_port = fl->dport;
    r.proto = fl->proto;
    r.packets_total = fl->pkts;
    r.octets_total = fl->octets;
    r.packets_delta = pk;
    r.octets_delta = oc;
    r.rev_packets_total = fl->rpkts;
    r.rev_octets_total = fl->roctets;
    r.rev_packets_delta = rpk;
    r.rev_octets_delta = roc;
    memcpy(r.src_addr, fl->ipv6 ? s->ip6 : s->ip4, fl->ipv6 ? 16 : 4);
    if (fl->kind == KIND_EXTERNAL)
        memcpy(r.dst_addr, fl->ext_ip, 16);
    else
        memcpy(r.dst_addr, fl->ipv6 ? d->ip6 : d->ip4, fl->ipv6 ? 16 : 4);
    memcpy(r.cluster_ip, fl->cluster_ip, 16);
    r.svc_port = fl->svc_port;
    r.svc_port_name = fl->svc_name;
    r.tcp_state = fl->proto == 6 ? "ESTABLISHED" : "";
    r.src_pod = s->name;
    r.src_ns = s->ns;
    r.src_node = g->nodes[s->node].name;
    r.dst_pod = r.dst_ns = r.dst_node = "";
    set_egress(&r, &fl->eg);
    set_ingress(&r, &fl->in);
    if (fl->kind == KIND_EXTERNAL) {
        r.flow_type = 3;
        rc = send_record(g, s->node, &r);
        return rc < 0 ? rc : 1;
    }
    if (s->node == d->node) {
        r.flow_type = 1;
        r.dst_pod = d->name;
        r.dst_ns = d->ns;
        r.dst_node = g->nodes[d->node].name;
        rc = send_record(g, s->node, &r);
        return rc < 0 ? rc : 1;
    }
    /* Inter-node: each node knows only its own pod and its own side's
     * policy. */
    r.flow_type = 2;
    set_ingress(&r, &(struct policy){"", "", "", 0});
    rc = send_record(g, s->node, &r);
    if (rc < 0)
        return rc;
    sent++;
    set_egress(&r, &(struct policy){"", "", "", 0});
    set_ingress(&r, &fl->in);
    r.src_pod = r.src_ns = r.src_node = "";
    r.dst_pod = d->name;
    r.dst_ns = d->ns;
    r.dst_node = g->nodes[d->node].name;
    rc = send_record(g, d->node, &r);
    return rc < 0 ? rc : sent + 1;
}

static int flush_all(struct gen *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        int rc = fv_ipfix_exporter_flush(g->nodes[i].exp);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: flowvis generate [options]\n\n"
            "Sends the flow records of a simulated cluster as IPFIX, one exporter per node,\n"
            "in the agent's format (templates 256 IPv4 and 257 IPv6).\n\n"
            "options:\n"
            "  -c, --target HOST[:PORT][:PROTO]  collector (default 127.0.0.1:4739:udp)\n"
            "  -t, --transport udp|tcp|tls       transport (overrides PROTO of --target)\n"
            "  -n, --nodes N                     nodes, each its own exporter (default 3, max %d)\n"
            "      --pods-per-node N             pods per node (default 6)\n"
            "      --flows N                     distinct connections (default 1000)\n"
            "  -r, --records N                   records to send, then stop (default 10000;\n"
            "                                    0 with --duration: until the time is up)\n"
            "  -d, --duration SECONDS            stop after this long\n"
            "      --rate N                      records per second (default 0: flat out)\n"
            "      --seed N                      cluster and traffic seed (default 1)\n"
            "      --mtu BYTES                   UDP message budget (default 1400)\n"
            "      --ipv6-every N                every Nth flow is IPv6 (default 5, 0 = none)\n"
            "      --source-ip-base A.B.C        exporters bind A.B.C.<node> (default 127.0.1)\n"
            "      --tls-ca FILE                 verify the collector against this CA\n"
            "      --tls-cert FILE               client certificate for mutual TLS\n"
            "      --tls-key FILE                client private key for mutual TLS\n"
            "      --summary-json FILE           write what was sent as JSON (- for stdout), with\n"
            "                                    per flow its 5-tuple, Pods and totals\n"
            "  -h, --help                        this help\n\n"
            "Flows rotate through four kinds: intra-node, inter-node (reported by both nodes),\n"
            "pod-to-Service and to-external.  NetworkPolicies: backend/allow-frontend admits\n"
            "traffic into backend Pods, backend/default-deny drops batch -> backend,\n"
            "batch/batch-egress admits batch Pods' egress, frontend/deny-external rejects\n"
            "frontend Pods' external calls other than to port 443 (denied flows get no\n"
            "reverse traffic).  At the end it prints what it sent on stderr.\n",
            MAX_NODES);
}

struct gen_opts {
    const char *target, *transport, *summary, *source_base;
    unsigned long long nodes, pods, flows, records, duration, rate, seed, mtu, ipv6_every;
    bool records_given;
    struct fv_tls_files tls;
};

static int parse_args(int argc, char **argv, struct gen_opts *o)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 'c'},   {"transport", required_argument, NULL, 't'},
        {"nodes", required_argument, NULL, 'n'},    {"pods-per-node", required_argument, NULL, 1},
        {"flows", required_argument, NULL, 2},      {"records", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"rate", required_argument, NULL, 3},
        {"seed", required_argument, NULL, 4},       {"mtu", required_argument, NULL, 5},
        {"ipv6-every", required_argument, NULL, 6}, {"source-ip-base", required_argument, NULL, 7},
        {"tls-ca", required_argument, NULL, 8},     {"tls-cert", required_argument, NULL, 9},
        {"tls-key", required_argument, NULL, 10},   {"summary-json", required_argument, NULL, 11},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt, bad = 0;

    while ((opt = getopt_long(argc, argv, "c:t:n:r:d:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o->target = optarg;
            break;
        case 't':
            o->transport = optarg;
            break;
        case 'n':
            bad |= fv_cmd_parse_u64("--nodes", optarg, 1, MAX_NODES, &o->nodes);
            break;
        case 1:
            bad |= fv_cmd_parse_u64("--pods-per-node", optarg, 2, 200, &o->pods);
            break;
        case 2:
            bad |= fv_cmd_parse_u64("--flows", optarg, 1, 10000000, &o->flows);
            break;
        case 'r':
            bad |= fv_cmd_parse_u64("--records", optarg, 0, UINT64_MAX >> 1, &o->records);
            o->records_given = true;
            break;
        case 'd':
            bad |= fv_cmd_parse_u64("--duration", optarg, 1, 86400 * 365, &o->duration);
            break;
        case 3:
            bad |= fv_cmd_parse_u64("--rate", optarg, 0, 100000000, &o->rate);
            break;
        case 4:
            bad |= fv_cmd_parse_u64("--seed", optarg, 0, UINT64_MAX >> 1, &o->seed);
            break;
        case 5:
            bad |= fv_cmd_parse_u64("--mtu", optarg, 576, 65535, &o->mtu);
            break;
        case 6:
            bad |= fv_cmd_parse_u64("--ipv6-every", optarg, 0, 1000000, &o->ipv6_every);
            break;
        case 7:
            o->source_base = optarg;
            break;
        case 8:
            o->tls.ca = optarg;
            break;
        case 9:
            o->tls.cert = optarg;
            break;
        case 10:
            o->tls.key = optarg;
            break;
        case 11:
            o->summary = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (bad)
        return 2;
    if (optind < argc) {
        fprintf(stderr, "flowvis generate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->records_given && o->duration)
        o->records = 0;
    if (o->records == 0 && o->duration == 0) {
        fprintf(stderr, "flowvis generate: --records 0 needs --duration\n");
        return 2;
    }
    if ((o->tls.cert == NULL) != (o->tls.key == NULL)) {
        fprintf(stderr, "flowvis generate: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return -1;
}

/* The addresses of a flow as a receiver formats them (inet_ntop). */
static void flow_addrs(const struct gen *g, const struct flow *fl, char *src, char *dst, char *cip)
{
    const struct pod *s = &g->pods[fl->src], *d = &g->pods[fl->dst];
    int af = fl->ipv6 ? AF_INET6 : AF_INET;
    static const uint8_t zero[16];

    inet_ntop(af, fl->ipv6 ? s->ip6 : s->ip4, src, INET6_ADDRSTRLEN);
    if (fl->kind == KIND_EXTERNAL)
        inet_ntop(af, fl->ext_ip, dst, INET6_ADDRSTRLEN);
    else
        inet_ntop(af, fl->ipv6 ? d->ip6 : d->ip4, dst, INET6_ADDRSTRLEN);
    cip[0] = '\0';
    if (memcmp(fl->cluster_ip, zero, fl->ipv6 ? 16 : 4) != 0)
        inet_ntop(af, fl->cluster_ip, cip, INET6_ADDRSTRLEN);
}

/* ,"perFlow":[...]: per connection that was reported, its 5-tuple, Pods
 * and the totals it reached, which are the sums of its deltas that an
 * aggregator must export (an inter-node flow once, not once per node).
 * Left out above 100000 flows (benchmarks), with "perFlowOmitted". */
static void write_flows(const struct gen *g, FILE *f)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], cip[INET6_ADDRSTRLEN];
    bool first = true;

    if (g->nflows > 100000) {
        fprintf(f, ",\"perFlowOmitted\":true");
        return;
    }
    fprintf(f, ",\"perFlow\":[");
    for (int i = 0; i < g->nflows; i++) {
        const struct flow *fl = &g->flows[i];
        const struct pod *s = &g->pods[fl->src], *d = &g->pods[fl->dst];
        bool ext = fl->kind == KIND_EXTERNAL;
        if (fl->pkts == 0)
            continue;
        flow_addrs(g, fl, src, dst, cip);
        fprintf(f,
                "%s{\"sourceIP\":\"%s\",\"destinationIP\":\"%s\",\"sourceTransportPort\":%u,"
                "\"destinationTransportPort\":%u,\"protocolIdentifier\":%u,"
                "\"packetDeltaCount\":%llu,\"octetDeltaCount\":%llu,"
                "\"reversePacketDeltaCount\":%llu,\"reverseOctetDeltaCount\":%llu,"
                "\"flowType\":%d,\"sourcePodName\":\"%s\",\"sourcePodNamespace\":\"%s\","
                "\"sourceNodeName\":\"%s\",\"destinationPodName\":\"%s\","
                "\"destinationPodNamespace\":\"%s\",\"destinationNodeName\":\"%s\","
                "\"destinationClusterIP\":\"%s\",\"destinationServicePortName\":\"%s\","
                "\"ingressNetworkPolicyName\":\"%s\",\"ingressNetworkPolicyNamespace\":\"%s\","
                "\"ingressNetworkPolicyRuleAction\":%u,\"egressNetworkPolicyName\":\"%s\","
                "\"egressNetworkPolicyNamespace\":\"%s\",\"egressNetworkPolicyRuleAction\":%u}",
                first ? "" : ",", src, dst, fl->sport, fl->dport, fl->proto,
                (unsigned long long)fl->pkts, (unsigned long long)fl->octets,
                (unsigned long long)fl->rpkts, (unsigned long long)fl->roctets,
                ext ? 3 : 1 + (s->node != d->node), s->name, s->ns, g->nodes[s->node].name,
                ext ? "" : d->name, ext ? "" : d->ns, ext ? "" : g->nodes[d->node].name, cip,
                fl->svc_name, fl->in.name, fl->in.ns, fl->in.action, fl->eg.name, fl->eg.ns,
                fl->eg.action);
        first = false;
    }
    fprintf(f, "]");
}

static void write_summary(const struct gen *g, const struct gen_opts *o, double secs)
{
    FILE *f = stdout;
    bool close_it = false;

    fprintf(stderr, "flowvis generate: sent records=%llu octetDeltaCount=%llu in %.2fs (%.0f/s)\n",
            (unsigned long long)g->records, (unsigned long long)g->octet_delta_sum, secs,
            secs > 0 ? (double)g->records / secs : 0.0);
    if (o->summary == NULL)
        return;
    if (strcmp(o->summary, "-") != 0) {
        f = fopen(o->summary, "w");
        if (f == NULL) {
            perror(o->summary);
            return;
        }
        close_it = true;
    }
    fprintf(f,
            "{\"records\":%llu,\"octetDeltaCount\":%llu,\"packetDeltaCount\":%llu,"
            "\"flows\":%d,\"seconds\":%.3f,\"exporters\":[",
            (unsigned long long)g->records, (unsigned long long)g->octet_delta_sum,
            (unsigned long long)g->packet_delta_sum, g->nflows, secs);
    for (int i = 0; i < g->nnodes; i++) {
        struct fv_ipfix_exporter_stats st;
        fv_ipfix_exporter_stats(g->nodes[i].exp, &st);
        fprintf(f,
                "%s{\"node\":\"%s\",\"address\":\"%s\",\"observationDomainId\":%u,"
                "\"records\":%llu,\"messages\":%llu}",
                i ? "," : "", g->nodes[i].name, g->nodes[i].source_ip, g->nodes[i].domain,
                (unsigned long long)st.records, (unsigned long long)st.messages);
    }
    fprintf(f, "]");
    write_flows(g, f);
    fprintf(f, "}\n");
    if (close_it)
        fclose(f);
}

int fv_cmd_generate(int argc, char **argv)
{
    static const struct fv_ipfix_template_def *const tmpls[] = {&fv_tmpl_agent_v4,
                                                                &fv_tmpl_agent_v6};
    struct gen_opts o = {.target = "127.0.0.1:4739",
                         .source_base = "127.0.1",
                         .nodes = 3,
                         .pods = 6,
                         .flows = 1000,
                         .records = 10000,
                         .seed = 1,
                         .ipv6_every = 5};
    struct gen *g;
    int rc, status = 1;
    uint64_t t0, next_flow = 0, last_flush = 0;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return 1;
    struct fv_ipfix_exporter_cfg ecfg = {.mtu = o.mtu, .tls = o.tls};
    if (fv_cmd_parse_addr("generate", "--target", o.target, o.transport, FV_PROTO_UDP, &ecfg.addr) <
        0)
        goto out;
    g->nnodes = (int)o.nodes;
    g->rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
    build_cluster(g, (int)o.pods, (int)o.flows, (int)o.ipv6_every);
    if (g->pods == NULL || g->flows == NULL)
        goto out;
    bool v6_target = strchr(ecfg.addr.host, ':') != NULL;
    for (int i = 0; i < g->nnodes; i++) {
        struct node *n = &g->nodes[i];
        snprintf(n->source_ip, sizeof(n->source_ip), "%s.%d", o.source_base, i + 1);
        ecfg.domain = n->domain;
        /* Distinct loopback sources only make sense towards IPv4 loopback. */
        ecfg.bind_ip = v6_target || strncmp(ecfg.addr.host, "127.", 4) != 0 ? NULL : n->source_ip;
        rc = fv_ipfix_exporter_new(&ecfg, tmpls, 2, &n->exp);
        if (rc == 0)
            rc = fv_ipfix_exporter_connect(n->exp);
        if (rc < 0) {
            fprintf(stderr, "flowvis generate: cannot connect %s to %s:%u (%s): %s\n", n->name,
                    ecfg.addr.host, ecfg.addr.port, fv_proto_name(ecfg.addr.proto),
                    fv_strerror(rc));
            goto out;
        }
    }
    t0 = fv_clock_mono_ns();
    for (;;) {
        uint64_t now = fv_clock_mono_ns();
        if (o.records && g->records >= o.records)
            break;
        if (o.duration && now - t0 >= o.duration * 1000000000ull)
            break;
        uint64_t budget = 256;
        if (o.rate) {
            uint64_t allowed = (now - t0) / 1000 * o.rate / 1000000;
            if (allowed <= g->records) {
                struct timespec ts = {0, 200000};
                /* A paced stream must not sit in half-full messages. */
                if (now - last_flush >= FLUSH_INTERVAL_NS) {
                    rc = flush_all(g);
                    if (rc < 0)
                        goto fail;
                    last_flush = now;
                }
                nanosleep(&ts, NULL);
                continue;
            }
            budget = allowed - g->records;
        }
        while (budget > 0 && (o.records == 0 || g->records < o.records)) {
            /* Land exactly on --records: the last record must come from a
             * flow that one node reports. */
            for (int tries = 0; o.records && o.records - g->records == 1 && tries < g->nflows;
                 tries++) {
                if (!needs_two(g, &g->flows[next_flow % (uint64_t)g->nflows]))
                    break;
                next_flow++;
            }
            rc = report_flow(g, &g->flows[next_flow++ % (uint64_t)g->nflows]);
            if (rc < 0)
                goto fail;
            budget -= (uint64_t)rc < budget ? (uint64_t)rc : budget;
        }
    }
    rc = flush_all(g);
    if (rc < 0)
        goto fail;
    write_summary(g, &o, (double)(fv_clock_mono_ns() - t0) / 1e9);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "flowvis generate: export failed: %s\n", fv_strerror(rc));
out:
    for (int i = 0; i < g->nnodes; i++)
        fv_ipfix_exporter_free(g->nodes[i].exp);
    free(g->pods);
    free(g->flows);
    free(g);
    return status;
}
