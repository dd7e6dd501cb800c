/*
 * store.h - the agent's connection store: every tracked connection, its
 * last exported counters, and an expiry heap that says when to export it.
 *
 * The key is the original 5-tuple plus the conntrack zone.  Per connection
 * the store keeps the current counters (both directions), the counters of
 * the last export, the TCP state, and the post-DNAT endpoint (the reply
 * tuple's source).  Deltas are current minus last exported, never negative:
 * a counter that went backwards means the kernel reused the tuple for a new
 * connection, which starts from zero.
 *
 * Export rules (SPEC section 3):
 * - a min-heap on each connection's deadline = min(last export + active
 *   timeout, last change + idle timeout);
 * - at the deadline: idle (no change for the idle timeout) -> exported once
 *   with flowEndReason 1 and not again until it changes; otherwise, if it
 *   changed since its last export -> reason 2 and re-armed;
 * - a dying connection (TCP TIME_WAIT or CLOSE, gone from a dump, or a
 *   DESTROY event) is exported at once with reason 3.  After a final export
 *   the entry is kept, silent, until the kernel forgets it too, so a
 *   TIME_WAIT connection seen again by the next poll is not exported twice.
 *
 * Memory: entries live in one array (indexes stay valid as it grows), found
 * through an open-addressing index and ordered by a heap of indexes; about
 * 190 bytes per connection, no allocation per update.
 *
 * Thread rules: one thread owns a store.
 *
 *     fv_agent_store_new(&cfg, &s);
 *     fv_agent_store_begin_sweep(s);                      // before each dump
 *     fv_agent_store_update(s, &entry, now_ms, now_s);    // for each dump entry
 *     fv_agent_store_end_sweep(s, now_ms, now_s, emit, ctx);  // gone -> reason 3
 *     fv_agent_store_expire(s, now_ms, now_s, emit, ctx); // due -> reason 1 or 2
 */
#ifndef FV_AGENT_STORE_H
#define FV_AGENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/ip.h"
#include "conntrack/conntrack.h"

enum fv_end_reason {
    FV_END_IDLE = 1,
    FV_END_ACTIVE = 2,
    FV_END_OF_FLOW = 3,
    FV_END_FORCED = 4,
    FV_END_LACK_OF_RESOURCES = 5,
};

struct fv_agent_store_cfg {
    uint64_t active_timeout_ms; /* activeFlowExportTimeout */
    uint64_t idle_timeout_ms;   /* idleFlowExportTimeout */
    uint32_t max_conns;         /* beyond it new connections are not tracked (counted) */
};

/* One export of one connection, handed to the emit callback. */
struct fv_conn_report {
    struct fv_ip src, dst; /* original tuple: client and what it dialled */
    uint16_t sport, dport;
    struct fv_ip endpoint; /* reply tuple's source: the post-DNAT server */
    uint16_t endpoint_port;
    uint8_t proto;
    uint16_t zone;
    uint32_t mark;
    uint8_t tcp_state;                                 /* enum tcp_conntrack */
    uint8_t end_reason;                                /* enum fv_end_reason */
    uint32_t start_s, end_s;                           /* flowStartSeconds / flowEndSeconds */
    uint64_t packets, octets, rev_packets, rev_octets; /* totals */
    uint64_t d_packets, d_octets, d_rev_packets, d_rev_octets; /* since the last export */
};

/* Returns 0; a negative value means the record could not be queued and
 * the connection keeps its old exported counters (it will be retried). */
typedef int (*fv_agent_store_emit_fn)(void *ctx, const struct fv_conn_report *r);

struct fv_agent_store_stats {
    uint64_t tracked;        /* connections in the store now */
    uint64_t untracked_full; /* new connections refused at max_conns */
    uint64_t counter_resets; /* counters went backwards: a new connection */
};

struct fv_agent_store;

int fv_agent_store_new(const struct fv_agent_store_cfg *cfg, struct fv_agent_store **out);
void fv_agent_store_free(struct fv_agent_store *s);

/* Starts a dump: every connection is "not yet seen". */
void fv_agent_store_begin_sweep(struct fv_agent_store *s);

/* An entry from a dump or a NEW event, observed at now. */
void fv_agent_store_update(struct fv_agent_store *s, const struct fv_ct_entry *e, uint64_t now_ms,
                           uint32_t now_s, fv_agent_store_emit_fn emit, void *ctx);

/* A DESTROY event: exported at once with its final counters, then forgotten. */
void fv_agent_store_destroy(struct fv_agent_store *s, const struct fv_ct_entry *e, uint64_t now_ms,
                            uint32_t now_s, fv_agent_store_emit_fn emit, void *ctx);

/* Ends a dump: connections it did not contain are gone (reason 3). */
void fv_agent_store_end_sweep(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                              fv_agent_store_emit_fn emit, void *ctx);

/* Exports every connection whose deadline is due. */
void fv_agent_store_expire(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                           fv_agent_store_emit_fn emit, void *ctx);

/* Exports every connection with unexported changes, flowEndReason 4
 * (forced end): the agent is shutting down. */
void fv_agent_store_flush(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                          fv_agent_store_emit_fn emit, void *ctx);

/* Milliseconds until the next deadline (UINT64_MAX when none). */
uint64_t fv_agent_store_next_deadline(const struct fv_agent_store *s, uint64_t now_ms);

void fv_agent_store_stats(const struct fv_agent_store *s, struct fv_agent_store_stats *out);

/* Bytes the store holds per tracked connection (entries, index, heap). */
size_t fv_agent_store_memory(const struct fv_agent_store *s);

#endif
