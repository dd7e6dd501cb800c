/* server.c - routes, bearer token and TLS over libmicrohttpd (server.h). */
#include "http/server.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/addr.h"
#include "base/err.h"

#define MAX_BODY (256u << 20)

struct fv_http_server {
    struct fv_http_server_cfg cfg;
    struct MHD_Daemon *daemon;
    char *cert_pem, *key_pem; /* owned, for MHD's TLS */
    char *token;              /* owned copy */
    unsigned port;
};

static _Thread_local char last_error[256];

const char *fv_http_server_error(void)
{
    return last_error;
}

const char *fv_http_query(const struct fv_http_req *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_all {
    const char *key; /* the parameter wanted, or NULL for all */
    size_t klen;     /* strlen(key) */
    fv_http_param_fn fn;
    void *arg;
    int rc; /* fn's last return */
};

static enum MHD_Result query_each(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct query_all *qa = cls;
    (void)kind;

    if (qa->key && (key_size != qa->klen || memcmp(key, qa->key, key_size) != 0))
        return MHD_YES;
    qa->rc = qa->fn(qa->arg, key, key_size, value ? value : "", value ? value_size : 0);
    return qa->rc == 0 ? MHD_YES : MHD_NO;
}

int fv_http_query_all(const struct fv_http_req *req, const char *key, fv_http_param_fn fn,
                      void *arg)
{
    struct query_all qa = {key, key ? strlen(key) : 0, fn, arg, 0};

    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, query_each, &qa);
    return qa.rc;
}

int fv_http_error(struct fv_sbuf *out, int status, const char *msg)
{
    fv_sbuf_reset(out);
    fv_sbuf_puts(out, "{\"error\":");
    fv_sbuf_put_json_str(out, msg, strlen(msg));
    fv_sbuf_puts(out, "}\n");
    return status;
}

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *type,
                             struct fv_sbuf *body, bool auth)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (body->p == NULL)
        fv_sbuf_puts(body, "");
    /* The response takes the buffer. */
    r = MHD_create_response_from_buffer(body->len, body->p, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        fv_sbuf_fini(body);
        return MHD_NO;
    }
    body->p = NULL;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (auth)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Constant-time comparison of the presented token. */
static bool token_ok(const struct fv_http_server *srv, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    size_t want = strlen(srv->token), got;
    unsigned diff = 0;

    if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    got = strlen(h);
    diff = (unsigned)(got ^ want);
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned)(uint8_t)srv->token[i] ^ (unsigned)(uint8_t)(i < got ? h[i] : 0);
    return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    struct fv_http_server *srv = cls;
    struct fv_http_req req = {url, conn, "application/json"};
    struct fv_sbuf b;
    int status;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;

    fv_sbuf_init(&b, MAX_BODY);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, fv_http_error(&b, 405, "method not allowed"), req.ctype, &b, false);
    for (size_t i = 0; i < srv->cfg.nroutes; i++) {
        const struct fv_http_route *rt = &srv->cfg.routes[i];
        if (strcmp(url, rt->path) != 0)
            continue;
        if (srv->token && !rt->open && !token_ok(srv, conn))
            return reply(conn, fv_http_error(&b, 401, "missing or wrong bearer token"), req.ctype,
                         &b, true);
        status = rt->fn(rt->ctx, &req, &b);
        if (b.err)
            status = fv_http_error(&b, 500, "response too large");
        return reply(conn, status, req.ctype, &b, false);
    }
    return reply(conn, fv_http_error(&b, 404, "no such endpoint"), req.ctype, &b, false);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = calloc(1, (size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static void server_free(struct fv_http_server *srv)
{
    free(srv->cert_pem);
    free(srv->key_pem);
    free(srv->token);
    free(srv);
}

int fv_http_server_start(const struct fv_http_server_cfg *cfg, struct fv_http_server **out)
{
    struct fv_http_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_storage ss;
    socklen_t len;
    struct fv_addr a;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    int rc;

    last_error[0] = '\0';
    if (srv == NULL)
        return -ENOMEM;
    srv->cfg = *cfg;
    rc = fv_addr_parse(cfg->address, (uint16_t)(cfg->default_port ? cfg->default_port : 80),
                       FV_PROTO_TCP, &a);
    if (rc == 0)
        rc = fv_addr_resolve(&a, &ss, &len);
    if (rc < 0) {
        snprintf(last_error, sizeof(last_error), "%s: not a usable HOST:PORT", cfg->address);
        server_free(srv);
        return rc;
    }
    if (cfg->token)
        srv->token = strdup(cfg->token);
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (cfg->tls_cert || cfg->tls_key) {
        srv->cert_pem = cfg->tls_cert ? read_file(cfg->tls_cert) : NULL;
        srv->key_pem = cfg->tls_key ? read_file(cfg->tls_key) : NULL;
        if (srv->cert_pem == NULL || srv->key_pem == NULL) {
            snprintf(last_error, sizeof(last_error), "cannot read %s",
                     srv->cert_pem == NULL ? (cfg->tls_cert ? cfg->tls_cert : "(no tlsCert)")
                                           : (cfg->tls_key ? cfg->tls_key : "(no tlsKey)"));
            server_free(srv);
            return -FV_ETLS;
        }
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(last_error, sizeof(last_error), "libmicrohttpd was built without TLS");
            server_free(srv);
            return -FV_ETLS;
        }
        flags |= MHD_USE_TLS;
        srv->daemon = MHD_start_daemon(
            flags, a.port, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_HTTPS_MEM_CERT, srv->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, srv->key_pem,
            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    } else {
        srv->daemon = MHD_start_daemon(flags, a.port, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR,
                                       (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                       MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    }
    if (srv->daemon == NULL) {
        snprintf(last_error, sizeof(last_error), "cannot listen on %s (in use, or bad TLS files)",
                 cfg->address);
        server_free(srv);
        return -EADDRINUSE;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : a.port;
    *out = srv;
    return 0;
}

unsigned fv_http_server_port(const struct fv_http_server *srv)
{
    return srv->port;
}

void fv_http_server_stop(struct fv_http_server *srv)
{
    if (srv == NULL)
        return;
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
}
