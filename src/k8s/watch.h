/*
 * watch.h - the Kubernetes API source of the inventory: list + watch of
 * Pods, Services, Nodes, Namespaces and NetworkPolicies, rebuilt into a
 * fresh struct fv_k8s_inventory when they change.
 *
 * How it works (docs/kubernetes-api.md has the details).  One background
 * thread runs a libcurl multi handle with one transfer per kind, all
 * concurrent.  Each kind is listed in pages (limit=, metadata.continue),
 * then watched from the list's resourceVersion with bookmarks; events
 * replace or delete objects, and a 410 Gone (expired resourceVersion) makes
 * it list again.  Failures back off exponentially with jitter.  Objects are
 * kept per kind as json_t pruned to the fields the parser (parse.c) reads.
 * When something changed and every kind has been listed once, the thread
 * builds a new inventory with the same builder as the file source (at most
 * once per debounce_ms) and publishes it in a one-slot mailbox: a snapshot
 * not yet taken is replaced by the newer one.
 *
 * Credentials come from a kubeconfig or the in-cluster service account
 * (kubeconfig.h); they are read by fv_k8s_watch_start, so a bad file is an
 * error at start, while an unreachable API server is only a logged error
 * and a counter: the thread keeps retrying until stopped.
 *
 * Threads and ownership.  fv_k8s_watch_start() returns a handle owned by
 * the caller; take, wait and stats may be called from any thread; stop
 * joins the thread and frees everything (not concurrently with the other
 * calls).  Each inventory handed out by take belongs to the caller.
 *
 *     struct fv_k8s_watch_cfg cfg = {.kubeconfig = path, .node_name = node};
 *     struct fv_k8s_watch *w;
 *     char err[512];
 *     if (fv_k8s_watch_start(&cfg, &w, err, sizeof(err)) < 0)
 *         die("inventory: %s", err);
 *     fv_k8s_watch_wait(w, 30000);          // optional: the first snapshot
 *     ...every second:
 *     struct fv_k8s_inventory *fresh;
 *     if (fv_k8s_watch_take(w, &fresh) == 1) { publish fresh, free the old one later }
 *     ...
 *     fv_k8s_watch_stop(w);
 */
#ifndef FV_K8S_WATCH_H
#define FV_K8S_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "k8s/inventory.h"

struct fv_k8s_watch_cfg {
    const char *kubeconfig;      /* path of a kubeconfig; NULL or "" = in-cluster service account */
    const char *node_name;       /* non-NULL: watch only Pods with spec.nodeName == node_name */
    unsigned kinds;              /* bit (1u << FV_K8S_POD) etc.: the kinds to watch; 0 = all five */
    uint64_t debounce_ms;        /* rebuild the inventory at most this often; 0 = 1000 */
    uint64_t backoff_initial_ms; /* first retry delay after a failure; 0 = 500 */
    uint64_t backoff_max_ms;     /* the delay doubles up to this; 0 = 30000 */
    uint32_t watch_timeout_s;    /* timeoutSeconds of each watch; 0 = 300 (jittered -10%) */
    uint32_t page_size;          /* limit= of list requests; 0 = 500 */
};

struct fv_k8s_watch_stats {
    uint64_t lists;                       /* list requests completed (each page counts once) */
    uint64_t relists;                     /* full relists after 410 Gone / expired continue */
    uint64_t watches;                     /* watch requests started */
    uint64_t events;                      /* ADDED/MODIFIED/DELETED applied */
    uint64_t bookmarks;                   /* BOOKMARK events */
    uint64_t errors;                      /* failed requests (connect, TLS, HTTP, bad JSON) */
    uint64_t builds;                      /* inventories built and published */
    size_t objects[FV_K8S_KIND_COUNT];    /* current objects per kind */
    size_t json_bytes[FV_K8S_KIND_COUNT]; /* their size as compact JSON (what is kept) */
    bool synced;                          /* every watched kind listed at least once */
    char last_error[256];                 /* the last error, "" when none */
};

struct fv_k8s_watch;

/*
 * Reads the credentials (kubeconfig or service account) synchronously and
 * starts the background thread.  Errors in the credentials or the config
 * are reported in err naming the file and the problem ("kubeconfig
 * /x/config: current-context 'foo' has no context entry").  0, -EINVAL
 * (bad credentials or config, err set), -ENOMEM, -errno.
 */
int fv_k8s_watch_start(const struct fv_k8s_watch_cfg *cfg, struct fv_k8s_watch **out, char *err,
                       size_t errlen);
/* 1 with a new inventory in *fresh (the caller owns it; free it with
 * fv_k8s_inventory_free), 0 when nothing is new since the last take. */
int fv_k8s_watch_take(struct fv_k8s_watch *w, struct fv_k8s_inventory **fresh);
/* Blocks until the first inventory has been built (taken or not) or
 * timeout_ms elapses: 0 or -ETIMEDOUT. */
int fv_k8s_watch_wait(struct fv_k8s_watch *w, uint64_t timeout_ms);
/* A consistent copy of the counters (updated by the thread as it goes). */
void fv_k8s_watch_stats(struct fv_k8s_watch *w, struct fv_k8s_watch_stats *out);
/* Stops the thread (promptly, also during a long watch or a backoff) and
 * frees everything, including a snapshot not taken.  NULL is a no-op. */
void fv_k8s_watch_stop(struct fv_k8s_watch *w);

/*
 * The copy of a Kubernetes object that the watch keeps: only the fields
 * parse.c reads (metadata name, namespace and, for Pods and Namespaces,
 * labels; the Pod, Service and Node fields of inventory.h; a
 * NetworkPolicy's whole spec), plus kind and apiVersion.  Values are
 * shared with obj by reference, so neither may be modified afterwards.
 * NULL on -ENOMEM or when obj is not an object.  Exposed for tests.
 */
json_t *fv_k8s_watch_prune(enum fv_k8s_kind kind, json_t *obj);

#endif
