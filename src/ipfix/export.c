/*
 * export.c - the IPFIX exporting process (see transport.h).
 *
 * One message is built at a time in a buffer of the transport's size.
 * Templates go first in the first message of every TCP/TLS session and,
 * on UDP, in the first message after each refresh interval.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "ipfix/tls.h"
#include "ipfix/transport.h"

#define DEFAULT_MTU 1400
#define DEFAULT_REFRESH_S 600
#define TLS_REFUSAL_WAIT_MS 250

struct fv_ipfix_exporter {
    struct fv_ipfix_exporter_cfg cfg;
    const struct fv_ipfix_template_def *const *tmpls; /* borrowed */
    size_t ntmpl;
    int fd;                     /* -1 when closed */
    SSL_CTX *ssl_ctx;           /* TLS only */
    SSL *ssl;                   /* TLS session, NULL when closed */
    bool need_templates;        /* next message starts with the templates */
    bool healthy;               /* connected and no send error since */
    uint64_t templates_sent_ms; /* monotonic time of the last template send */
    uint32_t seq;               /* data records sent before the pending message */
    struct fv_ipfix_writer w;   /* the pending message */
    struct fv_ipfix_exporter_stats stats;
    uint8_t buf[FV_IPFIX_MAX_MESSAGE];  /* the pending message */
    uint8_t tbuf[FV_IPFIX_MAX_MESSAGE]; /* a templates-only message */
};

int fv_ipfix_exporter_new(const struct fv_ipfix_exporter_cfg *cfg,
                          const struct fv_ipfix_template_def *const *tmpls, size_t ntmpl,
                          struct fv_ipfix_exporter **out)
{
    struct fv_ipfix_exporter *e = calloc(1, sizeof(*e));
    char err[256];
    int rc;

    if (e == NULL)
        return -ENOMEM;
    e->cfg = *cfg;
    if (e->cfg.mtu == 0)
        e->cfg.mtu = DEFAULT_MTU;
    if (e->cfg.template_refresh_s == 0)
        e->cfg.template_refresh_s = DEFAULT_REFRESH_S;
    e->tmpls = tmpls;
    e->ntmpl = ntmpl;
    e->fd = -1;
    e->need_templates = true;
    if (cfg->addr.proto == FV_PROTO_TLS) {
        rc = fv_tls_client_ctx(&cfg->tls, &e->ssl_ctx, err, sizeof(err));
        if (rc < 0) {
            free(e);
            return rc;
        }
    }
    fv_ipfix_writer_init(&e->w, e->buf,
                         cfg->addr.proto == FV_PROTO_UDP ? e->cfg.mtu : FV_IPFIX_MAX_MESSAGE);
    *out = e;
    return 0;
}

/* Closes a stream so that everything sent is delivered: close() on a
 * socket with unread input (a TLS 1.3 session ticket, say) sends a reset,
 * and a reset makes the peer's kernel discard data it has not yet read.
 * So: close_notify, half-close, then read until the peer closes too
 * (bounded by a one-second timeout). */
