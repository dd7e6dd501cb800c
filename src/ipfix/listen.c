/*
 * listen.c - the IPFIX collecting process transports (see transport.h).
 *
 * UDP: one socket, read in batches of BATCH datagrams with recvmmsg();
 * peers are found by source address in a chained hash table.
 * TCP/TLS: libevent bufferevents (bufferevent_openssl for TLS); a read
 * callback cuts complete messages out of the input buffer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/err.h"
#include "ipfix/tls.h"
#include "ipfix/transport.h"

#define BATCH 64
#define DGRAM_MAX 65536
#define PEER_BUCKETS 1024
#define DEFAULT_RCVBUF (32 << 20)
#define UDP_POLL_US 1000     /* read period under load */
#define UDP_BUSY_DATAGRAMS 4 /* a wake-up finding this many means load */

/* A peer and the listener's private bookkeeping around it. */
struct peer {
    struct fv_ipfix_peer pub;   /* what the owner sees; first member */
    struct sockaddr_storage sa; /* UDP: source address (hash key) */
    socklen_t salen;
    struct peer *next;       /* UDP hash chain, or TCP list */
    struct peer **pprev;     /* where this peer is linked from */
    struct bufferevent *bev; /* TCP/TLS only */
    struct fv_ipfix_listener *l;
};

struct fv_ipfix_listener {
    struct event_base *base;
    struct fv_ipfix_listener_cfg cfg;
    struct fv_ipfix_listener_ops ops;
    void *ctx;
    int udp_fd;
    struct event *udp_ev;
    struct event *udp_timer; /* polled reading under load */
    struct evconnlistener *tcp;
    SSL_CTX *ssl_ctx;
    uint16_t port;
    uint32_t npeers;
    struct peer *udp_peers[PEER_BUCKETS];
    struct peer *streams; /* TCP/TLS peers */
    struct fv_ipfix_listener_stats stats;
    /* recvmmsg batch buffers */
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    char cmsg[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    uint8_t *bufs;
};

static _Thread_local char transport_error[256];

const char *fv_ipfix_transport_error(void)
{
    return transport_error;
}

static uint32_t hash_sa(const struct sockaddr_storage *sa, socklen_t len)
{
    const uint8_t *p = (const uint8_t *)sa;
    uint32_t h = 2166136261u;
    for (socklen_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % PEER_BUCKETS;
}

static struct peer *peer_new(struct fv_ipfix_listener *l, const struct sockaddr *sa,
                             socklen_t salen, enum fv_proto proto)
{
    struct peer *p;

    if (l->npeers >= l->cfg.max_peers) {
        l->stats.peers_rejected++;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    memcpy(&p->sa, sa, salen);
    p->salen = salen;
    p->l = l;
    p->pub.proto = proto;
    fv_sockaddr_str(sa, p->pub.name, sizeof(p->pub.name));
    fv_sockaddr_ip(sa, p->pub.ip, sizeof(p->pub.ip));
    fv_ipfix_session_init(&p->pub.session,
                          proto == FV_PROTO_UDP ? l->cfg.udp_template_lifetime_s : 0);
    l->npeers++;
    if (l->ops.on_peer_open)
        l->ops.on_peer_open(l->ctx, &p->pub);
    return p;
}

static void link_peer(struct peer **head, struct peer *p)
{
    p->next = *head;
    if (*head)
        (*head)->pprev = &p->next;
    *head = p;
    p->pprev = head;
}

static void peer_close(struct peer *p, int reason)
{
    struct fv_ipfix_listener *l = p->l;

    *p->pprev = p->next;
    if (p->next)
        p->next->pprev = p->pprev;
    if (l->ops.on_peer_close)
        l->ops.on_peer_close(l->ctx, &p->pub, reason);
    if (p->bev)
        bufferevent_free(p->bev);
    fv_ipfix_session_fini(&p->pub.session);
    l->npeers--;
    free(p);
}

static struct peer *udp_peer(struct fv_ipfix_listener *l, const struct sockaddr_storage *sa,
                             socklen_t salen)
{
    uint32_t h = hash_sa(sa, salen);
    struct peer *p;

    for (p = l->udp_peers[h]; p; p = p->next)
        if (p->salen == salen && memcmp(&p->sa, sa, salen) == 0)
            return p;
    p = peer_new(l, (const struct sockaddr *)sa, salen, FV_PROTO_UDP);
    if (p)
        link_peer(&l->udp_peers[h], p);
    return p;
}

/* Reads queued datagrams (a bounded number of batches); returns how many. */
static int udp_drain(struct fv_ipfix_listener *l)
{
    int total = 0;

    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < BATCH; i++) {
            l->msgs[i].msg_hdr.msg_name = &l->from[i];
            l->msgs[i].msg_hdr.msg_namelen = sizeof(l->from[i]);
            l->msgs[i].msg_hdr.msg_control = l->cmsg[i];
            l->msgs[i].msg_hdr.msg_controllen = sizeof(l->cmsg[i]);
        }
        int n = recvmmsg(l->udp_fd, l->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return total;
        total += n;
        for (int i = 0; i < n; i++) {
            struct msghdr *mh = &l->msgs[i].msg_hdr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    uint32_t drops;
                    memcpy(&drops, CMSG_DATA(c), sizeof(drops));
                    l->stats.udp_kernel_drops = drops;
                }
            }
            l->stats.udp_datagrams++;
            struct peer *p = udp_peer(l, &l->from[i], mh->msg_namelen);
            if (p == NULL)
                continue;
            p->pub.bytes += l->msgs[i].msg_len;
            l->ops.on_message(l->ctx, &p->pub, l->iov[i].iov_base, l->msgs[i].msg_len);
        }
        if (n < BATCH)
            return total;
    }
    return total;
}

