/*
 * bench_policy.c - how fast NetworkPolicies are compiled and evaluated
 * (k8s/policy.h), and how much memory the compiled form takes.
 *
 * A cluster is built in memory as a watch would deliver it, one json_t per
 * object through fv_k8s_builder_add(): N Nodes with a /24 and a /64 Pod
 * CIDR each, namespaces labelled team/env, dual-stack Pods of ten apps
 * (labels app, tier, version, pod-template-hash; named container ports
 * http, grpc, metrics) spread over the namespaces and Nodes, and
 * NetworkPolicies: in every second namespace a default-deny, then per app
 * an ingress policy whose rules use podSelector (matchLabels and
 * matchExpressions In), namespaceSelector with podSelector, ipBlock with
 * except, named ports, numeric ports and endPort ranges, and for some apps
 * an egress policy (to a podSelector, to kube-system by
 * kubernetes.io/metadata.name, to 0.0.0.0/0 except 10.0.0.0/8).
 *
 * Compile time is the time fv_k8s_builder_finish() takes with the policies
 * minus the time it takes without them (the same objects otherwise), best
 * of the repetitions.  Memory is stats.policy_memory: the compiled
 * policies in the pool plus the indexes they add (namespace -> policies,
 * Pod -> the policies that may select it, Node address -> Node).
 *
 * Evaluation calls fv_k8s_policy_evaluate() (ingress and egress, one call)
 * on a fixed set of random flows, pass after pass: Pod to Pod (70%, one in
 * five IPv6, mostly to a declared port), external client to Pod (10%), Pod
 * to an external address (10%), and an unknown address inside a Pod CIDR
 * to a Pod (10%).  The verdicts are counted, so nothing is optimised away,
 * and printed.  Times are CLOCK_THREAD_CPUTIME_ID on one pinned core.
 *
 *     bench_policy [--pods N] [--namespaces N] [--policies N] [--nodes N]
 *                  [--flows N] [--evals N] [--reps N] [--cpu N]
 *
 * Output is a table for people and one "RESULT key=value ..." line for
 * scripts (bench/run.sh).  Exit status 1 when the cluster could not be
 * built; the figures are void.
 */
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/ip.h"
#include "k8s/inventory.h"
#include "k8s/policy.h"

#define APPS 10

static const char *const apps[APPS] = {"web",  "api",    "cart",  "db",     "cache",
                                       "auth", "search", "queue", "worker", "report"};
static const char *const tiers[APPS] = {"frontend", "frontend", "backend", "data",  "data",
                                        "backend",  "backend",  "data",    "batch", "batch"};

struct opts {
    unsigned long pods, namespaces, policies, nodes, flows, evals;
    int reps, cpu;
};

/* The generated objects, added to a fresh builder for each repetition. */
struct cluster {
    json_t **base; /* Nodes, Namespaces, Pods */
    size_t n_base;
    json_t **policies;
    size_t n_policies;
    size_t cap_base, cap_policies;
    struct fv_np_flow *flows;
    size_t n_flows;
    uint64_t rng;
};

static void die(const char *what)
{
    fprintf(stderr, "bench_policy: %s\n", what);
    exit(1);
}

static uint32_t rnd(struct cluster *c)
{
    /* xorshift64*: deterministic, so every run evaluates the same flows. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * 2685821657736338717ull) >> 32);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void push(json_t ***v, size_t *n, size_t *cap, json_t *obj)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = realloc(*v, *cap * sizeof(**v));
        if (*v == NULL)
            die("out of memory");
    }
    (*v)[(*n)++] = obj;
}

/* Parses a printf-formatted JSON object. */
static json_t *obj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *obj(const char *fmt, ...)
{
    char text[4096];
    json_error_t je;
    va_list ap;
    json_t *o;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(text))
        die("an object does not fit the text buffer");
    o = json_loads(text, 0, &je);
    if (o == NULL) {
        fprintf(stderr, "bench_policy: %s in %s\n", je.text, text);
        exit(1);
    }
    return o;
}

static void add_base(struct cluster *c, json_t *o)
{
    push(&c->base, &c->n_base, &c->cap_base, o);
}

static void add_policy(struct cluster *c, json_t *o)
{
    push(&c->policies, &c->n_policies, &c->cap_policies, o);
}

