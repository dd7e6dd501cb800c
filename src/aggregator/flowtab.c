/*
 * flowtab.c - correlation, aggregation and expiry (flowtab.h).
 *
 * Layout.  Flows live in slabs of SLAB flows and are named by a 32-bit
 * index (slab << SLAB_BITS | slot); a free list links unused entries.
 * Lookup is a chained hash: buckets hold the index of the first flow and
 * each flow the index of the next (0 ends a chain, so index 0 is never
 * used).  Deadlines are in ticks of 100 ms.
 *
 * Expiry uses a binary heap of (due tick, index) with exactly one entry per
 * live flow, pushed lazily: a record that pushes a deadline back does not
 * touch the heap; the entry is re-pushed with the real next deadline when
 * it comes up.  A flow remembers the due tick of its entry, so an entry
 * left behind by a deleted flow (whose slot may be reused) is recognised
 * and dropped.  Flows that must go out promptly (just completed or
 * ended) are queued in `ready` and exported at the next fv_ftab_expire().
 */
#include "aggregator/flowtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/strpool.h"
#include "base/err.h"

#define TICK_MS 100
#define SLAB_BITS 12
#define SLAB (1u << SLAB_BITS)
#define NEVER UINT32_MAX

/* The four totals kept per side, and where they sit in enum fv_agg_ctr. */
static const uint8_t tot_ctr[4] = {FV_AGG_PKT_TOTAL, FV_AGG_OCT_TOTAL, FV_AGG_RPKT_TOTAL,
                                   FV_AGG_ROCT_TOTAL};
static const uint8_t delta_ctr[4] = {FV_AGG_PKT_DELTA, FV_AGG_OCT_DELTA, FV_AGG_RPKT_DELTA,
                                     FV_AGG_ROCT_DELTA};

enum {
    F_USED = 1 << 0,
    F_SEEN_SRC = 1 << 1, /* F_SEEN_SRC << side */
    F_SEEN_DST = 1 << 2,
    F_COMPLETE = 1 << 3,   /* may be exported */
    F_CORRELATED = 1 << 4, /* both halves merged */
    F_UNCORR = 1 << 5,     /* gave up waiting for the other half */
    F_DIRTY = 1 << 6,      /* news since the last export */
    F_READY = 1 << 7,      /* queued in ready */
    F_PENDING = 1 << 8,    /* an export was refused; retry */
    F_LAST_DST = 1 << 9,   /* the latest record came from the destination node */
};

struct flow {
    struct fv_agg_key key;
    uint32_t hash, next;             /* bucket chain; next is also the free list */
    uint32_t start, end;             /* flowStartSeconds (min), flowEndSeconds (max) */
    uint32_t end_side[2];            /* last flowEndSeconds per side */
    uint32_t active_dl, inactive_dl; /* ticks */
    uint32_t corr_dl, due;           /* correlation deadline; tick of the heap entry */
    uint32_t digest[2];              /* identity digest of each side's last record */
    uint64_t base[4];                /* common totals at the last export */
    uint64_t side_tot[2][4];         /* latest totals per side */
    uint64_t side_delta[2][4];       /* deltas per side since the last export */
    uint64_t thr[2][2];              /* [side][forward, reverse] bits/s */
    uint32_t str[FV_AGG_STR_COUNT];  /* interned strings */
    uint32_t cip;                    /* interned ClusterIP bytes (16), 0 = none */
    uint16_t svc_port;               /* destinationServicePort */
    uint16_t exporter;               /* last exporter index */
    uint8_t end_reason, flow_type;   /* flowEndReason, flowType */
    uint8_t in_type, in_action;      /* ingress policy type, action */
    uint8_t eg_type, eg_action;      /* egress policy type, action */
    uint16_t flags;                  /* F_* */
};

struct heap_ent {
    uint32_t due, idx;
};

struct fv_ftab {
    struct fv_ftab_cfg cfg;
    uint32_t active_t, inactive_t, corr_t, retry_t; /* in ticks */
    struct flow **slabs;
    uint32_t nslabs, slabs_cap;
    uint32_t free_head; /* free list through next; 0 = empty */
    uint32_t *buckets;
    uint32_t bmask;
    struct heap_ent *heap;
    uint32_t hn, hcap;
    uint32_t *ready;
    uint32_t rn, rcap;
    struct fv_strpool pool;
    struct fv_ftab_stats st;
};

