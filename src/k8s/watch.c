/*
 * watch.c - the Kubernetes API list+watch source of the inventory (watch.h,
 * docs/kubernetes-api.md).
 *
 * Layout: the endpoints and the pruning of objects; the per-kind object
 * store; building and publishing inventories; starting requests (URL,
 * headers, libcurl options); the write callbacks (a list page's body, a
 * watch's stream of newline-delimited events); what happens when a request
 * ends (next page, watch, relist, backoff); the thread loop; the public
 * functions.
 *
 * Everything below the public functions runs on the watch thread, which
 * alone touches struct kstate and the object store.  The mutex guards only
 * the mailbox (pending, have_first) and the published copy of the stats.
 */
#include "k8s/watch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/sbuf.h"
#include "k8s/kubeconfig.h"

#ifndef FV_VERSION
#define FV_VERSION "0.1.0-dev"
#endif

#define USER_AGENT "flowvis/" FV_VERSION " (inventory)"
#define EVENT_MAX (16u << 20)      /* one watch event; larger = error + relist */
#define LIST_MAX (256u << 20)      /* one list page (limit= keeps pages far smaller) */
#define ERROR_BODY_MAX (16u << 10) /* what is kept of a failed response's body */
#define URL_MAX (64u << 10)        /* server + path + query, continue token included */
#define CONNECT_TIMEOUT_MS 10000L
#define LIST_TIMEOUT_MS 300000L /* one list page, start to end */
#define WATCH_SLACK_S 30u       /* a watch outliving timeoutSeconds by this is dead */
#define SHORT_WATCH_MS 1000u    /* an empty watch shorter than this is suspicious */
#define ERROR_LOG_MS 60000u     /* repeated failures of a kind: one line per minute */
#define POLL_MAX_MS 1000u       /* the loop wakes at least this often */

#define ALL_KINDS                                                                                  \
    ((1u << FV_K8S_POD) | (1u << FV_K8S_SERVICE) | (1u << FV_K8S_NODE) |                           \
     (1u << FV_K8S_NAMESPACE) | (1u << FV_K8S_NETWORK_POLICY))

/* ---- Endpoints ---- */

struct endpoint {
    const char *name;        /* "pods": the resource, for log lines and messages */
    const char *path;        /* the collection's URL path (all namespaces) */
    const char *kind;        /* the objects' kind */
    const char *api_version; /* and apiVersion */
};

static const struct endpoint endpoints[FV_K8S_KIND_COUNT] = {
    [FV_K8S_POD] = {"pods", "/api/v1/pods", "Pod", "v1"},
    [FV_K8S_SERVICE] = {"services", "/api/v1/services", "Service", "v1"},
    [FV_K8S_NODE] = {"nodes", "/api/v1/nodes", "Node", "v1"},
    [FV_K8S_NAMESPACE] = {"namespaces", "/api/v1/namespaces", "Namespace", "v1"},
    [FV_K8S_NETWORK_POLICY] = {"networkpolicies", "/apis/networking.k8s.io/v1/networkpolicies",
                               "NetworkPolicy", "networking.k8s.io/v1"},
};

/* ---- Pruning ---- */

/* Sets dst[key] to src[key], shared by reference, when present.  0 or -1;
 * like jansson's setters, a NULL dst is an error, so failures propagate. */
static int take(json_t *dst, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);

    return v == NULL ? 0 : json_object_set(dst, key, v);
}

/* A new empty object set as dst[key]; NULL on failure. */
static json_t *child(json_t *dst, const char *key)
{
    json_t *o = json_object();

    return json_object_set_new(dst, key, o) == 0 ? o : NULL;
}

static int prune_meta(json_t *out, const json_t *obj, bool labels)
{
    const json_t *md = json_object_get(obj, "metadata");
    json_t *m = child(out, "metadata");
    int rc = take(m, md, "name") | take(m, md, "namespace");

    if (labels)
        rc |= take(m, md, "labels");
    return m == NULL ? -1 : rc;
}

/* spec.containers[].ports[] as {name, containerPort, protocol}; containers
 * without ports are dropped (parse.c concatenates the ports in order). */
static int prune_containers(json_t *spec_out, const json_t *spec)
{
    const json_t *containers = json_object_get(spec, "containers");
    json_t *arr, *c;
    size_t i, j;
    int rc = 0;

    if (json_array_size(containers) == 0)
        return 0;
    arr = json_array();
    json_array_foreach(containers, i, c)
    {
        const json_t *ports = json_object_get(c, "ports");
        json_t *pa, *co, *p;
        if (json_array_size(ports) == 0)
            continue;
        co = json_object();
        pa = json_array();
        rc |= json_object_set_new(co, "ports", pa);
        json_array_foreach(ports, j, p)
        {
            json_t *po = json_object();
            rc |= take(po, p, "name") | take(po, p, "containerPort") | take(po, p, "protocol");
            rc |= json_array_append_new(pa, po);
        }
        rc |= json_array_append_new(arr, co);
    }
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return rc;
    }
    return rc | json_object_set_new(spec_out, "containers", arr);
}

