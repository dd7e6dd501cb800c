/*
 * denied.h - the agent's denied-connection store: packets the datapath
 * dropped or rejected because of a NetworkPolicy (logged to NFLOG, read by
 * agent/nflog.h), summed per 5-tuple and exported like connections.
 *
 * A denied connection has no conntrack entry (the packet never got that
 * far), so the store keeps its own counters: the key is (src, dst, sport,
 * dport, proto); per key the totals (packets and IP bytes), the totals at
 * the last export, first and last sight, the action and the log prefix of
 * the first packet.  Deltas are totals minus exported, never negative.
 *
 * Export rules (like the connection store, SPEC activeFlowExportTimeout /
 * idleFlowExportTimeout):
 * - a new key is exported first_export_delay_ms after its first packet
 *   (flowEndReason 2): soon, but late enough that the SYN retransmissions
 *   of the first second land in the same record;
 * - then every active_timeout_ms while it keeps growing (reason 2);
 * - after idle_timeout_ms without a packet: exported a last time with
 *   reason 1 if it has unexported packets, then removed (silently when
 *   there is nothing new);
 * - fv_denied_flush() at shutdown: everything unexported, reason 4.
 * An emit callback that returns < 0 leaves the counters unexported; the
 * expire pass stops there (the consumer is full) and the next
 * fv_denied_expire() call starts again with that entry.
 *
 * Action: the strongest one seen wins, reject (3) over drop (2), and it
 * stays: a client that was answered with a reset or an ICMP error once
 * saw its connection rejected, whatever a later rule did.
 *
 * Bounded: at most max_entries keys; packets of new keys beyond it are
 * counted in stats.untracked_full and not stored (a port scan cannot grow
 * the agent without limit).
 *
 * Memory: entries live in one array that grows in steps up to
 * max_entries (about 190 bytes per key with the index and the heap), found
 * through an open-addressing index and ordered by a min-heap of deadlines.
 * fv_denied_add() on a known key only bumps counters: the heap holds a
 * lower bound of each deadline, and fv_denied_expire() re-arms an entry
 * whose real deadline moved later.  Nothing is allocated per packet once
 * the array has reached its working size.
 *
 * Thread rules: one thread owns a store (the agent's main loop).
 *
 *     struct fv_denied_cfg cfg = {.active_timeout_ms = 60000, .idle_timeout_ms = 15000,
 *                                 .first_export_delay_ms = 1000, .max_entries = 10000};
 *     fv_denied_new(&cfg, &d);
 *     fv_denied_add(d, &pkt, now_ms, now_s);                  // per NFLOG packet
 *     fv_denied_expire(d, now_ms, now_s, emit, ctx);          // every loop turn
 *     timeout = fv_denied_next_deadline(d, now_ms);           // for poll()
 *     fv_denied_flush(d, now_ms, now_s, emit, ctx);           // at shutdown
 *     fv_denied_free(d);
 */
#ifndef FV_AGENT_DENIED_H
#define FV_AGENT_DENIED_H

#include <stddef.h>
#include <stdint.h>

#include "agent/nflog.h"
#include "base/ip.h"

#define FV_DENIED_DEFAULT_MAX_ENTRIES 65536   /* when cfg.max_entries is 0 */
#define FV_DENIED_DEFAULT_FIRST_DELAY_MS 1000 /* when cfg.first_export_delay_ms is 0 */

struct fv_denied_cfg {
    uint64_t active_timeout_ms;     /* re-export while growing; activeFlowExportTimeout */
    uint64_t idle_timeout_ms;       /* last export and removal; idleFlowExportTimeout */
    uint64_t first_export_delay_ms; /* first export after the first packet; 0 = default */
    uint32_t max_entries;           /* keys stored at most; 0 = FV_DENIED_DEFAULT_MAX_ENTRIES */
};

/* One export of one denied connection, handed to the emit callback. */
struct fv_denied_report {
    struct fv_ip src, dst;    /* as in the logged packets */
    uint16_t sport, dport;    /* 0 without ports; ICMP: id and type<<8|code (agent/nflog.h) */
    uint8_t proto;            /* IP protocol */
    uint8_t action;           /* FV_NFLOG_DROP or FV_NFLOG_REJECT */
    uint8_t end_reason;       /* enum fv_end_reason (agent/store.h): 1 idle, 2 active, 4 forced */
    uint32_t start_s;         /* wall time of the first packet: flowStartSeconds */
    uint32_t end_s;           /* wall time of the last packet: flowEndSeconds */
    uint64_t packets, octets; /* totals since the first packet */
    uint64_t d_packets, d_octets; /* since the last export */
    const char *prefix;           /* log prefix of the first packet, "" when none; borrowed */
};

/* Returns 0; a negative value means the record could not be queued: the
 * counters stay unexported and the entry is retried. */
typedef int (*fv_denied_emit_fn)(void *ctx, const struct fv_denied_report *r);

struct fv_denied_stats {
    uint64_t entries;        /* keys in the store now */
    uint64_t untracked_full; /* packets of new keys refused at max_entries */
    uint64_t exported;       /* records the emit callback accepted */
};

struct fv_denied;

/* 0, -EINVAL (a zero timeout) or -ENOMEM. */
int fv_denied_new(const struct fv_denied_cfg *cfg, struct fv_denied **out);
void fv_denied_free(struct fv_denied *d); /* NULL is a no-op */

/* Counts one logged packet (p->len bytes) seen at now. */
void fv_denied_add(struct fv_denied *d, const struct fv_nflog_packet *p, uint64_t now_ms,
                   uint32_t now_s);

/* Exports (and removes) every entry whose deadline is due. */
void fv_denied_expire(struct fv_denied *d, uint64_t now_ms, uint32_t now_s, fv_denied_emit_fn emit,
                      void *ctx);

/* Exports every entry with unexported packets, flowEndReason 4 (forced
 * end): the agent is shutting down.  Entries stay (a second flush is
 * silent). */
void fv_denied_flush(struct fv_denied *d, uint64_t now_ms, uint32_t now_s, fv_denied_emit_fn emit,
                     void *ctx);

/* Milliseconds until fv_denied_expire() has work (0: now, UINT64_MAX:
 * the store is empty).  After a refused emit it is at least the retry
 * interval, so a full consumer does not turn the loop into a busy wait. */
uint64_t fv_denied_next_deadline(const struct fv_denied *d, uint64_t now_ms);

void fv_denied_stats(const struct fv_denied *d, struct fv_denied_stats *out);

#endif