static inline struct flow *F(const struct fv_ftab *t, uint32_t idx)
{
    return &t->slabs[idx >> SLAB_BITS][idx & (SLAB - 1)];
}

static uint32_t ticks(uint64_t ms)
{
    return (uint32_t)((ms + TICK_MS - 1) / TICK_MS);
}

/* key_hash reads the key as five words, which the padding makes exact. */
_Static_assert(sizeof(struct fv_agg_key) == 40, "struct fv_agg_key must be 40 bytes");

static uint32_t key_hash(const struct fv_agg_key *k)
{
    uint64_t w[5], h = 0x9e3779b97f4a7c15ull;

    memcpy(w, k, sizeof(w));
    for (int i = 0; i < 5; i++) {
        h ^= w[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

size_t fv_ftab_entry_size(void)
{
    return sizeof(struct flow);
}

int fv_ftab_new(const struct fv_ftab_cfg *cfg, struct fv_ftab **out)
{
    struct fv_ftab *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -ENOMEM;
    t->cfg = *cfg;
    t->active_t = ticks(cfg->active_ms ? cfg->active_ms : 60000);
    t->inactive_t = ticks(cfg->inactive_ms ? cfg->inactive_ms : 90000);
    t->corr_t = cfg->corr_wait_ms ? ticks(cfg->corr_wait_ms) : 2 * t->active_t;
    t->retry_t = ticks(cfg->retry_ms ? cfg->retry_ms : 1000);
    t->bmask = 1023;
    t->buckets = calloc(t->bmask + 1, sizeof(*t->buckets));
    if (t->buckets == NULL || fv_strpool_init(&t->pool) < 0) {
        fv_ftab_free(t);
        return -ENOMEM;
    }
    *out = t;
    return 0;
}

void fv_ftab_free(struct fv_ftab *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->nslabs; i++)
        free(t->slabs[i]);
    free(t->slabs);
    free(t->buckets);
    free(t->heap);
    free(t->ready);
    fv_strpool_fini(&t->pool);
    free(t);
}

/* ---- Heap ---- */

static bool heap_less(const struct heap_ent *a, const struct heap_ent *b)
{
    return a->due < b->due;
}

static int heap_push(struct fv_ftab *t, uint32_t idx, uint32_t due)
{
    uint32_t i;

    if (t->hn == t->hcap) {
        uint32_t nc = t->hcap ? t->hcap * 2 : 1024;
        struct heap_ent *nh = realloc(t->heap, (size_t)nc * sizeof(*nh));
        if (nh == NULL)
            return -ENOMEM;
        t->heap = nh;
        t->hcap = nc;
    }
    i = t->hn++;
    t->heap[i] = (struct heap_ent){due, idx};
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(&t->heap[i], &t->heap[parent]))
            break;
        struct heap_ent tmp = t->heap[i];
        t->heap[i] = t->heap[parent];
        t->heap[parent] = tmp;
        i = parent;
    }
    F(t, idx)->due = due;
    return 0;
}

static void heap_pop(struct fv_ftab *t)
{
    uint32_t i = 0;

    t->heap[0] = t->heap[--t->hn];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->hn && heap_less(&t->heap[l], &t->heap[m]))
            m = l;
        if (r < t->hn && heap_less(&t->heap[r], &t->heap[m]))
            m = r;
        if (m == i)
            break;
        struct heap_ent tmp = t->heap[i];
        t->heap[i] = t->heap[m];
        t->heap[m] = tmp;
        i = m;
    }
}

/* True when the heap top belongs to a live flow (else it is dropped). */
static bool heap_top_live(struct fv_ftab *t)
{
    const struct heap_ent *e = &t->heap[0];
    const struct flow *f = F(t, e->idx);

    return (f->flags & F_USED) && f->due == e->due;
}

/* ---- Allocation and lookup ---- */

