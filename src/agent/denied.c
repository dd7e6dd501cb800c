/*
 * denied.c - the denied-connection store (see denied.h).
 *
 * Layout, as in store.c: `ents` is an array of entries; `index` maps a key
 * hash to an entry number (open addressing, linear probing, backward-shift
 * deletion); `heap` is a binary min-heap of entry numbers ordered by
 * `deadline`, each entry remembering its heap position.  Freed entries form
 * a free list through `heap_pos`.
 *
 * The heap key is a lower bound: fv_denied_add() makes the real deadline
 * later (a new packet postpones the idle deadline) without touching the
 * heap, and fv_denied_expire() re-arms an entry that is popped early.  The
 * per-packet path is therefore a hash lookup and four additions.
 */
#include "agent/denied.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/store.h"

#define NIL UINT32_MAX
#define RETRY_MS 1000 /* next_deadline after a refused emit: no busy loop */
#define GROW_STEP 1024

enum {
    F_USED = 1,     /* the entry holds a key */
    F_EXPORTED = 2, /* exported at least once: the first-export delay is over */
};

/* The lookup key; its 40 bytes are compared and hashed as a whole. */
struct key {
    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    uint8_t proto, family;
    uint8_t pad[2]; /* zero */
};

struct ent {
    struct key key;
    uint64_t packets, octets;         /* totals */
    uint64_t exp_packets, exp_octets; /* totals at the last export */
    uint64_t first_ms;                /* monotonic: first packet */
    uint64_t last_ms;                 /* monotonic: last packet */
    uint64_t export_ms;               /* monotonic: last export */
    uint64_t deadline;                /* heap key: at or before the real deadline */
    uint32_t first_s, last_s;         /* wall: first and last packet */
    uint32_t heap_pos;                /* position in the heap; next free entry when unused */
    uint8_t action;                   /* the strongest seen */
    uint8_t flags;
    char prefix[FV_NFLOG_PREFIX_MAX]; /* of the first packet */
};

struct fv_denied {
    struct fv_denied_cfg cfg;
    struct ent *ents;
    uint32_t nents;     /* entries in use or on the free list */
    uint32_t cap;       /* allocated entries */
    uint32_t free_head; /* first free entry, NIL */
    uint32_t *index;    /* entry numbers, NIL = empty slot */
    uint32_t index_cap; /* power of two */
    uint32_t *heap;
    uint32_t heap_len;
    uint64_t retry_ms; /* monotonic: after a refused emit, no deadline before this */
    struct fv_denied_stats stats;
};

_Static_assert(sizeof(struct key) == 40, "struct key is hashed as five 64-bit words");

