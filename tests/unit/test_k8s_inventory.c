/*
 * test_k8s_inventory.c - the Kubernetes inventory (k8s/inventory.h): the
 * model parsed from `kubectl get ... -o json`, every lookup the agent uses,
 * malformed input, and re-reading the file when it changes.
 *
 * The fixture tests/unit/fixtures/k8s/cluster.json is a dual-stack
 * three-node cluster: kube-system (CoreDNS, a hostNetwork API server), shop
 * (two frontend replicas, a cart Pod that reuses the IPv4 address of a
 * finished Job Pod, a Failed Pod), default (an IPv4-only Pod with only
 * status.podIP, an unscheduled Pod); Services with UDP and TCP ports, named
 * and numeric targetPorts, a NodePort, a headless and an ExternalName
 * Service; three labelled Namespaces; two NetworkPolicies.  Tests run from
 * the repository root, or with FV_K8S_FIXTURE_DIR defined.
 */
#include <setjmp.h> /* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/ip.h"
#include "base/sbuf.h"
#include "k8s/inventory.h"

#ifndef FV_K8S_FIXTURE_DIR
#define FV_K8S_FIXTURE_DIR "tests/unit/fixtures/k8s"
#endif
#define CLUSTER_JSON FV_K8S_FIXTURE_DIR "/cluster.json"

/* ---- Helpers ---- */

static struct fv_ip ip(const char *s)
{
    struct fv_ip out;

    if (fv_ip_parse(s, &out) < 0)
        fail_msg("bad IP in the test: %s", s);
    return out;
}

static void assert_ip(const struct fv_ip *got, const char *want)
{
    char buf[FV_IP_STRLEN];
    assert_string_equal(fv_ip_str(got, buf), want);
}

static void assert_cidr(const struct fv_cidr *got, const char *want)
{
    char buf[FV_IP_STRLEN + 8];
    char host[FV_IP_STRLEN];

    snprintf(buf, sizeof(buf), "%s/%u", fv_ip_str(&got->net, host), got->len);
    assert_string_equal(buf, want);
}

static const struct fv_k8s_pod *pod_at(const struct fv_k8s_inventory *inv, const char *addr)
{
    struct fv_ip a = ip(addr);
    return fv_k8s_pod_by_ip(inv, &a);
}

static void assert_pod_at(const struct fv_k8s_inventory *inv, const char *addr, const char *ns,
                          const char *name)
{
    const struct fv_k8s_pod *pod = pod_at(inv, addr);

    if (pod == NULL)
        fail_msg("no Pod at %s, want %s/%s", addr, ns, name);
    assert_string_equal(pod->ns, ns);
    assert_string_equal(pod->name, name);
}

/* A private directory for files the test writes. */
struct tmp {
    char dir[64];
    char path[128];  /* dir/inventory.json */
    char other[128]; /* dir/inventory.json.new */
};

static void tmp_init(struct tmp *t)
{
    strcpy(t->dir, "/tmp/fv-k8s-test-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/inventory.json", t->dir);
    snprintf(t->other, sizeof(t->other), "%s/inventory.json.new", t->dir);
}