static int add_slab(struct fv_ftab *t)
{
    struct flow *s;
    uint32_t base;

    if (t->nslabs == t->slabs_cap) {
        uint32_t nc = t->slabs_cap ? t->slabs_cap * 2 : 16;
        struct flow **ns = realloc(t->slabs, (size_t)nc * sizeof(*ns));
        if (ns == NULL)
            return -ENOMEM;
        t->slabs = ns;
        t->slabs_cap = nc;
    }
    s = calloc(SLAB, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    base = t->nslabs << SLAB_BITS;
    t->slabs[t->nslabs++] = s;
    /* Link the new entries into the free list (index 0 stays unused). */
    for (uint32_t i = SLAB; i-- > (base == 0 ? 1u : 0u);) {
        s[i].next = t->free_head;
        t->free_head = base + i;
    }
    return 0;
}

static int grow_buckets(struct fv_ftab *t)
{
    uint32_t size = (t->bmask + 1) * 2;
    uint32_t *nb = calloc(size, sizeof(*nb));

    if (nb == NULL)
        return -ENOMEM;
    for (uint32_t b = 0; b <= t->bmask; b++) {
        uint32_t idx = t->buckets[b];
        while (idx) {
            struct flow *f = F(t, idx);
            uint32_t next = f->next;
            f->next = nb[f->hash & (size - 1)];
            nb[f->hash & (size - 1)] = idx;
            idx = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->bmask = size - 1;
    return 0;
}

static uint32_t lookup(const struct fv_ftab *t, const struct fv_agg_key *k, uint32_t h)
{
    for (uint32_t idx = t->buckets[h & t->bmask]; idx; idx = F(t, idx)->next) {
        const struct flow *f = F(t, idx);
        if (f->hash == h && memcmp(&f->key, k, sizeof(*k)) == 0)
            return idx;
    }
    return 0;
}

static void unlink_flow(struct fv_ftab *t, uint32_t idx)
{
    struct flow *f = F(t, idx);
    uint32_t *pp = &t->buckets[f->hash & t->bmask];

    while (*pp != idx)
        pp = &F(t, *pp)->next;
    *pp = f->next;
}

static void delete_flow(struct fv_ftab *t, uint32_t idx)
{
    struct flow *f = F(t, idx);

    unlink_flow(t, idx);
    for (int i = 0; i < FV_AGG_STR_COUNT; i++)
        fv_strpool_unref(&t->pool, f->str[i]);
    fv_strpool_unref(&t->pool, f->cip);
    memset(f, 0, sizeof(*f));
    f->next = t->free_head;
    t->free_head = idx;
    t->st.flows--;
}

/* ---- Exporting ---- */

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static void build_rec(const struct fv_ftab *t, const struct flow *f, struct fv_agg_rec *r)
{
    const struct fv_strpool *p = &t->pool;
    struct fv_agent_rec *a = &r->a;
    uint64_t tot[4];
    int last = (f->flags & F_LAST_DST) ? 1 : 0;

    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 4; i++)
        tot[i] = max64(f->side_tot[0][i], f->side_tot[1][i]);
    a->ipv6 = f->key.v6;
    a->flow_start = f->start;
    a->flow_end = f->end;
    a->end_reason = f->end_reason;
    a->src_port = f->key.sport;
    a->dst_port = f->key.dport;
    a->proto = f->key.proto;
    a->packets_total = tot[0];
    a->octets_total = tot[1];
    a->rev_packets_total = tot[2];
    a->rev_octets_total = tot[3];
    /* A total can only shrink when a side restarted counting (a new
     * connection under an old key); then the delta is the new total. */
    a->packets_delta = tot[0] >= f->base[0] ? tot[0] - f->base[0] : tot[0];
    a->octets_delta = tot[1] >= f->base[1] ? tot[1] - f->base[1] : tot[1];
    a->rev_packets_delta = tot[2] >= f->base[2] ? tot[2] - f->base[2] : tot[2];
    a->rev_octets_delta = tot[3] >= f->base[3] ? tot[3] - f->base[3] : tot[3];
    memcpy(a->src_addr, f->key.src, 16);
    memcpy(a->dst_addr, f->key.dst, 16);
    if (f->cip)
        memcpy(a->cluster_ip, fv_strpool_get(p, f->cip), 16);
    a->src_pod = fv_strpool_get(p, f->str[FV_AGG_SRC_POD]);
    a->src_ns = fv_strpool_get(p, f->str[FV_AGG_SRC_NS]);
    a->src_node = fv_strpool_get(p, f->str[FV_AGG_SRC_NODE]);
    a->dst_pod = fv_strpool_get(p, f->str[FV_AGG_DST_POD]);
    a->dst_ns = fv_strpool_get(p, f->str[FV_AGG_DST_NS]);
    a->dst_node = fv_strpool_get(p, f->str[FV_AGG_DST_NODE]);
    a->svc_port = f->svc_port;
    a->svc_port_name = fv_strpool_get(p, f->str[FV_AGG_SVC_NAME]);
    a->in_policy = fv_strpool_get(p, f->str[FV_AGG_IN_POLICY]);
    a->in_policy_ns = fv_strpool_get(p, f->str[FV_AGG_IN_POLICY_NS]);
    a->in_rule = fv_strpool_get(p, f->str[FV_AGG_IN_RULE]);
    a->in_policy_type = f->in_type;
    a->in_action = f->in_action;
    a->eg_policy = fv_strpool_get(p, f->str[FV_AGG_EG_POLICY]);
    a->eg_policy_ns = fv_strpool_get(p, f->str[FV_AGG_EG_POLICY_NS]);
    a->eg_rule = fv_strpool_get(p, f->str[FV_AGG_EG_RULE]);
    a->eg_policy_type = f->eg_type;
    a->eg_action = f->eg_action;
    a->tcp_state = fv_strpool_get(p, f->str[FV_AGG_TCP_STATE]);
    a->flow_type = f->flow_type;
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 4; i++) {
            r->side[s][tot_ctr[i]] = f->side_tot[s][i];
            r->side[s][delta_ctr[i]] = f->side_delta[s][i];
        }
        r->end_side[s] = f->end_side[s];
        r->thr_side[s] = f->thr[s][0];
        r->rthr_side[s] = f->thr[s][1];
    }
    /* A flow that only one node sees (intra-node, to or from external) is
     * reported by that node for both ends, as the reference aggregator
     * does: its FromSourceNode and FromDestinationNode fields are equal. */
    if (f->flow_type != FV_FLOW_INTER_NODE &&
        !(f->flags & F_SEEN_DST) != !(f->flags & F_SEEN_SRC)) {
        int seen = (f->flags & F_SEEN_SRC) ? 0 : 1;
        memcpy(r->side[1 - seen], r->side[seen], sizeof(r->side[0]));
        r->end_side[1 - seen] = r->end_side[seen];
        r->thr_side[1 - seen] = r->thr_side[seen];
        r->rthr_side[1 - seen] = r->rthr_side[seen];
    }
    r->thr = f->thr[last][0];
    r->rthr = f->thr[last][1];
    r->src_labels = r->dst_labels = "";
    r->correlated = (f->flags & F_CORRELATED) != 0;
    if (t->cfg.exporter)
        t->cfg.exporter(t->cfg.exporter_ctx, f->exporter, r);
}

