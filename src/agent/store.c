/*
 * store.c - the connection store and its expiry heap (see store.h).
 *
 * Layout: `conns` is an array of entries; `index` maps a key hash to an
 * entry number (open addressing, linear probing, backward-shift
 * deletion); `heap` is a binary min-heap of entry numbers ordered by each
 * entry's deadline, with the entry remembering its heap position so that
 * re-arming is O(log n).  Freed entries form a free list through `heap_pos`.
 */
#include "agent/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/err.h"

#define NIL UINT32_MAX
#define RETRY_MS 1000 /* a record that could not be queued is retried after this */
#define TICK_MS 100   /* resolution of the store's deadlines */

enum {
    F_USED = 1, /* the entry holds a connection */
    F_SEEN = 2, /* seen by the current dump */
    F_DEAD = 4, /* final export done; silent until the kernel forgets it */
    F_IDLE = 8, /* exported as idle; silent until it changes */
};

/* The lookup key; its bytes are compared and hashed as a whole. */
struct key {
    uint8_t src[16], dst[16];
    uint16_t sport, dport, zone;
    uint8_t proto, family;
};

struct conn {
    struct key key;
    uint8_t endpoint[16]; /* reply tuple source: post-DNAT server */
    uint64_t cur[4];      /* packets, octets, reverse packets, reverse octets */
    uint64_t exp[4];      /* the same at the last export */
    uint16_t endpoint_port;
    uint8_t tcp_state;      /* current */
    uint8_t exported_state; /* at the last export */
    uint8_t flags;
    uint32_t mark;
    uint32_t ct_id;    /* the kernel's id: a new id on the same tuple is a new connection */
    uint32_t start_s;  /* flowStartSeconds */
    uint32_t change_s; /* wall time of the last change: flowEndSeconds */
    uint32_t heap_pos; /* position in the heap, NIL; next free entry when unused */
    /* Monotonic times in ticks of TICK_MS (32 bits last 13 years of uptime):
     * the entry is the agent's memory, so every byte counts. */
    uint32_t change_t;   /* last change */
    uint32_t export_t;   /* last export (or first sight) */
    uint32_t deadline_t; /* heap key */
};

struct fv_agent_store {
    struct fv_agent_store_cfg cfg;
    struct conn *conns;
    uint32_t nconns;    /* entries in use or on the free list */
    uint32_t cap;       /* allocated entries */
    uint32_t free_head; /* first free entry, NIL */
    uint32_t *index;    /* entry numbers, NIL = empty slot */
    uint32_t index_cap; /* power of two */
    uint32_t *heap;
    uint32_t heap_len;
    struct fv_agent_store_stats stats;
};

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

static void make_key(const struct fv_ct_entry *e, struct key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->src, e->orig.src.a, 16);
    memcpy(k->dst, e->orig.dst.a, 16);
    k->sport = e->orig.sport;
    k->dport = e->orig.dport;
    k->zone = e->zone;
    k->proto = e->proto;
    k->family = e->orig.src.family;
}

static uint32_t tick(uint64_t ms)
{
    return (uint32_t)(ms / TICK_MS);
}

static uint32_t ticks(uint64_t ms)
{
    return (uint32_t)((ms + TICK_MS - 1) / TICK_MS);
}

/* ---- heap ---- */

static void heap_set(struct fv_agent_store *s, uint32_t pos, uint32_t c)
{
    s->heap[pos] = c;
    s->conns[c].heap_pos = pos;
}

static void heap_up(struct fv_agent_store *s, uint32_t pos)
{
    uint32_t c = s->heap[pos];
    uint32_t d = s->conns[c].deadline_t;

    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (s->conns[s->heap[parent]].deadline_t <= d)
            break;
        heap_set(s, pos, s->heap[parent]);
        pos = parent;
    }
    heap_set(s, pos, c);
}

