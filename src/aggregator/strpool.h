/*
 * strpool.h - interned strings with reference counts.
 *
 * A flow table holds millions of flows but a cluster has only thousands of
 * distinct Pod, Namespace, Node, Service and policy names.  The pool keeps
 * one copy of each and hands out 32-bit ids; every holder takes a
 * reference and gives it back, and a string whose last reference goes is
 * freed, so the pool follows the cluster as Pods come and go.  Id 0 is the
 * empty string, always present and never counted.
 *
 * Thread rules: one thread (the table's).
 *
 *     uint32_t id = fv_strpool_ref(&p, "web-1", 5);   // takes a reference
 *     const char *s = fv_strpool_get(&p, id);        // NUL-terminated
 *     fv_strpool_unref(&p, id);
 */
#ifndef FV_AGGREGATOR_STRPOOL_H
#define FV_AGGREGATOR_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

struct fv_strpool_ent {
    uint32_t hash; /* of the bytes */
    uint32_t refs; /* 0 = free slot */
    uint32_t len;  /* bytes, without the NUL */
    char *s;       /* owned, NUL-terminated; NULL when free */
};

struct fv_strpool {
    struct fv_strpool_ent *ents; /* by id; [0] is "" */
    uint32_t n, cap;             /* ids used (incl. freed), allocated */
    uint32_t *free_ids;          /* ids to reuse */
    uint32_t nfree, free_cap;
    uint32_t *index; /* open addressing: id per slot, 0 = empty */
    uint32_t mask;   /* index size - 1 */
    uint32_t live;   /* strings held */
    uint64_t bytes;  /* string bytes held */
};

int fv_strpool_init(struct fv_strpool *p);
void fv_strpool_fini(struct fv_strpool *p);
/* Returns the id of s (taking a reference), 0 for "" and, when memory
 * runs out, 0 as well: a name is lost, never the flow. */
uint32_t fv_strpool_ref(struct fv_strpool *p, const char *s, size_t len);
/* Takes one more reference on an id. */
void fv_strpool_hold(struct fv_strpool *p, uint32_t id);
void fv_strpool_unref(struct fv_strpool *p, uint32_t id);

static inline const char *fv_strpool_get(const struct fv_strpool *p, uint32_t id)
{
    return p->ents[id].s;
}
static inline uint32_t fv_strpool_len(const struct fv_strpool *p, uint32_t id)
{
    return p->ents[id].len;
}

#endif
