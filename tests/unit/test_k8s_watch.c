/*
 * test_k8s_watch.c - the Kubernetes API source of the inventory
 * (k8s/watch.h): list + watch against a replay API server, credentials
 * from kubeconfigs and the service account, failures and stopping.
 *
 * tests/k8s-api/replay_server.py plays the API server: each test starts it
 * (fork + exec of python3) with a scenario from tests/k8s-api/, on an
 * ephemeral loopback port, over HTTP or HTTPS (certificates made with the
 * openssl CLI once per run), and reads back its request log (one JSON line
 * per request) to check what the client sent.  Scenarios that must not run
 * ahead of the test wait for a file the test creates ({"await": "go"}).
 * Every wait is bounded (WAIT_MS).  Tests run from the repository root, or
 * with FV_K8S_API_DIR defined.
 */
#include <setjmp.h> /* cmocka.h needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/ip.h"
#include "base/log.h"
#include "k8s/inventory.h"
#include "k8s/watch.h"

#ifndef FV_K8S_API_DIR
#define FV_K8S_API_DIR "tests/k8s-api"
#endif
#define WAIT_MS 10000

/* The directory of this run: certificates, and one subdirectory per test. */
static char run_dir[64];

/* ---- Files ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    buf[fread(buf, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return buf;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *base64(const char *path)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *in = read_text(path), *out;
    size_t n, o = 0;

    assert_non_null(in);
    n = strlen(in);
    out = malloc(n / 3 * 4 + 8);
    assert_non_null(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    free(in);
    return out;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- The replay server ---- */

struct srv {
    pid_t pid;     /* 0 when not running */
    char dir[128]; /* port file, request log, control files */
    char log[160]; /* the request log */
    unsigned port; /* where it listens */
    char url[80];  /* http(s)://host:port */
};

/* Starts the server on scenario (a file in FV_K8S_API_DIR) in dir, with
 * extra arguments (NULL-terminated, or NULL). */
static void srv_start(struct srv *s, const char *dir, const char *scenario, bool tls,
                      const char *const *extra)
{
    char scen[256], port_file[200], err_file[200], certs[128], cert[160], key[160];
    const char *argv[24];
    uint64_t deadline;
    int n = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->log, sizeof(s->log), "%s/requests.log", dir);
    snprintf(scen, sizeof(scen), "%s/%s", FV_K8S_API_DIR, scenario);
    snprintf(port_file, sizeof(port_file), "%s/port", dir);
    snprintf(err_file, sizeof(err_file), "%s/server.err", dir);
    snprintf(certs, sizeof(certs), "%s/certs", run_dir);
    snprintf(cert, sizeof(cert), "%s/server.crt", certs);
    snprintf(key, sizeof(key), "%s/server.key", certs);
    argv[n++] = "python3";
    argv[n++] = FV_K8S_API_DIR "/replay_server.py";
    argv[n++] = "--scenario";
    argv[n++] = scen;
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--log";
    argv[n++] = s->log;
    if (tls) {
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int out = open("/dev/null", O_WRONLY);
        int errfd = open(err_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, 1);
        dup2(errfd, 2);
        execv("/usr/bin/python3", (char *const *)argv);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    deadline = fv_clock_mono_ms() + WAIT_MS;
    while (fv_clock_mono_ms() < deadline) {
        char *text = read_text(port_file);
        int status;
        if (text != NULL) {
            s->port = (unsigned)atoi(text);
            free(text);
            break;
        }
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            char *err = read_text(err_file);
            s->pid = 0;
            fail_msg("the replay server exited: %s", err ? err : "?");
        }
        sleep_ms(10);
    }
    if (s->port == 0)
        fail_msg("the replay server did not start within %d ms", WAIT_MS);
    snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%u", tls ? "https" : "http", s->port);
}