/* Woken per datagram when quiet; under load (a wake-up finds several
 * datagrams) it switches to reading from a 1 ms timer until a read finds
 * nothing, so a busy collector does not pay a wake-up and a context switch
 * for every few datagrams.  The socket buffer absorbs the 1 ms. */
static void udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct fv_ipfix_listener *l = arg;
    struct timeval tick = {0, UDP_POLL_US};
    int n = udp_drain(l);
    (void)fd;

    if (what & EV_TIMEOUT) {
        if (n == 0)
            event_add(l->udp_ev, NULL); /* quiet again: back to wake-ups */
        else
            event_add(l->udp_timer, &tick);
        return;
    }
    if (n >= UDP_BUSY_DATAGRAMS) {
        event_del(l->udp_ev);
        event_add(l->udp_timer, &tick);
    }
}

static int udp_open(struct fv_ipfix_listener *l, const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1, size = l->cfg.udp_rcvbuf ? l->cfg.udp_rcvbuf : DEFAULT_RCVBUF;
    socklen_t sl = sizeof(l->stats.udp_rcvbuf);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    /* SO_RCVBUFFORCE passes rmem_max when we may (root); else the cap applies. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    /* No SO_REUSEADDR: on UDP it would let a second collector bind the same
     * port silently and take its datagrams. */
    if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &l->stats.udp_rcvbuf, &sl);
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    l->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                               : ((struct sockaddr_in6 *)&bound)->sin6_port);
    l->udp_fd = fd;
    l->bufs = malloc((size_t)BATCH * DGRAM_MAX);
    if (l->bufs == NULL)
        return -ENOMEM;
    for (int i = 0; i < BATCH; i++) {
        l->iov[i].iov_base = l->bufs + (size_t)i * DGRAM_MAX;
        l->iov[i].iov_len = DGRAM_MAX;
        l->msgs[i].msg_hdr.msg_iov = &l->iov[i];
        l->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    l->udp_ev = event_new(l->base, fd, EV_READ | EV_PERSIST, udp_read, l);
    l->udp_timer = evtimer_new(l->base, udp_read, l);
    if (l->udp_ev == NULL || l->udp_timer == NULL || event_add(l->udp_ev, NULL) < 0)
        return -ENOMEM;
    return 0;
}

/* Cuts complete messages out of a stream's input buffer. */
static void stream_read(struct bufferevent *bev, void *arg)
{
    struct peer *p = arg;
    struct fv_ipfix_listener *l = p->l;
    struct evbuffer *in = bufferevent_get_input(bev);

    for (;;) {
        uint8_t hdr[4];
        size_t have = evbuffer_get_length(in);
        if (have < 4 || evbuffer_copyout(in, hdr, 4) != 4)
            return;
        uint16_t version = fv_load_be16(hdr), len = fv_load_be16(hdr + 2);
        if (version != FV_IPFIX_VERSION || len < FV_IPFIX_HEADER_LEN) {
            /* A stream that lies about framing cannot be resynchronised. */
            l->stats.framing_errors++;
            p->pub.session.last_error = version != FV_IPFIX_VERSION ? -FV_EVERSION : -FV_ELENGTH;
            peer_close(p, p->pub.session.last_error);
            return;
        }
        if (have < len)
            return;
        const uint8_t *msg = evbuffer_pullup(in, len);
        p->pub.bytes += len;
        l->ops.on_message(l->ctx, &p->pub, msg, len);
        evbuffer_drain(in, len);
    }
}

