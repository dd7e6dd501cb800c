/*
 * nflog.c - the NFLOG listener and the IP header parser (see nflog.h).
 *
 * The socket is a libmnl netlink socket, as in conntrack/conntrack.c, so
 * reads are ours to bound and ENOBUFS is ours to see; libnetfilter_log
 * builds the configuration messages.  Each group is bound with one
 * NFULNL_MSG_CONFIG message (bind command, copy mode, flush timeout) sent
 * with NLM_F_ACK, so a refusal comes back with its errno.
 *
 * Everything taken from a log message is validated: attributes through
 * libmnl (mnl_attr_parse, mnl_attr_validate), the packet through the
 * bounds-checked cursor of base/bytes.h.
 */
#include "agent/nflog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/bytes.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"

#define RCVBUF_START (4 << 20)
#define RCVBUF_MAX (64 << 20)
#define BUF_START (64 << 10) /* receive buffer; a kernel batch is a few pages */
#define BUF_MAX (1 << 20)
#define FLUSH_TIMEOUT_CS 10 /* the kernel sends a partial batch after 100 ms */
#define LOG_EVERY_MS 10000  /* rate limit of per-packet complaints */
#define MAX_EXT_HEADERS 16  /* IPv6 extension headers skipped at most */
#define ACK_TIMEOUT_S 5     /* waiting for the kernel to answer a bind */

struct fv_nflog {
    struct mnl_socket *nl;
    unsigned int portid;
    uint32_t seq;
    struct fv_nflog_group *groups; /* copy of the configuration */
    size_t ngroups;
    uint8_t *buf; /* one kernel batch */
    size_t buflen;
    int rcvbuf; /* socket receive buffer asked for */
    struct fv_nflog_stats stats;
    struct fv_ratelimit rl_overrun;
    struct fv_ratelimit rl_malformed;
    struct fv_nflog_packet pkt; /* reused for every message */
};

/* ---- configuration ---- */

static void say(char *why, size_t n, const char *s, const char *what)
{
    if (why != NULL && n > 0)
        snprintf(why, n, "'%s': %s", s, what);
}

int fv_nflog_group_parse(const char *s, struct fv_nflog_group *out, char *why, size_t n)
{
    const char *p = s;
    uint32_t v = 0;

    if (*p < '0' || *p > '9') {
        say(why, n, s, "group must be a number 0-65535, optionally followed by :drop or :reject");
        return -EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint32_t)(*p - '0');
        if (v > 65535) {
            say(why, n, s, "group must be a number 0-65535");
            return -EINVAL;
        }
    }
    if (*p == '\0') {
        out->action = FV_NFLOG_DROP;
    } else if (strcmp(p, ":drop") == 0) {
        out->action = FV_NFLOG_DROP;
    } else if (strcmp(p, ":reject") == 0) {
        out->action = FV_NFLOG_REJECT;
    } else if (*p == ':') {
        say(why, n, s, "action must be drop or reject");
        return -EINVAL;
    } else {
        say(why, n, s, "group must be a number 0-65535, optionally followed by :drop or :reject");
        return -EINVAL;
    }
    out->group = (uint16_t)v;
    return 0;
}

/* ---- the IP parser ---- */

/* What the network layer says about the transport header. */
struct l3 {
    uint8_t proto; /* upper-layer protocol */
    bool first;    /* the first fragment (or not a fragment): L4 header present */
};

static int parse_v4(const uint8_t *pkt, size_t len, struct fv_nflog_packet *p, struct fv_rd *rd,
                    struct l3 *l)
{
    const uint8_t *h;
    size_t ihl, total;