static void srv_stop(struct srv *s)
{
    uint64_t deadline = fv_clock_mono_ms() + 2000;
    int status;

    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (fv_clock_mono_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
}

/* Lets the scenario's {"await": name} go on. */
static void srv_go(const struct srv *s, const char *name)
{
    char path[200];

    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    write_file(path, "");
}

/* The requests logged so far to path (watch: 0 lists, 1 watches, -1 both;
 * path NULL: all paths), in order; the caller frees the array. */
static json_t *srv_requests(const struct srv *s, const char *path, int watch)
{
    char *text = read_text(s->log), *line, *save = NULL;
    json_t *out = json_array();

    for (line = text ? strtok_r(text, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *r = json_loads(line, 0, NULL);
        const char *p = json_string_value(json_object_get(r, "path"));
        bool w = json_is_true(json_object_get(r, "watch"));
        if (r == NULL)
            fail_msg("bad line in the request log: %s", line);
        if (p != NULL && (path == NULL || strcmp(p, path) == 0) && (watch < 0 || (watch == 1) == w))
            json_array_append(out, r);
        json_decref(r);
    }
    free(text);
    return out;
}

static const char *param(const json_t *req, const char *key)
{
    return json_string_value(json_object_get(json_object_get(req, "params"), key));
}

static const char *field(const json_t *req, const char *key)
{
    return json_string_value(json_object_get(req, key));
}

/* ---- Per-test state ---- */

struct t {
    char dir[128];                /* this test's files */
    struct srv srv;               /* the replay server, if started */
    struct fv_k8s_watch *w;       /* the source, if started */
    struct fv_k8s_inventory *inv; /* the newest inventory taken */
    struct fv_k8s_watch_cfg cfg;  /* the config of the next start */
    char kubeconfig[200];         /* dir/kubeconfig */
};

static int setup(void **state)
{
    static unsigned n;
    struct t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "%s/t%u", run_dir, n++);
    if (mkdir(t->dir, 0700) < 0)
        return -1;
    snprintf(t->kubeconfig, sizeof(t->kubeconfig), "%s/kubeconfig", t->dir);
    /* Fast enough for tests: short debounce and backoff. */
    t->cfg.debounce_ms = 10;
    t->cfg.backoff_initial_ms = 20;
    t->cfg.backoff_max_ms = 100;
    t->cfg.watch_timeout_s = 30;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    fv_k8s_watch_stop(t->w);
    fv_k8s_inventory_free(t->inv);
    srv_stop(&t->srv);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("FLOWVIS_SERVICEACCOUNT_DIR");
    rm_tree(t->dir);
    free(t);
    return 0;
}

/* A kubeconfig with one cluster, context and user; cluster_extra and
 * user_lines are YAML lines indented by four spaces (user_lines NULL: an
 * empty user). */
static void kubeconfig(const char *path, const char *server, const char *cluster_extra,
                       const char *user_lines)
{
    char text[16384];

    snprintf(text, sizeof(text),
             "apiVersion: v1\n"
             "kind: Config\n"
             "preferences: {}\n"
             "clusters:\n"
             "- name: test\n"
             "  cluster:\n"
             "    server: %s\n"
             "%s"
             "contexts:\n"
             "- name: test\n"
             "  context:\n"
             "    cluster: test\n"
             "    user: tester\n"
             "    namespace: default\n"
             "current-context: test\n"
             "users:\n"
             "- name: tester\n"
             "  user:%s%s",
             server, cluster_extra ? cluster_extra : "", user_lines ? "\n" : " {}\n",
             user_lines ? user_lines : "");
    write_file(path, text);
}

static void start(struct t *t)
{
    char err[512] = "";
    int rc = fv_k8s_watch_start(&t->cfg, &t->w, err, sizeof(err));

    if (rc != 0)
        fail_msg("fv_k8s_watch_start: %d %s", rc, err);
}

/* Starts the server on scenario over HTTP and the source with a token. */
static void start_http(struct t *t, const char *scenario)
{
    srv_start(&t->srv, t->dir, scenario, false, NULL);
    kubeconfig(t->kubeconfig, t->srv.url, NULL, "    token: t0ken-basic\n");
    t->cfg.kubeconfig = t->kubeconfig;
    start(t);
}

static void describe(struct t *t, char *buf, size_t len)
{
    struct fv_k8s_watch_stats st;

    fv_k8s_watch_stats(t->w, &st);
    snprintf(buf, len,
             "lists=%llu relists=%llu watches=%llu events=%llu bookmarks=%llu errors=%llu "
             "builds=%llu synced=%d pods=%zu last_error=\"%s\"",
             (unsigned long long)st.lists, (unsigned long long)st.relists,
             (unsigned long long)st.watches, (unsigned long long)st.events,
             (unsigned long long)st.bookmarks, (unsigned long long)st.errors,
             (unsigned long long)st.builds, st.synced, st.objects[FV_K8S_POD], st.last_error);
}

typedef bool (*inv_pred_fn)(const struct fv_k8s_inventory *inv);
typedef bool (*stats_pred_fn)(const struct fv_k8s_watch_stats *st);

/* Takes inventories until pred holds for the newest (t->inv). */
static void wait_inv(struct t *t, inv_pred_fn pred, const char *what)
{
    uint64_t deadline = fv_clock_mono_ms() + WAIT_MS;
    char why[512];

    for (;;) {
        struct fv_k8s_inventory *fresh;
        if (fv_k8s_watch_take(t->w, &fresh) == 1) {
            fv_k8s_inventory_free(t->inv);
            t->inv = fresh;
        }
        if (t->inv != NULL && pred(t->inv))
            return;
        if (fv_clock_mono_ms() > deadline)
            break;
        sleep_ms(5);
    }
    describe(t, why, sizeof(why));
    fail_msg("no inventory with %s within %d ms: %s", what, WAIT_MS, why);
}

static void wait_stats(struct t *t, stats_pred_fn pred, const char *what,
                       struct fv_k8s_watch_stats *st)
{
    uint64_t deadline = fv_clock_mono_ms() + WAIT_MS;
    char why[512];

    for (;;) {
        fv_k8s_watch_stats(t->w, st);
        if (pred(st))
            return;
        if (fv_clock_mono_ms() > deadline)
            break;
        sleep_ms(5);
    }
    describe(t, why, sizeof(why));
    fail_msg("stats never showed %s within %d ms: %s", what, WAIT_MS, why);
}

/* Waits until the server logged at least n requests of path (watch as in
 * srv_requests); returns them. */
static json_t *wait_requests(struct t *t, const char *path, int watch, size_t n)
{
    uint64_t deadline = fv_clock_mono_ms() + WAIT_MS;

    for (;;) {
        json_t *r = srv_requests(&t->srv, path, watch);
        if (json_array_size(r) >= n)
            return r;
        json_decref(r);
        if (fv_clock_mono_ms() > deadline)
            fail_msg("fewer than %zu requests of %s within %d ms", n, path, WAIT_MS);
        sleep_ms(5);
    }
}

/* ---- Inventory checks ---- */

static struct fv_ip ip(const char *s)
{
    struct fv_ip out;

    if (fv_ip_parse(s, &out) < 0)
        fail_msg("bad IP in the test: %s", s);
    return out;
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

static const char *service_at(const struct fv_k8s_inventory *inv, const char *addr, uint16_t port,
                              uint8_t proto)
{
    const struct fv_k8s_service *svc;
    const struct fv_k8s_service_port *sp;
    struct fv_ip a = ip(addr);

    if (fv_k8s_service_by_cluster_ip(inv, &a, port, proto, &svc, &sp) != 0)
        return NULL;
    return sp->ref;
}

static size_t n_pods(const struct fv_k8s_inventory *inv)
{
    size_t n;

    fv_k8s_pods(inv, &n);
    return n;
}

/* Everything parse.c put in the inventory, as text, to compare two builds. */
static void dump_inventory(const struct fv_k8s_inventory *inv, struct fv_sbuf *out)
{
    const struct fv_k8s_pod *pods;
    const struct fv_k8s_service *svcs;
    const struct fv_k8s_node *nodes;
    const struct fv_k8s_namespace *nss;
    const struct fv_k8s_network_policy *nps;
    char a[FV_IP_STRLEN];
    size_t n;

    pods = fv_k8s_pods(inv, &n);
    for (size_t i = 0; i < n; i++) {
        const struct fv_k8s_pod *p = &pods[i];
        fv_sbuf_printf(out, "pod %s/%s node=%s phase=%d host=%d ips=", p->ns, p->name, p->node_name,
                       p->phase, p->host_network);
        for (uint32_t j = 0; j < p->n_ips; j++)
            fv_sbuf_printf(out, "%s,", fv_ip_str(&p->ips[j], a));
        for (uint32_t j = 0; j < p->n_ports; j++)
            fv_sbuf_printf(out, " port=%s:%u/%u", p->ports[j].name, p->ports[j].port,
                           p->ports[j].proto);
        fv_sbuf_puts(out, " labels=");
        fv_k8s_pod_labels_json(p, out);
        fv_sbuf_putc(out, '\n');
    }
    svcs = fv_k8s_services(inv, &n);
    for (size_t i = 0; i < n; i++) {
        const struct fv_k8s_service *s = &svcs[i];
        fv_sbuf_printf(out, "svc %s/%s type=%d headless=%d ips=", s->ns, s->name, s->type,
                       s->headless);
        for (uint32_t j = 0; j < s->n_ips; j++)
            fv_sbuf_printf(out, "%s,", fv_ip_str(&s->ips[j], a));
        for (uint32_t j = 0; j < s->n_ports; j++)
            fv_sbuf_printf(out, " port=%s:%u/%u->%u/%s node=%u", s->ports[j].ref, s->ports[j].port,
                           s->ports[j].proto, s->ports[j].target_port, s->ports[j].target_port_name,
                           s->ports[j].node_port);
        for (uint32_t j = 0; j < s->selector.n; j++)
            fv_sbuf_printf(out, " sel=%s=%s", s->selector.v[j].key, s->selector.v[j].value);
        fv_sbuf_putc(out, '\n');
    }
    nodes = fv_k8s_nodes(inv, &n);
    for (size_t i = 0; i < n; i++) {
        fv_sbuf_printf(out, "node %s cidrs=%u addrs=", nodes[i].name, nodes[i].n_pod_cidrs);
        for (uint32_t j = 0; j < nodes[i].n_addresses; j++)
            fv_sbuf_printf(out, "%s,", fv_ip_str(&nodes[i].addresses[j], a));
        fv_sbuf_putc(out, '\n');
    }
    nss = fv_k8s_namespaces(inv, &n);
    for (size_t i = 0; i < n; i++) {
        fv_sbuf_printf(out, "ns %s", nss[i].name);
        for (uint32_t j = 0; j < nss[i].labels.n; j++)
            fv_sbuf_printf(out, " %s=%s", nss[i].labels.v[j].key, nss[i].labels.v[j].value);
        fv_sbuf_putc(out, '\n');
    }
    nps = fv_k8s_network_policies(inv, NULL, &n);
    for (size_t i = 0; i < n; i++) {
        char *spec = json_dumps(json_object_get(nps[i].obj, "spec"), JSON_SORT_KEYS);
        fv_sbuf_printf(out, "np %s/%s %s\n", nps[i].ns, nps[i].name, spec);
        free(spec);
    }
}

/* ---- Predicates ---- */

static bool has_web0(const struct fv_k8s_inventory *inv)
{
    return fv_k8s_pod_by_name(inv, "default", "web-0") != NULL;
}

static bool basic_events_applied(const struct fv_k8s_inventory *inv)
{
    return fv_k8s_pod_by_name(inv, "default", "web-2") != NULL &&
           fv_k8s_pod_by_name(inv, "shop", "cart-7c9f8b6d4-qz5mn") == NULL &&
           pod_at(inv, "10.244.2.99") != NULL &&
           fv_k8s_service_by_name(inv, "default", "web") == NULL;
}

static bool has_5000_pods(const struct fv_k8s_inventory *inv)
{
    return n_pods(inv) == 5000;
}

static bool only_web0(const struct fv_k8s_inventory *inv)
{
    return n_pods(inv) == 1 && has_web0(inv);
}

static bool web0_is_v2(const struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_pod *p = fv_k8s_pod_by_name(inv, "default", "web-0");
    const char *v = p ? fv_k8s_labels_get(&p->labels, "version") : NULL;

    return v != NULL && strcmp(v, "v2") == 0;
}

static bool two_watches_one_bookmark(const struct fv_k8s_watch_stats *st)
{
    return st->watches >= 2 && st->bookmarks == 1;
}

static bool three_relists(const struct fv_k8s_watch_stats *st)
{
    return st->relists == 3 && st->watches >= 3;
}

static bool two_watches(const struct fv_k8s_watch_stats *st)
{
    return st->watches >= 2;
}

static bool one_watch(const struct fv_k8s_watch_stats *st)
{
    return st->watches >= 1;
}

static bool failed_once(const struct fv_k8s_watch_stats *st)
{
    return st->errors >= 1;
}

/* ---- 1. List + watch of all five kinds ---- */

static const char *const all_paths[] = {"/api/v1/pods", "/api/v1/services", "/api/v1/nodes",
                                        "/api/v1/namespaces",
                                        "/apis/networking.k8s.io/v1/networkpolicies"};

static void check_first_inventory(const struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_pod *p = fv_k8s_pod_by_name(inv, "default", "web-0");
    const struct fv_k8s_network_policy *np;
    const struct fv_k8s_namespace *ns;
    struct fv_ip in_cidr = ip("10.244.2.5");
    size_t n;

    assert_int_equal(n_pods(inv), 5);
    assert_pod_at(inv, "10.244.1.10", "default", "web-0");
    assert_pod_at(inv, "10.244.2.11", "default", "web-1");
    assert_pod_at(inv, "10.244.1.2", "kube-system", "coredns-5d78c9869d-x7k2p");
    assert_pod_at(inv, "fd00:10:244:2::20", "shop", "cart-7c9f8b6d4-qz5mn");
    assert_null(pod_at(inv, "172.18.0.2")); /* hostNetwork */
    assert_string_equal(p->node_name, "node-1");
    assert_int_equal(p->phase, FV_K8S_PHASE_RUNNING);
    assert_string_equal(fv_k8s_labels_get(&p->labels, "app"), "web");
    assert_int_equal(p->n_ports, 1);
    assert_string_equal(p->ports[0].name, "http");
    assert_int_equal(p->ports[0].port, 8080);
    assert_true(fv_k8s_pod_by_name(inv, "kube-system", "kube-apiserver-node-1")->host_network);

    assert_string_equal(service_at(inv, "10.96.10.10", 80, IPPROTO_TCP), "default/web:http");
    assert_string_equal(service_at(inv, "10.96.0.10", 53, IPPROTO_UDP), "kube-system/kube-dns:dns");
    assert_string_equal(service_at(inv, "10.96.0.10", 53, IPPROTO_TCP),
                        "kube-system/kube-dns:dns-tcp");
    assert_string_equal(service_at(inv, "10.96.0.1", 443, IPPROTO_TCP), "default/kubernetes:https");
    assert_string_equal(fv_k8s_service_by_name(inv, "default", "web")->ports[0].target_port_name,
                        "http");

    assert_string_equal(fv_k8s_node_by_pod_cidr(inv, &in_cidr)->name, "node-2");
    assert_int_equal(fv_k8s_node_by_name(inv, "node-1")->n_addresses, 1);
    ns = fv_k8s_namespace_by_name(inv, "shop");
    assert_non_null(ns);
    assert_string_equal(fv_k8s_labels_get(&ns->labels, "team"), "payments");

    assert_non_null(fv_k8s_network_policies(inv, NULL, &n));
    assert_int_equal(n, 2);
    np = fv_k8s_network_policies(inv, "shop", &n);
    assert_int_equal(n, 1);
    assert_string_equal(np->name, "allow-web-to-cart");
    assert_string_equal(json_string_value(json_object_get(np->obj, "kind")), "NetworkPolicy");
    assert_non_null(json_object_get(json_object_get(np->obj, "spec"), "ingress"));
    assert_null(json_object_get(json_object_get(np->obj, "metadata"), "managedFields"));
    assert_int_equal(fv_k8s_inventory_stats(inv)->skipped, 0);
    assert_int_equal(fv_k8s_inventory_stats(inv)->bad_values, 0);
}

static void check_after_events(const struct fv_k8s_inventory *inv)
{
    assert_int_equal(n_pods(inv), 5);
    assert_pod_at(inv, "10.244.2.99", "default", "web-1");
    assert_null(pod_at(inv, "10.244.2.11"));
    assert_pod_at(inv, "10.244.1.12", "default", "web-2");
    assert_pod_at(inv, "10.244.1.10", "default", "web-0");
    assert_null(fv_k8s_pod_by_name(inv, "shop", "cart-7c9f8b6d4-qz5mn"));
    assert_null(pod_at(inv, "10.244.2.20"));
    assert_null(pod_at(inv, "fd00:10:244:2::20"));
    assert_null(fv_k8s_service_by_name(inv, "default", "web"));
    assert_null(service_at(inv, "10.96.10.10", 80, IPPROTO_TCP));
    assert_string_equal(service_at(inv, "10.96.0.10", 53, IPPROTO_UDP), "kube-system/kube-dns:dns");
}

static void check_basic_requests(struct t *t)
{
    for (size_t i = 0; i < sizeof(all_paths) / sizeof(all_paths[0]); i++) {
        json_t *lists = srv_requests(&t->srv, all_paths[i], 0);
        json_t *watches = wait_requests(t, all_paths[i], 1, 1);
        const json_t *l = json_array_get(lists, 0), *w = json_array_get(watches, 0);
        const char *ts = param(w, "timeoutSeconds");

        assert_int_equal(json_array_size(lists), 1);
        assert_int_equal(json_array_size(watches), 1);
        assert_string_equal(field(l, "query"), "limit=500");
        assert_string_equal(param(w, "watch"), "1");
        assert_string_equal(param(w, "allowWatchBookmarks"), "true");
        assert_string_equal(param(w, "resourceVersion"), "1000");
        assert_true(atoi(ts) >= 27 && atoi(ts) <= 30); /* 30 s jittered by up to -10% */
        assert_null(param(w, "fieldSelector"));
        assert_string_equal(field(l, "authorization"), "Bearer t0ken-basic");
        assert_string_equal(field(w, "authorization"), "Bearer t0ken-basic");
        assert_string_equal(field(l, "accept"), "application/json");
        assert_string_equal(field(w, "accept"), "application/json");
        assert_true(strncmp(field(l, "user_agent"), "flowvis/", 8) == 0);
        json_decref(lists);
        json_decref(watches);
    }
}

static void test_lists_and_watches_all_five_kinds_and_applies_events(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    struct fv_k8s_inventory *again;

    start_http(t, "scenario-basic.json");
    assert_int_equal(fv_k8s_watch_wait(t->w, WAIT_MS), 0);
    wait_inv(t, has_web0, "web-0");
    check_first_inventory(t->inv);
    fv_k8s_watch_stats(t->w, &st);
    assert_true(st.synced);
    assert_int_equal(st.lists, 5);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.objects[FV_K8S_POD], 5);
    assert_int_equal(st.objects[FV_K8S_SERVICE], 3);
    assert_int_equal(st.objects[FV_K8S_NODE], 2);
    assert_int_equal(st.objects[FV_K8S_NAMESPACE], 3);
    assert_int_equal(st.objects[FV_K8S_NETWORK_POLICY], 2);
    assert_string_equal(st.last_error, "");
    /* Nothing changed since: nothing new to take. */
    sleep_ms(50);
    assert_int_equal(fv_k8s_watch_take(t->w, &again), 0);

    check_basic_requests(t);
    srv_go(&t->srv, "go");
    wait_inv(t, basic_events_applied, "the watch events applied");
    check_after_events(t->inv);
    fv_k8s_watch_stats(t->w, &st);
    assert_int_equal(st.events, 4);
    assert_int_equal(st.objects[FV_K8S_POD], 5);
    assert_int_equal(st.objects[FV_K8S_SERVICE], 2);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.relists, 0);
    assert_true(st.builds >= 2);
}