static void stream_event(struct bufferevent *bev, short what, void *arg)
{
    struct peer *p = arg;
    int reason = 0;

    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e || p->pub.proto == FV_PROTO_TLS) {
            p->l->stats.tls_failures += e ? 1 : 0;
            reason = e ? -FV_ETLS : -ECONNRESET;
        } else {
            reason = -(EVUTIL_SOCKET_ERROR());
        }
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        peer_close(p, reason);
}

static void tcp_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                       int salen, void *arg)
{
    struct fv_ipfix_listener *l = arg;
    struct bufferevent *bev;
    struct peer *p;
    (void)lis;

    p = peer_new(l, sa, (socklen_t)salen, l->cfg.addr.proto);
    if (p == NULL) {
        evutil_closesocket(fd);
        return;
    }
    if (l->ssl_ctx) {
        SSL *ssl = SSL_new(l->ssl_ctx);
        bev = ssl ? bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                   BEV_OPT_CLOSE_ON_FREE)
                  : NULL;
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    link_peer(&l->streams, p);
    if (bev == NULL) {
        evutil_closesocket(fd);
        peer_close(p, -ENOMEM);
        return;
    }
    p->bev = bev;
    bufferevent_setcb(bev, stream_read, NULL, stream_event, p);
    bufferevent_enable(bev, EV_READ);
}

int fv_ipfix_listener_new(struct event_base *base, const struct fv_ipfix_listener_cfg *cfg,
                          const struct fv_ipfix_listener_ops *ops, void *ctx,
                          struct fv_ipfix_listener **out)
{
    struct fv_ipfix_listener *l = calloc(1, sizeof(*l));
    struct sockaddr_storage ss;
    socklen_t len;
    int rc;

    transport_error[0] = '\0';
    if (l == NULL)
        return -ENOMEM;
    l->base = base;
    l->cfg = *cfg;
    l->ops = *ops;
    l->ctx = ctx;
    l->udp_fd = -1;
    if (l->cfg.udp_template_lifetime_s == 0)
        l->cfg.udp_template_lifetime_s = FV_IPFIX_UDP_TEMPLATE_LIFETIME_S;
    if (l->cfg.max_peers == 0)
        l->cfg.max_peers = 65536;
    rc = fv_addr_resolve(&cfg->addr, &ss, &len);
    if (rc < 0) {
        snprintf(transport_error, sizeof(transport_error), "cannot resolve %s", cfg->addr.host);
        goto fail;
    }
    if (cfg->addr.proto == FV_PROTO_UDP) {
        rc = udp_open(l, &ss, len);
    } else {
        if (cfg->addr.proto == FV_PROTO_TLS) {
            rc =
                fv_tls_server_ctx(&cfg->tls, &l->ssl_ctx, transport_error, sizeof(transport_error));
            if (rc < 0)
                goto fail;
        }
        l->tcp =
            evconnlistener_new_bind(base, tcp_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                    128, (struct sockaddr *)&ss, (int)len);
        rc = l->tcp ? 0 : -(errno ? errno : EADDRINUSE);
        if (l->tcp) {
            struct sockaddr_storage bound;
            socklen_t blen = sizeof(bound);
            getsockname(evconnlistener_get_fd(l->tcp), (struct sockaddr *)&bound, &blen);
            l->port =
                ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
        }
    }
    if (rc < 0) {
        if (transport_error[0] == '\0')
            snprintf(transport_error, sizeof(transport_error), "cannot listen on %s:%u: %s",
                     cfg->addr.host, cfg->addr.port, fv_strerror(rc));
        goto fail;
    }
    *out = l;
    return 0;
fail:
    fv_ipfix_listener_free(l);
    return rc;
}

void fv_ipfix_listener_free(struct fv_ipfix_listener *l)
{
    if (l == NULL)
        return;
    while (l->streams)
        peer_close(l->streams, 0);
    for (int i = 0; i < PEER_BUCKETS; i++)
        while (l->udp_peers[i])
            peer_close(l->udp_peers[i], 0);
    if (l->tcp)
        evconnlistener_free(l->tcp);
    if (l->udp_ev)
        event_free(l->udp_ev);
    if (l->udp_timer)
        event_free(l->udp_timer);
    if (l->udp_fd >= 0)
        close(l->udp_fd);
    SSL_CTX_free(l->ssl_ctx);
    free(l->bufs);
    free(l);
}

void fv_ipfix_listener_stats(const struct fv_ipfix_listener *l, struct fv_ipfix_listener_stats *out)
{
    *out = l->stats;
}

uint16_t fv_ipfix_listener_port(const struct fv_ipfix_listener *l)
{
    return l->port;
}