static uint64_t hash_key(const struct key *k)
{
    uint64_t w[5], h = 0x9E3779B97F4A7C15ull;

    memcpy(w, k, sizeof(w));
    for (int i = 0; i < 5; i++) {
        h ^= w[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static void make_key(const struct fv_nflog_packet *p, struct key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->src, p->src.a, 16);
    memcpy(k->dst, p->dst.a, 16);
    k->sport = p->sport;
    k->dport = p->dport;
    k->proto = p->proto;
    k->family = p->src.family;
}

/* ---- heap ---- */

static void heap_set(struct fv_denied *d, uint32_t pos, uint32_t e)
{
    d->heap[pos] = e;
    d->ents[e].heap_pos = pos;
}

static void heap_up(struct fv_denied *d, uint32_t pos)
{
    uint32_t e = d->heap[pos];
    uint64_t t = d->ents[e].deadline;

    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (d->ents[d->heap[parent]].deadline <= t)
            break;
        heap_set(d, pos, d->heap[parent]);
        pos = parent;
    }
    heap_set(d, pos, e);
}

static void heap_down(struct fv_denied *d, uint32_t pos)
{
    uint32_t e = d->heap[pos];
    uint64_t t = d->ents[e].deadline;

    for (;;) {
        uint32_t child = pos * 2 + 1;
        if (child >= d->heap_len)
            break;
        if (child + 1 < d->heap_len &&
            d->ents[d->heap[child + 1]].deadline < d->ents[d->heap[child]].deadline)
            child++;
        if (d->ents[d->heap[child]].deadline >= t)
            break;
        heap_set(d, pos, d->heap[child]);
        pos = child;
    }
    heap_set(d, pos, e);
}

static void heap_remove(struct fv_denied *d, uint32_t e)
{
    uint32_t pos = d->ents[e].heap_pos;

    d->ents[e].heap_pos = NIL;
    if (--d->heap_len == pos)
        return;
    heap_set(d, pos, d->heap[d->heap_len]);
    if (pos > 0 && d->ents[d->heap[pos]].deadline < d->ents[d->heap[(pos - 1) / 2]].deadline)
        heap_up(d, pos);
    else
        heap_down(d, pos);
}

static void heap_push(struct fv_denied *d, uint32_t e, uint64_t deadline)
{
    d->ents[e].deadline = deadline;
    d->heap[d->heap_len] = e;
    d->ents[e].heap_pos = d->heap_len++;
    heap_up(d, d->ents[e].heap_pos);
}

/* Moves the heap's top (e) to a later deadline. */
static void rearm_top(struct fv_denied *d, uint32_t e, uint64_t deadline)
{
    d->ents[e].deadline = deadline;
    heap_down(d, d->ents[e].heap_pos);
}

/* The real deadline of e: when fv_denied_expire() has something to do. */
static uint64_t deadline_of(const struct fv_denied *d, const struct ent *x)
{
    uint64_t idle = x->last_ms + d->cfg.idle_timeout_ms;
    uint64_t next = x->flags & F_EXPORTED ? x->export_ms + d->cfg.active_timeout_ms
                                          : x->first_ms + d->cfg.first_export_delay_ms;
    return next < idle ? next : idle;
}

/* ---- index ---- */

static uint32_t index_find(const struct fv_denied *d, const struct key *k, uint32_t *slot)
{
    uint32_t mask = d->index_cap - 1, i = (uint32_t)hash_key(k) & mask;

    while (d->index[i] != NIL) {
        if (memcmp(&d->ents[d->index[i]].key, k, sizeof(*k)) == 0)
            break;
        i = (i + 1) & mask;
    }
    *slot = i;
    return d->index[i];
}

static int index_grow(struct fv_denied *d)
{
    uint32_t cap = d->index_cap * 2, *old = d->index, oldcap = d->index_cap;

    d->index = malloc(cap * sizeof(*d->index));
    if (d->index == NULL) {
        d->index = old;
        return -ENOMEM;
    }
    memset(d->index, 0xFF, cap * sizeof(*d->index));
    d->index_cap = cap;
    for (uint32_t i = 0; i < oldcap; i++) {
        uint32_t slot;
        if (old[i] == NIL)
            continue;
        index_find(d, &d->ents[old[i]].key, &slot);
        d->index[slot] = old[i];
    }
    free(old);
    return 0;
}

static void index_delete(struct fv_denied *d, uint32_t slot)
{
    uint32_t mask = d->index_cap - 1;

    d->index[slot] = NIL;
    for (uint32_t j = (slot + 1) & mask; d->index[j] != NIL; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)hash_key(&d->ents[d->index[j]].key) & mask;
        if (((j - home) & mask) >= ((j - slot) & mask)) {
            d->index[slot] = d->index[j];
            d->index[j] = NIL;
            slot = j;
        }
    }
}

/* ---- entries ---- */