/* Emits f; on success resets its deltas and throughputs.  0 or the
 * emitter's refusal. */
static int export_flow(struct fv_ftab *t, uint32_t idx, fv_ftab_emit_fn emit, void *ctx)
{
    struct flow *f = F(t, idx);
    struct fv_agg_rec rec;
    int rc;

    build_rec(t, f, &rec);
    rc = emit(ctx, &rec);
    if (rc < 0) {
        t->st.refused++;
        f->flags |= F_PENDING;
        return rc;
    }
    for (int i = 0; i < 4; i++)
        f->base[i] = max64(f->side_tot[0][i], f->side_tot[1][i]);
    memset(f->side_delta, 0, sizeof(f->side_delta));
    memset(f->thr, 0, sizeof(f->thr));
    f->flags &= (uint16_t) ~(F_DIRTY | F_PENDING);
    t->st.exported++;
    return 0;
}

/* The tick at which f next needs attention; always after now.  A flow
 * whose export was refused has an active deadline that has passed: it is
 * due again after the retry interval, not at once (which would make
 * fv_ftab_expire() spin on a refusing emitter). */
static uint32_t next_due(const struct fv_ftab *t, const struct flow *f, uint32_t now)
{
    uint32_t due = f->inactive_dl;

    if ((f->flags & F_COMPLETE) && f->active_dl < due)
        due = f->active_dl;
    if (!(f->flags & F_COMPLETE) && f->corr_dl < due)
        due = f->corr_dl;
    if ((f->flags & F_PENDING) && (due <= now || now + t->retry_t < due))
        due = now + t->retry_t;
    return due > now ? due : now + 1;
}