static int prune_pod(json_t *out, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *status = json_object_get(obj, "status");
    json_t *s = child(out, "spec");
    json_t *st = child(out, "status");
    int rc = prune_meta(out, obj, true);

    rc |= take(s, spec, "nodeName") | take(s, spec, "hostNetwork") | prune_containers(s, spec);
    rc |= take(st, status, "phase") | take(st, status, "podIP") | take(st, status, "podIPs");
    return s == NULL || st == NULL ? -1 : rc;
}

static int prune_service(json_t *out, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    json_t *s = child(out, "spec");
    int rc = prune_meta(out, obj, false);

    rc |= take(s, spec, "type") | take(s, spec, "clusterIP") | take(s, spec, "clusterIPs");
    rc |= take(s, spec, "ports") | take(s, spec, "selector");
    return s == NULL ? -1 : rc;
}

static int prune_node(json_t *out, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const json_t *status = json_object_get(obj, "status");
    json_t *s = child(out, "spec");
    json_t *st = child(out, "status");
    int rc = prune_meta(out, obj, false);

    rc |= take(s, spec, "podCIDR") | take(s, spec, "podCIDRs") | take(st, status, "addresses");
    return s == NULL || st == NULL ? -1 : rc;
}

json_t *fv_k8s_watch_prune(enum fv_k8s_kind kind, json_t *obj)
{
    const struct endpoint *ep;
    json_t *out;
    int rc;

    if (kind <= FV_K8S_KIND_NONE || kind >= FV_K8S_KIND_COUNT || !json_is_object(obj))
        return NULL;
    ep = &endpoints[kind];
    out = json_object();
    rc = json_object_set_new(out, "kind", json_string(ep->kind));
    rc |= json_object_set_new(out, "apiVersion", json_string(ep->api_version));
    switch (kind) {
    case FV_K8S_POD:
        rc |= prune_pod(out, obj);
        break;
    case FV_K8S_SERVICE:
        rc |= prune_service(out, obj);
        break;
    case FV_K8S_NODE:
        rc |= prune_node(out, obj);
        break;
    case FV_K8S_NAMESPACE:
        rc |= prune_meta(out, obj, true);
        break;
    default:
        /* A future policy evaluator reads the whole spec. */
        rc |= prune_meta(out, obj, false) | take(out, obj, "spec");
        break;
    }
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- State ---- */

enum req { REQ_LIST, REQ_WATCH };

/* Why a write callback stopped a transfer. */
enum abort_why {
    ABORT_NONE = 0,
    ABORT_RELIST,       /* an ERROR event with a 410 Status: the RV expired */
    ABORT_ERROR_RELIST, /* a bad, oversized or ERROR event: an event may be lost */
    ABORT_ERROR,        /* a list page too large, out of memory */
};

struct fv_k8s_watch;

/* One kind: its transfer, its objects, its place in list/watch/backoff. */
struct kstate {
    struct fv_k8s_watch *w;         /* the owner */
    const struct endpoint *ep;      /* what is listed and watched */
    enum fv_k8s_kind kind;          /* FV_K8S_POD... */
    bool enabled;                   /* in cfg.kinds */
    CURL *easy;                     /* reused for every request of this kind */
    struct curl_slist *headers;     /* of the request in flight */
    bool busy;                      /* a request is in the multi handle */
    enum req req;                   /* the request in flight, or the next one */
    uint64_t next_at_ms;            /* the next request starts at this time */
    json_t *objs;                   /* "namespace/name" -> pruned object */
    size_t bytes;                   /* compact JSON size of objs */
    json_t *listing;                /* objects of the list in progress, or NULL */
    size_t listing_bytes;           /* their compact JSON size */
    char *cont;                     /* continue token of the next page, or NULL */
    unsigned pages;                 /* pages of the list in progress */
    char *rv;                       /* resourceVersion to watch from; NULL before a list */
    bool listed;                    /* listed at least once */
    struct fv_sbuf buf;             /* a list page, an error body, or the unfinished event */
    size_t scanned;                 /* bytes of buf known to hold no '\n' */
    long status;                    /* HTTP status of the request in flight; 0 until known */
    enum abort_why abort;           /* why the write callback stopped the transfer */
    char abort_msg[200];            /* and the details */
    uint64_t started_ms;            /* when the request in flight started */
    uint64_t watch_events;          /* events (bookmarks too) in the watch in flight */
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's message for the request */
    uint64_t backoff_ms;            /* the last backoff delay; 0 = none since the last success */
    unsigned short_watches;         /* consecutive empty watches shorter than SHORT_WATCH_MS */
    unsigned failures;              /* consecutive failed requests */
    struct fv_ratelimit err_rl;     /* for their log lines */
};

struct fv_k8s_watch {
    struct fv_k8s_watch_cfg cfg;         /* with defaults applied; strings owned below */
    char *node_name;                     /* owned copy of cfg.node_name, or NULL */
    char *field_selector;                /* "spec.nodeName=..." URL-encoded, or NULL */
    struct fv_k8s_creds creds;           /* server and credentials */
    CURLM *multi;                        /* every transfer; owned by the thread once started */
    pthread_t thread;                    /* the watch thread */
    atomic_bool stop;                    /* set by fv_k8s_watch_stop */
    struct kstate k[FV_K8S_KIND_COUNT];  /* [0] unused */
    bool dirty;                          /* objects changed since the last build */
    bool announced;                      /* the first full sync was logged */
    uint64_t last_build_ms;              /* when the last build ran; 0 = never */
    uint64_t rng;                        /* xorshift state for jitter */
    struct fv_k8s_watch_stats st;        /* the thread's counters */
    pthread_mutex_t mu;                  /* guards what follows */
    pthread_cond_t cond;                 /* signalled when the first inventory is published */
    struct fv_k8s_inventory *pending;    /* built, not yet taken; owned */
    bool have_first;                     /* an inventory was published */
    struct fv_k8s_watch_stats published; /* copy of st for fv_k8s_watch_stats */
};

static uint64_t rnd(struct fv_k8s_watch *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* d scaled by a random factor in [1 - pct/100, 1 + pct/100]. */
static uint64_t jitter(struct fv_k8s_watch *w, uint64_t d, unsigned pct)
{
    uint64_t span = d * pct / 100;

    return span == 0 ? d : d - span + rnd(w) % (2 * span + 1);
}

static void set_error(struct kstate *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct kstate *k, const char *fmt, ...)
{
    char msg[sizeof(k->w->st.last_error) - 32];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(k->w->st.last_error, sizeof(k->w->st.last_error), "%s: %s", k->ep->name, msg);
}

/* ---- The object store ---- */

static size_t json_size(const json_t *v)
{
    return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

/* "namespace/name" of obj into key; -EINVAL without a name. */
static int object_key(const json_t *obj, char *key, size_t keylen)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    int n;

    if (name == NULL || *name == '\0')
        return -EINVAL;
    n = snprintf(key, keylen, "%s/%s", ns ? ns : "", name);
    return n < 0 || (size_t)n >= keylen ? -EINVAL : 0;
}

/* Prunes obj and stores it in set under its key.  0, -EINVAL (no name:
 * ignored by the caller, as the builder would skip it), -ENOMEM. */
static int store_put(struct kstate *k, json_t *set, size_t *bytes, json_t *obj)
{
    char key[512];
    json_t *old, *pruned;

    if (object_key(obj, key, sizeof(key)) < 0)
        return -EINVAL;
    pruned = fv_k8s_watch_prune(k->kind, obj);
    if (pruned == NULL)
        return -ENOMEM;
    old = json_object_get(set, key);
    if (old != NULL)
        *bytes -= json_size(old);
    *bytes += json_size(pruned);
    return json_object_set_new(set, key, pruned) == 0 ? 0 : -ENOMEM;
}

static void store_del(struct kstate *k, const json_t *obj)
{
    char key[512];
    json_t *old;

    if (object_key(obj, key, sizeof(key)) < 0)
        return;
    old = json_object_get(k->objs, key);
    if (old == NULL)
        return;
    k->bytes -= json_size(old);
    json_object_del(k->objs, key);
}

static void set_rv(struct kstate *k, const char *rv)
{
    char *copy;

    if (rv == NULL || *rv == '\0')
        return;
    copy = strdup(rv);
    if (copy == NULL)
        return; /* keep the older RV: a watch from it replays a little more */
    free(k->rv);
    k->rv = copy;
}

static void reset_listing(struct kstate *k)
{
    json_decref(k->listing);
    k->listing = NULL;
    k->listing_bytes = 0;
    free(k->cont);
    k->cont = NULL;
    k->pages = 0;
}

/* ---- Building and publishing ---- */

static bool all_listed(const struct fv_k8s_watch *w)
{
    for (int i = 1; i < FV_K8S_KIND_COUNT; i++)
        if (w->k[i].enabled && !w->k[i].listed)
            return false;
    return true;
}

static int build(struct fv_k8s_watch *w, struct fv_k8s_inventory **out)
{
    struct fv_k8s_builder *b;
    int rc = fv_k8s_builder_new(&b);

    if (rc < 0)
        return rc;
    for (int i = 1; i < FV_K8S_KIND_COUNT && rc == 0; i++) {
        const char *key;
        json_t *obj;
        if (!w->k[i].enabled)
            continue;
        json_object_foreach(w->k[i].objs, key, obj)
        {
            (void)key;
            /* -EINVAL (a malformed object) is counted by the builder. */
            if (fv_k8s_builder_add(b, (enum fv_k8s_kind)i, obj) == -ENOMEM) {
                rc = -ENOMEM;
                break;
            }
        }
    }
    if (rc < 0) {
        fv_k8s_builder_free(b);
        return rc;
    }
    return fv_k8s_builder_finish(b, out);
}

/* Copies the thread's counters for fv_k8s_watch_stats; under w->mu. */
static void copy_stats_locked(struct fv_k8s_watch *w)
{
    w->st.synced = all_listed(w);
    for (int i = 1; i < FV_K8S_KIND_COUNT; i++) {
        w->st.objects[i] = json_object_size(w->k[i].objs);
        w->st.json_bytes[i] = w->k[i].bytes;
    }
    w->published = w->st;
}

static void publish_stats(struct fv_k8s_watch *w)
{
    pthread_mutex_lock(&w->mu);
    copy_stats_locked(w);
    pthread_mutex_unlock(&w->mu);
}

/* Publishes inv with the stats that describe it, so that a reader who
 * takes it sees counters at least as new. */
static void publish(struct fv_k8s_watch *w, struct fv_k8s_inventory *inv)
{
    struct fv_k8s_inventory *old;

    pthread_mutex_lock(&w->mu);
    old = w->pending;
    w->pending = inv;
    w->have_first = true;
    copy_stats_locked(w);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    fv_k8s_inventory_free(old);
}

static void announce(struct fv_k8s_watch *w, const struct fv_k8s_inventory *inv)
{
    const struct fv_k8s_inventory_stats *s = fv_k8s_inventory_stats(inv);

    FV_LOG_INFO("kubernetes: inventory synced server=%s pods=%zu services=%zu nodes=%zu "
                "namespaces=%zu networkpolicies=%zu skipped=%zu",
                w->creds.server, s->pods, s->services, s->nodes, s->namespaces, s->policies,
                s->skipped);
    w->announced = true;
}

/* Builds when something changed, every kind is listed and the debounce
 * interval has passed. */
static void maybe_build(struct fv_k8s_watch *w, uint64_t now)
{
    struct fv_k8s_inventory *inv = NULL;
    int rc;

    if (!w->dirty || !all_listed(w))
        return;
    if (w->last_build_ms != 0 && now < w->last_build_ms + w->cfg.debounce_ms)
        return;
    w->last_build_ms = now;
    rc = build(w, &inv);
    if (rc < 0) {
        FV_LOG_ERROR("kubernetes: building the inventory failed: %s (retrying)", strerror(-rc));
        return;
    }
    w->dirty = false;
    w->st.builds++;
    if (!w->announced)
        announce(w, inv);
    FV_LOG_DEBUG("kubernetes: inventory built pods=%zu", fv_k8s_inventory_stats(inv)->pods);
    publish(w, inv);
}

/* ---- Failures and backoff ---- */

static uint64_t next_backoff(struct kstate *k)
{
    const struct fv_k8s_watch_cfg *cfg = &k->w->cfg;

    if (k->backoff_ms == 0)
        k->backoff_ms = cfg->backoff_initial_ms;
    else
        k->backoff_ms =
            k->backoff_ms * 2 > cfg->backoff_max_ms ? cfg->backoff_max_ms : k->backoff_ms * 2;
    return jitter(k->w, k->backoff_ms, 20);
}

/* A failed request: counted, remembered, logged (the first of a streak,
 * then one line per ERROR_LOG_MS), and the kind waits a backoff delay. */
static void failed(struct kstate *k, uint64_t now, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failed(struct kstate *k, uint64_t now, const char *fmt, ...)
{
    char msg[220];
    uint64_t delay = next_backoff(k), suppressed = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    k->w->st.errors++;
    k->failures++;
    k->next_at_ms = now + delay;
    set_error(k, "%s", msg);
    if (k->failures == 1) {
        k->err_rl.next_ms = 0;
        k->err_rl.suppressed = 0;
    }
    if (fv_ratelimit_allow(&k->err_rl, now, &suppressed))
        FV_LOG_WARN("kubernetes: %s request failed server=%s: %s (failures=%u retry_in=%llums "
                    "suppressed=%llu)",
                    k->ep->name, k->w->creds.server, msg, k->failures, (unsigned long long)delay,
                    (unsigned long long)suppressed);
}

/* A request that worked after failures: say so once. */
static void recovered(struct kstate *k)
{
    if (k->failures == 0)
        return;
    FV_LOG_INFO("kubernetes: %s reconnected after %u failed requests", k->ep->name, k->failures);
    k->failures = 0;
}

/* The status of a failed response: "HTTP 403: <Status message>". */
static void http_failed(struct kstate *k, uint64_t now, const char *what, long status)
{
    json_t *body = json_loadb(k->buf.p ? k->buf.p : "", k->buf.len, 0, NULL);
    const char *msg = json_string_value(json_object_get(body, "message"));

    failed(k, now, "%s %s: HTTP %ld%s%.120s", what, k->ep->path, status, msg ? ": " : "",
           msg ? msg : "");
    json_decref(body);
}

static void start_relist(struct kstate *k, const char *why)
{
    k->w->st.relists++;
    reset_listing(k);
    k->req = REQ_LIST;
    FV_LOG_INFO("kubernetes: %s relisting (%s) rv=%s", k->ep->name, why, k->rv ? k->rv : "");
}

/* ---- Starting a request ---- */

static int build_url(struct kstate *k, struct fv_sbuf *u)
{
    struct fv_k8s_watch *w = k->w;
    bool pods = k->kind == FV_K8S_POD && w->field_selector != NULL;

    fv_sbuf_printf(u, "%s%s?", w->creds.server, k->ep->path);
    if (k->req == REQ_LIST) {
        fv_sbuf_printf(u, "limit=%u", w->cfg.page_size);
        if (k->cont != NULL) {
            char *c = curl_easy_escape(k->easy, k->cont, 0);
            if (c == NULL)
                return -ENOMEM;
            fv_sbuf_printf(u, "&continue=%s", c);
            curl_free(c);
        }
    } else {
        uint32_t t = w->cfg.watch_timeout_s;
        char *rv = curl_easy_escape(k->easy, k->rv ? k->rv : "", 0);
        if (rv == NULL)
            return -ENOMEM;
        /* -10% jitter spreads the reconnects of many agents. */
        t -= (uint32_t)(rnd(w) % (t / 10 + 1));
        fv_sbuf_printf(u, "watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u",
                       rv, t ? t : 1);
        curl_free(rv);
    }
    if (pods)
        fv_sbuf_printf(u, "&fieldSelector=%s", w->field_selector);
    return u->err;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg);

static void set_options(struct kstate *k, const char *url)
{
    CURL *c = k->easy;
    bool watch = k->req == REQ_WATCH;
    long timeout_ms =
        watch ? (long)(k->w->cfg.watch_timeout_s + WATCH_SLACK_S) * 1000L : LIST_TIMEOUT_MS;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, k->curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)k);
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    /* One connection per watch: a dropped one affects one kind. */
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
}

/* Starts k's next request; a failure to set it up (the token file is
 * unreadable) is a failed request. */
static void start_request(struct kstate *k, uint64_t now)
{
    struct fv_k8s_watch *w = k->w;
    struct curl_slist *h;
    struct fv_sbuf url;
    char err[300] = "";
    int rc;

    fv_sbuf_init(&url, URL_MAX);
    rc = build_url(k, &url);
    if (rc == 0) {
        set_options(k, url.p);
        h = curl_slist_append(NULL, "Accept: application/json");
        k->headers = h;
        rc = h == NULL ? -ENOMEM
                       : fv_k8s_creds_apply(&w->creds, k->easy, &k->headers, err, sizeof(err));
    }
    fv_sbuf_fini(&url);
    if (rc == 0) {
        curl_easy_setopt(k->easy, CURLOPT_HTTPHEADER, k->headers);
        fv_sbuf_reset(&k->buf);
        k->buf.max = k->req == REQ_LIST ? LIST_MAX : EVENT_MAX;
        k->scanned = 0;
        k->status = 0;
        k->abort = ABORT_NONE;
        k->abort_msg[0] = '\0';
        k->curl_err[0] = '\0';
        k->watch_events = 0;
        k->started_ms = now;
        rc = curl_multi_add_handle(w->multi, k->easy) == CURLM_OK ? 0 : -ENOMEM;
    }
    if (rc < 0) {
        curl_slist_free_all(k->headers);
        k->headers = NULL;
        failed(k, now, "%s", err[0] ? err : fv_strerror(rc));
        return;
    }
    k->busy = true;
    if (k->req == REQ_WATCH)
        w->st.watches++;
}

/* ---- The watch stream ---- */

static void stop_transfer(struct kstate *k, enum abort_why why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stop_transfer(struct kstate *k, enum abort_why why, const char *fmt, ...)
{
    va_list ap;

    k->abort = why;
    va_start(ap, fmt);
    vsnprintf(k->abort_msg, sizeof(k->abort_msg), fmt, ap);
    va_end(ap);
}

static void on_error_event(struct kstate *k, const json_t *status)
{
    json_int_t code = json_integer_value(json_object_get(status, "code"));
    const char *msg = json_string_value(json_object_get(status, "message"));

    if (code == 410)
        stop_transfer(k, ABORT_RELIST, "410 Gone: %.150s", msg ? msg : "expired");
    else
        stop_transfer(k, ABORT_ERROR_RELIST, "watch ERROR event code=%lld: %.150s", (long long)code,
                      msg ? msg : "");
}

/* Applies one event line; -1 when the watch must stop (k->abort says why). */
static int apply_event(struct kstate *k, const char *line, size_t len)
{
    struct fv_k8s_watch *w = k->w;
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    int rc = 0;

    if (ev == NULL) {
        stop_transfer(k, ABORT_ERROR_RELIST, "bad JSON in a watch event: %s", jerr.text);
        return -1;
    }
    if (type == NULL || !json_is_object(obj)) {
        stop_transfer(k, ABORT_ERROR_RELIST, "watch event without type or object");
        rc = -1;
    } else if (strcmp(type, "ERROR") == 0) {
        on_error_event(k, obj);
        rc = -1;
    } else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        if (store_put(k, k->objs, &k->bytes, obj) == -ENOMEM) {
            stop_transfer(k, ABORT_ERROR_RELIST, "out of memory");
            rc = -1;
        }
        w->st.events++;
        w->dirty = true;
    } else if (strcmp(type, "DELETED") == 0) {
        store_del(k, obj);
        w->st.events++;
        w->dirty = true;
    } else if (strcmp(type, "BOOKMARK") == 0) {
        w->st.bookmarks++;
    } else {
        FV_LOG_DEBUG("kubernetes: %s watch event of unknown type %s ignored", k->ep->name, type);
        rv = NULL;
    }
    if (rc == 0) {
        set_rv(k, rv);
        k->watch_events++;
    }
    json_decref(ev);
    return rc;
}

/* Appends a chunk of the stream and applies every complete line in it; a
 * partial line waits for the next chunk (or is dropped with the transfer). */
static size_t on_watch_data(struct kstate *k, const char *p, size_t len)
{
    struct fv_sbuf *b = &k->buf;
    size_t start = 0;

    if (fv_sbuf_append(b, p, len) < 0) {
        stop_transfer(k, ABORT_ERROR_RELIST, "watch event larger than %u MiB", EVENT_MAX >> 20);
        return 0;
    }
    for (;;) {
        size_t from = k->scanned > start ? k->scanned : start;
        const char *nl = memchr(b->p + from, '\n', b->len - from);
        size_t n;
        if (nl == NULL)
            break;
        n = (size_t)(nl - (b->p + start));
        if (n > 0 && b->p[start + n - 1] == '\r')
            n--;
        if (n > 0 && apply_event(k, b->p + start, n) < 0)
            return 0;
        start = (size_t)(nl - b->p) + 1;
    }
    memmove(b->p, b->p + start, b->len - start);
    b->len -= start;
    b->p[b->len] = '\0';
    k->scanned = b->len;
    return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct kstate *k = arg;
    size_t len = size * n;

    if (k->status == 0)
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
    if (k->status != 200) {
        /* An error response: keep the start of its Status for the message. */
        size_t room = k->buf.len < ERROR_BODY_MAX ? ERROR_BODY_MAX - k->buf.len : 0;
        fv_sbuf_append(&k->buf, p, len < room ? len : room);
        return len;
    }
    if (k->req == REQ_WATCH)
        return on_watch_data(k, p, len);
    if (fv_sbuf_append(&k->buf, p, len) < 0) {
        stop_transfer(k, ABORT_ERROR, "list page larger than %u MiB", LIST_MAX >> 20);
        return 0;
    }
    return len;
}

/* ---- When a request ends ---- */

static void list_finished(struct kstate *k, const char *rv, uint64_t now)
{
    struct fv_k8s_watch *w = k->w;
    bool first = !k->listed;

    json_decref(k->objs);
    k->objs = k->listing;
    k->bytes = k->listing_bytes;
    k->listing = NULL;
    set_rv(k, rv);
    FV_LOG_INFO("kubernetes: %s %s objects=%zu rv=%s pages=%u", k->ep->name,
                first ? "listed" : "relisted", json_object_size(k->objs), rv, k->pages);
    reset_listing(k);
    k->listed = true;
    k->req = REQ_WATCH;
    k->next_at_ms = now;
    w->dirty = true;
}

/* A 200 list page: its items join the listing; the next page or the watch
 * follows. */
static void list_page(struct kstate *k, uint64_t now)
{
    json_error_t jerr;
    json_t *list = json_loadb(k->buf.p ? k->buf.p : "", k->buf.len, 0, &jerr);
    json_t *items = json_object_get(list, "items"), *item;
    const json_t *md = json_object_get(list, "metadata");
    const char *cont = json_string_value(json_object_get(md, "continue"));
    const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
    size_t i;

    if (list == NULL || !json_is_array(items) || rv == NULL) {
        failed(k, now, "list %s: %s", k->ep->path,
               list == NULL ? jerr.text : "not a List with items and metadata.resourceVersion");
        reset_listing(k);
        json_decref(list);
        return;
    }
    if (k->listing == NULL)
        k->listing = json_object();
    json_array_foreach(items, i, item)
    {
        if (store_put(k, k->listing, &k->listing_bytes, item) == -ENOMEM) {
            failed(k, now, "list %s: out of memory", k->ep->path);
            reset_listing(k);
            json_decref(list);
            return;
        }
    }
    k->w->st.lists++;
    k->pages++;
    recovered(k);
    free(k->cont);
    k->cont = NULL;
    if (cont != NULL && *cont != '\0') {
        k->cont = strdup(cont);
        k->next_at_ms = now;
        if (k->cont == NULL) {
            failed(k, now, "list %s: out of memory", k->ep->path);
            reset_listing(k);
        }
    } else {
        list_finished(k, rv, now);
    }
    json_decref(list);
}

static void list_done(struct kstate *k, CURLcode res, uint64_t now)
{
    if (k->abort != ABORT_NONE) {
        failed(k, now, "list %s: %s", k->ep->path, k->abort_msg);
        reset_listing(k);
    } else if (res != CURLE_OK) {
        failed(k, now, "list %s: %s", k->ep->path,
               k->curl_err[0] ? k->curl_err : curl_easy_strerror(res));
        reset_listing(k);
    } else if (k->status == 410 && k->cont != NULL) {
        /* The continue token outlived etcd's compaction: start over. */
        start_relist(k, "continue token expired: 410 Gone");
        k->next_at_ms = now;
    } else if (k->status != 200) {
        http_failed(k, now, "list", k->status);
        reset_listing(k);
    } else {
        list_page(k, now);
    }
}

static void watch_done(struct kstate *k, CURLcode res, uint64_t now)
{
    bool productive = k->watch_events > 0 || now - k->started_ms >= SHORT_WATCH_MS;

    k->next_at_ms = now;
    if (k->abort == ABORT_RELIST) {
        start_relist(k, k->abort_msg);
    } else if (k->abort != ABORT_NONE) {
        failed(k, now, "watch %s: %s", k->ep->path, k->abort_msg);
        start_relist(k, "after a watch error");
    } else if (k->status == 410) {
        start_relist(k, "watch start: 410 Gone");
    } else if (k->status != 200 && k->status != 0) {
        http_failed(k, now, "watch", k->status);
    } else if (res != CURLE_OK && (k->status == 0 || !productive)) {
        failed(k, now, "watch %s: %s", k->ep->path,
               k->curl_err[0] ? k->curl_err : curl_easy_strerror(res));
    } else if (productive) {
        /* Ended by timeoutSeconds, the server, or a broken connection after
         * it delivered: watch again from the last event's RV. */
        if (res != CURLE_OK) {
            k->w->st.errors++;
            set_error(k, "watch %s: %s", k->ep->path,
                      k->curl_err[0] ? k->curl_err : curl_easy_strerror(res));
            FV_LOG_INFO("kubernetes: %s watch broken after %llu events: %s (watching again rv=%s)",
                        k->ep->name, (unsigned long long)k->watch_events,
                        k->curl_err[0] ? k->curl_err : curl_easy_strerror(res), k->rv ? k->rv : "");
        }
        recovered(k);
        k->backoff_ms = 0;
        k->short_watches = 0;
    } else if (++k->short_watches >= 2) {
        /* Empty watches that end at once, again and again: slow down. */
        k->next_at_ms = now + next_backoff(k);
        FV_LOG_DEBUG("kubernetes: %s watch ended at once %u times", k->ep->name, k->short_watches);
    }
}

static void request_done(struct kstate *k, CURLcode res, uint64_t now)
{
    if (k->status == 0)
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &k->status);
    curl_multi_remove_handle(k->w->multi, k->easy);
    curl_slist_free_all(k->headers);
    k->headers = NULL;
    k->busy = false;
    if (k->req == REQ_LIST)
        list_done(k, res, now);
    else
        watch_done(k, res, now);
    /* Drop a partial event and large page buffers between requests. */
    if (k->buf.cap > (1u << 20))
        fv_sbuf_fini(&k->buf);
    fv_sbuf_reset(&k->buf);
}

