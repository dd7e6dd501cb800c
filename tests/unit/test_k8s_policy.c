/*
 * test_k8s_policy.c - NetworkPolicy evaluation (k8s/policy.h): which policy
 * admits a flow, which isolates it, and what cannot be decided.
 *
 * Every case loads tests/unit/fixtures/policy/cluster.json, a dual-stack
 * two-node cluster in `kubectl get -o json` List form, together with one
 * file of NetworkPolicies from the same directory, and evaluates one flow:
 *
 *   node-a 10.244.1.0/24 fd00:10:244:1::/64, InternalIP 192.168.1.11, fd00:192:168:1::11
 *   node-b 10.244.2.0/24 fd00:10:244:2::/64, InternalIP 192.168.1.12, fd00:192:168:1::12
 *
 *   shop (team=shop, env=prod)
 *     web-1    app=web tier=frontend      10.244.1.10 fd00:10:244:1::10  http 8080, metrics 9090
 *     web-2    app=web tier=frontend      10.244.2.10 fd00:10:244:2::10  http 8080, metrics 9090
 *     cart-1   app=cart tier=backend      10.244.1.20 fd00:10:244:1::20  grpc 50051
 *     db-1     app=db tier=backend role=primary  10.244.2.30             postgres 5432
 *     batch-1  app=batch                  10.244.1.40                    http 80
 *     Service cart 10.96.0.20:80 -> grpc
 *   payments (team=payments, env=prod, pci=true)
 *     api-1    app=api                    10.244.2.50 fd00:10:244:2::50  https 8443,
 *                                                       stats 8125/UDP, diameter 3868/SCTP
 *     ledger-1 app=ledger tier=backend    10.244.1.60                    http 8080
 *   dev (env=dev)              web-dev   app=web         10.244.1.70
 *   monitoring (team=ops)      prom-1    app=prometheus  10.244.2.80
 *   legacy (no labels at all, not even kubernetes.io/metadata.name)  old-1  10.244.2.90
 *   ghost (no Namespace object)                          g-1       10.244.1.99
 *   kube-system: kube-proxy-b, hostNetwork on node-b     192.168.1.12
 *
 * Tests run from the repository root, or with FV_K8S_POLICY_FIXTURE_DIR.
 */
#include <setjmp.h> /* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ip.h"
#include "k8s/inventory.h"
#include "k8s/policy.h"

#ifndef FV_K8S_POLICY_FIXTURE_DIR
#define FV_K8S_POLICY_FIXTURE_DIR "tests/unit/fixtures/policy"
#endif
#ifndef FV_K8S_FIXTURE_DIR
#define FV_K8S_FIXTURE_DIR "tests/unit/fixtures/k8s"
#endif

/* ---- Helpers ---- */

static struct fv_ip ip(const char *s)
{
    struct fv_ip out;

    if (fv_ip_parse(s, &out) < 0)
        fail_msg("bad IP in the test: %s", s);
    return out;
}

static void add_file(struct fv_k8s_builder *b, const char *path)
{
    json_error_t je;
    json_t *list = json_load_file(path, 0, &je);
    char err[256];

    if (list == NULL)
        fail_msg("%s: line %d: %s", path, je.line, je.text);
    if (fv_k8s_builder_add_list(b, list, err, sizeof(err)) != 0)
        fail_msg("%s: %s", path, err);
    json_decref(list);
}