static void heap_down(struct fv_agent_store *s, uint32_t pos)
{
    uint32_t c = s->heap[pos];
    uint32_t d = s->conns[c].deadline_t;

    for (;;) {
        uint32_t child = pos * 2 + 1;
        if (child >= s->heap_len)
            break;
        if (child + 1 < s->heap_len &&
            s->conns[s->heap[child + 1]].deadline_t < s->conns[s->heap[child]].deadline_t)
            child++;
        if (s->conns[s->heap[child]].deadline_t >= d)
            break;
        heap_set(s, pos, s->heap[child]);
        pos = child;
    }
    heap_set(s, pos, c);
}

static void heap_remove(struct fv_agent_store *s, uint32_t c)
{
    uint32_t pos = s->conns[c].heap_pos;

    if (pos == NIL)
        return;
    s->conns[c].heap_pos = NIL;
    if (--s->heap_len == pos)
        return;
    /* Move the last element into the hole, then restore the order in
     * whichever direction it is out of place. */
    heap_set(s, pos, s->heap[s->heap_len]);
    if (pos > 0 && s->conns[s->heap[pos]].deadline_t < s->conns[s->heap[(pos - 1) / 2]].deadline_t)
        heap_up(s, pos);
    else
        heap_down(s, pos);
}

/* (Re)arms c at its deadline. */
static void arm(struct fv_agent_store *s, uint32_t c, uint32_t deadline)
{
    struct conn *x = &s->conns[c];

    x->deadline_t = deadline;
    if (x->heap_pos == NIL) {
        x->heap_pos = s->heap_len;
        s->heap[s->heap_len++] = c;
        heap_up(s, x->heap_pos);
    } else {
        heap_down(s, x->heap_pos);
        heap_up(s, x->heap_pos);
    }
}

static uint32_t idle_deadline(const struct fv_agent_store *s, const struct conn *x)
{
    return x->change_t + ticks(s->cfg.idle_timeout_ms);
}

static uint32_t deadline_of(const struct fv_agent_store *s, const struct conn *x)
{
    uint32_t active = x->export_t + ticks(s->cfg.active_timeout_ms);
    uint32_t idle = idle_deadline(s, x);
    return active < idle ? active : idle;
}

/* ---- index ---- */

static uint32_t index_find(const struct fv_agent_store *s, const struct key *k, uint32_t *slot)
{
    uint32_t mask = s->index_cap - 1, i = (uint32_t)hash_key(k) & mask;

    while (s->index[i] != NIL) {
        if (memcmp(&s->conns[s->index[i]].key, k, sizeof(*k)) == 0)
            break;
        i = (i + 1) & mask;
    }
    *slot = i;
    return s->index[i];
}

static int index_grow(struct fv_agent_store *s)
{
    uint32_t cap = s->index_cap * 2, *old = s->index, oldcap = s->index_cap;

    s->index = malloc(cap * sizeof(*s->index));
    if (s->index == NULL) {
        s->index = old;
        return -ENOMEM;
    }
    memset(s->index, 0xFF, cap * sizeof(*s->index));
    s->index_cap = cap;
    for (uint32_t i = 0; i < oldcap; i++) {
        uint32_t slot;
        if (old[i] == NIL)
            continue;
        index_find(s, &s->conns[old[i]].key, &slot);
        s->index[slot] = old[i];
    }
    free(old);
    return 0;
}

static void index_delete(struct fv_agent_store *s, uint32_t slot)
{
    uint32_t mask = s->index_cap - 1;

    s->index[slot] = NIL;
    for (uint32_t j = (slot + 1) & mask; s->index[j] != NIL; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)hash_key(&s->conns[s->index[j]].key) & mask;
        if (((j - home) & mask) >= ((j - slot) & mask)) {
            s->index[slot] = s->index[j];
            s->index[j] = NIL;
            slot = j;
        }
    }
}

/* ---- entries ---- */

