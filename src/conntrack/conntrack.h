/*
 * conntrack.h - the kernel's connection tracking table over netlink.
 *
 * Two sockets: one to dump the table (both address families in one
 * request), one subscribed to NEW and DESTROY events.  Messages are parsed
 * with libmnl straight into a caller-visible struct fv_ct_entry that is
 * reused for every entry, so a dump of any size allocates nothing.
 *
 * Event overruns: when the kernel could not queue an event (the socket
 * buffer was full) recv fails with ENOBUFS.  fv_ct_events_read() then
 * doubles the event socket's buffer (up to a cap) and returns
 * -FV_ELIMIT: events were lost, and the caller must resynchronise with a
 * dump (the approach of ulogd2's NFCT input).
 *
 *     struct fv_ct *ct;
 *     fv_ct_open(true, &ct);
 *     fv_ct_dump(ct, on_entry, ctx);                 // every poll interval
 *     ... poll(fv_ct_event_fd(ct)) ...
 *     rc = fv_ct_events_read(ct, on_event, ctx);   // -FV_ELIMIT: resync
 *     fv_ct_close(ct);
 *
 * Thread rules: one thread uses a handle at a time.
 */
#ifndef FV_CONNTRACK_CONNTRACK_H
#define FV_CONNTRACK_CONNTRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "base/ip.h"

struct fv_ct_tuple {
    struct fv_ip src, dst; /* addresses */
    uint16_t sport, dport; /* ports, host order; ICMP: id and type<<8|code */
};

/* One conntrack entry, as read.  Fields the kernel did not send are 0. */
struct fv_ct_entry {
    struct fv_ct_tuple orig;             /* original direction (the client's view) */
    struct fv_ct_tuple reply;            /* reply direction: reply.src is the post-DNAT endpoint */
    uint8_t proto;                       /* IP protocol */
    uint8_t tcp_state;                   /* enum tcp_conntrack, 0 for non-TCP */
    uint16_t zone;                       /* conntrack zone */
    uint32_t mark;                       /* connmark */
    uint32_t id;                         /* kernel id of the entry */
    uint32_t status;                     /* IPS_* bits */
    uint64_t orig_packets, orig_bytes;   /* needs nf_conntrack_acct */
    uint64_t reply_packets, reply_bytes; /* needs nf_conntrack_acct */
    uint64_t start_ns, stop_ns;          /* CLOCK_REALTIME; need nf_conntrack_timestamp */
};

enum fv_ct_event { FV_CT_NEW, FV_CT_DESTROY };

struct fv_ct;

typedef int (*fv_ct_entry_fn)(void *ctx, const struct fv_ct_entry *e);
typedef int (*fv_ct_event_fn)(void *ctx, enum fv_ct_event type, const struct fv_ct_entry *e);

/* Opens the dump socket, and the event socket when events is true. */
int fv_ct_open(bool events, struct fv_ct **out);
void fv_ct_close(struct fv_ct *ct);

/* Dumps the whole table, calling fn for each entry (the entry is valid
 * during the call only).  fn returning non-zero stops delivery; the dump
 * is still read to its end so the socket stays usable. */
int fv_ct_dump(struct fv_ct *ct, fv_ct_entry_fn fn, void *ctx);

/* The event socket (non-blocking), for poll(); -1 without events. */
int fv_ct_event_fd(const struct fv_ct *ct);

/* Reads every queued event.  0 when the socket is drained, -FV_ELIMIT
 * after an overrun (buffer grown; resync with a dump), or -errno. */
int fv_ct_events_read(struct fv_ct *ct, fv_ct_event_fn fn, void *ctx);

/* Bytes of the event socket's receive buffer now. */
int fv_ct_event_rcvbuf(const struct fv_ct *ct);

/* The conntrack TCP state name (SYN_SENT, ESTABLISHED, ...), "" for 0. */
const char *fv_ct_tcp_state_name(uint8_t state);

/* Sets net.netfilter.nf_conntrack_acct and _timestamp to 1 in the current
 * network namespace.  Returns 0, or -errno of the first failure. */
int fv_ct_enable_accounting(void);

/* Reads an integer sysctl under /proc/sys (e.g. "net/netfilter/nf_conntrack_max"). */
int fv_ct_read_sysctl(const char *name, long long *out);

#endif