static void close_gracefully(struct fv_ipfix_exporter *e)
{
    struct timeval tv = {1, 0};
    char sink[4096];

    setsockopt(e->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (e->ssl)
        SSL_shutdown(e->ssl);
    shutdown(e->fd, SHUT_WR);
    for (int i = 0; i < 1024; i++) {
        ssize_t n =
            e->ssl ? SSL_read(e->ssl, sink, sizeof(sink)) : recv(e->fd, sink, sizeof(sink), 0);
        if (n <= 0)
            break;
    }
    ERR_clear_error();
}

void fv_ipfix_exporter_close(struct fv_ipfix_exporter *e)
{
    if (e->fd >= 0 && e->cfg.addr.proto != FV_PROTO_UDP && e->healthy)
        close_gracefully(e);
    if (e->ssl) {
        SSL_free(e->ssl);
        e->ssl = NULL;
    }
    if (e->fd >= 0)
        close(e->fd);
    e->fd = -1;
    e->healthy = false;
}

void fv_ipfix_exporter_free(struct fv_ipfix_exporter *e)
{
    if (e == NULL)
        return;
    fv_ipfix_exporter_close(e);
    SSL_CTX_free(e->ssl_ctx);
    free(e);
}

bool fv_ipfix_exporter_connected(const struct fv_ipfix_exporter *e)
{
    return e->fd >= 0;
}

/* With TLS 1.3 the client's handshake completes before the server has
 * checked the client's certificate; a refusal arrives afterwards as an
 * alert.  A collector sends nothing else on a session (we ask ours for no
 * session tickets), so wait briefly for input: an alert means refused,
 * other TLS records (another server's tickets) are consumed harmlessly. */
static int tls_check_accepted(struct fv_ipfix_exporter *e)
{
    struct pollfd p = {.fd = e->fd, .events = POLLIN};
    int flags = fcntl(e->fd, F_GETFL), rc = 0;
    char c;

    if (SSL_version(e->ssl) < TLS1_3_VERSION || poll(&p, 1, TLS_REFUSAL_WAIT_MS) <= 0)
        return 0;
    fcntl(e->fd, F_SETFL, flags | O_NONBLOCK);
    if (SSL_peek(e->ssl, &c, 1) <= 0) {
        int err = SSL_get_error(e->ssl, 0);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            rc = -FV_ETLS;
    }
    fcntl(e->fd, F_SETFL, flags);
    ERR_clear_error();
    return rc;
}

static int tls_handshake(struct fv_ipfix_exporter *e)
{
    e->ssl = SSL_new(e->ssl_ctx);
    if (e->ssl == NULL)
        return -ENOMEM;
    SSL_set_fd(e->ssl, e->fd);
    SSL_set_tlsext_host_name(e->ssl, e->cfg.addr.host);
    if (e->cfg.tls.ca)
        SSL_set1_host(e->ssl, e->cfg.addr.host);
    if (SSL_connect(e->ssl) != 1) {
        ERR_clear_error();
        return -FV_ETLS;
    }
    return tls_check_accepted(e);
}

int fv_ipfix_exporter_connect(struct fv_ipfix_exporter *e)
{
    struct sockaddr_storage ss, local;
    socklen_t len, llen;
    int type = e->cfg.addr.proto == FV_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int rc;

    fv_ipfix_exporter_close(e);
    rc = fv_addr_resolve(&e->cfg.addr, &ss, &len);
    if (rc < 0)
        return rc;
    e->fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
    if (e->fd < 0)
        return -errno;
    if (e->cfg.bind_ip) {
        struct fv_addr la = {.port = 0, .proto = e->cfg.addr.proto};
        snprintf(la.host, sizeof(la.host), "%s", e->cfg.bind_ip);
        la.port = 0;
        rc = fv_addr_resolve(&la, &local, &llen);
        if (rc == 0 && bind(e->fd, (struct sockaddr *)&local, llen) < 0)
            rc = -errno;
        if (rc < 0)
            goto fail;
    }
    if (connect(e->fd, (struct sockaddr *)&ss, len) < 0) {
        rc = -errno;
        goto fail;
    }
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(e->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (e->ssl_ctx) {
        rc = tls_handshake(e);
        if (rc < 0)
            goto fail;
    }
    /* Every new TCP/TLS session starts with the templates (RFC 7011 8.1). */
    e->need_templates = true;
    e->healthy = true;
    return 0;
fail:
    fv_ipfix_exporter_close(e);
    return rc;
}

static int send_all(struct fv_ipfix_exporter *e, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k;
        if (e->ssl) {
            k = SSL_write(e->ssl, p, (int)n);
            if (k <= 0) {
                ERR_clear_error();
                return -FV_ETLS;
            }
        } else {
            k = send(e->fd, p, n, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                /* A UDP collector not listening yet (ICMP unreachable)
                 * is not a broken session: the datagram is gone either way. */
                if (e->cfg.addr.proto == FV_PROTO_UDP && errno == ECONNREFUSED)
                    return 0;
                return -errno;
            }
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Starts a message: templates first when they are due. */
static int begin_message(struct fv_ipfix_exporter *e)
{
    uint64_t now = fv_clock_mono_ms();

    fv_ipfix_writer_reset(&e->w);
    if (e->cfg.addr.proto == FV_PROTO_UDP &&
        now - e->templates_sent_ms >= (uint64_t)e->cfg.template_refresh_s * 1000u)
        e->need_templates = true;
    if (!e->need_templates)
        return 0;
    for (size_t i = 0; i < e->ntmpl; i++)
        if (fv_ipfix_writer_add_template(&e->w, e->tmpls[i]) < 0)
            return -FV_ELIMIT;
    e->need_templates = false;
    e->templates_sent_ms = now;
    e->stats.templates++;
    return 0;
}

/* Sends the templates alone: a session (re)started after the pending
 * message was begun must still see the templates before its data. */
static int send_templates(struct fv_ipfix_exporter *e)
{
    struct fv_ipfix_writer tw;
    size_t len;
    int rc;

    fv_ipfix_writer_init(&tw, e->tbuf, e->w.cap);
    for (size_t i = 0; i < e->ntmpl; i++)
        if (fv_ipfix_writer_add_template(&tw, e->tmpls[i]) < 0)
            return -FV_ELIMIT;
    len = fv_ipfix_writer_finish(&tw, fv_clock_wall_s(), e->seq, e->cfg.domain);
    rc = send_all(e, e->tbuf, len);
    if (rc < 0)
        return rc;
    e->need_templates = false;
    e->templates_sent_ms = fv_clock_mono_ms();
    e->stats.templates++;
    return 0;
}

/* True when a stream's peer has closed or reset it.  A collector never
 * sends on an IPFIX session, so anything readable means the end; checking
 * before writing keeps a message from being written into a dead socket,
 * where the kernel would accept it and then lose it to the reset. */
static bool peer_gone(const struct fv_ipfix_exporter *e)
{
    struct pollfd p = {.fd = e->fd, .events = POLLIN | POLLRDHUP};

    if (e->cfg.addr.proto == FV_PROTO_UDP)
        return false;
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0 || ((p.revents & POLLIN) && !e->ssl);
}

bool fv_ipfix_exporter_check(struct fv_ipfix_exporter *e)
{
    if (e->fd >= 0 && peer_gone(e)) {
        e->healthy = false;
        fv_ipfix_exporter_close(e);
    }
    return e->fd >= 0;
}

int fv_ipfix_exporter_flush(struct fv_ipfix_exporter *e)
{
    size_t len;
    int rc;

    if (e->w.records == 0)
        return 0;
    if (e->fd < 0)
        return -ENOTCONN;
    if (peer_gone(e)) {
        e->healthy = false;
        fv_ipfix_exporter_close(e);
        return -ECONNRESET;
    }
    if (e->need_templates) {
        rc = send_templates(e);
        if (rc < 0) {
            e->healthy = false;
            fv_ipfix_exporter_close(e);
            return rc;
        }
    }
    len = fv_ipfix_writer_finish(&e->w, fv_clock_wall_s(), e->seq, e->cfg.domain);
    rc = send_all(e, e->buf, len);
    if (rc < 0) {
        e->healthy = false;
        /* Keep the message: the caller reconnects and flushes again; the
         * new session gets the templates first (see send_templates). */
        fv_ipfix_exporter_close(e);
        return rc;
    }
    e->seq += e->w.records;
    e->stats.messages++;
    e->stats.records += e->w.records;
    e->stats.bytes += len;
    fv_ipfix_writer_reset(&e->w);
    return 0;
}

int fv_ipfix_exporter_add(struct fv_ipfix_exporter *e, uint16_t template_id,
                          fv_ipfix_encode_fn encode, const void *arg)
{
    int rc;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (e->w.records == 0 && e->w.len == FV_IPFIX_HEADER_LEN) {
            rc = begin_message(e);
            if (rc < 0)
                return rc;
        }
        fv_ipfix_writer_record_begin(&e->w, template_id);
        encode(&e->w, arg);
        if (fv_ipfix_writer_record_end(&e->w) == 0)
            return 0;
        if (e->w.records == 0)
            return -FV_ELIMIT; /* does not fit even an empty message */
        rc = fv_ipfix_exporter_flush(e);
        if (rc < 0)
            return rc;
    }
    return -FV_ELIMIT;
}

void fv_ipfix_exporter_stats(const struct fv_ipfix_exporter *e, struct fv_ipfix_exporter_stats *out)
{
    *out = e->stats;
}
