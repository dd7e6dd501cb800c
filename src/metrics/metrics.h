/*
 * metrics.h - Prometheus counters and gauges, and the HTTP endpoint that
 * serves them (libmicrohttpd, one internal thread).
 *
 * A metric is a static struct owned by the module that updates it; values
 * are atomics, so the hot path updates them without locks and the HTTP
 * thread reads them at any time.  A registry holds borrowed pointers.
 *
 *     static struct fv_metric records = FV_COUNTER("flowvis_agent_records_exported_total",
 *                                                  "Flow records exported.");
 *     fv_metrics_register(reg, &records);
 *     fv_metric_add(&records, 1);
 *     fv_metrics_serve(reg, "127.0.0.1:9100", &srv);   // GET /metrics, /healthz
 */
#ifndef FV_METRICS_METRICS_H
#define FV_METRICS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "http/server.h"

enum fv_metric_type { FV_METRIC_COUNTER, FV_METRIC_GAUGE };

struct fv_metric {
    const char *name; /* Prometheus name */
    const char *help; /* HELP text */
    enum fv_metric_type type;
    _Atomic uint64_t value; /* current value (gauges may be set to anything) */
};

#define FV_COUNTER(n, h)                                                                           \
    {                                                                                              \
        .name = (n), .help = (h), .type = FV_METRIC_COUNTER                                        \
    }
#define FV_GAUGE(n, h)                                                                             \
    {                                                                                              \
        .name = (n), .help = (h), .type = FV_METRIC_GAUGE                                          \
    }

static inline void fv_metric_add(struct fv_metric *m, uint64_t n)
{
    atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}

static inline void fv_metric_set(struct fv_metric *m, uint64_t v)
{
    atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

static inline uint64_t fv_metric_get(const struct fv_metric *m)
{
    return atomic_load_explicit(&m->value, memory_order_relaxed);
}

#define FV_METRICS_MAX 96

struct fv_metrics {
    struct fv_metric *m[FV_METRICS_MAX]; /* borrowed */
    unsigned n;
};

/* Registers a borrowed metric; -FV_ELIMIT past FV_METRICS_MAX. */
int fv_metrics_register(struct fv_metrics *reg, struct fv_metric *m);

/* Appends the Prometheus text exposition of every metric. */
int fv_metrics_render(const struct fv_metrics *reg, struct fv_sbuf *out);

struct fv_metrics_server;

/* Serves GET /metrics and /healthz on HOST:PORT (IPv6 in brackets). */
int fv_metrics_serve(const struct fv_metrics *reg, const char *address,
                     struct fv_metrics_server **out);
void fv_metrics_server_stop(struct fv_metrics_server *srv);

/* Route handlers for an fv_http_server: the Prometheus text of the
 * registry in ctx, and a plain "ok" for health checks. */
int fv_metrics_http_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);
int fv_http_ok_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);

#endif