/* ---- 2. Pagination and pruning ---- */

static void test_large_list_is_paged_and_objects_are_pruned(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *lists, *watches;
    size_t i;

    t->cfg.kinds = 1u << FV_K8S_POD;
    start_http(t, "scenario-paging.json");
    wait_inv(t, has_5000_pods, "5000 Pods");
    assert_pod_at(t->inv, "10.64.0.0", "default", "web-0-00000");
    assert_pod_at(t->inv, "10.64.19.135", "default", "web-0-04999");
    assert_pod_at(t->inv, "10.64.9.196", "default", "web-0-02500");
    assert_null(pod_at(t->inv, "10.64.19.136"));
    fv_k8s_watch_stats(t->w, &st);
    assert_int_equal(st.lists, 10);
    assert_int_equal(st.objects[FV_K8S_POD], 5000);

    lists = srv_requests(&t->srv, "/api/v1/pods", 0);
    assert_int_equal(json_array_size(lists), 10);
    assert_null(param(json_array_get(lists, 0), "continue"));
    for (i = 0; i < 10; i++) {
        assert_string_equal(param(json_array_get(lists, i), "limit"), "500");
        if (i > 0)
            assert_non_null(param(json_array_get(lists, i), "continue"));
    }
    watches = wait_requests(t, "/api/v1/pods", 1, 1);
    assert_string_equal(param(json_array_get(watches, 0), "resourceVersion"), "5000");
    json_decref(lists);
    json_decref(watches);

    /* Memory: each kept Pod is about 330 bytes of JSON, against 4 KB
     * served (managedFields, annotations, conditions, volumes...). */
    assert_true(st.json_bytes[FV_K8S_POD] > 5000 * 250);
    assert_true(st.json_bytes[FV_K8S_POD] < 5000 * 400);
}