    fv_rd_init(rd, pkt, len);
    if (fv_rd_bytes(rd, 20, &h) < 0)
        return -EINVAL;
    ihl = (size_t)(h[0] & 15) * 4;
    total = fv_load_be16(h + 2);
    if (ihl < 20 || (total != 0 && total < ihl))
        return -EINVAL;
    if (total == 0)
        total = len; /* BIG TCP (GSO beyond 64 KiB): the copy is a lower bound */
    fv_ip_from_bytes(h + 12, 4, &p->src);
    fv_ip_from_bytes(h + 16, 4, &p->dst);
    p->len = (uint32_t)total;
    l->proto = h[9];
    l->first = (fv_load_be16(h + 6) & 0x1FFF) == 0;
    /* The transport header starts after the options and ends with the
     * packet: bytes past the total length are link-layer padding. */
    fv_rd_init(rd, pkt, len < total ? len : total);
    return fv_rd_bytes(rd, ihl, &h) < 0 ? -EINVAL : 0;
}

/* Skips one IPv6 extension header; *more is false at the upper-layer
 * protocol (or the data of a later fragment). */
static int skip_ext(struct fv_rd *rd, struct l3 *l, bool *more)
{
    const uint8_t *h;
    size_t hlen;

    *more = true;
    switch (l->proto) {
    case 0:   /* hop-by-hop options */
    case 43:  /* routing */
    case 60:  /* destination options */
    case 139: /* HIP */
    case 140: /* shim6 */
        if (fv_rd_left(rd) < 2)
            return -EINVAL;
        hlen = ((size_t)rd->p[1] + 1) * 8;
        break;
    case 51: /* AH: its length counts 4-byte words, minus 2 */
        if (fv_rd_left(rd) < 2)
            return -EINVAL;
        hlen = ((size_t)rd->p[1] + 2) * 4;
        break;
    case 44: /* fragment */
        if (fv_rd_bytes(rd, 8, &h) < 0)
            return -EINVAL;
        l->proto = h[0];
        if ((fv_load_be16(h + 2) >> 3) != 0) {
            /* A later fragment: what follows is data, not headers. */
            l->first = false;
            *more = false;
        }
        return 0;
    default:
        *more = false;
        return 0;
    }
    if (fv_rd_bytes(rd, hlen, &h) < 0)
        return -EINVAL;
    l->proto = h[0];
    return 0;
}

static int parse_v6(const uint8_t *pkt, size_t len, struct fv_nflog_packet *p, struct fv_rd *rd,
                    struct l3 *l)
{
    const uint8_t *h;
    size_t total;
    bool more;

    fv_rd_init(rd, pkt, len);
    if (fv_rd_bytes(rd, 40, &h) < 0)
        return -EINVAL;
    total = fv_load_be16(h + 4);
    total = total ? total + 40 : len; /* 0: a jumbogram or BIG TCP */
    fv_ip_from_bytes(h + 8, 16, &p->src);
    fv_ip_from_bytes(h + 24, 16, &p->dst);
    p->len = (uint32_t)total;
    l->proto = h[6];
    l->first = true;
    fv_rd_init(rd, pkt, len < total ? len : total);
    if (fv_rd_bytes(rd, 40, &h) < 0)
        return -EINVAL;
    for (int i = 0;; i++) {
        if (skip_ext(rd, l, &more) < 0)
            return -EINVAL;
        if (!more)
            return 0;
        if (i == MAX_EXT_HEADERS - 1)
            return -EINVAL; /* more than any real packet carries */
    }
}

static bool icmp_has_id(uint8_t proto, uint8_t type)
{
    if (proto == 1)
        return type == 0 || type == 8; /* echo reply, echo request */
    return type == 128 || type == 129; /* ICMPv6 echo request, reply */
}

/* Ports from the first bytes of the transport header (see nflog.h). */
static int parse_l4(struct fv_rd *rd, const struct l3 *l, struct fv_nflog_packet *p)
{
    const uint8_t *h;

    p->proto = l->proto;
    if (!l->first)
        return 0;
    switch (l->proto) {
    case 6:   /* TCP */
    case 17:  /* UDP */
    case 33:  /* DCCP */
    case 132: /* SCTP */
    case 136: /* UDP-Lite */
        if (fv_rd_bytes(rd, 4, &h) < 0)
            return -EINVAL;
        p->sport = fv_load_be16(h);
        p->dport = fv_load_be16(h + 2);
        return 0;
    case 1:  /* ICMP */
    case 58: /* ICMPv6 */
        if (fv_rd_left(rd) < 2)
            return -EINVAL;
        h = rd->p;
        p->dport = (uint16_t)(h[0] << 8 | h[1]);
        if (icmp_has_id(l->proto, h[0])) {
            if (fv_rd_bytes(rd, 6, &h) < 0)
                return -EINVAL;
            p->sport = fv_load_be16(h + 4);
        }
        return 0;
    default:
        return 0;
    }
}

