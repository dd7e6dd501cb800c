/* metrics.c - see metrics.h. */
#include "metrics/metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "base/addr.h"
#include "base/err.h"

struct fv_metrics_server {
    struct MHD_Daemon *daemon;
    const struct fv_metrics *reg;
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

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result rc;

    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    struct fv_metrics_server *srv = cls;
    struct fv_sbuf b;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;

    if (strcmp(method, "GET") != 0)
        return reply(conn, 405, "text/plain", strdup("method not allowed\n"), 19);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, 200, "text/plain", strdup("ok\n"), 3);
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, 404, "text/plain", strdup("not found\n"), 10);
    fv_sbuf_init(&b, 1 << 20);
    if (fv_metrics_render(srv->reg, &b) < 0 || b.p == NULL) {
        fv_sbuf_fini(&b);
        return reply(conn, 500, "text/plain", strdup("error\n"), 6);
    }
    /* The response takes the buffer. */
    return reply(conn, 200, "text/plain; version=0.0.4", b.p, b.len);
}

int fv_metrics_serve(const struct fv_metrics *reg, const char *address,
                     struct fv_metrics_server **out)
{
    struct fv_metrics_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_storage ss;
    socklen_t len;
    struct fv_addr a;
    int rc;

    if (srv == NULL)
        return -ENOMEM;
    srv->reg = reg;
    rc = fv_addr_parse(address, 9100, FV_PROTO_TCP, &a);
    if (rc == 0)
        rc = fv_addr_resolve(&a, &ss, &len);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    srv->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                                       (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                                   a.port, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR,
                                   (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        free(srv);
        return -EADDRINUSE;
    }
    *out = srv;
    return 0;
}

void fv_metrics_server_stop(struct fv_metrics_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    free(srv);
}
