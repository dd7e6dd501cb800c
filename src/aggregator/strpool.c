/* strpool.c - interned strings with reference counts (strpool.h). */
#include "aggregator/strpool.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int grow_index(struct fv_strpool *p)
{
    uint32_t size = (p->mask + 1) * 2;
    uint32_t *idx = calloc(size, sizeof(*idx));

    if (idx == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= p->mask; i++) {
        uint32_t id = p->index[i];
        if (id == 0)
            continue;
        uint32_t j = p->ents[id].hash & (size - 1);
        while (idx[j])
            j = (j + 1) & (size - 1);
        idx[j] = id;
    }
    free(p->index);
    p->index = idx;
    p->mask = size - 1;
    return 0;
}

int fv_strpool_init(struct fv_strpool *p)
{
    memset(p, 0, sizeof(*p));
    p->cap = 256;
    p->ents = calloc(p->cap, sizeof(*p->ents));
    p->index = calloc(256, sizeof(*p->index));
    p->mask = 255;
    if (p->ents == NULL || p->index == NULL) {
        fv_strpool_fini(p);
        return -ENOMEM;
    }
    p->ents[0].s = (char *)"";
    p->ents[0].refs = 1;
    p->n = 1;
    return 0;
}

void fv_strpool_fini(struct fv_strpool *p)
{
    if (p->ents)
        for (uint32_t i = 1; i < p->n; i++)
            free(p->ents[i].s);
    free(p->ents);
    free(p->free_ids);
    free(p->index);
    memset(p, 0, sizeof(*p));
}

uint32_t fv_strpool_ref(struct fv_strpool *p, const char *s, size_t len)
{
    uint32_t h, i, id;
    char *copy;

    if (len == 0)
        return 0;
    h = hash_bytes(s, len);
    for (i = h & p->mask; p->index[i]; i = (i + 1) & p->mask) {
        struct fv_strpool_ent *e = &p->ents[p->index[i]];
        if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
            e->refs++;
            return p->index[i];
        }
    }
    if ((uint64_t)(p->live + 1) * 4 > (uint64_t)(p->mask + 1) * 3) {
        if (grow_index(p) < 0)
            return 0;
        for (i = h & p->mask; p->index[i]; i = (i + 1) & p->mask)
            ;
    }
    bool reused = p->nfree > 0;
    if (reused) {
        id = p->free_ids[--p->nfree];
    } else {
        if (p->n == p->cap) {
            struct fv_strpool_ent *ne = realloc(p->ents, (size_t)p->cap * 2 * sizeof(*ne));
            if (ne == NULL)
                return 0;
            memset(ne + p->cap, 0, (size_t)p->cap * sizeof(*ne));
            p->ents = ne;
            p->cap *= 2;
        }
        id = p->n++;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        if (reused)
            p->nfree++; /* the id is still in free_ids */
        else
            p->n--;
        return 0;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->ents[id] = (struct fv_strpool_ent){h, 1, (uint32_t)len, copy};
    p->index[i] = id;
    p->live++;
    p->bytes += len + 1;
    return id;
}

void fv_strpool_hold(struct fv_strpool *p, uint32_t id)
{
    if (id)
        p->ents[id].refs++;
}

/* Deletes id from the index (linear probing: shift the cluster back). */
static void index_del(struct fv_strpool *p, uint32_t id)
{
    uint32_t i = p->ents[id].hash & p->mask;

    while (p->index[i] != id)
        i = (i + 1) & p->mask;
    for (;;) {
        uint32_t j = i;
        p->index[i] = 0;
        for (;;) {
            j = (j + 1) & p->mask;
            if (p->index[j] == 0)
                return;
            uint32_t home = p->ents[p->index[j]].hash & p->mask;
            /* Move j back to i unless its home lies cyclically in (i, j]. */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j))
                break;
        }
        p->index[i] = p->index[j];
        i = j;
    }
}

void fv_strpool_unref(struct fv_strpool *p, uint32_t id)
{
    struct fv_strpool_ent *e;

    if (id == 0)
        return;
    e = &p->ents[id];
    if (--e->refs)
        return;
    if (p->nfree == p->free_cap) {
        uint32_t nc = p->free_cap ? p->free_cap * 2 : 64;
        uint32_t *nf = realloc(p->free_ids, (size_t)nc * sizeof(*nf));
        if (nf == NULL) {
            e->refs = 1; /* keep it: leaking one string beats corrupting the pool */
            return;
        }
        p->free_ids = nf;
        p->free_cap = nc;
    }
    index_del(p, id);
    p->live--;
    p->bytes -= e->len + 1;
    free(e->s);
    *e = (struct fv_strpool_ent){0, 0, 0, NULL};
    p->free_ids[p->nfree++] = id;
}
