/* pool.c - the inventory's memory pool and string interner; see internal.h. */
#include "k8s/internal.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

/* Big enough that a cluster needs few chunks, small enough for a test. */
#define CHUNK_DATA (64 * 1024)

struct fv_k8s_pool_chunk {
    struct fv_k8s_pool_chunk *next; /* the chunk filled before this one */
    alignas(max_align_t) unsigned char data[];
};

void fv_k8s_pool_init(struct fv_k8s_pool *p)
{
    memset(p, 0, sizeof(*p));
}

void fv_k8s_pool_fini(struct fv_k8s_pool *p)
{
    struct fv_k8s_pool_chunk *c = p->head;

    while (c != NULL) {
        struct fv_k8s_pool_chunk *next = c->next;
        free(c);
        c = next;
    }
    memset(p, 0, sizeof(*p));
}

void *fv_k8s_pool_alloc(struct fv_k8s_pool *p, size_t size)
{
    const size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    struct fv_k8s_pool_chunk *c;
    size_t data;

    if (need < size)
        return NULL;
    if (p->head != NULL && p->size - p->used >= need) {
        void *out = p->head->data + p->used;
        p->used += need;
        return out;
    }
    /* A large request gets a chunk of its own; the current chunk stays
     * the one being filled when it has more room left. */
    data = need > CHUNK_DATA ? need : CHUNK_DATA;
    if (data > SIZE_MAX - sizeof(*c))
        return NULL;
    c = malloc(sizeof(*c) + data);
    if (c == NULL)
        return NULL;
    p->total += data;
    if (p->head != NULL && data - need < p->size - p->used) {
        c->next = p->head->next;
        p->head->next = c;
        return c->data;
    }
    c->next = p->head;
    p->head = c;
    p->size = data;
    p->used = need;
    return c->data;
}

void *fv_k8s_pool_array(struct fv_k8s_pool *p, size_t n, size_t elem)
{
    void *out;

    if (n == 0 || n > SIZE_MAX / elem)
        return NULL;
    out = fv_k8s_pool_alloc(p, n * elem);
    if (out != NULL)
        memset(out, 0, n * elem);
    return out;
}

/* ---- Interner ---- */

struct fv_k8s_strslot {
    const char *s; /* NULL when empty */
    uint32_t len;  /* strlen(s) */
    uint32_t hash; /* low bits pick the slot */
};

static uint32_t str_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void fv_k8s_strtab_init(struct fv_k8s_strtab *t, struct fv_k8s_pool *pool)
{
    memset(t, 0, sizeof(*t));
    t->pool = pool;
}

void fv_k8s_strtab_fini(struct fv_k8s_strtab *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->n = 0;
}

static int strtab_grow(struct fv_k8s_strtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    struct fv_k8s_strslot *slots = calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        size_t j = t->slots[i].hash & (cap - 1);
        if (t->slots[i].s == NULL)
            continue;
        while (slots[j].s != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

const char *fv_k8s_strtab_intern(struct fv_k8s_strtab *t, const char *s, size_t len)
{
    uint32_t h = str_hash(s, len);
    size_t i;
    char *copy;

    if (len > UINT32_MAX)
        return NULL;
    if ((t->n + 1) * 2 > t->cap && strtab_grow(t) < 0)
        return NULL;
    for (i = h & (t->cap - 1); t->slots[i].s != NULL; i = (i + 1) & (t->cap - 1)) {
        const struct fv_k8s_strslot *e = &t->slots[i];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
            return e->s;
    }
    copy = fv_k8s_pool_alloc(t->pool, len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    t->slots[i].s = copy;
    t->slots[i].len = (uint32_t)len;
    t->slots[i].hash = h;
    t->n++;
    t->bytes += len + 1;
    return copy;
}