/* Pod p: namespace p % namespaces, app p / namespaces % APPS, Node p % nodes,
 * IPs 10.(244 + node / 256).(node % 256).(2 + p / nodes) and the same in v6. */
static void pod_ips(const struct opts *o, unsigned long p, struct fv_ip *v4, struct fv_ip *v6)
{
    unsigned long node = p % o->nodes, host = 2 + p / o->nodes;
    char s[64];

    snprintf(s, sizeof(s), "10.%lu.%lu.%lu", 244 + node / 256, node % 256, host);
    fv_ip_parse(s, v4);
    snprintf(s, sizeof(s), "fd00:10:%lx:%lx::%lx", 244 + node / 256, node % 256, host);
    fv_ip_parse(s, v6);
}

static void build_nodes_and_namespaces(struct cluster *c, const struct opts *o)
{
    for (unsigned long n = 0; n < o->nodes; n++)
        add_base(c, obj("{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                        "\"node-%lu\"},\"spec\":{\"podCIDRs\":[\"10.%lu.%lu.0/24\","
                        "\"fd00:10:%lx:%lx::/64\"]},\"status\":{\"addresses\":[{\"type\":"
                        "\"InternalIP\",\"address\":\"192.168.%lu.%lu\"}]}}",
                        n, 244 + n / 256, n % 256, 244 + n / 256, n % 256, n / 250, 1 + n % 250));
    for (unsigned long i = 0; i < o->namespaces; i++)
        add_base(c, obj("{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                        "\"ns-%lu\",\"labels\":{\"kubernetes.io/metadata.name\":\"ns-%lu\","
                        "\"team\":\"team-%lu\",\"env\":\"%s\"}}}",
                        i, i, i % 7, i % 3 ? "prod" : "staging"));
    add_base(c, obj("{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                    "\"kube-system\",\"labels\":{\"kubernetes.io/metadata.name\":"
                    "\"kube-system\"}}}"));
}

static void build_pods(struct cluster *c, const struct opts *o)
{
    char v4[64], v6[64];

    for (unsigned long p = 0; p < o->pods; p++) {
        unsigned long a = p / o->namespaces % APPS;
        struct fv_ip ip4, ip6;
        pod_ips(o, p, &ip4, &ip6);
        fv_ip_str(&ip4, v4);
        fv_ip_str(&ip6, v6);
        add_base(c,
                 obj("{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
                     "\"%s-7d9f8c6b5-%05lu\",\"namespace\":\"ns-%lu\",\"labels\":{\"app\":\"%s\","
                     "\"tier\":\"%s\",\"version\":\"v%lu\",\"pod-template-hash\":\"7d9f8c6b5\"}},"
                     "\"spec\":{\"nodeName\":\"node-%lu\",\"containers\":[{\"name\":\"main\","
                     "\"ports\":[{\"name\":\"http\",\"containerPort\":%lu},{\"name\":\"grpc\","
                     "\"containerPort\":9000},{\"name\":\"metrics\",\"containerPort\":9090}]}]},"
                     "\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"%s\"},{\"ip\":"
                     "\"%s\"}]}}",
                     apps[a], p, p % o->namespaces, apps[a], tiers[a], 1 + p % 3, p % o->nodes,
                     8080 + a, v4, v6));
    }
}

static void build_policy(struct cluster *c, unsigned long ns, unsigned long a, unsigned long k)
{
    unsigned long peer = (a + 1 + k) % APPS;

    add_policy(c,
               obj("{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
                   "\"metadata\":{\"name\":\"allow-%s-%lu\",\"namespace\":\"ns-%lu\"},"
                   "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"%s\"}},"
                   "\"ingress\":["
                   "{\"from\":[{\"podSelector\":{\"matchExpressions\":[{\"key\":\"tier\","
                   "\"operator\":\"In\",\"values\":[\"frontend\",\"%s\"]}]}}],"
                   "\"ports\":[{\"port\":\"http\"},{\"port\":\"grpc\"}]},"
                   "{\"from\":[{\"namespaceSelector\":{\"matchLabels\":{\"env\":\"prod\","
                   "\"team\":\"team-%lu\"}},\"podSelector\":{\"matchLabels\":{\"app\":\"%s\"}}}],"
                   "\"ports\":[{\"port\":8080,\"endPort\":8089}]},"
                   "{\"from\":[{\"ipBlock\":{\"cidr\":\"0.0.0.0/0\",\"except\":[\"10.0.0.0/8\","
                   "\"192.168.0.0/16\"]}},{\"ipBlock\":{\"cidr\":\"2001:db8::/32\"}}],"
                   "\"ports\":[{\"protocol\":\"TCP\",\"port\":\"metrics\"},{\"protocol\":"
                   "\"UDP\",\"port\":9125}]}]}}",
                   apps[a], k, ns, apps[a], tiers[peer], (ns + k) % 7, apps[peer]));
}

