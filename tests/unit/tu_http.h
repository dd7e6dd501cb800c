/*
 * tu_http.h - an HTTP client for the unit tests of HTTP handlers: starts
 * an fv_http_server on a free loopback port and GETs from it with libcurl.
 *
 *     struct tu_http h;
 *     tu_http_start(&h, &cfg);              // cfg.address is filled in
 *     long status = tu_http_get(&h, "/x", NULL, &body, &headers);
 *     fv_http_server_stop(h.srv);
 *
 * Everything is `static inline`, as in testutil.h.
 */
#ifndef FV_TESTS_UNIT_TU_HTTP_H
#define FV_TESTS_UNIT_TU_HTTP_H

#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/sbuf.h"
#include "http/server.h"

struct tu_http {
    struct fv_http_server *srv;
    char base[64]; /* http://127.0.0.1:PORT */
    char addr[32]; /* the server's address, borrowed by its cfg */
};

static inline size_t tu_http_on_data(char *p, size_t size, size_t n, void *arg)
{
    if (arg)
        fv_sbuf_append(arg, p, size * n);
    return size * n;
}

/* A port nobody listens on now (the server takes no port 0). */
static inline unsigned tu_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void tu_http_start(struct tu_http *h, struct fv_http_server_cfg *cfg)
{
    snprintf(h->addr, sizeof(h->addr), "127.0.0.1:%u", tu_free_port());
    cfg->address = h->addr;
    assert_int_equal(fv_http_server_start(cfg, &h->srv), 0);
    snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%u", fv_http_server_port(h->srv));
}

/* GET (or HEAD when head) path with the extra request headers (NULL or a
 * NULL-terminated list of "Name: value"); the status, the body in body and
 * the response headers in headers (either may be NULL).  libcurl decodes
 * nothing: a gzip body arrives as gzip. */
static inline long tu_http_request(const struct tu_http *h, const char *path, bool head,
                                   const char *const *req_headers, struct fv_sbuf *body,
                                   struct fv_sbuf *headers)
{
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    char url[8192];
    long status = 0;

    if (body) {
        fv_sbuf_reset(body);
        fv_sbuf_puts(body, "");
    }
    if (headers) {
        fv_sbuf_reset(headers);
        fv_sbuf_puts(headers, "");
    }
    for (size_t i = 0; req_headers && req_headers[i]; i++)
        list = curl_slist_append(list, req_headers[i]);
    snprintf(url, sizeof(url), "%s%s", h->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_http_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_http_on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    /* NUL-terminated for strstr, not counted in len. */
    if (body && fv_sbuf_putc(body, '\0') == 0)
        body->len--;
    if (headers && fv_sbuf_putc(headers, '\0') == 0)
        headers->len--;
    return status;
}

static inline long tu_http_get(const struct tu_http *h, const char *path, struct fv_sbuf *body)
{
    return tu_http_request(h, path, false, NULL, body, NULL);
}

#endif
