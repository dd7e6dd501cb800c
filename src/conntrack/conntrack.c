/*
 * conntrack.c - ctnetlink dump and events with libmnl (see conntrack.h).
 *
 * Attributes are validated by libmnl (mnl_attr_validate) before use, so a
 * short or mistyped attribute from a future kernel is skipped, not read
 * past.
 */
#include "conntrack/conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"

#define EVENT_RCVBUF_START (4 << 20)
#define EVENT_RCVBUF_MAX (256 << 20)

struct fv_ct {
    struct mnl_socket *dump;   /* requests and dump replies */
    struct mnl_socket *events; /* NEW and DESTROY multicast groups, or NULL */
    unsigned int dump_portid;
    uint32_t seq;
    int event_rcvbuf;         /* current event buffer size */
    struct fv_ct_entry entry; /* reused for every parsed message */
    uint8_t *buf;             /* receive buffer, MNL_SOCKET_BUFFER_SIZE * 4 */
    size_t buflen;
};

static const char *const tcp_states[] = {
    "",           "SYN_SENT", "SYN_RECV",  "ESTABLISHED", "FIN_WAIT",
    "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE",       "SYN_SENT2",
};

const char *fv_ct_tcp_state_name(uint8_t state)
{
    return state < sizeof(tcp_states) / sizeof(tcp_states[0]) ? tcp_states[state] : "";
}

/* Collects the nested attributes of one level into tb[0..max]. */
struct attr_table {
    const struct nlattr **tb;
    int max;
};

static int collect_attr(const struct nlattr *attr, void *data)
{
    struct attr_table *t = data;
    int type = mnl_attr_get_type(attr);

    if (type <= t->max)
        t->tb[type] = attr;
    return MNL_CB_OK;
}

static void parse_nested(const struct nlattr *nest, const struct nlattr **tb, int max)
{
    struct attr_table t = {tb, max};

    memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
    if (nest)
        mnl_attr_parse_nested(nest, collect_attr, &t);
}

static void get_ip(const struct nlattr *a, int family, struct fv_ip *out)
{
    size_t n = family == AF_INET6 ? 16 : 4;

    if (a && mnl_attr_get_payload_len(a) >= n)
        fv_ip_from_bytes(mnl_attr_get_payload(a), n, out);
}

static uint16_t get_u16_be(const struct nlattr *a)
{
    return a && mnl_attr_validate(a, MNL_TYPE_U16) == 0 ? ntohs(mnl_attr_get_u16(a)) : 0;
}

static uint32_t get_u32_be(const struct nlattr *a)
{
    return a && mnl_attr_validate(a, MNL_TYPE_U32) == 0 ? ntohl(mnl_attr_get_u32(a)) : 0;
}

static uint64_t get_u64_be(const struct nlattr *a)
{
    return a && mnl_attr_validate(a, MNL_TYPE_U64) == 0 ? be64toh(mnl_attr_get_u64(a)) : 0;
}

static void parse_tuple(const struct nlattr *nest, int family, struct fv_ct_tuple *t,
                        uint8_t *proto)
{
    const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];

    parse_nested(nest, tb, CTA_TUPLE_MAX);
    parse_nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX);
    parse_nested(tb[CTA_TUPLE_PROTO], pr, CTA_PROTO_MAX);
    get_ip(ip[family == AF_INET6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC], family, &t->src);
    get_ip(ip[family == AF_INET6 ? CTA_IP_V6_DST : CTA_IP_V4_DST], family, &t->dst);
    if (pr[CTA_PROTO_NUM] && mnl_attr_validate(pr[CTA_PROTO_NUM], MNL_TYPE_U8) == 0)
        *proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
    t->sport = get_u16_be(pr[CTA_PROTO_SRC_PORT]);
    t->dport = get_u16_be(pr[CTA_PROTO_DST_PORT]);
    if (pr[CTA_PROTO_ICMP_ID] || pr[CTA_PROTO_ICMPV6_ID]) {
        /* ICMP has no ports: use the id and the type/code, like conntrack -L. */
        t->sport =
            get_u16_be(pr[CTA_PROTO_ICMP_ID] ? pr[CTA_PROTO_ICMP_ID] : pr[CTA_PROTO_ICMPV6_ID]);
        const struct nlattr *ty =
            pr[CTA_PROTO_ICMP_TYPE] ? pr[CTA_PROTO_ICMP_TYPE] : pr[CTA_PROTO_ICMPV6_TYPE];
        const struct nlattr *co =
            pr[CTA_PROTO_ICMP_CODE] ? pr[CTA_PROTO_ICMP_CODE] : pr[CTA_PROTO_ICMPV6_CODE];
        t->dport = (uint16_t)((ty ? mnl_attr_get_u8(ty) : 0) << 8 | (co ? mnl_attr_get_u8(co) : 0));
    }
}