static int grow_entries(struct fv_agent_store *s)
{
    /* Grow by a quarter, not double: the store is the agent's memory. */
    uint32_t cap = s->cap + s->cap / 4 + 1024;
    struct conn *c = realloc(s->conns, (size_t)cap * sizeof(*c));
    uint32_t *h;

    if (c == NULL)
        return -ENOMEM;
    s->conns = c;
    h = realloc(s->heap, (size_t)cap * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    s->heap = h;
    s->cap = cap;
    return 0;
}

static uint32_t conn_insert(struct fv_agent_store *s, const struct key *k, uint32_t slot)
{
    uint32_t c;

    if ((s->stats.tracked + 1) * 4 > (uint64_t)s->index_cap * 3) {
        if (index_grow(s) < 0)
            return NIL;
        index_find(s, k, &slot);
    }
    if (s->free_head != NIL) {
        c = s->free_head;
        s->free_head = s->conns[c].heap_pos;
    } else {
        if (s->nconns == s->cap && grow_entries(s) < 0)
            return NIL;
        c = s->nconns++;
    }
    memset(&s->conns[c], 0, sizeof(s->conns[c]));
    s->conns[c].key = *k;
    s->conns[c].heap_pos = NIL;
    s->conns[c].flags = F_USED;
    s->index[slot] = c;
    s->stats.tracked++;
    return c;
}

static void conn_free(struct fv_agent_store *s, uint32_t c)
{
    uint32_t slot;

    heap_remove(s, c);
    if (index_find(s, &s->conns[c].key, &slot) == c)
        index_delete(s, slot);
    s->conns[c].flags = 0;
    s->conns[c].heap_pos = s->free_head;
    s->free_head = c;
    s->stats.tracked--;
}

int fv_agent_store_new(const struct fv_agent_store_cfg *cfg, struct fv_agent_store **out)
{
    struct fv_agent_store *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.max_conns == 0)
        s->cfg.max_conns = UINT32_MAX - 1;
    s->free_head = NIL;
    s->index_cap = 1024;
    s->index = malloc(s->index_cap * sizeof(*s->index));
    if (s->index == NULL || grow_entries(s) < 0) {
        fv_agent_store_free(s);
        return -ENOMEM;
    }
    memset(s->index, 0xFF, s->index_cap * sizeof(*s->index));
    *out = s;
    return 0;
}

void fv_agent_store_free(struct fv_agent_store *s)
{
    if (s == NULL)
        return;
    free(s->conns);
    free(s->index);
    free(s->heap);
    free(s);
}

/* ---- exports ---- */

static int report(struct fv_agent_store *s, uint32_t c, uint8_t reason, uint32_t end_s,
                  fv_agent_store_emit_fn emit, void *ctx)
{
    struct conn *x = &s->conns[c];
    struct fv_conn_report r;
    size_t alen = x->key.family == AF_INET6 ? 16 : 4;
    uint64_t d[4];

    for (int i = 0; i < 4; i++)
        d[i] = x->cur[i] >= x->exp[i] ? x->cur[i] - x->exp[i] : 0;
    memset(&r, 0, sizeof(r));
    fv_ip_from_bytes(x->key.src, alen, &r.src);
    fv_ip_from_bytes(x->key.dst, alen, &r.dst);
    fv_ip_from_bytes(x->endpoint, alen, &r.endpoint);
    r.sport = x->key.sport;
    r.dport = x->key.dport;
    r.endpoint_port = x->endpoint_port;
    r.proto = x->key.proto;
    r.zone = x->key.zone;
    r.mark = x->mark;
    r.tcp_state = x->tcp_state;
    r.end_reason = reason;
    r.start_s = x->start_s;
    r.end_s = end_s;
    r.packets = x->cur[0];
    r.octets = x->cur[1];
    r.rev_packets = x->cur[2];
    r.rev_octets = x->cur[3];
    r.d_packets = d[0];
    r.d_octets = d[1];
    r.d_rev_packets = d[2];
    r.d_rev_octets = d[3];
    return emit(ctx, &r);
}

static void exported(struct fv_agent_store *s, uint32_t c, uint64_t now_ms)
{
    struct conn *x = &s->conns[c];

    memcpy(x->exp, x->cur, sizeof(x->exp));
    x->exported_state = x->tcp_state;
    x->export_t = tick(now_ms);
}

static bool changed_since_export(const struct conn *x)
{
    return memcmp(x->cur, x->exp, sizeof(x->cur)) != 0 || x->tcp_state != x->exported_state;
}

