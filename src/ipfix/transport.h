/*
 * transport.h - IPFIX over UDP, TCP and TLS: the collecting side
 * (listener) and the exporting side (exporter).
 *
 * Listener.  Runs on a libevent event_base owned by the caller.  UDP is
 * read with recvmmsg() in batches into a large socket buffer (the kernel's
 * own drop counter is read through SO_RXQ_OVFL and reported); TCP and TLS
 * streams are framed by the IPFIX message length.  Each exporter is a
 * peer: one per UDP source address:port, one per TCP/TLS connection, each
 * with its own fv_ipfix_session (templates and sequence state), as RFC
 * 7011 defines transport sessions.  The listener frames messages; the
 * owner decodes them in on_message (usually with fv_ipfix_session_decode
 * on peer->session).  A stream whose framing is broken (wrong version or
 * a length below 16) cannot be resynchronised and is closed.
 *
 *     struct fv_ipfix_listener *l;
 *     rc = fv_ipfix_listener_new(base, &cfg, &ops, ctx, &l);
 *     event_base_dispatch(base);
 *     fv_ipfix_listener_free(l);   // calls on_peer_close for every peer
 *
 * Exporter.  A blocking client that packs records into messages (up to
 * the MTU budget on UDP, 64 KiB on TCP/TLS), numbers them as RFC 7011
 * says (records sent before this message, per observation domain), and
 * sends its templates at the start of every TCP/TLS session and every
 * template_refresh_s on UDP.
 *
 *     fv_ipfix_exporter_new(&ecfg, tmpls, 2, &e);
 *     fv_ipfix_exporter_connect(e);
 *     fv_ipfix_exporter_add(e, 256, encode_my_record, &rec);
 *     fv_ipfix_exporter_flush(e);
 *     fv_ipfix_exporter_free(e);
 *
 * Thread rules: a listener lives on its event_base's thread; an exporter
 * is used by one thread at a time.
 */
#ifndef FV_IPFIX_TRANSPORT_H
#define FV_IPFIX_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/addr.h"
#include "ipfix/ipfix.h"

struct event_base;

/* TLS files.  Server side: cert+key required, ca => clients must present
 * a certificate signed by it.  Client side: ca verifies the server (and
 * its name), cert+key are presented for mutual TLS. */
struct fv_tls_files {
    const char *ca;   /* PEM CA bundle, or NULL */
    const char *cert; /* PEM certificate (chain), or NULL */
    const char *key;  /* PEM private key, or NULL */
};

struct fv_ipfix_listener_cfg {
    struct fv_addr addr;              /* where to listen, and the transport */
    struct fv_tls_files tls;          /* for FV_PROTO_TLS */
    int udp_rcvbuf;                   /* requested SO_RCVBUF bytes (0 = 32 MiB) */
    uint32_t udp_template_lifetime_s; /* 0 = FV_IPFIX_UDP_TEMPLATE_LIFETIME_S */
    uint32_t max_peers;               /* 0 = 65536; more UDP sources are dropped */
};

struct fv_ipfix_peer {
    char name[64];                   /* "ip:port" of the exporter */
    char ip[48];                     /* exporter address only */
    enum fv_proto proto;             /* transport of the session */
    struct fv_ipfix_session session; /* templates and sequence state */
    uint64_t bytes;                  /* bytes received */
    void *user;                      /* free for the owner */
};

struct fv_ipfix_listener_ops {
    /* A new exporter appeared (first datagram, or accepted connection). */
    void (*on_peer_open)(void *ctx, struct fv_ipfix_peer *peer);
    /* One framed message; buf is valid during the call only. */
    void (*on_message)(void *ctx, struct fv_ipfix_peer *peer, const uint8_t *buf, size_t len);
    /* The session ended: reason 0 for a clean close or listener shutdown,
     * else a negative code.  The peer is freed right after. */
    void (*on_peer_close)(void *ctx, struct fv_ipfix_peer *peer, int reason);
};