static void parse_counters(const struct nlattr *nest, uint64_t *packets, uint64_t *bytes)
{
    const struct nlattr *tb[CTA_COUNTERS_MAX + 1];

    parse_nested(nest, tb, CTA_COUNTERS_MAX);
    *packets = get_u64_be(tb[CTA_COUNTERS_PACKETS]);
    *bytes = get_u64_be(tb[CTA_COUNTERS_BYTES]);
}

/* Parses one ctnetlink message into ct->entry. */
static int parse_entry(const struct nlmsghdr *nlh, struct fv_ct_entry *e)
{
    const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[CTA_MAX + 1], *pi[CTA_PROTOINFO_MAX + 1];
    const struct nlattr *tcp[CTA_PROTOINFO_TCP_MAX + 1], *ts[CTA_TIMESTAMP_MAX + 1];
    struct attr_table t = {tb, CTA_MAX};
    int family = nfg->nfgen_family;

    memset(e, 0, sizeof(*e));
    memset(tb, 0, sizeof(tb));
    if (mnl_attr_parse(nlh, sizeof(*nfg), collect_attr, &t) < 0)
        return -FV_ETRUNC;
    parse_tuple(tb[CTA_TUPLE_ORIG], family, &e->orig, &e->proto);
    parse_tuple(tb[CTA_TUPLE_REPLY], family, &e->reply, &e->proto);
    parse_counters(tb[CTA_COUNTERS_ORIG], &e->orig_packets, &e->orig_bytes);
    parse_counters(tb[CTA_COUNTERS_REPLY], &e->reply_packets, &e->reply_bytes);
    e->status = get_u32_be(tb[CTA_STATUS]);
    e->mark = get_u32_be(tb[CTA_MARK]);
    e->id = get_u32_be(tb[CTA_ID]);
    e->zone = get_u16_be(tb[CTA_ZONE]);
    parse_nested(tb[CTA_PROTOINFO], pi, CTA_PROTOINFO_MAX);
    parse_nested(pi[CTA_PROTOINFO_TCP], tcp, CTA_PROTOINFO_TCP_MAX);
    if (tcp[CTA_PROTOINFO_TCP_STATE] &&
        mnl_attr_validate(tcp[CTA_PROTOINFO_TCP_STATE], MNL_TYPE_U8) == 0)
        e->tcp_state = mnl_attr_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
    parse_nested(tb[CTA_TIMESTAMP], ts, CTA_TIMESTAMP_MAX);
    e->start_ns = get_u64_be(ts[CTA_TIMESTAMP_START]);
    e->stop_ns = get_u64_be(ts[CTA_TIMESTAMP_STOP]);
    return 0;
}

struct dump_ctx {
    struct fv_ct *ct;
    fv_ct_entry_fn fn;
    void *ctx;
    int stopped;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
    struct dump_ctx *d = data;

    if (d->stopped || parse_entry(nlh, &d->ct->entry) < 0)
        return MNL_CB_OK;
    d->stopped = d->fn(d->ctx, &d->ct->entry);
    return MNL_CB_OK;
}

int fv_ct_dump(struct fv_ct *ct, fv_ct_entry_fn fn, void *ctx)
{
    char req[256];
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
    struct nfgenmsg *nfg;
    struct dump_ctx d = {ct, fn, ctx, 0};
    int rc;

    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = ++ct->seq;
    nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
    nfg->nfgen_family = AF_UNSPEC; /* both IPv4 and IPv6 */
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    if (mnl_socket_sendto(ct->dump, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(ct->dump, ct->buf, ct->buflen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        rc = mnl_cb_run(ct->buf, (size_t)n, ct->seq, ct->dump_portid, dump_cb, &d);
        if (rc == MNL_CB_STOP)
            return 0;
        if (rc < 0)
            return -errno;
    }
}

struct event_ctx {
    struct fv_ct *ct;
    fv_ct_event_fn fn;
    void *ctx;
};

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
    struct event_ctx *ev = data;
    int type = nlh->nlmsg_type & 0xFF;
    enum fv_ct_event kind;

    if (type == IPCTNL_MSG_CT_DELETE)
        kind = FV_CT_DESTROY;
    else if (type == IPCTNL_MSG_CT_NEW && (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)))
        kind = FV_CT_NEW;
    else
        return MNL_CB_OK; /* an update: the poll catches those */
    if (parse_entry(nlh, &ev->ct->entry) == 0)
        ev->fn(ev->ctx, kind, &ev->ct->entry);
    return MNL_CB_OK;
}