int fv_nflog_parse_ip(const uint8_t *pkt, size_t len, struct fv_nflog_packet *p)
{
    struct fv_rd rd;
    struct l3 l = {0, true};
    int rc;

    memset(&p->src, 0, sizeof(p->src));
    memset(&p->dst, 0, sizeof(p->dst));
    p->sport = p->dport = 0;
    p->proto = 0;
    p->len = 0;
    if (len < 1)
        return -EINVAL;
    switch (pkt[0] >> 4) {
    case 4:
        rc = parse_v4(pkt, len, p, &rd, &l);
        break;
    case 6:
        rc = parse_v6(pkt, len, p, &rd, &l);
        break;
    default:
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = parse_l4(&rd, &l, p);
    return rc;
}

/* ---- log messages ---- */

struct read_ctx {
    struct fv_nflog *l;
    fv_nflog_packet_fn fn;
    void *ctx;
    int delivered;
};

static int collect_attr(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(attr);

    if (type == NFULA_PAYLOAD || type == NFULA_PREFIX)
        tb[type] = attr;
    return MNL_CB_OK;
}

static uint8_t group_action(const struct fv_nflog *l, uint16_t group)
{
    for (size_t i = 0; i < l->ngroups; i++)
        if (l->groups[i].group == group)
            return l->groups[i].action;
    return FV_NFLOG_DROP;
}

static void malformed(struct fv_nflog *l, uint16_t group, const char *what)
{
    uint64_t suppressed;

    l->stats.malformed++;
    if (fv_ratelimit_allow(&l->rl_malformed, fv_clock_mono_ms(), &suppressed))
        FV_LOG_WARN("nflog: %s group=%u malformed_total=%" PRIu64 " (%" PRIu64
                    " more since the last line)",
                    what, group, l->stats.malformed, suppressed);
}

static void copy_prefix(const struct nlattr *a, char *out)
{
    size_t n = 0;

    if (a != NULL && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
        const char *s = mnl_attr_get_str(a);
        n = strnlen(s, mnl_attr_get_payload_len(a));
        if (n > FV_NFLOG_PREFIX_MAX - 1)
            n = FV_NFLOG_PREFIX_MAX - 1;
        memcpy(out, s, n);
    }
    out[n] = '\0';
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
    struct read_ctx *r = data;
    struct fv_nflog *l = r->l;
    struct fv_nflog_packet *p = &l->pkt;
    const struct nlattr *tb[NFULA_MAX + 1] = {0};
    const struct nfgenmsg *nfg;

    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_ULOG ||
        NFNL_MSG_TYPE(nlh->nlmsg_type) != NFULNL_MSG_PACKET)
        return MNL_CB_OK;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*nfg)) {
        malformed(l, 0, "short message");
        return MNL_CB_OK;
    }
    nfg = mnl_nlmsg_get_payload(nlh);
    p->group = ntohs(nfg->res_id);
    if (mnl_attr_parse(nlh, sizeof(*nfg), collect_attr, tb) < 0 || tb[NFULA_PAYLOAD] == NULL) {
        malformed(l, p->group, "message without a packet");
        return MNL_CB_OK;
    }
    if (fv_nflog_parse_ip(mnl_attr_get_payload(tb[NFULA_PAYLOAD]),
                          mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]), p) < 0) {
        malformed(l, p->group, "not an IPv4/IPv6 packet or headers cut short");
        return MNL_CB_OK;
    }
    p->action = group_action(l, p->group);
    copy_prefix(tb[NFULA_PREFIX], p->prefix);
    l->stats.packets++;
    l->stats.bytes += p->len;
    r->delivered++;
    r->fn(r->ctx, p);
    return MNL_CB_OK;
}

/* ---- the socket ---- */