static void mark_uncorrelated(struct fv_ftab *t, struct flow *f)
{
    if (!(f->flags & F_COMPLETE)) {
        f->flags |= F_COMPLETE | F_UNCORR;
        t->st.uncorrelated++;
    }
}

/* Evicts the flow with the nearest deadline to make room.  0, or
 * -FV_ELIMIT when its export was refused. */
static int evict_one(struct fv_ftab *t, fv_ftab_emit_fn emit, void *ctx)
{
    while (t->hn) {
        struct heap_ent top = t->heap[0];
        if (!heap_top_live(t)) {
            heap_pop(t);
            continue;
        }
        struct flow *f = F(t, top.idx);
        if (f->flags & F_DIRTY) {
            if (export_flow(t, top.idx, emit, ctx) < 0)
                return -FV_ELIMIT;
            if (!(f->flags & F_COMPLETE))
                t->st.uncorrelated++;
        }
        heap_pop(t);
        delete_flow(t, top.idx);
        t->st.evicted++;
        return 0;
    }
    return -FV_ELIMIT;
}

/* ---- Applying records ---- */

static void enqueue_ready(struct fv_ftab *t, uint32_t idx)
{
    struct flow *f = F(t, idx);

    if (f->flags & F_READY)
        return;
    if (t->rn == t->rcap) {
        uint32_t nc = t->rcap ? t->rcap * 2 : 256;
        uint32_t *nr = realloc(t->ready, (size_t)nc * sizeof(*nr));
        if (nr == NULL)
            return; /* it still goes out at its active deadline */
        t->ready = nr;
        t->rcap = nc;
    }
    t->ready[t->rn++] = idx;
    f->flags |= F_READY;
}

static bool needs_correlation(const struct flow *f)
{
    return f->flow_type == FV_FLOW_INTER_NODE && f->eg_action != FV_ACTION_DROP &&
           f->eg_action != FV_ACTION_REJECT && f->in_action != FV_ACTION_REJECT;
}

/* Replaces string i of f with the record's when that is non-empty. */
static void merge_str(struct fv_ftab *t, struct flow *f, const struct fv_agg_in *in, int i)
{
    const char *s = fv_agg_in_str(in, (enum fv_agg_str)i);
    uint32_t cur = f->str[i];

    if (in->str_len[i] == 0)
        return;
    if (cur && fv_strpool_len(&t->pool, cur) == in->str_len[i] &&
        memcmp(fv_strpool_get(&t->pool, cur), s, in->str_len[i]) == 0)
        return;
    f->str[i] = fv_strpool_ref(&t->pool, s, in->str_len[i]);
    fv_strpool_unref(&t->pool, cur);
}

static void merge_identity(struct fv_ftab *t, struct flow *f, const struct fv_agg_in *in)
{
    static const uint8_t zero[16];

    for (int i = 0; i < FV_AGG_STR_COUNT; i++)
        merge_str(t, f, in, i);
    if (memcmp(in->cluster_ip, zero, 16) != 0) {
        uint32_t cur = f->cip;
        f->cip = fv_strpool_ref(&t->pool, (const char *)in->cluster_ip, 16);
        fv_strpool_unref(&t->pool, cur);
    }
    if (in->svc_port)
        f->svc_port = in->svc_port;
    if (in->flow_type)
        f->flow_type = in->flow_type;
    if (in->in_type)
        f->in_type = in->in_type;
    if (in->in_action)
        f->in_action = in->in_action;
    if (in->eg_type)
        f->eg_type = in->eg_type;
    if (in->eg_action)
        f->eg_action = in->eg_action;
}

static bool is_stale(const struct flow *f, int side, const struct fv_agg_in *in)
{
    if (!(f->flags & (F_SEEN_SRC << side)))
        return false;
    if (in->flow_end < f->end_side[side])
        return true;
    if (in->flow_end > f->end_side[side])
        return false;
    /* Same second: news only if a counter grew or the flow just ended. */
    for (int i = 0; i < 4; i++)
        if (in->ctr[tot_ctr[i]] > f->side_tot[side][i])
            return false;
    return !(in->end_reason == FV_END_OF_FLOW && f->end_reason != FV_END_OF_FLOW);
}