static int grow_event_buffer(struct fv_ct *ct)
{
    int size = ct->event_rcvbuf * 2;
    int fd = mnl_socket_get_fd(ct->events);

    if (size > EVENT_RCVBUF_MAX)
        size = EVENT_RCVBUF_MAX;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    ct->event_rcvbuf = size;
    return 0;
}

int fv_ct_events_read(struct fv_ct *ct, fv_ct_event_fn fn, void *ctx)
{
    struct event_ctx ev = {ct, fn, ctx};

    if (ct->events == NULL)
        return -EINVAL;
    /* Bounded: at most this many reads per call, so a flood of events
     * cannot starve the poll loop; the rest stays queued for next time. */
    for (int i = 0; i < 4096; i++) {
        ssize_t n = recv(mnl_socket_get_fd(ct->events), ct->buf, ct->buflen, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == ENOBUFS) {
                grow_event_buffer(ct);
                return -FV_ELIMIT;
            }
            return -errno;
        }
        mnl_cb_run(ct->buf, (size_t)n, 0, 0, event_cb, &ev);
    }
    return 0;
}

int fv_ct_event_fd(const struct fv_ct *ct)
{
    return ct->events ? mnl_socket_get_fd(ct->events) : -1;
}

int fv_ct_event_rcvbuf(const struct fv_ct *ct)
{
    return ct->event_rcvbuf;
}

static int open_events(struct fv_ct *ct)
{
    unsigned groups = (1u << (NFNLGRP_CONNTRACK_NEW - 1)) | (1u << (NFNLGRP_CONNTRACK_DESTROY - 1));
    int fd;

    ct->events = mnl_socket_open(NETLINK_NETFILTER);
    if (ct->events == NULL)
        return -errno;
    if (mnl_socket_bind(ct->events, groups, MNL_SOCKET_AUTOPID) < 0)
        return -errno;
    fd = mnl_socket_get_fd(ct->events);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ct->event_rcvbuf = EVENT_RCVBUF_START / 2;
    return grow_event_buffer(ct);
}

int fv_ct_open(bool events, struct fv_ct **out)
{
    struct fv_ct *ct = calloc(1, sizeof(*ct));
    int rc = -ENOMEM;

    if (ct == NULL)
        return -ENOMEM;
    ct->buflen = MNL_SOCKET_BUFFER_SIZE * 4;
    ct->buf = malloc(ct->buflen);
    if (ct->buf == NULL)
        goto fail;
    ct->seq = (uint32_t)time(NULL);
    ct->dump = mnl_socket_open(NETLINK_NETFILTER);
    if (ct->dump == NULL || mnl_socket_bind(ct->dump, 0, MNL_SOCKET_AUTOPID) < 0) {
        rc = -errno;
        goto fail;
    }
    ct->dump_portid = mnl_socket_get_portid(ct->dump);
    if (events) {
        rc = open_events(ct);
        if (rc < 0)
            goto fail;
    }
    *out = ct;
    return 0;
fail:
    fv_ct_close(ct);
    return rc;
}

void fv_ct_close(struct fv_ct *ct)
{
    if (ct == NULL)
        return;
    if (ct->dump)
        mnl_socket_close(ct->dump);
    if (ct->events)
        mnl_socket_close(ct->events);
    free(ct->buf);
    free(ct);
}

static int write_sysctl(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (write(fd, value, strlen(value)) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int fv_ct_enable_accounting(void)
{
    int rc = write_sysctl("/proc/sys/net/netfilter/nf_conntrack_acct", "1");
    int rc2 = write_sysctl("/proc/sys/net/netfilter/nf_conntrack_timestamp", "1");
    return rc < 0 ? rc : rc2;
}

int fv_ct_read_sysctl(const char *name, long long *out)
{
    char path[256], buf[64];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/sys/%s", name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    *out = strtoll(buf, NULL, 10);
    return 0;
}