static void build_egress_policy(struct cluster *c, unsigned long ns, unsigned long a)
{
    add_policy(c,
               obj("{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
                   "\"metadata\":{\"name\":\"egress-%s\",\"namespace\":\"ns-%lu\"},"
                   "\"spec\":{\"podSelector\":{\"matchLabels\":{\"app\":\"%s\"}},"
                   "\"policyTypes\":[\"Egress\"],\"egress\":["
                   "{\"to\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"db\"}}}],"
                   "\"ports\":[{\"port\":8083}]},"
                   "{\"to\":[{\"namespaceSelector\":{\"matchLabels\":{"
                   "\"kubernetes.io/metadata.name\":\"kube-system\"}}}],"
                   "\"ports\":[{\"protocol\":\"UDP\",\"port\":53}]},"
                   "{\"to\":[{\"ipBlock\":{\"cidr\":\"0.0.0.0/0\",\"except\":[\"10.0.0.0/8\"]}}],"
                   "\"ports\":[{\"port\":443}]},"
                   "{\"to\":[{\"namespaceSelector\":{}}],\"ports\":[{\"port\":\"http\"}]}]}}",
                   apps[a], ns, apps[a]));
}

/* policies spread evenly over the namespaces: a default-deny in every
 * second one, then ingress policies per app, and egress for some apps. */
static void build_policies(struct cluster *c, const struct opts *o)
{
    unsigned long per_ns = o->policies / o->namespaces, extra = o->policies % o->namespaces;

    for (unsigned long ns = 0; ns < o->namespaces; ns++) {
        unsigned long want = per_ns + (ns < extra), made = 0;
        if (want > 0 && ns % 2 == 0) {
            add_policy(c, obj("{\"kind\":\"NetworkPolicy\",\"apiVersion\":"
                              "\"networking.k8s.io/v1\",\"metadata\":{\"name\":\"default-deny\","
                              "\"namespace\":\"ns-%lu\"},\"spec\":{\"podSelector\":{},"
                              "\"policyTypes\":[\"Ingress\"]}}",
                              ns));
            made++;
        }
        for (unsigned long k = 0; made < want; k++) {
            unsigned long a = (ns + k) % APPS;
            if (k % 3 == 2)
                build_egress_policy(c, ns, a);
            else
                build_policy(c, ns, a, k);
            made++;
        }
    }
}

static void build_flows(struct cluster *c, const struct opts *o)
{
    c->flows = calloc(o->flows, sizeof(*c->flows));
    if (c->flows == NULL)
        die("out of memory");
    for (unsigned long i = 0; i < o->flows; i++) {
        struct fv_np_flow *f = &c->flows[i];
        unsigned long src = rnd(c) % o->pods, dst = rnd(c) % o->pods, kind = rnd(c) % 10;
        bool v6 = rnd(c) % 5 == 0 && kind < 7;
        struct fv_ip s4, s6, d4, d6;
        pod_ips(o, src, &s4, &s6);
        pod_ips(o, dst, &d4, &d6);
        f->src = v6 ? s6 : s4;
        f->dst = v6 ? d6 : d4;
        f->proto = rnd(c) % 10 == 0 ? IPPROTO_UDP : IPPROTO_TCP;
        /* Mostly a port the destination declares, sometimes another. */
        f->dport = (uint16_t)(rnd(c) % 5 == 0 ? 1 + rnd(c) % 65535
                              : rnd(c) % 2    ? 8080 + dst / o->namespaces % APPS
                                              : 9000 + 90 * (rnd(c) % 2));
        if (kind == 7) {
            fv_ip_parse("203.0.113.7", &f->src);
        } else if (kind == 8) {
            fv_ip_parse(rnd(c) % 2 ? "198.51.100.9" : "10.96.0.10", &f->dst);
            f->dport = rnd(c) % 2 ? 443 : 53;
        } else if (kind == 9) {
            /* An address of a Pod CIDR that no Pod holds (hosts from 250). */
            f->src = s4;
            f->src.a[3] = (uint8_t)(250 + rnd(c) % 5);
        }
    }
    c->n_flows = o->flows;
}