static uint64_t rate(uint64_t now_total, uint64_t prev_total, uint32_t dt)
{
    return now_total > prev_total ? (now_total - prev_total) * 8 / dt : 0;
}

/* Adds a (not stale) record's counters, times and throughputs to its side. */
static void add_counters(struct flow *f, int side, const struct fv_agg_in *in)
{
    /* Throughput of this side over the time its report covers. */
    if (f->flags & (F_SEEN_SRC << side)) {
        uint32_t dt = in->flow_end > f->end_side[side] ? in->flow_end - f->end_side[side] : 0;
        if (dt) {
            f->thr[side][0] = rate(in->ctr[FV_AGG_OCT_TOTAL], f->side_tot[side][1], dt);
            f->thr[side][1] = rate(in->ctr[FV_AGG_ROCT_TOTAL], f->side_tot[side][3], dt);
        }
    } else {
        uint32_t dt = in->flow_end > in->flow_start ? in->flow_end - in->flow_start : 0;
        f->thr[side][0] = dt ? in->ctr[FV_AGG_OCT_TOTAL] * 8 / dt : 0;
        f->thr[side][1] = dt ? in->ctr[FV_AGG_ROCT_TOTAL] * 8 / dt : 0;
    }
    for (int i = 0; i < 4; i++) {
        f->side_tot[side][i] = in->ctr[tot_ctr[i]];
        f->side_delta[side][i] += in->ctr[delta_ctr[i]];
    }
    if (in->flow_start && (f->start == 0 || in->flow_start < f->start))
        f->start = in->flow_start;
    if (in->flow_end > f->end)
        f->end = in->flow_end;
    if (in->flow_end > f->end_side[side])
        f->end_side[side] = in->flow_end;
}

static uint32_t new_flow(struct fv_ftab *t, const struct fv_agg_in *in, uint32_t h, uint32_t now)
{
    uint32_t idx;
    struct flow *f;

    if (t->free_head == 0 && add_slab(t) < 0)
        return 0;
    if (t->st.flows + 1 > (uint64_t)t->bmask + 1)
        grow_buckets(t); /* on failure chains just get longer */
    idx = t->free_head;
    f = F(t, idx);
    t->free_head = f->next;
    memset(f, 0, sizeof(*f));
    f->key = in->key;
    f->hash = h;
    f->flags = F_USED;
    f->start = in->flow_start;
    /* What was counted before this record belongs to earlier exports (of
     * this aggregator before a restart, or of an evicted entry): the first
     * export's delta is the record's delta, not its whole total. */
    for (int i = 0; i < 4; i++) {
        uint64_t tot = in->ctr[tot_ctr[i]], d = in->ctr[delta_ctr[i]];
        f->base[i] = tot > d ? tot - d : 0;
    }
    f->active_dl = now + t->active_t;
    f->inactive_dl = now + t->inactive_t;
    f->corr_dl = now + t->corr_t;
    if (heap_push(t, idx, next_due(t, f, now) < f->active_dl ? next_due(t, f, now) : f->active_dl) <
        0) {
        f->flags = 0;
        f->next = t->free_head;
        t->free_head = idx;
        return 0;
    }
    f->next = t->buckets[h & t->bmask];
    t->buckets[h & t->bmask] = idx;
    t->st.flows++;
    return idx;
}