struct fv_ipfix_listener;

int fv_ipfix_listener_new(struct event_base *base, const struct fv_ipfix_listener_cfg *cfg,
                          const struct fv_ipfix_listener_ops *ops, void *ctx,
                          struct fv_ipfix_listener **out);
/* Closes every session (on_peer_close with reason 0) and frees.  NULL ok. */
void fv_ipfix_listener_free(struct fv_ipfix_listener *l);

struct fv_ipfix_listener_stats {
    uint64_t udp_kernel_drops; /* datagrams the kernel dropped (SO_RXQ_OVFL) */
    uint64_t udp_datagrams;    /* datagrams read */
    uint64_t peers_rejected;   /* datagrams/connections refused by max_peers */
    uint64_t framing_errors;   /* streams closed for broken framing */
    uint64_t tls_failures;     /* TLS handshakes or sessions that failed */
    int udp_rcvbuf;            /* the socket buffer the kernel granted */
};
void fv_ipfix_listener_stats(const struct fv_ipfix_listener *l,
                             struct fv_ipfix_listener_stats *out);

/* The bound port (useful with port 0 in tests). */
uint16_t fv_ipfix_listener_port(const struct fv_ipfix_listener *l);

/* Detail of the last listener/exporter setup failure on this thread
 * (e.g. which TLS file could not be loaded); "" when there is none. */
const char *fv_ipfix_transport_error(void);

/* ---- Exporter ---- */

struct fv_ipfix_exporter_cfg {
    struct fv_addr addr;         /* collector and transport */
    struct fv_tls_files tls;     /* for FV_PROTO_TLS */
    const char *bind_ip;         /* local source address, or NULL */
    uint32_t domain;             /* observation domain id */
    size_t mtu;                  /* UDP message budget; 0 = 1400 */
    uint32_t template_refresh_s; /* UDP template resend interval; 0 = 600 */
};

struct fv_ipfix_exporter;

/* Writes one record's fields; called again on a fresh message when the
 * first attempt did not fit. */
typedef void (*fv_ipfix_encode_fn)(struct fv_ipfix_writer *w, const void *arg);

/* tmpls (borrowed, must outlive the exporter) are the templates it may use. */
int fv_ipfix_exporter_new(const struct fv_ipfix_exporter_cfg *cfg,
                          const struct fv_ipfix_template_def *const *tmpls, size_t ntmpl,
                          struct fv_ipfix_exporter **out);
void fv_ipfix_exporter_free(struct fv_ipfix_exporter *e);

/* (Re)connects; a new TCP/TLS session starts with the templates again. */
int fv_ipfix_exporter_connect(struct fv_ipfix_exporter *e);
void fv_ipfix_exporter_close(struct fv_ipfix_exporter *e);
bool fv_ipfix_exporter_connected(const struct fv_ipfix_exporter *e);

/* Adds one record, sending the current message first when it is full.
 * Returns 0, -FV_ELIMIT for a record larger than a message, or the send
 * error (the exporter is then closed and the pending message kept). */
int fv_ipfix_exporter_add(struct fv_ipfix_exporter *e, uint16_t template_id,
                          fv_ipfix_encode_fn encode, const void *arg);

/* Notices a stream the collector closed (closing ours too); false when not
 * connected.  For idle exporters, which otherwise learn it only on send. */
bool fv_ipfix_exporter_check(struct fv_ipfix_exporter *e);

/* Sends the pending message, if it holds any record. */
int fv_ipfix_exporter_flush(struct fv_ipfix_exporter *e);

struct fv_ipfix_exporter_stats {
    uint64_t messages;  /* messages sent */
    uint64_t records;   /* data records sent */
    uint64_t bytes;     /* bytes sent */
    uint64_t templates; /* template sets sent */
};
void fv_ipfix_exporter_stats(const struct fv_ipfix_exporter *e,
                             struct fv_ipfix_exporter_stats *out);

#endif