/* The final export of a connection that ended; true when it was queued. */
static bool export_final(struct fv_agent_store *s, uint32_t c, uint64_t now_ms, uint32_t end_s,
                         fv_agent_store_emit_fn emit, void *ctx)
{
    if (report(s, c, FV_END_OF_FLOW, end_s, emit, ctx) < 0)
        return false;
    exported(s, c, now_ms);
    heap_remove(s, c);
    s->conns[c].flags |= F_DEAD;
    return true;
}

static bool is_dying(uint8_t proto, uint8_t tcp_state)
{
    /* TIME_WAIT (7) and CLOSE (8): the connection is over. */
    return proto == 6 && (tcp_state == 7 || tcp_state == 8);
}

/* A NEW event carries the state at creation (SYN_SENT): older than what
 * a dump may already have recorded for the same connection. */
static bool is_older_state(uint8_t incoming, uint8_t known)
{
    return incoming == 1 && known > 1; /* SYN_SENT after anything later */
}

static void set_counters(uint64_t cur[4], const struct fv_ct_entry *e)
{
    cur[0] = e->orig_packets;
    cur[1] = e->orig_bytes;
    cur[2] = e->reply_packets;
    cur[3] = e->reply_bytes;
}

/* Starts c over as a new connection first seen now. */
static void restart(struct conn *x, const struct fv_ct_entry *e, uint64_t now_ms, uint32_t now_s)
{
    memset(x->cur, 0, sizeof(x->cur));
    memset(x->exp, 0, sizeof(x->exp));
    x->exported_state = 0;
    x->flags &= (uint8_t) ~(F_DEAD | F_IDLE);
    x->start_s = e->start_ns ? (uint32_t)(e->start_ns / 1000000000u) : now_s;
    x->change_t = x->export_t = tick(now_ms);
    x->change_s = now_s;
    memcpy(x->endpoint, e->reply.src.a, 16);
    x->endpoint_port = e->reply.sport;
}

void fv_agent_store_update(struct fv_agent_store *s, const struct fv_ct_entry *e, uint64_t now_ms,
                           uint32_t now_s, fv_agent_store_emit_fn emit, void *ctx)
{
    struct key k;
    uint64_t cur[4];
    uint32_t slot, c;
    struct conn *x;

    make_key(e, &k);
    c = index_find(s, &k, &slot);
    if (c == NIL) {
        if (s->stats.tracked >= s->cfg.max_conns) {
            s->stats.untracked_full++;
            return;
        }
        c = conn_insert(s, &k, slot);
        if (c == NIL)
            return;
        restart(&s->conns[c], e, now_ms, now_s);
    }
    x = &s->conns[c];
    x->flags |= F_SEEN;
    x->mark = e->mark;
    set_counters(cur, e);
    if (x->ct_id && e->id && x->ct_id != e->id) {
        /* The kernel reused the tuple: this is another connection. */
        s->stats.counter_resets++;
        heap_remove(s, c);
        restart(x, e, now_ms, now_s);
    }
    if (e->id)
        x->ct_id = e->id;
    /* Counters never go back within one connection: an older view of it
     * (a NEW event read after a dump that saw it later) changes nothing. */
    for (int i = 0; i < 4; i++)
        if (cur[i] < x->cur[i])
            cur[i] = x->cur[i];
    if (memcmp(cur, x->cur, sizeof(cur)) == 0 && e->tcp_state != x->tcp_state &&
        is_older_state(e->tcp_state, x->tcp_state))
        return;
    if (memcmp(cur, x->cur, sizeof(cur)) != 0 || e->tcp_state != x->tcp_state) {
        memcpy(x->cur, cur, sizeof(cur));
        x->tcp_state = e->tcp_state;
        x->change_t = tick(now_ms);
        x->change_s = now_s;
        x->flags &= (uint8_t)~F_IDLE;
    }
    if (x->flags & F_DEAD)
        return;
    if (is_dying(e->proto, e->tcp_state)) {
        export_final(s, c, now_ms, x->change_s, emit, ctx);
        return;
    }
    if (!(x->flags & F_IDLE))
        arm(s, c, deadline_of(s, x));
}