static json_t *load_list(const char *name)
{
    char path[256];
    json_error_t jerr;
    json_t *l;

    snprintf(path, sizeof(path), "%s/%s", FV_K8S_API_DIR, name);
    l = json_load_file(path, 0, &jerr);
    if (l == NULL)
        fail_msg("%s: %s", path, jerr.text);
    return l;
}

static char *pruned_text(enum fv_k8s_kind kind, const char *file, size_t item)
{
    json_t *l = load_list(file);
    json_t *p = fv_k8s_watch_prune(kind, json_array_get(json_object_get(l, "items"), item));
    char *s;

    assert_non_null(p);
    s = json_dumps(p, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(p);
    json_decref(l);
    return s;
}

static void test_prune_keeps_only_what_the_parser_reads(void **state)
{
    json_t *empty;
    char *s;

    (void)state;
    s = pruned_text(FV_K8S_POD, "pods.json", 2);
    assert_string_equal(
        s,
        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"labels\":{\"k8s-app\":\"kube-"
        "dns\","
        "\"pod-template-hash\":\"5d78c9869d\"},\"name\":\"coredns-5d78c9869d-x7k2p\","
        "\"namespace\":\"kube-system\"},\"spec\":{\"containers\":[{\"ports\":[{\"containerPort\":"
        "53,\"name\":\"dns\",\"protocol\":\"UDP\"},{\"containerPort\":53,\"name\":\"dns-tcp\","
        "\"protocol\":\"TCP\"},{\"containerPort\":9153,\"name\":\"metrics\",\"protocol\":\"TCP\"}"
        "]}],\"nodeName\":\"node-1\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.2\","
        "\"podIPs\":[{\"ip\":\"10.244.1.2\"}]}}");
    free(s);
    s = pruned_text(FV_K8S_POD, "pods.json", 3);
    assert_non_null(strstr(s, "\"hostNetwork\":true"));
    assert_null(strstr(s, "containers")); /* no ports: nothing to keep */
    free(s);
    s = pruned_text(FV_K8S_SERVICE, "services.json", 1);
    assert_string_equal(
        s,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":"
        "\"default\"},\"spec\":{\"clusterIP\":\"10.96.10.10\",\"clusterIPs\":[\"10.96.10.10\"],"
        "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":\"http\"}],"
        "\"selector\":{\"app\":\"web\"},\"type\":\"ClusterIP\"}}");
    free(s);
    s = pruned_text(FV_K8S_NODE, "nodes.json", 0);
    assert_string_equal(
        s, "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"node-1\"},\"spec\":{"
           "\"podCIDR\":\"10.244.1.0/24\",\"podCIDRs\":[\"10.244.1.0/24\"]},\"status\":{"
           "\"addresses\":[{\"address\":\"172.18.0.2\",\"type\":\"InternalIP\"},{\"address\":"
           "\"node-1\",\"type\":\"Hostname\"}]}}");
    free(s);
    s = pruned_text(FV_K8S_NAMESPACE, "namespaces.json", 2);
    assert_string_equal(s,
                        "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"labels\":{"
                        "\"kubernetes.io/metadata.name\":\"shop\",\"team\":\"payments\"},"
                        "\"name\":\"shop\"}}");
    free(s);
    s = pruned_text(FV_K8S_NETWORK_POLICY, "networkpolicies.json", 1);
    assert_string_equal(
        s, "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\","
           "\"metadata\":{\"name\":\"default-deny-ingress\",\"namespace\":"
           "\"default\"},\"spec\":{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}}");
    free(s);
    assert_null(fv_k8s_watch_prune(FV_K8S_POD, NULL));
    empty = json_object();
    assert_null(fv_k8s_watch_prune(FV_K8S_KIND_NONE, empty));
    json_decref(empty);
}

/* The same fixture through the file path (whole objects) and through
 * pruning (what the watch keeps) gives the same inventory. */
static void test_pruned_objects_build_the_same_inventory_as_whole_ones(void **state)
{
    static const char *const files[] = {"pods.json", "services.json", "nodes.json",
                                        "namespaces.json", "networkpolicies.json"};
    static const enum fv_k8s_kind kinds[] = {FV_K8S_POD, FV_K8S_SERVICE, FV_K8S_NODE,
                                             FV_K8S_NAMESPACE, FV_K8S_NETWORK_POLICY};
    struct fv_k8s_builder *whole, *pruned;
    struct fv_k8s_inventory *a, *b;
    struct fv_sbuf da, db;
    char err[256];

    (void)state;
    assert_int_equal(fv_k8s_builder_new(&whole), 0);
    assert_int_equal(fv_k8s_builder_new(&pruned), 0);
    for (size_t i = 0; i < 5; i++) {
        json_t *l = load_list(files[i]), *item;
        size_t j;
        assert_int_equal(fv_k8s_builder_add_list(whole, l, err, sizeof(err)), 0);
        json_array_foreach(json_object_get(l, "items"), j, item)
        {
            json_t *p = fv_k8s_watch_prune(kinds[i], item);
            assert_non_null(p);
            assert_int_equal(fv_k8s_builder_add(pruned, kinds[i], p), 0);
            json_decref(p);
        }
        json_decref(l);
    }
    assert_int_equal(fv_k8s_builder_finish(whole, &a), 0);
    assert_int_equal(fv_k8s_builder_finish(pruned, &b), 0);
    fv_sbuf_init(&da, 1 << 20);
    fv_sbuf_init(&db, 1 << 20);
    dump_inventory(a, &da);
    dump_inventory(b, &db);
    assert_true(da.len > 1000);
    assert_string_equal(da.p, db.p);
    fv_sbuf_fini(&da);
    fv_sbuf_fini(&db);
    fv_k8s_inventory_free(a);
    fv_k8s_inventory_free(b);
}

/* ---- 3. Bookmarks ---- */

static void test_bookmark_sets_the_resource_version_of_the_next_watch(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *watches;

    t->cfg.kinds = 1u << FV_K8S_POD;
    start_http(t, "scenario-bookmark.json");
    wait_stats(t, two_watches_one_bookmark, "a bookmark and a second watch", &st);
    watches = wait_requests(t, "/api/v1/pods", 1, 2);
    assert_string_equal(param(json_array_get(watches, 0), "resourceVersion"), "1000");
    assert_string_equal(param(json_array_get(watches, 1), "resourceVersion"), "1050");
    json_decref(watches);
    wait_inv(t, web0_is_v2, "the MODIFIED web-0");
    fv_k8s_watch_stats(t->w, &st);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.bookmarks, 1);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.objects[FV_K8S_POD], 5); /* a bookmark is not an object */
}

