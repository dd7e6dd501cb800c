/*
 * flowtab.h - the aggregator's flow table: correlation, aggregation and
 * expiry of flow records keyed by 5-tuple (SPEC section 4).
 *
 * One table is one shard: the aggregator runs one per worker thread and
 * sends every record of a key to the same shard, so a table is owned by
 * exactly one thread and takes no lock.  It never calls the clock: time
 * comes in as arguments (now_ms, monotonic), which is what lets the unit
 * tests walk through every timing rule exactly.
 *
 * Applying a record (fv_ftab_apply):
 *  - the record's side is the destination node when it names only the
 *    destination Pod, else the source node (intra-node, to-external,
 *    host records and source-node halves);
 *  - a record whose flowEndSeconds is older than its side's last one, or
 *    equal to it with no counter grown, is stale: ignored and counted;
 *  - identity fields (Pods, Namespaces, Nodes, service, ClusterIP,
 *    policies) that the record carries non-empty replace the stored ones,
 *    which is what merges the two halves of an inter-node flow in either
 *    order; records whose identity digest is unchanged skip this work;
 *  - counters: per side, totals are the incoming totals and deltas add
 *    up; common totals are the max over the sides and the common delta is
 *    the growth of the common total since the last export, so that the
 *    exported octetDeltaCount of a flow sum to its octetTotalCount (a
 *    flow first seen mid-stream starts from its first record's total minus
 *    that record's delta, so an aggregator restart counts nothing twice);
 *  - throughput per side from the growth of that side's totals over the
 *    growth of its flowEndSeconds; the common value is the latest side's.
 *
 * Correlation.  An inter-node flow (flowType 2) that no policy denied
 * needs both halves; until both arrived it is not exported, except when
 * the correlation wait passes: then it goes out with what is known and
 * is counted as uncorrelated.  Other flows are complete on arrival.
 *
 * Exports (fv_ftab_expire, every tick): a flow that has just become
 * complete, or has just ended (flowEndReason 3), goes out promptly; then
 * at its active deadline (re-armed after each export) when it has news;
 * at its inactive deadline (pushed back by every record) it goes out if
 * it has news and is deleted.  A flow with nothing new is never exported
 * again.  The emit callback may refuse a record (its queue is full): the
 * flow keeps its deltas and is retried a second later, so nothing is
 * lost.  Beyond max_flows the flow with the nearest deadline is exported
 * early and evicted; if even that is refused, the new record is dropped
 * and counted.
 *
 * Memory: one 352-byte entry per flow in slabs, plus a bucket and a heap
 * slot; strings are interned per table with reference counts.
 *
 *     struct fv_ftab *t;
 *     fv_ftab_new(&cfg, &t);
 *     fv_ftab_apply(t, &in, now_ms);            // for each record
 *     fv_ftab_expire(t, now_ms, emit, ctx);     // every tick
 *     fv_ftab_flush(t, emit, ctx);              // at shutdown
 *     fv_ftab_free(t);
 */
#ifndef FV_AGGREGATOR_FLOWTAB_H
#define FV_AGGREGATOR_FLOWTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/record.h"

struct fv_ftab_cfg {
    uint32_t active_ms;    /* activeFlowRecordTimeout */
    uint32_t inactive_ms;  /* inactiveFlowRecordTimeout */
    uint32_t corr_wait_ms; /* correlation wait; 0 = 2 x active_ms */
    uint32_t max_flows;    /* 0 = unbounded */
    uint32_t retry_ms;     /* after a refused export; 0 = 1000 */
    /* Resolves an exporter index of fv_agg_in into the record's original
     * exporter fields; NULL leaves them zero. */
    void (*exporter)(void *ctx, uint16_t idx, struct fv_agg_rec *rec);
    void *exporter_ctx;
};

/* Receives one exported record (borrowed for the call).  Return 0 when it
 * was taken, negative when it could not be (the flow is kept for retry). */
typedef int (*fv_ftab_emit_fn)(void *ctx, const struct fv_agg_rec *rec);

struct fv_ftab_stats {
    uint64_t flows;        /* flows in the table now */
    uint64_t records;      /* records applied */
    uint64_t stale;        /* records ignored as stale */
    uint64_t correlated;   /* flows whose two halves were merged */
    uint64_t uncorrelated; /* flows exported alone after the correlation wait */
    uint64_t exported;     /* records emitted */
    uint64_t refused;      /* emits refused (retried later) */
    uint64_t evicted;      /* flows exported early because of max_flows */
    uint64_t dropped;      /* records dropped: table full and eviction refused */
    uint64_t expired;      /* flows deleted at their inactive deadline */
    uint64_t strings;      /* distinct strings interned */
    uint64_t memory;       /* bytes held by the table */
};

struct fv_ftab;

int fv_ftab_new(const struct fv_ftab_cfg *cfg, struct fv_ftab **out);
void fv_ftab_free(struct fv_ftab *t);

/* Applies one record.  Returns 0, 1 when it was stale (ignored), or
 * -FV_ELIMIT when the table is full and nothing could be evicted; emit is
 * used for eviction. */
int fv_ftab_apply(struct fv_ftab *t, const struct fv_agg_in *in, uint64_t now_ms,
                  fv_ftab_emit_fn emit, void *ctx);

/* Exports what is due at now_ms and deletes inactive flows. */
void fv_ftab_expire(struct fv_ftab *t, uint64_t now_ms, fv_ftab_emit_fn emit, void *ctx);

/* Exports every flow with news and empties the table (at shutdown).
 * Returns the number of records emit refused. */
uint64_t fv_ftab_flush(struct fv_ftab *t, fv_ftab_emit_fn emit, void *ctx);

/* Filter of fv_ftab_query: NULL/zero members match anything. */
struct fv_ftab_filter {
    bool has_src, has_dst;
    uint8_t src[16], dst[16]; /* with v6 telling the family */
    bool src_v6, dst_v6;
    int proto;        /* -1 = any */
    int sport, dport; /* -1 = any */
};

/* Calls fn for every flow matching f (its current state, as it would be
 * exported), up to limit; returns how many matched (may exceed limit). */
uint64_t fv_ftab_query(struct fv_ftab *t, const struct fv_ftab_filter *f, uint64_t limit,
                       fv_ftab_emit_fn fn, void *ctx);

void fv_ftab_stats(const struct fv_ftab *t, struct fv_ftab_stats *out);

/* Bytes of one flow entry (for the docs and the benchmark). */
size_t fv_ftab_entry_size(void);

#endif
