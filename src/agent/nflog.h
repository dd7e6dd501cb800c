/*
 * nflog.h - packets the datapath denied, read from NFLOG groups.
 *
 * The CNI's NetworkPolicy rules log what they drop or reject to an NFLOG
 * group (nftables `log group 100 drop`, iptables `-j NFLOG
 * --nflog-group 100`).  The listener binds the configured groups on one
 * nfnetlink socket (libmnl for the socket, libnetfilter_log's message
 * builders for the configuration), asks for the first FV_NFLOG_COPY_RANGE
 * bytes of each packet, and hands every logged packet to a callback as a
 * parsed struct fv_nflog_packet: addresses, ports, protocol, IP length,
 * group, the group's configured action and the log prefix.
 *
 * Binding: one bind per group receives both IPv4 and IPv6 packets (the
 * kernel's log instance is per group, not per family); no PF_BIND is sent,
 * so the logger of other users in the namespace (nf_log, `LOG` targets) is
 * left alone.  Groups belong to the network namespace of the socket: the
 * agent must run in the namespace whose rules log (the host's, with
 * hostNetwork).  A group can have one listener per namespace: if ulogd2 or
 * another agent holds it, fv_nflog_open() fails with -EBUSY.  Binding needs
 * CAP_NET_ADMIN (-EPERM otherwise).  Packets of a group bound first that
 * arrive while the following groups are being bound are discarded.
 *
 * Overruns: when the socket's receive buffer is full the kernel drops the
 * batch and the next read fails with ENOBUFS; fv_nflog_read() counts it
 * (stats.overruns), doubles the buffer (up to a cap), logs a rate-limited
 * line and keeps reading.  Denied packets have no table to resync from:
 * what was lost is lost, and the counter says how often.
 *
 * Ports: TCP, UDP, UDP-Lite, SCTP and DCCP carry ports.  ICMP and ICMPv6
 * follow conntrack (conntrack/conntrack.h): sport = the echo identifier
 * (echo request and reply; 0 for other types), dport = type << 8 | code.
 * Other protocols and non-first fragments (IPv4 offset != 0, IPv6
 * fragment header offset != 0) have ports 0: only the first fragment
 * carries the L4 header.  IPv6 extension headers (hop-by-hop, routing,
 * fragment, destination options, AH, HIP, shim6) are skipped; proto is the
 * upper-layer protocol after them (50 for ESP, 59 for no next header).
 *
 * Length: len is the IP total length from the header (IPv4 total length;
 * IPv6 40 + payload length), not what was copied: a 1500-byte packet is
 * 1500 bytes even though 256 of them were read.  A header that says 0
 * (IPv4 BIG TCP, IPv6 jumbograms) gives len = the bytes copied, a lower
 * bound.  A GRO/GSO aggregate counts as one packet of its whole length.
 *
 * Thread rules: one thread uses a listener (the agent's main loop).
 *
 *     struct fv_nflog_group g[2];
 *     fv_nflog_group_parse("100", &g[0], why, sizeof(why));          // drop
 *     fv_nflog_group_parse("101:reject", &g[1], why, sizeof(why));
 *     fv_nflog_open(g, 2, &l);
 *     ... poll(fv_nflog_fd(l), POLLIN) ...
 *     n = fv_nflog_read(l, on_packet, ctx);    // on_packet(ctx, &pkt) per packet
 *     fv_nflog_close(l);
 */
#ifndef FV_AGENT_NFLOG_H
#define FV_AGENT_NFLOG_H

#include <stddef.h>
#include <stdint.h>

#include "base/ip.h"

/* The action a group stands for (the values of Antrea's ruleAction IE). */
enum fv_nflog_action {
    FV_NFLOG_DROP = 2,
    FV_NFLOG_REJECT = 3,
};

#define FV_NFLOG_COPY_RANGE 256   /* bytes of each packet the kernel copies */
#define FV_NFLOG_READ_BUDGET 1024 /* packets per fv_nflog_read() call, about */
#define FV_NFLOG_PREFIX_MAX 64    /* bytes of struct fv_nflog_packet.prefix, NUL included */

/* One configured group (deniedFlows.nflogGroups item). */
struct fv_nflog_group {
    uint16_t group; /* NFLOG group number, 0..65535 */
    uint8_t action; /* enum fv_nflog_action; FV_NFLOG_DROP when the item names none */
};

/* Parses "100", "100:drop" or "100:reject".  0, or -EINVAL with why set to
 * a message that quotes s ("'100:deny': action must be drop or reject"). */
int fv_nflog_group_parse(const char *s, struct fv_nflog_group *out, char *why, size_t n);

/* One logged packet, parsed. */
struct fv_nflog_packet {
    struct fv_ip src, dst;            /* from the IP header */
    uint16_t sport, dport;            /* host order; see "Ports" above */
    uint8_t proto;                    /* upper-layer protocol */
    uint32_t len;                     /* IP total length: bytes on the wire at L3 */
    uint16_t group;                   /* the NFLOG group it was logged to */
    uint8_t action;                   /* the group's configured action */
    char prefix[FV_NFLOG_PREFIX_MAX]; /* the log prefix (truncated), "" when none */
};

/* Called once per packet; p is valid during the call only. */
typedef void (*fv_nflog_packet_fn)(void *ctx, const struct fv_nflog_packet *p);

struct fv_nflog_stats {
    uint64_t packets;   /* packets delivered to the callback */
    uint64_t bytes;     /* sum of their len */
    uint64_t overruns;  /* ENOBUFS: the kernel dropped log messages */
    uint64_t malformed; /* not IPv4/IPv6, headers cut short, or a truncated batch */
};

struct fv_nflog;

/* Binds every group (n >= 1, no duplicates).  0, or a negative errno with
 * the reason logged: -EINVAL (no groups, a duplicate), -EPERM (needs
 * CAP_NET_ADMIN), -EBUSY (group bound by another process, e.g. ulogd2),
 * -ENOMEM. */
int fv_nflog_open(const struct fv_nflog_group *groups, size_t n, struct fv_nflog **out);

/* The non-blocking socket, for poll(POLLIN). */
int fv_nflog_fd(const struct fv_nflog *l);

/* Reads and dispatches what is queued, never blocks.  Stops when the
 * socket is drained or after the batch that reaches FV_NFLOG_READ_BUDGET
 * packets (poll again: the rest stays queued).  Returns the packets
 * delivered, or -errno for a socket error; an overrun is counted, not
 * returned. */
int fv_nflog_read(struct fv_nflog *l, fv_nflog_packet_fn fn, void *ctx);

void fv_nflog_stats(const struct fv_nflog *l, struct fv_nflog_stats *out);

/* Closes the socket; the kernel unbinds its groups.  NULL is a no-op. */
void fv_nflog_close(struct fv_nflog *l);

/* The pure parser: an IPv4 or IPv6 packet of len captured bytes (no link
 * layer) into p's src, dst, sport, dport, proto and len (the other fields
 * are left alone).  0, or -EINVAL when it is not IPv4/IPv6 or a header it
 * needs (IP, extension headers, the first 4 bytes of the L4 header) is cut
 * short or inconsistent.  Reads nothing outside pkt[0..len). */
int fv_nflog_parse_ip(const uint8_t *pkt, size_t len, struct fv_nflog_packet *p);

#endif