/* ---- 4. 410 Gone ---- */

static void test_410_gone_relists_and_drops_objects_missing_from_the_new_list(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *lists, *watches;
    size_t fresh_lists = 0;

    t->cfg.kinds = 1u << FV_K8S_POD;
    t->cfg.page_size = 2;
    start_http(t, "scenario-relist.json");
    wait_stats(t, three_relists, "three relists", &st);
    wait_inv(t, only_web0, "only web-0 left");
    assert_pod_at(t->inv, "10.244.1.10", "default", "web-0");
    assert_null(fv_k8s_pod_by_name(t->inv, "default", "web-1"));
    assert_null(pod_at(t->inv, "10.244.2.11"));
    assert_null(fv_k8s_pod_by_name(t->inv, "shop", "cart-7c9f8b6d4-qz5mn"));
    fv_k8s_watch_stats(t->w, &st);
    assert_int_equal(st.relists, 3);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.events, 1); /* the MODIFIED before the ERROR event */
    assert_int_equal(st.objects[FV_K8S_POD], 1);

    /* Lists: page 1, expired page 2; 3 pages; 1 page; 1 page. */
    lists = srv_requests(&t->srv, "/api/v1/pods", 0);
    assert_int_equal(json_array_size(lists), 7);
    for (size_t i = 0; i < json_array_size(lists); i++) {
        json_t *r = json_array_get(lists, i);
        fresh_lists += param(r, "continue") == NULL;
        assert_string_equal(param(r, "limit"), "2");
    }
    assert_int_equal(fresh_lists, 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lists, 1), "status")), 410);
    watches = wait_requests(t, "/api/v1/pods", 1, 3);
    assert_string_equal(param(json_array_get(watches, 0), "resourceVersion"), "1000");
    assert_string_equal(param(json_array_get(watches, 1), "resourceVersion"), "2000");
    assert_string_equal(param(json_array_get(watches, 2), "resourceVersion"), "3000");
    json_decref(lists);
    json_decref(watches);
}

static bool two_relists(const struct fv_k8s_watch_stats *st)
{
    return st->relists == 2 && st->watches >= 3;
}