int fv_ftab_apply(struct fv_ftab *t, const struct fv_agg_in *in, uint64_t now_ms,
                  fv_ftab_emit_fn emit, void *ctx)
{
    uint32_t now = ticks(now_ms);
    uint32_t h = key_hash(&in->key);
    uint32_t idx = lookup(t, &in->key, h);
    struct flow *f;
    int side = (in->str_len[FV_AGG_SRC_POD] == 0 && in->str_len[FV_AGG_DST_POD] != 0) ? 1 : 0;
    uint16_t was_complete;
    bool merged = false;

    if (idx == 0) {
        if (t->cfg.max_flows && t->st.flows >= t->cfg.max_flows && evict_one(t, emit, ctx) < 0) {
            t->st.dropped++;
            return -FV_ELIMIT;
        }
        idx = new_flow(t, in, h, now);
        if (idx == 0) {
            t->st.dropped++;
            return -FV_ELIMIT;
        }
    }
    f = F(t, idx);
    if (is_stale(f, side, in)) {
        t->st.stale++;
        return 1;
    }
    t->st.records++;
    /* News is what a collector would want a row for: a new side, grown
     * counters, a changed identity or the end of the flow.  A report that
     * only moves flowEnd (an agent's idle report) updates the flow but does
     * not by itself cause a zero-delta export. */
    bool news = !(f->flags & (F_SEEN_SRC << side)) || f->digest[side] != in->ident_hash ||
                (in->end_reason == FV_END_OF_FLOW && f->end_reason != FV_END_OF_FLOW);
    for (int i = 0; i < 4 && !news; i++)
        news = in->ctr[tot_ctr[i]] > f->side_tot[side][i] || in->ctr[delta_ctr[i]] > 0;
    if (!(f->flags & (F_SEEN_SRC << side)) || f->digest[side] != in->ident_hash) {
        merge_identity(t, f, in);
        f->digest[side] = in->ident_hash;
    } else {
        /* The identity is this side's last one, but tcpState comes from
         * the latest record, whichever side sent the one before. */
        merge_str(t, f, in, FV_AGG_TCP_STATE);
    }

    add_counters(f, side, in);
    if (f->end_reason != FV_END_OF_FLOW)
        f->end_reason = in->end_reason;
    f->exporter = in->exporter;
    f->flags = (uint16_t)((f->flags & ~F_LAST_DST) | (side ? F_LAST_DST : 0));
    f->flags |= (uint16_t)((news ? F_DIRTY : 0) | (F_SEEN_SRC << side));
    f->inactive_dl = now + t->inactive_t;

    was_complete = f->flags & F_COMPLETE;
    if (!needs_correlation(f)) {
        f->flags |= F_COMPLETE;
    } else if ((f->flags & F_SEEN_SRC) && (f->flags & F_SEEN_DST) && !(f->flags & F_CORRELATED)) {
        f->flags |= F_COMPLETE | F_CORRELATED;
        t->st.correlated++;
        merged = true;
    }
    /* Prompt: just complete, just correlated (also after going out alone
     * at the correlation wait), or ended. */
    if ((f->flags & F_COMPLETE) && (!was_complete || merged || in->end_reason == FV_END_OF_FLOW))
        enqueue_ready(t, idx);
    return 0;
}

/* ---- Expiry ---- */

void fv_ftab_expire(struct fv_ftab *t, uint64_t now_ms, fv_ftab_emit_fn emit, void *ctx)
{
    uint32_t now = ticks(now_ms);
    uint32_t n = t->rn;

    /* Prompt exports first.  A refused one leaves the queue and is retried
     * through the heap after retry_t, like any other refused export. */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = t->ready[i];
        struct flow *f = F(t, idx);
        if (!(f->flags & F_USED) || !(f->flags & F_READY))
            continue;
        f->flags &= (uint16_t)~F_READY;
        if ((f->flags & F_DIRTY) && export_flow(t, idx, emit, ctx) < 0) {
            if (f->due <= now || now + t->retry_t < f->due)
                heap_push(t, idx, now + t->retry_t);
            continue;
        }
        f->active_dl = now + t->active_t;
        /* Waiting for correlation, its heap entry may be later than this. */
        if (f->active_dl < f->due)
            heap_push(t, idx, f->active_dl);
    }
    /* Entries appended during this pass (none today) would sit after n.
     * (memmove must not see the NULL of a queue never used, even for 0.) */
    if (t->rn > n)
        memmove(t->ready, t->ready + n, (size_t)(t->rn - n) * sizeof(*t->ready));
    t->rn -= n;

    while (t->hn && t->heap[0].due <= now) {
        struct heap_ent top = t->heap[0];
        heap_pop(t);
        struct flow *f = F(t, top.idx);
        if (!(f->flags & F_USED) || f->due != top.due)
            continue;
        if (now >= f->inactive_dl) {
            if (f->flags & F_DIRTY) {
                mark_uncorrelated(t, f);
                if (export_flow(t, top.idx, emit, ctx) < 0) {
                    heap_push(t, top.idx, now + t->retry_t);
                    continue;
                }
            }
            delete_flow(t, top.idx);
            t->st.expired++;
            continue;
        }
        if (!(f->flags & F_COMPLETE) && now >= f->corr_dl) {
            mark_uncorrelated(t, f);
            f->active_dl = now; /* export it now, below */
        }
        if ((f->flags & F_COMPLETE) && (now >= f->active_dl || (f->flags & F_PENDING))) {
            if (!(f->flags & F_DIRTY) || export_flow(t, top.idx, emit, ctx) == 0)
                f->active_dl = now + t->active_t;
        }
        heap_push(t, top.idx, next_due(t, f, now));
    }
}