/* ---- The thread ---- */

/* Milliseconds until something is due: a request, or a debounced build. */
static long poll_timeout(struct fv_k8s_watch *w, uint64_t now)
{
    uint64_t due = now + POLL_MAX_MS;

    for (int i = 1; i < FV_K8S_KIND_COUNT; i++) {
        const struct kstate *k = &w->k[i];
        if (k->enabled && !k->busy && k->next_at_ms < due)
            due = k->next_at_ms;
    }
    if (w->dirty && all_listed(w) && w->last_build_ms + w->cfg.debounce_ms < due)
        due = w->last_build_ms + w->cfg.debounce_ms;
    return due <= now ? 0 : (long)(due - now);
}

static void *run(void *arg)
{
    struct fv_k8s_watch *w = arg;

    while (!atomic_load(&w->stop)) {
        uint64_t now = fv_clock_mono_ms();
        struct CURLMsg *msg;
        int running, left;

        for (int i = 1; i < FV_K8S_KIND_COUNT; i++)
            if (w->k[i].enabled && !w->k[i].busy && w->k[i].next_at_ms <= now)
                start_request(&w->k[i], now);
        curl_multi_perform(w->multi, &running);
        now = fv_clock_mono_ms();
        for (;;) {
            msg = curl_multi_info_read(w->multi, &left);
            if (msg == NULL)
                break;
            if (msg->msg == CURLMSG_DONE) {
                char *k = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &k);
                request_done((struct kstate *)(void *)k, msg->data.result, now);
            }
        }
        maybe_build(w, now);
        publish_stats(w);
        curl_multi_poll(w->multi, NULL, 0, (int)poll_timeout(w, fv_clock_mono_ms()), NULL);
    }
    return NULL;
}