void fv_agent_store_destroy(struct fv_agent_store *s, const struct fv_ct_entry *e, uint64_t now_ms,
                            uint32_t now_s, fv_agent_store_emit_fn emit, void *ctx)
{
    struct key k;
    uint32_t slot, c;
    struct conn *x;
    uint32_t end_s = e->stop_ns ? (uint32_t)(e->stop_ns / 1000000000u) : now_s;

    make_key(e, &k);
    c = index_find(s, &k, &slot);
    if (c == NIL) {
        /* Born and gone between two polls: track it just for its export. */
        c = conn_insert(s, &k, slot);
        if (c == NIL)
            return;
        restart(&s->conns[c], e, now_ms, now_s);
    }
    x = &s->conns[c];
    set_counters(x->cur, e);
    x->tcp_state = e->tcp_state;
    /* A connection already reported as ended is reported again only if
     * packets came after that report. */
    if (!(x->flags & F_DEAD) || changed_since_export(x)) {
        if (!export_final(s, c, now_ms, end_s, emit, ctx))
            return; /* not queued: keep it; the sweep will try again */
    }
    conn_free(s, c);
}

void fv_agent_store_begin_sweep(struct fv_agent_store *s)
{
    for (uint32_t c = 0; c < s->nconns; c++)
        s->conns[c].flags &= (uint8_t)~F_SEEN;
}

void fv_agent_store_end_sweep(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                              fv_agent_store_emit_fn emit, void *ctx)
{
    for (uint32_t c = 0; c < s->nconns; c++) {
        struct conn *x = &s->conns[c];
        if (!(x->flags & F_USED) || (x->flags & F_SEEN))
            continue;
        if (!(x->flags & F_DEAD) && !export_final(s, c, now_ms, now_s, emit, ctx))
            continue; /* not queued: the next sweep tries again */
        conn_free(s, c);
    }
}

void fv_agent_store_expire(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                           fv_agent_store_emit_fn emit, void *ctx)
{
    uint32_t now = tick(now_ms);

    (void)now_s;
    while (s->heap_len > 0 && s->conns[s->heap[0]].deadline_t <= now) {
        uint32_t c = s->heap[0];
        struct conn *x = &s->conns[c];
        if (now >= idle_deadline(s, x)) {
            /* Idle: said once, then silent until it changes. */
            if (report(s, c, FV_END_IDLE, x->change_s, emit, ctx) < 0) {
                arm(s, c, now + ticks(RETRY_MS));
                continue;
            }
            exported(s, c, now_ms);
            x->flags |= F_IDLE;
            heap_remove(s, c);
        } else if (changed_since_export(x)) {
            if (report(s, c, FV_END_ACTIVE, x->change_s, emit, ctx) < 0) {
                arm(s, c, now + ticks(RETRY_MS));
                continue;
            }
            exported(s, c, now_ms);
            arm(s, c, deadline_of(s, x));
        } else {
            /* Active deadline with nothing new: wait for the idle one. */
            arm(s, c, idle_deadline(s, x));
        }
    }
}

void fv_agent_store_flush(struct fv_agent_store *s, uint64_t now_ms, uint32_t now_s,
                          fv_agent_store_emit_fn emit, void *ctx)
{
    for (uint32_t c = 0; c < s->nconns; c++) {
        struct conn *x = &s->conns[c];
        if (!(x->flags & F_USED) || (x->flags & F_DEAD) || !changed_since_export(x))
            continue;
        if (report(s, c, FV_END_FORCED, now_s, emit, ctx) == 0)
            exported(s, c, now_ms);
    }
}

uint64_t fv_agent_store_next_deadline(const struct fv_agent_store *s, uint64_t now_ms)
{
    if (s->heap_len == 0)
        return UINT64_MAX;
    uint64_t d = (uint64_t)s->conns[s->heap[0]].deadline_t * TICK_MS;
    return d > now_ms ? d - now_ms : 0;
}

void fv_agent_store_stats(const struct fv_agent_store *s, struct fv_agent_store_stats *out)
{
    *out = s->stats;
}

size_t fv_agent_store_memory(const struct fv_agent_store *s)
{
    return sizeof(*s) + (size_t)s->cap * (sizeof(struct conn) + sizeof(uint32_t)) +
           (size_t)s->index_cap * sizeof(uint32_t);
}
