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

const char *fv_http_header(const struct fv_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
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

/* The web UI loads only its own files and talks only to this server;
 * ECharts sets inline styles, hence 'unsafe-inline' for styles only. */
#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "     \
    "data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "            \
    "frame-ancestors 'none'"

static enum MHD_Result reply(struct MHD_Connection *conn, int status, const struct fv_http_req *req,
                             struct fv_sbuf *body, bool auth)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (req->static_body && status < 400) {
        fv_sbuf_fini(body);
        r = MHD_create_response_from_buffer(req->static_len, (void *)req->static_body,
                                            MHD_RESPMEM_PERSISTENT);
    } else {
        if (body->p == NULL)
            fv_sbuf_puts(body, "");
        /* The response takes the buffer. */
        r = MHD_create_response_from_buffer(body->len, body->p, MHD_RESPMEM_MUST_FREE);
        if (r != NULL)
            body->p = NULL;
    }
    if (r == NULL) {
        fv_sbuf_fini(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", req->ctype);
    MHD_add_response_header(r, "Cache-Control",
                            req->cache_control ? req->cache_control : "no-store");
    if (req->content_encoding)
        MHD_add_response_header(r, "Content-Encoding", req->content_encoding);
    if (req->etag)
        MHD_add_response_header(r, "ETag", req->etag);
    if (req->content_encoding || req->etag)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (req->security_headers) {
        MHD_add_response_header(r, "Content-Security-Policy", CSP);
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (auth)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static bool route_matches(const struct fv_http_route *rt, const char *url)
{
    if (rt->prefix)
        return strncmp(url, rt->path, strlen(rt->path)) == 0;
    return strcmp(url, rt->path) == 0;
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

/* libmicrohttpd decodes %XX in the path in place, so "/assets/a.js%00x"
 * would arrive as "/assets/a.js".  It shows the raw URI here first: a
 * path with an encoded NUL is marked (the mark becomes the request's
 * state) and refused by handle().  Query values keep their NUL bytes,
 * with lengths, for fv_http_query_all's callers to refuse. */
#define PATH_HAS_NUL ((void *)1)

static void *raw_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    size_t path_len = strcspn(uri, "?");
    (void)cls;
    (void)conn;

    for (size_t i = 0; i + 2 < path_len; i++)
        if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
            return PATH_HAS_NUL;
    return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    struct fv_http_server *srv = cls;
    struct fv_http_req req = {.path = url, .conn = conn, .ctype = "application/json"};
    struct fv_sbuf b;
    int status;
    (void)version;
    (void)upload;
    (void)upload_size;

    fv_sbuf_init(&b, MAX_BODY);
    if (*state == PATH_HAS_NUL)
        return reply(conn, fv_http_error(&b, 400, "the path holds a NUL byte"), &req, &b, false);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, fv_http_error(&b, 405, "method not allowed"), &req, &b, false);
    for (size_t i = 0; i < srv->cfg.nroutes; i++) {
        const struct fv_http_route *rt = &srv->cfg.routes[i];
        if (!route_matches(rt, url))
            continue;
        if (srv->token && !rt->open && !token_ok(srv, conn))
            return reply(conn, fv_http_error(&b, 401, "missing or wrong bearer token"), &req, &b,
                         true);
        status = rt->fn(rt->ctx, &req, &b);
        if (b.err) {
            req.static_body = NULL;
            req.ctype = "application/json";
            req.content_encoding = NULL;
            req.etag = NULL;
            status = fv_http_error(&b, 500, "response too large");
        }
        return reply(conn, status, &req, &b, false);
    }
    return reply(conn, fv_http_error(&b, 404, "no such endpoint"), &req, &b, false);
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
    unsigned threads = cfg->threads;
    /* The pool size goes last: without a pool the option list ends there
     * (libmicrohttpd warns on stderr at a pool size of 0 or 1). */
    enum MHD_OPTION pool = threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END;
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
            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
            MHD_OPTION_URI_LOG_CALLBACK, raw_uri, NULL, pool, threads, MHD_OPTION_END);
    } else {
        srv->daemon = MHD_start_daemon(
            flags, a.port, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
            MHD_OPTION_URI_LOG_CALLBACK, raw_uri, NULL, pool, threads, MHD_OPTION_END);
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