uint64_t fv_ftab_flush(struct fv_ftab *t, fv_ftab_emit_fn emit, void *ctx)
{
    uint64_t refused = 0;

    for (uint32_t s = 0; s < t->nslabs; s++) {
        for (uint32_t i = 0; i < SLAB; i++) {
            uint32_t idx = (s << SLAB_BITS) | i;
            struct flow *f = F(t, idx);
            if (!(f->flags & F_USED))
                continue;
            if (f->flags & F_DIRTY) {
                mark_uncorrelated(t, f);
                if (export_flow(t, idx, emit, ctx) < 0)
                    refused++;
            }
            delete_flow(t, idx);
        }
    }
    t->hn = 0;
    t->rn = 0;
    return refused;
}

static bool addr_match(bool has, const uint8_t *want, bool want_v6, const struct flow *f,
                       const uint8_t *addr)
{
    if (!has)
        return true;
    return want_v6 == (bool)f->key.v6 && memcmp(want, addr, want_v6 ? 16 : 4) == 0;
}

uint64_t fv_ftab_query(struct fv_ftab *t, const struct fv_ftab_filter *q, uint64_t limit,
                       fv_ftab_emit_fn fn, void *ctx)
{
    uint64_t matched = 0;
    struct fv_agg_rec rec;

    /* All five given: one exact lookup. */
    if (q->has_src && q->has_dst && q->proto >= 0 && q->sport >= 0 && q->dport >= 0) {
        struct fv_agg_key k = {0};
        memcpy(k.src, q->src, 16);
        memcpy(k.dst, q->dst, 16);
        k.sport = (uint16_t)q->sport;
        k.dport = (uint16_t)q->dport;
        k.proto = (uint8_t)q->proto;
        k.v6 = q->src_v6;
        if (!q->src_v6) {
            memset(k.src + 4, 0, 12);
            memset(k.dst + 4, 0, 12);
        }
        uint32_t idx = lookup(t, &k, key_hash(&k));
        if (idx && limit) {
            build_rec(t, F(t, idx), &rec);
            fn(ctx, &rec);
        }
        return idx ? 1 : 0;
    }
    for (uint32_t s = 0; s < t->nslabs; s++) {
        for (uint32_t i = 0; i < SLAB; i++) {
            const struct flow *f = &t->slabs[s][i];
            if (!(f->flags & F_USED))
                continue;
            if (!addr_match(q->has_src, q->src, q->src_v6, f, f->key.src) ||
                !addr_match(q->has_dst, q->dst, q->dst_v6, f, f->key.dst) ||
                (q->proto >= 0 && q->proto != f->key.proto) ||
                (q->sport >= 0 && q->sport != f->key.sport) ||
                (q->dport >= 0 && q->dport != f->key.dport))
                continue;
            if (matched++ < limit) {
                build_rec(t, f, &rec);
                fn(ctx, &rec);
            }
        }
    }
    return matched;
}

void fv_ftab_stats(const struct fv_ftab *t, struct fv_ftab_stats *out)
{
    *out = t->st;
    out->strings = t->pool.live;
    out->memory = (uint64_t)t->nslabs * SLAB * sizeof(struct flow) +
                  (uint64_t)(t->bmask + 1) * sizeof(uint32_t) +
                  (uint64_t)t->hcap * sizeof(struct heap_ent) +
                  (uint64_t)t->rcap * sizeof(uint32_t) + t->pool.bytes +
                  (uint64_t)t->pool.cap * sizeof(struct fv_strpool_ent) +
                  (uint64_t)(t->pool.mask + 1) * sizeof(uint32_t);
}
