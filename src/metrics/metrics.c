/* metrics.c - see metrics.h. */
#include "metrics/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct fv_metrics_server {
    struct fv_http_server *http;
    struct fv_http_route routes[2];
};

int fv_metrics_register(struct fv_metrics *reg, struct fv_metric *m)
{
    if (reg->n >= FV_METRICS_MAX)
        return -FV_ELIMIT;
    reg->m[reg->n++] = m;
    return 0;
}

int fv_metrics_render(const struct fv_metrics *reg, struct fv_sbuf *out)
{
    for (unsigned i = 0; i < reg->n; i++) {
        const struct fv_metric *m = reg->m[i];
        fv_sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", m->name, m->help, m->name,
                       m->type == FV_METRIC_COUNTER ? "counter" : "gauge", m->name);
        fv_sbuf_put_u64(out, fv_metric_get(m));
        fv_sbuf_putc(out, '\n');
    }
    return out->err;
}

int fv_metrics_http_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    req->ctype = "text/plain; version=0.0.4";
    if (fv_metrics_render(ctx, out) < 0)
        return fv_http_error(out, 500, "cannot render the metrics");
    return 200;
}

int fv_http_ok_handler(void *ctx, struct fv_http_req *req, struct fv_sbuf *out)
{
    (void)ctx;
    req->ctype = "text/plain";
    fv_sbuf_puts(out, "ok\n");
    return 200;
}

int fv_metrics_serve(const struct fv_metrics *reg, const char *address,
                     struct fv_metrics_server **out)
{
    struct fv_metrics_server *srv = calloc(1, sizeof(*srv));
    struct fv_http_server_cfg cfg = {.address = address, .default_port = 9100};
    int rc;

    if (srv == NULL)
        return -ENOMEM;
    srv->routes[0] =
        (struct fv_http_route){"/metrics", fv_metrics_http_handler, (void *)reg, false, false};
    srv->routes[1] = (struct fv_http_route){"/healthz", fv_http_ok_handler, NULL, true, false};
    cfg.routes = srv->routes;
    cfg.nroutes = 2;
    rc = fv_http_server_start(&cfg, &srv->http);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

void fv_metrics_server_stop(struct fv_metrics_server *srv)
{
    if (srv == NULL)
        return;
    fv_http_server_stop(srv->http);
    free(srv);
}