static void set_rcvbuf(struct fv_nflog *l, int size)
{
    int fd = mnl_socket_get_fd(l->nl);

    /* FORCE passes net.core.rmem_max, with CAP_NET_ADMIN (which binding
     * needs anyway); plain SO_RCVBUF is the fallback, capped by it. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    l->rcvbuf = size;
}

static void overrun(struct fv_nflog *l)
{
    uint64_t suppressed;

    l->stats.overruns++;
    if (l->rcvbuf < RCVBUF_MAX)
        set_rcvbuf(l, l->rcvbuf * 2 > RCVBUF_MAX ? RCVBUF_MAX : l->rcvbuf * 2);
    if (fv_ratelimit_allow(&l->rl_overrun, fv_clock_mono_ms(), &suppressed))
        FV_LOG_WARN("nflog: overrun, the kernel dropped logged packets rcvbuf=%d "
                    "overruns_total=%" PRIu64 " (%" PRIu64 " more since the last line)",
                    l->rcvbuf, l->stats.overruns, suppressed);
}

/* A batch larger than the buffer was cut (its packets are lost): make
 * room for the next one. */
static void truncated(struct fv_nflog *l, size_t need)
{
    size_t len = l->buflen;
    uint8_t *b;

    malformed(l, 0, "batch larger than the receive buffer");
    while (len < need && len < BUF_MAX)
        len *= 2;
    b = len > l->buflen ? realloc(l->buf, len) : NULL;
    if (b != NULL) {
        l->buf = b;
        l->buflen = len;
    }
}

int fv_nflog_read(struct fv_nflog *l, fv_nflog_packet_fn fn, void *ctx)
{
    struct read_ctx rc = {l, fn, ctx, 0};
    int fd = mnl_socket_get_fd(l->nl);

    while (rc.delivered < FV_NFLOG_READ_BUDGET) {
        /* MSG_TRUNC: the real length of a datagram that did not fit. */
        ssize_t n = recv(fd, l->buf, l->buflen, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == ENOBUFS) {
                overrun(l);
                continue;
            }
            return -errno;
        }
        if ((size_t)n > l->buflen) {
            truncated(l, (size_t)n);
            continue;
        }
        if (mnl_cb_run(l->buf, (size_t)n, 0, 0, packet_cb, &rc) < 0)
            malformed(l, 0, "bad netlink message");
    }
    return rc.delivered;
}

/* Whether this process holds CAP_NET_ADMIN (to tell EPERM's causes apart). */
static bool have_net_admin(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];

    if (syscall(SYS_capget, &h, c) < 0)
        return false;
    return (c[CAP_TO_INDEX(CAP_NET_ADMIN)].effective & CAP_TO_MASK(CAP_NET_ADMIN)) != 0;
}

/* Waits for the kernel's answer to request seq: 0 or its -errno.  Log
 * messages of groups already bound are discarded meanwhile. */
static int wait_ack(struct fv_nflog *l, uint32_t seq)
{
    for (;;) {
        ssize_t n = recv(mnl_socket_get_fd(l->nl), l->buf, l->buflen, 0);
        int rc;
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS)
                continue;
            return -errno;
        }
        rc = mnl_cb_run(l->buf, (size_t)n, seq, l->portid, NULL, NULL);
        if (rc == MNL_CB_STOP)
            return 0;
        if (rc < 0)
            return -errno;
    }
}