static void add_text(struct fv_k8s_builder *b, const char *text)
{
    json_error_t je;
    json_t *list = json_loads(text, 0, &je);
    char err[256];

    if (list == NULL)
        fail_msg("line %d: %s in\n%s", je.line, je.text, text);
    if (fv_k8s_builder_add_list(b, list, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    json_decref(list);
}

/* The policy cluster plus fixtures/policy/<policies>.json and/or text. */
static struct fv_k8s_inventory *load(const char *policies, const char *text)
{
    struct fv_k8s_builder *b;
    struct fv_k8s_inventory *inv;
    char path[256];

    assert_int_equal(fv_k8s_builder_new(&b), 0);
    add_file(b, FV_K8S_POLICY_FIXTURE_DIR "/cluster.json");
    if (policies != NULL) {
        snprintf(path, sizeof(path), "%s/%s.json", FV_K8S_POLICY_FIXTURE_DIR, policies);
        add_file(b, path);
    }
    if (text != NULL)
        add_text(b, text);
    assert_int_equal(fv_k8s_builder_finish(b, &inv), 0);
    return inv;
}

/* What one direction should give: a verdict, "ns/name" or NULL, a rule. */
struct want {
    enum fv_np_verdict verdict;
    const char *policy;
    const char *rule;
};

#define NOT_ISOLATED                                                                               \
    {                                                                                              \
        FV_NP_NOT_ISOLATED, NULL, ""                                                               \
    }
#define ALLOWED(p, r)                                                                              \
    {                                                                                              \
        FV_NP_ALLOWED, p, r                                                                        \
    }
#define DENIED(p)                                                                                  \
    {                                                                                              \
        FV_NP_DENIED, p, ""                                                                        \
    }
#define UNKNOWN                                                                                    \
    {                                                                                              \
        FV_NP_UNKNOWN, NULL, ""                                                                    \
    }

static struct fv_np_flow flow_of(const char *src, const char *dst, uint16_t dport, uint8_t proto)
{
    struct fv_np_flow f = {.src = ip(src), .dst = ip(dst), .dport = dport, .proto = proto};
    return f;
}

/* "" when got is what w says, else why not. */
static void check(const char *dir, const struct fv_np_result *got, const struct want *w, char *why,
                  size_t len)
{
    char name[160] = "-";
    int want_rule = -1;

    if (got->policy != NULL)
        snprintf(name, sizeof(name), "%s/%s", got->policy->ns, got->policy->name);
    if (w->verdict == FV_NP_ALLOWED)
        want_rule = atoi(strchr(w->rule, '-') + 1);
    why[0] = '\0';
    if (got->verdict != w->verdict || strcmp(name, w->policy ? w->policy : "-") != 0 ||
        strcmp(got->rule_name, w->rule) != 0 || got->rule != want_rule)
        snprintf(why, len, "%s: got %s %s %s (%d), want %s %s %s", dir,
                 fv_np_verdict_name(got->verdict), name, got->rule_name, got->rule,
                 fv_np_verdict_name(w->verdict), w->policy ? w->policy : "-", w->rule);
}

/* Evaluates f and compares both directions; false (with a printed reason)
 * on a mismatch. */
static bool expect(const struct fv_k8s_inventory *inv, const char *what, const struct fv_np_flow *f,
                   const struct want *in, const struct want *eg)
{
    struct fv_np_result ri, re;
    char why_in[400], why_eg[400];

    fv_k8s_policy_evaluate(inv, f, &ri, &re);
    check("ingress", &ri, in, why_in, sizeof(why_in));
    check("egress", &re, eg, why_eg, sizeof(why_eg));
    if (why_in[0] == '\0' && why_eg[0] == '\0')
        return true;
    print_error("%s\n    %s%s%s\n", what, why_in, why_in[0] && why_eg[0] ? "\n    " : "", why_eg);
    return false;
}

/* ---- The table ---- */

struct np_case {
    const char *policies; /* fixtures/policy/<policies>.json */
    const char *what;     /* the behaviour */
    const char *src;
    const char *dst;
    uint16_t dport;
    uint8_t proto;
    struct want in;
    struct want eg;
};

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP
#define SCTP IPPROTO_SCTP
#define ICMP IPPROTO_ICMP

/* Addresses of the cluster above. */
#define WEB1 "10.244.1.10"
#define WEB1_6 "fd00:10:244:1::10"
#define WEB2 "10.244.2.10"
#define CART "10.244.1.20"
#define CART_6 "fd00:10:244:1::20"
#define DB "10.244.2.30"
#define BATCH "10.244.1.40"
#define API "10.244.2.50"
#define LEDGER "10.244.1.60"
#define WEBDEV "10.244.1.70"
#define PROM "10.244.2.80"
#define OLD "10.244.2.90"
#define GHOST "10.244.1.99"
#define NODE_A "192.168.1.11"
#define NODE_A_6 "fd00:192:168:1::11"
#define NODE_B "192.168.1.12"
#define NO_POD "10.244.1.200" /* inside node-a's Pod CIDR, no Pod */
#define EXT "203.0.113.5"

static const struct np_case cases[] = {
    /* No policy at all. */
    {"none", "without policies nothing is isolated", WEB1, CART, 50051, TCP, NOT_ISOLATED,
     NOT_ISOLATED},

    /* Default deny. */
    {"default-deny-ingress", "default-deny ingress isolates every Pod of its namespace", WEB1, CART,
     50051, TCP, DENIED("shop/deny-ingress"), NOT_ISOLATED},
    {"default-deny-ingress", "default-deny ingress also denies external clients", EXT, WEB1, 8080,
     TCP, DENIED("shop/deny-ingress"), NOT_ISOLATED},
    {"default-deny-ingress", "a Pod of another namespace is not selected", WEB1, API, 8443, TCP,
     NOT_ISOLATED, NOT_ISOLATED},
    {"default-deny-egress", "default-deny egress isolates the source", WEB1, API, 8443, TCP,
     NOT_ISOLATED, DENIED("shop/deny-egress")},
    {"default-deny-egress", "an Egress-only policy leaves ingress alone", API, WEB1, 8080, TCP,
     NOT_ISOLATED, NOT_ISOLATED},

    /* Allow all. */
    {"allow-all-ingress", "ingress [{}] admits a Pod of another namespace", WEBDEV, WEB1, 8080, TCP,
     ALLOWED("shop/allow-all", "ingress-0"), NOT_ISOLATED},
    {"allow-all-ingress", "ingress [{}] admits an external client on any port", EXT, DB, 5432, TCP,
     ALLOWED("shop/allow-all", "ingress-0"), NOT_ISOLATED},

    /* podSelector with matchLabels. */
    {"pod-selector", "a podSelector peer admits a matching Pod", CART, DB, 5432, TCP,
     ALLOWED("shop/db-allow-backend", "ingress-0"), NOT_ISOLATED},
    {"pod-selector", "a podSelector peer denies a Pod without the label", WEB1, DB, 5432, TCP,
     DENIED("shop/db-allow-backend"), NOT_ISOLATED},
    {"pod-selector", "a podSelector peer alone stays in the policy's namespace", LEDGER, DB, 5432,
     TCP, DENIED("shop/db-allow-backend"), NOT_ISOLATED},
    {"pod-selector", "a matching peer on another port is denied", CART, DB, 5433, TCP,
     DENIED("shop/db-allow-backend"), NOT_ISOLATED},
    {"pod-selector", "a Pod the policy does not select is not isolated", CART, WEB1, 8080, TCP,
     NOT_ISOLATED, NOT_ISOLATED},

    /* matchExpressions. */
    {"match-expressions", "Exists admits a Pod that has the key", DB, WEB1, 8080, TCP,
     ALLOWED("shop/sel-exists", "ingress-0"), NOT_ISOLATED},
    {"match-expressions", "Exists denies a Pod without the key", CART, WEB1, 8080, TCP,
     DENIED("shop/sel-exists"), NOT_ISOLATED},
    {"match-expressions", "In selects every Pod with a listed value", DB, WEB2, 8080, TCP,
     ALLOWED("shop/sel-exists", "ingress-0"), NOT_ISOLATED},
    {"match-expressions", "NotIn admits a Pod without the key", BATCH, CART, 50051, TCP,
     ALLOWED("shop/sel-notin", "ingress-0"), NOT_ISOLATED},
    {"match-expressions", "NotIn admits a value not listed", DB, CART, 50051, TCP,
     ALLOWED("shop/sel-notin", "ingress-0"), NOT_ISOLATED},
    {"match-expressions", "NotIn denies a listed value", WEB2, CART, 50051, TCP,
     DENIED("shop/sel-notin"), NOT_ISOLATED},
    {"match-expressions", "DoesNotExist admits a Pod without the key", BATCH, DB, 5432, TCP,
     ALLOWED("shop/sel-dne", "ingress-0"), NOT_ISOLATED},
    {"match-expressions", "DoesNotExist denies a Pod with the key", CART, DB, 5432, TCP,
     DENIED("shop/sel-dne"), NOT_ISOLATED},

    /* namespaceSelector. */
    {"namespace-selector", "namespaceSelector alone admits every Pod of a matching namespace", WEB1,
     API, 8443, TCP, ALLOWED("payments/api-from-prod", "ingress-0"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector matches the policy's own namespace too", LEDGER, API,
     8443, TCP, ALLOWED("payments/api-from-prod", "ingress-0"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector denies a namespace with other labels", WEBDEV, API,
     8443, TCP, DENIED("payments/api-from-prod"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector never matches an address that is not a Pod", EXT, API,
     8443, TCP, DENIED("payments/api-from-prod"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector on a namespace without its object is unknown", GHOST,
     API, 8443, TCP, UNKNOWN, NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector and podSelector admit the Pod in the namespace", WEB1,
     LEDGER, 8080, TCP, ALLOWED("payments/ledger-from-shop-web", "ingress-0"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector and podSelector deny another Pod there", CART, LEDGER,
     8080, TCP, DENIED("payments/ledger-from-shop-web"), NOT_ISOLATED},
    {"namespace-selector", "namespaceSelector and podSelector deny the Pod elsewhere", WEBDEV,
     LEDGER, 8080, TCP, DENIED("payments/ledger-from-shop-web"), NOT_ISOLATED},

    /* The automatic kubernetes.io/metadata.name label. */
    {"metadata-name", "kubernetes.io/metadata.name matches when the Namespace lacks the label", OLD,
     API, 8443, TCP, ALLOWED("payments/api-by-namespace-name", "ingress-0"), NOT_ISOLATED},
    {"metadata-name", "a later rule admits: its index is named", PROM, API, 8443, TCP,
     ALLOWED("payments/api-by-namespace-name", "ingress-1"), NOT_ISOLATED},
    {"metadata-name", "kubernetes.io/metadata.name needs no Namespace object", GHOST, API, 8443,
     TCP, ALLOWED("payments/api-by-namespace-name", "ingress-2"), NOT_ISOLATED},
    {"metadata-name", "kubernetes.io/metadata.name denies other namespaces", WEB1, API, 8443, TCP,
     DENIED("payments/api-by-namespace-name"), NOT_ISOLATED},

    /* ipBlock with except. */
    {"ip-block", "ipBlock admits an address inside cidr", EXT, WEB1, 8080, TCP,
     ALLOWED("shop/web-from-partners", "ingress-0"), NOT_ISOLATED},
    {"ip-block", "ipBlock except excludes part of cidr", "203.0.113.200", WEB1, 8080, TCP,
     DENIED("shop/web-from-partners"), NOT_ISOLATED},
    {"ip-block", "IPv6 ipBlock admits an address inside cidr", "2001:db8::5", WEB1_6, 8080, TCP,
     ALLOWED("shop/web-from-partners", "ingress-0"), NOT_ISOLATED},
    {"ip-block", "IPv6 ipBlock except excludes part of cidr", "2001:db8:bad::5", WEB1_6, 8080, TCP,
     DENIED("shop/web-from-partners"), NOT_ISOLATED},
    {"ip-block", "an address outside every block is denied", "2001:db9::5", WEB1_6, 8080, TCP,
     DENIED("shop/web-from-partners"), NOT_ISOLATED},
    {"ip-block", "egress ipBlock 0.0.0.0/0 admits an external destination", BATCH, "198.51.100.7",
     443, TCP, NOT_ISOLATED, ALLOWED("shop/batch-egress-internet", "egress-0")},
    {"ip-block", "egress except 10.0.0.0/8 denies a Pod IP (ipBlock applies to Pods)", BATCH, CART,
     50051, TCP, NOT_ISOLATED, DENIED("shop/batch-egress-internet")},
    {"ip-block", "both ends isolated, both deny", BATCH, WEB1, 8080, TCP,
     DENIED("shop/web-from-partners"), DENIED("shop/batch-egress-internet")},
    {"ip-block", "an unknown Pod IP is decided by ipBlock peers", NO_POD, WEB1, 8080, TCP,
     DENIED("shop/web-from-partners"), NOT_ISOLATED},

    /* Ports. */
    {"ports", "a named port resolves on the destination Pod", CART, API, 8443, TCP,
     ALLOWED("payments/api-ports", "ingress-0"), NOT_ISOLATED},
    {"ports", "a numeric UDP port admits UDP", CART, API, 8125, UDP,
     ALLOWED("payments/api-ports", "ingress-1"), NOT_ISOLATED},
    {"ports", "a UDP port, numeric or named, does not admit TCP", CART, API, 8125, TCP,
     DENIED("payments/api-ports"), NOT_ISOLATED},
    {"ports", "a TCP named port does not admit UDP", CART, API, 8443, UDP,
     DENIED("payments/api-ports"), NOT_ISOLATED},
    {"ports", "endPort: the first port of the range", CART, API, 9000, TCP,
     ALLOWED("payments/api-ports", "ingress-2"), NOT_ISOLATED},
    {"ports", "endPort: the range is inclusive", CART, API, 9100, TCP,
     ALLOWED("payments/api-ports", "ingress-2"), NOT_ISOLATED},
    {"ports", "endPort: past the range", CART, API, 9101, TCP, DENIED("payments/api-ports"),
     NOT_ISOLATED},
    {"ports", "a protocol alone admits every SCTP port", CART, API, 3868, SCTP,
     ALLOWED("payments/api-ports", "ingress-3"), NOT_ISOLATED},
    {"ports", "ICMP matches no port entry", CART, API, 0, ICMP, DENIED("payments/api-ports"),
     NOT_ISOLATED},
    {"ports", "an egress named port resolves on the destination Pod", WEB1, API, 8443, TCP,
     ALLOWED("payments/api-ports", "ingress-0"), ALLOWED("shop/web-egress-https", "egress-0")},
    {"ports", "an egress named port is the destination's, not the source's", WEB1, WEB2, 8443, TCP,
     NOT_ISOLATED, DENIED("shop/web-egress-https")},
    {"ports", "a named port never matches a destination that is not a Pod", WEB1, EXT, 8443, TCP,
     NOT_ISOLATED, DENIED("shop/web-egress-https")},
    {"ports", "a named port on an unknown Pod IP is unknown", WEB1, "10.244.2.201", 8443, TCP,
     NOT_ISOLATED, UNKNOWN},

    /* policyTypes. */
    {"policy-types", "implied policyTypes: egress rules add Egress", CART, DB, 5432, TCP,
     DENIED("shop/db-ingress-only"), ALLOWED("shop/cart-implied-types", "egress-0")},
    {"policy-types", "implied policyTypes: Ingress without rules denies", WEB1, CART, 50051, TCP,
     DENIED("shop/cart-implied-types"), DENIED("shop/web-egress-only")},
    {"policy-types", "implied Egress denies what its rules do not admit", CART, EXT, 443, TCP,
     NOT_ISOLATED, DENIED("shop/cart-implied-types")},
    {"policy-types", "egress rules without Egress in policyTypes do not isolate", DB, EXT, 443, TCP,
     NOT_ISOLATED, NOT_ISOLATED},
    {"policy-types", "an empty egress list does not imply Egress", BATCH, EXT, 443, TCP,
     NOT_ISOLATED, NOT_ISOLATED},
    {"policy-types", "[Egress] without rules denies all egress", WEB1, BATCH, 80, TCP,
     ALLOWED("shop/batch-empty-egress", "ingress-0"), DENIED("shop/web-egress-only")},

    /* Order. */
    {"order", "the second policy admits: it is the one named, with its rule", CART, WEB1, 8080, TCP,
     ALLOWED("shop/b-web-from-cart", "ingress-1"), NOT_ISOLATED},
    {"order", "two policies admit: the first in name order wins", DB, WEB1, 8080, TCP,
     ALLOWED("shop/a-web-from-db", "ingress-0"), NOT_ISOLATED},
    {"order", "a rule 0 of a later policy", BATCH, WEB1, 8080, TCP,
     ALLOWED("shop/b-web-from-cart", "ingress-0"), NOT_ISOLATED},
    {"order", "denied: the first isolating policy is named", WEB2, WEB1, 8080, TCP,
     DENIED("shop/a-web-from-db"), NOT_ISOLATED},
    {"order", "denied although another namespace's Pod has the labels", LEDGER, WEB1, 8080, TCP,
     DENIED("shop/a-web-from-db"), NOT_ISOLATED},

    /* Services: the flow is evaluated after DNAT. */
    {"service-dnat", "egress to a Service endpoint after DNAT", WEB1, CART, 50051, TCP,
     ALLOWED("shop/cart-from-web", "ingress-0"), ALLOWED("shop/web-egress-to-cart", "egress-0")},
    {"service-dnat", "the same over IPv6", WEB1_6, CART_6, 50051, TCP,
     ALLOWED("shop/cart-from-web", "ingress-0"), ALLOWED("shop/web-egress-to-cart", "egress-0")},
    {"service-dnat", "the ClusterIP is not a Pod", WEB1, "10.96.0.20", 80, TCP, NOT_ISOLATED,
     DENIED("shop/web-egress-to-cart")},

    /* Pods the inventory does not hold. */
    {"unknown-peer", "a selector peer against an unknown Pod IP is unknown", NO_POD, WEB1, 8080,
     TCP, UNKNOWN, NOT_ISOLATED},
    {"unknown-peer", "another rule admits the unknown Pod IP: allowed", NO_POD, WEB1, 9090, TCP,
     ALLOWED("shop/web-from-cart", "ingress-1"), NOT_ISOLATED},
    {"unknown-peer", "an unknown IPv6 Pod IP is unknown", "fd00:10:244:2::77", WEB1_6, 8080, TCP,
     UNKNOWN, NOT_ISOLATED},
    {"unknown-peer", "an address outside the Pod CIDRs is decided", "192.0.2.1", WEB1, 8080, TCP,
     DENIED("shop/web-from-cart"), NOT_ISOLATED},
    {"unknown-peer", "a known Pod that matches is admitted", CART, WEB1, 8080, TCP,
     ALLOWED("shop/web-from-cart", "ingress-0"), NOT_ISOLATED},

    /* hostNetwork, Nodes, a Pod to itself. */
    {"default-deny-all", "a hostNetwork destination is not a Pod", WEB1, NODE_B, 10249, TCP,
     NOT_ISOLATED, DENIED("shop/deny-all")},
    {"default-deny-all", "a hostNetwork source is not a Pod", NODE_B, CART, 50051, TCP,
     DENIED("shop/deny-all"), NOT_ISOLATED},
    {"default-deny-all", "egress to the Pod's own Node is never isolated", WEB1, NODE_A, 10250, TCP,
     NOT_ISOLATED, NOT_ISOLATED},
    {"default-deny-all", "ingress from the Pod's own Node is never isolated", NODE_A, WEB1, 8080,
     TCP, NOT_ISOLATED, NOT_ISOLATED},
    {"default-deny-all", "the same over IPv6", NODE_A_6, WEB1_6, 8080, TCP, NOT_ISOLATED,
     NOT_ISOLATED},
    {"default-deny-all", "ingress from another Node is isolated", NODE_B, WEB1, 8080, TCP,
     DENIED("shop/deny-all"), NOT_ISOLATED},
    {"default-deny-all", "a Pod is never isolated from itself", WEB1, WEB1, 8080, TCP, NOT_ISOLATED,
     NOT_ISOLATED},
    {"default-deny-all", "both ends isolated", WEB1, CART, 50051, TCP, DENIED("shop/deny-all"),
     DENIED("shop/deny-all")},

    /* Malformed parts never admit, and never un-isolate. */
    {"malformed", "an ipBlock whose cidr does not parse may match: unknown", EXT, WEB1, 8080, TCP,
     UNKNOWN, NOT_ISOLATED},
    {"malformed", "an unknown operator in a peer may match: unknown", WEB1, CART, 50051, TCP,
     UNKNOWN, NOT_ISOLATED},
    {"malformed", "a port out of range may match: unknown", WEB1, DB, 5432, TCP, UNKNOWN,
     NOT_ISOLATED},
    {"malformed", "a good rule beside a bad port still admits", CART, DB, 5432, TCP,
     ALLOWED("shop/db-bad-port", "ingress-1"), NOT_ISOLATED},
    {"malformed", "a bad podSelector term may select: unknown", WEB1, BATCH, 80, TCP, UNKNOWN,
     NOT_ISOLATED},
    {"malformed", "a bad policyTypes entry may isolate egress: unknown", LEDGER, EXT, 443, TCP,
     NOT_ISOLATED, UNKNOWN},
    {"malformed", "the validly listed type still admits", WEB1, LEDGER, 8080, TCP,
     ALLOWED("payments/ledger-bad-types", "ingress-0"), NOT_ISOLATED},
    {"malformed", "a peer with ipBlock and a selector may match: unknown", WEB1, API, 8443, TCP,
     UNKNOWN, NOT_ISOLATED},
    {"malformed", "a good rule after a bad peer admits", LEDGER, API, 8443, TCP,
     ALLOWED("payments/api-bad-peer", "ingress-1"), UNKNOWN},
};

static void test_policy_cases(void **state)
{
    const char *loaded = NULL;
    struct fv_k8s_inventory *inv = NULL;
    size_t failed = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct np_case *c = &cases[i];
        struct fv_np_flow f = flow_of(c->src, c->dst, c->dport, c->proto);
        char what[300];
        /* Cases of one file are adjacent: load it once. */
        if (loaded == NULL || strcmp(loaded, c->policies) != 0) {
            fv_k8s_inventory_free(inv);
            inv = load(c->policies, NULL);
            loaded = c->policies;
        }
        snprintf(what, sizeof(what), "case %zu (%s.json: %s): %s -> %s:%u/%u", i, c->policies,
                 c->what, c->src, c->dst, c->dport, c->proto);
        if (!expect(inv, what, &f, &c->in, &c->eg))
            failed++;
    }
    fv_k8s_inventory_free(inv);
    print_message("%zu policy cases, %zu failed\n", sizeof(cases) / sizeof(cases[0]), failed);
    assert_int_equal(failed, 0);
}

/* ---- Compiling ---- */

static void test_well_formed_fixtures_compile_without_problems(void **state)
{
    static const struct {
        const char *file;
        size_t policies;
    } files[] = {
        {"none", 0},
        {"default-deny-ingress", 1},
        {"default-deny-egress", 1},
        {"default-deny-all", 1},
        {"allow-all-ingress", 1},
        {"pod-selector", 1},
        {"match-expressions", 3},
        {"namespace-selector", 2},
        {"metadata-name", 1},
        {"ip-block", 2},
        {"ports", 2},
        {"policy-types", 4},
        {"order", 3},
        {"service-dnat", 2},
        {"unknown-peer", 1},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct fv_k8s_inventory *inv = load(files[i].file, NULL);
        const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(inv);
        if (st->bad_values != 0 || st->skipped != 0)
            fail_msg("%s: %zu bad values, %zu skipped: %s", files[i].file, st->bad_values,
                     st->skipped, st->first_issue);
        assert_int_equal(fv_k8s_policy_count(inv), files[i].policies);
        assert_int_equal(st->policies, files[i].policies);
        assert_true(files[i].policies == 0 || st->policy_memory > 0);
        assert_true(st->policy_memory <= st->memory);
        fv_k8s_inventory_free(inv);
    }
}

static void test_malformed_parts_are_counted_and_the_first_is_named(void **state)
{
    struct fv_k8s_inventory *inv = load("malformed", NULL);
    const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(inv);

    (void)state;
    /* One bad part in each of the six policies; all six are kept. */
    assert_int_equal(st->bad_values, 6);
    assert_int_equal(st->skipped, 0);
    assert_int_equal(fv_k8s_policy_count(inv), 6);
    /* Compiled in (namespace, name) order: payments/api-bad-peer first. */
    assert_string_equal(st->first_issue, "NetworkPolicy payments/api-bad-peer: "
                                         "spec.ingress[0].from[0] has both ipBlock and a selector");
    fv_k8s_inventory_free(inv);
}

/* One policy "p" for shop's web Pods, given as its spec; the flow
 * cart-1 -> web-1:8080/TCP (ingress) and web-1 -> cart-1:50051 (egress). */
struct bad_case {
    const char *spec;
    size_t bad_values;
    enum fv_np_verdict in;
    enum fv_np_verdict eg;
    const char *first_issue; /* after "NetworkPolicy shop/p: " */
};

static const struct bad_case bad_cases[] = {
    {"\"x\"", 1, FV_NP_UNKNOWN, FV_NP_UNKNOWN, "spec is not an object"},
    {"{\"podSelector\": 7}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector is not an object"},
    {"{\"podSelector\": {\"matchLabels\": {\"app\": 1}}}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector matchLabels[\"app\"] is not a string"},
    {"{\"podSelector\": {\"matchLabels\": []}}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector matchLabels is not an object"},
    {"{\"podSelector\": {\"matchExpressions\": {}}}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector matchExpressions is not an array"},
    {"{\"podSelector\": {\"matchExpressions\": [{\"key\": \"app\", \"operator\": \"In\"}]}}", 1,
     FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED, "spec.podSelector.matchExpressions[0] needs values"},
    {"{\"podSelector\": {\"matchExpressions\": [{\"key\": \"app\", \"operator\": \"Exists\", "
     "\"values\": [\"web\"]}]}}",
     1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector.matchExpressions[0] must not have values"},
    {"{\"podSelector\": {\"matchExpressions\": [{\"operator\": \"Exists\"}]}}", 1, FV_NP_UNKNOWN,
     FV_NP_NOT_ISOLATED, "spec.podSelector.matchExpressions[0] has no key"},
    {"{\"podSelector\": {\"matchExpressions\": [{\"key\": \"app\", \"operator\": \"In\", "
     "\"values\": [1]}]}}",
     1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.podSelector.matchExpressions[0] has a value that is not a string"},
    /* A bad term cannot select a Pod that a good term rules out. */
    {"{\"podSelector\": {\"matchLabels\": {\"app\": \"db\"}, \"matchExpressions\": [{\"key\": "
     "\"x\", \"operator\": \"Near\"}]}}",
     1, FV_NP_NOT_ISOLATED, FV_NP_NOT_ISOLATED,
     "spec.podSelector.matchExpressions[0] has an unknown operator \"Near\""},
    /* Not a list: neither direction is validly listed, both may be isolated. */
    {"{\"policyTypes\": \"Ingress\", \"ingress\": [{}]}", 1, FV_NP_UNKNOWN, FV_NP_UNKNOWN,
     "spec.policyTypes is not an array"},
    {"{\"policyTypes\": [\"Ingress\", 3], \"ingress\": [{}]}", 1, FV_NP_ALLOWED, FV_NP_UNKNOWN,
     "spec.policyTypes[1] \"(not a string)\" is not Ingress or Egress"},
    /* An ingress that is an object, not a list, must not be read as a rule. */
    {"{\"ingress\": {\"from\": [{\"podSelector\": {}}]}}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress is not an array"},
    {"{\"ingress\": [7]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0] is not an object"},
    {"{\"ingress\": [{\"from\": {\"podSelector\": {}}}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from is not an array"},
    {"{\"ingress\": [{\"from\": [{}]}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from[0] names no peer"},
    {"{\"ingress\": [{\"from\": [{\"podSelector\": {\"matchLabels\": {\"app\": \"cart\"}}, "
     "\"namespaceSelector\": \"all\"}]}]}",
     1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from[0].namespaceSelector is not an object"},
    /* The bad term is ruled out by the good one: decided. */
    {"{\"ingress\": [{\"from\": [{\"podSelector\": {\"matchLabels\": {\"app\": \"db\"}, "
     "\"matchExpressions\": [{\"key\": \"x\", \"operator\": \"Gt\", \"values\": [\"1\"]}]}}]}]}",
     1, FV_NP_DENIED, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from[0].podSelector.matchExpressions[0] has an unknown operator \"Gt\""},
    {"{\"ingress\": [{\"from\": [{\"ipBlock\": {\"cidr\": \"10.0.0.0/8\", \"except\": "
     "[\"10.244.0.0/16x\"]}}]}]}",
     1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from[0] ipBlock.except \"10.244.0.0/16x\" is not a CIDR"},
    /* Outside cidr, a bad except does not matter. */
    {"{\"ingress\": [{\"from\": [{\"ipBlock\": {\"cidr\": \"192.0.2.0/24\", \"except\": "
     "\"192.0.2.0/25\"}}]}]}",
     1, FV_NP_DENIED, FV_NP_NOT_ISOLATED, "spec.ingress[0].from[0] ipBlock.except is not an array"},
    {"{\"ingress\": [{\"from\": [{\"ipBlock\": {}}]}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].from[0] ipBlock.cidr \"(none)\" is not a CIDR"},
    {"{\"ingress\": [{\"ports\": {\"port\": 8080}}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].ports is not an array"},
    {"{\"ingress\": [{\"ports\": [{\"port\": 8080, \"protocol\": \"ICMP\"}]}]}", 1, FV_NP_UNKNOWN,
     FV_NP_NOT_ISOLATED, "spec.ingress[0].ports[0] has an unknown protocol"},
    {"{\"ingress\": [{\"ports\": [{\"port\": 8080, \"endPort\": 8000}]}]}", 1, FV_NP_UNKNOWN,
     FV_NP_NOT_ISOLATED, "spec.ingress[0].ports[0] has a bad port or endPort"},
    {"{\"ingress\": [{\"ports\": [{\"port\": \"http\", \"endPort\": 9000}]}]}", 1, FV_NP_UNKNOWN,
     FV_NP_NOT_ISOLATED, "spec.ingress[0].ports[0] has a bad port or endPort"},
    {"{\"ingress\": [{\"ports\": [{\"endPort\": 9000}]}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].ports[0] has a bad port or endPort"},
    {"{\"ingress\": [{\"ports\": [{\"port\": \"\"}]}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].ports[0] has a bad port or endPort"},
    {"{\"ingress\": [{\"ports\": [{\"port\": 0}]}]}", 1, FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED,
     "spec.ingress[0].ports[0] has a bad port or endPort"},
    /* The good entry is for UDP; the bad one might have been for TCP. */
    {"{\"ingress\": [{\"ports\": [{\"port\": 8080, \"protocol\": \"UDP\"}, {\"port\": true}]}]}", 1,
     FV_NP_UNKNOWN, FV_NP_NOT_ISOLATED, "spec.ingress[0].ports[1] has a bad port or endPort"},
    {"{\"egress\": [{\"to\": [{\"ipBlock\": {\"cidr\": \"10.0.0.0/8\"}, \"namespaceSelector\": "
     "{}}]}]}",
     1, FV_NP_DENIED, FV_NP_UNKNOWN, "spec.egress[0].to[0] has both ipBlock and a selector"},
    {"{\"egress\": 5}", 1, FV_NP_DENIED, FV_NP_UNKNOWN, "spec.egress is not an array"},
    /* Good policies parse without notes. */
    {"{}", 0, FV_NP_DENIED, FV_NP_NOT_ISOLATED, ""},
    {"{\"podSelector\": null, \"ingress\": null, \"egress\": null}", 0, FV_NP_DENIED,
     FV_NP_NOT_ISOLATED, ""},
};

static void test_malformed_parts_evaluate_to_unknown_never_to_allowed(void **state)
{
    static const char head[] = "{\"kind\": \"List\", \"apiVersion\": \"v1\", \"items\": "
                               "[{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": "
                               "\"NetworkPolicy\", \"metadata\": {\"name\": \"p\", "
                               "\"namespace\": \"shop\"}, \"spec\": ";
    struct fv_np_flow in_flow = flow_of(CART, WEB1, 8080, TCP);
    struct fv_np_flow eg_flow = flow_of(WEB1, CART, 50051, TCP);

    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        char text[1024], issue[300];
        struct fv_k8s_inventory *inv;
        const struct fv_k8s_inventory_stats *st;
        struct fv_np_result ri, re, unused;
        snprintf(text, sizeof(text), "%s%s}]}", head, c->spec);
        inv = load(NULL, text);
        st = fv_k8s_inventory_stats(inv);
        snprintf(issue, sizeof(issue), "%s%s", *c->first_issue ? "NetworkPolicy shop/p: " : "",
                 c->first_issue);
        fv_k8s_policy_evaluate(inv, &in_flow, &ri, &unused);
        fv_k8s_policy_evaluate(inv, &eg_flow, &unused, &re);
        if (st->bad_values != c->bad_values || strcmp(st->first_issue, issue) != 0 ||
            ri.verdict != c->in || re.verdict != c->eg)
            fail_msg("spec %s: %zu bad values \"%s\", ingress %s, egress %s; want %zu \"%s\", "
                     "%s, %s",
                     c->spec, st->bad_values, st->first_issue, fv_np_verdict_name(ri.verdict),
                     fv_np_verdict_name(re.verdict), c->bad_values, issue,
                     fv_np_verdict_name(c->in), fv_np_verdict_name(c->eg));
        assert_int_equal(fv_k8s_policy_count(inv), 1);
        fv_k8s_inventory_free(inv);
    }
}

/* ---- Results ---- */

static void test_rule_names_are_interned_once(void **state)
{
    struct fv_k8s_inventory *inv = load("order", NULL);
    struct fv_np_flow a = flow_of(CART, WEB1, 8080, TCP);
    struct fv_np_flow b = flow_of("fd00:10:244:1::20", "fd00:10:244:2::10", 443, TCP);
    struct fv_np_result r1, r2, e;

    (void)state;
    fv_k8s_policy_evaluate(inv, &a, &r1, &e);
    fv_k8s_policy_evaluate(inv, &b, &r2, &e);
    assert_int_equal(r1.verdict, FV_NP_ALLOWED);
    assert_int_equal(r2.verdict, FV_NP_ALLOWED);
    assert_ptr_equal(r1.policy, r2.policy);
    assert_ptr_equal(r1.rule_name, r2.rule_name);
    assert_string_equal(r2.rule_name, "ingress-1");
    /* The policy is the inventory's own object. */
    assert_ptr_equal(r1.policy, &fv_k8s_network_policies(inv, "shop", &(size_t){0})[1]);
    fv_k8s_inventory_free(inv);
}

static void test_results_are_reset_by_every_evaluation(void **state)
{
    struct fv_k8s_inventory *inv = load("order", NULL);
    struct fv_np_flow allowed = flow_of(CART, WEB1, 8080, TCP);
    struct fv_np_flow outside = flow_of(EXT, "198.51.100.1", 80, UDP);
    struct fv_np_result in, eg;

    (void)state;
    fv_k8s_policy_evaluate(inv, &allowed, &in, &eg);
    assert_int_equal(in.verdict, FV_NP_ALLOWED);
    fv_k8s_policy_evaluate(inv, &outside, &in, &eg);
    assert_int_equal(in.verdict, FV_NP_NOT_ISOLATED);
    assert_null(in.policy);
    assert_int_equal(in.rule, -1);
    assert_string_equal(in.rule_name, "");
    assert_int_equal(eg.verdict, FV_NP_NOT_ISOLATED);
    fv_k8s_inventory_free(inv);
}

static void test_an_inventory_without_policies_isolates_nothing(void **state)
{
    struct fv_k8s_inventory *inv = load("none", NULL);
    struct fv_np_flow f = flow_of(WEB1, CART, 50051, TCP);
    struct fv_np_result in, eg;

    (void)state;
    assert_int_equal(fv_k8s_policy_count(inv), 0);
    fv_k8s_policy_evaluate(inv, &f, &in, &eg);
    assert_int_equal(in.verdict, FV_NP_NOT_ISOLATED);
    assert_int_equal(eg.verdict, FV_NP_NOT_ISOLATED);
    fv_k8s_inventory_free(inv);
}

static void test_a_policy_without_spec_denies_all_ingress(void **state)
{
    /* As a watch would deliver single objects. */
    struct fv_k8s_builder *b;
    struct fv_k8s_inventory *inv;
    json_error_t je;
    json_t *pod = json_loads("{\"metadata\": {\"name\": \"w\", \"namespace\": \"n\"},"
                             " \"status\": {\"phase\": \"Running\", \"podIP\": \"10.2.0.1\"}}",
                             0, &je);
    json_t *np = json_loads("{\"kind\": \"NetworkPolicy\", \"apiVersion\": "
                            "\"networking.k8s.io/v1\", \"metadata\": {\"name\": \"deny\", "
                            "\"namespace\": \"n\"}}",
                            0, &je);
    struct fv_np_flow f = flow_of("10.9.9.9", "10.2.0.1", 80, TCP);
    struct fv_np_result in, eg;

    (void)state;
    assert_int_equal(fv_k8s_builder_new(&b), 0);
    assert_int_equal(fv_k8s_builder_add(b, FV_K8S_POD, pod), 0);
    assert_int_equal(fv_k8s_builder_add(b, FV_K8S_KIND_NONE, np), 0);
    json_decref(pod);
    json_decref(np);
    assert_int_equal(fv_k8s_builder_finish(b, &inv), 0);
    fv_k8s_policy_evaluate(inv, &f, &in, &eg);
    assert_int_equal(in.verdict, FV_NP_DENIED);
    assert_string_equal(in.policy->name, "deny");
    assert_int_equal(eg.verdict, FV_NP_NOT_ISOLATED);
    assert_int_equal(fv_k8s_inventory_stats(inv)->bad_values, 0);
    fv_k8s_inventory_free(inv);
}

static void test_the_inventory_fixture_cluster_is_evaluated(void **state)
{
    /* tests/unit/fixtures/k8s/cluster.json: shop has cart-allow-frontend
     * (cart from frontend on the named port grpc) and default-deny
     * (Ingress and Egress).  The cart Pod's grpc is 7070. */
    struct fv_k8s_inventory *inv = NULL;
    char err[512];
    struct fv_np_flow to_cart = flow_of("10.244.1.5", "10.244.1.9", 7070, TCP);
    struct fv_np_flow to_cart_other = flow_of("10.244.1.5", "10.244.1.9", 7071, TCP);
    struct fv_np_flow to_frontend = flow_of("fd00:10:244:1::1a", "fd00:10:244:2::7", 8080, TCP);
    struct fv_np_flow dns = flow_of("10.244.2.7", "10.244.0.3", 53, UDP);
    static const struct want cart_in = ALLOWED("shop/cart-allow-frontend", "ingress-0");
    static const struct want cart_denied = DENIED("shop/cart-allow-frontend");
    static const struct want deny = DENIED("shop/default-deny");
    static const struct want not_isolated = NOT_ISOLATED;

    (void)state;
    if (fv_k8s_inventory_load_file(FV_K8S_FIXTURE_DIR "/cluster.json", &inv, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(fv_k8s_inventory_stats(inv)->bad_values, 0);
    assert_true(expect(inv, "frontend -> cart grpc", &to_cart, &cart_in, &deny));
    /* Both policies isolate cart; the first in name order is named. */
    assert_true(expect(inv, "frontend -> cart 7071", &to_cart_other, &cart_denied, &deny));
    assert_true(expect(inv, "cart -> frontend", &to_frontend, &deny, &deny));
    assert_true(expect(inv, "frontend -> coredns", &dns, &not_isolated, &deny));
    fv_k8s_inventory_free(inv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_cases),
        cmocka_unit_test(test_well_formed_fixtures_compile_without_problems),
        cmocka_unit_test(test_malformed_parts_are_counted_and_the_first_is_named),
        cmocka_unit_test(test_malformed_parts_evaluate_to_unknown_never_to_allowed),
        cmocka_unit_test(test_rule_names_are_interned_once),
        cmocka_unit_test(test_results_are_reset_by_every_evaluation),
        cmocka_unit_test(test_an_inventory_without_policies_isolates_nothing),
        cmocka_unit_test(test_a_policy_without_spec_denies_all_ingress),
        cmocka_unit_test(test_the_inventory_fixture_cluster_is_evaluated),
    };

    return cmocka_run_group_tests_name("k8s policy", tests, NULL, NULL);
}