static struct fv_k8s_inventory *build(const struct cluster *c, bool with_policies, double *ns)
{
    struct fv_k8s_builder *b;
    struct fv_k8s_inventory *inv;
    double t;

    if (fv_k8s_builder_new(&b) < 0)
        die("out of memory");
    for (size_t i = 0; i < c->n_base; i++)
        if (fv_k8s_builder_add(b, FV_K8S_KIND_NONE, c->base[i]) < 0)
            die("a generated object was rejected");
    for (size_t i = 0; with_policies && i < c->n_policies; i++)
        if (fv_k8s_builder_add(b, FV_K8S_KIND_NONE, c->policies[i]) < 0)
            die("a generated policy was rejected");
    t = now_ns();
    if (fv_k8s_builder_finish(b, &inv) < 0)
        die("out of memory");
    *ns = now_ns() - t;
    return inv;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Best compile time in ns: finish with policies minus finish without. */
static double measure_compile(const struct cluster *c, int reps)
{
    double best_with = 1e30, best_without = 1e30, t;

    for (int i = 0; i < reps; i++) {
        fv_k8s_inventory_free(build(c, false, &t));
        best_without = t < best_without ? t : best_without;
        fv_k8s_inventory_free(build(c, true, &t));
        best_with = t < best_with ? t : best_with;
    }
    return best_with > best_without ? best_with - best_without : 0;
}

/* ns per evaluation of each repetition; counts[dir][verdict]. */
static void measure_eval(const struct cluster *c, const struct fv_k8s_inventory *inv,
                         unsigned long evals, int reps, double *t, uint64_t counts[2][4])
{
    struct fv_np_result in, eg;

    for (int r = 0; r < reps; r++) {
        double t0 = now_ns();
        for (unsigned long i = 0; i < evals; i++) {
            fv_k8s_policy_evaluate(inv, &c->flows[i % c->n_flows], &in, &eg);
            counts[0][in.verdict & 3]++;
            counts[1][eg.verdict & 3]++;
        }
        t[r] = (now_ns() - t0) / (double)evals;
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_policy [--pods N] [--namespaces N] [--policies N] [--nodes N]\n"
                 "                    [--flows N] [--evals N] [--reps N] [--cpu N]\n"
                 "  --pods N        Pods (default 5000)\n"
                 "  --namespaces N  namespaces they and the policies spread over (default 50)\n"
                 "  --policies N    NetworkPolicies (default 500)\n"
                 "  --nodes N       Nodes, one Pod CIDR each (default 50)\n"
                 "  --flows N       distinct random flows (default 100000)\n"
                 "  --evals N       evaluations per repetition (default 2000000)\n"
                 "  --reps N        repetitions; best and median are printed (default 7)\n"
                 "  --cpu N         core to pin to (default: the one it starts on)\n");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"pods", required_argument, NULL, 'p'},     {"namespaces", required_argument, NULL, 'n'},
        {"policies", required_argument, NULL, 'P'}, {"nodes", required_argument, NULL, 'N'},
        {"flows", required_argument, NULL, 'f'},    {"evals", required_argument, NULL, 'e'},
        {"reps", required_argument, NULL, 'r'},     {"cpu", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;
        switch (opt) {
        case 'p':
            o->pods = v;
            break;
        case 'n':
            o->namespaces = v;
            break;
        case 'P':
            o->policies = v;
            break;
        case 'N':
            o->nodes = v;
            break;
        case 'f':
            o->flows = v;
            break;
        case 'e':
            o->evals = v;
            break;
        case 'r':
            o->reps = (int)v;
            break;
        case 'c':
            o->cpu = (int)v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    /* Hosts 2..249 of each Node's /24 hold Pods; 250.. stay free. */
    if (o->pods < 1 || o->namespaces < 1 || o->nodes < 1 || o->nodes > 2560 ||
        o->pods > 248 * o->nodes || o->flows < 1 || o->evals < 1 || o->reps < 1 || o->reps > 100) {
        usage(stderr);
        exit(2);
    }
}

static int pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        cpu = sched_getcpu();
    if (cpu < 0)
        cpu = 0;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        printf("  (could not pin to cpu %d: running unpinned)\n", cpu);
    return cpu;
}

static void print_verdicts(uint64_t counts[2][4])
{
    static const char *const dirs[2] = {"ingress", "egress"};

    for (int d = 0; d < 2; d++) {
        uint64_t total = counts[d][0] + counts[d][1] + counts[d][2] + counts[d][3];
        printf("  %-7s verdicts:", dirs[d]);
        for (int v = 0; v < 4; v++)
            printf(" %s %.1f%%", fv_np_verdict_name((enum fv_np_verdict)v),
                   100.0 * (double)counts[d][v] / (double)(total ? total : 1));
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.pods = 5000,
                     .namespaces = 50,
                     .policies = 500,
                     .nodes = 50,
                     .flows = 100000,
                     .evals = 2000000,
                     .reps = 7,
                     .cpu = -1};
    struct cluster c = {.rng = 0x9e3779b97f4a7c15ull};
    uint64_t counts[2][4] = {{0}};
    const struct fv_k8s_inventory_stats *st;
    struct fv_k8s_inventory *inv;
    double compile_ns, finish_ns, *t;

    parse_args(argc, argv, &o);
    printf("bench_policy: NetworkPolicy compilation and evaluation, one core\n");
    build_nodes_and_namespaces(&c, &o);
    build_pods(&c, &o);
    build_policies(&c, &o);
    build_flows(&c, &o);
    printf("  pinned to cpu %d, %d repetitions, CPU time of this thread\n", pin(o.cpu), o.reps);
    inv = build(&c, true, &finish_ns);
    st = fv_k8s_inventory_stats(inv);
    if (st->bad_values != 0 || st->skipped != 0)
        fprintf(stderr, "bench_policy: %zu bad values: %s\n", st->bad_values, st->first_issue);
    printf("  cluster: %zu Pods, %zu namespaces, %zu Nodes, %zu NetworkPolicies; %lu flows\n",
           st->pods, st->namespaces, st->nodes, fv_k8s_policy_count(inv), o.flows);
    compile_ns = measure_compile(&c, o.reps);
    printf("  compile: %.2f ms (all of finish with policies: %.2f ms); compiled policies and\n"
           "    their indexes (per namespace, per Pod, per Node address) %.1f KiB of the\n"
           "    inventory's %.1f MiB\n",
           compile_ns / 1e6, finish_ns / 1e6, (double)st->policy_memory / 1024.0,
           (double)st->memory / 1048576.0);

    t = calloc((size_t)o.reps, sizeof(*t));
    if (t == NULL)
        die("out of memory");
    measure_eval(&c, inv, o.evals, o.reps, t, counts);
    qsort(t, (size_t)o.reps, sizeof(*t), cmp_double);
    printf("  evaluate (ingress + egress): best %.1f ns, median %.1f ns per flow; "
           "best %.2f M, median %.2f M flows/s\n",
           t[0], t[o.reps / 2], 1e3 / t[0], 1e3 / t[o.reps / 2]);
    print_verdicts(counts);
    printf("RESULT case=policy pods=%zu namespaces=%zu policies=%zu flows=%lu "
           "compile_ms=%.3f policy_memory=%zu best_ns_per_flow=%.1f median_ns_per_flow=%.1f "
           "best_flows_per_s=%.0f median_flows_per_s=%.0f\n",
           st->pods, st->namespaces, st->policies, o.flows, compile_ns / 1e6, st->policy_memory,
           t[0], t[o.reps / 2], 1e9 / t[0], 1e9 / t[o.reps / 2]);
    free(t);
    fv_k8s_inventory_free(inv);
    for (size_t i = 0; i < c.n_base; i++)
        json_decref(c.base[i]);
    for (size_t i = 0; i < c.n_policies; i++)
        json_decref(c.policies[i]);
    free(c.base);
    free(c.policies);
    free(c.flows);
    return 0;
}