static void test_bad_event_and_error_event_are_errors_followed_by_a_relist(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *lists, *watches;

    t->cfg.kinds = 1u << FV_K8S_POD;
    start_http(t, "scenario-badevent.json");
    wait_stats(t, two_relists, "two relists", &st);
    assert_int_equal(st.errors, 2);
    assert_int_equal(st.events, 0);
    assert_string_equal(st.last_error, "pods: watch /api/v1/pods: watch ERROR event code=500: "
                                       "etcd cluster is unavailable or misconfigured");
    lists = srv_requests(&t->srv, "/api/v1/pods", 0);
    assert_int_equal(json_array_size(lists), 3);
    watches = wait_requests(t, "/api/v1/pods", 1, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(param(json_array_get(watches, i), "resourceVersion"), "1000");
    json_decref(lists);
    json_decref(watches);
    wait_inv(t, has_web0, "web-0");
    assert_int_equal(n_pods(t->inv), 5);
}

/* ---- 5. A dropped connection ---- */

static void test_dropped_connection_rewatches_from_the_last_complete_event(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *watches;

    t->cfg.kinds = 1u << FV_K8S_POD;
    start_http(t, "scenario-drop.json");
    wait_stats(t, two_watches, "a second watch", &st);
    watches = wait_requests(t, "/api/v1/pods", 1, 2);
    assert_string_equal(param(json_array_get(watches, 0), "resourceVersion"), "1000");
    assert_string_equal(param(json_array_get(watches, 1), "resourceVersion"), "1001");
    json_decref(watches);
    wait_inv(t, web0_is_v2, "the complete event applied");
    /* The half event (web-1 to 10.244.2.77) was not applied. */
    assert_pod_at(t->inv, "10.244.2.11", "default", "web-1");
    assert_null(pod_at(t->inv, "10.244.2.77"));
    fv_k8s_watch_stats(t->w, &st);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.relists, 0);
    assert_non_null(strstr(st.last_error, "pods: watch /api/v1/pods"));
}

/* ---- 6. Server errors ---- */

static double req_time(const json_t *reqs, size_t i)
{
    return json_real_value(json_object_get(json_array_get(reqs, i), "t"));
}

static void test_server_errors_back_off_and_recover(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    json_t *lists, *watches;

    t->cfg.kinds = 1u << FV_K8S_POD;
    t->cfg.backoff_initial_ms = 100;
    t->cfg.backoff_max_ms = 1000;
    start_http(t, "scenario-errors.json");
    wait_inv(t, has_web0, "web-0");
    watches = wait_requests(t, "/api/v1/pods", 1, 2);
    wait_stats(t, two_watches, "a second watch", &st);
    assert_int_equal(st.errors, 3);
    assert_int_equal(st.lists, 1);
    assert_string_equal(st.last_error, "pods: watch /api/v1/pods: HTTP 401: Unauthorized");

    /* Backoff: 100 ms, then 200 ms (each +-20%), then 400 ms after the 401. */
    lists = srv_requests(&t->srv, "/api/v1/pods", 0);
    assert_int_equal(json_array_size(lists), 3);
    assert_true(req_time(lists, 1) - req_time(lists, 0) >= 0.075);
    assert_true(req_time(lists, 2) - req_time(lists, 1) >= 0.155);
    assert_true(req_time(watches, 1) - req_time(watches, 0) >= 0.315);
    json_decref(lists);
    json_decref(watches);
}

/* ---- 7. Kubeconfig over HTTPS ---- */

static const char *cert(const char *name)
{
    static char paths[8][160];
    static unsigned next;
    char *p = paths[next++ % 8];

    snprintf(p, 160, "%s/certs/%s", run_dir, name);
    return p;
}

/* Starts an HTTPS server (requiring a client certificate when mtls) on the
 * simple scenario and the source on the kubeconfig with cluster_extra and
 * user_lines, and waits for the inventory. */
static void https_roundtrip(struct t *t, bool mtls, const char *cluster_extra,
                            const char *user_lines)
{
    const char *extra[] = {"--client-ca", cert("ca.crt"), NULL};

    srv_start(&t->srv, t->dir, "scenario-simple.json", true, mtls ? extra : NULL);
    kubeconfig(t->kubeconfig, t->srv.url, cluster_extra, user_lines);
    t->cfg.kubeconfig = t->kubeconfig;
    t->cfg.kinds = 1u << FV_K8S_POD;
    start(t);
    wait_inv(t, has_web0, "web-0 over HTTPS");
}

static void test_https_with_ca_file_and_token(void **state)
{
    struct t *t = *state;
    char cluster[256];
    json_t *r;

    snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", cert("ca.crt"));
    https_roundtrip(t, false, cluster, "    token: abc.def.ghi\n");
    r = wait_requests(t, "/api/v1/pods", -1, 2);
    assert_string_equal(field(json_array_get(r, 0), "authorization"), "Bearer abc.def.ghi");
    assert_string_equal(field(json_array_get(r, 1), "authorization"), "Bearer abc.def.ghi");
    assert_null(field(json_array_get(r, 0), "client_cert"));
    json_decref(r);
}

static void test_https_with_ca_data_and_token_file_relative_to_the_kubeconfig(void **state)
{
    struct t *t = *state;
    char *ca = base64(cert("ca.crt"));
    char cluster[8192], path[256];
    json_t *r;

    snprintf(cluster, sizeof(cluster), "    certificate-authority-data: %s\n", ca);
    free(ca);
    snprintf(path, sizeof(path), "%s/token", t->dir);
    write_file(path, "from-a-file\n");
    https_roundtrip(t, false, cluster, "    tokenFile: token\n");
    r = wait_requests(t, "/api/v1/pods", -1, 2);
    assert_string_equal(field(json_array_get(r, 0), "authorization"), "Bearer from-a-file");
    json_decref(r);
}

static void test_https_with_client_certificate_files(void **state)
{
    struct t *t = *state;
    char cluster[256], user[512];
    json_t *r;

    snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", cert("ca.crt"));
    snprintf(user, sizeof(user), "    client-certificate: %s\n    client-key: %s\n",
             cert("client.crt"), cert("client.key"));
    https_roundtrip(t, true, cluster, user);
    r = wait_requests(t, "/api/v1/pods", -1, 2);
    assert_string_equal(field(json_array_get(r, 0), "client_cert"), "O=flowvis,CN=flowvis-agent");
    assert_null(field(json_array_get(r, 0), "authorization"));
    json_decref(r);
}

static void test_https_with_client_certificate_data(void **state)
{
    struct t *t = *state;
    char *ca = base64(cert("ca.crt")), *crt = base64(cert("client.crt"));
    char *key = base64(cert("client.key"));
    char cluster[8192], user[16384];
    json_t *r;

    snprintf(cluster, sizeof(cluster), "    certificate-authority-data: %s\n", ca);
    snprintf(user, sizeof(user), "    client-certificate-data: %s\n    client-key-data: %s\n", crt,
             key);
    free(ca);
    free(crt);
    free(key);
    https_roundtrip(t, true, cluster, user);
    r = wait_requests(t, "/api/v1/pods", -1, 2);
    assert_string_equal(field(json_array_get(r, 1), "client_cert"), "O=flowvis,CN=flowvis-agent");
    json_decref(r);
}