static int grow_entries(struct fv_denied *d)
{
    uint32_t cap = d->cap + d->cap / 4 + GROW_STEP;
    struct ent *e;
    uint32_t *h;

    if (cap > d->cfg.max_entries)
        cap = d->cfg.max_entries;
    e = realloc(d->ents, (size_t)cap * sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    d->ents = e;
    h = realloc(d->heap, (size_t)cap * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    d->heap = h;
    d->cap = cap;
    return 0;
}

static uint32_t ent_insert(struct fv_denied *d, const struct key *k, uint32_t slot)
{
    uint32_t e;

    if ((d->stats.entries + 1) * 4 > (uint64_t)d->index_cap * 3) {
        if (index_grow(d) < 0)
            return NIL;
        index_find(d, k, &slot);
    }
    if (d->free_head != NIL) {
        e = d->free_head;
        d->free_head = d->ents[e].heap_pos;
    } else {
        if (d->nents == d->cap && grow_entries(d) < 0)
            return NIL;
        e = d->nents++;
    }
    memset(&d->ents[e], 0, sizeof(d->ents[e]));
    d->ents[e].key = *k;
    d->ents[e].heap_pos = NIL;
    d->ents[e].flags = F_USED;
    d->index[slot] = e;
    d->stats.entries++;
    return e;
}

static void ent_free(struct fv_denied *d, uint32_t e)
{
    uint32_t slot;

    if (d->ents[e].heap_pos != NIL)
        heap_remove(d, e);
    if (index_find(d, &d->ents[e].key, &slot) == e)
        index_delete(d, slot);
    d->ents[e].flags = 0;
    d->ents[e].heap_pos = d->free_head;
    d->free_head = e;
    d->stats.entries--;
}

int fv_denied_new(const struct fv_denied_cfg *cfg, struct fv_denied **out)
{
    struct fv_denied *d;

    if (cfg->active_timeout_ms == 0 || cfg->idle_timeout_ms == 0)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->cfg = *cfg;
    if (d->cfg.max_entries == 0)
        d->cfg.max_entries = FV_DENIED_DEFAULT_MAX_ENTRIES;
    if (d->cfg.first_export_delay_ms == 0)
        d->cfg.first_export_delay_ms = FV_DENIED_DEFAULT_FIRST_DELAY_MS;
    d->free_head = NIL;
    d->index_cap = 1024;
    d->index = malloc(d->index_cap * sizeof(*d->index));
    if (d->index == NULL || grow_entries(d) < 0) {
        fv_denied_free(d);
        return -ENOMEM;
    }
    memset(d->index, 0xFF, d->index_cap * sizeof(*d->index));
    *out = d;
    return 0;
}

void fv_denied_free(struct fv_denied *d)
{
    if (d == NULL)
        return;
    free(d->ents);
    free(d->index);
    free(d->heap);
    free(d);
}

void fv_denied_add(struct fv_denied *d, const struct fv_nflog_packet *p, uint64_t now_ms,
                   uint32_t now_s)
{
    struct key k;
    uint32_t slot, e;
    struct ent *x;

    make_key(p, &k);
    e = index_find(d, &k, &slot);
    if (e == NIL) {
        if (d->stats.entries >= d->cfg.max_entries) {
            d->stats.untracked_full++;
            return;
        }
        e = ent_insert(d, &k, slot);
        if (e == NIL) {
            d->stats.untracked_full++; /* out of memory: the same loss */
            return;
        }
        x = &d->ents[e];
        x->first_ms = x->last_ms = x->export_ms = now_ms;
        x->first_s = now_s;
        /* The prefix is a NUL-terminated array of the same size. */
        memcpy(x->prefix, p->prefix, sizeof(x->prefix));
        x->prefix[sizeof(x->prefix) - 1] = '\0';
        heap_push(d, e, deadline_of(d, x));
    }
    x = &d->ents[e];
    x->packets++;
    x->octets += p->len;
    x->last_ms = now_ms > x->last_ms ? now_ms : x->last_ms;
    x->last_s = now_s > x->last_s ? now_s : x->last_s;
    if (p->action > x->action)
        x->action = p->action;
}

/* ---- exports ---- */

static int report(struct fv_denied *d, const struct ent *x, uint8_t reason, fv_denied_emit_fn emit,
                  void *ctx)
{
    struct fv_denied_report r;
    size_t alen = x->key.family == AF_INET6 ? 16 : 4;
    int rc;

    memset(&r, 0, sizeof(r));
    fv_ip_from_bytes(x->key.src, alen, &r.src);
    fv_ip_from_bytes(x->key.dst, alen, &r.dst);
    r.sport = x->key.sport;
    r.dport = x->key.dport;
    r.proto = x->key.proto;
    r.action = x->action;
    r.end_reason = reason;
    r.start_s = x->first_s;
    r.end_s = x->last_s;
    r.packets = x->packets;
    r.octets = x->octets;
    r.d_packets = x->packets >= x->exp_packets ? x->packets - x->exp_packets : 0;
    r.d_octets = x->octets >= x->exp_octets ? x->octets - x->exp_octets : 0;
    r.prefix = x->prefix;
    rc = emit(ctx, &r);
    if (rc >= 0)
        d->stats.exported++;
    return rc;
}

static void exported(struct ent *x, uint64_t now_ms)
{
    x->exp_packets = x->packets;
    x->exp_octets = x->octets;
    x->export_ms = now_ms;
    x->flags |= F_EXPORTED;
}

static bool unexported(const struct ent *x)
{
    return x->packets != x->exp_packets || x->octets != x->exp_octets;
}

/* The due entry e: exports, re-arms or removes it.  False when the emit
 * callback refused the record (e stays at the top, due). */
static bool expire_one(struct fv_denied *d, uint32_t e, uint64_t now_ms, fv_denied_emit_fn emit,
                       void *ctx)
{
    struct ent *x = &d->ents[e];

    if (now_ms >= x->last_ms + d->cfg.idle_timeout_ms) {
        /* Idle: said a last time if there is anything new, then forgotten. */
        if (unexported(x) && report(d, x, FV_END_IDLE, emit, ctx) < 0)
            return false;
        ent_free(d, e);
        return true;
    }
    if (unexported(x)) {
        /* The first export, or the active timeout of a growing one. */
        if (report(d, x, FV_END_ACTIVE, emit, ctx) < 0)
            return false;
        exported(x, now_ms);
        rearm_top(d, e, deadline_of(d, x));
        return true;
    }
    /* Active deadline with nothing new: only the idle one is left. */
    rearm_top(d, e, x->last_ms + d->cfg.idle_timeout_ms);
    return true;
}

void fv_denied_expire(struct fv_denied *d, uint64_t now_ms, uint32_t now_s, fv_denied_emit_fn emit,
                      void *ctx)
{
    (void)now_s;
    while (d->heap_len > 0 && d->ents[d->heap[0]].deadline <= now_ms) {
        uint32_t e = d->heap[0];
        uint64_t real = deadline_of(d, &d->ents[e]);

        if (real > now_ms) {
            /* Packets came since it was armed: its deadline moved. */
            rearm_top(d, e, real);
            continue;
        }
        if (!expire_one(d, e, now_ms, emit, ctx)) {
            /* The consumer is full: the rest waits for the next call. */
            d->retry_ms = now_ms + RETRY_MS;
            return;
        }
    }
    d->retry_ms = 0;
}

void fv_denied_flush(struct fv_denied *d, uint64_t now_ms, uint32_t now_s, fv_denied_emit_fn emit,
                     void *ctx)
{
    (void)now_s;
    for (uint32_t e = 0; e < d->nents; e++) {
        struct ent *x = &d->ents[e];
        if (!(x->flags & F_USED) || !unexported(x))
            continue;
        if (report(d, x, FV_END_FORCED, emit, ctx) >= 0)
            exported(x, now_ms);
    }
}

uint64_t fv_denied_next_deadline(const struct fv_denied *d, uint64_t now_ms)
{
    uint64_t t;

    if (d->heap_len == 0)
        return UINT64_MAX;
    t = d->ents[d->heap[0]].deadline;
    if (t < d->retry_ms)
        t = d->retry_ms;
    return t > now_ms ? t - now_ms : 0;
}

void fv_denied_stats(const struct fv_denied *d, struct fv_denied_stats *out)
{
    *out = d->stats;
}