/* ---- Public functions ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int apply_cfg(struct fv_k8s_watch *w, const struct fv_k8s_watch_cfg *cfg, char *err,
                     size_t errlen)
{
    w->cfg = *cfg;
    w->cfg.kubeconfig = NULL;
    if (w->cfg.kinds == 0)
        w->cfg.kinds = ALL_KINDS;
    if (w->cfg.kinds & ~ALL_KINDS) {
        snprintf(err, errlen, "inventory: unknown kind bits 0x%x", w->cfg.kinds & ~ALL_KINDS);
        return -EINVAL;
    }
    if (w->cfg.debounce_ms == 0)
        w->cfg.debounce_ms = 1000;
    if (w->cfg.backoff_initial_ms == 0)
        w->cfg.backoff_initial_ms = 500;
    if (w->cfg.backoff_max_ms == 0)
        w->cfg.backoff_max_ms = 30000;
    if (w->cfg.backoff_max_ms < w->cfg.backoff_initial_ms)
        w->cfg.backoff_max_ms = w->cfg.backoff_initial_ms;
    if (w->cfg.watch_timeout_s == 0)
        w->cfg.watch_timeout_s = 300;
    if (w->cfg.page_size == 0)
        w->cfg.page_size = 500;
    if (cfg->node_name != NULL && *cfg->node_name != '\0') {
        char sel[300];
        if (snprintf(sel, sizeof(sel), "spec.nodeName=%s", cfg->node_name) >= (int)sizeof(sel)) {
            snprintf(err, errlen, "inventory: node name too long");
            return -EINVAL;
        }
        w->node_name = strdup(cfg->node_name);
        w->field_selector = curl_easy_escape(NULL, sel, 0);
        if (w->node_name == NULL || w->field_selector == NULL)
            return -ENOMEM;
    }
    w->cfg.node_name = w->node_name;
    return 0;
}

static int init_kinds(struct fv_k8s_watch *w)
{
    for (int i = 1; i < FV_K8S_KIND_COUNT; i++) {
        struct kstate *k = &w->k[i];
        k->w = w;
        k->kind = (enum fv_k8s_kind)i;
        k->ep = &endpoints[i];
        k->enabled = (w->cfg.kinds & (1u << i)) != 0;
        k->err_rl.interval_ms = ERROR_LOG_MS;
        fv_sbuf_init(&k->buf, LIST_MAX);
        if (!k->enabled)
            continue;
        k->objs = json_object();
        k->easy = curl_easy_init();
        if (k->objs == NULL || k->easy == NULL)
            return -ENOMEM;
    }
    return 0;
}

static void watch_free(struct fv_k8s_watch *w)
{
    for (int i = 1; i < FV_K8S_KIND_COUNT; i++) {
        struct kstate *k = &w->k[i];
        if (k->busy)
            curl_multi_remove_handle(w->multi, k->easy);
        if (k->easy)
            curl_easy_cleanup(k->easy);
        curl_slist_free_all(k->headers);
        json_decref(k->objs);
        reset_listing(k);
        free(k->rv);
        fv_sbuf_fini(&k->buf);
    }
    if (w->multi)
        curl_multi_cleanup(w->multi);
    fv_k8s_creds_fini(&w->creds);
    fv_k8s_inventory_free(w->pending);
    curl_free(w->field_selector);
    free(w->node_name);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    free(w);
}

int fv_k8s_watch_start(const struct fv_k8s_watch_cfg *cfg, struct fv_k8s_watch **out, char *err,
                       size_t errlen)
{
    struct fv_k8s_watch *w = calloc(1, sizeof(*w));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (w == NULL)
        return -ENOMEM;
    pthread_once(&curl_once, curl_init_once);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&w->stop, false);
    w->rng = fv_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)w;
    if (w->rng == 0)
        w->rng = 0x9e3779b97f4a7c15ull;
    rc = apply_cfg(w, cfg, err, errlen);
    if (rc == 0)
        rc = fv_k8s_creds_load(cfg->kubeconfig, &w->creds, err, errlen);
    if (rc == 0)
        rc = init_kinds(w);
    if (rc == 0) {
        w->multi = curl_multi_init();
        rc = w->multi ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        rc = -pthread_create(&w->thread, NULL, run, w);
        if (rc < 0)
            snprintf(err, errlen, "inventory: cannot start the watch thread: %s", strerror(-rc));
    }
    if (rc < 0) {
        if (rc == -ENOMEM && errlen > 0 && err[0] == '\0')
            snprintf(err, errlen, "inventory: out of memory");
        watch_free(w);
        return rc;
    }
    if (strncmp(w->creds.server, "http://", 7) == 0 && (w->creds.token || w->creds.token_file))
        FV_LOG_WARN("kubernetes: server=%s is plain http: the bearer token is sent unencrypted",
                    w->creds.server);
    FV_LOG_INFO("kubernetes: watching server=%s credentials=\"%s\"%s%s", w->creds.server,
                w->creds.source, w->node_name ? " node=" : "", w->node_name ? w->node_name : "");
    *out = w;
    return 0;
}

int fv_k8s_watch_take(struct fv_k8s_watch *w, struct fv_k8s_inventory **fresh)
{
    struct fv_k8s_inventory *inv;

    pthread_mutex_lock(&w->mu);
    inv = w->pending;
    w->pending = NULL;
    pthread_mutex_unlock(&w->mu);
    if (inv == NULL)
        return 0;
    *fresh = inv;
    return 1;
}

int fv_k8s_watch_wait(struct fv_k8s_watch *w, uint64_t timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    if (timeout_ms > 1000ull * 86400 * 365) /* "forever" without overflowing time_t */
        timeout_ms = 1000ull * 86400 * 365;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->have_first && rc == 0)
        rc = pthread_cond_timedwait(&w->cond, &w->mu, &deadline);
    rc = w->have_first ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void fv_k8s_watch_stats(struct fv_k8s_watch *w, struct fv_k8s_watch_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->published;
    pthread_mutex_unlock(&w->mu);
}

void fv_k8s_watch_stop(struct fv_k8s_watch *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    watch_free(w);
}
