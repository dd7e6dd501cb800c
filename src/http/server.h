/*
 * server.h - a small HTTP server for flowvis' endpoints (libmicrohttpd,
 * one internal thread): a table of GET routes, an optional bearer token,
 * optional TLS.
 *
 * Handlers write their body into an fv_sbuf (bounded) and return the HTTP
 * status; the server sends it with the content type they set.  A handler
 * may instead point the response at a static body (embedded files) and
 * set a few headers (Content-Encoding, ETag, Cache-Control).  Routes
 * marked open (health checks, the web UI's files) are served without the
 * token; a route marked prefix serves every path that starts with its
 * path.  The token is compared in constant time.
 *
 *     static const struct fv_http_route routes[] = {
 *         {"/metrics", metrics_handler, &reg, false},
 *         {"/healthz", health_handler, NULL, true},
 *     };
 *     struct fv_http_server_cfg cfg = {.address = "127.0.0.1:10348",
 *                                      .routes = routes, .nroutes = 2};
 *     fv_http_server_start(&cfg, &srv);
 *     ...
 *     fv_http_server_stop(srv);
 *
 * Thread rules: handlers run on the server's threads, up to
 * cfg.threads of them at once (default 1); a handler that is not safe to
 * run concurrently with itself takes a lock of its own.
 */
#ifndef FV_HTTP_SERVER_H
#define FV_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sbuf.h"

struct fv_http_req {
    const char *path;  /* the URL path, without the query */
    void *conn;        /* the libmicrohttpd connection, for fv_http_query */
    const char *ctype; /* set by the handler; default application/json */
    /* Optional response headers, set by the handler (static strings or
     * strings that outlive the response's queueing; NULL: none). */
    const char *content_encoding; /* e.g. "gzip" */
    const char *etag;             /* with its quotes, e.g. "\"a1b2\"" */
    const char *cache_control;    /* default "no-store" */
    bool security_headers;        /* add CSP, nosniff, frame and referrer policies */
    /* A body that lives as long as the server (embedded files), sent
     * instead of the sbuf when not NULL; HEAD sends only its length. */
    const void *static_body;
    size_t static_len;
};

/* A request header's value, or NULL when absent. */
const char *fv_http_header(const struct fv_http_req *req, const char *name);

/* A query parameter's value (decoded), or NULL when absent. */
const char *fv_http_query(const struct fv_http_req *req, const char *key);

/* Called by fv_http_query_all for one query parameter: key and value are
 * decoded (%XX and '+'), NUL-terminated at klen and vlen, and may hold NUL
 * bytes of their own (from %00), which is why the lengths are given.  A
 * parameter without '=' has the value "".  Non-zero stops the iteration. */
typedef int (*fv_http_param_fn)(void *arg, const char *key, size_t klen, const char *val,
                                size_t vlen);

/* Calls fn for every query parameter named key, in the order of the URL,
 * or for every parameter when key is NULL (repeated parameters such as
 * `where=a&where=b` are seen once each).  Returns 0, or fn's first
 * non-zero return.  The strings are borrowed from the request. */
int fv_http_query_all(const struct fv_http_req *req, const char *key, fv_http_param_fn fn,
                      void *arg);

/* Writes the body into out and returns the HTTP status. */
typedef int (*fv_http_handler_fn)(void *ctx, struct fv_http_req *req, struct fv_sbuf *out);

struct fv_http_route {
    const char *path;      /* exact match, or the start of the path (prefix) */
    fv_http_handler_fn fn; /* the handler */
    void *ctx;             /* its argument, borrowed */
    bool open;             /* served without the bearer token */
    bool prefix;           /* match every path that starts with path */
};

struct fv_http_server_cfg {
    const char *address;                /* HOST:PORT, IPv6 in brackets */
    unsigned default_port;              /* when address has none */
    const char *token;                  /* bearer token, or NULL for none */
    const char *tls_cert, *tls_key;     /* PEM files for HTTPS, or NULL */
    const struct fv_http_route *routes; /* borrowed; must outlive the server; the
                                           first route that matches serves */
    size_t nroutes;
    unsigned threads; /* handlers run at once (a thread pool); 0 or 1: one thread */
};

struct fv_http_server;

/* 0, or a negative code with fv_http_server_error() saying why. */
int fv_http_server_start(const struct fv_http_server_cfg *cfg, struct fv_http_server **out);
void fv_http_server_stop(struct fv_http_server *srv);
/* The bound port (for port 0 in tests). */
unsigned fv_http_server_port(const struct fv_http_server *srv);
/* Why the last start on this thread failed; "" when it did not. */
const char *fv_http_server_error(void);

/* Appends {"error":"<msg>"} and returns status (for handlers). */
int fv_http_error(struct fv_sbuf *out, int status, const char *msg);

#endif