static int bind_group(struct fv_nflog *l, const struct fv_nflog_group *g)
{
    char req[256];
    struct nlmsghdr *nlh = nflog_nlmsg_put_header(req, NFULNL_MSG_CONFIG, AF_UNSPEC, g->group);
    int rc;

    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = ++l->seq;
    nflog_attr_put_cfg_cmd(nlh, NFULNL_CFG_CMD_BIND);
    nflog_attr_put_cfg_mode(nlh, NFULNL_COPY_PACKET, FV_NFLOG_COPY_RANGE);
    mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(FLUSH_TIMEOUT_CS));
    if (mnl_socket_sendto(l->nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    rc = wait_ack(l, nlh->nlmsg_seq);
    /* The kernel says EPERM both without CAP_NET_ADMIN and when another
     * socket owns the group (EBUSY is for binding it twice ourselves). */
    if (rc == -EPERM && have_net_admin())
        rc = -EBUSY;
    return rc;
}

static void log_bind_error(uint16_t group, int rc)
{
    if (rc == -EPERM)
        FV_LOG_ERROR("nflog: cannot bind group=%u: %s (needs CAP_NET_ADMIN)", group,
                     fv_strerror(rc));
    else if (rc == -EBUSY)
        FV_LOG_ERROR("nflog: cannot bind group=%u: another process holds it in this network "
                     "namespace (ulogd2? another agent?)",
                     group);
    else
        FV_LOG_ERROR("nflog: cannot bind group=%u: %s", group, fv_strerror(rc));
}

static int check_groups(const struct fv_nflog_group *groups, size_t n)
{
    if (n == 0) {
        FV_LOG_ERROR("nflog: no groups to listen to");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (groups[i].group == groups[j].group) {
                FV_LOG_ERROR("nflog: group=%u is listed twice", groups[i].group);
                return -EINVAL;
            }
    return 0;
}

static int open_socket(struct fv_nflog *l)
{
    /* The kernel answers every request at once; the timeout only keeps a
     * broken kernel from hanging the agent's start. */
    struct timeval tv = {.tv_sec = ACK_TIMEOUT_S};

    l->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (l->nl == NULL || mnl_socket_bind(l->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int rc = -errno;
        FV_LOG_ERROR("nflog: cannot open a netfilter netlink socket: %s", fv_strerror(rc));
        return rc;
    }
    l->portid = mnl_socket_get_portid(l->nl);
    setsockopt(mnl_socket_get_fd(l->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    set_rcvbuf(l, RCVBUF_START);
    return 0;
}

static void log_listening(const struct fv_nflog *l)
{
    char list[256];
    size_t off = 0;

    list[0] = '\0';
    for (size_t i = 0; i < l->ngroups && off < sizeof(list); i++) {
        int w =
            snprintf(list + off, sizeof(list) - off, "%s%u:%s", i ? "," : "", l->groups[i].group,
                     l->groups[i].action == FV_NFLOG_REJECT ? "reject" : "drop");
        off += w > 0 ? (size_t)w : 0;
    }
    FV_LOG_INFO("nflog: listening groups=%s copy_range=%d", list, FV_NFLOG_COPY_RANGE);
}

int fv_nflog_open(const struct fv_nflog_group *groups, size_t n, struct fv_nflog **out)
{
    struct fv_nflog *l;
    int fd, rc = check_groups(groups, n);

    if (rc < 0)
        return rc;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    rc = -ENOMEM;
    l->groups = malloc(n * sizeof(*groups));
    l->buflen = BUF_START;
    l->buf = malloc(l->buflen);
    if (l->groups == NULL || l->buf == NULL)
        goto fail;
    memcpy(l->groups, groups, n * sizeof(*groups));
    l->ngroups = n;
    l->seq = (uint32_t)fv_clock_wall_s();
    l->rl_overrun.interval_ms = LOG_EVERY_MS;
    l->rl_malformed.interval_ms = LOG_EVERY_MS;
    rc = open_socket(l);
    if (rc < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        rc = bind_group(l, &groups[i]);
        if (rc < 0) {
            log_bind_error(groups[i].group, rc);
            goto fail;
        }
    }
    fd = mnl_socket_get_fd(l->nl);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        rc = -errno;
        goto fail;
    }
    log_listening(l);
    *out = l;
    return 0;
fail:
    fv_nflog_close(l);
    return rc;
}

int fv_nflog_fd(const struct fv_nflog *l)
{
    return mnl_socket_get_fd(l->nl);
}

void fv_nflog_stats(const struct fv_nflog *l, struct fv_nflog_stats *out)
{
    *out = l->stats;
}

void fv_nflog_close(struct fv_nflog *l)
{
    if (l == NULL)
        return;
    if (l->nl != NULL)
        mnl_socket_close(l->nl);
    free(l->groups);
    free(l->buf);
    free(l);
}