static void tmp_fini(struct tmp *t)
{
    unlink(t->path);
    unlink(t->other);
    rmdir(t->dir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text written to a temporary file; returns the load's result. */
static int load_text(const char *text, struct fv_k8s_inventory **inv, char *err, size_t errlen)
{
    struct tmp t;
    int rc;

    tmp_init(&t);
    write_file(t.path, text);
    rc = fv_k8s_inventory_load_file(t.path, inv, err, errlen);
    tmp_fini(&t);
    return rc;
}

static struct fv_k8s_inventory *load_text_or_fail(const char *text)
{
    struct fv_k8s_inventory *inv = NULL;
    char err[512] = "";
    int rc = load_text(text, &inv, err, sizeof(err));

    if (rc != 0)
        fail_msg("load: %s (%s)", err, fv_strerror(rc));
    return inv;
}

/* ---- The fixture cluster: loaded for each test that uses it ---- */

static int setup_cluster(void **state)
{
    struct fv_k8s_inventory *inv = NULL;
    char err[512];

    if (fv_k8s_inventory_load_file(CLUSTER_JSON, &inv, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot load the fixture: %s\n", err);
        return -1;
    }
    *state = inv;
    return 0;
}

static int teardown_cluster(void **state)
{
    fv_k8s_inventory_free(*state);
    return 0;
}

static void test_fixture_loads_every_object_without_problems(void **state)
{
    const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(*state);

    assert_int_equal(st->items, 23);
    assert_int_equal(st->pods, 9);
    assert_int_equal(st->services, 6);
    assert_int_equal(st->nodes, 3);
    assert_int_equal(st->namespaces, 3);
    assert_int_equal(st->policies, 2);
    assert_int_equal(st->ignored_kinds, 0);
    assert_int_equal(st->skipped, 0);
    assert_int_equal(st->bad_values, 0);
    assert_int_equal(st->duplicates, 0);
    assert_int_equal(st->ip_conflicts, 0);
    assert_string_equal(st->first_issue, "");
    assert_true(st->strings > 50);
}

static void test_pods_are_found_by_ipv4_and_ipv6(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *pod;

    assert_pod_at(inv, "10.244.0.3", "kube-system", "coredns-76f75df574-8xkqz");
    assert_pod_at(inv, "fd00:10:244::3", "kube-system", "coredns-76f75df574-8xkqz");
    assert_pod_at(inv, "10.244.1.5", "shop", "frontend-6b9f8c7d5-q7wzt");
    assert_pod_at(inv, "fd00:10:244:1::5", "shop", "frontend-6b9f8c7d5-q7wzt");
    assert_pod_at(inv, "10.244.2.7", "shop", "frontend-6b9f8c7d5-zk2pl");
    assert_pod_at(inv, "fd00:10:244:2::7", "shop", "frontend-6b9f8c7d5-zk2pl");

    pod = pod_at(inv, "fd00:10:244:2::7");
    assert_string_equal(pod->node_name, "flowvis-worker2");
    assert_int_equal(pod->phase, FV_K8S_PHASE_RUNNING);
    assert_false(pod->host_network);
    assert_int_equal(pod->n_ips, 2);
    assert_ip(&pod->ips[0], "10.244.2.7");
    assert_ip(&pod->ips[1], "fd00:10:244:2::7");

    /* Addresses nobody owns: a Service, a node, an unused Pod address. */
    assert_null(pod_at(inv, "10.96.0.10"));
    assert_null(pod_at(inv, "10.244.1.6"));
    assert_null(pod_at(inv, "fd00:10:244:1::6"));
    /* The bytes of 10.244.1.5 in the first four, but IPv6. */
    assert_null(pod_at(inv, "af4:105::"));
}

static void test_host_network_pods_are_not_found_by_their_node_ip(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *pod =
        fv_k8s_pod_by_name(inv, "kube-system", "kube-apiserver-flowvis-control-plane");

    assert_non_null(pod);
    assert_true(pod->host_network);
    assert_int_equal(pod->n_ips, 2);
    assert_null(pod_at(inv, "172.18.0.2"));
    assert_null(pod_at(inv, "fc00:f853:ccd:e793::2"));
}

static void test_succeeded_and_failed_pods_give_their_ips_back(void **state)
{
    const struct fv_k8s_inventory *inv = *state;

    /* The cart Pod got the finished backup Job's IPv4 address. */
    assert_pod_at(inv, "10.244.1.9", "shop", "cart-5c7d9b8f4-m2n4p");
    assert_pod_at(inv, "fd00:10:244:1::1a", "shop", "cart-5c7d9b8f4-m2n4p");
    assert_null(pod_at(inv, "fd00:10:244:1::9"));  /* Succeeded */
    assert_null(pod_at(inv, "10.244.2.20"));       /* Failed */
    assert_null(pod_at(inv, "fd00:10:244:2::14")); /* Failed */
    assert_int_equal(fv_k8s_pod_by_name(inv, "shop", "db-backup-28571040-7xq9d")->phase,
                     FV_K8S_PHASE_SUCCEEDED);
    assert_int_equal(fv_k8s_pod_by_name(inv, "shop", "report-28571100-jq8vv")->phase,
                     FV_K8S_PHASE_FAILED);
}

static void test_pod_ip_falls_back_to_status_pod_ip(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *pod = fv_k8s_pod_by_name(inv, "default", "legacy-7f5d8");

    assert_non_null(pod);
    assert_int_equal(pod->n_ips, 1);
    assert_ip(&pod->ips[0], "10.244.2.9");
    assert_pod_at(inv, "10.244.2.9", "default", "legacy-7f5d8");
}

static void test_unscheduled_pod_has_no_node_and_no_ips(void **state)
{
    const struct fv_k8s_pod *pod = fv_k8s_pod_by_name(*state, "default", "pending-unscheduled");

    assert_non_null(pod);
    assert_string_equal(pod->node_name, "");
    assert_int_equal(pod->phase, FV_K8S_PHASE_PENDING);
    assert_int_equal(pod->n_ips, 0);
    assert_null(pod->ips);
    assert_int_equal(pod->n_ports, 0);
}

static void test_container_ports_keep_names_and_protocols(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *dns =
        fv_k8s_pod_by_name(inv, "kube-system", "coredns-76f75df574-8xkqz");
    const struct fv_k8s_pod *web = fv_k8s_pod_by_name(inv, "shop", "frontend-6b9f8c7d5-q7wzt");

    assert_int_equal(dns->n_ports, 3);
    assert_string_equal(dns->ports[0].name, "dns");
    assert_int_equal(dns->ports[0].port, 53);
    assert_int_equal(dns->ports[0].proto, IPPROTO_UDP);
    assert_string_equal(dns->ports[1].name, "dns-tcp");
    assert_int_equal(dns->ports[1].port, 53);
    assert_int_equal(dns->ports[1].proto, IPPROTO_TCP);
    assert_string_equal(dns->ports[2].name, "metrics");
    assert_int_equal(dns->ports[2].port, 9153);

    /* Ports of every container, in order; protocol defaults to TCP. */
    assert_int_equal(web->n_ports, 2);
    assert_string_equal(web->ports[0].name, "http");
    assert_int_equal(web->ports[0].port, 8080);
    assert_string_equal(web->ports[1].name, "metrics");
    assert_int_equal(web->ports[1].port, 9113);
    assert_int_equal(web->ports[1].proto, IPPROTO_TCP);
}

static void assert_service_at(const struct fv_k8s_inventory *inv, const char *addr, uint16_t port,
                              uint8_t proto, const char *ref, uint16_t target,
                              const char *target_name)
{
    const struct fv_k8s_service *svc = NULL;
    const struct fv_k8s_service_port *sp = NULL;
    struct fv_ip a = ip(addr);
    int rc = fv_k8s_service_by_cluster_ip(inv, &a, port, proto, &svc, &sp);

    if (rc != 0)
        fail_msg("no Service at %s:%u/%u, want %s", addr, port, proto, ref);
    assert_string_equal(sp->ref, ref);
    assert_int_equal(sp->port, port);
    assert_int_equal(sp->proto, proto);
    assert_int_equal(sp->target_port, target);
    assert_string_equal(sp->target_port_name, target_name);
    assert_true(sp >= svc->ports && sp < svc->ports + svc->n_ports);
}

static void assert_no_service_at(const struct fv_k8s_inventory *inv, const char *addr,
                                 uint16_t port, uint8_t proto)
{
    const struct fv_k8s_service *svc = (const void *)1;
    const struct fv_k8s_service_port *sp = (const void *)1;
    struct fv_ip a = ip(addr);

    assert_int_equal(fv_k8s_service_by_cluster_ip(inv, &a, port, proto, &svc, &sp), -ENOENT);
    assert_null(svc);
    assert_null(sp);
}

static void test_services_are_found_by_cluster_ip_port_and_protocol(void **state)
{
    const struct fv_k8s_inventory *inv = *state;

    assert_service_at(inv, "10.96.0.10", 53, IPPROTO_UDP, "kube-system/kube-dns:dns", 0, "dns");
    assert_service_at(inv, "fd00:10:96::a", 53, IPPROTO_UDP, "kube-system/kube-dns:dns", 0, "dns");
    assert_service_at(inv, "10.96.0.10", 53, IPPROTO_TCP, "kube-system/kube-dns:dns-tcp", 53, "");
    assert_service_at(inv, "fd00:10:96::a", 9153, IPPROTO_TCP, "kube-system/kube-dns:metrics", 9153,
                      "");
    assert_service_at(inv, "10.96.0.1", 443, IPPROTO_TCP, "default/kubernetes:https", 6443, "");
    assert_service_at(inv, "fd00:10:96::1", 443, IPPROTO_TCP, "default/kubernetes:https", 6443, "");
    assert_service_at(inv, "10.96.120.15", 80, IPPROTO_TCP, "shop/frontend:http", 0, "http");
    assert_service_at(inv, "fd00:10:96::7f3c", 9113, IPPROTO_TCP, "shop/frontend:metrics", 9113,
                      "");

    assert_no_service_at(inv, "10.96.0.10", 9153, IPPROTO_UDP); /* wrong protocol */
    assert_no_service_at(inv, "10.96.0.10", 54, IPPROTO_UDP);   /* wrong port */
    assert_no_service_at(inv, "10.96.0.11", 53, IPPROTO_UDP);   /* wrong address */
    assert_no_service_at(inv, "10.244.1.5", 8080, IPPROTO_TCP); /* a Pod */
}

static void test_service_fields_follow_the_spec(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_service *web = fv_k8s_service_by_name(inv, "shop", "frontend");
    const struct fv_k8s_service *dns = fv_k8s_service_by_name(inv, "kube-system", "kube-dns");

    assert_non_null(web);
    assert_int_equal(web->type, FV_K8S_SVC_NODE_PORT);
    assert_false(web->headless);
    assert_int_equal(web->n_ips, 2);
    assert_ip(&web->ips[0], "10.96.120.15");
    assert_ip(&web->ips[1], "fd00:10:96::7f3c");
    assert_int_equal(web->n_ports, 2);
    assert_int_equal(web->ports[0].node_port, 30080);
    assert_int_equal(web->ports[1].node_port, 31913);
    assert_int_equal(web->selector.n, 1);
    assert_string_equal(fv_k8s_labels_get(&web->selector, "app"), "frontend");

    assert_int_equal(dns->type, FV_K8S_SVC_CLUSTER_IP);
    assert_int_equal(dns->n_ports, 3);
    assert_int_equal(dns->ports[0].node_port, 0);
    assert_null(fv_k8s_service_by_name(inv, "shop", "kube-dns"));
}

static void test_unnamed_port_is_named_namespace_slash_service(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *sp;
    struct fv_ip a = ip("10.96.44.2");
    struct fv_sbuf b;

    /* shop/cart has only spec.clusterIP and one port without a name. */
    assert_int_equal(fv_k8s_service_by_cluster_ip(inv, &a, 7070, IPPROTO_TCP, &svc, &sp), 0);
    assert_string_equal(svc->name, "cart");
    assert_int_equal(svc->n_ips, 1);
    assert_string_equal(sp->name, "");
    assert_string_equal(sp->ref, "shop/cart");
    fv_sbuf_init(&b, 256);
    assert_int_equal(fv_k8s_service_port_name(svc, sp, &b), 0);
    assert_string_equal(b.p, "shop/cart");
    fv_sbuf_fini(&b);
}

static void test_service_port_name_formatter_matches_ref_and_fails_cleanly(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_service *svc = fv_k8s_service_by_name(inv, "kube-system", "kube-dns");
    struct fv_sbuf b;

    fv_sbuf_init(&b, 256);
    assert_int_equal(fv_sbuf_puts(&b, "svc="), 0);
    assert_int_equal(fv_k8s_service_port_name(svc, &svc->ports[1], &b), 0);
    assert_string_equal(b.p, "svc=kube-system/kube-dns:dns-tcp");
    fv_sbuf_fini(&b);

    /* Too small: an error, and nothing half-written. */
    fv_sbuf_init(&b, 12);
    assert_int_equal(fv_sbuf_puts(&b, "svc="), 0);
    assert_int_equal(fv_k8s_service_port_name(svc, &svc->ports[1], &b), -FV_ELIMIT);
    assert_string_equal(b.p, "svc=");
    fv_sbuf_fini(&b);
}

static void test_headless_and_external_name_services_have_no_cluster_ip(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_service *headless =
        fv_k8s_service_by_name(inv, "shop", "frontend-headless");
    const struct fv_k8s_service *ext = fv_k8s_service_by_name(inv, "shop", "payments-api");

    assert_non_null(headless);
    assert_true(headless->headless);
    assert_int_equal(headless->n_ips, 0);
    assert_null(headless->ips);
    assert_int_equal(headless->n_ports, 1);
    assert_non_null(ext);
    assert_int_equal(ext->type, FV_K8S_SVC_EXTERNAL_NAME);
    assert_false(ext->headless);
    assert_int_equal(ext->n_ips, 0);
    assert_int_equal(ext->n_ports, 0);
}

static void test_nodes_have_pod_cidrs_and_internal_ips(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_node *node = fv_k8s_node_by_name(inv, "flowvis-worker");
    const struct fv_cidr *cidrs;
    size_t n = 99;

    assert_non_null(node);
    assert_string_equal(node->name, "flowvis-worker");
    assert_int_equal(node->n_pod_cidrs, 2);
    assert_cidr(&node->pod_cidrs[0], "10.244.1.0/24");
    assert_cidr(&node->pod_cidrs[1], "fd00:10:244:1::/64");
    /* InternalIP only: the Hostname address is not an IP. */
    assert_int_equal(node->n_addresses, 2);
    assert_ip(&node->addresses[0], "172.18.0.3");
    assert_ip(&node->addresses[1], "fc00:f853:ccd:e793::3");

    cidrs = fv_k8s_node_pod_cidrs(inv, "flowvis-worker2", &n);
    assert_int_equal(n, 2);
    assert_cidr(&cidrs[0], "10.244.2.0/24");
    assert_cidr(&cidrs[1], "fd00:10:244:2::/64");
    assert_null(fv_k8s_node_pod_cidrs(inv, "flowvis-worker3", &n));
    assert_int_equal(n, 0);
    assert_null(fv_k8s_node_by_name(inv, "flowvis"));
    assert_null(fv_k8s_node_by_name(inv, ""));
}

static void test_pod_cidr_lookup_names_the_node(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    struct {
        const char *ip;
        const char *node; /* NULL: in no Pod CIDR */
    } cases[] = {
        {"10.244.0.0", "flowvis-control-plane"},
        {"10.244.0.255", "flowvis-control-plane"},
        {"10.244.1.77", "flowvis-worker"},
        {"10.244.2.200", "flowvis-worker2"},
        {"fd00:10:244::ffff", "flowvis-control-plane"},
        {"fd00:10:244:1:ffff:ffff:ffff:ffff", "flowvis-worker"},
        {"fd00:10:244:2::7", "flowvis-worker2"},
        {"10.244.3.1", NULL},
        {"10.96.0.10", NULL},
        {"172.18.0.2", NULL},
        {"fd00:10:244:3::1", NULL},
        {"fd00:10:96::a", NULL},
        {"::ffff:10.244.1.5", NULL}, /* v4-mapped is not the v4 address */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fv_ip a = ip(cases[i].ip);
        const struct fv_k8s_node *node = fv_k8s_node_by_pod_cidr(inv, &a);
        if (cases[i].node == NULL) {
            if (node != NULL)
                fail_msg("%s: in the Pod CIDR of %s", cases[i].ip, node->name);
            assert_false(fv_k8s_ip_in_pod_cidrs(inv, &a));
            continue;
        }
        if (node == NULL)
            fail_msg("%s: in no Pod CIDR, want %s", cases[i].ip, cases[i].node);
        assert_string_equal(node->name, cases[i].node);
        assert_true(fv_k8s_ip_in_pod_cidrs(inv, &a));
    }
}

static void test_namespaces_keep_their_labels(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_namespace *shop = fv_k8s_namespace_by_name(inv, "shop");
    const struct fv_k8s_namespace *v;
    size_t n;

    assert_non_null(shop);
    assert_int_equal(shop->labels.n, 3);
    /* Sorted by key. */
    assert_string_equal(shop->labels.v[0].key, "env");
    assert_string_equal(shop->labels.v[1].key, "kubernetes.io/metadata.name");
    assert_string_equal(shop->labels.v[2].key, "team");
    assert_string_equal(fv_k8s_labels_get(&shop->labels, "team"), "payments");
    assert_string_equal(fv_k8s_labels_get(&shop->labels, "env"), "prod");
    assert_null(fv_k8s_labels_get(&shop->labels, "tier"));
    assert_null(fv_k8s_namespace_by_name(inv, "shopping"));

    v = fv_k8s_namespaces(inv, &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "default");
    assert_string_equal(v[1].name, "kube-system");
    assert_string_equal(v[2].name, "shop");
}

static void test_pod_labels_become_a_sorted_json_object(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *web = fv_k8s_pod_by_name(inv, "shop", "frontend-6b9f8c7d5-q7wzt");
    struct fv_sbuf b;

    fv_sbuf_init(&b, 1024);
    assert_int_equal(fv_k8s_pod_labels_json(web, &b), 0);
    assert_string_equal(b.p, "{\"app\":\"frontend\",\"pod-template-hash\":\"6b9f8c7d5\","
                             "\"tier\":\"web\"}");
    fv_sbuf_reset(&b);
    assert_int_equal(fv_k8s_pod_labels_json(fv_k8s_pod_by_name(inv, "default", "legacy-7f5d8"), &b),
                     0);
    assert_string_equal(b.p, "{\"app\":\"legacy\"}");
    fv_sbuf_fini(&b);

    /* Too small: an error, and the buffer keeps what it had. */
    fv_sbuf_init(&b, 20);
    assert_int_equal(fv_sbuf_puts(&b, "x"), 0);
    assert_int_equal(fv_k8s_pod_labels_json(web, &b), -FV_ELIMIT);
    assert_string_equal(b.p, "x");
    fv_sbuf_fini(&b);
}

static void test_network_policies_keep_their_json_by_namespace(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_network_policy *np;
    json_t *sel;
    size_t n = 99;

    np = fv_k8s_network_policies(inv, "shop", &n);
    assert_int_equal(n, 2);
    assert_string_equal(np[0].ns, "shop");
    assert_string_equal(np[0].name, "cart-allow-frontend");
    assert_string_equal(np[1].name, "default-deny");
    sel = json_object_get(json_object_get(json_object_get(np[0].obj, "spec"), "podSelector"),
                          "matchLabels");
    assert_string_equal(json_string_value(json_object_get(sel, "app")), "cart");
    assert_string_equal(json_string_value(json_object_get(np[0].obj, "kind")), "NetworkPolicy");

    assert_null(fv_k8s_network_policies(inv, "default", &n));
    assert_int_equal(n, 0);
    assert_null(fv_k8s_network_policies(inv, "zzz", &n));
    assert_int_equal(n, 0);
    assert_non_null(fv_k8s_network_policies(inv, NULL, &n));
    assert_int_equal(n, 2);
}

static void test_objects_are_sorted_and_strings_interned(void **state)
{
    const struct fv_k8s_inventory *inv = *state;
    const struct fv_k8s_pod *pods, *a, *b;
    const struct fv_k8s_node *node;
    size_t n;

    pods = fv_k8s_pods(inv, &n);
    assert_int_equal(n, 9);
    for (size_t i = 1; i < n; i++) {
        int c = strcmp(pods[i - 1].ns, pods[i].ns);
        assert_true(c < 0 || (c == 0 && strcmp(pods[i - 1].name, pods[i].name) < 0));
    }
    assert_string_equal(pods[0].ns, "default");
    assert_int_equal(fv_k8s_services(inv, &n) != NULL, 1);
    assert_int_equal(n, 6);
    assert_int_equal(fv_k8s_nodes(inv, &n) != NULL, 1);
    assert_int_equal(n, 3);

    /* One copy per distinct string. */
    a = fv_k8s_pod_by_name(inv, "shop", "frontend-6b9f8c7d5-q7wzt");
    b = fv_k8s_pod_by_name(inv, "shop", "frontend-6b9f8c7d5-zk2pl");
    node = fv_k8s_node_by_name(inv, "flowvis-worker");
    assert_ptr_equal(a->ns, b->ns);
    assert_ptr_equal(a->labels.v[0].key, b->labels.v[0].key);
    assert_ptr_equal(a->labels.v[0].value, b->labels.v[0].value);
    assert_ptr_equal(a->node_name, node->name);
    assert_ptr_equal(a->ports[0].name,
                     fv_k8s_service_by_name(inv, "shop", "frontend")->ports[0].target_port_name);
}

/* ---- Malformed input ---- */

static void test_a_missing_file_is_an_errno_naming_the_file(void **state)
{
    struct fv_k8s_inventory *inv = (void *)1;
    char err[512];

    (void)state;
    assert_int_equal(fv_k8s_inventory_load_file("/nonexistent/inv.json", &inv, err, sizeof(err)),
                     -ENOENT);
    assert_null(inv);
    assert_string_equal(err, "/nonexistent/inv.json: No such file or directory");
    assert_int_equal(fv_k8s_inventory_load_file("/tmp", &inv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/tmp: not a regular file");
}

static void test_a_file_that_is_not_json_names_line_and_column(void **state)
{
    struct fv_k8s_inventory *inv = (void *)1;
    char err[512];
    struct tmp t;
    char want[256];

    (void)state;
    tmp_init(&t);
    write_file(t.path, "{\n  \"kind\": \"List\",\n  \"items\": [ }\n");
    assert_int_equal(fv_k8s_inventory_load_file(t.path, &inv, err, sizeof(err)), -EINVAL);
    assert_null(inv);
    snprintf(want, sizeof(want), "%s: line 3 column 14: ", t.path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, want);

    write_file(t.path, "");
    assert_int_equal(fv_k8s_inventory_load_file(t.path, &inv, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, t.path));
    assert_non_null(strstr(err, "line 1"));
    tmp_fini(&t);
}

static void test_json_that_is_not_a_list_is_rejected_with_the_reason(void **state)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"[1, 2]", "not a Kubernetes List: the top level is an array"},
        {"{\"kind\": \"NodeList\", \"items\": 3}", "NodeList: \"items\" is a number, not an array"},
        {"{\"items\": []}", "not a Kubernetes List: no \"kind\""},
        {"{\"kind\": \"Pod\", \"metadata\": {\"name\": \"x\"}}",
         "not a Kubernetes List (kind \"Pod\")"},
        {"{\"kind\": \"List\"}", "List: \"items\" is missing, not an array"},
        {"{\"kind\": \"List\", \"items\": {}}", "List: \"items\" is an object, not an array"},
        {"{\"kind\": \"PodList\", \"items\": null}", "PodList: \"items\" is null, not an array"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fv_k8s_inventory *inv = (void *)1;
        char err[512];
        const char *colon;
        int rc = load_text(cases[i].text, &inv, err, sizeof(err));
        if (rc != -EINVAL)
            fail_msg("%s: rc %d, want -EINVAL", cases[i].text, rc);
        assert_null(inv);
        /* "<path>: <why>" */
        colon = strstr(err, ": ");
        assert_non_null(colon);
        assert_string_equal(colon + 2, cases[i].why);
    }
}

static void test_an_empty_list_is_an_empty_inventory(void **state)
{
    struct fv_k8s_inventory *inv =
        load_text_or_fail("{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": []}");
    struct fv_ip a = ip("10.0.0.1");
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *sp;
    size_t n = 99;

    (void)state;
    assert_null(fv_k8s_pod_by_ip(inv, &a));
    assert_int_equal(fv_k8s_service_by_cluster_ip(inv, &a, 80, IPPROTO_TCP, &svc, &sp), -ENOENT);
    assert_null(fv_k8s_node_by_name(inv, "x"));
    assert_false(fv_k8s_ip_in_pod_cidrs(inv, &a));
    assert_null(fv_k8s_pods(inv, &n));
    assert_int_equal(n, 0);
    assert_null(fv_k8s_network_policies(inv, "default", &n));
    assert_int_equal(fv_k8s_inventory_stats(inv)->items, 0);
    fv_k8s_inventory_free(inv);
}

static const char bad_items[] =
    "{\"kind\": \"List\", \"items\": [\n"
    /* 0: not an object */
    " 42,\n"
    /* 1: no kind */
    " {\"metadata\": {\"name\": \"nokind\"}},\n"
    /* 2: no metadata.name */
    " {\"kind\": \"Pod\", \"apiVersion\": \"v1\", \"metadata\": {\"namespace\": \"a\"}},\n"
    /* 3: a kind the model does not hold */
    " {\"kind\": \"ConfigMap\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"cm\"}},\n"
    /* 4: Antrea's NetworkPolicy shares the kind name; not a Kubernetes one */
    " {\"kind\": \"NetworkPolicy\", \"apiVersion\": \"crd.antrea.io/v1beta1\",\n"
    "  \"metadata\": {\"name\": \"anp\", \"namespace\": \"a\"}},\n"
    /* 5: one bad IP, one good; a label that is not a string; a bad port */
    " {\"kind\": \"Pod\", \"apiVersion\": \"v1\",\n"
    "  \"metadata\": {\"name\": \"p\", \"namespace\": \"a\", \"labels\": {\"app\": \"x\", \"n\": "
    "1}},\n"
    "  \"spec\": {\"containers\": [{\"name\": \"c\", \"ports\": [{\"containerPort\": 70000},\n"
    "            {\"containerPort\": 80, \"protocol\": \"ICMP\"}, {\"containerPort\": 81}]}]},\n"
    "  \"status\": {\"phase\": \"Running\", \"podIPs\": [{\"ip\": \"10.0.0.300\"}, {\"ip\": 7},\n"
    "             {\"ip\": \"fd00::5\"}]}},\n"
    /* 6: a bad ClusterIP and a bad port beside good ones */
    " {\"kind\": \"Service\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"s\", "
    "\"namespace\": "
    "\"a\"},\n"
    "  \"spec\": {\"clusterIPs\": [\"10.96.0.300\", \"10.96.0.7\"], \"ports\": [{\"port\": 0},\n"
    "            {\"port\": 80, \"targetPort\": -1}, {\"name\": \"h\", \"port\": 81}]}},\n"
    /* 7: a bad CIDR and a bad InternalIP beside good ones */
    " {\"kind\": \"Node\", \"apiVersion\": \"v1\", \"metadata\": {\"name\": \"n\"},\n"
    "  \"spec\": {\"podCIDRs\": [\"10.244.0.0/33\", \"10.244.0.0/24\"]},\n"
    "  \"status\": {\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"node-a\"},\n"
    "                            {\"type\": \"InternalIP\", \"address\": \"192.168.1.10\"}]}}\n"
    "]}\n";

static void test_bad_items_and_values_are_skipped_and_counted(void **state)
{
    struct fv_k8s_inventory *inv = load_text_or_fail(bad_items);
    const struct fv_k8s_inventory_stats *st = fv_k8s_inventory_stats(inv);
    const struct fv_k8s_pod *pod;
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *sp;
    const struct fv_k8s_node *node;
    struct fv_ip a;

    (void)state;
    assert_int_equal(st->items, 8);
    assert_int_equal(st->skipped, 3);       /* items 0, 1, 2 */
    assert_int_equal(st->ignored_kinds, 2); /* items 3, 4 */
    /* Pod: 2 IPs, 1 label, 2 ports; Service: 1 IP, 2 ports; Node: 1 CIDR, 1 IP. */
    assert_int_equal(st->bad_values, 5 + 3 + 2);
    assert_string_equal(st->first_issue, "item 0 is not an object");
    assert_int_equal(st->pods, 1);
    assert_int_equal(st->services, 1);
    assert_int_equal(st->nodes, 1);
    assert_int_equal(st->policies, 0);

    pod = fv_k8s_pod_by_name(inv, "a", "p");
    assert_int_equal(pod->n_ips, 1);
    assert_ip(&pod->ips[0], "fd00::5");
    assert_pod_at(inv, "fd00::5", "a", "p");
    assert_int_equal(pod->labels.n, 1);
    assert_int_equal(pod->n_ports, 1);
    assert_int_equal(pod->ports[0].port, 81);

    a = ip("10.96.0.7");
    assert_int_equal(fv_k8s_service_by_cluster_ip(inv, &a, 81, IPPROTO_TCP, &svc, &sp), 0);
    assert_string_equal(sp->ref, "a/s:h");
    assert_int_equal(svc->n_ports, 1);

    node = fv_k8s_node_by_name(inv, "n");
    assert_int_equal(node->n_pod_cidrs, 1);
    assert_cidr(&node->pod_cidrs[0], "10.244.0.0/24");
    assert_int_equal(node->n_addresses, 1);
    assert_ip(&node->addresses[0], "192.168.1.10");
    fv_k8s_inventory_free(inv);
}

static void test_first_issue_names_the_object_and_the_value(void **state)
{
    struct fv_k8s_inventory *inv = load_text_or_fail(
        "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"metadata\": {\"name\": \"p\", "
        "\"namespace\": \"a\"}, \"status\": {\"podIP\": \"10.0.0.300\"}}]}");

    (void)state;
    assert_string_equal(fv_k8s_inventory_stats(inv)->first_issue,
                        "Pod a/p: bad IP \"10.0.0.300\" in status.podIPs");
    fv_k8s_inventory_free(inv);
}

static void test_a_later_duplicate_replaces_the_earlier_object(void **state)
{
    struct fv_k8s_inventory *inv = load_text_or_fail(
        "{\"kind\": \"List\", \"items\": [\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"p\", \"namespace\": \"a\"},\n"
        "  \"status\": {\"phase\": \"Running\", \"podIP\": \"10.0.0.1\"}},\n"
        " {\"kind\": \"NetworkPolicy\", \"apiVersion\": \"networking.k8s.io/v1\",\n"
        "  \"metadata\": {\"name\": \"np\", \"namespace\": \"a\"}, \"spec\": {\"v\": 1}},\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"p\", \"namespace\": \"a\"},\n"
        "  \"status\": {\"phase\": \"Running\", \"podIP\": \"10.0.0.2\"}},\n"
        " {\"kind\": \"NetworkPolicy\", \"apiVersion\": \"networking.k8s.io/v1\",\n"
        "  \"metadata\": {\"name\": \"np\", \"namespace\": \"a\"}, \"spec\": {\"v\": 2}}\n"
        "]}");
    const struct fv_k8s_network_policy *np;
    size_t n;

    (void)state;
    assert_int_equal(fv_k8s_inventory_stats(inv)->duplicates, 2);
    assert_int_equal(fv_k8s_inventory_stats(inv)->pods, 1);
    assert_null(pod_at(inv, "10.0.0.1"));
    assert_pod_at(inv, "10.0.0.2", "a", "p");
    np = fv_k8s_network_policies(inv, "a", &n);
    assert_int_equal(n, 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(np->obj, "spec"), "v")), 2);
    fv_k8s_inventory_free(inv);
}

static void test_a_running_pod_wins_an_ip_claimed_twice(void **state)
{
    /* "a" sorts first, but is only Pending; "c" is Unknown. */
    struct fv_k8s_inventory *inv = load_text_or_fail(
        "{\"kind\": \"List\", \"items\": [\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"a\", \"namespace\": \"x\"},\n"
        "  \"status\": {\"phase\": \"Pending\", \"podIP\": \"10.0.0.1\"}},\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"b\", \"namespace\": \"x\"},\n"
        "  \"status\": {\"phase\": \"Running\", \"podIP\": \"10.0.0.1\"}},\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"c\", \"namespace\": \"x\"},\n"
        "  \"status\": {\"phase\": \"Unknown\", \"podIP\": \"10.0.0.1\"}},\n"
        " {\"kind\": \"Pod\", \"metadata\": {\"name\": \"d\", \"namespace\": \"x\"},\n"
        "  \"status\": {\"podIP\": \"10.0.0.4\"}}\n"
        "]}");

    (void)state;
    assert_pod_at(inv, "10.0.0.1", "x", "b");
    assert_int_equal(fv_k8s_inventory_stats(inv)->ip_conflicts, 2);
    /* No phase yet still owns its IP. */
    assert_pod_at(inv, "10.0.0.4", "x", "d");
    fv_k8s_inventory_free(inv);
}

static void test_typed_lists_give_their_items_the_kind(void **state)
{
    struct fv_k8s_inventory *inv = load_text_or_fail(
        "{\"kind\": \"PodList\", \"apiVersion\": \"v1\", \"items\": [\n"
        " {\"metadata\": {\"name\": \"p\"}, \"status\": {\"phase\": \"Running\", \"podIPs\": "
        "[{\"ip\": \"10.1.0.1\"}]}}]}");

    (void)state;
    /* No namespace: "default", as the API server would have it. */
    assert_pod_at(inv, "10.1.0.1", "default", "p");
    fv_k8s_inventory_free(inv);

    inv = load_text_or_fail("{\"kind\": \"ConfigMapList\", \"items\": [{}, {}]}");
    assert_int_equal(fv_k8s_inventory_stats(inv)->ignored_kinds, 2);
    assert_int_equal(fv_k8s_inventory_stats(inv)->skipped, 0);
    fv_k8s_inventory_free(inv);
}

static void test_builder_takes_single_objects_as_a_watch_would(void **state)
{
    struct fv_k8s_builder *b;
    struct fv_k8s_inventory *inv;
    json_error_t je;
    json_t *pod = json_loads("{\"metadata\": {\"name\": \"w\", \"namespace\": \"n\"},"
                             " \"spec\": {\"nodeName\": \"node-1\"},"
                             " \"status\": {\"phase\": \"Running\", \"podIP\": \"10.2.0.1\"}}",
                             0, &je);
    json_t *np = json_loads("{\"kind\": \"NetworkPolicy\", \"apiVersion\": "
                            "\"networking.k8s.io/v1\", \"metadata\": {\"name\": \"deny\", "
                            "\"namespace\": \"n\"}}",
                            0, &je);
    json_t *nameless = json_loads("{\"kind\": \"Node\", \"metadata\": {}}", 0, &je);
    size_t n;

    (void)state;
    assert_non_null(pod);
    assert_non_null(np);
    assert_int_equal(fv_k8s_builder_new(&b), 0);
    assert_int_equal(fv_k8s_builder_add(b, FV_K8S_POD, pod), 0);
    assert_int_equal(fv_k8s_builder_add(b, FV_K8S_KIND_NONE, np), 0);
    assert_int_equal(fv_k8s_builder_add(b, FV_K8S_KIND_NONE, nameless), -EINVAL);
    json_decref(pod);
    json_decref(np); /* the model holds its own reference */
    json_decref(nameless);
    assert_int_equal(fv_k8s_builder_finish(b, &inv), 0);

    assert_pod_at(inv, "10.2.0.1", "n", "w");
    assert_string_equal(pod_at(inv, "10.2.0.1")->node_name, "node-1");
    assert_string_equal(fv_k8s_network_policies(inv, "n", &n)->name, "deny");
    assert_int_equal(fv_k8s_inventory_stats(inv)->skipped, 1);
    fv_k8s_inventory_free(inv);

    fv_k8s_builder_free(NULL);
    fv_k8s_inventory_free(NULL);
}

static void test_kind_parse_checks_the_api_group(void **state)
{
    (void)state;
    assert_int_equal(fv_k8s_kind_parse("Pod", "v1"), FV_K8S_POD);
    assert_int_equal(fv_k8s_kind_parse("Pod", NULL), FV_K8S_POD);
    assert_int_equal(fv_k8s_kind_parse("Namespace", "v1"), FV_K8S_NAMESPACE);
    assert_int_equal(fv_k8s_kind_parse("NetworkPolicy", "networking.k8s.io/v1"),
                     FV_K8S_NETWORK_POLICY);
    assert_int_equal(fv_k8s_kind_parse("NetworkPolicy", "crd.antrea.io/v1beta1"), FV_K8S_KIND_NONE);
    assert_int_equal(fv_k8s_kind_parse("Pod", "metrics.k8s.io/v1beta1"), FV_K8S_KIND_NONE);
    assert_int_equal(fv_k8s_kind_parse("Endpoints", "v1"), FV_K8S_KIND_NONE);
}

/* ---- Re-reading on change ---- */

static const char one_pod_v1[] =
    "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"metadata\": {\"name\": \"one\", "
    "\"namespace\": \"a\"}, \"status\": {\"phase\": \"Running\", \"podIP\": \"10.9.0.1\"}}]}\n";
static const char one_pod_v2[] =
    "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"metadata\": {\"name\": \"two\", "
    "\"namespace\": \"a\"}, \"status\": {\"phase\": \"Running\", \"podIP\": \"10.9.0.2\"}},\n"
    " {\"kind\": \"Node\", \"metadata\": {\"name\": \"n\"}}]}\n";
static const char one_pod_v3[] =
    "{\"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", \"metadata\": {\"name\": \"three\", "
    "\"namespace\": \"a\"}, \"status\": {\"phase\": \"Running\", \"podIP\": \"10.9.0.3\"}}]}\n";

/* Polls and expects a fresh inventory; returns it. */
static struct fv_k8s_inventory *poll_fresh(struct fv_k8s_file_source *src)
{
    struct fv_k8s_inventory *fresh = NULL;
    int rc = fv_k8s_file_source_poll(src, &fresh);

    if (rc != 1)
        fail_msg("poll: %d (%s), want a fresh inventory", rc, src->err);
    assert_non_null(fresh);
    return fresh;
}

static void assert_unchanged(struct fv_k8s_file_source *src)
{
    struct fv_k8s_inventory *fresh = (void *)1;

    assert_int_equal(fv_k8s_file_source_poll(src, &fresh), 0);
    assert_ptr_equal(fresh, (void *)1);
}

static void test_file_source_rereads_a_file_rewritten_in_place(void **state)
{
    struct fv_k8s_file_source src;
    struct fv_k8s_inventory *inv;
    struct tmp t;

    (void)state;
    tmp_init(&t);
    write_file(t.path, one_pod_v1);
    assert_int_equal(fv_k8s_file_source_init(&src, t.path), 0);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.1", "a", "one");
    fv_k8s_inventory_free(inv);
    assert_unchanged(&src);
    assert_unchanged(&src);

    write_file(t.path, one_pod_v2); /* same inode, new size */
    inv = poll_fresh(&src);
    assert_null(pod_at(inv, "10.9.0.1"));
    assert_pod_at(inv, "10.9.0.2", "a", "two");
    assert_non_null(fv_k8s_node_by_name(inv, "n"));
    fv_k8s_inventory_free(inv);
    assert_unchanged(&src);

    write_file(t.path, one_pod_v3);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.3", "a", "three");
    fv_k8s_inventory_free(inv);

    /* The same bytes again, or a new mtime alone, is no change. */
    write_file(t.path, one_pod_v3);
    assert_unchanged(&src);
    assert_int_equal(utimensat(AT_FDCWD, t.path, NULL, 0), 0);
    assert_unchanged(&src);

    fv_k8s_file_source_fini(&src);
    tmp_fini(&t);
}

static void test_file_source_notices_a_same_size_rewrite_with_the_same_mtime(void **state)
{
    struct fv_k8s_file_source src;
    struct fv_k8s_inventory *inv;
    struct timespec times[2] = {{.tv_sec = 1700000000}, {.tv_sec = 1700000000}};
    char text[sizeof(one_pod_v1)];
    struct tmp t;

    (void)state;
    tmp_init(&t);
    write_file(t.path, one_pod_v1);
    assert_int_equal(utimensat(AT_FDCWD, t.path, times, 0), 0);
    assert_int_equal(fv_k8s_file_source_init(&src, t.path), 0);
    fv_k8s_inventory_free(poll_fresh(&src));

    /* Same length, one digit different, written within the same second
     * as far as the mtime shows. */
    strcpy(text, one_pod_v1);
    strstr(text, "10.9.0.1")[7] = '7';
    write_file(t.path, text);
    assert_int_equal(utimensat(AT_FDCWD, t.path, times, 0), 0);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.7", "a", "one");
    fv_k8s_inventory_free(inv);
    assert_unchanged(&src);

    fv_k8s_file_source_fini(&src);
    tmp_fini(&t);
}

static void test_file_source_picks_up_a_file_renamed_into_place(void **state)
{
    struct fv_k8s_file_source src;
    struct fv_k8s_inventory *inv;
    struct tmp t;

    (void)state;
    tmp_init(&t);
    write_file(t.path, one_pod_v1);
    assert_int_equal(fv_k8s_file_source_init(&src, t.path), 0);
    fv_k8s_inventory_free(poll_fresh(&src));
    assert_unchanged(&src);

    /* What `kubectl get ... > f.new && mv f.new f` does. */
    write_file(t.other, one_pod_v3);
    assert_int_equal(rename(t.other, t.path), 0);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.3", "a", "three");
    assert_null(pod_at(inv, "10.9.0.1"));
    fv_k8s_inventory_free(inv);
    assert_unchanged(&src);

    fv_k8s_file_source_fini(&src);
    tmp_fini(&t);
}

static void test_file_source_keeps_the_old_inventory_when_the_file_goes_bad(void **state)
{
    struct fv_k8s_file_source src;
    struct fv_k8s_inventory *inv, *fresh;
    struct tmp t;

    (void)state;
    tmp_init(&t);
    assert_int_equal(fv_k8s_file_source_init(&src, t.path), 0);

    /* Missing at start: reported once. */
    fresh = (void *)1;
    assert_int_equal(fv_k8s_file_source_poll(&src, &fresh), -ENOENT);
    assert_ptr_equal(fresh, (void *)1);
    assert_non_null(strstr(src.err, t.path));
    assert_unchanged(&src);

    write_file(t.path, one_pod_v1);
    inv = poll_fresh(&src);
    assert_string_equal(src.err, "");

    /* Bad JSON: an error naming the file, the caller's inventory stays. */
    write_file(t.path, "{\"kind\": \"List\", \"items\": [\n");
    assert_int_equal(fv_k8s_file_source_poll(&src, &fresh), -EINVAL);
    assert_ptr_equal(fresh, (void *)1);
    assert_non_null(strstr(src.err, t.path));
    assert_non_null(strstr(src.err, "line"));
    assert_unchanged(&src);
    assert_pod_at(inv, "10.9.0.1", "a", "one");

    /* Valid JSON but not a List. */
    write_file(t.path, "{\"kind\": \"Pod\"}");
    assert_int_equal(fv_k8s_file_source_poll(&src, &fresh), -EINVAL);
    assert_non_null(strstr(src.err, "not a Kubernetes List"));
    assert_unchanged(&src);

    /* Fixed. */
    write_file(t.path, one_pod_v2);
    fv_k8s_inventory_free(inv);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.2", "a", "two");

    /* Deleted, then back. */
    assert_int_equal(unlink(t.path), 0);
    assert_int_equal(fv_k8s_file_source_poll(&src, &fresh), -ENOENT);
    assert_unchanged(&src);
    write_file(t.path, one_pod_v3);
    fv_k8s_inventory_free(inv);
    inv = poll_fresh(&src);
    assert_pod_at(inv, "10.9.0.3", "a", "three");
    fv_k8s_inventory_free(inv);

    fv_k8s_file_source_fini(&src);
    tmp_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_loads_every_object_without_problems,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_pods_are_found_by_ipv4_and_ipv6, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_host_network_pods_are_not_found_by_their_node_ip,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_succeeded_and_failed_pods_give_their_ips_back,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_pod_ip_falls_back_to_status_pod_ip, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_unscheduled_pod_has_no_node_and_no_ips, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_container_ports_keep_names_and_protocols,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_services_are_found_by_cluster_ip_port_and_protocol,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_service_fields_follow_the_spec, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_unnamed_port_is_named_namespace_slash_service,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(
            test_service_port_name_formatter_matches_ref_and_fails_cleanly, setup_cluster,
            teardown_cluster),
        cmocka_unit_test_setup_teardown(test_headless_and_external_name_services_have_no_cluster_ip,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_nodes_have_pod_cidrs_and_internal_ips, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_pod_cidr_lookup_names_the_node, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_namespaces_keep_their_labels, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_pod_labels_become_a_sorted_json_object, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test_setup_teardown(test_network_policies_keep_their_json_by_namespace,
                                        setup_cluster, teardown_cluster),
        cmocka_unit_test_setup_teardown(test_objects_are_sorted_and_strings_interned, setup_cluster,
                                        teardown_cluster),
        cmocka_unit_test(test_a_missing_file_is_an_errno_naming_the_file),
        cmocka_unit_test(test_a_file_that_is_not_json_names_line_and_column),
        cmocka_unit_test(test_json_that_is_not_a_list_is_rejected_with_the_reason),
        cmocka_unit_test(test_an_empty_list_is_an_empty_inventory),
        cmocka_unit_test(test_bad_items_and_values_are_skipped_and_counted),
        cmocka_unit_test(test_first_issue_names_the_object_and_the_value),
        cmocka_unit_test(test_a_later_duplicate_replaces_the_earlier_object),
        cmocka_unit_test(test_a_running_pod_wins_an_ip_claimed_twice),
        cmocka_unit_test(test_typed_lists_give_their_items_the_kind),
        cmocka_unit_test(test_builder_takes_single_objects_as_a_watch_would),
        cmocka_unit_test(test_kind_parse_checks_the_api_group),
        cmocka_unit_test(test_file_source_rereads_a_file_rewritten_in_place),
        cmocka_unit_test(test_file_source_notices_a_same_size_rewrite_with_the_same_mtime),
        cmocka_unit_test(test_file_source_picks_up_a_file_renamed_into_place),
        cmocka_unit_test(test_file_source_keeps_the_old_inventory_when_the_file_goes_bad),
    };

    return cmocka_run_group_tests_name("k8s inventory", tests, NULL, NULL);
}