static void test_https_with_the_wrong_ca_fails_with_the_reason(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    char cluster[256];

    srv_start(&t->srv, t->dir, "scenario-simple.json", true, NULL);
    snprintf(cluster, sizeof(cluster), "    certificate-authority: %s\n", cert("other-ca.crt"));
    kubeconfig(t->kubeconfig, t->srv.url, cluster, "    token: abc\n");
    t->cfg.kubeconfig = t->kubeconfig;
    t->cfg.kinds = 1u << FV_K8S_POD;
    start(t);
    wait_stats(t, failed_once, "a failed request", &st);
    assert_non_null(strstr(st.last_error, "pods: list /api/v1/pods: "));
    assert_non_null(strstr(st.last_error, "certificate"));
    assert_false(st.synced);
    assert_int_equal(fv_k8s_watch_wait(t->w, 50), -ETIMEDOUT);
}

/* ---- 8. In-cluster service account ---- */

static void service_account(struct t *t, const char *host, const char *token)
{
    char dir[200], path[256], port[16];
    char *ca = read_text(cert("ca.crt"));

    snprintf(dir, sizeof(dir), "%s/sa", t->dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    write_file(path, ca);
    free(ca);
    snprintf(path, sizeof(path), "%s/token", dir);
    write_file(path, token);
    snprintf(port, sizeof(port), "%u", t->srv.port);
    setenv("KUBERNETES_SERVICE_HOST", host, 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    setenv("FLOWVIS_SERVICEACCOUNT_DIR", dir, 1);
}

static void test_in_cluster_reads_the_token_again_for_every_request(void **state)
{
    struct t *t = *state;
    char path[256], tmp[256];
    json_t *r;

    srv_start(&t->srv, t->dir, "scenario-rotate.json", true, NULL);
    service_account(t, "127.0.0.1", "sa-token-1\n");
    t->cfg.kinds = 1u << FV_K8S_POD;
    start(t);
    wait_inv(t, has_web0, "web-0 in-cluster");
    json_decref(wait_requests(t, "/api/v1/pods", 1, 1));
    /* The kubelet swaps the token file; the next request must use it. */
    snprintf(path, sizeof(path), "%s/sa/token", t->dir);
    snprintf(tmp, sizeof(tmp), "%s/sa/token.new", t->dir);
    write_file(tmp, "sa-token-2\n");
    assert_int_equal(rename(tmp, path), 0);
    srv_go(&t->srv, "rotated");
    r = wait_requests(t, "/api/v1/pods", 1, 2);
    assert_string_equal(field(json_array_get(r, 0), "authorization"), "Bearer sa-token-1");
    assert_string_equal(field(json_array_get(r, 1), "authorization"), "Bearer sa-token-2");
    json_decref(r);
    r = srv_requests(&t->srv, "/api/v1/pods", 0);
    assert_string_equal(field(json_array_get(r, 0), "authorization"), "Bearer sa-token-1");
    json_decref(r);
}

static void test_in_cluster_ipv6_service_host_goes_in_brackets(void **state)
{
    struct t *t = *state;
    const char *extra[] = {"--host", "::1", NULL};
    json_t *r;

    srv_start(&t->srv, t->dir, "scenario-simple.json", true, extra);
    service_account(t, "::1", "v6-token");
    t->cfg.kinds = 1u << FV_K8S_POD;
    start(t);
    wait_inv(t, has_web0, "web-0 over IPv6");
    r = wait_requests(t, "/api/v1/pods", 0, 1);
    assert_string_equal(field(json_array_get(r, 0), "authorization"), "Bearer v6-token");
    json_decref(r);
}

/* ---- 9. Bad credentials ---- */

static void expect_start_error(struct t *t, const char *want)
{
    struct fv_k8s_watch *w = (struct fv_k8s_watch *)1;
    char err[512] = "";
    int rc = fv_k8s_watch_start(&t->cfg, &w, err, sizeof(err));

    if (rc != -EINVAL || strcmp(err, want) != 0)
        fail_msg("start: rc=%d err=\"%s\", want -EINVAL \"%s\"", rc, err, want);
    assert_null(w);
}

static void test_bad_credentials_fail_start_naming_the_file_and_the_problem(void **state)
{
    struct t *t = *state;
    const char *kc = t->kubeconfig;
    char want[512], text[1024];

    t->cfg.kubeconfig = kc;
    snprintf(want, sizeof(want), "kubeconfig %s: No such file or directory", kc);
    expect_start_error(t, want);

    write_file(kc, "apiVersion: v1\nkind: Config\nclusters: []\n");
    snprintf(want, sizeof(want), "kubeconfig %s: no current-context is set", kc);
    expect_start_error(t, want);

    write_file(kc, "apiVersion: v1\ncurrent-context: foo\ncontexts:\n- name: bar\n  context:\n"
                   "    cluster: c\n");
    snprintf(want, sizeof(want), "kubeconfig %s: current-context 'foo' has no context entry", kc);
    expect_start_error(t, want);

    snprintf(
        text, sizeof(text),
        "current-context: ctx\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n"
        "    user: ghost\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n"
        "users:\n- name: someone\n  user:\n    token: x\n");
    write_file(kc, text);
    snprintf(want, sizeof(want),
             "kubeconfig %s: context 'ctx' names user 'ghost', which has no users entry", kc);
    expect_start_error(t, want);

    write_file(kc, "current-context: ctx\ncontexts:\n- name: ctx\n  context:\n    cluster: nope\n"
                   "clusters: []\n");
    snprintf(want, sizeof(want),
             "kubeconfig %s: context 'ctx' names cluster 'nope', which has no clusters entry", kc);
    expect_start_error(t, want);

    kubeconfig(kc, "https://10.0.0.1:6443", NULL,
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
               "      command: aws\n      args: [eks, get-token]\n");
    snprintf(want, sizeof(want),
             "kubeconfig %s: user 'tester' uses an exec credential plugin (command 'aws'), which "
             "flowvis does not support: give the user a token, tokenFile or client certificate",
             kc);
    expect_start_error(t, want);

    kubeconfig(kc, "https://10.0.0.1:6443", NULL, "    auth-provider:\n      name: gcp\n");
    snprintf(want, sizeof(want),
             "kubeconfig %s: user 'tester' uses auth-provider 'gcp', which flowvis does not "
             "support: give the user a token, tokenFile or client certificate",
             kc);
    expect_start_error(t, want);

    kubeconfig(kc, "https://10.0.0.1:6443", "    certificate-authority: missing-ca.crt\n",
               "    token: x\n");
    snprintf(want, sizeof(want),
             "kubeconfig %s: cluster 'test': certificate-authority %s/missing-ca.crt: No such file "
             "or directory",
             kc, t->dir);
    expect_start_error(t, want);

    kubeconfig(kc, "https://10.0.0.1:6443", "    certificate-authority-data: not*base64\n", NULL);
    snprintf(want, sizeof(want),
             "kubeconfig %s: cluster 'test': certificate-authority-data is not valid base64", kc);
    expect_start_error(t, want);

    kubeconfig(kc, "https://10.0.0.1:6443", NULL, "    client-certificate: ../certs/client.crt\n");
    snprintf(want, sizeof(want),
             "kubeconfig %s: user 'tester': a client certificate needs both client-certificate "
             "and client-key",
             kc);
    expect_start_error(t, want);

    kubeconfig(kc, "10.0.0.1:6443", NULL, NULL);
    snprintf(want, sizeof(want),
             "kubeconfig %s: cluster 'test': server '10.0.0.1:6443' is not an https:// or http:// "
             "URL",
             kc);
    expect_start_error(t, want);

    write_file(kc, "current-context: [unclosed\n");
    snprintf(want, sizeof(want), "kubeconfig %s: line 2 column 1: did not find expected ',' or ']'",
             kc);
    expect_start_error(t, want);
}

static void test_in_cluster_start_fails_outside_a_pod_and_without_a_token(void **state)
{
    struct t *t = *state;
    char want[512], path[256];

    t->cfg.kubeconfig = NULL;
    expect_start_error(t, "service account: KUBERNETES_SERVICE_HOST is not set (not in a Pod? "
                          "set inventory.kubeconfig)");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    snprintf(path, sizeof(path), "%s/no-sa", t->dir);
    setenv("FLOWVIS_SERVICEACCOUNT_DIR", path, 1);
    snprintf(want, sizeof(want), "service account: %s/token: No such file or directory", path);
    expect_start_error(t, want);

    t->cfg.kubeconfig = "";
    t->cfg.kinds = 1u << 9;
    expect_start_error(t, "inventory: unknown kind bits 0x200");
}

/* ---- 10. node_name ---- */

static void test_node_name_selects_the_pods_of_one_node(void **state)
{
    struct t *t = *state;
    json_t *pods, *svcs;

    t->cfg.kinds = 1u << FV_K8S_POD | 1u << FV_K8S_SERVICE;
    t->cfg.node_name = "node-1";
    start_http(t, "scenario-simple.json");
    wait_inv(t, has_web0, "web-0");
    pods = wait_requests(t, "/api/v1/pods", -1, 2);
    svcs = wait_requests(t, "/api/v1/services", -1, 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *p = json_array_get(pods, i), *s = json_array_get(svcs, i);
        assert_string_equal(param(p, "fieldSelector"), "spec.nodeName=node-1");
        assert_non_null(strstr(field(p, "query"), "fieldSelector=spec.nodeName%3Dnode-1"));
        assert_null(param(s, "fieldSelector"));
    }
    assert_false(json_is_true(json_object_get(json_array_get(pods, 0), "watch")));
    assert_true(json_is_true(json_object_get(json_array_get(pods, 1), "watch")));
    json_decref(pods);
    json_decref(svcs);
}

/* ---- 11. Stopping ---- */

static void test_stop_is_prompt_while_a_watch_is_held_open(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    uint64_t t0;

    t->cfg.kinds = 1u << FV_K8S_POD;
    t->cfg.watch_timeout_s = 300;
    start_http(t, "scenario-simple.json");
    wait_stats(t, one_watch, "a watch", &st);
    json_decref(wait_requests(t, "/api/v1/pods", 1, 1));
    sleep_ms(100);
    t0 = fv_clock_mono_ms();
    fv_k8s_watch_stop(t->w);
    t->w = NULL;
    assert_true(fv_clock_mono_ms() - t0 < 2000);
}

static void test_stop_is_prompt_during_a_backoff(void **state)
{
    struct t *t = *state;
    struct fv_k8s_watch_stats st;
    uint64_t t0;
    json_t *r;

    t->cfg.kinds = 1u << FV_K8S_POD;
    t->cfg.backoff_initial_ms = 60000;
    t->cfg.backoff_max_ms = 60000;
    start_http(t, "scenario-down.json");
    wait_stats(t, failed_once, "a failed request", &st);
    assert_non_null(strstr(st.last_error, "HTTP 503"));
    sleep_ms(100);
    r = srv_requests(&t->srv, NULL, -1);
    assert_int_equal(json_array_size(r), 1); /* waiting out the backoff */
    json_decref(r);
    t0 = fv_clock_mono_ms();
    fv_k8s_watch_stop(t->w);
    t->w = NULL;
    assert_true(fv_clock_mono_ms() - t0 < 2000);
    fv_k8s_watch_stop(NULL);
}

/* ---- Run ---- */

/* A CA, a server certificate for 127.0.0.1, ::1 and localhost, a client
 * certificate, and an unrelated CA, made with the openssl CLI. */
static int make_certs(void)
{
    char cmd[4096];

    snprintf(
        cmd, sizeof(cmd),
        "set -e; cd %s; mkdir certs; cd certs; exec >openssl.log 2>&1;"
        "k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';"
        "openssl req -x509 $k -keyout ca.key -out ca.crt -days 2 -subj /CN=flowvis-test-ca;"
        "openssl req -x509 $k -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=other-ca;"
        "openssl req $k -keyout server.key -out server.csr -subj /CN=kube-apiserver;"
        "printf 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\\n' > server.ext;"
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile server.ext -out server.crt;"
        "openssl req $k -keyout client.key -out client.csr -subj /O=flowvis/CN=flowvis-agent;"
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext;"
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile client.ext -out client.crt",
        run_dir);
    if (system(cmd) != 0) {
        char path[128], *log;
        snprintf(path, sizeof(path), "%s/certs/openssl.log", run_dir);
        log = read_text(path);
        fprintf(stderr, "cannot make test certificates with openssl:\n%s\n", log ? log : "");
        free(log);
        return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(run_dir, "/tmp/fv-k8s-watch-XXXXXX");
    if (mkdtemp(run_dir) == NULL)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    if (make_certs() < 0) {
        rm_tree(run_dir);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rm_tree(run_dir);
    return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_lists_and_watches_all_five_kinds_and_applies_events),
        T(test_large_list_is_paged_and_objects_are_pruned),
        T(test_prune_keeps_only_what_the_parser_reads),
        T(test_pruned_objects_build_the_same_inventory_as_whole_ones),
        T(test_bookmark_sets_the_resource_version_of_the_next_watch),
        T(test_410_gone_relists_and_drops_objects_missing_from_the_new_list),
        T(test_bad_event_and_error_event_are_errors_followed_by_a_relist),
        T(test_dropped_connection_rewatches_from_the_last_complete_event),
        T(test_server_errors_back_off_and_recover),
        T(test_https_with_ca_file_and_token),
        T(test_https_with_ca_data_and_token_file_relative_to_the_kubeconfig),
        T(test_https_with_client_certificate_files),
        T(test_https_with_client_certificate_data),
        T(test_https_with_the_wrong_ca_fails_with_the_reason),
        T(test_in_cluster_reads_the_token_again_for_every_request),
        T(test_in_cluster_ipv6_service_host_goes_in_brackets),
        T(test_bad_credentials_fail_start_naming_the_file_and_the_problem),
        T(test_in_cluster_start_fails_outside_a_pod_and_without_a_token),
        T(test_node_name_selects_the_pods_of_one_node),
        T(test_stop_is_prompt_while_a_watch_is_held_open),
        T(test_stop_is_prompt_during_a_backoff),
    };

    return cmocka_run_group_tests_name("k8s watch", tests, group_setup, group_teardown);
}
